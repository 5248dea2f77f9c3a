"""Helpers shared by bench/append.py and bench/verify.py: cells in scratch directories, a bench kind, enrolled
device keys, pre-signed submissions, PostgreSQL scratch schemas, medians and tables.

Not a benchmark itself (`./run bench` runs every bench/*.py; this one only says so)."""

from __future__ import annotations

import os
import platform
import random
import statistics
import string
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fusioncell.cell import CellHandle, init_cell
from fusioncell.clock import format_time
from fusioncell.config import DEMO_CONFIG, load_config
from fusioncell.record import signing
from fusioncell.record.canonical import canonical
from fusioncell.record.format import Signer
from fusioncell.record.kinds import BodyModel, Kind, register

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
PARTIES = ("IL", "SY")
SUPERVISOR = "US"

console = Console(width=None if sys.stdout.isatty() else 118, highlight=False)


class BenchBody(BodyModel):
    text: str


# Like the test kind of tests/factories/record.py: a free-text body, written by parties, no projection.
BENCH_KIND = register(Kind("bench.note", BenchBody))

_FILLER = "".join(random.Random(1).choices(string.ascii_letters + string.digits + " ", k=1 << 16))


def body_of_size(size: int, i: int) -> dict[str, str]:
    """A bench.note body whose canonical JSON is exactly `size` bytes (at least 20), different for each i."""
    text_len = size - len(canonical({"text": ""}))
    head = f"{i:010d} "
    offset = (i * 7919) % (len(_FILLER) - text_len - 1)
    text = (head + _FILLER[offset:offset + text_len])[:text_len]
    body = {"text": text}
    assert len(canonical(body)) == size, (size, len(canonical(body)))
    return body


def audience_for(party: str, i: int) -> list[str]:
    """A mix: most entries go to every party, every fourth only to the author's party and the supervisor."""
    return [party, SUPERVISOR] if i % 4 == 3 else ["IL", "SY", "US"]


def new_cell(root: Path, db_url: str | None = None, clock: Any = None) -> CellHandle:
    """The demo cell (IL, SY, US supervising), created as `fusioncell init` does."""
    return init_cell(root, config=load_config(DEMO_CONFIG), config_path=DEMO_CONFIG, db_url=db_url, clock=clock)


def enrol_signers(cell: CellHandle, count: int, *, keys: Sequence[signing.SigningKey] | None = None) -> list[Signer]:
    """Enrol `count` device keys (parties IL and SY alternately), in one transaction, and load the registry
    into the log's cache so that `Log.prepare` verifies signatures outside the sequencer lock."""
    from fusioncell.identity import service as identity_service

    log = cell.log
    signers = []
    with log.transaction(cell.db) as session:
        for i in range(count):
            key = keys[i] if keys is not None else signing.generate()
            party = PARTIES[i % 2]
            holder = f"{party.lower()}/bench-{i}"
            identity_service.enrol_key(session, log=log, party=party, holder=holder,
                                       public_key=signing.public_bytes(key), custody="device")
            signers.append(Signer(cell=log.cell_id or "", party=party, author=holder, key=key))
    with cell.db.read() as session:
        log.tree(session)  # catches the caches up: the registry with the new keys
    return signers


def presign(signer: Signer, start: int, count: int, body_size: int, created: str | None = None,
            ) -> list[tuple[dict[str, Any], str, dict[str, str]]]:
    """Submissions as an author's device makes them: (submission, sig, body) for bodies start..start+count."""
    created = created or format_time(_now())
    out = []
    for i in range(start, start + count):
        body = body_of_size(body_size, i)
        submission, sig = signer.submit(kind=BENCH_KIND.name, body=body, audience=audience_for(signer.party, i),
                                        created=created)
        out.append((submission, sig, body))
    return out


def _now():  # noqa: ANN202
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


@contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema (URL with search_path set to it), dropped afterwards."""
    from sqlalchemy import create_engine, text

    from fusioncell.db import normalise_url

    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(normalise_url(base_url))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- measuring ---------------------------------------------------------------------------------------------

def rate_of(fn: Callable[[], int]) -> float:
    """Items per second of fn(), which returns how many items it did."""
    start = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - start)


def timed_loop(fn: Callable[[], None], seconds: float) -> float:
    """Calls per second of fn over about `seconds` (calls in blocks to keep the clock out of it)."""
    done, block = 0, 1
    start = time.perf_counter()
    while True:
        for _ in range(block):
            fn()
        done += block
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed
        block = min(block * 2, 4096)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """min..max of the repetitions, to show the noise."""
    if len(values) < 2:
        return "-"
    return f"{fmt(min(values))}..{fmt(max(values))}"


def fmt(value: float, digits: int | None = None) -> str:
    if value != value:  # nan
        return "-"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def verdict(ok: bool) -> str:
    return "[bold green]PASS[/]" if ok else "[bold red]MISS[/]"


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str | None = None) -> None:
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left", min_width=100)
    for i, column in enumerate(columns):
        t.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        t.add_row(*[str(cell) for cell in row])
    console.print(t)


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.node()} | {os.cpu_count()} CPUs | Python {platform.python_version()} | "
            f"load avg {load} | {time.strftime('%Y-%m-%d %H:%M:%S')}")


if __name__ == "__main__":
    print("bench/_common.py: helpers for bench/append.py and bench/verify.py; nothing to run")
