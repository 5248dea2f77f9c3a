"""The demo scenario: members' keys enrolled, a key rotated and revoked. Later modules add their acts here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from sqlalchemy.orm import Session

from fusioncell.cell import CellHandle
from fusioncell.geo import service as geo_service
from fusioncell.identity import service as identity_service
from fusioncell.record import signing
from fusioncell.record.sequencer import Log

# Demo logins (password = member id + "-demo-pass"); never use such passwords outside the demo.
MEMBERS = [
    ("IL", "il/liaison-1", "Noa Levi", ["liaison"]),
    ("IL", "il/admin", "Avi Cohen", ["admin", "liaison"]),
    ("SY", "sy/liaison-1", "Rami Haddad", ["liaison"]),
    ("SY", "sy/admin", "Lina Khoury", ["admin", "liaison"]),
    ("US", "us/supervisor-1", "Sam Carter", ["supervisor", "admin"]),
    ("US", "us/observer-1", "Dana Brooks", ["observer"]),
]


def demo_password(member: str) -> str:
    return f"{member}-demo-pass"


def load_places(session: Session, *, log: Log) -> None:
    """The demo gazetteer, as cell-authored entries."""
    data = tomllib.loads((Path(__file__).parent / "places.toml").read_text(encoding="utf-8"))
    for place in data["place"]:
        geo_service.add_place(session, log=log, place_id=place["id"], names=place["names"], kind=place["kind"],
                              alt_names=place.get("alt_names", []),
                              geometry={"type": "Point", "coordinates": [place["lon"], place["lat"]]})


def play(cell: CellHandle) -> None:
    log = cell.log
    with log.transaction(cell.db) as session:
        load_places(session, log=log)
    with log.transaction(cell.db) as session:
        for party, member, name, roles in MEMBERS:
            identity_service.add_member(session, log=log, kek=cell.kek, actor=None, member_id=member, party=party,
                                        name=name, roles=roles, password=demo_password(member))
    # A rotation: a device key replaced by a new one, the old one revoked.
    old_public = signing.public_bytes(signing.generate())
    with log.transaction(cell.db) as session:
        identity_service.enrol_key(session, log=log, party="SY", holder="sy/liaison-2", public_key=old_public,
                                   custody="device")
        identity_service.enrol_key(session, log=log, party="SY", holder="sy/liaison-2",
                                   public_key=signing.public_bytes(signing.generate()), custody="device")
        identity_service.revoke_key(session, log=log, key_id=signing.key_id(old_public),
                                    reason="rotated to a new device key")
