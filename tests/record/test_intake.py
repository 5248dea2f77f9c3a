"""The intake of device-signed submissions, with its checks in worker processes or in the server's own: the
same refusals with the same codes, every accepted submission appended in the order submitted, and a worker
that dies costs nothing but its replacement."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from fusioncell.errors import InvalidSubmission
from fusioncell.record.canonical import canonical
from fusioncell.record.checker import Checker, CheckerUnavailable, check_batch
from fusioncell.record.commit import GroupCommitter
from fusioncell.record.intake import Intake
from fusioncell.record.kinds import authors
from fusioncell.record.models import Entry
from fusioncell.record.verify import DatabaseSource, verify_source
from tests.factories.ed25519 import ORDER_8, holder_signature


def load_registry(cell) -> None:
    """As a running server has it: the key registry loaded, so that signatures are checked before the lock (by
    the workers, where there are)."""
    with cell.db.read() as session:
        cell.log.tree(session)


def run_intake(cell, items: list[tuple[Any, Any, Any]], *, processes: int = 0,
               checkers: list[Checker] | None = None, batch: int = 64,
               submitted: threading.Event | None = None) -> tuple[list[Any], Intake]:
    """Submit items through an Intake; the outcome of each (the Appended, or the exception), in item order.
    `submitted` is set once every item is in the intake's queue."""
    load_registry(cell)
    committer = GroupCommitter(cell.db, cell.log)
    intake = Intake(cell.log, committer, processes=processes, checkers=checkers, batch=batch)
    outcomes: list[Any] = [None] * len(items)
    left = threading.Semaphore(0)

    def done(i: int, reply: Any) -> None:
        outcomes[i] = reply.exception() or reply.result()
        left.release()

    try:
        for i, (submission, sig, body) in enumerate(items):
            intake.submit(submission=submission, sig=sig, body=body, done=lambda r, i=i: done(i, r))
        if submitted is not None:
            submitted.set()
        for _ in items:
            assert left.acquire(timeout=60), "an outcome never came"
    finally:
        intake.close()
        committer.close()
    return outcomes, intake


def bad_submissions(il, sy) -> list[tuple[str, tuple[Any, Any, Any]]]:
    """One submission per rule broken, with the code the record gives it."""
    body = {"text": "patrol at 0600"}
    sub, sig = il.sign(body)
    _other_sub, other_sig = il.sign({"text": "something else"})
    cases = [
        ("bad_signature", (sub, other_sig, body)),
        ("bad_signature", (sub, 42, body)),
        # R of order 8 that satisfies the cofactored equation: the workers hold the record's rule too
        ("bad_signature", (sub, holder_signature(il.signer.key, canonical(sub), r=0, torsion=ORDER_8), body)),
        ("body_hash_mismatch", (sub, sig, {"text": "patrol at 0700"})),
        ("bad_body", (sub, sig, ["not", "an", "object"])),
        ("bad_submission", ({**sub, "extra": 1}, sig, body)),
        ("bad_submission", ("not a submission", sig, body)),
        ("bad_submission", ({**sub, "key": []}, sig, body)),  # not even hashable
        ("bad_submission", ({**sub, "nonce": "short"}, sig, body)),
        ("bad_audience", ({**sub, "audience": ["US", "IL"]}, sig, body)),
        ("wrong_cell", ({**sub, "cell": "another-cell"}, sig, body)),
        ("unknown_kind", ({**sub, "kind": "no.such.kind"}, sig, body)),
        ("wrong_author", ({**sub, "kind": "cell.genesis"}, sig, body)),
    ]
    # A body the schema refuses, signed properly: refused after the worker, by the kind's schema.
    bad_schema = {"txt": "typo"}
    cases.append(("bad_body", (*sy.sign(bad_schema), bad_schema)))
    # A float body: canonical JSON's slow path; hash and signature fine, the test kind's schema refuses it.
    floats = {"text": 1.5}
    cases.append(("bad_body", (*sy.sign(floats), floats)))
    return cases


