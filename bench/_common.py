"""Helpers shared by the benches: cells in scratch directories, a bench kind, enrolled device keys, pre-signed
submissions, PostgreSQL scratch schemas, medians and tables; for bench/api.py and bench/hotline.py also server
child processes served as `fusioncell serve` serves, and a lean HTTP/1.1 client.

Not a benchmark itself (`./run bench` runs every bench/*.py; this one only says so)."""

from __future__ import annotations

import asyncio
import atexit
import os
import platform
import random
import resource
import select
import signal
import socket
import statistics
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from fastapi import (  # module level: FastAPI resolves the endpoint's annotations here
    WebSocket,
    WebSocketDisconnect,
)
from rich.console import Console
from rich.table import Table

from fusioncell.cell import CellHandle, init_cell
from fusioncell.clock import format_time, parse_time
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
    """Submissions as an author's device makes them: (submission, sig, body) for bodies start..start+count,
    stamped a millisecond apart from `created` (default now), as a device signs them in time order."""
    base = parse_time(created) if created else _now()
    out = []
    for i in range(start, start + count):
        body = body_of_size(body_size, i)
        submission, sig = signer.submit(kind=BENCH_KIND.name, body=body, audience=audience_for(signer.party, i),
                                        created=format_time(base + timedelta(milliseconds=i - start)))
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


def bare_stream(app: Any, subscribers: set[asyncio.Queue[Any]]) -> None:
    """The bare baseline's WebSocket broadcast at /bench/stream: a queue per connection, send_json, nothing
    else; what is put on every queue in `subscribers` goes out to its connection."""
    @app.websocket("/bench/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        subscribers.add(queue)
        closed = asyncio.ensure_future(ws.receive())
        try:
            while True:
                waiting = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({waiting, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    waiting.cancel()
                    return
                await ws.send_json(waiting.result())
        except (WebSocketDisconnect, asyncio.CancelledError, RuntimeError):
            pass
        finally:
            closed.cancel()
            subscribers.discard(queue)


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


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of unsorted values (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# -- servers in child processes (bench/api.py, bench/hotline.py) -------------------------------------------

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def serve_app(app: Any) -> None:
    """In a server child process: bind a free loopback port, say which on stdout ("PORT n"), and serve `app`
    as `fusioncell serve` does (fusioncell.app.server_config) until SIGTERM. Baselines are served the same
    way, so they get the same HTTP parser and event loop."""
    import uvicorn

    from fusioncell.app import server_config

    # proto=IPPROTO_TCP, as asyncio's own create_server(host, port) makes it (what `fusioncell serve` gets): with
    # proto 0, asyncio does not set TCP_NODELAY on the accepted connections, and every keep-alive response
    # written in two parts (head, body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    raise_fd_limit()
    server = uvicorn.Server(server_config(app, host=HOST, port=port))
    print(f"PORT {port}", flush=True)
    server.run(sockets=[sock])


def server_stack() -> str:
    """What serve_app runs on here: uvicorn's HTTP parser and event loop as its "auto" picks them."""
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"HTTP: {http}, loop: {loop}"


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001, S110
        pass


_LIVE: list[Server] = []


class Server:
    """A server child process, `python SCRIPT --serve ARGS...` (the script calls serve_app); stopped on exit, on
    error and on Ctrl-C (see install_stop_handlers). start() spawns it, wait_ready() waits until it answers
    HTTP; `with` does both."""

    def __init__(self, label: str, script: str | Path, args: Sequence[str], logdir: Path) -> None:
        self.label = label
        self.script = Path(script).resolve()
        self.args = list(args)
        self.logfile = logdir / f"server-{label.replace(' ', '_').replace('/', '_')}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Server:
        cmd = [sys.executable, str(self.script), "--serve", *self.args]
        with self.logfile.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent)  # noqa: PLW1509 - no threads yet here
        _LIVE.append(self)
        return self

    def wait_ready(self) -> Server:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{self.label} server did not start:\n{self.log_tail()}")
        self.port = int(line.split()[1])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                    if s.recv(12).startswith(b"HTTP/1."):  # any answer: the app is up
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.label} server never answered HTTP:\n{self.log_tail()}")

    def cpu_seconds(self, *, system_only: bool = False) -> float:
        """User + system (or system only) CPU so far of the server process, every thread, and of its live
        children (fusioncell's checker processes)."""
        total = 0.0
        for pid in [self.pid, *self._children()]:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[12]) + (0 if system_only else int(fields[11]))) / CLK_TCK
            except (OSError, IndexError, ValueError):
                if pid == self.pid:
                    return float("nan")
        return total

    def _children(self) -> list[int]:
        pids: list[int] = []
        try:
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{task}/children") as f:
                    pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def log_tail(self) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self in _LIVE:
            _LIVE.remove(self)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> Self:
        if self.proc is None:
            self.start()
        if not self.port:
            self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all() -> None:
    for server in _LIVE.copy():
        server.stop()


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def install_stop_handlers() -> None:
    """Server children are stopped at exit, on SIGTERM/SIGHUP and on Ctrl-C (even when started with SIGINT
    ignored, as `cmd &` does)."""
    atexit.register(stop_all)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


# -- a lean HTTP/1.1 client (the load generator's) ---------------------------------------------------------

def http_request(method: str, port: int, path: str, token: str | None, payload: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: fusioncell-bench\r\nAccept: */*\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return head.encode() + b"\r\n" + payload


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        return status, await reader.readexactly(int(lower[at + 17:end]))
    if b"\r\ntransfer-encoding: chunked" in lower:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    raise RuntimeError("response without length")


if __name__ == "__main__":
    print("bench/_common.py: helpers for the benches; nothing to run")
