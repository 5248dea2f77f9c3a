"""The SQLite WAL is copied back into the database file by the background checkpointer, not by the commits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from fusioncell.db import WAL_AUTOCHECKPOINT, Database, sqlite_url


def test_committed_pages_are_checkpointed_in_the_background_and_the_thread_stops(tmp_path: Path) -> None:
    path = tmp_path / "cell.db"
    db = Database(sqlite_url(path))
    try:
        with db.write() as session:
            assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == WAL_AUTOCHECKPOINT
            assert session.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
            session.execute(text("CREATE TABLE t (x BLOB)"))
        empty = path.stat().st_size
        for _ in range(20):
            with db.write() as session:
                session.execute(text("INSERT INTO t VALUES (randomblob(4000))"))
        # Far fewer WAL frames than the inline autocheckpoint needs: only the background thread copies them.
        deadline = time.monotonic() + 5
        while path.stat().st_size < empty + 20 * 4000:
            assert time.monotonic() < deadline, "no background checkpoint"
            time.sleep(0.02)
        thread = db._checkpointer._thread
        assert thread is not None and thread.is_alive()
    finally:
        db.dispose()
    assert not thread.is_alive()
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (20,)
    finally:
        check.close()
