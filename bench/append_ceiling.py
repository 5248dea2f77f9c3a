"""How close to the CPU-only rate this design of the append path can come on this machine: bench/append.py's run
of the sequencer, alternated with a "thin" server that keeps everything the design fixes and drops the server's
own Python work per append.

The thin server keeps: the same checker processes (record/checker.py: shape, hashes, Ed25519) fed in batches of
64 by one thread each, the same rows in the same SQLite database (WAL, synchronous=FULL, foreign keys, the cell's
schema and indexes) in multi-row INSERTs, one signed tree head and one COMMIT per batch, the background WAL
checkpoint, and the same load (8 writers, 64 in flight each, driven from one thread). It drops: the registry's
checks under the lock (signer, audience, refs, replays), the kind's schema, the Prepared and Appended objects,
SQLAlchemy's session and the group commit's savepoint logic. Its log is verified after each run. It is not a way
to run a cell: it is the upper bound of what making the server's Python cheaper can give.

Both are measured against bench/append.py's CPU-only baseline (five passes before and five after each run, the
better of one thread and two processes), in alternating order (ABBA...), and CPU is counted per thread of the
server and for the checker processes. Prints figures only; there is no target here (bench/append.py has it).

  .venv/bin/python bench/append_ceiling.py            # 3 pairs of 40,000 appends
  .venv/bin/python bench/append_ceiling.py --quick    # 1 pair of 8,000 appends
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import queue
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import append as bench_append
from _common import console, enrol_signers, fmt, machine_line, median, new_cell, pct, presign, table

from fusioncell.clock import format_time
from fusioncell.db import Checkpointer
from fusioncell.record import kinds, signing
from fusioncell.record.canonical import canonical
from fusioncell.record.checker import Checker
from fusioncell.record.format import tree_head
from fusioncell.record.merkle import leaf_hash
from fusioncell.record.sequencer import _ENTRY_COLUMNS, _RAW
from fusioncell.record.verify import DatabaseSource, verify_source

WRITERS, IN_FLIGHT, CHECKERS, INTAKE_BATCH, MAX_BATCH, BODY = 8, 64, 4, 64, 512, 1024
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    server: str
    rate: float
    baseline: float
    server_us: float  # the server process's CPU per append
    checkers_us: float  # the checker processes' CPU per append
    cores: float
    threads: dict[str, float]  # CPU µs per append by server thread
    intact: bool

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline


class ThreadCpu:
    """CPU seconds of this process's threads by name, sampled from /proc every 20 ms (a thread that ends keeps its
    last sample). The kernel counts in ticks of 10 ms: coarse for the short runs of --quick."""

    def __init__(self) -> None:
        self._cpu: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for t in threading.enumerate():
            if t.native_id:
                self._names[t.native_id] = t.name
        for tid in os.listdir("/proc/self/task"):
            try:
                fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self._cpu[int(tid)] = (int(fields[11]) + int(fields[12])) / _TICKS

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def by_name(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        out: collections.Counter[str] = collections.Counter()
        for tid, seconds in self._cpu.items():
            name = self._names.get(tid, "?")
            out["intake" if "intake" in name else name] += seconds
        return dict(out)


def _children_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def thin_run(scratch: Path, appends: int) -> tuple[float, float, float, bool]:
    """appends/s, server CPU s, checkers CPU s and whether the log verifies, for the thin server."""
    root = Path(tempfile.mkdtemp(prefix="cell-", dir=scratch))
    cell = new_cell(root / "cell")
    try:
        log = cell.log
        signers = enrol_signers(cell, WRITERS)
        with cell.db.read() as session:
            tree = log.tree(session)
        expected = tree.size + appends
        created = format_time(datetime.now(timezone.utc))
        work, start = [], 0
        for w, signer in enumerate(signers):
            count = appends // WRITERS + (1 if w < appends % WRITERS else 0)
            work.append(presign(signer, start, count, BODY, created))
            start += count
        keys = {s.key_id: signing.public_bytes(s.key) for s in signers}
        authors, cell_id, cell_key = kinds.authors(), log.cell_id or "", log.cell_key
        gc.freeze()  # as bench/append.py: the submissions stand for the clients' memory

        checkers = [Checker() for _ in range(CHECKERS)]
        for checker in checkers:
            checker.start()
        path = cell.db.url.split("///", 1)[1]
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        checkpointer = Checkpointer(path)
        raw = _RAW["qmark"]
        to_check: queue.SimpleQueue[Any] = queue.SimpleQueue()
        to_commit: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def intake(checker: Checker) -> None:
            while (item := to_check.get()) is not None:
                items = [item]
                while len(items) < INTAKE_BATCH:
                    try:
                        items.append(to_check.get_nowait())
                    except queue.Empty:
                        break
                results = checker.check(cell_id, authors, [(s, g, b, keys[s["key"]]) for s, g, b, _d in items])
                if not all(r[0] is True for r in results):
                    raise AssertionError(f"a check failed: {results}")
                to_commit.put(list(zip(items, results, strict=True)))

        def commit() -> None:
            while (batch := to_commit.get()) is not None:
                while len(batch) < MAX_BATCH:
                    try:
                        batch = batch + to_commit.get_nowait()
                    except queue.Empty:
                        break
                now = format_time(datetime.now(timezone.utc))
                now_json, seq = canonical(now), tree.size
                entries: list[Any] = []
                bodies: list[Any] = []
                audience: list[Any] = []
                for (sub, _sig, _body, _done), (_ok, _parsed, body_bytes, sub_bytes, sig_json, _v) in batch:
                    leaf = b'{"seq":%d,"sig":%b,"submission":%b,"time":%b}' % (seq, sig_json, sub_bytes, now_json)
                    hashed = leaf_hash(leaf)
                    tree.append(hashed)
                    entries += (seq, hashed, sub["kind"], sub["party"], sub["author"], sub["key"], sub["nonce"],
                                " ".join(sub["audience"]), sub["body"], sub["created"], now, leaf)
                    bodies += (seq, body_bytes)
                    for party in sub["audience"]:
                        audience += (party, seq)
                    seq += 1
                root_hash = tree.root(tree.size)
                head = tree_head(cell=cell_id, size=tree.size, root_hex=root_hash.hex(), time=now)
                cursor = conn.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                raw.insert(cursor, "entry", _ENTRY_COLUMNS, entries)
                raw.insert(cursor, "body", ("seq", "data"), bodies)
                raw.insert(cursor, "entry_audience", ("party", "seq"), audience)
                raw.insert(cursor, "tree_head", ("size", "root", "signed_at", "sig"),
                           [tree.size, root_hash, now, signing.sign(cell_key, canonical(head))])
                cursor.execute("COMMIT")
                cursor.close()
                checkpointer.committed()
                for (_s, _g, _b, done), _result in batch:
                    done()

        failures: list[BaseException] = []

        def guarded(target: Any, *args: Any) -> None:
            try:
                target(*args)
            except BaseException as exc:  # the writers' loop sees it and stops, rather than wait for ever
                failures.append(exc)
                raise

        threads = [threading.Thread(target=guarded, args=(intake, c), name=f"fusioncell-intake-{i}",
                                    daemon=True) for i, c in enumerate(checkers)]
        threads.append(threading.Thread(target=guarded, args=(commit,), name="fusioncell-commit", daemon=True))
        for t in threads:
            t.start()

        # The writers, driven from one thread as in bench/append.py: acknowledgements handed back in a list, one
        # wake-up per batch of them.
        lock, acknowledged, wake, sent = threading.Lock(), [], threading.Event(), [0] * WRITERS

        def submit(w: int) -> None:
            sub, sig, body = work[w][sent[w]]
            sent[w] += 1

            def done(w: int = w) -> None:
                with lock:
                    acknowledged.append(w)
                    if len(acknowledged) > 1:
                        return
                wake.set()

            to_check.put((sub, sig, body, done))

        def clients() -> None:
            for w in range(WRITERS):
                for _ in range(min(IN_FLIGHT, len(work[w]))):
                    submit(w)
            pending = appends
            while pending:
                while not wake.wait(1.0):
                    if failures:
                        raise RuntimeError("the thin server failed") from failures[0]
                wake.clear()
                with lock:
                    ready = acknowledged[:]
                    acknowledged.clear()
                for w in ready:
                    pending -= 1
                    if sent[w] < len(work[w]):
                        submit(w)

        pids = [c.pid for c in checkers if c.pid is not None]
        cpu0, workers0, t0 = bench_append._cpu(), _children_cpu(pids), time.perf_counter()
        driver = threading.Thread(target=guarded, args=(clients,), name="clients", daemon=True)
        driver.start()
        driver.join()
        seconds = time.perf_counter() - t0
        if failures:
            raise RuntimeError("the thin server failed") from failures[0]
        cpu, workers = bench_append._cpu() - cpu0, _children_cpu(pids) - workers0
        for _ in checkers:
            to_check.put(None)
        to_commit.put(None)
        for t in threads:
            t.join()
        for checker in checkers:
            checker.close()
        checkpointer.close()
        conn.close()
        report = verify_source(DatabaseSource(cell.db.url), workers=2)
        return appends / seconds, cpu, workers, report.size == expected == report.entries
    finally:
        gc.unfreeze()
        cell.close()
        shutil.rmtree(root, ignore_errors=True)


def measure(server: str, scratch: Path, appends: int, sample: list, public: dict[str, bytes]) -> Result:
    passes = bench_append.BASELINE_PASSES
    before = ([bench_append.cpu_baseline(sample, public, 1) for _ in range(passes)],
              [bench_append.cpu_baseline(sample, public, 2) for _ in range(passes)])
    sampler = ThreadCpu()
    if server == "thin":
        rate, cpu, workers, intact = thin_run(scratch, appends)
        seconds = appends / rate
    else:
        run = bench_append.sequencer_run("SQLite", None, scratch, appends=appends, writers=WRITERS, body_size=BODY,
                                         max_batch=MAX_BATCH, profile=False, in_flight=IN_FLIGHT,
                                         processes=CHECKERS)
        rate, cpu, workers, intact, seconds = run.rate, run.cpu, run.workers_cpu, run.intact, run.seconds
    threads = {name: seconds_ / appends * 1e6 for name, seconds_ in sampler.by_name().items()
               if name.startswith("fusioncell-") or name in ("intake", "clients")}
    after = ([bench_append.cpu_baseline(sample, public, 1) for _ in range(passes)],
             [bench_append.cpu_baseline(sample, public, 2) for _ in range(passes)])
    baseline = max(median(before[0] + after[0]), median(before[1] + after[1]))
    return Result(server, rate, baseline, cpu / appends * 1e6, workers / appends * 1e6, (cpu + workers) / seconds,
                  threads, intact)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 pair of 8,000 appends")
    parser.add_argument("--appends", type=int, help="appends per run (default 40,000; --quick 8,000)")
    parser.add_argument("--pairs", type=int, help="pairs of runs, real and thin, in ABBA order (default 3)")
    args = parser.parse_args()
    appends = args.appends or (8000 if args.quick else 40000)
    pairs = args.pairs or (1 if args.quick else 3)
    console.print(f"[bold]bench/append_ceiling.py[/] — {machine_line()}")
    console.print(f"{pairs} pair(s) of {appends:,} appends: {WRITERS} writers x {IN_FLIGHT} in flight, "
                  f"{CHECKERS} checkers, {BODY} B bodies")

    sample, public, _keys = bench_append.baseline_sample(4000, BODY)

    scratch = Path(tempfile.mkdtemp(prefix="fusioncell-bench-"))
    results: list[Result] = []
    try:
        for i in range(pairs):
            for server in (("real", "thin") if i % 2 == 0 else ("thin", "real")):
                r = measure(server, scratch, appends, sample, public)
                results.append(r)
                console.print(f"{server}: {fmt(r.rate)} appends/s, baseline {fmt(r.baseline)}/s, ratio {pct(r.ratio)}; "
                              f"CPU per append: server {r.server_us:.1f} µs ("
                              + ", ".join(f"{n.removeprefix('fusioncell-')} {v:.1f}" for n, v in
                                          sorted(r.threads.items(), key=lambda kv: -kv[1]))
                              + f"), checkers {r.checkers_us:.1f} µs; {r.cores:.2f} cores; "
                              f"log verifies: {'yes' if r.intact else 'NO'}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for server in ("real", "thin"):
        rs = [r for r in results if r.server == server]
        rows.append([server, fmt(median([r.rate for r in rs])), pct(median([r.ratio for r in rs])),
                     " / ".join(pct(r.ratio) for r in rs), fmt(median([r.server_us for r in rs]), 1),
                     fmt(median([r.checkers_us for r in rs]), 1), fmt(median([r.cores for r in rs]), 2)])
    table("the append path against the CPU-only baseline (medians)",
          ["server", "appends/s", "ratio", "per run", "server µs/append", "checkers µs/append", "cores"], rows,
          caption=f"bench/append.py's target is {pct(bench_append.TARGET_RATIO)} of the baseline")
    return 0 if all(r.intact for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
