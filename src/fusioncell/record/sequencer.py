"""The sequencer: the one function that appends to the log, inside the caller's transaction.

`Log.append` checks a signed submission against the format, its kind and the key registry, gives it the next
seq and the sequencer's time, stores entry, body and audience rows, updates the projections through the kind,
and extends the Merkle tree, all in the caller's transaction. `Log.seal` signs a tree head for what the
transaction appended. Appends are serialised by the database: SQLite's write lock (BEGIN IMMEDIATE), or on
PostgreSQL one transaction-scoped advisory lock, so several workers share one log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fusioncell.clock import Clock, format_time, record_now
from fusioncell.errors import Conflict
from fusioncell.record import kinds as kind_registry
from fusioncell.record.canonical import canonical
from fusioncell.record.checks import check_signed, refuse
from fusioncell.record.format import CELL_PARTY, tree_head
from fusioncell.record.merkle import MerkleTree, leaf_hash
from fusioncell.record.models import Body, Entry, EntryAudience, TreeHead
from fusioncell.record.registry import (
    GENESIS,
    IDENTITY_KINDS,
    KeyInfo,
    Registry,
    SignerRefused,
)
from fusioncell.record.signing import SigningKey, sign, verify

if TYPE_CHECKING:
    from fusioncell.db import Database
    from fusioncell.record.kinds import BodyModel, Kind

# Arbitrary but fixed: the PostgreSQL advisory lock that serialises appends across workers.
SEQUENCER_LOCK = 0x66757331
_ENTRY_COLUMNS = ("seq", "leaf_hash", "kind", "party", "author", "key_id", "nonce", "audience", "body_hash",
                  "created_at", "sequenced_at", "leaf")


class _Raw:
    """The hot path's statements in the driver's own SQL, run on the DBAPI cursor of the session's connection
    (same transaction): SQLAlchemy's per-statement and per-row work would cost more than the append itself.

    Rows go in as multi-row INSERTs of power-of-two sizes (at most 256 rows), not executemany: the driver
    releases the GIL around each statement it steps, and every release is a wait for the GIL to come back
    while the writers' threads hold it, so one statement per row would make the committer crawl."""

    MAX_ROWS = 256

    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.duplicate = (f"SELECT 1 FROM {Entry.__tablename__} WHERE key_id = {mark} AND created_at = {mark} "
                          f"AND nonce = {mark}")
        self.catch_up = (f"SELECT seq, leaf_hash, kind, sequenced_at FROM {Entry.__tablename__} WHERE seq >= {mark} "
                         "ORDER BY seq")
        self.head_size = f"SELECT coalesce(max(size), 0) FROM {TreeHead.__tablename__}"
        self._inserts: dict[tuple[str, int, int], str] = {}

    def _insert(self, table: str, columns: tuple[str, ...], rows: int) -> str:
        key = (table, len(columns), rows)
        sql = self._inserts.get(key)
        if sql is None:
            row = "(" + ", ".join([self.mark] * len(columns)) + ")"
            sql = self._inserts[key] = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"
        return sql

    def insert(self, cursor: Any, table: str, columns: tuple[str, ...], values: list[Any]) -> None:
        """Insert rows given as one flat list of values, len(columns) per row (no tuple per row to build)."""
        width = len(columns)
        i, n = 0, len(values) // width
        while i < n:
            size = min(self.MAX_ROWS, 1 << ((n - i).bit_length() - 1))
            cursor.execute(self._insert(table, columns, size), values[i * width:(i + size) * width])
            i += size


_RAW = {"qmark": _Raw("?"), "format": _Raw("%s"), "pyformat": _Raw("%s")}
_ENTRY, _BODY, _AUDIENCE = Entry.__tablename__, Body.__tablename__, EntryAudience.__tablename__
_TREE_HEAD = TreeHead.__tablename__


@contextmanager
def _cursor(session: Session) -> Iterator[tuple[Any, _Raw]]:
    """The driver's cursor on the session's connection (same transaction), and the statements in its SQL."""
    conn = session.connection()
    cursor = conn.connection.cursor()
    try:
        yield cursor, _RAW[conn.dialect.paramstyle]
    finally:
        cursor.close()


def _replay_key(submission: dict[str, Any]) -> tuple[str, str, str]:
    """What makes a submission the same as one already in the log (the entry table's unique constraint)."""
    return submission["key"], submission["created"], submission["nonce"]


