"""The HTTP API under load, served the way `fusioncell serve` serves it, against bare FastAPI baselines
measured in the same run, on the same uvicorn, by the same load generator.

  1. POST /api/v1/records: authenticated (bearer token of a device-key member), a small record (body 200 B,
     request about 750 B), pre-signed before the clock starts, from C keep-alive connections (default 64) in
     one asyncio process. requests/s, p50/p99 latency, and the CPU each process spent per request. Baseline: a
     bare FastAPI app whose POST parses the same JSON into a pydantic model and returns 201.
     Every 201 of fusioncell is durable (group commit, SQLite WAL synchronous=FULL); after the runs the tree
     size is checked against the number of 201s.
  2. Stream fan-out: K WebSocket clients (default 500, the `websockets` asyncio client, one process) on
     /api/v1/stream with bearer tokens of a few members; R records posted one at a time (the next one 20 ms
     after the previous one reached every client); for each receipt, time from POST sent to receipt at the
     client. Baseline: a bare FastAPI WebSocket broadcast (per-connection queue, send_json) whose POST
     broadcasts the posted JSON.

Each server is a separate process (`bench/api.py --serve cell DIR` or `--serve bare`): uvicorn configured as
`fusioncell serve` configures it (fusioncell.app.server_config: httptools and uvloop where installed, no access
log; the baseline gets the same), on 127.0.0.1 and a free
port, the cell created by init_cell with the demo config. Repetitions alternate baseline and fusioncell;
figures are medians over repetitions. The machine is shared and small (2 cores): the load generator shares
them with the server, so the baseline figure is also the load generator's own ceiling, and the CPU columns
say which side was saturated.

Targets (printed PASS/MISS, never asserted): >= 2,000 durable posts/s on one worker; stream p99 <= 1.5 x bare
broadcast p99. Exit status 0 whatever the figures (2 if fusioncell's log misses acknowledged entries).

  .venv/bin/python bench/api.py              # default, about 2-3 minutes
  .venv/bin/python bench/api.py --quick      # smoke run, under 30 s
  .venv/bin/python bench/api.py --profile    # also: py-spy on the server during a POST run and a stream run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from _common import (
    BENCH_KIND,
    CLK_TCK,
    HOST,
    Server,
    bare_stream,
    body_of_size,
    console,
    fmt,
    http_request,
    install_stop_handlers,
    machine_line,
    median,
    new_cell,
    percentile,
    raise_fd_limit,
    read_response,
    serve_app,
    server_stack,
    spread,
    stop_all,
    table,
    verdict,
)
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict

TARGET_POSTS = 2000.0
TARGET_STREAM_RATIO = 1.5
HTTPX_REQUESTS = 1000  # httpx at 64 connections is slow here: a short run shows it
MEMBERS = 8  # device-key members (IL and SY alternately), one bearer token each
BODY_SIZE = 200


# -- the servers (child processes) ---------------------------------------------------------------------------

class RecordIn(BaseModel):
    """The same request schema as fusioncell's RecordCreate."""

    model_config = ConfigDict(extra="forbid")
    submission: dict[str, Any]
    sig: str
    body: dict[str, Any]


def bare_app() -> FastAPI:
    """The baseline: what any FastAPI app on this uvicorn costs for the same requests and the same fan-out."""
    app = FastAPI()
    subscribers: set[asyncio.Queue[Any]] = set()

    @app.get("/")
    async def home() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/api/v1/records", status_code=201)
    async def post_record(record: RecordIn) -> dict[str, Any]:
        return {"seq": 0, "leaf_hash": "00" * 32, "time": "2026-01-01T00:00:00.000Z"}

    @app.post("/bench/broadcast", status_code=201)
    async def broadcast(request: Request) -> dict[str, int]:
        data = await request.json()
        for queue in list(subscribers):
            queue.put_nowait(data)
        return {"subscribers": len(subscribers)}

    bare_stream(app, subscribers)

    return app


def serve(kind: str, directory: str | None) -> None:
    """Child process: the cell (or the bare baseline) served as `fusioncell serve` serves, until SIGTERM."""
    if kind == "cell":
        from fusioncell.app import create_app
        from fusioncell.cell import open_cell
        from fusioncell.deps import Settings
        from fusioncell.record.checker import default_processes

        # As `fusioncell serve` sets it up: device-signed submissions checked in worker processes.
        processes = int(os.environ.get("FUSIONCELL_BENCH_CHECK_PROCESSES", default_processes()))
        app = create_app(open_cell(Path(directory or ".")), settings=Settings(check_processes=processes))
    else:
        app = bare_app()
    serve_app(app)


