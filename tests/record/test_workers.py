"""Several workers on one database: each has its own Log (caches), appends interleave, the log stays dense
and verifies, and a key revoked through one worker is refused by the other."""

from __future__ import annotations

import threading

import pytest

from fusioncell.cell import open_cell
from fusioncell.errors import InvalidSubmission
from fusioncell.identity import service as identity_service
from fusioncell.record import signing
from fusioncell.record.format import Signer
from fusioncell.record.merkle import verify_inclusion
from fusioncell.record.verify import DatabaseSource, verify_source


def test_two_workers_interleave_on_one_log(cell, il_liaison, clock):
    other = open_cell(cell.paths.root, db_url=cell.db.url, clock=clock)
    logs = [(cell.log, cell.db), (other.log, other.db)]
    seqs = []
    for i in range(10):
        log, db = logs[i % 2]
        body = {"text": f"from worker {i % 2}"}
        submission, sig = il_liaison.sign(body)
        with log.transaction(db) as session:
            seqs.append(log.append(session, submission=submission, sig=sig, body=body).seq)
    assert seqs == list(range(2, 12))
    with other.log.transaction(other.db) as session:
        identity_service.revoke_key(session, log=other.log, key_id=il_liaison.signer.key_id, reason="lost")
    body = {"text": "after revocation"}
    submission, sig = il_liaison.sign(body)
    with pytest.raises(InvalidSubmission) as info, cell.log.transaction(cell.db) as session:
        cell.log.append(session, submission=submission, sig=sig, body=body)
    assert info.value.code == "revoked_key"
    other.close()
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == 13


def test_a_worker_reads_proofs_while_another_holds_the_sequencer(cell, il_liaison, clock):
    # Worker B is in the middle of an append (it holds the sequencer lock on PostgreSQL, the write lock on
    # SQLite). Worker A still catches its tree up with what was committed and serves a proof against it, before
    # B commits: a read neither waits for an append nor holds one up.
    first = il_liaison.append({"text": "committed before"})
    other = open_cell(cell.paths.root, db_url=cell.db.url, clock=clock)
    reader = open_cell(cell.paths.root, db_url=cell.db.url, clock=clock)
    body = {"text": "being appended by worker B"}
    submission, sig = il_liaison.sign(body)
    done = threading.Event()
    result = {}

    def read() -> None:
        with reader.db.read() as session:
            tree = reader.log.tree(session)
            result["size"] = tree.size
            result["proof"] = tree.inclusion_proof(first.seq, tree.size)
            result["root"] = tree.root(tree.size)
        done.set()

    with other.log.transaction(other.db) as session:
        pending = other.log.append(session, submission=submission, sig=sig, body=body)
        thread = threading.Thread(target=read)
        thread.start()
        finished_while_held = done.wait(20)  # a deadlock detector, not a speed limit
    thread.join(20)
    assert finished_while_held, "the read waited for the append to commit"
    assert result["size"] == first.seq + 1 == pending.seq  # what was committed, not B's entry
    assert verify_inclusion(first.leaf_hash, first.seq, result["size"], result["proof"], result["root"])
    other.close()
    reader.close()


def test_after_a_read_the_registry_is_loaded_and_signatures_are_checked_outside_the_lock(cell, il_liaison):
    fresh = open_cell(cell.paths.root, db_url=cell.db.url)
    body = {"text": "checked before the lock"}
    submission, sig = il_liaison.sign(body)
    assert fresh.log.prepare(submission=submission, sig=sig, body=body).verified_key is None  # nothing loaded yet
    with fresh.db.read() as session:
        fresh.log.tree(session)
    prepared = fresh.log.prepare(submission=submission, sig=sig, body=body)
    assert prepared.verified_key == il_liaison.signer.key.verify_key.encode()
    fresh.close()


def test_a_read_during_an_enrolment_does_not_leave_a_registry_without_the_new_key(cell, clock):
    # One transaction enrols a key and then appends with it. A read in between (another thread of the same
    # worker) sees only what was committed: it must not install a registry that lacks the new key, or the
    # second append of the transaction would be refused.
    key = signing.generate()
    log = cell.log
    with log.transaction(cell.db) as session:
        identity_service.enrol_key(session, log=log, party="SY", holder="sy/new-device",
                                   public_key=signing.public_bytes(key), custody="device")

        def read() -> None:
            with cell.db.read() as read_session:
                log.tree(read_session)

        thread = threading.Thread(target=read)
        thread.start()
        thread.join(20)
        signer = Signer(cell=log.cell_id or "", party="SY", author="sy/new-device", key=key)
        body = {"text": "signed with the key enrolled just before"}
        submission, sig = signer.submit(kind="test.note", body=body, audience=["IL", "SY", "US"],
                                        created="2026-11-22T10:00:00.000Z")
        appended = log.append(session, submission=submission, sig=sig, body=body)
    assert appended.submission["key"] == signer.key_id
