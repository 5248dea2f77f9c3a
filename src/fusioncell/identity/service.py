"""Identity use cases: create the cell (genesis), enrol and revoke keys. Services flush, never commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.config import CellConfig
from fusioncell.errors import NotFound
from fusioncell.identity.models import Party, SigningKey
from fusioncell.record.canonical import b64e
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


def list_keys(session: Session) -> list[SigningKey]:
    return list(session.execute(select(SigningKey).order_by(SigningKey.added_seq)).scalars())


def list_parties(session: Session) -> list[Party]:
    return list(session.execute(select(Party).order_by(Party.id)).scalars())


def access_party(session: Session, *, party_id: str) -> Party:
    party = session.get(Party, party_id)
    if party is None:
        known = ", ".join(p.id for p in list_parties(session))
        raise NotFound(f"no party {party_id!r} in this cell; parties are {known}")
    return party
