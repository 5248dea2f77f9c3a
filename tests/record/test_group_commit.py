"""Group commit: concurrent appends share transactions, refused ones leave no trace, every result is durable."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from fusioncell.errors import Conflict, InvalidSubmission
from fusioncell.record.commit import GroupCommitter
from fusioncell.record.models import Entry, TreeHead
from fusioncell.record.verify import DatabaseSource, verify_source


def test_concurrent_appends_share_commits_and_all_land(cell, il_liaison, sy_liaison):
    committer = GroupCommitter(cell.db, cell.log)
    personas = [il_liaison, sy_liaison]
    prepared = []
    for i in range(200):
        body = {"text": f"message {i}"}
        submission, sig = personas[i % 2].sign(body)
        prepared.append(cell.log.prepare(submission=submission, sig=sig, body=body))
    seqs: list[int] = []
    gate = threading.Barrier(8)

    def writer(chunk):
        gate.wait()
        for p in chunk:
            seqs.append(committer.run(lambda session, p=p: cell.log.append_prepared(session, p)).seq)

    threads = [threading.Thread(target=writer, args=(prepared[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committer.close()
    assert sorted(seqs) == list(range(3, 203))
    assert committer.batches < 200, "no two appends shared a commit"
    with cell.db.read() as session:
        heads = session.execute(select(func.count()).select_from(TreeHead)).scalar_one()
        assert heads == 3 + committer.batches  # genesis, two enrolments, then one head per batch
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 203


def test_a_refused_unit_does_not_abort_its_batch(cell, il_liaison):
    committer = GroupCommitter(cell.db, cell.log)
    good = [il_liaison.sign({"text": f"ok {i}"}) + ({"text": f"ok {i}"},) for i in range(3)]
    bad_sub, bad_sig = il_liaison.sign({"text": "bad"})
    futures = []
    # Queue everything before the committer runs a batch, so good and bad units share one transaction.
    hold = threading.Event()
    blocker = committer.submit(lambda session: hold.wait(5))
    for i, (sub, sig, body) in enumerate(good):
        futures.append(committer.submit(lambda s, sub=sub, sig=sig, body=body: cell.log.append(
            s, submission=sub, sig=sig, body=body)))
        if i == 0:
            futures.append(committer.submit(lambda s: cell.log.append(
                s, submission=bad_sub, sig=bad_sig, body={"text": "tampered"})))
    hold.set()
    blocker.result()
    results = []
    for future in futures:
        try:
            results.append(future.result().seq)
        except InvalidSubmission as exc:
            results.append(exc.code)
    committer.close()
    assert results == [2, "body_hash_mismatch", 3, 4]
    with cell.db.read() as session:
        assert session.execute(select(func.max(Entry.seq))).scalar_one() == 4
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 5


def test_a_unit_that_fails_after_appending_is_undone(cell, il_liaison):
    committer = GroupCommitter(cell.db, cell.log)
    sub, sig = il_liaison.sign({"text": "will be undone"})

    def append_then_fail(session):
        cell.log.append(session, submission=sub, sig=sig, body={"text": "will be undone"})
        raise ValueError("the service found a problem after appending")

    with pytest.raises(ValueError):
        committer.run(append_then_fail)
    # The same submission can now be appended: nothing of the failed unit remains.
    assert committer.run(lambda s: cell.log.append(s, submission=sub, sig=sig, body={"text": "will be undone"})).seq == 2
    committer.close()
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 3


def _queued_together(committer, units):
    """Submit units while the committer is held, so they share one batch; return their outcomes."""
    hold = threading.Event()
    blocker = committer.submit(lambda session: hold.wait(5))
    futures = [committer.submit(unit) for unit in units]
    hold.set()
    blocker.result()
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result().seq)
        except (InvalidSubmission, Conflict) as exc:
            outcomes.append(exc.code)
    return outcomes


def test_units_sent_together_share_one_batch_in_order(cell, il_liaison, sy_liaison):
    # As the intake sends a checked batch: more units than max_batch, one refused among them.
    committer = GroupCommitter(cell.db, cell.log, max_batch=2)
    signed = [(*p.sign({"text": f"m {i}"}), {"text": f"m {i}"}) for i, p in enumerate([il_liaison, sy_liaison] * 3)]
    base = cell.log.mark()[0]
    signed[2] = (signed[2][0], signed[2][1], {"text": "not what was signed"})
    outcomes: dict[int, object] = {}
    all_done = threading.Event()

    def done(i, reply):
        outcomes[i] = reply.exception() or reply.result()
        if len(outcomes) == len(signed):
            all_done.set()

    hold, running = threading.Event(), threading.Event()
    blocker = committer.submit(lambda session: (running.set(), hold.wait(5)))
    assert running.wait(10)  # the committer is in the blocker's batch: what follows waits for the next
    before = committer.batches
    committer.send_many([(lambda s, x=x: cell.log.append(s, submission=x[0], sig=x[1], body=x[2]),
                          lambda r, i=i: done(i, r)) for i, x in enumerate(signed)])
    hold.set()
    blocker.result()
    assert all_done.wait(30)
    committer.close()
    assert outcomes[2].code == "body_hash_mismatch"
    assert [outcomes[i].seq for i in (0, 1, 3, 4, 5)] == list(range(base, base + 5))
    assert committer.batches - before == 2  # the blocker's, then all of these in one
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == base + 5


def test_a_replayed_submission_in_a_batch_is_refused_alone(cell, il_liaison):
    """The fast path leaves replays to the unique constraint; the batch is run again, each unit checked alone."""
    committer = GroupCommitter(cell.db, cell.log)
    old_body = {"text": "already in the log"}
    old_sub, old_sig = il_liaison.sign(old_body)
    assert committer.run(lambda s: cell.log.append(s, submission=old_sub, sig=old_sig, body=old_body)).seq == 2
    signed = [(*il_liaison.sign({"text": f"new {i}"}), {"text": f"new {i}"}) for i in range(3)]
    units = [lambda s, x=x: cell.log.append(s, submission=x[0], sig=x[1], body=x[2]) for x in signed]
    units.insert(1, lambda s: cell.log.append(s, submission=old_sub, sig=old_sig, body=old_body))
    # The same submission twice in one batch: the second is the duplicate.
    units.append(units[-1])
    outcomes = _queued_together(committer, units)
    committer.close()
    assert outcomes == [3, "duplicate_submission", 4, 5, "duplicate_submission"]
    assert committer.replays >= 1
    with cell.db.read() as session:
        assert session.execute(select(func.count()).select_from(Entry)).scalar_one() == 6
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 6


def test_refused_units_leave_no_trace_and_spare_their_neighbours(cell, il_liaison, sy_liaison):
    committer = GroupCommitter(cell.db, cell.log)
    signed = [(*p.sign({"text": f"m {i}"}), {"text": f"m {i}"}) for i, p in enumerate([il_liaison, sy_liaison] * 3)]

    def append(x):
        return lambda s: cell.log.append(s, submission=x[0], sig=x[1], body=x[2])

    bad_sig = (signed[1][0], signed[0][1], signed[1][2])  # another submission's signature
    bad_body = (signed[2][0], signed[2][1], {"text": "changed"})
    units = [append(signed[0]), append(bad_sig), append(signed[3]), append(bad_body), append(signed[4]),
             append(signed[5])]
    outcomes = _queued_together(committer, units)
    committer.close()
    assert outcomes == [3, "bad_signature", 4, "body_hash_mismatch", 5, 6]
    with cell.db.read() as session:
        assert session.execute(select(func.max(Entry.seq))).scalar_one() == 6
        assert session.execute(select(func.count()).select_from(Entry)).scalar_one() == 7
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 7
