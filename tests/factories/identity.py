"""Factories for identity: members with passwords (web) or device keys (programs), and their tokens."""

from __future__ import annotations

from fusioncell.cell import CellHandle
from fusioncell.identity import service as identity_service
from fusioncell.identity.service import Viewer
from fusioncell.record import signing
from fusioncell.record.format import Signer

PERSONAS = {
    # name: (member id, party, roles)
    "il_liaison": ("il/liaison-1", "IL", ["liaison"]),
    "il_admin": ("il/admin", "IL", ["admin", "liaison"]),
    "sy_liaison": ("sy/liaison-1", "SY", ["liaison"]),
    "sy_admin": ("sy/admin", "SY", ["admin", "liaison"]),
    "us_supervisor": ("us/supervisor-1", "US", ["supervisor", "admin"]),
    "us_observer": ("us/observer-1", "US", ["observer"]),
}


def password_of(member: str) -> str:
    return f"{member}-long-password"


def add_member(cell: CellHandle, member: str, party: str, roles: list[str], *, password: bool = True) -> None:
    with cell.log.transaction(cell.db) as session:
        identity_service.add_member(session, log=cell.log, kek=cell.kek, actor=None, member_id=member, party=party,
                                    name=member.split("/")[1].title(), roles=roles,
                                    password=password_of(member) if password else None)


def add_personas(cell: CellHandle) -> None:
    for member, party, roles in PERSONAS.values():
        add_member(cell, member, party, roles)


def token_for(cell: CellHandle, member: str, scopes: list[str]) -> str:
    with cell.log.transaction(cell.db) as session:
        row = identity_service.get_member(session, member)
        who = Viewer(row.id, row.party, tuple(row.roles), "cli")
        return identity_service.create_token(session, log=cell.log, viewer=who, scopes=scopes, days=30)


def device_member(cell: CellHandle, member: str, party: str, roles: list[str], *,
                  purpose: str = "sign") -> Signer:
    """A member without a password, whose key lives only on their device."""
    add_member(cell, member, party, roles, password=False)
    key = signing.generate()
    with cell.log.transaction(cell.db) as session:
        identity_service.enrol_key(session, log=cell.log, party=party, holder=member,
                                   public_key=signing.public_bytes(key), custody="device", purpose=purpose)
    return Signer(cell=cell.log.cell_id or "", party=party, author=member, key=key)