@pytest.mark.parametrize("processes", [0, 1])
def test_refusals_have_the_same_codes_with_or_without_workers(cell, il_liaison, sy_liaison, processes):
    cases = bad_submissions(il_liaison, sy_liaison)
    good_body = {"text": "after the refusals"}
    good = (*il_liaison.sign(good_body), good_body)
    outcomes, intake = run_intake(cell, [item for _code, item in cases] + [good], processes=processes)
    for (code, _item), outcome in zip(cases, outcomes[:-1], strict=True):
        assert isinstance(outcome, InvalidSubmission), (code, outcome)
        assert outcome.code == code, (code, outcome)
    if processes:  # the worker checked them, the server did not have to
        assert sum(c.batches for c in intake.checkers) >= 1
        assert sum(c.failures for c in intake.checkers) == 0
    appended = outcomes[-1]
    assert appended.body == good_body
    with cell.db.read() as session:  # the refused left no trace
        assert session.execute(select(Entry.seq).order_by(Entry.seq.desc())).scalars().first() == appended.seq
        assert appended.seq == 3  # genesis, two enrolments, then this


def test_workers_append_in_the_order_submitted_and_the_log_verifies(cell, il_liaison, sy_liaison):
    items = []
    for i in range(600):
        body = {"text": f"message {i}"}
        items.append((*(il_liaison, sy_liaison)[i % 2].sign(body), body))
    outcomes, _intake = run_intake(cell, items, processes=2)
    assert [o.seq for o in outcomes] == list(range(3, 603))
    assert [o.body["text"] for o in outcomes] == [f"message {i}" for i in range(600)]
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 603


class InProcessChecker(Checker):
    """A worker's answers computed in this process, with hooks to hold a batch up."""

    def __init__(self, before_check: Any = None, after_check: Any = None) -> None:
        super().__init__()
        self.before_check, self.after_check = before_check, after_check

    def start(self) -> None:
        pass

    def check(self, cell_id: str | None, kinds: Any, items: list[Any]) -> list[tuple[Any, ...]]:
        if self.before_check is not None:
            self.before_check()
        results = check_batch(cell_id, kinds, items)
        self.batches += 1
        if self.after_check is not None:
            self.after_check()
        return results


def test_a_worker_done_early_takes_the_next_batch_and_the_order_holds(cell, il_liaison, sy_liaison):
    # One worker holds its first batch until the other has checked three; with a full batch waiting, the other
    # must not sit idle for its turn to hand over, and the log still takes the submissions in the order they came.
    submitted, slow_started, fast_checked_three = threading.Event(), threading.Event(), threading.Event()
    fast_done: list[int] = []
    waited: list[bool] = []

    def hold_first() -> None:
        submitted.wait(timeout=10)
        if not slow_started.is_set():
            slow_started.set()
            waited.append(fast_checked_three.wait(timeout=10))

    def fast_first() -> None:
        submitted.wait(timeout=10)
        slow_started.wait(timeout=10)

    def after_fast() -> None:
        fast_done.append(1)
        if len(fast_done) == 3:
            fast_checked_three.set()

    slow = InProcessChecker(before_check=hold_first)
    fast = InProcessChecker(before_check=fast_first, after_check=after_fast)
    items = []
    for i in range(20):
        body = {"text": f"message {i}"}
        items.append((*(il_liaison, sy_liaison)[i % 2].sign(body), body))
    outcomes, _intake = run_intake(cell, items, checkers=[slow, fast], batch=2, submitted=submitted)
    assert waited == [True], "the fast worker waited for the slow one instead of taking more"
    assert [o.seq for o in outcomes] == list(range(3, 23))
    assert [o.body["text"] for o in outcomes] == [f"message {i}" for i in range(20)]
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 23


def test_a_worker_killed_under_load_loses_nothing_and_is_replaced(cell, il_liaison):
    base = cell.log.mark()[0]
    committer = GroupCommitter(cell.db, cell.log)
    intake = Intake(cell.log, committer, processes=1)
    checker = intake.checkers[0]
    results: list[Any] = []
    lock = threading.Lock()
    done_all = threading.Event()
    total = 400

    def done(reply: Any) -> None:
        with lock:
            results.append(reply.exception() or reply.result())
            if len(results) == total:
                done_all.set()

    try:
        deadline = time.monotonic() + 30
        while checker.pid is None and time.monotonic() < deadline:
            time.sleep(0.01)
        first = checker.pid
        assert first is not None, "the worker did not start"
        for i in range(total):
            body = {"text": f"under load {i}"}
            sub, sig = il_liaison.sign(body)
            intake.submit(submission=sub, sig=sig, body=body, done=done)
            if i == 50:
                os.kill(first, signal.SIGKILL)
        assert done_all.wait(60)
        assert all(not isinstance(r, Exception) for r in results), [r for r in results if isinstance(r, Exception)]
        assert checker.failures >= 1
        # Replaced on a later batch, once the pause after a failure is over.
        time.sleep(1.1)
        body = {"text": "after the replacement"}
        sub, sig = il_liaison.sign(body)
        done_all.clear()
        total += 1
        intake.submit(submission=sub, sig=sig, body=body, done=done)
        assert done_all.wait(30)
        assert checker.pid not in (None, first)
    finally:
        intake.close()
        committer.close()
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == base + total


