"""Intake of device-signed submissions: one thread checks each (Log.prepare: shape, hashes, body schema,
Ed25519 signature) and hands it to the group commit.

Why a thread of its own: the checks hold the GIL except during the signature check, and an event loop that
waits to get the GIL back after a C call stalls every connection it serves (the commit thread holds the GIL
for up to the switch interval at a time). Here the waiting is this thread's, the loop hands a submission
over with one queue put and no wake-up, and nothing is recorded for a submission that fails a check.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from fusioncell.record.commit import GroupCommitter
from fusioncell.record.sequencer import Appended, Log

Done = Callable[[Future[Appended]], None]
_STOP = object()


class Intake:
    def __init__(self, log: Log, committer: GroupCommitter) -> None:
        self.log = log
        self.committer = committer
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fusioncell-intake", daemon=True)
        self._thread.start()

    def submit(self, *, submission: dict[str, Any], sig: str, body: dict[str, Any], done: Done) -> None:
        """Check the submission, then append it in the next group commit; `done(future)` is called from
        another thread once the entry is durable (the future holds the Appended) or refused (its exception)."""
        self._queue.put((submission, sig, body, done))

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        log, committer = self.log, self.committer
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            submission, sig, body, done = item
            try:
                prepared = log.prepare(submission=submission, sig=sig, body=body)
                future = committer.submit(lambda session, p=prepared: log.append_prepared(session, p))
            except Exception as exc:  # refused before anything was recorded
                future = Future()
                future.set_exception(exc)
            future.add_done_callback(done)
