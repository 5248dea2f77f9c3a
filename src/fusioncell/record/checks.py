"""The checks of a signed submission that need neither the database nor the body's schema: shape, cell, who may
author the kind, the body's canonical bytes and hash, and the author's signature.

Pure, and light to import (no SQLAlchemy, no Pydantic): `Log.prepare` runs it on the caller's thread, and the
intake's worker processes (record/checker.py) run the same function on their own cores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from fusioncell.errors import InvalidSubmission
from fusioncell.record.canonical import (
    canonical_stable,
    canonical_trusted,
    hash_hex,
    parse_canonical,
)
from fusioncell.record.format import CELL_PARTY, checked_submission_bytes
from fusioncell.record.signing import verify

# A kind as these checks see it: (the cell may author it, a party's member may author it).
Authors = tuple[bool, bool]


class Checked(NamedTuple):
    body: dict[str, Any]  # parsed back from body_bytes (or equal to it): projections see what a rebuild will see
    body_bytes: bytes  # JCS of the body
    sub_bytes: bytes  # JCS of the submission: the signed bytes
    sig_json: bytes  # the sig as a JSON string, spliced into the entry's bytes
    verified: bool  # the signature was checked against the public key given (none given: not checked)


def refuse(message: str, code: str) -> InvalidSubmission:
    return InvalidSubmission(message, code=code)


def unknown_kind(name: str) -> InvalidSubmission:
    return refuse(f"unknown kind {name!r}", "unknown_kind")


def check_signed(submission: Any, sig: Any, body: Any, *, cell_id: str | None, kinds: Mapping[str, Authors],
                 public_key: bytes | None, keep_body: bool = False) -> Checked:
    """Raise InvalidSubmission for the first rule broken, in the order the sequencer has always applied them.

    keep_body: where parsing the body's canonical bytes back would give the body itself (record.canonical.
    canonical_stable), the result holds the caller's body object rather than a copy. For callers that own it and
    change it no more (the intake's workers, whose body is a copy already)."""
    sub_bytes = checked_submission_bytes(submission)  # JCS bytes: the signed ones
    if not isinstance(sig, str):
        raise refuse("sig must be a base64url string", "bad_signature")
    if cell_id is not None and submission["cell"] != cell_id:
        raise refuse(f"submission is for cell {submission['cell']!r}, this is {cell_id!r}", "wrong_cell")
    name = submission["kind"]
    authors = kinds.get(name)
    if authors is None:
        raise unknown_kind(name)
    by_cell, by_party = authors
    if submission["party"] == CELL_PARTY and not by_cell:
        raise refuse(f"{name} is written by parties, not by the cell", "wrong_author")
    if submission["party"] != CELL_PARTY and not by_party:
        raise refuse(f"{name} is written by the cell only", "wrong_author")
    if not isinstance(body, dict):
        raise refuse("body must be a JSON object", "bad_body")
    try:
        body_bytes, stable = canonical_stable(body)
    except ValueError as exc:
        raise refuse(str(exc), "bad_body") from exc
    if hash_hex(body_bytes) != submission["body"]:
        raise refuse("body does not match the hash in the submission", "body_hash_mismatch")
    if public_key is not None and not verify(public_key, sub_bytes, sig):
        raise refuse(f"signature does not verify with key {submission['key']}", "bad_signature")
    return Checked(body if keep_body and stable else parse_canonical(body_bytes), body_bytes, sub_bytes,
                   canonical_trusted(sig), public_key is not None)
