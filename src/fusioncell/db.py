"""The database under the record: SQLite (embedded, WAL, synchronous=FULL) or PostgreSQL, one code path."""

from __future__ import annotations

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
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, begin="IMMEDIATE")
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
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
