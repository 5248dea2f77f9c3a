"""Offline verification of a log (a database) or an export bundle.

Checks, and on failure names the first bad seq and why: entries are canonical JSON with dense seq; each
author signature verifies with a key the registry held at that seq (a revoked key signs nothing after its
revocation); each body matches its hash; the Merkle root matches every signed tree head, and each head's
signature and the witnesses' cosignatures verify with the cell's and witnesses' keys.

The per-entry work (parsing, canonical form, Ed25519, hashing) runs in worker processes over ranges of the
source; the registry replay and the tree are sequential and cheap.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusioncell.clock import is_record_time
from fusioncell.errors import InvalidSubmission, VerificationFailed
from fusioncell.record.canonical import b64d, canonical, canonical_trusted, hash_hex
from fusioncell.record.format import check_submission_shape, tree_head
from fusioncell.record.merkle import HASH_SIZE, MerkleTree, leaf_hash
from fusioncell.record.registry import (
    GENESIS,
    IDENTITY_KINDS,
    Registry,
    SignerRefused,
)
from fusioncell.record.signing import key_id as compute_key_id
from fusioncell.record.signing import verify as verify_sig

EXPORT_FORMAT = "fusioncell-export/1"
CHUNK = 5000
PARALLEL_FROM = 20000


@dataclass(slots=True)  # not frozen: a frozen dataclass costs three times as much to build, once per entry
class Item:
    """One seq of a log or bundle: the entry bytes and body bytes where released, else the leaf hash."""

    seq: int
    leaf: bytes | None
    body: bytes | None
    leaf_hash: bytes | None = None


@dataclass(slots=True)
class Checked:
    seq: int
    leaf_hash: bytes
    error: str | None = None
    submission: dict[str, Any] | None = None
    time: str | None = None
    body: dict[str, Any] | None = None  # kept only for identity entries


@dataclass
class Head:
    size: int
    root: bytes
    time: str
    sig: str
    cosignatures: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Report:
    size: int = 0
    root: str = ""
    entries: int = 0
    bodies: int = 0
    redacted: int = 0
    heads: int = 0
    cosignatures: int = 0


# The form every sequencer writes (format.entry_bytes over JCS of a submission that passed the shape check), when
# every string is plain printable ASCII: one match checks the entry's structure, its canonical form and the
# submission's shape at once. Whatever it accepts, the general checks (`_parse_general`) accept with the same values
# (tests/record/test_verify_fast.py holds the two equal); whatever it does not, they decide, with their messages.
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}"  # format._NAME
_HEX64 = r"[0-9a-f]{64}"
_FAST_ENTRY = re.compile(
    r'\{"seq":(0|[1-9][0-9]*),"sig":"([A-Za-z0-9_-]{86})","submission":'
    r'(\{"audience":\["([A-Za-z0-9_.:/-]+(?:","[A-Za-z0-9_.:/-]+)*)"\],"author":"(' + _NAME + r')",'
    r'"body":"(' + _HEX64 + r')","cell":"(' + _NAME + r')",'
    r'"created":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)","key":"([0-9a-f]{16})",'
    r'"kind":"(' + _NAME + r')","nonce":"([0-9a-f]{32})","party":"(' + _NAME + r')",'
    r'"refs":\[((?:"' + _HEX64 + r'")(?:,"' + _HEX64 + r'")*)?\],"v":1\}),'
    r'"time":"([ !#-\[\]-~]*)"\}'
)

Parsed = tuple[dict[str, Any], str, str, bytes]  # submission, sig, time, the submission's JCS bytes


def _parse_fast(leaf: bytes, seq: int) -> Parsed | None:
    """The entry at seq if its leaf is in the plain form (see _FAST_ENTRY) and valid; None to leave it to
    `_parse_general`. Never accepts what `_parse_general` refuses."""
    try:
        text = leaf.decode("ascii")
    except UnicodeDecodeError:
        return None
    match = _FAST_ENTRY.fullmatch(text)
    if match is None:
        return None
    seq_text, sig, _, audience_text, author, body, cell, created, key, kind, nonce, party, refs_text, time = (
        match.groups()
    )
    if seq_text != str(seq) or not is_record_time(created):
        return None
    audience = audience_text.split('","')
    if audience != sorted(set(audience)):
        return None
    refs = refs_text[1:-1].split('","') if refs_text else []
    sub = {"audience": audience, "author": author, "body": body, "cell": cell, "created": created, "key": key,
           "kind": kind, "nonce": nonce, "party": party, "refs": refs, "v": 1}
    # ASCII text: character offsets are byte offsets.
    return sub, sig, time, leaf[match.start(3):match.end(3)]


def _parse_general(leaf: bytes, seq: int) -> Parsed | str:
    """The entry at seq, or why it is not a valid one: JSON, fields, submission shape, canonical form, seq."""
    try:
        entry = json.loads(leaf)
    except ValueError:
        return "entry is not valid JSON"
    if not isinstance(entry, dict) or set(entry) != {"seq", "time", "submission", "sig"}:
        return "entry must have exactly seq, time, submission, sig"
    sub = entry["submission"]
    try:
        check_submission_shape(sub)
    except InvalidSubmission as exc:
        return f"submission malformed: {exc.message}"
    if type(entry["seq"]) is not int or not isinstance(entry["time"], str) or not isinstance(entry["sig"], str):
        return "entry fields have the wrong types"
    # With the shape checked (strings, lists of strings, small integers), the standard encoder gives exactly
    # the JCS bytes, so no walk of the value is needed; the submission's bytes are then a slice of the entry's.
    if canonical_trusted(entry) != leaf:
        return "entry is not in canonical (RFC 8785) form"
    if entry["seq"] != seq:
        return f"entry says seq {entry['seq']!r} where seq {seq} belongs"
    start = leaf.index(b',"submission":') + len(b',"submission":')
    return sub, entry["sig"], entry["time"], leaf[start:leaf.rindex(b',"time":')]


def check_item(item: Item, keys: dict[str, bytes]) -> Checked:
    """Everything about one entry that needs no other entry."""
    if item.leaf is None:
        if item.leaf_hash is None:
            return Checked(item.seq, b"", "no entry at this seq (removed?)")
        if len(item.leaf_hash) != 32:
            return Checked(item.seq, b"", "redacted entry without a valid leaf hash")
        return Checked(item.seq, item.leaf_hash)
    hashed = leaf_hash(item.leaf)
    parsed = _parse_fast(item.leaf, item.seq)
    if parsed is None:
        parsed = _parse_general(item.leaf, item.seq)
        if isinstance(parsed, str):
            return Checked(item.seq, hashed, parsed)
    sub, sig, time, sub_bytes = parsed
    public = keys.get(sub["key"])
    if public is None:
        return Checked(item.seq, hashed, f"signed with key {sub['key']}, which is not enrolled in this log")
    if len(public) != 32:  # only a forged enrolment can hold one (the sequencer's schema refuses it)
        return Checked(item.seq, hashed, f"signed with key {sub['key']}, enrolled as {len(public)} bytes: an "
                                         "Ed25519 public key is 32")
    if not verify_sig(public, sub_bytes, sig):
        return Checked(item.seq, hashed, f"author signature does not verify with key {sub['key']}")
    body = None
    if item.body is not None:
        if hash_hex(item.body) != sub["body"]:
            return Checked(item.seq, hashed, "body does not match the hash in the signed submission")
        if sub["kind"] in IDENTITY_KINDS:
            body = json.loads(item.body)
    elif sub["kind"] in IDENTITY_KINDS:
        return Checked(item.seq, hashed, f"{sub['kind']} body is missing: identity entries go to every party")
    return Checked(item.seq, hashed, None, sub, time, body)


class Source:
    """A log to verify: items by seq range (picklable, so workers read their own range)."""

    def count(self) -> int:
        raise NotImplementedError

    def items(self, start: int, stop: int) -> Iterator[Item]:
        raise NotImplementedError

    def identity_items(self) -> Iterator[Item]:
        """Entries that may enrol keys (a superset is fine: each is checked again in order)."""
        raise NotImplementedError

    def heads(self) -> list[Head]:
        raise NotImplementedError

    def cell_key(self) -> bytes | None:
        """The cell key the verifier is told to trust, if the source carries one (bundles do)."""
        return None


_DATABASES: dict[tuple[int, str], Any] = {}


class DatabaseSource(Source):
    def __init__(self, url: str) -> None:
        self.url = url
        self._db = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "_db": None}

    @property
    def db(self):
        if self._db is None:
            # One Database per process and URL: a worker gets a fresh copy of the source for every range.
            key = (os.getpid(), self.url)
            found = _DATABASES.get(key)
            if found is None:
                from fusioncell.db import Database

                found = _DATABASES[key] = Database(self.url)
            self._db = found
        return self._db

    def count(self) -> int:
        from sqlalchemy import func, select

        from fusioncell.record.models import Entry

        # max + 1, not count: a deleted entry must show as a hole, not shorten the log.
        with self.db.read() as session:
            return session.execute(select(func.coalesce(func.max(Entry.seq) + 1, 0))).scalar_one()

    def _select(self, where: Any) -> Iterator[tuple[int, bytes, bytes | None]]:
        from sqlalchemy import select

        from fusioncell.record.models import Body, Entry

        with self.db.read() as session:
            # Core rows, not ORM ones (a third of the cost per row), fetched in one call.
            yield from session.connection().execute(
                select(Entry.seq, Entry.leaf, Body.data).outerjoin(Body, Body.seq == Entry.seq).where(where)
                .order_by(Entry.seq)
            ).all()

    def items(self, start: int, stop: int) -> Iterator[Item]:
        from fusioncell.record.models import Entry

        expected = start
        for seq, leaf, data in self._select((Entry.seq >= start) & (Entry.seq < stop)):  # in seq order, no repeats
            while expected < seq:
                yield Item(expected, None, None)
                expected += 1
            # Every entry in the database has its body; a missing one fails the body hash check.
            yield Item(seq, leaf, data if data is not None else b"")
            expected = seq + 1
        for seq in range(expected, stop):
            yield Item(seq, None, None)

    def identity_items(self) -> Iterator[Item]:
        from sqlalchemy import or_

        from fusioncell.record.models import Entry

        # Not trusting the kind column: a key found here is only a candidate, checked again in order.
        for seq, leaf, data in self._select(or_(Entry.kind.in_(sorted(IDENTITY_KINDS)), Entry.seq == 0)):
            yield Item(seq, leaf, data)

    def heads(self) -> list[Head]:
        from sqlalchemy import select

        from fusioncell.record.models import Cosignature, TreeHead

        with self.db.read() as session:
            cosigs: dict[int, list[dict[str, str]]] = {}
            for c in session.execute(select(Cosignature)).scalars():
                cosigs.setdefault(c.size, []).append({"party": c.party, "key": c.key_id, "sig": c.sig})
            return [
                Head(h.size, h.root, h.signed_at, h.sig, cosigs.get(h.size, []))
                for h in session.execute(select(TreeHead).order_by(TreeHead.size)).scalars()
            ]


class BundleSource(Source):
    """An export bundle (JSON Lines, DESIGN.md §2). Line offsets are indexed once, so workers seek."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: list[int] = []
        self.header: dict[str, Any] = {}
        self.trailer: dict[str, Any] = {}
        with path.open("rb") as handle:
            first = handle.readline()
            try:
                self.header = json.loads(first)
            except ValueError as exc:
                raise VerificationFailed("line 1 of the bundle is not JSON", reason="bad_header") from exc
            if not isinstance(self.header, dict) or self.header.get("format") != EXPORT_FORMAT:
                raise VerificationFailed(f"not a {EXPORT_FORMAT} bundle (line 1)", reason="bad_header")
            position = handle.tell()
            last = b""
            for line in handle:
                self.offsets.append(position)
                position += len(line)
                last = line
        if not self.offsets:
            raise VerificationFailed("bundle has no tree head line", reason="truncated")
        self.offsets.pop()
        try:
            self.trailer = json.loads(last)
        except ValueError as exc:
            raise VerificationFailed("last line of the bundle is not JSON", reason="bad_tree_head") from exc
        if not isinstance(self.trailer, dict) or "tree_head" not in self.trailer:
            raise VerificationFailed("bundle ends without its tree head line (truncated?)", reason="truncated")

    def count(self) -> int:
        return len(self.offsets)

    def _parse(self, position: int, line: bytes) -> Item:
        try:
            record = json.loads(line)
            if "entry" in record:
                leaf = canonical(record["entry"])
                body = canonical(record["body"]) if record.get("body") is not None else None
                return Item(position, leaf, body)
            return Item(position, None, None, bytes.fromhex(record["leaf_hash"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return Item(position, b"\x00not json", None)

    def items(self, start: int, stop: int) -> Iterator[Item]:
        with self.path.open("rb") as handle:
            if start < len(self.offsets):
                handle.seek(self.offsets[start])
            for position in range(start, min(stop, len(self.offsets))):
                yield self._parse(position, handle.readline())

    def identity_items(self) -> Iterator[Item]:
        with self.path.open("rb") as handle:
            handle.readline()
            for position in range(len(self.offsets)):
                line = handle.readline()
                if position == 0 or b'"identity.' in line or b'"cell.genesis"' in line:
                    yield self._parse(position, line)

    def heads(self) -> list[Head]:
        head = self.trailer.get("tree_head") or {}
        try:
            return [
                Head(int(head["size"]), bytes.fromhex(head["root"]), head["time"], self.trailer["sig"],
                     list(self.trailer.get("cosignatures", [])))
            ]
        except (KeyError, ValueError, TypeError) as exc:
            raise VerificationFailed("tree head line is malformed", reason="bad_tree_head") from exc

    def cell_key(self) -> bytes | None:
        try:
            return b64d(self.header["cell_key"])
        except (KeyError, ValueError) as exc:
            raise VerificationFailed("bundle header has no valid cell_key", reason="bad_header") from exc


@dataclass
class Chunk:
    """What a worker sends back for a range of seqs: compact, so the parent's share stays small."""

    start: int
    stop: int  # the entries checked are start..stop-1 (stop is where the first error is, if any)
    hashes: bytes  # their leaf hashes, concatenated
    identity: list[Checked]  # identity entries (and the genesis), for the parent's replay in order
    error: tuple[int, str, str] | None = None  # (seq, message, reason) of the first bad entry
    first: tuple[int, str] | None = None  # (seq, time) of the first entry with a time, for the order across
    last_time: str = ""
    entries: int = 0
    bodies: int = 0
    redacted: int = 0


def _check_chunk(source: Source, start: int, stop: int, timeline: Timeline | None) -> Chunk:
    """Check start..stop-1 on their own, and every entry that is not an identity entry against the key timeline
    too (see `Timeline`). Stops at the first bad entry."""
    keys = {} if timeline is None else {k: info.public_key for k, info in timeline.registry.keys.items()}
    hashes: list[bytes] = []
    identity: list[Checked] = []
    chunk = Chunk(start, stop, b"", identity)
    last_time = ""
    for item in source.items(start, stop):
        seq = item.seq
        checked = check_item(item, keys)
        error, reason = checked.error, checked.error or ""
        sub = checked.submission
        if error is None and sub is not None:
            time = checked.time or ""
            if (time != last_time or not time) and not is_record_time(time):  # once per millisecond
                error, reason = f"entry time {time!r} is not UTC with milliseconds", "time"
            elif time < last_time:
                error, reason = "entry time goes back before the previous entry", "time"
            elif sub["kind"] in IDENTITY_KINDS or seq == 0:
                identity.append(checked)
            elif timeline is None:
                error, reason = "entry 0 (the genesis) is not in this view", "no_genesis"
            else:
                registry = timeline.registry
                try:
                    if sub["cell"] != registry.cell_id:
                        raise SignerRefused(f"entry belongs to cell {sub['cell']!r}", "wrong_cell")
                    registry.signer(seq, sub)
                    registry.check_audience(sub, full=False)  # remembers the audiences it found good
                except SignerRefused as exc:
                    error, reason = str(exc), exc.code
            if error is None:
                if chunk.first is None:
                    chunk.first = (seq, time)
                last_time = time
                chunk.entries += 1
                if checked.body is not None or sub["kind"] not in IDENTITY_KINDS:
                    chunk.bodies += 1
        if error is not None:
            chunk.error, chunk.stop = (seq, error, reason), seq
            break
        if sub is None:
            chunk.redacted += 1
        hashes.append(checked.leaf_hash)
    chunk.hashes = b"".join(hashes)
    chunk.last_time = last_time
    return chunk


@dataclass
class Timeline:
    """The key registry with every candidate identity entry applied in seq order, as far as they apply.

    An entry's registry checks then need no other entry, so workers do them: a key added at seq a and revoked at
    seq r signs exactly the entries a < seq <= r, whatever comes later, and the parties never change after the
    genesis. That holds as far as the candidates are the log's identity entries and each is valid; the parent
    replays the real ones in order and stops at the first that is not valid or that the timeline lacks, before
    any entry after it counts."""

    registry: Registry
    seqs: set[int]


def _timeline(source: Source) -> Timeline | None:
    timeline: Timeline | None = None
    for item in source.identity_items():
        if item.leaf is None or item.body is None:
            continue
        try:
            sub = json.loads(item.leaf)["submission"]
            body = json.loads(item.body)
            if item.seq == 0:
                if sub["kind"] != GENESIS:
                    return None
                timeline = Timeline(Registry.from_genesis(body), {0})
                continue
            if timeline is None or sub["kind"] not in IDENTITY_KINDS:
                continue
            registry = timeline.registry
            registry.signer(item.seq, sub)
            registry.check_identity(sub, body)
            registry.apply(item.seq, sub["kind"], body)
            timeline.seqs.add(item.seq)
        except (SignerRefused, ValueError, KeyError, TypeError, AttributeError):
            break  # the replay in order fails here too; later candidates do not matter
    return timeline


def _chunks(source: Source, total: int, timeline: Timeline | None, workers: int) -> Iterator[Chunk]:
    ranges = [(start, min(start + CHUNK, total)) for start in range(0, total, CHUNK)]
    if workers <= 1 or total < PARALLEL_FROM:
        for start, stop in ranges:
            chunk = _check_chunk(source, start, stop, timeline)
            yield chunk
            if chunk.error:
                return
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_check_chunk, source, start, stop, timeline) for start, stop in ranges]
        try:
            for future in futures:
                chunk = future.result()
                yield chunk
                if chunk.error:
                    return
        finally:
            for future in futures:
                future.cancel()


def verify_source(
    source: Source, *, trusted_cell_key: bytes | None = None, workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify a whole log or bundle; raise VerificationFailed naming the first bad seq."""
    total = source.count()
    if total == 0:
        raise VerificationFailed("the log is empty: no genesis entry", seq=0, reason="empty")
    timeline = _timeline(source)
    workers = workers or min(os.cpu_count() or 1, 4)
    tree = MerkleTree()
    registry: Registry | None = None
    report = Report()
    last_time = ""
    heads = sorted(source.heads(), key=lambda h: h.size)
    if not heads:
        raise VerificationFailed("no signed tree head covers the log", seq=0, reason="no_tree_head")
    pending = iter(heads)
    next_head: Head | None = next(pending)
    checked_up_to = 0
    for chunk in _chunks(source, total, timeline, workers):
        error = chunk.error
        if chunk.first is not None and chunk.first[1] < last_time and (error is None or chunk.first[0] < error[0]):
            error = (chunk.first[0], "entry time goes back before the previous entry", "time")
        stop = chunk.stop if error is None else error[0]
        identity = iter(chunk.identity)
        nxt = next(identity, None)
        # The range's events in seq order: identity entries replayed, each head checked when the tree reaches it.
        position = chunk.start
        while True:
            upto = stop if nxt is None or nxt.seq >= stop else nxt.seq
            while next_head is not None and next_head.size <= upto:
                if next_head.size > position:
                    _extend(tree, chunk, position, next_head.size)
                    position = next_head.size
                if registry is None:
                    raise VerificationFailed("entry 0 (the genesis) is not in this view", seq=0, reason="no_genesis")
                _check_head(next_head, tree, registry, report, checked_up_to)
                checked_up_to = next_head.size
                next_head = next(pending, None)
            if nxt is None or nxt.seq >= stop:
                break
            registry = _check_identity(nxt, registry, timeline, trusted_cell_key)
            nxt = next(identity, None)
        if error is not None:
            raise VerificationFailed(error[1], seq=error[0], reason=error[2])
        _extend(tree, chunk, position, chunk.stop)
        if chunk.first is not None:
            last_time = chunk.last_time
        report.entries += chunk.entries
        report.bodies += chunk.bodies
        report.redacted += chunk.redacted
        if progress:
            progress(chunk.stop - chunk.start)
    assert registry is not None
    if next_head is not None:
        raise VerificationFailed(
            f"the log ends at seq {tree.size - 1} but a tree head of size {next_head.size} was signed "
            "(entries were removed)", seq=tree.size, reason="truncated",
        )
    if heads[-1].size != tree.size:
        raise VerificationFailed(
            f"entries from seq {heads[-1].size} on are not covered by any signed tree head",
            seq=heads[-1].size, reason="unsealed",
        )
    report.size = tree.size
    report.root = tree.root().hex()
    return report


def _extend(tree: MerkleTree, chunk: Chunk, start: int, stop: int) -> None:
    """Add the chunk's leaf hashes of seqs start..stop-1 (the tree holds everything before start)."""
    data = chunk.hashes
    offset = (start - chunk.start) * HASH_SIZE
    tree.extend([data[i:i + HASH_SIZE] for i in range(offset, offset + (stop - start) * HASH_SIZE, HASH_SIZE)])


def _check_identity(checked: Checked, registry: Registry | None, timeline: Timeline | None,
                    trusted_cell_key: bytes | None) -> Registry:
    """The genesis and the identity entries, replayed in order: the registry as of each seq."""
    seq, sub = checked.seq, checked.submission
    assert sub is not None
    if seq == 0:
        if sub["kind"] != GENESIS or checked.body is None:
            raise VerificationFailed("entry 0 is not the cell genesis", seq=0, reason="no_genesis")
        registry = Registry.from_genesis(checked.body)
        if trusted_cell_key is not None and compute_key_id(trusted_cell_key) != registry.cell_key_id:
            raise VerificationFailed("genesis names another cell key than the one trusted", seq=0,
                                     reason="wrong_cell_key")
    if registry is None:
        raise VerificationFailed("entry 0 (the genesis) is not in this view", seq=0, reason="no_genesis")
    if sub["cell"] != registry.cell_id:
        raise VerificationFailed(f"entry belongs to cell {sub['cell']!r}", seq=seq, reason="wrong_cell")
    try:
        signer = registry.signer(seq, sub)
        used = timeline.registry.keys.get(sub["key"]) if timeline is not None else None
        if used is None or signer.public_key != used.public_key:
            raise SignerRefused(f"key {sub['key']} is not the one enrolled", "unknown_key")
        registry.check_audience(sub, full=sub["kind"] in IDENTITY_KINDS)
        if sub["kind"] in IDENTITY_KINDS and seq != 0:
            registry.check_identity(sub, checked.body or {})
    except SignerRefused as exc:
        raise VerificationFailed(str(exc), seq=seq, reason=exc.code) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed(f"identity body malformed: {exc}", seq=seq, reason="bad_body") from exc
    if seq != 0:
        registry.apply(seq, sub["kind"], checked.body or {})
    # Workers checked every other entry against the timeline, so it must hold this entry as the replay does:
    # an identity entry the candidates missed (an altered kind column) cannot pass unnoticed.
    assert timeline is not None
    if seq not in timeline.seqs:
        raise VerificationFailed(f"identity entry at seq {seq} is not indexed as one (altered kind column?)",
                                 seq=seq, reason="identity_index")
    return registry


def _check_head(head: Head, tree: MerkleTree, registry: Registry, report: Report, good_up_to: int) -> None:
    cell_public = registry.keys[registry.cell_key_id].public_key
    signed = tree_head(cell=registry.cell_id, size=head.size, root_hex=head.root.hex(), time=head.time)
    if not verify_sig(cell_public, canonical(signed), head.sig):
        raise VerificationFailed(f"tree head of size {head.size} is not signed by the cell key",
                                 seq=head.size - 1, reason="bad_tree_head")
    if tree.root(head.size) != head.root:
        where = f"seq {good_up_to}" if good_up_to == head.size - 1 else f"seq {good_up_to}..{head.size - 1}"
        raise VerificationFailed(
            f"root of the first {head.size} entries does not match the signed tree head: "
            f"an entry in {where} was changed", seq=good_up_to, reason="root_mismatch",
        )
    for cosig in head.cosignatures:
        info = registry.keys.get(cosig.get("key", ""))
        if info is None or info.purpose != "witness" or info.party != cosig.get("party"):
            raise VerificationFailed(f"cosignature by unknown witness key {cosig.get('key')}",
                                     seq=head.size - 1, reason="bad_cosignature")
        if not verify_sig(info.public_key, canonical(signed), cosig.get("sig", "")):
            raise VerificationFailed(f"cosignature of {cosig.get('party')} does not verify",
                                     seq=head.size - 1, reason="bad_cosignature")
        report.cosignatures += 1
    report.heads += 1
