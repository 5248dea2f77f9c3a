"""Export bundles (DESIGN.md §2): one party's view of the log, as JSON Lines, ending with a signed tree head."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.errors import NotFound
from fusioncell.identity.models import Cell, Party
from fusioncell.record import access
from fusioncell.record.canonical import b64e
from fusioncell.record.format import tree_head
from fusioncell.record.models import Body, Cosignature, Entry, TreeHead
from fusioncell.record.verify import EXPORT_FORMAT


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def write_bundle(session: Session, *, party: str, out: BinaryIO,
                 progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write party's view of the log up to the latest signed tree head; return that head."""
    cell = session.execute(select(Cell)).scalar_one()
    if session.get(Party, party) is None:
        known = ", ".join(session.execute(select(Party.id).order_by(Party.id)).scalars())
        raise NotFound(f"no party {party!r} in this cell; parties are {known}")
    head = session.execute(select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).scalar_one()
    out.write(_line({"format": EXPORT_FORMAT, "cell": cell.id, "party": party, "cell_key": b64e(cell.public_key)}))
    rows = session.execute(
        select(Entry.seq, Entry.leaf_hash, Entry.audience, Entry.leaf, Body.data)
        .outerjoin(Body, Body.seq == Entry.seq)
        .where(Entry.seq < head.size)
        .order_by(Entry.seq)
        .execution_options(yield_per=2000)
    )
    for count, (seq, leaf_hash, audience, leaf, data) in enumerate(rows, 1):
        if access.may_see(party, audience):
            # Bytes are spliced, not re-encoded: the stored canonical bytes are what was signed and hashed.
            out.write(b'{"entry":' + leaf + b',"body":' + data + b"}\n")
        else:
            out.write(_line(access.redacted(seq, leaf_hash)))
        if progress and count % 1000 == 0:
            progress(1000)
    cosigs = [
        {"party": c.party, "key": c.key_id, "sig": c.sig}
        for c in session.execute(select(Cosignature).where(Cosignature.size == head.size)).scalars()
    ]
    signed = tree_head(cell=cell.id, size=head.size, root_hex=head.root.hex(), time=head.signed_at)
    out.write(_line({"tree_head": signed, "sig": head.sig, "cosignatures": cosigs}))
    return signed


def export_to_file(session: Session, *, party: str, path: Path,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as out:
        head = write_bundle(session, party=party, out=out, progress=progress)
    tmp.replace(path)
    return head
