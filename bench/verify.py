"""Offline verification of a large log (`fusioncell verify --dir`), against the bare cost of its Ed25519
verifications measured in the same run.

Builds a log of N entries (default 1,000,000; --quick 20,000) in a SQLite cell (demo config), cached in
bench/out/log-N/ so reruns skip the build, then times `verify_source(DatabaseSource(url), workers=2)` and
workers=1 (what `fusioncell verify --dir` runs), and as baselines, on one thread: Ed25519 verification of the
log's own submissions (scaled from a sample to N), and the per-entry steps of the verifier on a sample.

Builders (--builder):
  bulk       (default) genesis and keys through the sequencer, then the bench entries written as the
             sequencer writes them (same rows, leaf bytes, tree heads signed by the cell key), with executemany.
             A fidelity check first builds a small log both ways and compares the rows byte for byte.
  sequencer  every entry through Log.prepare + Log.append_prepared under GroupCommitter (chunks of entries per
             unit of work); faithful but about 1,000 entries/s on this code, so 1M takes ~15-20 minutes.
Either way the built log must verify before it is cached.

Target (printed PASS/MISS, never asserted): 1,000,000 entries verified in under 60 s on 2 cores; for N < 1M
the time is extrapolated linearly from N (and the table says so). Exit status 0 whatever the figures; 2 if
the log does not verify.

  .venv/bin/python bench/verify.py --quick              # 20,000 entries, about 20 s
  .venv/bin/python bench/verify.py --entries 200000
  .venv/bin/python bench/verify.py                       # 1,000,000 entries (first build takes minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ed25519_zebra
import nacl.signing
from _common import (
    OUT_DIR,
    console,
    enrol_signers,
    fmt,
    machine_line,
    median,
    new_cell,
    presign,
    spread,
    table,
    verdict,
)
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import func, select

from fusioncell.cell import CellHandle
from fusioncell.clock import FakeClock, format_time
from fusioncell.record import signing
from fusioncell.record.canonical import b64d, canonical
from fusioncell.record.commit import GroupCommitter
from fusioncell.record.format import Signer, make_entry, tree_head
from fusioncell.record.merkle import MerkleTree, leaf_hash
from fusioncell.record.models import Body, Entry, EntryAudience, TreeHead
from fusioncell.record.verify import DatabaseSource, check_item, verify_source

TARGET_ENTRIES = 1_000_000
TARGET_SECONDS = 60.0
KEYS = 4
BODY_SIZE = 64
CHUNK = 2000  # entries signed per task, written per transaction (bulk) or per unit of work (sequencer)


def _now():  # noqa: ANN202
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                    transient=False)


# -- building ------------------------------------------------------------------------------------------------

def _sign_chunk(signers: list[Signer], start: int, count: int, created: str) -> list[tuple[dict, str, dict]]:
    """Entries start..start+count, round-robin over the signers (each signer signs a run of CHUNK/KEYS)."""
    out: list[tuple[dict, str, dict]] = []
    per = -(-count // len(signers))
    for j, signer in enumerate(signers):
        first = start + j * per
        n = min(per, start + count - first)
        if n > 0:
            out += presign(signer, first, n, BODY_SIZE, created)
    return out


class BulkWriter:
    """Writes entries exactly as Log._append does (entry, body, entry_audience rows; leaf = JCS of
    {seq, time, submission, sig}), a transaction per chunk, each sealed with a tree head signed by the cell key."""

    def __init__(self, cell: CellHandle) -> None:
        self.cell = cell
        self.db = cell.db
        with self.db.read() as session:
            hashes = session.execute(select(Entry.leaf_hash).order_by(Entry.seq)).scalars().all()
            self.last_time = session.execute(select(func.max(Entry.sequenced_at))).scalar_one() or ""
            genesis = session.execute(select(Entry.leaf).where(Entry.seq == 0)).scalar_one()
        self.cell_id = json.loads(genesis)["submission"]["cell"]
        self.tree = MerkleTree(hashes)
        assert cell.log.cell_key is not None
        self.cell_key = cell.log.cell_key

    def write(self, items: list[tuple[dict, str, dict]], now: str) -> None:
        time_ = now if now > self.last_time else self.last_time
        entries, bodies, audience = [], [], []
        for sub, sig, body in items:
            seq = self.tree.size
            leaf = canonical(make_entry(seq=seq, time=time_, submission=sub, sig=sig))
            hashed = leaf_hash(leaf)
            entries.append({
                "seq": seq, "leaf_hash": hashed, "kind": sub["kind"], "party": sub["party"], "author": sub["author"],
                "key_id": sub["key"], "nonce": sub["nonce"], "audience": " ".join(sub["audience"]),
                "body_hash": sub["body"], "created_at": sub["created"], "sequenced_at": time_, "leaf": leaf,
            })
            bodies.append({"seq": seq, "data": canonical(body)})
            audience += [{"party": party, "seq": seq} for party in sub["audience"]]
            self.tree.append(hashed)
        self.last_time = time_
        size = self.tree.size
        root = self.tree.root(size)
        head = tree_head(cell=self.cell_id, size=size, root_hex=root.hex(), time=time_)
        sig = signing.sign(self.cell_key, canonical(head))
        with self.db.engine.begin() as conn:
            conn.execute(Entry.__table__.insert(), entries)
            conn.execute(Body.__table__.insert(), bodies)
            conn.execute(EntryAudience.__table__.insert(), audience)
            conn.execute(TreeHead.__table__.insert(), [{"size": size, "root": root, "signed_at": time_, "sig": sig}])


def build_bulk(cell: CellHandle, signers: list[Signer], count: int, advance: Callable[[int], None],
               now: Callable[[], str] = lambda: format_time(_now())) -> None:
    writer = BulkWriter(cell)
    created = now()
    with ThreadPoolExecutor(2) as pool:  # PyNaCl releases the GIL: signing runs beside the writing
        pending: list[Future] = []
        start = 0
        while start < count or pending:
            while start < count and len(pending) < 4:
                n = min(CHUNK, count - start)
                pending.append(pool.submit(_sign_chunk, signers, start, n, created))
                start += n
            items = pending.pop(0).result()
            writer.write(items, now())
            advance(len(items))


def build_sequencer(cell: CellHandle, signers: list[Signer], count: int, advance: Callable[[int], None]) -> None:
    log = cell.log
    committer = GroupCommitter(cell.db, log)
    created = format_time(_now())

    def sign_and_prepare(start: int, n: int) -> list[Any]:
        return [log.prepare(submission=s, sig=g, body=b) for s, g, b in _sign_chunk(signers, start, n, created)]

    def unit(prepared: list[Any]) -> Callable[[Any], int]:
        def work(session: Any) -> int:
            for p in prepared:
                log.append_prepared(session, p)
            return len(prepared)
        return work

    try:
        with ThreadPoolExecutor(2) as pool:
            signing_q: list[Future] = []
            committing: list[Future] = []
            start = 0
            while start < count or signing_q or committing:
                while start < count and len(signing_q) < 3:
                    n = min(CHUNK // 4, count - start)
                    signing_q.append(pool.submit(sign_and_prepare, start, n))
                    start += n
                if signing_q and (signing_q[0].done() or len(committing) < 2):
                    committing.append(committer.submit(unit(signing_q.pop(0).result())))
                while committing and (committing[0].done() or len(committing) >= 4 or not signing_q):
                    advance(committing.pop(0).result())
    finally:
        committer.close()


def fidelity_check(scratch: Path) -> str:
    """Builds the same 300 entries through the sequencer and through BulkWriter (same keys, same submissions,
    same clock) and compares every row of the bench entries. Returns a one-line verdict; raises on mismatch."""
    when = "2026-11-22T10:00:00.000Z"
    keys = [signing.generate() for _ in range(KEYS)]
    cells = []
    try:
        for name in ("sequencer", "bulk"):
            clock = FakeClock("2026-11-22T10:00:00Z")
            cell = new_cell(scratch / f"fidelity-{name}", clock=clock)
            cells.append(cell)
            signers = enrol_signers(cell, KEYS, keys=keys)
            if name == "sequencer":
                items = _sign_chunk(signers, 0, 300, when)
                with cell.log.transaction(cell.db) as session:
                    for sub, sig, body in items:
                        cell.log.append(session, submission=sub, sig=sig, body=body)
            else:
                BulkWriter(cell).write(items, when)  # the very same submissions
        dumps = []
        for cell in cells:
            with cell.db.read() as session:
                first = 1 + KEYS
                dumps.append((
                    session.execute(select(Entry.__table__).where(Entry.seq >= first).order_by(Entry.seq)).all(),
                    session.execute(select(Body.__table__).where(Body.seq >= first).order_by(Body.seq)).all(),
                    session.execute(select(EntryAudience.__table__).where(EntryAudience.seq >= first)
                                    .order_by(EntryAudience.seq, EntryAudience.party)).all(),
                ))
            verify_source(DatabaseSource(cell.db.url), workers=1)
        if dumps[0] != dumps[1] or len(dumps[0][0]) != 300:
            raise SystemExit("fidelity check failed: the bulk builder does not write what the sequencer writes")
        return "bulk builder wrote the same entry, body and entry_audience rows as the sequencer (300 entries)"
    finally:
        for cell in cells:
            cell.close()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def build_log(entries: int, builder: str, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    directory = OUT_DIR / f"log-{entries}"
    marker = directory / "built.json"
    if marker.exists() and not rebuild:
        info = json.loads(marker.read_text())
        if info.get("entries") == entries:
            info["cached"] = True
            return directory, info
    shutil.rmtree(directory, ignore_errors=True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    fidelity = ""
    if builder == "bulk":
        with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
            fidelity = fidelity_check(Path(tmp))
        console.print(f"fidelity check: {fidelity}")
    cell = new_cell(directory / "cell")
    started = time.perf_counter()
    try:
        signers = enrol_signers(cell, KEYS)
        with cell.db.read() as session:
            have = session.execute(select(func.count()).select_from(Entry)).scalar_one()
        todo = entries - have
        with progress_bar() as progress:
            task = progress.add_task(f"building log-{entries} ({builder})", total=entries, completed=have, rate="")
            t0 = time.perf_counter()
            done = [have]

            def advance(n: int) -> None:
                done[0] += n
                rate = (done[0] - have) / (time.perf_counter() - t0)
                progress.update(task, advance=n, rate=f"{rate:,.0f} entries/s")

            if builder == "bulk":
                build_bulk(cell, signers, todo, advance)
            else:
                build_sequencer(cell, signers, todo, advance)
        seconds = time.perf_counter() - started
        with cell.db.read() as session:
            count = session.execute(select(func.count()).select_from(Entry)).scalar_one()
        if count != entries:
            raise SystemExit(f"built {count} entries, wanted {entries}")
    finally:
        cell.close()
    import sqlite3

    with sqlite3.connect(directory / "cell" / "fusioncell.db") as raw:  # fold the WAL into the cached file
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    info = {"entries": entries, "builder": builder, "build_seconds": round(seconds, 1),
            "built_at": time.strftime("%Y-%m-%d %H:%M:%S"), "git": git_commit(), "fidelity": fidelity}
    marker.write_text(json.dumps(info, indent=1) + "\n")
    info["cached"] = False
    return directory, info


# -- measuring -----------------------------------------------------------------------------------------------

def sample_items(url: str, entries: int, size: int) -> list[Any]:
    source = DatabaseSource(url)
    start = min(1 + KEYS, max(0, entries - size))
    return list(source.items(start, min(entries, start + size)))


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 entries")
    parser.add_argument("--entries", type=int, help="entries in the log (default 1,000,000; --quick 20,000)")
    parser.add_argument("--reps", type=int,
                        help="timed verifications per setting (default 3; 1 with --quick or above 250,000)")
    parser.add_argument("--builder", choices=("bulk", "sequencer"), default="bulk")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached log")
    parser.add_argument("--sample", type=int, help="entries in the one-thread baseline sample (default 20,000; "
                        "--quick 5,000)")
    args = parser.parse_args()
    entries = args.entries or (20000 if args.quick else TARGET_ENTRIES)
    if entries < 1 + KEYS + 1:
        parser.error(f"--entries must be at least {KEYS + 2}")
    reps = args.reps or (1 if args.quick or entries > 250_000 else 3)
    sample_size = min(args.sample or (5000 if args.quick else 20000), entries)

    console.print(f"[bold]bench/verify.py[/] — {machine_line()}")
    directory, info = build_log(entries, args.builder, args.rebuild)
    console.print(f"log: {directory} — {entries:,} entries, built by {info['builder']} in {info['build_seconds']} s "
                  f"on {info['built_at']} (git {info['git']}){'; cached' if info['cached'] else ''}")
    url = f"sqlite:///{directory / 'cell' / 'fusioncell.db'}"

    # Baselines on one thread, from a sample of the log's own entries.
    sample = sample_items(url, entries, sample_size)
    parsed = []
    publics: dict[str, bytes] = {}
    with DatabaseSource(url).db.read() as session:
        from fusioncell.identity.models import SigningKey

        for key in session.execute(select(SigningKey)).scalars():
            publics[key.key_id] = key.public_key
    for item in sample:
        entry = json.loads(item.leaf)
        parsed.append((publics[entry["submission"]["key"]], canonical(entry["submission"]), b64d(entry["sig"])))
    sodium = [(nacl.signing.VerifyKey(public), message_bytes, sig) for public, message_bytes, sig in parsed]

    ed_rates, read_rates, check_rates, sodium_rates = [], [], [], []
    times: dict[int, list[float]] = {2: [], 1: []}
    cpu_parent: dict[int, list[float]] = {2: [], 1: []}
    cpu_workers: dict[int, list[float]] = {2: [], 1: []}
    ok, message = True, ""
    for rep in range(reps):
        t0 = time.perf_counter()
        for public, message_bytes, sig in parsed:
            if not ed25519_zebra.ed_verify(sig, message_bytes, public):
                raise SystemExit("sample signature does not verify")
        ed_rates.append(len(parsed) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for verify_key, message_bytes, sig in sodium:
            verify_key.verify(message_bytes, sig)
        sodium_rates.append(len(parsed) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        items = sample_items(url, entries, sample_size)
        read_rates.append(len(items) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for item in items:
            checked = check_item(item, publics)
            if checked.error:
                raise SystemExit(f"sample entry {item.seq}: {checked.error}")
        check_rates.append(len(items) / (time.perf_counter() - t0))
        for workers in (2, 1):
            self0, children0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            try:
                report = verify_source(DatabaseSource(url), workers=workers)
                elapsed = time.perf_counter() - t0
                good = report.size == entries and report.entries == entries
                message = (f"OK: {report.size:,} entries, {report.heads} signed tree heads, root {report.root[:16]}…"
                           if good else f"size {report.size} != {entries}")
            except Exception as exc:  # noqa: BLE001
                elapsed, good, message = time.perf_counter() - t0, False, f"FAILED: {exc.__class__.__name__}: {exc}"
            ok &= good
            times[workers].append(elapsed)
            cpu_parent[workers].append(_cpu(resource.RUSAGE_SELF) - self0)
            cpu_workers[workers].append(_cpu(resource.RUSAGE_CHILDREN) - children0)
            console.print(f"rep {rep + 1}/{reps}: verify_source workers={workers}: {elapsed:.1f} s "
                          f"({entries / elapsed:,.0f} entries/s; CPU parent {cpu_parent[workers][-1]:.1f} s, "
                          f"workers {cpu_workers[workers][-1]:.1f} s; load avg {os.getloadavg()[0]:.2f}) — {message}")

    ed = median(ed_rates)
    scale = f" (scaled from {len(parsed):,})" if len(parsed) < entries else ""
    rows = []
    for workers in (2, 1):
        secs = median(times[workers])
        rows.append([f"verify_source(DatabaseSource, workers={workers})", fmt(entries / secs), fmt(secs, 1),
                     spread(times[workers]), f"{secs / (entries / ed):.2f} x"])
    cpu_rows = []
    for workers in (2, 1):
        parent, children = median(cpu_parent[workers]), median(cpu_workers[workers])
        total = parent + children
        cpu_rows.append([f"workers={workers}", fmt(parent, 1), fmt(children, 1), fmt(total / entries * 1e6, 1),
                         fmt(total / median(times[workers]), 2),
                         fmt(entries / (total / min(workers, os.cpu_count() or 1)))])
    rows += [
        [f"baseline: Ed25519 verify alone (ed25519-zebra's call, which the record's check wraps), 1 thread{scale}",
         fmt(ed), fmt(entries / ed, 1), "", "1.00 x"],
        ["  ideal on 2 cores (baseline / 2)", fmt(2 * ed), fmt(entries / ed / 2, 1), "", "0.50 x"],
        [f"  for comparison: libsodium's Ed25519 check (PyNaCl), 1 thread{scale}", fmt(median(sodium_rates)),
         fmt(entries / median(sodium_rates), 1), "", f"{ed / median(sodium_rates):.2f} x"],
        [f"  read rows: DatabaseSource.items, 1 thread{scale}", fmt(median(read_rates)),
         fmt(entries / median(read_rates), 1), "", f"{ed / median(read_rates):.2f} x"],
        [f"  check_item per entry (JSON, JCS, shape, Ed25519, body hash), 1 thread{scale}", fmt(median(check_rates)),
         fmt(entries / median(check_rates), 1), "", f"{ed / median(check_rates):.2f} x"],
    ]
    table(f"verification of {entries:,} entries ({reps} rep(s), medians)",
          ["measure", "entries/s", "seconds", "min..max s", "vs Ed25519 1-thread"], rows)
    table("CPU of verify_source (medians): what it costs whatever else runs on this shared machine",
          ["run", "parent CPU s", "worker CPU s", "CPU µs/entry", "cores used", "entries/s if the cores were free"],
          cpu_rows, caption=f"Ed25519 alone: {1e6 / ed:.1f} µs/entry. 'if the cores were free' = entries / "
          "(total CPU / min(workers, cores)); with workers=2 the parent also needs CPU, so that is a ceiling.")

    secs2 = median(times[2])
    projected = secs2 * TARGET_ENTRIES / entries
    note = "" if entries == TARGET_ENTRIES else f" (extrapolated linearly from {entries:,} entries)"
    table("target", ["target", "measured", "verdict"], [
        [f"1,000,000 entries verified in < {TARGET_SECONDS:.0f} s on 2 cores (workers=2){note}",
         f"{projected:.1f} s", verdict(projected < TARGET_SECONDS)],
        ["  the same from CPU time, as if both cores were free (info, not the target)",
         f"{(median(cpu_parent[2]) + median(cpu_workers[2])) / 2 * TARGET_ENTRIES / entries:.1f} s", "info"],
        ["the log verifies", "yes" if ok else "[bold red]NO[/]", ""],
    ])
    if not ok:
        console.print(f"[bold red]verification failed: {message}[/]")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
