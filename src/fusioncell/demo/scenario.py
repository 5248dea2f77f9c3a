"""The demo scenario: members' keys enrolled, a key rotated and revoked. Later modules add their acts here."""

from __future__ import annotations

from fusioncell.cell import CellHandle
from fusioncell.identity import service as identity_service
from fusioncell.record import signing

MEMBERS = [("IL", "il/liaison-1"), ("SY", "sy/liaison-1"), ("US", "us/supervisor-1")]


def play(cell: CellHandle) -> None:
    log = cell.log
    with log.transaction(cell.db) as session:
        for party, holder in MEMBERS:
            identity_service.enrol_key(session, log=log, party=party, holder=holder,
                                       public_key=signing.public_bytes(signing.generate()), custody="cell")
    # A rotation: a device key replaced by a new one, the old one revoked.
    old_public = signing.public_bytes(signing.generate())
    with log.transaction(cell.db) as session:
        identity_service.enrol_key(session, log=log, party="SY", holder="sy/liaison-2", public_key=old_public,
                                   custody="device")
        identity_service.enrol_key(session, log=log, party="SY", holder="sy/liaison-2",
                                   public_key=signing.public_bytes(signing.generate()), custody="device")
        identity_service.revoke_key(session, log=log, key_id=signing.key_id(old_public),
                                    reason="rotated to a new device key")
