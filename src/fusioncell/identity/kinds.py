"""Identity kinds: the genesis of the cell and the key registry. Every party receives them, so any party can
verify every signature in the log from the cell's public key alone."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from fusioncell.errors import InvalidSubmission
from fusioncell.identity.models import Cell, Member, Party, PartySetting, SigningKey
from fusioncell.record.canonical import b64d
from fusioncell.record.format import CELL_PARTY
from fusioncell.record.kinds import BodyModel, Kind, register
from fusioncell.record.registry import GENESIS, KEY_ADDED, KEY_REVOKED
from fusioncell.record.sequencer import Appended
from fusioncell.record.signing import key_id

PartyId = str
_ID = r"^[A-Z][A-Z0-9_-]{0,31}$"
_B64_KEY = r"^[A-Za-z0-9_-]{43}$"


class PartyBody(BodyModel):
    id: str = Field(pattern=_ID)
    role: Literal["party", "supervisor", "observer"]
    names: dict[str, str] = Field(min_length=1)
    languages: list[str] = Field(min_length=1)


class CellBody(BodyModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(pattern=_B64_KEY)
    settings: dict[str, object] = Field(default_factory=dict)


class GenesisBody(BodyModel):
    cell: CellBody
    parties: list[PartyBody] = Field(min_length=2)


class KeyAddedBody(BodyModel):
    public_key: str = Field(pattern=_B64_KEY)
    party: str = Field(pattern=_ID)
    holder: str = Field(min_length=1, max_length=100)
    purpose: Literal["sign", "witness"] = "sign"
    custody: Literal["device", "cell"]


class KeyRevokedBody(BodyModel):
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    reason: str = Field(min_length=1, max_length=500)


ROLES = ("liaison", "supervisor", "observer", "admin")
Role = Literal["liaison", "supervisor", "observer", "admin"]
_MEMBER = r"^[a-z0-9][a-z0-9._-]{0,30}/[a-z0-9][a-z0-9._-]{0,60}$"


class MemberAddedBody(BodyModel):
    member: str = Field(pattern=_MEMBER)
    party: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1)


class MemberDisabledBody(BodyModel):
    member: str = Field(pattern=_MEMBER)
    reason: str = Field(min_length=1, max_length=500)


class PartySettingsBody(BodyModel):
    party: str = Field(pattern=_ID)
    totp_required: bool


class LoginBody(BodyModel):
    member: str = Field(max_length=100)
    method: Literal["password", "password+totp"]


class LoginFailedBody(BodyModel):
    member: str = Field(max_length=100)  # as typed: may name nobody
    reason: Literal["unknown_member", "bad_password", "bad_totp", "totp_required", "locked", "disabled"]


class TokenCreatedBody(BodyModel):
    member: str = Field(pattern=_MEMBER)
    token: str = Field(pattern=r"^[0-9a-f]{16}$")
    scopes: list[Literal["read", "write", "witness"]] = Field(min_length=1)
    expires: str


def _own_party(entry: Appended, party: str, what: str) -> None:
    if entry.party not in (CELL_PARTY, party):
        raise InvalidSubmission(f"{entry.party} cannot {what} of {party}", code="not_allowed")


def _apply_member_added(session: Session, entry: Appended, body: MemberAddedBody) -> None:
    _own_party(entry, body.party, "add members")
    if session.get(Party, body.party) is None:
        raise InvalidSubmission(f"no party {body.party!r} in this cell", code="bad_body")
    if session.get(Member, body.member) is not None:
        raise InvalidSubmission(f"member {body.member} already exists", code="duplicate_member")
    session.execute(
        insert(Member),
        [{"id": body.member, "party": body.party, "name": body.name, "roles": list(body.roles),
          "added_seq": entry.seq}],
    )


def _apply_member_disabled(session: Session, entry: Appended, body: MemberDisabledBody) -> None:
    member = session.get(Member, body.member)
    if member is None:
        raise InvalidSubmission(f"no member {body.member}", code="unknown_member")
    _own_party(entry, member.party, "disable members")
    if member.disabled_seq is not None:
        raise InvalidSubmission(f"member {body.member} was already disabled", code="already_disabled")
    session.execute(update(Member).where(Member.id == body.member).values(disabled_seq=entry.seq))


def _apply_party_settings(session: Session, entry: Appended, body: PartySettingsBody) -> None:
    _own_party(entry, body.party, "change the settings")
    if session.get(Party, body.party) is None:
        raise InvalidSubmission(f"no party {body.party!r} in this cell", code="bad_body")
    if session.get(PartySetting, body.party) is None:
        session.execute(insert(PartySetting), [{"party": body.party, "totp_required": body.totp_required,
                                                "changed_seq": entry.seq}])
    else:
        session.execute(update(PartySetting).where(PartySetting.party == body.party)
                        .values(totp_required=body.totp_required, changed_seq=entry.seq))


def _apply_genesis(session: Session, entry: Appended, body: GenesisBody) -> None:
    public = b64d(body.cell.public_key)
    session.execute(
        insert(Cell),
        [{"id": body.cell.id, "name": body.cell.name, "public_key": public, "key_id": key_id(public),
          "settings": dict(body.cell.settings), "genesis_at": entry.time}],
    )
    session.execute(
        insert(Party),
        [{"id": p.id, "role": p.role, "names": dict(p.names), "languages": list(p.languages)} for p in body.parties],
    )
    session.execute(
        insert(SigningKey),
        [{"key_id": key_id(public), "public_key": public, "party": "CELL", "holder": "CELL", "purpose": "sign",
          "custody": "cell", "added_seq": entry.seq}],
    )


def _apply_key_added(session: Session, entry: Appended, body: KeyAddedBody) -> None:
    public = b64d(body.public_key)
    session.execute(
        insert(SigningKey),
        [{"key_id": key_id(public), "public_key": public, "party": body.party, "holder": body.holder,
          "purpose": body.purpose, "custody": body.custody, "added_seq": entry.seq}],
    )


def _apply_key_revoked(session: Session, entry: Appended, body: KeyRevokedBody) -> None:
    session.execute(
        update(SigningKey)
        .where(SigningKey.key_id == body.key_id)
        .values(revoked_seq=entry.seq, revoked_reason=body.reason)
    )


register(Kind(GENESIS, GenesisBody, _apply_genesis, by_cell=True, by_party=False, full_audience=True))
register(Kind(KEY_ADDED, KeyAddedBody, _apply_key_added, by_cell=True, by_party=True, full_audience=True))
register(Kind(KEY_REVOKED, KeyRevokedBody, _apply_key_revoked, by_cell=True, by_party=True, full_audience=True))
register(Kind("identity.member_added", MemberAddedBody, _apply_member_added, by_cell=True, full_audience=True))
register(Kind("identity.member_disabled", MemberDisabledBody, _apply_member_disabled, by_cell=True,
              full_audience=True))
register(Kind("identity.party_settings", PartySettingsBody, _apply_party_settings, by_cell=True,
              full_audience=True))
# Security events: written by the cell, released to the member's party and the supervisor.
register(Kind("identity.login", LoginBody, by_cell=True, by_party=False))
register(Kind("identity.login_failed", LoginFailedBody, by_cell=True, by_party=False))
register(Kind("identity.token_created", TokenCreatedBody, by_cell=True, by_party=False))