# -- the cell: members with device keys and tokens, pre-signed submissions -----------------------------------

@dataclass
class Member:
    id: str
    party: str
    token: str
    signer: Any  # fusioncell.record.format.Signer


def prepare_cell(root: Path) -> tuple[list[Member], str]:
    """The demo cell, as `fusioncell init` makes it, with MEMBERS device-key members and their tokens."""
    from fusioncell.identity import service as identity_service
    from fusioncell.identity.service import Viewer
    from fusioncell.record import signing
    from fusioncell.record.format import Signer

    cell = new_cell(root)
    members = []
    with cell.log.transaction(cell.db) as session:
        for i in range(MEMBERS):
            party = ("IL", "SY")[i % 2]
            member = f"{party.lower()}/bench-{i}"
            identity_service.add_member(session, log=cell.log, kek=cell.kek, actor=None, member_id=member,
                                        party=party, name=f"Bench {i}", roles=["liaison"], password=None)
            key = signing.generate()
            identity_service.enrol_key(session, log=cell.log, party=party, holder=member,
                                       public_key=signing.public_bytes(key), custody="device")
            token = identity_service.create_token(session, log=cell.log, viewer=Viewer(member, party, ("liaison",),
                                                  "cli"), scopes=["read", "write"], days=30)
            members.append(Member(member, party, token, Signer(cell=cell.log.cell_id or "", party=party,
                                                                author=member, key=key)))
    cell_id = cell.log.cell_id or ""
    cell.close()
    return members, cell_id


class Payloads:
    """Pre-signed request bodies (JSON bytes), each submission used once; body i starts with its number."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members
        self.next_index = 0

    def make(self, member: Member, count: int, *, audience: list[str] | None = None) -> list[bytes]:
        from fusioncell.clock import SystemClock, format_time

        created = format_time(SystemClock().now())
        out = []
        for _ in range(count):
            i = self.next_index
            self.next_index += 1
            body = body_of_size(BODY_SIZE, i)
            aud = audience or ([member.party, "US"] if i % 4 == 3 else ["IL", "SY", "US"])
            submission, sig = member.signer.submit(kind=BENCH_KIND.name, body=body, audience=aud, created=created)
            out.append(json.dumps({"submission": submission, "sig": sig, "body": body},
                                  separators=(",", ":")).encode())
        return out

    def per_connection(self, conns: int, total: int) -> list[list[bytes]]:
        """total payloads over conns connections; connection c posts as member c % MEMBERS."""
        share = [total // conns + (1 if c < total % conns else 0) for c in range(conns)]
        return [self.make(self.members[c % len(self.members)], n) for c, n in enumerate(share)]


async def http_call(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        return await read_response(reader)
    finally:
        writer.close()


@dataclass
class LoadResult:
    label: str
    requests: int
    elapsed: float
    latencies: list[float]
    statuses: Counter[int]
    errors: Counter[str]
    client_cpu: float
    server_cpu: float
    server_sys: float
    machine_cpu: float  # CPU-seconds every process of the machine used during the run

    @property
    def others(self) -> float:
        """Cores that processes other than the server and this load generator kept busy, on average."""
        return max(0.0, self.machine_cpu - self.client_cpu - self.server_cpu) / self.elapsed

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else float("nan")


async def _raw_load(port: int, requests: list[list[bytes]]) -> tuple[float, list[float], Counter[int], Counter[str]]:
    conns = await asyncio.gather(*(asyncio.open_connection(HOST, port) for _ in requests))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    clock = time.perf_counter

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mine: list[bytes]) -> None:
        for data in mine:
            start = clock()
            writer.write(data)
            try:
                status, _body = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors[type(exc).__name__] += 1  # the connection is gone: this worker stops
                return
            latencies.append(clock() - start)
            statuses[status] += 1

    start = clock()
    await asyncio.gather(*(worker(r, w, mine) for (r, w), mine in zip(conns, requests, strict=True)))
    elapsed = clock() - start
    for _r, w in conns:
        w.close()
    return elapsed, latencies, statuses, errors


async def _httpx_load(port: int, requests: list[list[bytes]]
                      ) -> tuple[float, list[float], Counter[int], Counter[str]]:
    """The same load through httpx.AsyncClient (one pooled client, one task per connection)."""
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    clock = time.perf_counter
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", limits=limits, timeout=60) as client:

        async def worker(mine: list[bytes]) -> None:
            for data in mine:
                head, payload = data.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                path = lines[0].split()[1]
                headers = dict(line.split(": ", 1) for line in lines[1:] if line.split(":")[0] in
                               ("Authorization", "Content-Type"))
                start = clock()
                try:
                    response = await client.post(path, content=payload, headers=headers)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                latencies.append(clock() - start)
                statuses[response.status_code] += 1

        await client.get("/")  # open the pool
        start = clock()
        await asyncio.gather(*(worker(mine) for mine in requests))
        elapsed = clock() - start
    return elapsed, latencies, statuses, errors


def run_load(label: str, server: Server, requests: list[list[bytes]], *, generator: str = "raw") -> LoadResult:
    cpu0, scpu0, ssys0 = time.process_time(), server.cpu_seconds(), server.cpu_seconds(system_only=True)
    mcpu0 = machine_cpu_seconds()
    run = _raw_load if generator == "raw" else _httpx_load
    elapsed, latencies, statuses, errors = asyncio.run(run(server.port, requests))
    # process_time includes the set-up of the connections; negligible next to the run.
    return LoadResult(label, sum(len(r) for r in requests), elapsed, latencies, statuses, errors,
                      time.process_time() - cpu0, server.cpu_seconds() - scpu0,
                      server.cpu_seconds(system_only=True) - ssys0, machine_cpu_seconds() - mcpu0)


def machine_cpu_seconds() -> float:
    """CPU-seconds the whole machine has been busy (not idle, not waiting for I/O) since boot."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return float("nan")


