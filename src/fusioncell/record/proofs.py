"""Proof bundles: a few entries of the log, each with its inclusion proof against one signed tree head, that
anyone can check offline with nothing but the bundle (a dispute carries its own proof this way).

Format (JSON Lines), `fusioncell-proof/1`:
  line 1   {"format", "cell", "party", "cell_key", "subject": {"kind", "seq", "seqs": [...]}}
  then     one line per included seq, in order: {"entry": {...}, "body": {...}, "proof": [hex, ...]} where the
           party may read it, else {"seq", "leaf_hash", "proof"}
  last     {"tree_head": {...}, "sig": "...", "cosignatures": [...]}
The bundle always holds entry 0 and every identity entry up to the head, so each author's key can be checked
as of its entry (enrolled before, not revoked). What a bundle cannot prove is that nothing was left out: a
verifier that needs that checks the subject against a full export or the party's witness.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.errors import InvalidSubmission, NotFound, VerificationFailed
from fusioncell.identity.models import Cell, Party
from fusioncell.record import access
from fusioncell.record.canonical import b64d, b64e, canonical, hash_hex
from fusioncell.record.format import check_submission_shape, tree_head
from fusioncell.record.merkle import MerkleTree, leaf_hash, verify_inclusion
from fusioncell.record.models import Body, Cosignature, Entry, TreeHead
from fusioncell.record.registry import GENESIS, IDENTITY_KINDS, Registry, SignerRefused
from fusioncell.record.signing import verify as verify_sig

PROOF_FORMAT = "fusioncell-proof/1"


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def cited_seqs(session: Session, seqs: Iterable[int], *, tree: MerkleTree, depth: int = 2) -> set[int]:
    """The seqs of the entries that these cite by leaf hash, and what those cite, `depth` levels down (leaf
    hashes found in `tree`, the sequencer's indexed tree as this session sees it)."""
    found: set[int] = set()
    frontier = set(seqs)
    for _level in range(depth):
        hashes: set[bytes] = set()
        for (leaf,) in session.execute(select(Entry.leaf).where(Entry.seq.in_(frontier))):
            hashes.update(bytes.fromhex(r) for r in json.loads(leaf)["submission"]["refs"])
        if not hashes:
            break
        frontier = {i for h in hashes if (i := tree.index_of(h)) is not None} - found
        found |= frontier
    return found


def write_proof_bundle(session: Session, *, tree: MerkleTree, party: str, subject: dict[str, Any],
                       seqs: Iterable[int], out: BinaryIO) -> dict[str, Any]:
    """Write the entries `seqs` (plus entry 0 and every identity entry) as `party` may see them, each with its
    inclusion proof against the latest signed tree head; return that head."""
    cell = session.execute(select(Cell)).scalar_one()
    if session.get(Party, party) is None:
        raise NotFound(f"no party {party!r} in this cell")
    head = session.execute(select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).scalar_one()
    identity = session.execute(select(Entry.seq).where(Entry.kind.in_(IDENTITY_KINDS), Entry.seq < head.size))
    wanted = sorted({0, *identity.scalars(), *(s for s in seqs if s < head.size)})
    out.write(_line({"format": PROOF_FORMAT, "cell": cell.id, "party": party, "cell_key": b64e(cell.public_key),
                     "subject": subject}))
    rows = session.execute(select(Entry.seq, Entry.leaf_hash, Entry.audience, Entry.leaf, Body.data)
                           .outerjoin(Body, Body.seq == Entry.seq).where(Entry.seq.in_(wanted))
                           .order_by(Entry.seq))
    for seq, hashed, audience, leaf, data in rows:
        proof = json.dumps([h.hex() for h in tree.inclusion_proof(seq, head.size)]).encode()
        if access.may_see(party, audience):
            # The stored canonical bytes are spliced in, not re-encoded: they are what was signed and hashed.
            out.write(b'{"entry":' + leaf + b',"body":' + (data or b"null") + b',"proof":' + proof + b"}\n")
        else:
            out.write(_line({**access.redacted(seq, hashed), "proof": json.loads(proof)}))
    cosigs = [{"party": c.party, "key": c.key_id, "sig": c.sig}
              for c in session.execute(select(Cosignature).where(Cosignature.size == head.size)).scalars()]
    signed = tree_head(cell=cell.id, size=head.size, root_hex=head.root.hex(), time=head.signed_at)
    out.write(_line({"tree_head": signed, "sig": head.sig, "cosignatures": cosigs}))
    return signed


# -- offline verification ------------------------------------------------------------------------------

@dataclass
class ProvenEntry:
    seq: int
    leaf_hash: str
    submission: dict[str, Any] | None = None  # None where not released to the bundle's party
    body: dict[str, Any] | None = None
    time: str | None = None
    sig: str = ""


@dataclass
class ProofReport:
    cell: str
    party: str
    subject: dict[str, Any]
    head: dict[str, Any]
    entries: dict[int, ProvenEntry] = field(default_factory=dict)
    registry: Registry | None = None
    cosignatures: int = 0

    @property
    def released(self) -> int:
        return sum(1 for e in self.entries.values() if e.submission is not None)


def _fail(message: str, seq: int, reason: str) -> VerificationFailed:
    return VerificationFailed(message, seq=seq, reason=reason)


def is_proof_bundle(path: Path) -> bool:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        return json.loads(first).get("format") == PROOF_FORMAT
    except (ValueError, AttributeError):
        return False


def verify_proof_bundle(path: Path, *, trusted_cell_key: bytes | None = None) -> ProofReport:
    """Check a proof bundle offline; raise VerificationFailed naming the first bad seq and why."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    if len(lines) < 3:
        raise _fail("a proof bundle has a header, entries and a tree head", 0, "malformed")
    try:
        header, last = json.loads(lines[0]), json.loads(lines[-1])
        items = [json.loads(line) for line in lines[1:-1]]
    except ValueError as exc:
        raise _fail(f"the bundle is not JSON Lines: {exc}", 0, "malformed") from exc
    if header.get("format") != PROOF_FORMAT:
        raise _fail(f"not a {PROOF_FORMAT} bundle", 0, "malformed")
    cell_key = b64d(header["cell_key"])
    if trusted_cell_key is not None and trusted_cell_key != cell_key:
        raise _fail("the bundle names another cell key than the one trusted", 0, "wrong_cell_key")
    head = last.get("tree_head") or {}
    size, root = head.get("size"), bytes.fromhex(head.get("root", ""))
    if head.get("cell") != header.get("cell") or not isinstance(size, int):
        raise _fail("the tree head is missing or of another cell", 0, "bad_tree_head")
    if not verify_sig(cell_key, canonical(head), last.get("sig", "")):
        raise _fail(f"the tree head of size {size} is not signed by the cell key", size - 1, "bad_tree_head")
    report = ProofReport(cell=header["cell"], party=header.get("party", ""), subject=header.get("subject") or {},
                         head=head)
    previous = -1
    for item in items:
        proven = _prove(item, size, root)
        if proven.seq <= previous:
            raise _fail(f"seq {proven.seq} is out of order", proven.seq, "order")
        previous = proven.seq
        report.entries[proven.seq] = proven
        report.registry = _check_signer(report.registry, proven, cell_key)
    if report.registry is None:
        raise _fail("entry 0 (the genesis) is not in the bundle", 0, "no_genesis")
    for cosig in last.get("cosignatures", []):
        info = report.registry.keys.get(cosig.get("key", ""))
        if info is None or info.purpose != "witness" or not verify_sig(info.public_key, canonical(head),
                                                                       cosig.get("sig", "")):
            raise _fail(f"cosignature of {cosig.get('party')} does not verify", size - 1, "bad_cosignature")
        report.cosignatures += 1
    _check_subject(report)
    return report


def _prove(item: dict[str, Any], size: int, root: bytes) -> ProvenEntry:
    proof = item.get("proof")
    if "entry" in item:
        entry = item["entry"]
        seq = entry.get("seq") if isinstance(entry, dict) else None
        if not isinstance(seq, int):
            raise _fail("an entry without a seq", 0, "malformed")
        try:
            check_submission_shape(entry["submission"])
            leaf = canonical(entry)
        except (InvalidSubmission, KeyError, TypeError, ValueError) as exc:
            raise _fail(f"entry {seq} is malformed", seq, "malformed") from exc
        hashed = leaf_hash(leaf)
        proven = ProvenEntry(seq, hashed.hex(), entry["submission"], item.get("body"), entry.get("time"),
                             str(entry.get("sig", "")))
    else:
        seq = item.get("seq")
        if not isinstance(seq, int):
            raise _fail("a line without a seq", 0, "malformed")
        try:
            hashed = bytes.fromhex(item["leaf_hash"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(f"seq {seq} has no valid leaf hash", seq, "malformed") from exc
        proven = ProvenEntry(seq, hashed.hex())
    if not isinstance(proof, list) or not 0 <= seq < size:
        raise _fail(f"seq {seq} has no inclusion proof in the tree of size {size}", seq, "no_proof")
    try:
        ok = verify_inclusion(hashed, seq, size, [bytes.fromhex(h) for h in proof], root)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise _fail(f"entry {seq} is not in the log of the signed tree head (its inclusion proof fails): "
                    "it was changed or never appended", seq, "not_included")
    return proven


def _check_signer(registry: Registry | None, proven: ProvenEntry, cell_key: bytes) -> Registry | None:
    sub, seq = proven.submission, proven.seq
    if sub is None:
        return registry
    body = proven.body
    if body is not None and hash_hex(canonical(body)) != sub["body"]:
        raise _fail(f"the body of entry {seq} does not match the hash its author signed", seq, "body_mismatch")
    if seq == 0:
        if sub["kind"] != GENESIS or body is None:
            raise _fail("entry 0 is not the cell genesis", 0, "no_genesis")
        registry = Registry.from_genesis(body)
        if registry.keys[registry.cell_key_id].public_key != cell_key:
            raise _fail("the genesis names another cell key than the bundle's", 0, "wrong_cell_key")
    if registry is None:
        raise _fail("entry 0 (the genesis) must come first", seq, "no_genesis")
    try:
        signer = registry.signer(seq, sub)
        registry.check_audience(sub, full=sub["kind"] in IDENTITY_KINDS)
        if sub["kind"] in IDENTITY_KINDS and seq != 0:
            registry.check_identity(sub, body or {})
    except SignerRefused as exc:
        raise _fail(str(exc), seq, exc.code) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(f"identity entry {seq} is malformed: {exc}", seq, "bad_body") from exc
    if not verify_sig(signer.public_key, canonical(sub), proven.sig):
        raise _fail(f"the author's signature on entry {seq} does not verify", seq, "bad_signature")
    if sub["kind"] in IDENTITY_KINDS and seq != 0:
        registry.apply(seq, sub["kind"], body or {})
    return registry


def _check_subject(report: ProofReport) -> None:
    """Every entry of the subject is released to the bundle's party, and everything it cites is included."""
    hashes = {e.leaf_hash for e in report.entries.values()}
    for seq in report.subject.get("seqs", []):
        entry = report.entries.get(seq)
        if entry is None or entry.submission is None:
            raise _fail(f"entry {seq} of the subject is missing from the bundle", seq, "incomplete")
        missing = [r for r in entry.submission["refs"] if r not in hashes]
        if missing:
            raise _fail(f"entry {seq} cites {missing[0]}, which the bundle does not include", seq, "incomplete")
