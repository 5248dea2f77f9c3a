"""Group commit: units of work that arrive together run in one transaction and share one fsync.

Each unit is a callable `work(session) -> result` (typically a service function that appends) run in its own
savepoint, so a refused unit leaves no trace and does not abort its neighbours. After the last unit the log is
sealed with one signed tree head and the transaction commits once; only then does each caller get its result
(an acknowledged append is durable) and are listeners told.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from fusioncell.record.sequencer import Log

if TYPE_CHECKING:
    from fusioncell.db import Database

T = TypeVar("T")
_STOP = object()


class GroupCommitter:
    def __init__(self, db: Database, log: Log, *, max_batch: int = 512) -> None:
        self.db = db
        self.log = log
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fusioncell-commit", daemon=True)
        self._closed = False
        self.batches = 0
        self._thread.start()

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        if self._closed:
            raise RuntimeError("the committer is closed")
        future: Future[T] = Future()
        self._queue.put((work, future))
        return future

    def run(self, work: Callable[[Session], T]) -> T:
        """Run work in the next batch and return its result once the batch is durable."""
        return self.submit(work).result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    def _take(self) -> tuple[list[tuple[Callable[[Session], Any], Future[Any]]], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch, stop = [first], False
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[tuple[Callable[[Session], Any], Future[Any]]]) -> None:
        log = self.log
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        session = self.db.session()
        start = log.mark()
        try:
            with session.begin():
                for work, future in batch:
                    if not future.set_running_or_notify_cancel():
                        continue
                    mark, appended = log.mark(), len(session.info.get("appended", []))
                    savepoint = session.begin_nested()
                    try:
                        result = work(session)
                        savepoint.commit()
                        outcomes.append((future, True, result))
                    except Exception as exc:  # a refused unit: undo it alone, keep the batch
                        savepoint.rollback()
                        log.rewind(mark if mark is not None else start)
                        del session.info.setdefault("appended", [])[appended:]
                        # Rows the unit wrote went with its savepoint; rows it only buffered go here.
                        session.info["flushed"] = min(session.info.get("flushed", 0), appended)
                        outcomes.append((future, False, exc))
                head = log.seal(session)
        except Exception as exc:  # the commit itself failed: nothing in the batch is durable
            log.rewind(start)
            session.close()
            for future, _ok, _value in outcomes:
                future.set_exception(exc)
            return
        appended_entries = session.info.pop("appended", [])
        session.close()
        self.batches += 1
        for future, ok, value in outcomes:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        log.publish(appended_entries, head)