def with_port(port: int, path: str, tokens: list[str], payloads: list[list[bytes]]) -> list[list[bytes]]:
    return [[http_request("POST", port, path, tokens[c % len(tokens)], p) for p in mine]
            for c, mine in enumerate(payloads)]


# -- the stream fan-out --------------------------------------------------------------------------------------

@dataclass
class StreamResult:
    label: str
    clients: int
    records: int
    latencies: list[float] = field(default_factory=list)
    last_receipt: list[float] = field(default_factory=list)  # per record: when the slowest client had it
    post_latency: list[float] = field(default_factory=list)
    missing: int = 0
    connect_seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    bad_status: int = 0


async def _stream_run(label: str, server: Server, ws_path: str, tokens: list[str], posts: list[bytes],
                      clients: int, gap: float, index_of: dict[int, int], deflate: bool,
                      profile: Profile | None) -> StreamResult:
    from websockets.asyncio.client import connect

    result = StreamResult(label, clients, len(posts))
    url = f"ws://{HOST}:{server.port}{ws_path}"
    clock = time.perf_counter
    receipts: list[tuple[float, str]] = []
    state = {"count": 0, "target": clients}
    complete = asyncio.Event()
    gate = asyncio.Semaphore(50)

    async def open_one(j: int) -> Any:
        async with gate:
            token = tokens[j % len(tokens)]
            return await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60,
                                 ping_interval=None, max_size=None, compression="deflate" if deflate else None)

    async def listen(ws: Any) -> None:
        try:
            while True:
                message = await ws.recv()
                now = clock()
                if message.startswith('{"type":"tree_head"'):
                    continue
                receipts.append((now, message))
                state["count"] += 1
                if state["count"] >= state["target"]:
                    complete.set()
        except Exception:  # noqa: BLE001 - closed at the end of the run
            return

    t0 = clock()
    sockets = await asyncio.gather(*(open_one(j) for j in range(clients)))
    result.connect_seconds = clock() - t0
    listeners = [asyncio.ensure_future(listen(ws)) for ws in sockets]
    await asyncio.sleep(0.5)  # let every stream subscribe and finish its (empty) catch-up
    if profile is not None:
        profile.start()
    sent: list[float] = []
    cpu0, scpu0 = time.process_time(), server.cpu_seconds()
    reader, writer = await asyncio.open_connection(HOST, server.port)
    for request in posts:
        state["count"] = 0
        complete.clear()
        start = clock()
        sent.append(start)
        writer.write(request)
        status, _body = await read_response(reader)
        result.post_latency.append(clock() - start)
        if status >= 300:
            result.bad_status += 1
        try:
            await asyncio.wait_for(complete.wait(), 10)
        except TimeoutError:
            pass
        await asyncio.sleep(gap)
    result.client_cpu = time.process_time() - cpu0
    result.server_cpu = server.cpu_seconds() - scpu0
    if profile is not None:
        profile.stop()
    writer.close()
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True), 30)

    per_record: dict[int, list[float]] = defaultdict(list)
    for when, message in receipts:
        data = json.loads(message)
        k = index_of.get(int(data["body"]["text"][:10]))
        if k is not None:
            per_record[k].append(when - sent[k])
    for k in range(len(posts)):
        got = per_record.get(k, [])
        result.latencies.extend(got)
        result.missing += clients - len(got)
        if got:
            result.last_receipt.append(max(got))
    return result


