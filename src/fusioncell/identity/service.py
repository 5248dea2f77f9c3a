"""Identity use cases: create the cell (genesis), enrol and revoke keys. Services flush, never commit."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fusioncell.clock import Clock, format_time
from fusioncell.config import CellConfig
from fusioncell.errors import (
    Forbidden,
    FusioncellError,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from fusioncell.identity.auth import (
    KeyEncryptionKey,
    check_password,
    check_totp,
    digest,
    hash_password,
    new_secret,
    new_totp_secret,
    same,
    totp_uri,
)
from fusioncell.identity.models import (
    ApiToken,
    AuthSession,
    Credential,
    CustodialKey,
    Member,
    Party,
    PartySetting,
    SigningKey,
)
from fusioncell.record import signing
from fusioncell.record.canonical import b64e
from fusioncell.record.format import Signer
from fusioncell.record.registry import GENESIS, KEY_ADDED, KEY_REVOKED
from fusioncell.record.sequencer import Appended, Log
from fusioncell.record.signing import public_bytes


def create_cell(session: Session, *, log: Log, config: CellConfig) -> Appended:
    """Entry 0: the cell, its parties and its public key, signed by the cell key."""
    assert log.cell_key is not None
    log.cell_id = config.cell.id
    body = {
        "cell": {
            "id": config.cell.id,
            "name": config.cell.name,
            "public_key": b64e(public_bytes(log.cell_key)),
            "settings": config.settings,
        },
        "parties": [p.model_dump() for p in config.party],
    }
    return log.append_as_cell(session, kind=GENESIS, body=body, audience=sorted(p.id for p in config.party))


def enrol_key(
    session: Session, *, log: Log, party: str, holder: str, public_key: bytes, custody: str, purpose: str = "sign"
) -> Appended:
    """The cell enrols a key for a member (holder) of a party."""
    body = {"public_key": b64e(public_key), "party": party, "holder": holder, "purpose": purpose, "custody": custody}
    return log.append_as_cell(session, kind=KEY_ADDED, body=body)


def revoke_key(session: Session, *, log: Log, key_id: str, reason: str) -> Appended:
    return log.append_as_cell(session, kind=KEY_REVOKED, body={"key_id": key_id, "reason": reason})


def cell_setting(session: Session, name: str, default: Any) -> Any:
    """A setting of the cell's configuration (the genesis entry's `settings`), or the default."""
    from fusioncell.identity.models import Cell

    return session.execute(select(Cell.settings)).scalar_one().get(name, default)


def list_keys(session: Session) -> list[SigningKey]:
    return list(session.execute(select(SigningKey).order_by(SigningKey.added_seq)).scalars())


def list_parties(session: Session) -> list[Party]:
    return list(session.execute(select(Party).order_by(Party.id)).scalars())


def supervising_parties(session: Session) -> set[str]:
    """The ids of the parties with the supervisor's role."""
    return set(session.execute(select(Party.id).where(Party.role == "supervisor")).scalars())


def access_party(session: Session, *, party_id: str) -> Party:
    party = session.get(Party, party_id)
    if party is None:
        known = ", ".join(p.id for p in list_parties(session))
        raise NotFound(f"no party {party_id!r} in this cell; parties are {known}")
    return party


# -- members, sessions and tokens ------------------------------------------------------------------------

LOCK_AFTER_FAILURES = 5
LOCK_MINUTES = 15
SESSION_HOURS = 12
SCOPES = ("read", "write", "witness")


@dataclass(frozen=True)
class Viewer:
    """Who is asking: the member, their party and roles, and how they proved it."""

    member: str
    party: str
    roles: tuple[str, ...]
    via: str  # session | token
    scopes: tuple[str, ...] = SCOPES
    csrf: str | None = None

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def has_role(self, role: str) -> bool:
        return role in self.roles


@dataclass
class LoginAttempt:
    """The outcome of a login. Failures are recorded too, so the caller commits before raising `error`."""

    viewer: Viewer | None = None
    cookie: str | None = None
    error: FusioncellError | None = None


