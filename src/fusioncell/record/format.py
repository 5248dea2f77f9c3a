"""The record format v1 (DESIGN.md §2): submissions, entries and tree heads as plain dicts, and their checks.

Pure: no database. Checks raise InvalidSubmission with the code of the rule broken."""

from __future__ import annotations

import os
import re
from typing import Any

from fusioncell.clock import is_record_time
from fusioncell.errors import InvalidSubmission
from fusioncell.record.canonical import canonical, canonical_trusted, hash_hex
from fusioncell.record.signing import SigningKey, key_id, public_bytes, sign

VERSION = 1
CELL_PARTY = "CELL"
SUBMISSION_FIELDS = ("audience", "author", "body", "cell", "created", "key", "kind", "nonce", "party", "refs", "v")
_FIELDS = frozenset(SUBMISSION_FIELDS)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}")


def new_nonce() -> str:
    return os.urandom(16).hex()


def body_hash(body: dict[str, Any]) -> str:
    return hash_hex(canonical(body))


def make_submission(
    *,
    cell: str,
    kind: str,
    party: str,
    author: str,
    key: str,
    audience: list[str],
    body: dict[str, Any],
    created: str,
    refs: list[str] | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "cell": cell,
        "kind": kind,
        "party": party,
        "author": author,
        "key": key,
        "audience": sorted(set(audience)),
        "refs": list(refs or []),
        "body": body_hash(body),
        "nonce": nonce or new_nonce(),
        "created": created,
    }


def sign_submission(submission: dict[str, Any], signing_key: SigningKey) -> str:
    return sign(signing_key, canonical(submission))


def check_submission_shape(sub: Any) -> None:
    """Field names and types of format v1; semantic checks (keys, audience, kinds) are the sequencer's."""

    def bad(message: str) -> InvalidSubmission:
        return InvalidSubmission(message, code="bad_submission")

    if not isinstance(sub, dict):
        raise bad("a submission is a JSON object")
    if sub.keys() != _FIELDS:
        fields = set(sub)
        missing = sorted(_FIELDS - fields)
        unknown = sorted(fields - _FIELDS)
        raise bad(f"submission fields wrong: missing {missing}, unknown {unknown}")
    if sub["v"] != VERSION or type(sub["v"]) is not int:
        raise bad(f"unsupported format version {sub['v']!r}; this cell speaks v{VERSION}")
    for name in ("cell", "kind", "party", "author"):
        if not isinstance(sub[name], str) or not _NAME.fullmatch(sub[name]):
            raise bad(f"{name} must be a short name of letters, digits and _.:/-, got {sub[name]!r}")
    if not isinstance(sub["key"], str) or not _HEX16.fullmatch(sub["key"]):
        raise bad("key must be 16 lower-case hex characters (the key id)")
    if not isinstance(sub["body"], str) or not _HEX64.fullmatch(sub["body"]):
        raise bad("body must be the lower-case hex SHA-256 of the canonical body")
    if not isinstance(sub["nonce"], str) or not _HEX32.fullmatch(sub["nonce"]):
        raise bad("nonce must be 32 lower-case hex characters, random")
    if not isinstance(sub["created"], str) or not is_record_time(sub["created"]):
        raise bad("created must be UTC with milliseconds, e.g. 2026-11-22T10:00:00.123Z")
    audience = sub["audience"]
    if not isinstance(audience, list) or not audience or not all(isinstance(p, str) for p in audience):
        raise InvalidSubmission("audience must be a non-empty list of party ids", code="bad_audience")
    if audience != sorted(set(audience)):
        raise InvalidSubmission("audience must be sorted and without repeats", code="bad_audience")
    refs = sub["refs"]
    if not isinstance(refs, list) or not all(isinstance(r, str) and _HEX64.fullmatch(r) for r in refs):
        raise bad("refs must be a list of leaf hashes (64 lower-case hex characters)")