def run_stream(label: str, server: Server, ws_path: str, tokens: list[str], posts: list[bytes], clients: int,
               gap: float, index_of: dict[int, int], *, deflate: bool = True,
               profile: Profile | None = None) -> StreamResult:
    return asyncio.run(_stream_run(label, server, ws_path, tokens, posts, clients, gap, index_of, deflate, profile))


# -- profiling the server with py-spy ------------------------------------------------------------------------

def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


class Profile:
    """py-spy record (non-blocking, raw collapsed stacks, per thread, 200 Hz) on a server between start()
    and stop(), or around a with block."""

    RATE = 200

    def __init__(self, server: Server, out: Path) -> None:
        self.server = server
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.seconds = 0.0

    def start(self) -> None:
        tool = py_spy()
        if tool is None or self.proc is not None:
            return
        self.proc = subprocess.Popen([tool, "record", "--pid", str(self.server.pid), "--rate", str(self.RATE),
                                      "--format", "raw", "--threads", "--nonblocking", "--output", str(self.out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # py-spy attaches
        self.started = time.perf_counter()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self.seconds = time.perf_counter() - self.started
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
        if not self.out.exists():
            console.print(f"py-spy wrote nothing: {err.decode(errors='replace')[-400:]}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _frame_name(frame: str) -> str:
    """'send (starlette/websockets.py:86)' -> 'starlette/websockets.py:send' (lines merged)."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/lib/python3.12/", "/lib/python3.13/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{where}:{name}"


# A sample whose innermost frame is one of these is a thread waiting, not working.
IDLE_LEAVES = ("threading.py:Condition.wait", "threading.py:Event.wait", "selectors.py:EpollSelector.select",
               "threading.py:Thread.join", "threading.py:_wait_for_tstate_lock")
# Frames that every sample of a thread shares: left out of the function tables.
WRAPPERS = ("threading.py:Thread._bootstrap", "threading.py:Thread._bootstrap_inner", "threading.py:Thread.run",
            "anyio/_backends/_asyncio.py:WorkerThread.run", "api.py:<module>", "api.py:main", "api.py:serve",
            "uvicorn/server.py:Server.run", "uvicorn/_compat.py:asyncio_run", "asyncio/runners.py:Runner.run",
            "asyncio/runners.py:run", "asyncio/base_events.py:BaseEventLoop.run_until_complete",
            "asyncio/base_events.py:BaseEventLoop.run_forever", "asyncio/base_events.py:BaseEventLoop._run_once",
            "asyncio/events.py:Handle._run", "fusioncell/record/commit.py:GroupCommitter._run")
# Where the CPU went, by the first of these found in a sample's stack (order matters).
CATEGORIES = (
    ("SQLite connection opened (pool overflow)", "fusioncell/db.py:_sqlite_engine.<locals>._connect"),
    ("auth: bearer token -> Viewer (DB read)", "fusioncell/deps.py:_viewer"),
    ("Log.prepare (shape, hashes, Ed25519 verify)", "fusioncell/record/sequencer.py:Log.prepare"),
    ("Log.append_prepared (INSERTs, savepoint, Merkle)", "fusioncell/record/sequencer.py:Log.append_prepared"),
    ("Log.seal (tree head, Ed25519 sign)", "fusioncell/record/sequencer.py:Log.seal"),
    ("Log.publish -> Broadcaster (commit thread)", "fusioncell/record/sequencer.py:Log.publish"),
    ("group commit: BEGIN, savepoints, COMMIT + fsync", "fusioncell/record/commit.py:GroupCommitter._commit"),
    ("stream: permessage-deflate", "permessage_deflate"),
    ("stream: view_of (json.loads of the leaf per client)", "fusioncell/record/service.py:view_of"),
    ("stream: catch-up read", "fusioncell/record/routes.py:stream.<locals>.catch_up"),
    ("stream: send_json + framing + queue wake-ups", "fusioncell/record/routes.py:stream"),
    ("POST handler (event loop part)", "fusioncell/record/routes.py:post_record"),
)


def summarise_profile(path: Path, title: str, cpu_per_unit: float, unit: str, top: int = 16) -> None:
    """Where the server's CPU went (samples of threads at work; waiting threads left out): by category, by
    thread, fusioncell's functions by inclusive time and every function by self time. Shares come from the
    samples; microseconds are those shares of the CPU per unit measured from /proc (py-spy's non-blocking
    sampling over-counts threads that wait for the GIL, so its own sample counts are not used as time)."""
    if not path.exists():
        return
    threads: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = stack.split(";")
        calls = [_frame_name(f) for f in frames[1:]]
        if not calls or calls[-1] in IDLE_LEAVES:
            idle += n
            continue
        total += n
        thread = frames[0].split("): ", 1)[-1]
        main = thread == "MainThread"
        if thread.startswith(("AnyIO worker thread", "asyncio_", "ThreadPoolExecutor")):
            thread = "threadpool (AnyIO worker threads)"
        threads[thread] += n
        for name, marker in CATEGORIES:
            if any(marker in c for c in calls):
                categories[name] += n
                break
        else:
            categories["event loop: HTTP, ASGI, FastAPI, middleware" if main else f"other ({thread})"] += n
        for call in set(calls):
            if call not in WRAPPERS:
                inclusive[call] += n
        own[calls[-1]] += n
    if not total:
        console.print(f"{title}: no samples")
        return
    per = cpu_per_unit * 1e6

    def share(n: int) -> str:
        return f"{100 * n / total:.1f} %"

    table(f"{title}: where the server's CPU went ({total:,} samples of working threads, {idle:,} of waiting "
          f"ones left out; measured server CPU {fmt(per)} us {unit})",
          ["category", "share", f"~us {unit}"],
          [(c, share(n), fmt(per * n / total)) for c, n in categories.most_common()])
    table(f"{title}: by thread", ["thread", "share"], [(t, share(n)) for t, n in threads.most_common(6)])
    table(f"{title}: fusioncell functions by inclusive time", ["function", "inclusive", "self"],
          [(f, share(n), share(own[f])) for f, n in inclusive.most_common() if f.startswith("fusioncell/")][:top])
    table(f"{title}: functions by self time", ["function", "self"], [(f, share(n)) for f, n in own.most_common(top)])


# -- the run ------------------------------------------------------------------------------------------------

def tree_size(server: Server, token: str) -> int:
    status, body = asyncio.run(http_call(server.port, http_request("GET", server.port, "/api/v1/tree", token)))
    if status != 200:
        raise RuntimeError(f"GET /api/v1/tree answered {status}: {body[:200]!r}")
    return int(json.loads(body)["tree_head"]["size"])


def ms(seconds: float) -> str:
    return fmt(seconds * 1000, 2 if seconds < 0.01 else 1)


def load_row(r: LoadResult) -> list[str]:
    bad = sum(n for s, n in r.statuses.items() if not 200 <= s < 300)
    errors = ", ".join(f"{n} {name}" for name, n in r.errors.items())
    return [r.label, f"{r.ok:,}" + (f" (+{bad} non-2xx)" if bad else "") + (f" ({errors})" if errors else ""),
            fmt(r.rate), ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 99)),
            f"{100 * r.client_cpu / r.elapsed:.0f} %", f"{100 * r.server_cpu / r.elapsed:.0f} %",
            fmt(1e6 * r.server_cpu / max(r.ok, 1)),
            f"{100 * r.server_sys / r.server_cpu:.0f} %" if r.server_cpu else "-"]


def stream_row(r: StreamResult) -> list[str]:
    return [r.label, f"{len(r.latencies):,}", ms(percentile(r.latencies, 50)),
            ms(percentile(r.latencies, 90)), ms(percentile(r.latencies, 99)), ms(max(r.latencies, default=0.0)),
            ms(median(r.last_receipt)), ms(median(r.post_latency)), fmt(1e3 * r.server_cpu / max(r.records, 1), 1),
            fmt(1e3 * r.client_cpu / max(r.records, 1), 1), f"{r.connect_seconds:.1f} s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, under 30 s")
    parser.add_argument("--reps", type=int, help="repetitions (default 3, quick 1)")
    parser.add_argument("--requests", type=int, help="POSTs per timed run (default 3000, quick 1000)")
    parser.add_argument("--conns", type=int, default=64, help="concurrent keep-alive connections (default 64)")
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients (default 500)")
    parser.add_argument("--records", type=int, help="records posted per stream run (default 60, quick 15)")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between stream posts (default 0.02)")
    parser.add_argument("--no-httpx", action="store_true", help="skip the httpx load-generator comparison")
    parser.add_argument("--no-stream", action="store_true", help="skip the stream fan-out")
    parser.add_argument("--no-deflate", action="store_true",
                        help="WebSocket clients do not offer permessage-deflate (what-if; default: they do, as "
                             "browsers and the websockets client do)")
    parser.add_argument("--profile", action="store_true", help="py-spy the fusioncell server (POST and stream)")
    parser.add_argument("--serve", nargs="+", metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1] if len(args.serve) > 1 else None)
        return 0

    quick = args.quick
    reps = args.reps or (1 if quick else 3)
    n_requests = args.requests or (1000 if quick else 3000)
    n_records = args.records or (15 if quick else 60)
    conns = args.conns
    warmup = 200 if quick else 1000
    raise_fd_limit()
    install_stop_handlers()

    console.print(f"[bold]bench/api.py[/] — {machine_line()}")
    console.print(f"uvicorn as `fusioncell serve` ({server_stack()}, WebSocket: websockets-sansio, "
                  f"permessage-deflate {'off' if args.no_deflate else 'on'}), one worker per server process; load "
                  f"generator: this process, {conns} keep-alive connections; {reps} repetition(s), {n_requests:,} "
                  f"POSTs each; body {BODY_SIZE} B")
    scratch = Path(tempfile.mkdtemp(prefix="fusioncell-bench-api-"))
    status = 0
    try:
        t = time.perf_counter()
        members, _cell_id = prepare_cell(scratch / "cell")
        tokens = [m.token for m in members]
        payloads = Payloads(members)
        pools = [payloads.per_connection(conns, n_requests) for _ in range(reps)]
        warm = payloads.per_connection(conns, warmup)
        console.print(f"cell + {MEMBERS} device-key members with tokens + {payloads.next_index:,} pre-signed "
                      f"submissions: {time.perf_counter() - t:.1f} s (before any clock starts)")

        with Server("bare", __file__, ["bare"], scratch) as bare, \
                Server("cell", __file__, ["cell", str(scratch / "cell")], scratch) as cell:
            # -- 1. POST throughput ----------------------------------------------------------------------
            path = "/api/v1/records"
            run_load("warm-up", bare, with_port(bare.port, path, tokens, warm))
            run_load("warm-up", cell, with_port(cell.port, path, tokens, warm))
            size0 = tree_size(cell, tokens[0])
            bare_runs: list[LoadResult] = []
            cell_runs: list[LoadResult] = []
            for rep in range(reps):
                bare_runs.append(run_load(f"bare FastAPI  #{rep + 1}", bare,
                                          with_port(bare.port, path, tokens, pools[0])))
                cell_runs.append(run_load(f"fusioncell    #{rep + 1}", cell,
                                          with_port(cell.port, path, tokens, pools[rep])))
            httpx_runs: list[LoadResult] = []
            if not args.no_httpx and not quick:
                share = payloads.per_connection(conns, HTTPX_REQUESTS)
                httpx_runs.append(run_load("bare FastAPI  (httpx)", bare, with_port(bare.port, path, tokens, share),
                                           generator="httpx"))
                httpx_runs.append(run_load("fusioncell    (httpx)", cell, with_port(cell.port, path, tokens, share),
                                           generator="httpx"))
            acked = sum(r.ok for r in cell_runs) + sum(r.ok for r in httpx_runs if r.label.startswith("fusioncell"))
            size1 = tree_size(cell, tokens[0])
            durable_ok = size1 - size0 == acked
            if not durable_ok:
                status = 2

            columns = ["run", "201s", "req/s", "p50 ms", "p99 ms", "client CPU", "server CPU", "srv us/req",
                       "of it sys"]
            table(f"1. POST /api/v1/records, {BODY_SIZE} B body, {conns} connections, closed loop",
                  columns, [load_row(r) for r in bare_runs + cell_runs + httpx_runs],
                  caption="client/server CPU: share of one core over the run (server: every thread of its "
                          "process and of its checker processes); srv us/req: server CPU per acknowledged request, and the "
                          "kernel's share of it. "
                          "Rows without '(httpx)': pre-built HTTP/1.1 requests on asyncio streams.")
            bare_rate = median([r.rate for r in bare_runs])
            cell_rate = median([r.rate for r in cell_runs])
            cell_cpu = median([1e6 * r.server_cpu / max(r.ok, 1) for r in cell_runs])
            bare_cpu = median([1e6 * r.server_cpu / max(r.ok, 1) for r in bare_runs])
            client_share = median([r.client_cpu / r.elapsed for r in bare_runs])
            summary = [
                ["bare FastAPI (load generator ceiling)", fmt(bare_rate), spread([r.rate for r in bare_runs]),
                 ms(median([percentile(r.latencies, 50) for r in bare_runs])),
                 ms(median([percentile(r.latencies, 99) for r in bare_runs])), fmt(bare_cpu), "-"],
                ["fusioncell durable POST", fmt(cell_rate), spread([r.rate for r in cell_runs]),
                 ms(median([percentile(r.latencies, 50) for r in cell_runs])),
                 ms(median([percentile(r.latencies, 99) for r in cell_runs])), fmt(cell_cpu),
                 f"{verdict(cell_rate >= TARGET_POSTS)} (>= {TARGET_POSTS:,.0f}/s)"],
            ]
            table("1. summary (medians over repetitions)",
                  ["", "req/s", "spread", "p50 ms", "p99 ms", "server CPU us/req", "target"], summary)
            console.print(
                f"   fusioncell / bare: {pct_of(cell_rate, bare_rate)} of the bare rate; server CPU per request "
                f"{cell_cpu / bare_cpu:.1f} x the bare app's. One server core can give at most "
                f"~{fmt(1e6 / cell_cpu)} fusioncell posts/s at this CPU cost (bare: ~{fmt(1e6 / bare_cpu)}/s).")
            server_share = median([r.server_cpu / r.elapsed for r in bare_runs])
            others = median([r.others for r in bare_runs + cell_runs])
            if client_share > 0.85:
                limit = "the load generator is the bottleneck: the bare figure is a lower bound of the app's capacity"
            elif server_share > 0.85:
                limit = "the bare server is CPU-bound (one event loop): the generator is not the limit"
            else:
                limit = ("neither is saturated: other processes on this shared machine take the rest, so the bare "
                         "figure is the machine's limit now, not the generator's or the app's")
            console.print(f"   load generator: {100 * client_share:.0f} % of a core against the bare app, whose server "
                          f"used {100 * server_share:.0f} %; {limit}.")
            console.print(f"   other processes on the machine kept {others:.2f} of {os.cpu_count()} cores busy during "
                          "the POST runs (median).")
            wal = scratch / "cell" / "fusioncell.db-wal"
            console.print(f"   SQLite WAL after the POST runs: {wal.stat().st_size / 2**20:.1f} MiB" if wal.exists()
                          else "   (no SQLite WAL file found)")
            console.print(f"   durability: log grew by {size1 - size0:,} entries for {acked:,} acknowledged posts: "
                          + ("[green]all there[/]" if durable_ok else "[bold red]MISMATCH — figures void[/]"))

            # -- 2. stream fan-out -----------------------------------------------------------------------
            stream_summary = None
            if not args.no_stream:
                clients = args.clients
                bare_streams: list[StreamResult] = []
                cell_streams: list[StreamResult] = []
                poster = members[0]
                for rep in range(reps):
                    posts = payloads.make(poster, n_records, audience=["IL", "SY", "US"])
                    first = payloads.next_index - n_records
                    index_of = {first + k: k for k in range(n_records)}
                    bare_streams.append(run_stream(
                        f"bare #{rep + 1}", bare, "/bench/stream", tokens,
                        [http_request("POST", bare.port, "/bench/broadcast", None, p) for p in posts],
                        clients, args.gap, index_of, deflate=not args.no_deflate))
                    posts = payloads.make(poster, n_records, audience=["IL", "SY", "US"])
                    first = payloads.next_index - n_records
                    index_of = {first + k: k for k in range(n_records)}
                    after = tree_size(cell, poster.token) - 1
                    cell_streams.append(run_stream(
                        f"fusioncell #{rep + 1}", cell, f"/api/v1/stream?after={after}", tokens,
                        [http_request("POST", cell.port, "/api/v1/records", poster.token, p) for p in posts],
                        clients, args.gap, index_of, deflate=not args.no_deflate))
                table(f"2. stream: {clients} WebSocket clients, {n_records} records posted one at a time "
                      f"({args.gap * 1000:.0f} ms after the last client had the previous one); latency = POST sent -> "
                      "message received (ms)",
                      ["run", "receipts", "p50", "p90", "p99", "max", "slowest", "POST", "srv CPU", "cli CPU",
                       "connect"],
                      [stream_row(r) for r in bare_streams + cell_streams],
                      caption="slowest: per record, when the last of the clients had it (median over records); POST: "
                              "median POST round trip; srv/cli CPU: ms of CPU per record of the server process and of "
                              "this client process; connect: time to open every client. fusioncell also sends a "
                              "tree_head message per commit to every client.")
                bare_p99 = median([percentile(r.latencies, 99) for r in bare_streams])
                cell_p99 = median([percentile(r.latencies, 99) for r in cell_streams])
                ratio = cell_p99 / bare_p99 if bare_p99 else float("nan")
                stream_summary = [
                    ["bare broadcast", ms(median([percentile(r.latencies, 50) for r in bare_streams])), ms(bare_p99),
                     spread([1000 * percentile(r.latencies, 99) for r in bare_streams]), "-"],
                    ["fusioncell stream", ms(median([percentile(r.latencies, 50) for r in cell_streams])), ms(cell_p99),
                     spread([1000 * percentile(r.latencies, 99) for r in cell_streams]),
                     f"{ratio:.2f} x bare {verdict(ratio <= TARGET_STREAM_RATIO)} (<= {TARGET_STREAM_RATIO} x)"],
                ]
                table("2. summary (medians over repetitions)", ["", "p50 ms", "p99 ms", "p99 spread ms", "target"],
                      stream_summary)
                missing = sum(r.missing for r in bare_streams + cell_streams)
                if missing:
                    console.print(f"   [yellow]{missing} receipts missing (not delivered within 10 s)[/]")

            # -- profiles --------------------------------------------------------------------------------
            if args.profile:
                if py_spy() is None:
                    console.print("--profile: py-spy not found (.venv/bin/python -m pip install py-spy)")
                else:
                    out = scratch / "post.raw"
                    load = with_port(cell.port, path, tokens, payloads.per_connection(conns, n_requests))
                    with Profile(cell, out):
                        profiled = run_load("fusioncell (py-spy)", cell, load)
                    console.print(f"profiled POST run: {fmt(profiled.rate)} req/s under py-spy (non-blocking), "
                                  f"server CPU {fmt(1e6 * profiled.server_cpu / max(profiled.ok, 1))} us/POST")
                    summarise_profile(out, "server, POST load", profiled.server_cpu / max(profiled.ok, 1), "per POST")
                    if not args.no_stream:
                        out = scratch / "stream.raw"
                        posts = payloads.make(members[0], n_records, audience=["IL", "SY", "US"])
                        first = payloads.next_index - n_records
                        after = tree_size(cell, members[0].token) - 1
                        profiled_stream = run_stream(
                            "fusioncell (py-spy)", cell, f"/api/v1/stream?after={after}", tokens,
                            [http_request("POST", cell.port, "/api/v1/records", members[0].token, p) for p in posts],
                            args.clients, args.gap, {first + k: k for k in range(n_records)},
                            deflate=not args.no_deflate, profile=Profile(cell, out))
                        console.print(f"profiled stream run: p50 {ms(percentile(profiled_stream.latencies, 50))} ms, "
                                      f"p99 {ms(percentile(profiled_stream.latencies, 99))} ms under py-spy")
                        summarise_profile(out, f"server, stream fan-out to {args.clients} clients",
                                          profiled_stream.server_cpu / n_records, "per record")
                    console.print(f"raw profiles (py-spy collapsed stacks) in {scratch}")
        return status
    finally:
        stop_all()
        if not args.profile:
            shutil.rmtree(scratch, ignore_errors=True)


def pct_of(value: float, base: float) -> str:
    return f"{100 * value / base:.0f} %" if base else "-"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
