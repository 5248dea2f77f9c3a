"""Reads of the record through the access layer, device-signed submissions, proofs and cosignatures."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from fusioncell.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidSubmission,
    NotFound,
)
from fusioncell.identity.models import Cell, SigningKey
from fusioncell.identity.service import Viewer
from fusioncell.record import access
from fusioncell.record import kinds as kind_registry
from fusioncell.record.canonical import canonical
from fusioncell.record.format import tree_head
from fusioncell.record.models import Body, Cosignature, Entry, EntryAudience, TreeHead
from fusioncell.record.sequencer import Appended, Log
from fusioncell.record.signing import verify

MAX_PAGE = 1000
WRITER_ROLES = {"liaison", "supervisor", "admin"}


def view_of(appended: Appended, party: str) -> dict[str, Any]:
    """One entry as `party` may see it: the entry and body, or only seq and leaf hash."""
    if access.may_see(party, appended.submission["audience"]):
        return {"seq": appended.seq, "entry": json.loads(appended.leaf), "body": appended.body}
    return access.redacted(appended.seq, appended.leaf_hash)


def _released(viewer: Viewer) -> Any:
    """Entries with, where the viewer's party is in the audience, their body; the one query shape of the door."""
    released = EntryAudience.seq.is_not(None)
    return (select(Entry.seq, Entry.leaf_hash, released, Entry.leaf, Body.data)
            .outerjoin(EntryAudience, and_(EntryAudience.seq == Entry.seq, EntryAudience.party == viewer.party))
            .outerjoin(Body, and_(Body.seq == Entry.seq, released)))


def _views(rows: Any) -> list[dict[str, Any]]:
    return [{"seq": seq, "entry": json.loads(leaf), "body": json.loads(data)} if visible
            else access.redacted(seq, leaf_hash) for seq, leaf_hash, visible, leaf, data in rows]


def list_records(session: Session, *, viewer: Viewer, after: int, limit: int) -> list[dict[str, Any]]:
    """Every seq after `after`: released ones whole, the others as {seq, leaf_hash}. The body is joined only
    where the viewer's party is in the audience, so nothing else is even read."""
    if limit < 1 or limit > MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    return _views(session.execute(_released(viewer).where(Entry.seq > after).order_by(Entry.seq).limit(limit)))


def get_record(session: Session, *, viewer: Viewer, seq: int) -> dict[str, Any]:
    items = list_records(session, viewer=viewer, after=seq - 1, limit=1)
    if not items or items[0]["seq"] != seq:
        raise NotFound(f"no entry at seq {seq}")
    return items[0]


def latest_head(session: Session) -> dict[str, Any]:
    head = session.execute(select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).scalar_one_or_none()
    if head is None:
        raise NotFound("no signed tree head yet")
    return signed_head(session, head)


def signed_head(session: Session, head: TreeHead) -> dict[str, Any]:
    cell_id = session.execute(select(Cell.id)).scalar_one()
    cosigs = [{"party": c.party, "key": c.key_id, "sig": c.sig}
              for c in session.execute(select(Cosignature).where(Cosignature.size == head.size)
                                       .order_by(Cosignature.party, Cosignature.key_id)).scalars()]
    return {"tree_head": tree_head(cell=cell_id, size=head.size, root_hex=head.root.hex(), time=head.signed_at),
            "sig": head.sig, "cosignatures": cosigs}


def _head_of_size(session: Session, size: int) -> TreeHead:
    head = session.get(TreeHead, size)
    if head is None:
        latest = session.execute(select(func.max(TreeHead.size))).scalar_one()
        raise NotFound(f"no signed tree head of size {size}; the latest is of size {latest}")
    return head


def inclusion(session: Session, *, log: Log, viewer: Viewer, seq: int, size: int | None) -> dict[str, Any]:
    """Inclusion proof of entry seq in a signed tree head (the latest by default)."""
    del viewer  # leaf hashes and proofs are visible to every member
    head = _head_of_size(session, size) if size else session.execute(
        select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).scalar_one()
    if not 0 <= seq < head.size:
        raise NotFound(f"no entry at seq {seq} in the tree of size {head.size}")
    tree = log.tree(session)
    return {"seq": seq, "leaf_hash": tree.leaf(seq).hex(), "size": head.size,
            "proof": [h.hex() for h in tree.inclusion_proof(seq, head.size)], **signed_head(session, head)}


def consistency(session: Session, *, log: Log, first: int, second: int) -> dict[str, Any]:
    # Bounded by the latest signed head, not the in-memory tree: that may already hold a batch being committed.
    signed = session.execute(select(func.max(TreeHead.size))).scalar_one() or 0
    if not 1 <= first <= second <= signed:
        raise InvalidInput(f"need 1 <= first <= second <= {signed}, got first={first} second={second}")
    tree = log.tree(session)
    return {"first": first, "second": second, "proof": [h.hex() for h in tree.consistency_proof(first, second)]}


