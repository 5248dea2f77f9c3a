"""Projections are a function of the log: rebuilding them from the log gives the same state, byte for byte."""

from __future__ import annotations

from sqlalchemy import delete, update

from fusioncell.identity import service as identity_service
from fusioncell.identity.models import SigningKey
from fusioncell.record import signing
from fusioncell.record.rebuild import projection_digest, rebuild


def test_rebuilt_state_equals_live_state(cell, il_liaison, sy_liaison):
    il_liaison.append()
    with cell.log.transaction(cell.db) as session:
        identity_service.enrol_key(session, log=cell.log, party="US", holder="us/supervisor-2",
                                   public_key=signing.public_bytes(signing.generate()), custody="cell")
        identity_service.revoke_key(session, log=cell.log, key_id=sy_liaison.signer.key_id, reason="lost device")
    with cell.db.read() as session:
        live = projection_digest(session)
    with cell.db.write() as session:
        assert rebuild(session) == 6
    with cell.db.read() as session:
        assert projection_digest(session) == live


def test_rebuild_repairs_damaged_projections(cell, sy_liaison):
    with cell.db.read() as session:
        live = projection_digest(session)
    with cell.db.write() as session:
        session.execute(update(SigningKey).values(revoked_seq=None, holder="someone else"))
        session.execute(delete(SigningKey).where(SigningKey.party == "CELL"))
        assert projection_digest(session) != live
        rebuild(session)
    with cell.db.read() as session:
        assert projection_digest(session) == live


def test_the_log_keeps_working_after_a_rebuild(cell, il_liaison):
    with cell.db.write() as session:
        rebuild(session)
    cell.log.forget()
    assert il_liaison.append().seq == 2
