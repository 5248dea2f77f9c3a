"""WAL checkpoints on SQLite: while the group commit runs, a thread of its own copies the WAL into the database
file, and the WAL stays bounded under sustained appends."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fusioncell.record.commit import GroupCommitter
from fusioncell.record.models import Entry
from fusioncell.record.verify import DatabaseSource, verify_source


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fusioncell-checkpoint"]


def _append_all(cell, committer, prepared) -> None:
    futures = [committer.submit(lambda session, p=p: cell.log.append_prepared(session, p)) for p in prepared]
    for future in futures:
        future.result()


def test_the_group_commit_checkpoints_on_a_thread_of_its_own(cell, il_liaison):
    committer = GroupCommitter(cell.db, cell.log)
    if cell.db.dialect != "sqlite":  # PostgreSQL has no WAL file of ours to copy
        assert committer.checkpointer is None
        committer.close()
        return
    try:
        assert len(_checkpoint_threads()) == 1
        body = {"text": "checkpoint me"}
        _append_all(cell, committer, [cell.log.prepare(submission=s, sig=g, body=body)
                                      for s, g in (il_liaison.sign(body) for _ in range(20))])
        deadline = time.monotonic() + 10
        while committer.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert committer.checkpointer.checkpoints >= 1, "no checkpoint ran after the commits"
        assert committer.checkpointer.failures == 0
    finally:
        committer.close()
    assert _checkpoint_threads() == []
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 2 + 20  # genesis, the enrolment, the appends


_SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@_SQLITE_ONLY
def test_two_committers_share_one_checkpointer_until_the_last_closes(cell):
    first, second = GroupCommitter(cell.db, cell.log), GroupCommitter(cell.db, cell.log)
    assert first.checkpointer is second.checkpointer is not None
    first.close()
    assert len(_checkpoint_threads()) == 1
    second.close()
    assert _checkpoint_threads() == []


@_SQLITE_ONLY
def test_sustained_appends_keep_the_wal_bounded(cell, il_liaison):
    """The background checkpoint alone never lets the WAL start again from its beginning while commits keep
    coming (it always lags the last one); the writer's own checkpoint past 1,000 pages does."""
    wal = Path(cell.db.url.removeprefix("sqlite:///") + "-wal")
    prepared = []
    for i in range(7000):  # ~40 MB of WAL in all (whole pages per commit), written without a pause
        body = {"text": f"{i:04d} " + "x" * 1000}
        submission, sig = il_liaison.sign(body)
        prepared.append(cell.log.prepare(submission=submission, sig=sig, body=body))
    sizes: list[int] = []
    cell.log.listeners.append(lambda _appended, _head: sizes.append(wal.stat().st_size))  # after each commit
    committer = GroupCommitter(cell.db, cell.log, max_batch=100)
    try:
        _append_all(cell, committer, prepared)
    finally:
        committer.close()
    assert len(sizes) >= 70
    # 1,000 pages (4 MB) and the batch that crosses them; left unbounded it grows to ~40 MB.
    assert max(sizes) < 16_000_000, f"the WAL grew to {max(sizes) / 1e6:.1f} MB"
    with cell.db.read() as session:
        assert session.execute(select(func.count()).select_from(Entry)).scalar_one() == 2 + 7000


def test_a_stop_that_arrives_as_a_checkpoint_starts_still_ends_the_thread(tmp_path):
    """close() lands after the thread's wait of one interval and before it takes the commit's wake-up: the server
    stopping must not wait for ever on a checkpoint thread that missed it."""
    from fusioncell.db import Checkpointer

    checkpointer = Checkpointer(str(tmp_path / "cell.db"), interval=0.01)
    take_wake_up = checkpointer._dirty.clear

    def close_lands_here() -> None:  # what close() does first, at the worst moment
        checkpointer._dirty.clear = take_wake_up
        checkpointer._stop.set()
        checkpointer._dirty.set()
        take_wake_up()

    checkpointer._dirty.clear = close_lands_here
    checkpointer.committed()
    checkpointer._thread.join(timeout=5)
    assert not checkpointer._thread.is_alive(), "the checkpoint thread missed the stop"
    assert checkpointer.checkpoints == 1  # the last one, for what the last commits wrote