def add_cosignature(session: Session, *, viewer: Viewer, size: int, key_id: str, sig: str) -> dict[str, Any]:
    """A party's witness countersigns a tree head it checked; the cell publishes it beside the head."""
    if not viewer.can("witness"):
        raise Forbidden("this credential has no witness scope")
    head = _head_of_size(session, size)
    key = session.get(SigningKey, key_id)
    if key is None or key.purpose != "witness" or key.party != viewer.party or key.revoked_seq is not None:
        raise Forbidden(f"{key_id} is not an active witness key of {viewer.party}")
    signed = signed_head(session, head)
    if not verify(key.public_key, canonical(signed["tree_head"]), sig):
        raise InvalidInput("the cosignature does not verify over this tree head", code="bad_signature")
    existing = session.get(Cosignature, (size, viewer.party, key_id))
    if existing is None:
        session.add(Cosignature(size=size, party=viewer.party, key_id=key_id, sig=sig))
        session.flush()
    elif existing.sig != sig:
        raise Conflict("this witness key already countersigned this head")
    return signed_head(session, head)


def check_submitter(*, viewer: Viewer, submission: Any) -> None:
    """Before a device-signed submission is appended: it must be the caller's own, and their role must write."""
    if not viewer.can("write"):
        raise Forbidden("this credential has no write scope")
    if not isinstance(submission, dict):
        raise InvalidSubmission("submission must be a JSON object", code="bad_submission")
    if submission.get("author") != viewer.member or submission.get("party") != viewer.party:
        raise Forbidden(f"you may submit only your own entries (author {viewer.member} of {viewer.party})")
    if not WRITER_ROLES & set(viewer.roles):
        raise Forbidden("observers read; they do not write to the record")
    kind = submission.get("kind")
    if isinstance(kind, str) and kind.startswith("identity.") and not viewer.has_role("admin"):
        raise Forbidden("only an administrator of the party writes identity entries")
    kind_registry.get(kind) if isinstance(kind, str) else None


def recent_records(session: Session, *, viewer: Viewer, before: int | None, limit: int,
                   kind: str | None = None) -> list[dict[str, Any]]:
    """Newest first, for the explorer. With a kind filter only released entries can match, so the filter
    reveals nothing of the others."""
    if limit < 1 or limit > MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    query = _released(viewer).order_by(Entry.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(Entry.seq < before)
    if kind:
        query = query.where(EntryAudience.seq.is_not(None), Entry.kind == kind)
    return _views(session.execute(query))


def visible_kinds(session: Session, *, viewer: Viewer) -> list[str]:
    return list(session.execute(
        select(Entry.kind).join(EntryAudience, and_(EntryAudience.seq == Entry.seq,
                                                    EntryAudience.party == viewer.party))
        .distinct().order_by(Entry.kind)).scalars())


def entry_detail(session: Session, *, log: Log, viewer: Viewer, seq: int) -> dict[str, Any]:
    """An entry as the viewer may see it, with every check a reader would want done: the author's signature
    against the key registry, the inclusion proof against the latest signed tree head, the head's signature
    by the cell and the witnesses' cosignatures."""
    from fusioncell.record.merkle import verify_inclusion

    item = get_record(session, viewer=viewer, seq=seq)
    cell = session.execute(select(Cell)).scalar_one()
    head_row = session.execute(select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).scalar_one()
    head = signed_head(session, head_row)
    head_bytes = canonical(head["tree_head"])
    tree = log.tree(session)
    proof = tree.inclusion_proof(seq, head_row.size)
    leaf = tree.leaf(seq)
    detail: dict[str, Any] = {
        "item": item,
        "released": "entry" in item,
        "leaf_hash": leaf.hex(),
        "head": head,
        "head_ok": verify(cell.public_key, head_bytes, head["sig"]),
        "proof": [h.hex() for h in proof],
        "inclusion_ok": verify_inclusion(leaf, seq, head_row.size, proof, head_row.root),
        "cosignatures": [],
    }
    for cosig in head["cosignatures"]:
        key = session.get(SigningKey, cosig["key"])
        ok = key is not None and key.purpose == "witness" and verify(key.public_key, head_bytes, cosig["sig"])
        detail["cosignatures"].append({**cosig, "ok": ok})
    if detail["released"]:
        submission = item["entry"]["submission"]
        key = session.get(SigningKey, submission["key"])
        detail["signer"] = key
        detail["signature_ok"] = key is not None and verify(key.public_key, canonical(submission),
                                                            item["entry"]["sig"])
        detail["body_json"] = json.dumps(item["body"], ensure_ascii=False, indent=2, sort_keys=True)
        detail["submission_json"] = json.dumps(submission, ensure_ascii=False, indent=2, sort_keys=True)
    return detail
