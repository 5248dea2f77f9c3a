"""Fan-out between workers on PostgreSQL: each commit NOTIFYs the new log size; every worker LISTENs and
publishes to its own streams the entries other workers appended."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from fusioncell.record.models import Body, Entry, TreeHead
from fusioncell.record.sequencer import Appended

if TYPE_CHECKING:
    from fusioncell.db import Database
    from fusioncell.record.sequencer import Log


def channel_of(session: Session) -> str:
    """One channel per log (several cells may share a database): named by the genesis leaf hash."""
    genesis = session.execute(select(Entry.leaf_hash).where(Entry.seq == 0)).scalar_one()
    return "fusioncell_" + genesis.hex()[:16]


def notify(session: Session, size: int) -> None:
    """Queue a notification; PostgreSQL delivers it when (and only if) the transaction commits."""
    session.execute(text("SELECT pg_notify(:channel, :size)"), {"channel": channel_of(session), "size": str(size)})


class Follower:
    """A thread per worker that turns other workers' commits into local publications."""

    def __init__(self, db: Database, log: Log) -> None:
        self.db = db
        self.log = log
        self.published = -1  # highest seq handed to listeners by this worker
        self._stop = threading.Event()
        self._lock = threading.Lock()
        with db.read() as session:
            self.channel = channel_of(session)
            self.published = session.execute(select(Entry.seq).order_by(Entry.seq.desc()).limit(1)).scalar() or 0
        log.listeners.append(self._seen)
        self._thread = threading.Thread(target=self._run, name="fusioncell-follow", daemon=True)
        self._thread.start()

    def _seen(self, appended: list[Appended], _head: dict[str, Any] | None) -> None:
        with self._lock:
            self.published = max(self.published, appended[-1].seq)

    def _dsn(self) -> str:
        url = make_url(self.db.url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn(), autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    self.catch_up()  # anything committed while not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.catch_up(int(note.payload))
            except (psycopg.Error, sa_exc.DBAPIError):
                # The listening connection or a catch-up query failed (the server restarted, a connection was
                # cut): listen again and catch up, rather than leave this worker's streams without the others'
                # entries for good.
                self._stop.wait(1.0)

    def catch_up(self, size: int | None = None) -> None:
        with self._lock:
            start = self.published + 1
        with self.db.read() as session:
            query = (select(Entry.seq, Entry.leaf, Entry.leaf_hash, Body.data).join(Body, Body.seq == Entry.seq)
                     .where(Entry.seq >= start).order_by(Entry.seq))
            if size is not None:
                query = query.where(Entry.seq < size)
            rows = session.execute(query).all()
            if not rows:
                return
            appended = []
            for seq, leaf, hashed, data in rows:
                entry = json.loads(leaf)
                appended.append(Appended(seq, entry["time"], hashed, entry["submission"], entry["sig"],
                                         json.loads(data), leaf))
            from fusioncell.record.service import signed_head

            head_row = session.get(TreeHead, appended[-1].seq + 1)
            head = signed_head(session, head_row) if head_row is not None else None
        with self._lock:
            appended = [a for a in appended if a.seq > self.published]
            if not appended:
                return
            self.published = appended[-1].seq
        for listener in self.log.listeners:
            if listener != self._seen:
                listener(appended, head)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