def test_a_closed_intake_leaves_no_worker_behind(cell):
    committer = GroupCommitter(cell.db, cell.log)
    intake = Intake(cell.log, committer, processes=2)
    deadline = time.monotonic() + 30
    while any(c.pid is None for c in intake.checkers) and time.monotonic() < deadline:
        time.sleep(0.01)
    pids = [c.pid for c in intake.checkers]
    assert None not in pids
    intake.close()
    committer.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):  # exited and reaped
            os.kill(pid, 0)


def test_a_batch_marshal_cannot_carry_is_checked_in_the_server(cell, il_liaison):
    checker = Checker()
    try:
        with pytest.raises(CheckerUnavailable):
            checker.check(None, authors(), [({"a": object()}, "", {}, None)])
        assert checker.failures == 0  # not the worker's fault: it stays
    finally:
        checker.close()


# -- the worker against the checks in this process: same answers, across the process boundary ----------------

@pytest.fixture(scope="module")
def worker():
    checker = Checker()
    yield checker
    checker.close()


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["v", "cell", "kind", "party", "author", "key", "body", "nonce", "created",
                              "audience", "refs", None]),
       value=_json, body=_json, with_key=st.booleans())
def test_the_worker_answers_as_the_checks_in_this_process(worker, cell, il_liaison, field, value, body, with_key):
    good_body = {"text": "x"}
    sub, sig = il_liaison.sign(good_body)
    if field is not None:
        sub = {**sub, field: value}
    load_registry(cell)
    key = cell.log.public_key(sub) if with_key else None
    if with_key and field != "key":
        assert key is not None  # the worker checks the signature
    items = [(sub, sig, body, key), (sub, sig, good_body, key)]
    kinds = authors()
    here = check_batch(cell.log.cell_id, kinds, items)
    try:
        there = worker.check(cell.log.cell_id, kinds, items)
    except CheckerUnavailable:
        return  # a value marshal does not carry (none in JSON): the server checks the batch itself
    assert there == here


def test_a_worker_that_does_not_answer_is_killed_and_its_batch_checked_in_the_server(cell, il_liaison):
    # A stand-in for a worker stuck mid-batch: it reads nothing and never answers.
    checker = Checker(timeout=1.0, command=[sys.executable, "-c", "import time; time.sleep(60)"])
    body = {"text": "to a stuck worker"}
    sub, sig = il_liaison.sign(body)
    try:
        started = time.monotonic()
        with pytest.raises(CheckerUnavailable):
            checker.check(cell.log.cell_id, authors(), [(sub, sig, body, None)] * 200)  # more than a pipe holds
        assert time.monotonic() - started < 10
        assert checker.failures == 1 and checker.pid is None  # killed, to be replaced later
    finally:
        checker.close()


ANSWERS_OUT_OF_PROTOCOL = """
import marshal, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
while head := inp.read(4):
    _cell, _kinds, items = marshal.loads(inp.read(int.from_bytes(head, "big")))
    answer = [(True, 1), (False, "bad_signature"), (True, {}, b"", b"", b"", "yes"), None, "x"]
    payload = marshal.dumps([answer[i % len(answer)] for i in range(len(items))])
    out.write(len(payload).to_bytes(4, "big") + payload)
    out.flush()
"""


def test_answers_out_of_protocol_are_checked_in_the_server_not_trusted(cell, il_liaison):
    items = []
    for i in range(10):
        body = {"text": f"checked by a worker that answers nonsense {i}"}
        items.append((*il_liaison.sign(body), body))
    bad_body = {"text": "forged"}
    items.append((items[0][0], items[0][1], bad_body))  # the body does not match its hash
    checker = Checker(command=[sys.executable, "-c", ANSWERS_OUT_OF_PROTOCOL])
    outcomes, _intake = run_intake(cell, items, checkers=[checker])
    assert [o.body["text"] for o in outcomes[:10]] == [body["text"] for _s, _g, body in items[:10]]
    assert isinstance(outcomes[10], InvalidSubmission) and outcomes[10].code == "body_hash_mismatch"
