"""Counting the SQL statements a piece of code runs: list reads must not grow a query per row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from fusioncell.db import Database


@contextmanager
def counting_queries(db: Database) -> Iterator[list[str]]:
    """The statements run on the database's engines (writes and reads) while the block runs."""
    statements: list[str] = []

    def seen(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        statements.append(statement)

    engines = {db.engine, db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