def _audience_for(session: Session, party: str | None) -> list[str]:
    return sorted(supervising_parties(session) | ({party} if party else set()))


def get_member(session: Session, member_id: str) -> Member | None:
    return session.get(Member, member_id)


def list_members(session: Session, *, viewer: Viewer | None = None) -> list[Member]:
    query = select(Member).order_by(Member.id)
    return list(session.execute(query).scalars())


def _require_admin(session: Session, actor: Viewer | None, party: str) -> None:
    """The operator (actor None: the CLI on the server) may act for any party; an administrator for its own."""
    if actor is None:
        return
    if not actor.has_role("admin") or actor.party != party:
        raise Forbidden(f"only an administrator of {party} can manage its members")
    if not actor.can("write"):
        raise Forbidden("this token has no write scope")


def append_as(session: Session, *, log: Log, kek: KeyEncryptionKey, actor: Viewer | None, kind: str,
              body: dict, audience: list[str], refs: list[str] | None = None) -> Appended:
    """Append as the acting member (signed with their cell-held key), or as the cell for the operator."""
    if actor is None:
        return log.append_as_cell(session, kind=kind, body=body, audience=audience, refs=refs)
    if not actor.can("write"):
        raise Forbidden("this credential has no write scope")
    signer = custodial_signer(session, kek=kek, member=actor.member, cell_id=log.cell_id or "")
    submission, sig = signer.submit(kind=kind, body=body, audience=audience, created=format_time(log.clock.now()),
                                    refs=refs)
    return log.append(session, submission=submission, sig=sig, body=body)


def add_member(
    session: Session, *, log: Log, kek: KeyEncryptionKey, actor: Viewer | None, member_id: str, party: str,
    name: str, roles: list[str], password: str | None,
) -> Member:
    """Add a member; with a password they get a cell-custodied key for the web, enrolled in the record."""
    _require_admin(session, actor, party)
    party_row = access_party(session, party_id=party)
    if "supervisor" in roles and party_row.role != "supervisor":
        raise InvalidInput(f"role supervisor is for members of the supervising party, not of {party}")
    if not member_id.startswith(party.lower() + "/"):
        raise InvalidInput(f"a member id of {party} starts with {party.lower()}/, e.g. {party.lower()}/liaison-1")
    password_hash = hash_password(password) if password is not None else None
    everyone = [p.id for p in list_parties(session)]
    append_as(session, log=log, kek=kek, actor=actor, kind="identity.member_added",
                body={"member": member_id, "party": party, "name": name, "roles": sorted(set(roles))},
                audience=everyone)
    if password_hash is not None:
        key = signing.generate()
        session.add(CustodialKey(key_id=signing.key_id(signing.public_bytes(key)), member=member_id,
                                 sealed=kek.seal(bytes(key))))
        session.add(Credential(member=member_id, password_hash=password_hash, failed_logins=0))
        enrol_key(session, log=log, party=party, holder=member_id, public_key=signing.public_bytes(key),
                  custody="cell")
    session.flush()
    return session.get(Member, member_id)


def disable_member(session: Session, *, log: Log, kek: KeyEncryptionKey, actor: Viewer | None, member_id: str,
                   reason: str) -> Member:
    """Disable a member: recorded, their sessions end, their tokens and keys stop working at once."""
    member = session.get(Member, member_id)
    if member is None or (actor is not None and actor.party != member.party):
        raise NotFound(f"no member {member_id}")
    _require_admin(session, actor, member.party)
    everyone = [p.id for p in list_parties(session)]
    append_as(session, log=log, kek=kek, actor=actor, kind="identity.member_disabled",
                body={"member": member_id, "reason": reason}, audience=everyone)
    now = format_time(log.clock.now())
    session.execute(update(AuthSession).where(AuthSession.member == member_id, AuthSession.ended_at.is_(None))
                    .values(ended_at=now))
    session.execute(update(ApiToken).where(ApiToken.member == member_id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=now))
    for key in session.execute(select(SigningKey).where(SigningKey.holder == member_id,
                                                        SigningKey.revoked_seq.is_(None))).scalars().all():
        revoke_key(session, log=log, key_id=key.key_id, reason=f"member disabled: {reason}")
    session.flush()
    return member


