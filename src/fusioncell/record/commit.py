"""Group commit: units of work that arrive together run in one transaction and share one fsync.

Each unit is a callable `work(session) -> result` (typically a service function that appends). A batch first
runs optimistically, without a savepoint per unit. If a unit raises, the whole transaction is rolled back and
the batch is run again: the refused unit is left out with its error, the units before it run as before, and
the units after it each in their own savepoint, so a refused unit leaves no trace and does not abort its
neighbours. After the last unit the log is sealed with one signed tree head and the transaction commits once;
only then does each caller get its result (an acknowledged append is durable) and are listeners told.

`submit` returns a future at once, so one producer (an HTTP handler awaiting it, a client with many requests
in flight) may keep several units queued; batches grow with the load instead of with the number of threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from fusioncell.record.sequencer import DeferredDuplicate, Log

if TYPE_CHECKING:
    from fusioncell.db import Database

_logger = logging.getLogger(__name__)
T = TypeVar("T")
_STOP = object()
Unit = tuple[Callable[[Session], Any], "Future[Any] | Reply"]


class Reply:
    """The outcome of a unit queued with `GroupCommitter.send_many`: what a Future would hold, without a Future's
    lock and condition (made and settled hundreds of times per batch). Handed to its `done` only once settled."""

    __slots__ = ("_error", "_value", "done")

    def __init__(self, done: Callable[[Reply], None]) -> None:
        self.done = done
        self._value: Any = None
        self._error: BaseException | None = None

    def set_running_or_notify_cancel(self) -> bool:
        return True

    def deliver(self) -> None:
        """Call done; as a Future's callbacks, an exception it raises is logged and goes no further."""
        try:
            self.done(self)
        except Exception:  # the commit thread goes on
            _logger.exception("a done callback of the group commit failed")

    def set_result(self, value: Any) -> None:
        self._value = value

    def set_exception(self, error: BaseException) -> None:
        self._error = error

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self) -> BaseException | None:
        return self._error

    def cancelled(self) -> bool:
        return False


class _Refused(Exception):
    """A unit failed in a part of the batch run without savepoints: roll back and run the batch again."""


def _deferred(exc: BaseException | None) -> bool:
    """Whether exc is, or was raised while handling, a duplicate the unique constraint found."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DeferredDuplicate):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _deliver(units: list[Unit]) -> None:
    for _work, future in units:
        if type(future) is Reply:
            future.deliver()


class GroupCommitter:
    def __init__(self, db: Database, log: Log, *, max_batch: int = 512) -> None:
        self.db = db
        self.log = log
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fusioncell-commit", daemon=True)
        self._closed = False
        self.batches = 0
        self.replays = 0  # batches run a second time because a unit failed
        # On SQLite, the WAL is copied into the database file on another thread, not inside this one's commits.
        self.checkpointer = db.checkpoint_in_background()
        self._thread.start()

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Queue work for the next batch; the future resolves once the batch is durable (or the unit failed)."""
        if self._closed:
            raise RuntimeError("the committer is closed")
        future: Future[T] = Future()
        self._queue.put((work, future))
        return future

    def send_many(self, units: list[tuple[Callable[[Session], Any], Callable[[Reply], None]]]) -> None:
        """Queue units `(work, done)` for the next batch, in order and in the same batch (one hand-over to the
        commit thread for all of them); each `done(reply)` is called (on the commit thread) once the batch is
        durable or its unit failed. For producers that queue many units and need no Future each (the intake)."""
        if self._closed:
            raise RuntimeError("the committer is closed")
        if units:
            self._queue.put([(work, Reply(done)) for work, done in units])

    def run(self, work: Callable[[Session], T]) -> T:
        """Run work in the next batch and return its result once the batch is durable."""
        return self.submit(work).result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
            if self.checkpointer is not None:
                self.db.release_checkpoints()

    def _take(self) -> tuple[list[Unit], bool]:
        """The units waiting (at least one; at most max_batch, or just past it to keep units sent together in one
        batch), and whether to stop after them."""
        batch: list[Unit] = []
        item = self._queue.get()
        while True:
            if item is _STOP:
                return batch, True
            if type(item) is list:
                batch += item
            else:
                batch.append(item)
            if len(batch) >= self.max_batch:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[Unit]) -> None:
        units = [(work, future) for work, future in batch if future.set_running_or_notify_cancel()]
        if not units:
            return
        log = self.log
        start = log.mark()
        failed: dict[int, Exception] = {}  # units refused, left out of the next run
        guarded_from = len(units)  # units from here on run in savepoints, each append checked on its own
        while len(failed) < len(units):
            session = self.db.session()
            results: dict[int, Any] = {}
            try:
                with session.begin():
                    # Replayed submissions are left to the unique constraint while no unit is guarded.
                    session.info["defer_duplicates"] = guarded_from > 0
                    for i, (work, _future) in enumerate(units):
                        if i in failed:
                            continue
                        if i < guarded_from:
                            try:
                                results[i] = work(session)
                            except Exception as exc:
                                if _deferred(exc):  # not this unit's fault: check every unit alone
                                    guarded_from = 0
                                else:
                                    failed[i] = exc
                                    guarded_from = i + 1
                                raise _Refused from exc
                            continue
                        if session.info["defer_duplicates"]:
                            log.flush(session)  # the unguarded units' rows, checked by the constraint
                            session.info["defer_duplicates"] = False
                        ok, value = self._guarded(session, work, start)
                        if ok:
                            results[i] = value
                        else:
                            failed[i] = value
                    head = log.seal(session)
            except Exception as exc:
                log.rewind(start)
                session.close()
                if isinstance(exc, _Refused) or _deferred(exc) and guarded_from > 0:
                    if not isinstance(exc, _Refused):
                        guarded_from = 0  # a duplicate found by the constraint: check every unit alone
                    self.replays += 1
                    continue
                # The commit itself failed: nothing in the batch is durable.
                for i, (_work, future) in enumerate(units):
                    future.set_exception(failed.get(i, exc))
                _deliver(units)
                return
            break
        else:  # every unit was refused: nothing to commit
            for i, (_work, future) in enumerate(units):
                future.set_exception(failed[i])
            _deliver(units)
            return
        appended_entries = session.info.pop("appended", [])
        session.close()
        self.batches += 1
        for i, (_work, future) in enumerate(units):
            if i in failed:
                future.set_exception(failed[i])
            else:
                future.set_result(results[i])
        _deliver(units)
        log.publish(appended_entries, head)

    def _guarded(self, session: Session, work: Callable[[Session], Any], start: tuple[int, str] | None,
                 ) -> tuple[bool, Any]:
        """Run one unit in its own savepoint; a failure undoes it alone."""
        log = self.log
        mark, appended = log.mark(), len(session.info.get("appended", []))
        savepoint = session.begin_nested()
        try:
            result = work(session)
            savepoint.commit()
            return True, result
        except Exception as exc:  # a refused unit: undo it alone, keep the batch
            savepoint.rollback()
            log.rewind(mark if mark is not None else start)
            del session.info.setdefault("appended", [])[appended:]
            # Rows the unit wrote went with its savepoint; rows it only buffered go here.
            session.info["flushed"] = min(session.info.get("flushed", 0), appended)
            return False, exc