class Appended:
    """An entry as the sequencer appended it. Not to be changed once made (a plain class with slots, not a frozen
    dataclass: one is made per append, on the sequencer's one thread, and a frozen dataclass's __init__ costs
    several times as much)."""

    __slots__ = ("body", "body_bytes", "leaf", "leaf_hash", "row", "seq", "sig", "submission", "time")

    def __init__(self, seq: int, time: str, leaf_hash: bytes, submission: dict[str, Any], sig: str,
                 body: dict[str, Any], leaf: bytes, body_bytes: bytes = b"", row: tuple[str, ...] = ()) -> None:
        self.seq = seq
        self.time = time
        self.leaf_hash = leaf_hash
        self.submission = submission
        self.sig = sig
        self.body = body
        self.leaf = leaf
        self.body_bytes = body_bytes
        # The entry row's columns from kind to created_at (see Prepared.row), when the sequencer made it.
        self.row = row

    @property
    def kind(self) -> str:
        return self.submission["kind"]

    @property
    def party(self) -> str:
        return self.submission["party"]

    def __eq__(self, other: object) -> bool:
        if type(other) is not Appended:
            return NotImplemented
        return (self.seq, self.time, self.leaf_hash, self.submission, self.sig, self.body, self.leaf,
                self.body_bytes) == (other.seq, other.time, other.leaf_hash, other.submission, other.sig, other.body,
                                     other.leaf, other.body_bytes)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Appended(seq={self.seq}, time={self.time!r}, kind={self.kind!r}, leaf_hash={self.leaf_hash.hex()})"


class Prepared:
    """A submission checked as far as possible without the database (any thread may prepare). A plain class
    with slots, as Appended."""

    __slots__ = ("body", "body_bytes", "body_model", "kind", "row", "sig", "sig_json", "sub_bytes", "submission",
                 "verified_key")

    def __init__(self, submission: dict[str, Any], sig: str, body: dict[str, Any], body_bytes: bytes,
                 sub_bytes: bytes, kind: Kind, body_model: BodyModel, verified_key: bytes | None,
                 sig_json: bytes = b"", row: tuple[str, ...] = ()) -> None:
        self.submission = submission
        self.sig = sig
        self.body = body
        self.body_bytes = body_bytes
        self.sub_bytes = sub_bytes
        self.kind = kind
        self.body_model = body_model
        self.verified_key = verified_key
        # Made on the caller's thread, so that the sequencer (one thread for the whole log) does not:
        self.sig_json = sig_json  # the sig as a JSON string, spliced into the entry's bytes
        self.row = row  # entry columns kind, party, author, key_id, nonce, audience, body_hash, created_at


class DeferredDuplicate(Conflict):
    """A replayed submission found only when the rows were written, in a transaction that left the duplicate
    check to the entry table's unique constraint (`session.info["defer_duplicates"]`, group commit's fast
    path). It is not the fault of whichever unit was running: the committer runs the batch again with every
    append checked on its own, which names the culprit."""