# The JCS bytes of a submission whose shape check_submission_shape accepts, in the common case: party ids in the
# audience that are short names, every string one that JSON writes without escapes. Bytes, so [0-9] and the
# other classes are ASCII only.
_Q_NAME = rb'"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}"'
_Q_HEX64 = rb'"[0-9a-f]{64}"'
_COMMON_SHAPE = re.compile(
    rb'\{"audience":\[' + _Q_NAME + rb'(?:,' + _Q_NAME + rb')*\],"author":' + _Q_NAME
    + rb',"body":' + _Q_HEX64 + rb',"cell":' + _Q_NAME
    + rb',"created":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z","key":"[0-9a-f]{16}"'
    + rb',"kind":' + _Q_NAME + rb',"nonce":"[0-9a-f]{32}","party":' + _Q_NAME
    + rb',"refs":\[(?:' + _Q_HEX64 + rb'(?:,' + _Q_HEX64 + rb')*)?\],"v":1\}'
)


def checked_submission_bytes(sub: Any) -> bytes:
    """check_submission_shape(sub), then the JCS bytes of sub: the same verdict and the same error.

    Where one pattern over the encoded bytes shows the shape (the common case), that replaces the check of each
    field: a third of the cost. What the bytes cannot show is checked on the values: that v is an int and not
    a subclass, that audience and refs are lists and not tuples (JSON writes both alike; a tuple audience is
    never equal to the sorted list), that the audience is sorted without repeats, that created is a real date.
    Anything else goes through check_submission_shape."""
    data = b""
    if isinstance(sub, dict):
        try:
            data = canonical_trusted(sub)
        except (TypeError, ValueError, RecursionError):  # not JSON as the shape allows it: the full check says why
            pass
        if _COMMON_SHAPE.fullmatch(data):
            audience = sub["audience"]
            if (type(sub["v"]) is int and isinstance(sub["refs"], list) and audience == sorted(set(audience))
                    and is_record_time(sub["created"])):
                return data
    check_submission_shape(sub)
    return data or canonical_trusted(sub)  # encoded above, unless the encoding failed (the check then raised)


def make_entry(*, seq: int, time: str, submission: dict[str, Any], sig: str) -> dict[str, Any]:
    return {"seq": seq, "time": time, "submission": submission, "sig": sig}


def entry_bytes(*, seq: int, time: str, submission_bytes: bytes, sig: str) -> bytes:
    """JCS(make_entry(...)) from the submission's JCS bytes, without walking the submission again.

    JCS is compositional: an object is its members sorted by key ("seq" < "sig" < "submission" < "time"), each
    value in its own canonical form, so splicing gives the same bytes, and the entry holds exactly the bytes
    that were signed."""
    if type(seq) is not int:
        raise TypeError("seq must be an int")
    return b"".join((b'{"seq":', str(seq).encode(), b',"sig":', canonical(sig), b',"submission":',
                     submission_bytes, b',"time":', canonical(time), b"}"))


def tree_head(*, cell: str, size: int, root_hex: str, time: str) -> dict[str, Any]:
    return {"cell": cell, "size": size, "root": root_hex, "time": time}


class Signer:
    """Signs submissions for one author with one key: what a device, the CLI or the cell itself holds."""

    def __init__(self, *, cell: str, party: str, author: str, key: SigningKey) -> None:
        self.cell = cell
        self.party = party
        self.author = author
        self.key = key
        self.key_id = key_id(public_bytes(key))

    def submit(
        self,
        *,
        kind: str,
        body: dict[str, Any],
        audience: list[str],
        created: str,
        refs: list[str] | None = None,
    ) -> tuple[dict[str, Any], str]:
        submission = make_submission(
            cell=self.cell,
            kind=kind,
            party=self.party,
            author=self.author,
            key=self.key_id,
            audience=audience,
            body=body,
            created=created,
            refs=refs,
        )
        return submission, sign_submission(submission, self.key)
