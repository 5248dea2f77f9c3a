"""The database under the record: SQLite (embedded, WAL, synchronous=FULL) or PostgreSQL, one code path."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

_logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def load_models() -> None:
    """Import every module that declares tables, so the metadata is complete."""
    import fusioncell.deadlines.models  # noqa: F401
    import fusioncell.disputes.models  # noqa: F401
    import fusioncell.geo.models  # noqa: F401
    import fusioncell.hotline.models  # noqa: F401
    import fusioncell.identity.models  # noqa: F401
    import fusioncell.incidents.models  # noqa: F401
    import fusioncell.notices.models  # noqa: F401
    import fusioncell.record.models  # noqa: F401


def projection_tables() -> list:
    """Tables that are projections of the log (rebuilt from it), in dependency order."""
    load_models()
    return [t for t in Base.metadata.sorted_tables if t.info.get("projection")]


def normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Checkpointer:
    """Copies the WAL into the database file on a thread of its own, so that the group commit's thread does not.

    Left to SQLite, the writer that commits past 1,000 pages of WAL (its wal_autocheckpoint) copies them into the
    database file inside that commit and syncs the file, and every append waiting in that batch waits for it.
    Here a PASSIVE checkpoint (it neither takes the write lock nor waits for readers) runs on its own connection
    at most every `interval` seconds after a commit. The writers' own checkpoint stays: a checkpoint on another
    thread always lags the last commit, so under sustained appends it is the writer's, past 1,000 pages, that
    lets the WAL start again from its beginning; by then little is left for it to copy. Durability is the WAL's:
    a commit is durable when its fsync returns, whether or not a checkpoint has copied it yet."""

    def __init__(self, path: str, *, interval: float = 0.025) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0
        self.failures = 0
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fusioncell-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._dirty.set()

    def close(self) -> None:
        self._stop.set()
        self._dirty.set()
        self._thread.join()

    def _run(self) -> None:
        conn = None
        try:
            while True:
                self._dirty.wait()
                stopping = self._stop.wait(self.interval)  # at most one checkpoint per interval
                if stopping and conn is None:
                    return  # no checkpoint ran (or the last one failed): none to finish with
                self._dirty.clear()
                # close() may have set both events since the wait above, and that clear took its wake-up: the
                # next wait would never end.
                stopping = stopping or self._stop.is_set()
                conn = self._checkpoint(conn)
                if stopping:  # that one copied what the last commits wrote, before the server stops
                    return
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
        """One PASSIVE checkpoint; the connection to use for the next one (None after a failure: a new one)."""
        try:
            if conn is None:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA synchronous=FULL")  # sync the WAL before copying, the file after
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
            return conn
        except sqlite3.Error:  # the writers' own checkpoint still bounds the WAL; try again after a commit
            self.failures += 1
            _logger.exception("background WAL checkpoint failed")
            if conn is not None:
                conn.close()
            return None


# The sqlite3 module binds int, float, str and bytearray directly, but passes any other value, bytes included,
# through its adapter lookup first, which for bytes fails with an AttributeError raised and cleared: ~3,000
# instructions per value, and the log binds three per append (leaf hash, leaf, body). An identity adapter for
# bytes makes that lookup one dict hit; the value is bound as the same BLOB.
sqlite3.register_adapter(bytes, bytes)


def _sqlite_engine(url: str, *, begin: str) -> Engine:
    # As many pooled connections as the server has threads, so none is opened and closed per request.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40,
                           max_overflow=20)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # noqa: ANN001
        # Let SQLAlchemy's begin() issue BEGIN itself (pysqlite would defer it and break savepoints).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed entry survives power loss, not only a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):  # noqa: ANN001
        # IMMEDIATE takes the write lock at once, so two writers never deadlock upgrading a read lock.
        connection.exec_driver_sql(f"BEGIN {begin}")

    return engine


class Database:
    """Engines and sessions for one cell database. `write()` and `read()` are the only ways in."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self._checkpointer: Checkpointer | None = None
        self._checkpoint_users = 0
        self._checkpoint_lock = threading.Lock()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, begin="IMMEDIATE")
            # Once, here: a listener added or removed while other threads commit could race their dispatch.
            event.listen(self.engine, "commit", self._committed)
            self.read_engine = _sqlite_engine(self.url, begin="DEFERRED")
        else:
            self.engine = create_engine(self.url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.engine
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)

    def session(self) -> Session:
        """A write session; the caller begins, commits and closes it."""
        return self._writer()

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def migrate(self) -> None:
        from fusioncell.migrations import upgrade

        upgrade(self.engine)

    def checkpoint_in_background(self) -> Checkpointer | None:
        """Start (or share) this database's Checkpointer, for a long-running writer such as the group commit;
        each call is matched by one release_checkpoints(). None where there is nothing to do: PostgreSQL, or a
        SQLite database not in a file."""
        path = make_url(self.url).database
        if self.dialect != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
            return None
        with self._checkpoint_lock:
            if self._checkpointer is None:
                self._checkpointer = Checkpointer(path)
            self._checkpoint_users += 1
            return self._checkpointer

    def release_checkpoints(self) -> None:
        with self._checkpoint_lock:
            if self._checkpointer is None:
                return
            self._checkpoint_users -= 1
            if self._checkpoint_users > 0:
                return
            checkpointer, self._checkpointer = self._checkpointer, None
        checkpointer.close()

    def _committed(self, _connection) -> None:  # noqa: ANN001
        checkpointer = self._checkpointer
        if checkpointer is not None:
            checkpointer.committed()

    def dispose(self) -> None:
        with self._checkpoint_lock:  # whoever still holds a share: their release finds nothing to stop
            checkpointer, self._checkpointer, self._checkpoint_users = self._checkpointer, None, 0
        if checkpointer is not None:
            checkpointer.close()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
