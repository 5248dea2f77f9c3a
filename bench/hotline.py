"""The hotline's two latencies that matter on a crisis line, each next to a bare baseline measured in the same run.

  1. FLASH delivery: a SY liaison (password member, so the cell holds their signing key; bearer token)
     POSTs a FLASH message to /api/v1/hotline/messages (coded REPORT-INCIDENT at a gazetteer place + free
     text, audience IL); an IL liaison is connected to /api/v1/stream with a bearer token. Messages go one at
     a time (the next one a short random gap after the previous one arrived); latency = POST sent -> the
     message's entry received on the IL stream. p50/p90/p99 over N messages, per repetition.
     Baseline: a bare FastAPI app (same uvicorn, separate process) whose POST broadcasts the posted JSON to
     its WebSocket subscribers (per-connection queue, send_json), driven by the same client the same way.
  2. Missed deadline -> escalation entry on the stream: a cell whose genesis settings give FLASH a short
     acknowledgement deadline ([settings] ack_minutes = { FLASH = 0.02 } in cell.toml: 1.2 s; FLASH also
     escalates a second time at 2 x that), nobody acknowledges; delay = due time (due_at of the deadline.missed
     entry's body; the message's sequenced time + 2 x minutes for deadline.escalated) -> arrival of the entry
     on the IL stream. The deadline Ticker runs every `Settings.deadline_interval` seconds: measured with the
     default 1.0 s and with 0.1 s (one server process per interval, each on its own cell).
     Baselines: the model of a polling ticker (mean delay = interval / 2), a bare polling ticker (a thread,
     Event.wait(interval), then broadcast on the event loop: the same structure as fusioncell's Ticker,
     without the work), and a bare asyncio timer (loop.call_at at the due time, then broadcast) — all in one
     bare server process, scheduled by the same POSTs, so one bare run gives every baseline.

Every server is a separate process (`bench/hotline.py --serve cell DIR INTERVAL` or `--serve bare`): uvicorn as
`fusioncell serve` configures it (fusioncell.app.server_config), on 127.0.0.1 and a free port.
Repetitions alternate baseline and fusioncell; figures are medians over repetitions (of each run's p50/p99).
Times across processes are wall-clock (CLOCK_REALTIME, same machine); the record's times have millisecond
resolution (truncated), so fusioncell's part-2 figures carry up to +1 ms from that alone.

No numeric target is given for these figures: the bench prints figures and ratios, no PASS/MISS, and exits 0.

  .venv/bin/python bench/hotline.py              # default, about 2 minutes
  .venv/bin/python bench/hotline.py --quick      # smoke run, under 30 s
  .venv/bin/python bench/hotline.py --profile    # also: py-spy on the fusioncell server during part 1
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import math
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from _common import (
    HOST,
    Server,
    bare_stream,
    console,
    fmt,
    http_request,
    install_stop_handlers,
    machine_line,
    median,
    percentile,
    read_response,
    serve_app,
    spread,
    stop_all,
    table,
)
from fastapi import FastAPI, Request

SENDER = ("sy/liaison-1", "SY")
READER = ("il/liaison-1", "IL")
DEFAULT_ACK_MINUTES = 0.02  # 1.2 s
INTERVALS = (1.0, 0.1)  # deadline_interval: the default, and a tenth of it


# -- the servers (child processes) -----------------------------------------------------------------------------

class _BareTicker:
    """The structure of fusioncell's deadline Ticker without its work: a thread that wakes every `interval`
    (Event.wait, so the period drifts by the tick's own duration, as there), takes what is due, and hands it to
    the event loop to broadcast."""

    def __init__(self, interval: float, loop: asyncio.AbstractEventLoop, broadcast: Any) -> None:
        self.interval = interval
        self.loop = loop
        self.broadcast = broadcast
        self.pending: list[tuple[float, int, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.order = itertools.count()
        self.stop = threading.Event()
        threading.Thread(target=self._run, name=f"bare-ticker-{interval}", daemon=True).start()

    def add(self, due_at: float, event: dict[str, Any]) -> None:
        with self.lock:
            heapq.heappush(self.pending, (due_at, next(self.order), event))

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            now = time.time()
            fired = []
            with self.lock:
                while self.pending and self.pending[0][0] <= now:
                    fired.append(heapq.heappop(self.pending)[2])
            if fired:
                self.loop.call_soon_threadsafe(self.broadcast, fired)


def bare_app() -> FastAPI:
    """The baseline server: POST -> WebSocket broadcast of the posted JSON, and due-time events fired by an
    asyncio timer and by bare polling tickers."""
    app = FastAPI()
    subscribers: set[asyncio.Queue[Any]] = set()
    counter = itertools.count()
    tickers: dict[float, _BareTicker] = {}

    def broadcast(items: list[dict[str, Any]]) -> None:
        for queue in list(subscribers):
            for item in items:
                queue.put_nowait(item)

    @app.get("/")
    async def home() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/bench/broadcast", status_code=201)
    async def post_broadcast(request: Request) -> dict[str, Any]:
        data = await request.json()
        seq = next(counter)
        broadcast([{"type": "message", "seq": seq, **data}])
        return {"seq": seq, "time": time.time()}

    @app.post("/bench/schedule", status_code=201)
    async def post_schedule(request: Request) -> dict[str, Any]:
        """The message, broadcast now; its 'missed' and 'escalated' events at now + due_in and now + escalate_in,
        by a loop timer and by each polling ticker asked for."""
        data = await request.json()
        seq = next(counter)
        now = time.time()
        broadcast([{"type": "message", "seq": seq, **data["message"]}])
        loop = asyncio.get_running_loop()
        for name, delay in (("deadline.missed", data["due_in"]), ("deadline.escalated", data["escalate_in"])):
            due_at = now + delay
            event = {"type": "timer", "kind": name, "source": seq, "due_at": due_at}
            loop.call_at(loop.time() + (due_at - time.time()), broadcast, [event])
            for interval in data.get("ticks", []):
                ticker = tickers.get(interval)
                if ticker is None:
                    ticker = tickers[interval] = _BareTicker(interval, loop, broadcast)
                ticker.add(due_at, {"type": f"tick:{interval}", "kind": name, "source": seq, "due_at": due_at})
        return {"seq": seq, "time": now}

    bare_stream(app, subscribers)

    return app


def serve(kind: str, rest: list[str]) -> None:
    """Child process: a cell (directory, deadline interval) or the bare baseline, served as `fusioncell serve`
    serves, until SIGTERM."""
    if kind == "cell":
        from fusioncell.app import create_app
        from fusioncell.cell import open_cell
        from fusioncell.deps import Settings

        interval = float(rest[1]) if len(rest) > 1 else 1.0
        app = create_app(open_cell(Path(rest[0])), settings=Settings(deadline_interval=interval or None))
    else:
        app = bare_app()
    serve_app(app)


# -- the cells -------------------------------------------------------------------------------------------------

def prepare_cell(root: Path, ack_minutes: dict[str, float] | None) -> dict[str, str]:
    """The demo cell (IL, SY, US supervising) as `fusioncell init` makes it, with [settings] ack_minutes if
    given, the demo gazetteer, a SY and an IL liaison with passwords (cell-held keys) and a token each."""
    from fusioncell.cell import init_cell
    from fusioncell.config import DEMO_CONFIG, load_config
    from fusioncell.demo.scenario import load_places
    from fusioncell.identity import service as identity_service
    from fusioncell.identity.service import Viewer

    root.mkdir(parents=True, exist_ok=True)
    config_path = root.parent / f"{root.name}.toml"
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    if ack_minutes:
        line = "ack_minutes = { " + ", ".join(f"{k} = {v}" for k, v in ack_minutes.items()) + " }\n"
        # Into the demo's own [settings] table (TOML allows one), or a new one.
        text = text.replace("[settings]\n", "[settings]\n" + line, 1) if "[settings]\n" in text \
            else text + "\n[settings]\n" + line
    config_path.write_text(text, encoding="utf-8")
    cell = init_cell(root, config=load_config(config_path), config_path=config_path)
    tokens = {}
    with cell.log.transaction(cell.db) as session:
        load_places(session, log=cell.log)
        for member, party in (SENDER, READER):
            identity_service.add_member(session, log=cell.log, kek=cell.kek, actor=None, member_id=member,
                                        party=party, name=member.split("/")[1].title(), roles=["liaison"],
                                        password=f"{member}-long-password")
        for member, party in (SENDER, READER):
            tokens[member] = identity_service.create_token(
                session, log=cell.log, viewer=Viewer(member, party, ("liaison",), "cli"), scopes=["read", "write"],
                days=30)
    cell.close()
    return tokens


def flash_message(subject: str) -> dict[str, Any]:
    """What a liaison's client POSTs for a FLASH: a coded incident report at a gazetteer place, with text."""
    return {"audience": ["IL"], "precedence": "FLASH", "subject": subject, "template": "REPORT-INCIDENT",
            "fields": {"place": "quneitra", "time": "2026-11-22T05:40:00Z", "category": "fire"},
            "text": "Small-arms fire observed across the line, north of the town. Request immediate contact.",
            "lang": "en"}


# -- a lean HTTP/1.1 keep-alive client and a WebSocket listener --------------------------------------------------

class Poster:
    """One keep-alive connection that POSTs JSON and returns (status, parsed body, round trip seconds)."""

    def __init__(self, port: int, path: str, token: str | None) -> None:
        self.port, self.path, self.token = port, path, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Self:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def post(self, data: dict[str, Any]) -> tuple[int, Any, float, float]:
        assert self.reader is not None and self.writer is not None
        request = http_request("POST", self.port, self.path, self.token,
                               json.dumps(data, separators=(",", ":")).encode())
        start = time.perf_counter()
        self.writer.write(request)
        status, body = await read_response(self.reader)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body[:300]
        return status, parsed, start, time.perf_counter()


async def get_json(port: int, path: str, token: str | None) -> Any:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(http_request("GET", port, path, token))
        status, body = await read_response(reader)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
        return json.loads(body)
    finally:
        writer.close()


@dataclass
class Arrival:
    perf: float  # time.perf_counter() at receipt
    wall: float  # time.time() at receipt
    data: dict[str, Any]


class Listener:
    """A WebSocket client that files what arrives under a key: ("message", subject) for a hotline message,
    (series, kind, source seq) for a deadline event; fusioncell's tree heads and other entries are counted only."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[Any, ...], Arrival] = {}
        self.changed = asyncio.Event()
        self.ignored: Counter[str] = Counter()
        self.ws: Any = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, port: int, path: str, token: str | None) -> Self:
        from websockets.asyncio.client import connect

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # As a browser: permessage-deflate offered (the websockets default), no client pings during the run.
        self.ws = await connect(f"ws://{HOST}:{port}{path}", additional_headers=headers, open_timeout=30,
                                ping_interval=None, max_size=None)
        self.task = asyncio.ensure_future(self._listen())
        return self

    async def _listen(self) -> None:
        try:
            async for message in self.ws:
                perf, wall = time.perf_counter(), time.time()
                data = json.loads(message)
                key = self._key(data)
                if key is None:
                    self.ignored[str(data.get("type"))] += 1
                    continue
                self.arrivals.setdefault(key, Arrival(perf, wall, data))
                self.changed.set()
        except Exception:  # noqa: BLE001 - closed at the end of a run
            return

    @staticmethod
    def _key(data: dict[str, Any]) -> tuple[Any, ...] | None:
        kind = data.get("type")
        if kind == "entry" and isinstance(data.get("entry"), dict):  # fusioncell
            name = data["entry"]["submission"]["kind"]
            body = data.get("body") or {}
            if name == "hotline.message":
                return ("message", body.get("subject"))
            if name in ("deadline.missed", "deadline.escalated"):
                return ("fusioncell", name, body.get("source"))
            return None
        if kind == "message":  # bare
            return ("message", data.get("subject"))
        if kind == "timer" or (isinstance(kind, str) and kind.startswith("tick:")):
            return (kind, data.get("kind"), data.get("source"))
        return None

    async def wait_for(self, keys: set[tuple[Any, ...]], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not keys <= self.arrivals.keys():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return True

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: BLE001, S110
                pass
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


# -- measuring -------------------------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return fmt(seconds * 1000, 2 if abs(seconds) < 0.01 else 1)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f} x" if b and not math.isnan(a) and not math.isnan(b) else "-"


@dataclass
class Target:
    """Where a run sends its POSTs and opens its stream."""

    label: str
    server: Server
    post_path: str
    stream_path: str
    sender_token: str | None
    reader_token: str | None
    is_cell: bool

    async def stream_path_now(self) -> str:
        if not self.is_cell:
            return self.stream_path
        head = await get_json(self.server.port, "/api/v1/tree", self.reader_token)
        return f"{self.stream_path}?after={int(head['tree_head']['size']) - 1}"


@dataclass
class FlashRun:
    label: str
    latencies: list[float] = field(default_factory=list)  # POST sent -> message on the IL stream
    post_rtt: list[float] = field(default_factory=list)  # POST sent -> 201 read
    before_201: int = 0  # arrived on the stream before the 201 was read
    missing: int = 0
    bad_status: Counter[int] = field(default_factory=Counter)
    server_cpu: float = 0.0
    first_error: str = ""

    @property
    def sent(self) -> int:
        return len(self.post_rtt)


async def flash_run(target: Target, label: str, n: int, gap: float, tag: str) -> FlashRun:
    result = FlashRun(label)
    listener = await Listener().open(target.server.port, await target.stream_path_now(), target.reader_token)
    await asyncio.sleep(0.3)  # subscribed, catch-up done
    rng = random.Random(tag)
    cpu0 = target.server.cpu_seconds()
    try:
        async with Poster(target.server.port, target.post_path, target.sender_token) as poster:
            for i in range(n):
                subject = f"FLASH {tag}-{i:05d}"
                status, body, start, done = await poster.post(flash_message(subject))
                result.post_rtt.append(done - start)
                if status != 201:
                    result.bad_status[status] += 1
                    result.first_error = result.first_error or f"{status}: {str(body)[:200]}"
                    continue
                key = ("message", subject)
                if await listener.wait_for({key}, 10.0):
                    arrival = listener.arrivals[key]
                    result.latencies.append(arrival.perf - start)
                    result.before_201 += arrival.perf < done
                else:
                    result.missing += 1
                await asyncio.sleep(gap * rng.uniform(0.5, 1.5))
    finally:
        result.server_cpu = target.server.cpu_seconds() - cpu0
        await listener.close()
    return result


@dataclass
class DeadlineRun:
    label: str
    series: dict[str, list[float]] = field(default_factory=dict)  # "<series> <kind>" -> delays (s)
    missing: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    bad_status: Counter[int] = field(default_factory=Counter)
    due_at_mismatch: int = 0  # deadline.missed due_at != the message's time + the configured minutes
    server_cpu: float = 0.0
    seconds: float = 0.0
    first_error: str = ""


async def deadline_run(target: Target, label: str, m: int, gap: float, ack_seconds: float, ticks: list[float],
                       tag: str, wait_extra: float) -> DeadlineRun:
    """m FLASH messages at random gaps (mean `gap`), nobody acknowledges; every missed and escalated
    deadline's delay from its due time to its arrival on the IL stream."""
    from datetime import timedelta

    from fusioncell.clock import format_time, parse_time

    result = DeadlineRun(label)
    listener = await Listener().open(target.server.port, await target.stream_path_now(), target.reader_token)
    await asyncio.sleep(0.3)
    rng = random.Random(tag)
    sends: dict[int, float] = {}  # source seq -> its time (epoch seconds), as the server stamped it
    stamps: dict[int, str] = {}  # fusioncell: source seq -> the entry's time as the record holds it
    cpu0, t0 = target.server.cpu_seconds(), time.perf_counter()
    try:
        async with Poster(target.server.port, target.post_path, target.sender_token) as poster:
            for i in range(m):
                message = flash_message(f"FLASH {tag}-{i:05d}")
                data = message if target.is_cell else {"message": message, "due_in": ack_seconds,
                                                      "escalate_in": 2 * ack_seconds, "ticks": ticks}
                status, body, _start, _done = await poster.post(data)
                result.sent += 1
                if status != 201:
                    result.bad_status[status] += 1
                    result.first_error = result.first_error or f"{status}: {str(body)[:200]}"
                    continue
                stamp = body["time"]
                sends[body["seq"]] = parse_time(stamp).timestamp() if isinstance(stamp, str) else float(stamp)
                if isinstance(stamp, str):
                    stamps[body["seq"]] = stamp
                await asyncio.sleep(gap * rng.uniform(0.0, 2.0))
        series = ["fusioncell"] if target.is_cell else ["timer", *(f"tick:{t}" for t in ticks)]
        kinds = ("deadline.missed", "deadline.escalated")
        expected = {(s, k, seq) for s in series for k in kinds for seq in sends}
        await listener.wait_for(expected, 2 * ack_seconds + wait_extra)
        for s in series:
            for k in kinds:
                delays = []
                for seq, sent_at in sends.items():
                    arrival = listener.arrivals.get((s, k, seq))
                    if arrival is None:
                        result.missing[f"{s} {k}"] += 1
                        continue
                    if k == "deadline.missed":
                        due_at = arrival.data["body"]["due_at"] if target.is_cell else arrival.data["due_at"]
                        due = parse_time(due_at).timestamp() if isinstance(due_at, str) else float(due_at)
                        if target.is_cell:
                            expect = format_time(parse_time(stamps[seq]) + timedelta(seconds=ack_seconds))
                            result.due_at_mismatch += expect != due_at
                    else:
                        due = sent_at + 2 * ack_seconds
                    delays.append(arrival.wall - due)
                result.series[f"{s} {k}"] = delays
    finally:
        result.server_cpu = target.server.cpu_seconds() - cpu0
        result.seconds = time.perf_counter() - t0
        await listener.close()
    return result


async def first_flash_then_login(target: Target, member: str) -> tuple[int, str]:
    """POST a FLASH by bearer token to a server that has done nothing yet; then log the sender in with their
    password (POST /api/v1/auth/login), as a liaison at the web page would. Returns the first POST's status."""
    async with Poster(target.server.port, target.post_path, target.sender_token) as poster:
        status, body, _s, _d = await poster.post(flash_message(f"FLASH first-{target.label}"))
    async with Poster(target.server.port, "/api/v1/auth/login", None) as poster:
        login_status, login_body, _s, _d = await poster.post({"member": member,
                                                              "password": f"{member}-long-password"})
    if login_status != 200:
        raise RuntimeError(f"login of {member} answered {login_status}: {str(login_body)[:300]}")
    detail = body.get("detail", "") if isinstance(body, dict) else str(body)
    return status, f"{body.get('code', '')}: {detail}" if isinstance(body, dict) and status != 201 else detail


# -- profiling (optional) --------------------------------------------------------------------------------------

def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


class Profile:
    """py-spy record (raw collapsed stacks, per thread, non-blocking) on a server around a with block."""

    def __init__(self, server: Server, out: Path) -> None:
        self.server, self.out = server, out
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        tool = py_spy()
        if tool:
            self.proc = subprocess.Popen([tool, "record", "--pid", str(self.server.pid), "--rate", "250", "--format",
                                          "raw", "--threads", "--nonblocking", "--output", str(self.out)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Leaves that are a thread waiting (a C call with no Python frame of its own shows as its caller).
IDLE_LEAVES = ("Condition.wait", "Event.wait", "EpollSelector.select", "Thread.join", "_wait_for_tstate_lock",
               "SimpleQueue.get", "Queue.get", "GroupCommitter._take", "Ticker._run")


def summarise_profile(path: Path, title: str, top: int = 18) -> None:
    """fusioncell's functions by inclusive share of the working samples (waiting threads left out)."""
    if not path.exists():
        console.print(f"{title}: py-spy wrote nothing")
        return
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        calls = []
        for frame in frames[1:]:
            name, _, where = frame.partition(" (")
            where = where.rstrip(")").rsplit(":", 1)[0]
            for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/lib/python3.12/"):
                if marker in where:
                    where = where.split(marker, 1)[1]
                    break
            calls.append(f"{where}:{name}")
        if not calls or calls[-1].endswith(IDLE_LEAVES) or "select" in calls[-1].rsplit(":", 1)[-1]:
            continue
        n = int(count)
        total += n
        thread = frames[0].split("): ", 1)[-1]
        threads["threadpool" if thread.startswith(("AnyIO", "asyncio_")) else thread] += n
        for call in set(calls):
            inclusive[call] += n
        own[calls[-1]] += n
    if not total:
        console.print(f"{title}: no working samples")
        return
    def share(n: int) -> str:
        return f"{100 * n / total:.1f} %"

    table(f"{title}: working samples by thread ({total:,} samples)", ["thread", "share"],
          [(t, share(n)) for t, n in threads.most_common(6)])
    table(f"{title}: fusioncell functions by inclusive share", ["function", "inclusive", "self"],
          [(f, share(n), share(own[f])) for f, n in inclusive.most_common() if f.startswith("fusioncell/")][:top])
    table(f"{title}: functions by self share", ["function", "self"], [(f, share(n)) for f, n in own.most_common(top)])


# -- the run ---------------------------------------------------------------------------------------------------

def flash_row(r: FlashRun) -> list[str]:
    note = ""
    if r.missing or r.bad_status:
        note = f" ({r.missing} missing" + (f", {dict(r.bad_status)}" if r.bad_status else "") + ")"
    return [r.label, f"{len(r.latencies)}{note}", ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 90)),
            ms(percentile(r.latencies, 99)), ms(max(r.latencies, default=float("nan"))),
            ms(percentile(r.post_rtt, 50)), f"{100 * r.before_201 / max(len(r.latencies), 1):.0f} %",
            fmt(1e3 * r.server_cpu / max(r.sent, 1), 2)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, under 30 s")
    parser.add_argument("--reps", type=int, help="repetitions (default 3, quick 1)")
    parser.add_argument("--messages", type=int, help="FLASH messages per part-1 run (default 100, quick 30)")
    parser.add_argument("--gap", type=float, default=0.02,
                        help="part 1: mean seconds between a message's arrival and the next POST (default 0.02)")
    parser.add_argument("--deadlines", type=int, help="FLASH messages per part-2 run (default 30, quick 12)")
    parser.add_argument("--deadline-gap", type=float, default=0.12,
                        help="part 2: mean seconds between POSTs (uniform 0..2x; default 0.12)")
    parser.add_argument("--ack-minutes", type=float, default=DEFAULT_ACK_MINUTES,
                        help=f"part 2: the cell's FLASH ack_minutes (default {DEFAULT_ACK_MINUTES} = "
                             f"{DEFAULT_ACK_MINUTES * 60:g} s)")
    parser.add_argument("--skip-flash", action="store_true", help="skip part 1")
    parser.add_argument("--skip-deadlines", action="store_true", help="skip part 2")
    parser.add_argument("--profile", action="store_true", help="py-spy the fusioncell server during part 1 and "
                        "during a part-2 run at the shortest interval")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1:])
        return 0

    quick = args.quick
    reps = args.reps or (1 if quick else 3)
    n_messages = args.messages or (30 if quick else 100)
    n_deadlines = args.deadlines or (12 if quick else 30)
    ack_seconds = args.ack_minutes * 60
    intervals = list(INTERVALS)
    install_stop_handlers()

    console.print(f"[bold]bench/hotline.py[/] — {machine_line()}")
    console.print(f"uvicorn as `fusioncell serve` (one worker per server process), WebSocket client: websockets "
                  f"(permessage-deflate offered); {reps} repetition(s); part 1: {n_messages} FLASH messages per run; "
                  f"part 2: {n_deadlines} unacknowledged FLASH messages per run, FLASH ack deadline "
                  f"{ack_seconds:g} s (escalation at {2 * ack_seconds:g} s), deadline_interval {intervals}")
    scratch = Path(tempfile.mkdtemp(prefix="fusioncell-bench-hotline-"))
    started = time.perf_counter()
    try:
        # -- cells and servers (all started at once; their imports overlap) ------------------------------------
        t = time.perf_counter()
        servers: dict[str, Server] = {"bare": Server("bare", __file__, ["bare"], scratch).start()}
        tokens: dict[str, dict[str, str]] = {}
        if not args.skip_flash:
            tokens["flash"] = prepare_cell(scratch / "flash", None)
            servers["flash"] = Server("cell default", __file__, ["cell", str(scratch / "flash"), "1.0"],
                                      scratch).start()
        if not args.skip_deadlines:
            first = None
            for interval in intervals:
                name = f"deadline-{interval}"
                if first is None:
                    tokens[name] = prepare_cell(scratch / name, {"FLASH": args.ack_minutes})
                    first = name
                else:  # the same cell, copied (closed: no WAL left), so each server has a database of its own
                    shutil.copytree(scratch / first, scratch / name)
                    tokens[name] = tokens[first]
                servers[name] = Server(f"cell interval {interval}", __file__,
                                       ["cell", str(scratch / name), str(interval)], scratch).start()
        for server in servers.values():
            server.wait_ready()
        console.print(f"cells (demo config, gazetteer, {SENDER[0]} and {READER[0]} with passwords and tokens) and "
                      f"{len(servers)} servers ready: {time.perf_counter() - t:.1f} s (before any clock starts)")

        bare_server = servers["bare"]

        def cell_target(name: str, label: str) -> Target:
            return Target(label, servers[name], "/api/v1/hotline/messages", "/api/v1/stream",
                          tokens[name][SENDER[0]], tokens[name][READER[0]], True)

        bare_flash = Target("bare", bare_server, "/bench/broadcast", "/bench/stream", None, None, False)
        bare_sched = Target("bare", bare_server, "/bench/schedule", "/bench/stream", None, None, False)

        # -- a fresh server's first FLASH by token, then a password login (which appends, so syncs the log) -----
        t = time.perf_counter()
        probed = None  # when a probe opened a deadline on a short-deadline cell
        refused: dict[str, list[str]] = {}
        for name in [n for n in servers if n != "bare"]:
            status, detail = asyncio.run(first_flash_then_login(cell_target(name, name), SENDER[0]))
            if status != 201:
                refused.setdefault(f"{status} ({detail})", []).append(servers[name].label)
            elif name.startswith("deadline-"):
                probed = time.perf_counter()
        for answer, labels in refused.items():
            console.print(f"   [yellow]fresh servers ({', '.join(labels)}): the first FLASH by bearer token answered "
                          f"{answer}; after a password login of {SENDER[0]} (an appended entry) the route works[/]")
        # -- warm-up: the servers' first requests (imports, pools, first key unsealing) off the clock --------------
        asyncio.run(flash_run(bare_flash, "warm-up", 10, 0.005, "warm-bare"))
        if not args.skip_flash:
            asyncio.run(flash_run(cell_target("flash", "warm"), "warm-up", 10, 0.005, "warm-cell"))
        if probed is not None:  # a probe's deadline fires and escalates before any clock starts
            time.sleep(max(0.0, probed + 2 * ack_seconds + max(intervals) + 0.3 - time.perf_counter()))
        console.print(f"warm-up: {time.perf_counter() - t:.1f} s")

        # -- 1. FLASH delivery -----------------------------------------------------------------------------------
        if not args.skip_flash:
            bare_runs, cell_runs = [], []
            target = cell_target("flash", "fusioncell")
            for rep in range(reps):
                bare_runs.append(asyncio.run(flash_run(bare_flash, f"bare broadcast #{rep + 1}", n_messages, args.gap,
                                                       f"b{rep}")))
                cell_runs.append(asyncio.run(flash_run(target, f"fusioncell #{rep + 1}", n_messages, args.gap,
                                                       f"c{rep}")))
            table(f"1. FLASH delivery: POST /api/v1/hotline/messages by {SENDER[0]} (bearer token, cell-held key) -> "
                  f"entry on {READER[0]}'s /api/v1/stream; {n_messages} messages one at a time (ms)",
                  ["run", "received", "p50", "p90", "p99", "max", "POST->201 p50", "before 201", "srv CPU ms/msg"],
                  [flash_row(r) for r in bare_runs + cell_runs],
                  caption="before 201: share of messages that reached the stream before the sender read its 201; "
                          "srv CPU: CPU of the server process (every thread) per message over the run. Bare: the "
                          "same JSON POSTed to a bare FastAPI app that broadcasts it to its WebSocket subscribers.")
            for r in cell_runs + bare_runs:
                if r.first_error:
                    console.print(f"   [yellow]{r.label}: first error {r.first_error}[/]")
            b50 = median([percentile(r.latencies, 50) for r in bare_runs])
            b99 = median([percentile(r.latencies, 99) for r in bare_runs])
            c50 = median([percentile(r.latencies, 50) for r in cell_runs])
            c99 = median([percentile(r.latencies, 99) for r in cell_runs])
            bcpu = median([r.server_cpu / max(r.sent, 1) for r in bare_runs])
            ccpu = median([r.server_cpu / max(r.sent, 1) for r in cell_runs])
            table("1. summary (medians over repetitions)",
                  ["", "p50 ms", "p99 ms", "p50 spread", "p99 spread", "srv CPU ms/msg", "p50 ratio", "p99 ratio"],
                  [["bare POST -> WebSocket broadcast", ms(b50), ms(b99),
                    spread([1e3 * percentile(r.latencies, 50) for r in bare_runs]),
                    spread([1e3 * percentile(r.latencies, 99) for r in bare_runs]), fmt(1e3 * bcpu, 2), "1.00 x",
                    "1.00 x"],
                   ["fusioncell FLASH -> IL stream", ms(c50), ms(c99),
                    spread([1e3 * percentile(r.latencies, 50) for r in cell_runs]),
                    spread([1e3 * percentile(r.latencies, 99) for r in cell_runs]), fmt(1e3 * ccpu, 2),
                    ratio(c50, b50), ratio(c99, b99)]])
            console.print(f"   fusioncell adds {ms(c50 - b50)} ms at the median and {ms(c99 - b99)} ms at p99 over the "
                          f"bare broadcast; its server spends {ratio(ccpu, bcpu)} the bare server's CPU per message "
                          f"(~{fmt(1 / ccpu if ccpu else float('nan'))} FLASH/s per core at this cost).")

        # -- 2. missed deadline -> escalation entry on the stream ---------------------------------------------------
        if not args.skip_deadlines:
            wait_extra = max(intervals) + 5.0
            bare_d: list[DeadlineRun] = []
            cell_d: dict[float, list[DeadlineRun]] = {i: [] for i in intervals}
            for rep in range(reps):
                bare_d.append(asyncio.run(deadline_run(bare_sched, f"bare #{rep + 1}", n_deadlines, args.deadline_gap,
                                                       ack_seconds, intervals, f"db{rep}", wait_extra)))
                for interval in intervals:
                    cell_d[interval].append(asyncio.run(deadline_run(
                        cell_target(f"deadline-{interval}", "fusioncell"), f"fusioncell {interval} s #{rep + 1}",
                        n_deadlines, args.deadline_gap, ack_seconds, [], f"dc{interval}-{rep}", wait_extra)))

            def stats(values: list[float]) -> list[str]:
                return [ms(mean(values)), ms(percentile(values, 50)), ms(percentile(values, 90)),
                        ms(percentile(values, 99)), ms(min(values, default=float("nan"))),
                        ms(max(values, default=float("nan")))]

            rows = []
            for r in bare_d:
                for s in ["timer", *(f"tick:{i}" for i in intervals)]:
                    label = "asyncio timer" if s == "timer" else f"bare ticker {s[5:]} s"
                    rows.append([f"{r.label} {label}", len(r.series.get(f"{s} deadline.missed", [])),
                                 *stats(r.series.get(f"{s} deadline.missed", [])),
                                 ms(median(r.series.get(f"{s} deadline.escalated", [])))])
            for interval in intervals:
                for r in cell_d[interval]:
                    missed = r.series.get("fusioncell deadline.missed", [])
                    rows.append([r.label, len(missed), *stats(missed),
                                 ms(median(r.series.get("fusioncell deadline.escalated", [])))])
            table(f"2. missed deadline: due time -> deadline.missed entry on {READER[0]}'s stream (ms); {n_deadlines} "
                  f"unacknowledged FLASH messages per run, deadline {ack_seconds:g} s",
                  ["run", "n", "mean", "p50", "p90", "p99", "min", "max", "escal. p50"], rows,
                  caption="escal. p50: the same delay for the second escalation (deadline.escalated, due at the "
                          "message's time + 2 x the deadline). Bare rows: one bare server run fires every baseline "
                          "for the same scheduled messages: an asyncio timer at the due time, and bare polling "
                          "tickers (thread + Event.wait(interval), as fusioncell's Ticker, without its work).")
            for r in [*bare_d, *(x for i in intervals for x in cell_d[i])]:
                if r.missing or r.bad_status or r.due_at_mismatch or r.first_error:
                    console.print(f"   [yellow]{r.label}: missing {dict(r.missing)}; bad status {dict(r.bad_status)}; "
                                  f"due_at != time + deadline: {r.due_at_mismatch}; {r.first_error}[/]")

            def med(runs: list[DeadlineRun], key: str, fn: Any) -> float:
                return median([fn(r.series[key]) for r in runs if r.series.get(key)])

            def p99(v: list[float]) -> float:
                return percentile(v, 99)

            def p50(v: list[float]) -> float:
                return percentile(v, 50)

            timer_mean = med(bare_d, "timer deadline.missed", mean)
            summary = [["bare asyncio timer at the due time", "-", ms(timer_mean),
                        ms(med(bare_d, "timer deadline.missed", p50)), ms(med(bare_d, "timer deadline.missed", p99)),
                        "-", "-", "-"]]
            for interval in intervals:
                tick_key = f"tick:{interval} deadline.missed"
                tick_mean = med(bare_d, tick_key, mean)
                cell_mean = med(cell_d[interval], "fusioncell deadline.missed", mean)
                summary.append([f"bare ticker, interval {interval} s", ms(interval / 2), ms(tick_mean),
                                ms(med(bare_d, tick_key, p50)), ms(med(bare_d, tick_key, p99)),
                                ratio(tick_mean, interval / 2), "1.00 x", "-"])
                summary.append([f"fusioncell Ticker, interval {interval} s", ms(interval / 2), ms(cell_mean),
                                ms(med(cell_d[interval], "fusioncell deadline.missed", p50)),
                                ms(med(cell_d[interval], "fusioncell deadline.missed", p99)),
                                ratio(cell_mean, interval / 2), ratio(cell_mean, tick_mean),
                                ms(cell_mean - tick_mean)])
            table("2. summary: due time -> deadline.missed on the stream (medians over repetitions of each run's "
                  "mean/p50/p99)",
                  ["", "model ms", "mean ms", "p50 ms", "p99 ms", "mean / model", "mean / bare ticker",
                   "extra ms"], summary,
                  caption="model: a poller with period T fires a uniformly placed due time T/2 late on average (the "
                          f"mean of {n_deadlines} such delays varies by about T/sqrt(12 x {n_deadlines}) = "
                          + ", ".join(f"{ms(i / (12 * n_deadlines) ** 0.5)} ms at {i} s" for i in intervals)
                          + " from run to run). extra: fusioncell's mean minus the bare ticker's: what a tick (due "
                          "query, cell-signed entry, group commit with fsync, publish, stream send) adds to the "
                          "polling delay.")
            for interval in intervals:
                runs = cell_d[interval]
                cpu = median([r.server_cpu / r.seconds for r in runs])
                console.print(f"   fusioncell {interval} s: server CPU {100 * cpu:.1f} % of a core during the runs "
                              f"(median); escalation (deadline.escalated) p50 "
                              f"{ms(med(runs, 'fusioncell deadline.escalated', p50))} ms, bare ticker "
                              f"{ms(med(bare_d, f'tick:{interval} deadline.escalated', p50))} ms")
            # What polling costs when nothing is due: the cell servers' CPU over the same idle window.
            idle = 1.0 if quick else 3.0
            cells = [(i, servers[f"deadline-{i}"]) for i in intervals]
            before = [(s.cpu_seconds(), bare_server.cpu_seconds()) for _i, s in cells]
            time.sleep(idle)
            after = [(s.cpu_seconds(), bare_server.cpu_seconds()) for _i, s in cells]
            console.print("   idle (no deadline due, no client), over the same " + f"{idle:g} s: " + "; ".join(
                f"fusioncell {i} s ticker {100 * (a[0] - b[0]) / idle:.1f} % of a core"
                for (i, _s), b, a in zip(cells, before, after, strict=True))
                + f"; bare server {100 * (after[0][1] - before[0][1]) / idle:.1f} % (/proc ticks of 10 ms)")

        # -- profiles --------------------------------------------------------------------------------------------
        if args.profile:
            if py_spy() is None:
                console.print("--profile: py-spy not found (.venv/bin/python -m pip install py-spy)")
            else:
                if not args.skip_flash:
                    out = scratch / "flash.raw"
                    with Profile(servers["flash"], out):
                        profiled = asyncio.run(flash_run(cell_target("flash", "fusioncell"), "profiled",
                                                         n_messages, args.gap, "pf"))
                    console.print(f"profiled part-1 run (py-spy attached): p50 {ms(percentile(profiled.latencies, 50))}"
                                  f" ms, p99 {ms(percentile(profiled.latencies, 99))} ms")
                    summarise_profile(out, "server, FLASH delivery")
                if not args.skip_deadlines:
                    interval = min(intervals)
                    out = scratch / "deadline.raw"
                    with Profile(servers[f"deadline-{interval}"], out):
                        asyncio.run(deadline_run(cell_target(f"deadline-{interval}", "fusioncell"), "profiled",
                                                 n_deadlines, args.deadline_gap, ack_seconds, [], "pd",
                                                 max(intervals) + 5.0))
                    summarise_profile(out, f"server, deadlines at interval {interval} s")
                console.print(f"raw profiles (py-spy collapsed stacks) in {scratch}")
        console.print(f"total {time.perf_counter() - started:.0f} s")
        return 0
    finally:
        stop_all()
        if not args.profile:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