class Log:
    """One process's handle on the cell's log: caches of the Merkle tree and key registry, kept in step with
    the database under the sequencer lock, and the append."""

    def __init__(self, *, clock: Clock, cell_id: str | None = None, cell_key: SigningKey | None = None) -> None:
        self.clock = clock
        self.cell_id = cell_id
        self.cell_key = cell_key
        self.listeners: list[Callable[[list[Appended], dict[str, Any] | None], None]] = []
        self._tree: MerkleTree | None = None
        self._registry: Registry | None = None
        self._last_time = ""
        self._head_size = 0
        self._guard = threading.RLock()
        self._time_key, self._time_json = "", b""

    # -- keeping the caches in step with the database --------------------------------------------------

    def _sync(self, session: Session) -> None:
        """Take the sequencer lock and catch the caches up with entries other workers appended."""
        txn = session.get_transaction()
        if session.info.get("log_txn") is txn and self._tree is not None:
            if self._registry is None:
                self._registry = self._load_registry(session)
            return
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK})
        if self._catch_up(session):
            with _cursor(session) as (cursor, raw):
                cursor.execute(raw.head_size)
                self._head_size = cursor.fetchone()[0]
        if self._registry is None and self._tree.size:
            self._registry = self._load_registry(session)
        session.info["log_txn"] = txn
        session.info["log_mark"] = (self._tree.size, self._last_time)

    def _catch_up(self, session: Session) -> bool:
        """Extend the cached tree with the committed entries past it; whether there were any. Committed entries
        are always a dense prefix of the log (appends are serialised by the sequencer lock), so no lock is needed
        to read them."""
        if self._tree is None:
            self._tree = MerkleTree(indexed=True)
            self._registry = None
        # On the driver's cursor: this runs once per transaction that appends, and the ORM's query would cost
        # more than the rest of a batch's own work.
        with _cursor(session) as (cursor, raw):
            cursor.execute(raw.catch_up, (self._tree.size,))
            rows = cursor.fetchall()
        for seq, hash_, kind, time in rows:
            if seq != self._tree.size:
                raise RuntimeError(f"log has a gap at seq {self._tree.size}; run `fusioncell verify`")
            self._tree.append(hash_)
            self._last_time = max(self._last_time, time)
            if kind in IDENTITY_KINDS:
                self._registry = None
        return bool(rows)

    def _load_registry(self, session: Session) -> Registry:
        from fusioncell.identity.models import Cell, Party, SigningKey

        cell = session.execute(select(Cell)).scalar_one()
        registry = Registry(
            cell_id=cell.id,
            cell_key_id=cell.key_id,
            roles={p.id: p.role for p in session.execute(select(Party)).scalars()},
        )
        for key in session.execute(select(SigningKey)).scalars():
            registry.keys[key.key_id] = KeyInfo(
                key.key_id, key.public_key, key.party, key.holder, key.purpose, key.custody, key.added_seq,
                key.revoked_seq,
            )
        self.cell_id = cell.id
        return registry

    def mark(self) -> tuple[int, str] | None:
        """Where the log stands now, to rewind to if what follows is rolled back."""
        with self._guard:
            return None if self._tree is None else (self._tree.size, self._last_time)

    def rewind(self, mark: tuple[int, str] | None) -> None:
        """Forget what a rolled-back transaction or savepoint appended."""
        with self._guard:
            if mark is None or self._tree is None or mark[0] > self._tree.size:
                self._tree = None
                self._last_time = ""
            else:
                self._tree.truncate(mark[0])
                self._last_time = mark[1]
            self._registry = None
            self._head_size = 0 if self._tree is None else min(self._head_size, self._tree.size)

    def forget(self) -> None:
        """Drop every cache; the next append reloads them from the database."""
        self.rewind(None)

    # -- the append ------------------------------------------------------------------------------------

    def public_key(self, submission: Any) -> bytes | None:
        """The public key a submission names, where this process's registry knows it (else None: the signature
        is then checked under the lock, against the registry as of the entry)."""
        registry = self._registry
        key = submission.get("key") if isinstance(submission, dict) else None
        if registry is None or type(key) is not str:
            return None  # the shape check refuses what is not a key id
        info = registry.keys.get(key)
        return None if info is None else info.public_key

    def prepare(self, *, submission: Any, sig: Any, body: Any) -> Prepared:
        """Everything that needs no database: shape, cell, kind, body hash and schema, and the signature when
        the key is known. Costly and free of locks, so callers run it on their own thread before appending."""
        public_key = self.public_key(submission)
        checked = check_signed(submission, sig, body, cell_id=self.cell_id, kinds=kind_registry.authors(),
                               public_key=public_key)
        return self.prepared(submission, sig, checked.body, checked.body_bytes, checked.sub_bytes, checked.sig_json,
                             public_key if checked.verified else None)

    def prepared(self, submission: dict[str, Any], sig: str, body: dict[str, Any], body_bytes: bytes,
                 sub_bytes: bytes, sig_json: bytes, verified_key: bytes | None) -> Prepared:
        """A submission that passed check_signed (here or in a checker process: the parts of its Checked, and the
        key its signature was verified with, if any) made ready to append: its kind, and its body parsed by the
        kind's schema."""
        kind = kind_registry.get(submission["kind"])
        body_model = kind.parse_body(body)
        s = submission
        row = (s["kind"], s["party"], s["author"], s["key"], s["nonce"], " ".join(s["audience"]), s["body"],
               s["created"])
        return Prepared(submission, sig, body, body_bytes, sub_bytes, kind, body_model, verified_key, sig_json, row)

    def append(self, session: Session, *, submission: Any, sig: Any, body: Any) -> Appended:
        return self.append_prepared(session, self.prepare(submission=submission, sig=sig, body=body))

    def append_prepared(self, session: Session, prepared: Prepared) -> Appended:
        with self._guard:
            self._sync(session)
            return self._append(session, prepared)

    def _append(self, session: Session, p: Prepared) -> Appended:
        sub, kind = p.submission, p.kind
        tree = self._tree
        assert tree is not None
        seq = tree.size
        if (kind.name == GENESIS) != (seq == 0):
            raise refuse("cell.genesis is entry 0 and only entry 0", "bad_submission")
        registry = Registry.from_genesis(p.body) if seq == 0 else self._registry
        assert registry is not None
        if sub["cell"] != registry.cell_id:
            raise refuse(f"submission is for cell {sub['cell']!r}, this is {registry.cell_id!r}", "wrong_cell")
        try:
            info = registry.signer(seq, sub)
            registry.check_audience(sub, full=kind.full_audience)
            if kind.name in IDENTITY_KINDS:
                registry.check_identity(sub, p.body)
        except SignerRefused as exc:
            raise refuse(str(exc), exc.code) from exc
        if p.verified_key != info.public_key and not verify(info.public_key, p.sub_bytes, p.sig):
            raise refuse(f"signature does not verify with key {info.key_id}", "bad_signature")
        if kind.check is not None:
            self.flush(session)  # checks may read what this transaction appended
            kind.check(session, sub, p.body_model)
        # The tree, caught up under the lock, holds every entry this transaction may cite: committed, and
        # appended before in this transaction.
        if sub["refs"] and any(tree.index_of(bytes.fromhex(r)) is None for r in sub["refs"]):
            raise refuse("refs name leaf hashes that are not in this log", "unknown_ref")
        state = session.info
        pending: list[Appended] = state.setdefault("appended", [])
        unique = _replay_key(sub)
        nonces = state.setdefault("nonces", {})
        if self._is_duplicate(session, unique, pending, nonces):
            raise Conflict(f"this submission (key {sub['key']}, created {sub['created']}, nonce {sub['nonce']}) is "
                           "already in the log",
                           code="duplicate_submission")

        now = record_now(self.clock)
        time = now if now > self._last_time else self._last_time  # entry times never go back
        if time != self._time_key:
            self._time_key, self._time_json = time, canonical(time)
        # format.entry_bytes, spliced from parts made once (the sig's JSON on the caller's thread, the time's
        # JSON once per millisecond); tests/record hold the two equal.
        leaf = b'{"seq":%d,"sig":%b,"submission":%b,"time":%b}' % (seq, p.sig_json or canonical(p.sig),
                                                                     p.sub_bytes, self._time_json)
        hashed = leaf_hash(leaf)
        appended = Appended(seq, time, hashed, sub, p.sig, p.body, leaf, p.body_bytes, p.row)
        # The rows are written in one statement per table when the transaction is sealed (or before anything
        # reads them): per-row inserts cost more than everything else an append does.
        nonces[unique] = len(pending)
        pending.append(appended)
        tree.append(hashed)
        self._last_time = time
        if kind.apply is not None:
            self.flush(session)
            kind.apply(session, appended, p.body_model)
        if kind.name in IDENTITY_KINDS:
            self._registry = None  # reloaded from the projections the kind just updated
            self.cell_id = registry.cell_id
        return appended

    def _is_duplicate(self, session: Session, unique: tuple[str, str, str], appended: list[Appended],
                      nonces: dict[tuple[str, str, str], int]) -> bool:
        """Whether a signed submission with this replay key (_replay_key) is in the log already: the same key,
        creation time and nonce (a replay, or a client's retry). The time is in the key so that the index grows
        at each key's end, as devices sign in time order, instead of at random places: random inserts cost more
        than the rest of an append."""
        # Appended in this transaction: an index, checked against the list (entries rolled back with a
        # savepoint leave stale positions behind).
        i = nonces.get(unique)
        if i is not None and i < len(appended):
            earlier = appended[i].submission
            if _replay_key(earlier) == unique:
                return True
        if session.info.get("defer_duplicates"):
            return False  # the unique constraint refuses it when the rows are written (see flush)
        with _cursor(session) as (cursor, raw):
            cursor.execute(raw.duplicate, unique)
            return cursor.fetchone() is not None

    def flush(self, session: Session) -> None:
        """Write the rows of entries appended in this transaction but not yet written."""
        appended = session.info.get("appended", [])
        start = min(session.info.get("flushed", 0), len(appended))
        batch = appended[start:]
        if not batch:
            return
        with _cursor(session) as (cursor, raw):
            entries: list[Any] = []
            bodies: list[Any] = []
            audience: list[Any] = []
            for a in batch:
                s = a.submission
                entries += (a.seq, a.leaf_hash)
                entries += a.row or (s["kind"], s["party"], s["author"], s["key"], s["nonce"],
                                     " ".join(s["audience"]), s["body"], s["created"])
                entries += (a.time, a.leaf)
                bodies += (a.seq, a.body_bytes)
                for party in s["audience"]:
                    audience += (party, a.seq)
            try:
                raw.insert(cursor, _ENTRY, _ENTRY_COLUMNS, entries)
            except session.get_bind().dialect.loaded_dbapi.IntegrityError as exc:
                error = DeferredDuplicate if session.info.get("defer_duplicates") else Conflict
                raise error("an entry of this batch is already in the log", code="duplicate_submission") from exc
            raw.insert(cursor, _BODY, ("seq", "data"), bodies)
            raw.insert(cursor, _AUDIENCE, ("party", "seq"), audience)
        session.info["flushed"] = len(appended)

    def append_as_cell(
        self, session: Session, *, kind: str, body: dict[str, Any], audience: list[str] | None = None,
        refs: list[str] | None = None,
    ) -> Appended:
        """Append an entry the cell itself writes (findings, breaches, enrolments), signed with the cell key."""
        from fusioncell.record.format import Signer

        if self.cell_key is None:
            raise RuntimeError("this process does not hold the cell key")
        with self._guard:
            self._sync(session)
            registry = self._registry
            cell_id = registry.cell_id if registry else self.cell_id
            signer = Signer(cell=cell_id or "", party=CELL_PARTY, author=CELL_PARTY, key=self.cell_key)
            submission, sig = signer.submit(
                kind=kind, body=body, audience=audience or (registry.parties if registry else []),
                created=format_time(self.clock.now()), refs=refs,
            )
            return self._append(session, self.prepare(submission=submission, sig=sig, body=body))

    # -- tree heads ------------------------------------------------------------------------------------

    def seal(self, session: Session) -> dict[str, Any] | None:
        """Sign a tree head covering everything appended so far in this transaction."""
        with self._guard:
            if not session.info.get("appended") or self._tree is None or self.cell_key is None:
                return None
            self.flush(session)
            size = self._tree.size
            if size <= self._head_size:
                return None
            root = self._tree.root(size)
            head = tree_head(cell=self.cell_id or "", size=size, root_hex=root.hex(), time=self._last_time)
            sig = sign(self.cell_key, canonical(head))
            with _cursor(session) as (cursor, raw):
                raw.insert(cursor, _TREE_HEAD, ("size", "root", "signed_at", "sig"), [size, root, head["time"], sig])
            if session.get_bind().dialect.name == "postgresql":
                from fusioncell.record.notify import notify

                notify(session, size)
            self._head_size = size
            return {"tree_head": head, "sig": sig}

    def tree(self, session: Session) -> MerkleTree:
        """The tree over every committed entry (and over what this process is appending now). Caught up without
        the sequencer lock: on PostgreSQL a proof or a consistency read neither waits for appends nor holds them
        up."""
        with self._guard:
            self._catch_up(session)
            assert self._tree is not None
            if self._registry is None and self._tree.size:
                # The key registry (so that prepare checks signatures outside the lock), but only where this
                # process's tree is exactly what this session sees: an append in flight may have enrolled a key
                # that is not committed, and the registry then waits for that append's own reload.
                last = session.execute(select(func.max(Entry.seq))).scalar()
                if last is not None and last + 1 == self._tree.size:
                    self._registry = self._load_registry(session)
            return self._tree

    @contextmanager
    def transaction(self, db: Database) -> Iterator[Session]:
        """One transaction that may append: sealed with a tree head, committed once, then published."""
        session = db.session()
        try:
            with session.begin():
                yield session
                head = self.seal(session)
        except BaseException:
            self.rewind(session.info.get("log_mark"))
            session.close()
            raise
        appended = session.info.pop("appended", [])
        session.close()
        self.publish(appended, head)

    def publish(self, appended: list[Appended], head: dict[str, Any] | None) -> None:
        """Tell listeners (streams, deadline engine) about committed entries; never before the commit."""
        if appended:
            for listener in self.listeners:
                listener(appended, head)
