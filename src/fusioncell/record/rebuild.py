"""Rebuild the projection tables from the log, and a digest over them to compare states."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fusioncell.db import projection_tables
from fusioncell.record import kinds as kind_registry
from fusioncell.record.models import Body, Entry
from fusioncell.record.sequencer import Appended


def rebuild(session: Session, *, progress: Callable[[int], None] | None = None) -> int:
    """Empty every projection table and replay every entry through its kind; returns entries replayed."""
    kind_registry.load_all()
    for table in reversed(projection_tables()):
        session.execute(delete(table))
    rows = session.execute(
        select(Entry.seq, Entry.leaf, Entry.leaf_hash, Body.data).join(Body, Body.seq == Entry.seq)
        .order_by(Entry.seq).execution_options(yield_per=2000)
    )
    count = 0
    for seq, leaf, leaf_hash, data in rows:
        entry = json.loads(leaf)
        body = json.loads(data)
        kind = kind_registry.get(entry["submission"]["kind"])
        if kind.apply is not None:
            appended = Appended(seq, entry["time"], leaf_hash, entry["submission"], entry["sig"], body, leaf)
            kind.apply(session, appended, kind.parse_body(body))
        count += 1
        if progress and count % 1000 == 0:
            progress(1000)
    session.flush()
    return count


def projection_digest(session: Session) -> str:
    """SHA-256 over every projection table's rows in primary-key order: equal digests, equal state."""
    digest = hashlib.sha256()
    for table in sorted(projection_tables(), key=lambda t: t.name):
        digest.update(table.name.encode() + b"\x00")
        for row in session.execute(select(table).order_by(*table.primary_key.columns)):
            values = [v.hex() if isinstance(v, bytes) else v for v in row]
            digest.update(json.dumps(values, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()
