"""Intake of device-signed submissions: each is checked (record.checks: shape, hashes, Ed25519 signature; then
the body's schema) and handed to the group commit, in the order submitted.

Where `processes` is set, the checks run in that many worker processes (record/checker.py), one intake thread
feeding each with batches of whatever is waiting: in one process they would share a core with the sequencer
under the GIL. Without workers (or while a worker is being replaced) one thread checks each submission itself.

Why threads of their own and not the event loop: the checks hold the GIL, and an event loop that waits to get
the GIL back stalls every connection it serves. Here the waiting is the intake's, the loop hands a submission
over with one queue put and no wake-up, and nothing is recorded for a submission that fails a check.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from fusioncell.errors import InvalidSubmission
from fusioncell.record import kinds as kind_registry
from fusioncell.record.checker import Checker, CheckerUnavailable
from fusioncell.record.commit import GroupCommitter, Reply
from fusioncell.record.sequencer import Log, Prepared

Done = Callable[[Reply], None]
Item = tuple[dict[str, Any], str, dict[str, Any], Done]
_STOP = object()


class Intake:
    def __init__(self, log: Log, committer: GroupCommitter, *, processes: int = 0, batch: int = 64,
                 checkers: list[Checker] | None = None) -> None:
        self.log = log
        self.committer = committer
        self.batch = batch
        self.checkers = checkers if checkers is not None else [Checker() for _ in range(processes)]
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.batches = 0  # batches taken, and the items in them
        self.items = 0
        self._take_lock = threading.Lock()
        # Batches are handed to the committer in the order they were taken. A thread whose batch is checked
        # before the one taken ahead of it leaves it here; whoever completes the run from the next ticket on hands
        # all of it over. While a full batch is waiting, the thread takes it at once (waiting for its turn left
        # its worker idle ~12 % of the time under bench/append.py's load); otherwise it waits for its turn first,
        # so that what arrives meanwhile makes one batch, not several small ones: each batch is a round trip that
        # costs the server's own threads (the event loop's among them) GIL time. A batch held up (its worker
        # hangs, until the timeout) holds up those after it.
        self._order = threading.Condition(threading.Lock())
        self._checked: dict[int, list[Any]] = {}
        self._next_ticket = 0
        self._threads = [
            threading.Thread(target=self._run, args=(checker,), name=f"fusioncell-intake-{i}", daemon=True)
            for i, checker in enumerate(self.checkers or [None])
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, *, submission: dict[str, Any], sig: str, body: dict[str, Any], done: Done) -> None:
        """Check the submission, then append it in the next group commit; `done(reply)` is called from another
        thread once the entry is durable (`reply.result()` is the Appended) or refused (`reply.exception()`)."""
        self._queue.put((submission, sig, body, done))

    def close(self) -> None:
        alive = [t for t in self._threads if t.is_alive()]
        for _ in alive:
            self._queue.put(_STOP)
        for thread in alive:
            thread.join()
        for checker in self.checkers:
            checker.close()

    def _take(self) -> tuple[list[Item], bool, int]:
        """What is waiting (at least one item, at most `batch`), whether to stop after it, and its ticket: the
        order of its hand-over."""
        with self._take_lock:
            items: list[Item] = []
            stop = False
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stop = True
                    break
                items.append(item)
                if len(items) >= self.batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            ticket = self.batches
            self.batches += 1
            self.items += len(items)
        return items, stop, ticket

    def _run(self, checker: Checker | None) -> None:
        if checker is not None:
            try:
                checker.start()  # now, not on the first submission
            except CheckerUnavailable:
                pass  # checked here until the worker can be replaced
        while True:
            items, stop, ticket = self._take()
            units: list[Any] = []
            refused: list[tuple[Done, BaseException]] = []
            try:
                try:
                    outcomes = self._check(checker, items)
                except Exception:  # noqa: BLE001 - a fault of the worker path: each is checked here instead
                    outcomes = self._check(None, items)
                units, refused = self._units(items, outcomes)
            finally:
                # Always, so that the batches after this one are not held up for ever.
                refused += self._hand_over(ticket, units)
                for done, exc in refused:
                    reply = Reply(done)
                    reply.set_exception(exc)
                    reply.deliver()
            if stop:
                return
            if self._queue.qsize() < self.batch:
                with self._order:
                    while self._next_ticket <= ticket:
                        self._order.wait()

    def _units(self, items: list[Item], outcomes: list[Prepared | Exception],
               ) -> tuple[list[Any], list[tuple[Done, BaseException]]]:
        log = self.log
        units: list[Any] = []
        refused: list[tuple[Done, BaseException]] = []
        for (_sub, _sig, _body, done), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Exception):
                refused.append((done, outcome))
            else:
                units.append((lambda session, p=outcome: log.append_prepared(session, p), done))
        return units, refused

    def _hand_over(self, ticket: int, units: list[Any]) -> list[tuple[Done, BaseException]]:
        """Leave this batch's units for the committer; hand over every batch now ready in ticket order. Returns
        the units the committer did not take (it is closed), to be refused."""
        failed: list[tuple[Done, BaseException]] = []
        with self._order:
            self._checked[ticket] = units
            if self._next_ticket not in self._checked:
                return failed
            while self._next_ticket in self._checked:
                ready = self._checked.pop(self._next_ticket)
                self._next_ticket += 1
                try:
                    self.committer.send_many(ready)  # one queue put: cheap under the lock
                except Exception as exc:  # noqa: BLE001 - the committer is closed
                    failed += [(done, exc) for _work, done in ready]
            self._order.notify_all()
        return failed

    def _check(self, checker: Checker | None, items: list[Item]) -> list[Prepared | Exception]:
        log = self.log
        results: list[Any] | None = None
        if checker is not None and items:
            # The registry's keys, for the worker to check signatures with (log.prepare looks them up itself).
            keys = [log.public_key(sub) for sub, _sig, _body, _done in items]
            try:
                results = checker.check(log.cell_id, kind_registry.authors(),
                                        [(sub, sig, body, key) for (sub, sig, body, _done), key
                                         in zip(items, keys, strict=True)])
            except CheckerUnavailable:
                results = None
        outcomes: list[Prepared | Exception] = []
        for i, (submission, sig, body, _done) in enumerate(items):
            try:
                result = None if results is None else results[i]
                if _passed(result):
                    _ok, parsed, body_bytes, sub_bytes, sig_json, verified = result
                    outcomes.append(log.prepared(submission, sig, body if parsed is None else parsed, body_bytes,
                                                 sub_bytes, sig_json, keys[i] if verified else None))
                elif _refused(result):
                    outcomes.append(InvalidSubmission(result[2], code=result[1]))
                else:  # no worker, a failure the worker could not name, or an answer out of protocol
                    outcomes.append(log.prepare(submission=submission, sig=sig, body=body))
            except Exception as exc:  # noqa: BLE001 - refused before anything was recorded
                outcomes.append(exc)
        return outcomes


def _passed(result: Any) -> bool:
    return (type(result) is tuple and len(result) == 6 and result[0] is True
            and (result[1] is None or type(result[1]) is dict) and type(result[2]) is bytes
            and type(result[3]) is bytes and type(result[4]) is bytes and type(result[5]) is bool)


def _refused(result: Any) -> bool:
    return (type(result) is tuple and len(result) == 3 and result[0] is False and type(result[1]) is str
            and type(result[2]) is str)