def set_totp_required(session: Session, *, log: Log, kek: KeyEncryptionKey, actor: Viewer | None, party: str,
                      required: bool) -> None:
    _require_admin(session, actor, party)
    access_party(session, party_id=party)
    everyone = [p.id for p in list_parties(session)]
    append_as(session, log=log, kek=kek, actor=actor, kind="identity.party_settings",
                body={"party": party, "totp_required": required}, audience=everyone)


def custodial_signer(session: Session, *, kek: KeyEncryptionKey, member: str, cell_id: str) -> Signer:
    row = session.execute(
        select(CustodialKey).join(SigningKey, SigningKey.key_id == CustodialKey.key_id)
        .where(CustodialKey.member == member, SigningKey.revoked_seq.is_(None))
        .order_by(SigningKey.added_seq.desc()).limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise Forbidden(f"{member} has no key held by the cell; sign on your device and POST /api/v1/records")
    owner = session.get(Member, member)
    return Signer(cell=cell_id, party=owner.party, author=member, key=signing.SigningKey(kek.open(row.sealed)))


def _totp_required(session: Session, party: str) -> bool:
    setting = session.get(PartySetting, party)
    return bool(setting and setting.totp_required)


def login(session: Session, *, log: Log, kek: KeyEncryptionKey, member_id: str, password: str,
          totp_code: str | None) -> LoginAttempt:
    """Check password (argon2id) and TOTP; lock after repeated failures. Every attempt is an entry."""
    now = log.clock.now()
    stamp = format_time(now)
    member = session.get(Member, member_id)
    credential = session.get(Credential, member_id) if member else None

    def failed(reason: str, error: FusioncellError) -> LoginAttempt:
        audience = _audience_for(session, member.party if member else None)
        log.append_as_cell(session, kind="identity.login_failed", body={"member": member_id[:100], "reason": reason},
                           audience=audience)
        return LoginAttempt(error=error)

    generic = Unauthenticated("member id, password or code is wrong")
    password_ok = check_password(credential.password_hash if credential else None, password)
    if member is None or credential is None:
        return failed("unknown_member", generic)
    if credential.locked_until and credential.locked_until > stamp:
        return failed("locked", RateLimited(
            f"too many failed logins: this member is locked until {credential.locked_until}", retry_after=60))
    if member.disabled_seq is not None:
        return failed("disabled", Unauthenticated("this member is disabled"))
    if not password_ok:
        credential.failed_logins += 1
        if credential.failed_logins >= LOCK_AFTER_FAILURES:
            credential.locked_until = format_time(now + timedelta(minutes=LOCK_MINUTES))
            credential.failed_logins = 0
        return failed("bad_password", generic)
    method = "password"
    if credential.totp_enabled:
        secret = kek.open(credential.totp_sealed).decode()
        if not totp_code or not check_totp(secret, totp_code, at=now.timestamp()):
            credential.failed_logins += 1
            return failed("bad_totp", generic)
        method = "password+totp"
    elif _totp_required(session, member.party):
        return failed("totp_required", Forbidden(
            f"{member.party} requires a second factor; ask an administrator to reset your login with TOTP"))
    credential.failed_logins = 0
    credential.locked_until = None
    cookie = new_secret()
    csrf = new_secret()
    session.add(AuthSession(id_hash=digest(cookie), member=member_id, csrf=csrf, created_at=stamp,
                            expires_at=format_time(now + timedelta(hours=SESSION_HOURS))))
    log.append_as_cell(session, kind="identity.login", body={"member": member_id, "method": method},
                       audience=_audience_for(session, member.party))
    viewer = Viewer(member_id, member.party, tuple(member.roles), "session", SCOPES, csrf)
    return LoginAttempt(viewer=viewer, cookie=cookie)


def _active_member(session: Session, member_id: str) -> Member:
    member = session.get(Member, member_id)
    if member is None or member.disabled_seq is not None:
        raise Unauthenticated("this member is disabled; log in again or ask an administrator")
    return member


def authenticate_session(session: Session, *, cookie: str, clock: Clock) -> Viewer:
    row = session.get(AuthSession, digest(cookie))
    now = format_time(clock.now())
    if row is None or row.ended_at is not None:
        raise Unauthenticated("not logged in (the session ended); log in again")
    if row.expires_at <= now:
        raise Unauthenticated("the session expired; log in again")
    member = _active_member(session, row.member)
    return Viewer(member.id, member.party, tuple(member.roles), "session", SCOPES, row.csrf)


def logout(session: Session, *, cookie: str, clock: Clock) -> None:
    row = session.get(AuthSession, digest(cookie))
    if row is not None and row.ended_at is None:
        row.ended_at = format_time(clock.now())


def create_token(session: Session, *, log: Log, viewer: Viewer, scopes: list[str], days: int) -> str:
    """A bearer token for a program; its secret is shown once, its creation is an entry."""
    if not scopes or not set(scopes) <= set(SCOPES):
        raise InvalidInput(f"scopes must be some of {', '.join(SCOPES)}")
    if not set(scopes) <= set(viewer.scopes):
        raise Forbidden("a token cannot grant more than the credential that creates it")
    if not 1 <= days <= 366:
        raise InvalidInput("days must be between 1 and 366")
    now = log.clock.now()
    token_id = os.urandom(8).hex()
    secret = new_secret()
    expires = format_time(now + timedelta(days=days))
    session.add(ApiToken(id=token_id, secret_hash=digest(secret), member=viewer.member, scopes=sorted(scopes),
                         created_at=format_time(now), expires_at=expires))
    log.append_as_cell(session, kind="identity.token_created",
                       body={"member": viewer.member, "token": token_id, "scopes": sorted(scopes), "expires": expires},
                       audience=_audience_for(session, viewer.party))
    return f"fct_{token_id}_{secret}"


def authenticate_token(session: Session, *, token: str, clock: Clock) -> Viewer:
    parts = token.split("_", 2)
    row = session.get(ApiToken, parts[1]) if len(parts) == 3 and parts[0] == "fct" else None
    if row is None or not same(row.secret_hash, digest(parts[2])):
        raise Unauthenticated("the bearer token is not valid")
    if row.revoked_at is not None:
        raise Unauthenticated("the bearer token was revoked")
    if row.expires_at <= format_time(clock.now()):
        raise Unauthenticated("the bearer token expired; create a new one")
    member = _active_member(session, row.member)
    return Viewer(member.id, member.party, tuple(member.roles), "token", tuple(row.scopes))


def setup_totp(session: Session, *, kek: KeyEncryptionKey, viewer: Viewer, issuer: str) -> tuple[str, str]:
    """Start TOTP enrolment: a new secret, not yet required until confirmed with a code."""
    credential = session.get(Credential, viewer.member)
    if credential is None:
        raise Forbidden("only members who log in with a password use TOTP")
    secret = new_totp_secret()
    credential.totp_sealed = kek.seal(secret.encode())
    credential.totp_enabled = False
    return secret, totp_uri(secret, member=viewer.member, issuer=issuer)


def confirm_totp(session: Session, *, kek: KeyEncryptionKey, viewer: Viewer, code: str, clock: Clock) -> None:
    credential = session.get(Credential, viewer.member)
    if credential is None or credential.totp_sealed is None:
        raise InvalidInput("start with POST /api/v1/auth/totp/setup")
    if not check_totp(kek.open(credential.totp_sealed).decode(), code, at=clock.now().timestamp()):
        raise InvalidInput("that code is not the current one; check the device clock and try again")
    credential.totp_enabled = True
