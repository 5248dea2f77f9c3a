"""The database under the record: SQLite (embedded, WAL, synchronous=FULL) or PostgreSQL, one code path."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

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


# WAL frames (pages) after which a committing connection checkpoints inline, as SQLite does by default at
# 1,000. The background checkpointer below copies most pages long before that, so the inline checkpoint has
# little left to copy; it is kept because the WAL only starts over from its beginning when a write begins with
# every frame copied back, which under a steady stream of group commits only the committing thread can arrange.
WAL_AUTOCHECKPOINT = 4000


class _Checkpointer:
    """Copies committed pages from the WAL into the database file on a thread of its own (PASSIVE checkpoints:
    they never wait for, or block, readers and writers).

    Without it, every ~1,000 pages one commit also copies 4 MB into the database file and fsyncs it, on the
    committing thread, which for group commit is the thread every append waits on. Durability is unchanged:
    a commit is durable once its WAL frames are fsynced (synchronous=FULL), before any checkpoint."""

    INTERVAL = 0.1  # seconds between checkpoints while commits keep coming

    def __init__(self, path: str) -> None:
        self.path = path
        self._wake = threading.Event()
        self._stop = False
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """A write transaction committed (called from the engine's commit event, on the committing thread)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop:
                    self._thread = threading.Thread(target=self._run, name="fusioncell-checkpoint", daemon=True)
                    self._thread.start()
        self._wake.set()

    def close(self) -> None:
        with self._lock:
            self._stop = True
            thread = self._thread
        self._stopped.set()
        self._wake.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=1000")
            while True:
                self._wake.wait()
                # The commit event comes just before the COMMIT: wait a little, then copy all that committed
                # meanwhile (at most one checkpoint per interval however many commits poked).
                if self._stop or self._stopped.wait(self.INTERVAL):
                    return
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # the committing connections' inline checkpoints still run
        finally:
            conn.close()


def _sqlite_engine(url: str, *, begin: str, checkpointer: _Checkpointer | None = None) -> Engine:
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
        if checkpointer is not None:
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
        cursor.close()

    if checkpointer is not None:
        @event.listens_for(engine, "commit")
        def _commit(_connection):  # noqa: ANN001
            checkpointer.poke()

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
        self._checkpointer: _Checkpointer | None = None
        if self.dialect == "sqlite":
            path = make_url(self.url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                self._checkpointer = _Checkpointer(path)
            self.engine = _sqlite_engine(self.url, begin="IMMEDIATE", checkpointer=self._checkpointer)
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

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
