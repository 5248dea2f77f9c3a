"""Durable appends per second of the sequencer with group commit, against this machine's limits measured in
the same run.

  a. raw limits: Ed25519 signs/s (PyNaCl) and verifies/s (the record's check, fusioncell.record.signing.verify,
     on one thread and in two processes), canonical submission bytes; fsyncs/s (1 KiB write + os.fsync on the
     disk of the database);
  b. the CPU-only "signing-and-hashing" baseline: per entry, canonicalise the 1 KiB body and the submission,
     SHA-256 the body, verify the author signature (the record's check), canonicalise and leaf-hash the entry (no
     storage), on one thread and in two processes; measured in five passes before each rep's timed runs and five
     after them, a rep's baseline being the median of the ten (the better of one and two processes);
  c. the sequencer on SQLite (WAL, synchronous=FULL, created by fusioncell.cell.init_cell with the demo config;
     and on PostgreSQL with --pg): W writers (default 8), each with its own enrolled device key, hand
     device-signed submissions to the server's path for them (fusioncell.record.intake.Intake, as
     POST /api/v1/records does), with --processes checker processes (default: two per core, as
     `fusioncell serve`), each writer keeping up to --in-flight appends (default 64) submitted and not yet
     acknowledged, as an HTTP client with several requests open does; --in-flight 1 waits for each append
     before the next. The writers are driven from one thread, as the API's event loop drives requests: the
     commit thread hands acknowledgements back as deps._Completions does, one wake-up per batch of them. An
     append counts when it is acknowledged, which is after the fsync of the batch holding it. Submissions are
     signed before the clock starts (signing is the authors' work, on their devices), and kept out of the garbage
     collector's sight (gc.freeze: they stand for the clients' memory).
     After each timed run the log is verified (verify_source on a DatabaseSource) and its size checked.

Targets (printed PASS/MISS, never asserted): >= 8,000 durable appends/s, and >= 60 % of the CPU-only rate.
Exit status: 0 whatever the figures; 2 if a log does not verify or entries are missing (the figures are void).

  .venv/bin/python bench/append.py            # 3 repetitions of 40,000 appends on SQLite
  .venv/bin/python bench/append.py --quick    # smoke run, about 20 s
  .venv/bin/python bench/append.py --pg postgresql://postgres@127.0.0.1:5432/test
  .venv/bin/python bench/append.py --no-fsync-run   # also SQLite with synchronous=OFF, for comparison
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import multiprocessing
import os
import pstats
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.signing
from _common import (
    body_of_size,
    console,
    enrol_signers,
    fmt,
    machine_line,
    median,
    new_cell,
    pct,
    pg_schema,
    presign,
    spread,
    table,
    timed_loop,
    verdict,
)
from sqlalchemy import event, func, select

from fusioncell.clock import format_time
from fusioncell.record import signing
from fusioncell.record.canonical import canonical, hash_hex
from fusioncell.record.checker import default_processes
from fusioncell.record.commit import GroupCommitter
from fusioncell.record.format import Signer, entry_bytes
from fusioncell.record.intake import Intake
from fusioncell.record.merkle import leaf_hash
from fusioncell.record.models import Entry
from fusioncell.record.verify import DatabaseSource, verify_source

TARGET_RATE = 8000.0
TARGET_RATIO = 0.60
BASELINE_PASSES = 5
NOT_DURABLE = "SQLite, synchronous=OFF (not durable)"


# -- a. raw limits -------------------------------------------------------------------------------------------

def _in_processes(parts: list[tuple[Callable[..., None], tuple]]) -> float:
    """Seconds from a common start until the last of the calls, each in a forked process of its own, is done
    (perf_counter is the system's monotonic clock, the same in every process). Processes, not threads: the
    record's Ed25519 check keeps the GIL (record/signing.py)."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(parts) + 1)
    done = ctx.SimpleQueue()

    def run(function: Callable[..., None], args: tuple) -> None:
        barrier.wait()
        try:
            function(*args)
        finally:  # also when it fails (the exit code says so), so that the parent is not left waiting
            done.put(time.perf_counter())

    procs = [ctx.Process(target=run, args=part) for part in parts]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    finished = [done.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a baseline process failed (exit code {p.exitcode})")
    return max(finished) - start


def raw_limits(sample: list[tuple[dict, str, dict]], key: nacl.signing.SigningKey, disk_dir: Path,
               seconds: float) -> dict[str, float]:
    messages = [canonical(sub) for sub, _sig, _body in sample]
    sigs = [signing.sign(key, m) for m in messages]
    public = signing.public_bytes(key)
    n = len(messages)
    state = {"i": 0}

    def sign_one() -> None:
        i = state["i"] = (state["i"] + 1) % n
        key.sign(messages[i])

    def verify_one() -> None:
        i = state["i"] = (state["i"] + 1) % n
        signing.verify(public, messages[i], sigs[i])

    def verify_many(offset: int, count: int) -> None:
        for j in range(count):
            i = (offset + j) % n
            if not signing.verify(public, messages[i], sigs[i]):
                raise AssertionError("signature")

    per = max(1, int(seconds * 12000 / 2))
    out = {
        "sign": timed_loop(sign_one, seconds),
        "verify": timed_loop(verify_one, seconds),
        "verify2": 2 * per / _in_processes([(verify_many, (t * 997, per)) for t in range(2)]),
    }
    path = disk_dir / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = os.urandom(1024)
    try:
        out["fsync"] = timed_loop(lambda: (os.write(fd, block), os.fsync(fd)), seconds)
    finally:
        os.close(fd)
        path.unlink()
    return out


# -- b. CPU-only baseline ------------------------------------------------------------------------------------

def baseline_sample(count: int, body_size: int,
                    ) -> tuple[list[tuple[dict, str, dict]], dict[str, bytes], list[nacl.signing.SigningKey]]:
    """Signed submissions for the raw and CPU-only measurements (no database), half from an author of IL and half
    from one of SY; their public keys by key id; and their signing keys."""
    keys = [signing.generate() for _ in range(2)]
    signers = [Signer(cell="jfm-demo", party=p, author=f"{p.lower()}/sample", key=k)
               for p, k in zip(("IL", "SY"), keys, strict=True)]
    created = format_time(_now())
    sample = []
    for j, s in enumerate(signers):
        sample += presign(s, j * count, count // 2, body_size, created)
    return sample, {s.key_id: signing.public_bytes(s.key) for s in signers}, keys


def cpu_work(items: list[tuple[dict, str, dict]], public: dict[str, bytes], first_seq: int, when: str) -> None:
    """Per entry, what the record costs without storage, with the record's own Ed25519 check."""
    for i, (sub, sig, body) in enumerate(items):
        body_bytes = canonical(body)
        if hash_hex(body_bytes) != sub["body"]:
            raise AssertionError("body hash")
        sub_bytes = canonical(sub)
        if not signing.verify(public[sub["key"]], sub_bytes, sig):
            raise AssertionError("signature")
        # The entry's bytes as the sequencer makes them (spliced from the submission's): the same work.
        leaf = entry_bytes(seq=first_seq + i, time=when, submission_bytes=sub_bytes, sig=sig)
        leaf_hash(leaf)


def cpu_baseline(items: list[tuple[dict, str, dict]], public: dict[str, bytes], processes: int) -> float:
    """Entries/s of cpu_work on one thread, or shared among processes (the best this machine does with them)."""
    when = format_time(_now())
    if processes == 1:
        start = time.perf_counter()
        cpu_work(items, public, 0, when)
        return len(items) / (time.perf_counter() - start)
    parts = [(cpu_work, (items[t::processes], public, 0, when)) for t in range(processes)]
    return len(items) / _in_processes(parts)


def _now():  # noqa: ANN202
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


# -- c. the sequencer ----------------------------------------------------------------------------------------

class TimedCommitter(GroupCommitter):
    """GroupCommitter that keeps time: busy = inside _commit (appends + savepoints + seal + COMMIT), busy_cpu =
    the thread's CPU time there (the rest is waiting: for the disk, or for the GIL)."""

    def __init__(self, *args: Any, profiler: cProfile.Profile | None = None, **kwargs: Any) -> None:
        self.busy = 0.0
        self.busy_cpu = 0.0
        self.profiler = profiler
        super().__init__(*args, **kwargs)

    def _commit(self, batch: list) -> None:
        start, cpu = time.perf_counter(), time.thread_time()
        super()._commit(batch)
        self.busy += time.perf_counter() - start
        self.busy_cpu += time.thread_time() - cpu

    def _run(self) -> None:
        if self.profiler is None:
            return super()._run()
        self.profiler.enable()
        try:
            return super()._run()
        finally:
            self.profiler.disable()


@dataclass
class Run:
    backend: str
    appends: int
    seconds: float
    batches: int
    busy: float
    busy_cpu: float
    latencies: list[float]
    errors: list[str]
    expected_size: int = 0
    count: int = 0
    verify_ok: bool = False
    verify_msg: str = ""
    verify_seconds: float = 0.0
    profile: str = ""
    cpu: float = 0.0  # CPU seconds of the whole process during the timed run
    workers_cpu: float = 0.0  # CPU seconds of the checker processes during the timed run
    intake_batch: float = 0.0  # mean submissions per batch the intake took (and sent to one checker)

    @property
    def rate(self) -> float:
        return self.appends / self.seconds

    @property
    def mean_batch(self) -> float:
        return self.appends / self.batches if self.batches else float("nan")

    @property
    def intact(self) -> bool:
        return self.verify_ok and self.count == self.expected_size and not self.errors


def sequencer_run(backend: str, db_url: str | None, scratch: Path, *, appends: int, writers: int, body_size: int,
                  max_batch: int, profile: bool, in_flight: int, processes: int, durable: bool = True) -> Run:
    root = Path(tempfile.mkdtemp(prefix="cell-", dir=scratch))
    cell = new_cell(root / "cell", db_url)
    if not durable:  # SQLite without fsync: what storage costs apart from waiting for the disk
        event.listen(cell.db.engine, "connect", lambda conn, _record: conn.execute("PRAGMA synchronous=OFF"))
        cell.db.engine.dispose()
        with cell.db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 0
    try:
        log = cell.log
        signers = enrol_signers(cell, writers)
        base = cell.log.mark()[0]
        per = [appends // writers + (1 if w < appends % writers else 0) for w in range(writers)]
        created = format_time(_now())
        work_lists, start = [], 0
        for w, signer in enumerate(signers):
            work_lists.append(presign(signer, start, per[w], body_size, created))
            start += per[w]
        # The submissions stand for what clients hold in their own processes: out of the collector's sight, or
        # every full collection of the server's heap would walk them.
        gc.freeze()

        profiler = cProfile.Profile() if profile else None
        committer = TimedCommitter(cell.db, log, max_batch=max_batch, profiler=profiler)
        intake = Intake(log, committer, processes=processes)
        for checker in intake.checkers:  # started before the clock, as a server's are
            checker.start()
        barrier = threading.Barrier(2)
        latencies: list[float] = []
        errors: list[str] = []

        def clients() -> None:
            """The writers, driven from one thread as the API's event loop drives its requests (POST /api/v1/records:
            intake.submit, then deps._Completions hands each acknowledgement back with a lock and a list append on
            the commit thread, and one wake-up of the loop per batch of them). Each writer keeps up to in_flight
            appends submitted and not yet acknowledged. A thread per writer instead would be eight threads the
            server does not have, each woken for its own acknowledgements and taking the GIL from the server's."""
            lock = threading.Lock()
            acknowledged: list[tuple[Any, int, float]] = []
            wake = threading.Event()

            def done(future: Any, w: int, t0: float) -> None:  # on the commit thread, as _Completions.put
                with lock:
                    acknowledged.append((future, w, t0))
                    if len(acknowledged) > 1:
                        return  # a wake-up is on its way and takes this one too
                wake.set()

            sent = [0] * writers
            pending = appends

            def submit(w: int) -> None:
                sub, sig, body = work_lists[w][sent[w]]
                sent[w] += 1
                t0 = time.perf_counter()
                intake.submit(submission=sub, sig=sig, body=body, done=lambda f, w=w, t0=t0: done(f, w, t0))

            barrier.wait()
            for w in range(writers):
                for _ in range(min(in_flight, len(work_lists[w]))):
                    submit(w)
            while pending:
                wake.wait()
                wake.clear()
                with lock:
                    ready = acknowledged[:]
                    acknowledged.clear()
                now = time.perf_counter()
                for future, w, t0 in ready:
                    pending -= 1
                    latencies.append(now - t0)
                    exc = future.exception()
                    if exc is not None:
                        errors.append(f"{exc.__class__.__name__}: {exc}")
                    if sent[w] < len(work_lists[w]):
                        submit(w)

        threads = [threading.Thread(target=clients, name="clients")]
        for t in threads:
            t.start()
        batches0, taken0 = committer.batches, (intake.batches, intake.items)
        barrier.wait()
        cpu0, workers0 = _cpu(), _children_cpu(intake)
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        cpu, workers_cpu = _cpu() - cpu0, _children_cpu(intake) - workers0
        batches = committer.batches - batches0
        intake_batch = (intake.items - taken0[1]) / max(1, intake.batches - taken0[0])
        intake.close()
        committer.close()

        run = Run(backend, appends, seconds, batches, committer.busy, committer.busy_cpu, sorted(latencies),
                  errors, cpu=cpu, workers_cpu=workers_cpu, intake_batch=intake_batch)
        if profiler is not None:
            stream = io.StringIO()
            stats = pstats.Stats(profiler, stream=stream)
            stats.sort_stats("tottime").print_stats(18)
            stats.sort_stats("cumulative").print_stats("fusioncell|sqlalchemy/(orm/session|engine/base)", 22)
            run.profile = stream.getvalue()

        # The log must hold every acknowledged append, and verify.
        run.expected_size = base + appends
        with cell.db.read() as session:
            run.count = session.execute(select(func.count()).select_from(Entry)).scalar_one()
        url = cell.db.url
        t1 = time.perf_counter()
        try:
            report = verify_source(DatabaseSource(url), workers=2)
            run.verify_ok = report.size == run.expected_size and report.entries == run.expected_size
            run.verify_msg = f"OK: {report.size} entries, {report.heads} tree heads, root {report.root[:16]}…"
        except Exception as exc:  # noqa: BLE001
            run.verify_msg = f"FAILED: {exc.__class__.__name__}: {exc}"
        run.verify_seconds = time.perf_counter() - t1
        return run
    finally:
        gc.unfreeze()
        cell.close()
        shutil.rmtree(root, ignore_errors=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu(intake: Intake) -> float:
    """CPU seconds the intake's checker processes have used (user + system, from /proc)."""
    total = 0.0
    for checker in intake.checkers:
        try:
            fields = Path(f"/proc/{checker.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, TypeError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# -- main ----------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 4,000 appends, 1 repetition (~20 s)")
    parser.add_argument("--appends", type=int, help="appends per timed run (default 40,000; --quick 4,000)")
    parser.add_argument("--reps", type=int, help="repetitions of each measurement (default 3; --quick 1)")
    parser.add_argument("--writers", type=int, default=8,
                        help="concurrent writers, each with its own key (default 8), driven from one thread")
    parser.add_argument("--body", type=int, default=1024, help="canonical body size in bytes (default 1024)")
    parser.add_argument("--max-batch", type=int, default=512, help="GroupCommitter max_batch (default 512)")
    parser.add_argument("--in-flight", type=int, default=64,
                        help="appends each writer keeps submitted and not yet acknowledged (default 64; 1 = each "
                        "writer waits for every append before the next)")
    parser.add_argument("--processes", type=int, default=default_processes(),
                        help="the intake's checker processes (default: two per core, as `fusioncell serve`; 0: "
                        "checks in the server's process)")
    parser.add_argument("--sample", type=int,
                        help="entries in the CPU-only baseline sample (default 4,000; --quick 2,000), five passes "
                        "before and five after each rep's runs")
    parser.add_argument("--pg", metavar="URL", help="also run on PostgreSQL, in a scratch schema of this database")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run (with --pg)")
    parser.add_argument("--no-fsync-run", action="store_true",
                        help="also run the sequencer on SQLite with synchronous=OFF (not durable) in each rep: how "
                        "much of the gap to the CPU-only rate is waiting for the disk, and how much is the work")
    parser.add_argument("--dir", type=Path, help="scratch directory (default: system temp dir)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the committer thread in the last repetition and print where its time goes")
    args = parser.parse_args()
    appends = args.appends or (4000 if args.quick else 40000)
    reps = args.reps or (1 if args.quick else 3)
    sample_n = args.sample or (2000 if args.quick else 4000)
    raw_seconds = 0.4 if args.quick else 1.0
    scratch = Path(tempfile.mkdtemp(prefix="fusioncell-bench-", dir=args.dir))

    console.print(f"[bold]bench/append.py[/] — {machine_line()}")
    console.print(f"{appends:,} appends x {reps} rep(s), {args.writers} writers, {args.body} B bodies, "
                  f"max_batch {args.max_batch}, {args.in_flight} in flight per writer; scratch {scratch}")

    sample, public, keys = baseline_sample(sample_n, args.body)
    assert len(canonical(body_of_size(args.body, 0))) == args.body

    raw: dict[str, list[float]] = {"sign": [], "verify": [], "verify2": [], "fsync": []}
    cpu1: list[float] = []
    cpu2: list[float] = []
    runs: dict[str, list[Run]] = {"SQLite": [], "PostgreSQL": [], NOT_DURABLE: []}
    backends: list[tuple[str, str | None]] = [] if args.no_sqlite else [("SQLite", None)]
    if args.pg:
        backends.append(("PostgreSQL", args.pg))
    if args.no_fsync_run and not args.no_sqlite:
        backends.append((NOT_DURABLE, None))

    try:
        for rep in range(reps):
            limits = raw_limits(sample, keys[0], scratch, raw_seconds)
            for k, v in limits.items():
                raw[k].append(v)
            # The CPU-only rate, in five passes before this rep's runs and five after them, for the median of the
            # ten: one pass is a fraction of a second, and on a shared machine a single one reads high or low by a
            # third; passes on both sides of the runs see the machine as the runs did, not only as it was before.
            before1 = [cpu_baseline(sample, public, 1) for _ in range(BASELINE_PASSES)]
            before2 = [cpu_baseline(sample, public, 2) for _ in range(BASELINE_PASSES)]
            console.print(f"rep {rep + 1}/{reps}: raw sign {fmt(limits['sign'])}/s, verify {fmt(limits['verify'])}/s, "
                          f"fsync {fmt(limits['fsync'])}/s; CPU-only before the runs {fmt(median(before1))}/s "
                          f"(1 thread), {fmt(median(before2))}/s (2 processes)")
            for name, url in backends:
                profile = args.profile and rep == reps - 1
                if url:
                    with pg_schema(url) as schema_url:
                        run = sequencer_run(name, schema_url, scratch, appends=appends, writers=args.writers,
                                            body_size=args.body, max_batch=args.max_batch, profile=profile,
                                            in_flight=args.in_flight, processes=args.processes)
                else:
                    run = sequencer_run(name, None, scratch, appends=appends, writers=args.writers,
                                        body_size=args.body, max_batch=args.max_batch, profile=profile,
                                        in_flight=args.in_flight, processes=args.processes,
                                        durable=name != NOT_DURABLE)
                runs[name].append(run)
                console.print(f"rep {rep + 1}/{reps}: {name}: {fmt(run.rate)} appends/s in {run.seconds:.1f} s "
                              f"(load avg {os.getloadavg()[0]:.2f}), "
                              f"{run.batches} batches (mean {run.mean_batch:.1f}); verify {run.verify_msg} "
                              f"({run.verify_seconds:.1f} s)")
                for err in run.errors[:5]:
                    console.print(f"  [red]append failed[/] ({len(run.errors)} in all): {err}")
            after1 = [cpu_baseline(sample, public, 1) for _ in range(BASELINE_PASSES)]
            after2 = [cpu_baseline(sample, public, 2) for _ in range(BASELINE_PASSES)]
            cpu1.append(median(before1 + after1))
            cpu2.append(median(before2 + after2))
            console.print(f"rep {rep + 1}/{reps}: CPU-only after the runs {fmt(median(after1))}/s (1 thread), "
                          f"{fmt(median(after2))}/s (2 processes); the rep's baseline {fmt(max(cpu1[-1], cpu2[-1]))}/s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    console.print()
    table("a. raw limits of this machine (median of reps)", ["measure", "median", "min..max"], [
        ["Ed25519 signs/s, 1 thread (canonical submission, PyNaCl)", fmt(median(raw["sign"])), spread(raw["sign"])],
        ["Ed25519 verifies/s, 1 thread (the record's check)", fmt(median(raw["verify"])), spread(raw["verify"])],
        ["Ed25519 verifies/s, 2 processes", fmt(median(raw["verify2"])), spread(raw["verify2"])],
        ["fsyncs/s (1 KiB write + os.fsync, same disk)", fmt(median(raw["fsync"])), spread(raw["fsync"])],
    ])
    cpu_best = max(median(cpu1), median(cpu2))
    table(f"b. CPU-only signing-and-hashing baseline ({len(sample):,} entries, {args.body} B bodies)",
          ["measure", "median entries/s", "min..max", "µs/entry"], [
              ["1 thread", fmt(median(cpu1)), spread(cpu1), fmt(1e6 / median(cpu1), 1)],
              ["2 processes", fmt(median(cpu2)), spread(cpu2), fmt(1e6 / median(cpu2), 1)],
              ["best (the baseline)", fmt(cpu_best), "", fmt(1e6 / cpu_best, 1)],
          ])

    targets = []
    intact = True
    for name, rs in runs.items():
        if not rs:
            continue
        rates = [r.rate for r in rs]
        ratios = [r.rate / max(c1, c2) for r, c1, c2 in zip(rs, cpu1, cpu2, strict=False)]
        lat = sorted(x for r in rs for x in r.latencies)
        busy = [r.busy / r.seconds for r in rs]
        per_append = [r.busy / r.appends * 1e6 for r in rs]
        per_batch = [r.busy / r.batches * 1e3 for r in rs if r.batches]
        ok = all(r.intact for r in rs)
        intact &= ok
        table(f"c. sequencer on {name}: {args.writers} writers, group commit, {appends:,} appends per rep",
              ["measure", "median", "min..max"], [
                  ["durable appends/s" if name != NOT_DURABLE else "appends/s (not durable)", fmt(median(rates)),
                   spread(rates)],
                  ["ratio to CPU-only baseline (per rep)", pct(median(ratios)),
                   " / ".join(pct(x) for x in ratios)],
                  ["  against the run's best baseline (the quietest moment)",
                   pct(median(rates) / max(max(c1, c2) for c1, c2 in zip(cpu1, cpu2, strict=False))), ""],
                  ["batches per run", fmt(median([r.batches for r in rs])), spread([r.batches for r in rs])],
                  ["mean batch size (entries per COMMIT)", fmt(median([r.mean_batch for r in rs]), 2),
                   spread([r.mean_batch for r in rs])],
                  ["mean intake batch (submissions per checker round trip)",
                   fmt(median([r.intake_batch for r in rs]), 1), ""],
                  ["committer thread busy (share of wall time)", pct(median(busy)), ""],
                  ["server process CPU during the run (cores used of 2)",
                   fmt(median([r.cpu / r.seconds for r in rs]), 2), ""],
                  ["checker processes CPU during the run (cores)",
                   fmt(median([r.workers_cpu / r.seconds for r in rs]), 2), ""],
                  ["checker processes CPU µs per append", fmt(median([r.workers_cpu / r.appends * 1e6 for r in rs]), 1),
                   ""],
                  ["process CPU µs per append (all threads)", fmt(median([r.cpu / r.appends * 1e6 for r in rs]), 1),
                   spread([r.cpu / r.appends * 1e6 for r in rs])],
                  # CPU costs move with the machine's speed; their ratio to a CPU-only entry's cost in the same rep
                  # much less: what to compare between configurations. ratio = cores used ÷ (the baseline's 2-process
                  # speed-up × (checkers + server)), both counted in CPU-only entries.
                  ["server process CPU per append, in CPU-only entries (1 thread)",
                   fmt(median([r.cpu / r.appends * c1 for r, c1 in zip(rs, cpu1, strict=False)]), 2), ""],
                  ["checker processes CPU per append, in CPU-only entries (1 thread)",
                   fmt(median([r.workers_cpu / r.appends * c1 for r, c1 in zip(rs, cpu1, strict=False)]), 2), ""],
                  ["µs per append in the committer (appends, seal, COMMIT)", fmt(median(per_append), 1),
                   spread(per_append)],
                  ["  of which the committer's own CPU", fmt(median([r.busy_cpu / r.appends * 1e6 for r in rs]), 1),
                   ""],
                  ["ms per batch in the committer", fmt(median(per_batch), 2), ""],
                  ["writer latency p50 / p99 (ms, submitted to durable)",
                   f"{percentile(lat, .5) * 1e3:.2f} / {percentile(lat, .99) * 1e3:.2f}", ""],
                  ["log verifies, entry count as appended", "yes" if ok else "[bold red]NO[/]",
                   f"{rs[-1].count:,} entries"],
              ])
        if name == NOT_DURABLE:
            durable = runs["SQLite"]
            table("SQLite durable against not durable, same reps", ["measure", "median", "per rep"], [
                ["durable appends/s ÷ synchronous=OFF appends/s",
                 pct(median([d.rate / n.rate for d, n in zip(durable, rs, strict=False)])),
                 " / ".join(pct(d.rate / n.rate) for d, n in zip(durable, rs, strict=False))],
                ["synchronous=OFF: ratio to CPU-only baseline", pct(median(ratios)),
                 " / ".join(pct(x) for x in ratios)],
            ])
            continue
        targets.append([f"{name}: durable appends/s >= {TARGET_RATE:,.0f}", fmt(median(rates)),
                        verdict(median(rates) >= TARGET_RATE)])
        targets.append([f"{name}: >= {TARGET_RATIO:.0%} of the CPU-only rate ({fmt(cpu_best)}/s)",
                        pct(median(ratios)), verdict(median(ratios) >= TARGET_RATIO)])
        for r in rs:
            if not r.intact:
                console.print(f"[bold red]{name}: log check failed[/]: {r.count} entries, expected "
                              f"{r.expected_size}; {r.verify_msg}; {len(r.errors)} failed appends {r.errors[:3]}")
        if rs[-1].profile:
            console.print(f"[bold]cProfile of the committer thread ({name}, last rep)[/]")
            console.print(rs[-1].profile, markup=False, highlight=False)
    if targets:
        table("targets", ["target", "measured", "verdict"], targets)
    if not intact:
        console.print("[bold red]A log lost entries or does not verify: these figures are void.[/]")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
