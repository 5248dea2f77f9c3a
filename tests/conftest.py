"""Fixtures shared by every test: databases (SQLite and PostgreSQL), a fake clock, cells and personas."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from fusioncell.cell import CellHandle, init_cell
from fusioncell.clock import FakeClock
from fusioncell.config import DEMO_CONFIG, load_config

PG_URL = os.environ.get("FUSIONCELL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ON_CI = os.environ.get("CI", "").lower() == "true"
_pg_checked: list[str | None] = []


def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    if not _pg_checked:
        try:
            engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_checked.append(None)
        except Exception as exc:  # noqa: BLE001
            _pg_checked.append(f"PostgreSQL at {PG_URL} unavailable: {exc.__class__.__name__}")
    return _pg_checked[0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """On CI a PostgreSQL-backed or browser test that skipped is a failure, not a pass."""
    if not ON_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    required = [r for r in skipped if {"postgres", "browser"} & set(getattr(r, "keywords", {}))]
    if required:
        for report in required:
            print(f"\nCI: required test skipped: {report.nodeid}")
        session.exitstatus = 1


@pytest.fixture
def pg_schema_url():
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    reason = pg_unavailable()
    if reason:
        if ON_CI:
            pytest.fail(reason + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cell.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock("2026-11-22T10:00:00Z")


@pytest.fixture
def cell(db_url: str, tmp_path: Path, clock: FakeClock) -> CellHandle:
    """The demo cell's configuration (IL, SY, US supervising), freshly created, on each database."""
    handle = init_cell(tmp_path / "data", config=load_config(DEMO_CONFIG), config_path=DEMO_CONFIG,
                       db_url=db_url, clock=clock)
    yield handle
    handle.close()


@pytest.fixture
def il_liaison(cell):
    from tests.factories.record import persona

    return persona(cell, "IL", "il/liaison-1")


@pytest.fixture
def sy_liaison(cell):
    from tests.factories.record import persona

    return persona(cell, "SY", "sy/liaison-1")


@pytest.fixture
def us_supervisor(cell):
    from tests.factories.record import persona

    return persona(cell, "US", "us/supervisor-1")


_HASHES: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _reuse_password_hashes(monkeypatch):
    """argon2id costs ~60 ms by design; the same persona passwords are hashed once per run, not per test."""
    from fusioncell.identity import auth
    from fusioncell.identity import service as identity_service

    def cached(password: str) -> str:
        if password not in _HASHES:
            _HASHES[password] = auth.hash_password(password)
        return _HASHES[password]

    monkeypatch.setattr(identity_service, "hash_password", cached)


@pytest.fixture
def api(cell):
    """The HTTP application on the test cell, with the named personas able to log in."""
    from starlette.testclient import TestClient

    from fusioncell.app import create_app
    from tests.factories.identity import add_personas

    add_personas(cell)
    app = create_app(cell)
    with TestClient(app) as client:
        client.cell = cell
        yield client


@pytest.fixture
def steady_viewers(monkeypatch):
    """Who a session cookie or token stands for stays cached for the whole test, not for 2 s: statement counts
    (tests/factories/queries.py) do not then depend on how long the requests took."""
    from fusioncell.deps import ViewerCache

    monkeypatch.setattr(ViewerCache, "TTL", 3600.0)


@pytest.fixture
def live_server(cell):
    """The application served by uvicorn on a free loopback port, for real HTTP and WebSocket clients."""
    import threading
    import time

    import uvicorn

    from fusioncell.app import create_app
    from tests.factories.identity import add_personas

    add_personas(cell)
    server = uvicorn.Server(uvicorn.Config(create_app(cell), host="127.0.0.1", port=0, log_level="warning",
                                           ws="websockets-sansio", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}"
    server.cell = cell
    yield server
    server.should_exit = True
    thread.join(10)
