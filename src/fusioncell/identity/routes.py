"""HTTP routes of identity: login, logout, tokens, TOTP, members and party settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from fusioncell.deps import COOKIE, AppState, state, viewer
from fusioncell.errors import RateLimited
from fusioncell.identity import service as identity_service
from fusioncell.identity.service import Viewer
from fusioncell.schemas import (
    LoginRead,
    LoginRequest,
    MemberCreate,
    MemberDisable,
    MemberRead,
    Schema,
    TokenCreate,
    TokenRead,
    TotpConfirm,
    TotpSetupRead,
)

router = APIRouter(prefix="/api/v1", tags=["identity"])
Fc = Annotated[AppState, Depends(state)]
Who = Annotated[Viewer, Depends(viewer)]


def _member_read(member: Any) -> dict[str, Any]:
    return {"member": member.id, "party": member.party, "name": member.name, "roles": list(member.roles),
            "disabled": member.disabled_seq is not None}


@router.post("/auth/login", response_model=LoginRead)
def login(fc: Fc, request: Request, response: Response, form: LoginRequest):
    wait = fc.limiter.hit(request.client.host if request.client else "?")
    if wait:
        raise RateLimited(f"too many login attempts from this address; retry in {int(wait) + 1} s",
                          retry_after=int(wait) + 1)
    attempt = fc.write(lambda s: identity_service.login(s, log=fc.cell.log, kek=fc.cell.kek, member_id=form.member,
                                                         password=form.password, totp_code=form.totp))
    if attempt.error is not None:
        raise attempt.error  # the failure is already on the record
    secure = fc.settings.cookie_secure or request.url.scheme == "https"
    response.set_cookie(COOKIE, attempt.cookie, httponly=True, samesite="strict", secure=secure, path="/",
                        max_age=identity_service.SESSION_HOURS * 3600)
    who = attempt.viewer
    return {"member": who.member, "party": who.party, "roles": list(who.roles), "csrf_token": who.csrf}


@router.post("/auth/logout", status_code=204)
def logout(fc: Fc, request: Request, response: Response, who: Who) -> None:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        fc.write(lambda s: identity_service.logout(s, cookie=cookie, clock=fc.cell.log.clock))
        fc.viewers.clear()
    response.delete_cookie(COOKIE, path="/")


@router.post("/auth/tokens", status_code=201, response_model=TokenRead)
def create_token(fc: Fc, who: Who, form: TokenCreate):
    token = fc.write(lambda s: identity_service.create_token(s, log=fc.cell.log, viewer=who, scopes=form.scopes,
                                                              days=form.days))
    return {"token": token, "scopes": sorted(form.scopes)}


@router.post("/auth/totp/setup", response_model=TotpSetupRead)
def totp_setup(fc: Fc, who: Who):
    secret, uri = fc.write(lambda s: identity_service.setup_totp(s, kek=fc.cell.kek, viewer=who,
                                                                  issuer="fusioncell"))
    return {"secret": secret, "uri": uri}


@router.post("/auth/totp/confirm", status_code=204)
def totp_confirm(fc: Fc, who: Who, form: TotpConfirm) -> None:
    fc.write(lambda s: identity_service.confirm_totp(s, kek=fc.cell.kek, viewer=who, code=form.code,
                                                      clock=fc.cell.log.clock))


@router.get("/members", response_model=list[MemberRead])
def list_members(fc: Fc, who: Who):
    return [_member_read(m) for m in fc.read(lambda s: identity_service.list_members(s, viewer=who))]


@router.post("/members", status_code=201, response_model=MemberRead)
def add_member(fc: Fc, who: Who, form: MemberCreate):
    member = fc.write(lambda s: identity_service.add_member(
        s, log=fc.cell.log, kek=fc.cell.kek, actor=who, member_id=form.member, party=form.party, name=form.name,
        roles=list(form.roles), password=form.password))
    return _member_read(member)


@router.post("/members/{member_id:path}/disable", response_model=MemberRead)
def disable_member(fc: Fc, who: Who, member_id: str, form: MemberDisable):
    member = fc.write(lambda s: identity_service.disable_member(s, log=fc.cell.log, kek=fc.cell.kek, actor=who,
                                                                 member_id=member_id, reason=form.reason))
    return _member_read(member)


class PartySettings(Schema):
    totp_required: bool = Field(description="Members of the party must log in with a TOTP code.")


@router.put("/parties/{party}/settings", status_code=204)
def put_party_settings(fc: Fc, who: Who, party: str, form: PartySettings) -> None:
    fc.write(lambda s: identity_service.set_totp_required(s, log=fc.cell.log, kek=fc.cell.kek, actor=who,
                                                           party=party, required=form.totp_required))
