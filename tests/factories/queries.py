"""Counting the SQL statements a piece of code runs: list reads must not grow a query per row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from fusioncell.db import Database


@contextmanager
def counting_queries(db: Database) -> Iterator[list[str]]:
    """The statements run on the database's engines (writes and reads) while the block runs, but for those of
    the cell's own threads (fusioncell-*: the group commit, the deadline engine, follow-up checks), which run at
    any moment and are not the block's."""
    statements: list[str] = []

    def seen(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if not threading.current_thread().name.startswith("fusioncell-"):
            statements.append(statement)

    engines = {db.engine, db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)


def statements_per_page(db: Database, pages: list[tuple[str, Any]]) -> dict[str, int]:
    """For each (path, client): the statements one GET of path runs, counted on a second GET, so that what the
    application keeps between requests is in place. Each GET must answer 200."""
    counts = {}
    for path, client in pages:
        assert client.get(path).status_code == 200, path
        with counting_queries(db) as seen:
            response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        counts[path] = len(seen)
    return counts
