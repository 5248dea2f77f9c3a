"""Several workers on one database: each has its own Log (caches), appends interleave, the log stays dense
and verifies, and a key revoked through one worker is refused by the other."""

from __future__ import annotations

import pytest

from fusioncell.cell import open_cell
from fusioncell.errors import InvalidSubmission
from fusioncell.identity import service as identity_service
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
