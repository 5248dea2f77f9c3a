"""The sequencer on both databases: what it appends, and what it refuses without leaving a trace."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from fusioncell.errors import Conflict, InvalidSubmission
from fusioncell.identity import service as identity_service
from fusioncell.record import signing
from fusioncell.record.canonical import b64e, canonical, sha256
from fusioncell.record.format import make_entry, sign_submission, tree_head
from fusioncell.record.merkle import verify_inclusion
from fusioncell.record.models import Body, Entry, EntryAudience, TreeHead
from fusioncell.record.signing import key_id
from tests.factories.ed25519 import TORSION_KEY


def log_state(cell):
    with cell.db.read() as session:
        return (
            session.execute(select(func.count()).select_from(Entry)).scalar_one(),
            session.execute(select(func.count()).select_from(Body)).scalar_one(),
            session.execute(select(func.count()).select_from(EntryAudience)).scalar_one(),
            session.execute(select(func.max(TreeHead.size))).scalar_one(),
        )


def refused(cell, persona_, submission, sig, body, code):
    before = log_state(cell)
    with pytest.raises((InvalidSubmission, Conflict)) as info:
        with cell.log.transaction(cell.db) as session:
            cell.log.append(session, submission=submission, sig=sig, body=body)
    assert info.value.code == code, info.value.message
    assert log_state(cell) == before, "a refused submission left a trace"
    # The log still takes good appends afterwards, at the next seq.
    assert persona_.append().seq == before[0]
    return info.value


def test_genesis_is_entry_zero_signed_by_the_cell(cell):
    with cell.db.read() as session:
        entry = session.get(Entry, 0)
        assert entry.kind == "cell.genesis" and entry.party == "CELL"
        assert entry.audience == "IL SY US"
        head = session.execute(select(TreeHead)).scalar_one()
        assert head.size == 1 and head.root == sha256(b"\x00" + entry.leaf)


def test_append_gives_dense_seq_and_signed_tree_head_with_inclusion_proof(cell, il_liaison, sy_liaison, clock):
    a = il_liaison.append({"text": "patrol at 0600"})
    clock.advance(seconds=1)
    b = sy_liaison.append({"text": "received"}, audience=["SY", "US"])
    assert (a.seq, b.seq) == (3, 4)  # 0 genesis, 1 and 2 the two enrolments
    with cell.db.read() as session:
        assert [s for (s,) in session.execute(select(Entry.seq).order_by(Entry.seq))] == list(range(5))
        head = session.execute(select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).scalar_one()
        cell_key = cell.log.cell_key.verify_key
        signed = tree_head(cell="jfm-demo", size=head.size, root_hex=head.root.hex(), time=head.signed_at)
        assert signing.verify(bytes(cell_key), canonical(signed), head.sig)
        tree = cell.log.tree(session)
        assert verify_inclusion(b.leaf_hash, b.seq, head.size, tree.inclusion_proof(b.seq, head.size), head.root)
        assert session.get(Entry, b.seq).audience == "SY US"
        assert b.time > a.time


def test_entry_bytes_are_the_jcs_of_the_entry_and_stored_as_made(cell, il_liaison, clock):
    # The sequencer splices the entry's bytes from parts made before the append (the submission's and the
    # sig's JSON, the time's once per millisecond): they must be exactly JCS(make_entry(...)).
    clock.advance(seconds=1.2345)
    a = il_liaison.append({"text": "ünïcode, \"quotes\" and \\ back\nslash"})
    b = il_liaison.append()
    with cell.db.read() as session:
        for appended in (a, b):
            expected = canonical(make_entry(seq=appended.seq, time=appended.time, submission=appended.submission,
                                            sig=appended.sig))
            row = session.get(Entry, appended.seq)
            assert appended.leaf == expected == row.leaf
            assert appended.leaf_hash == sha256(b"\x00" + expected) == row.leaf_hash
            assert appended.time == row.sequenced_at == "2026-11-22T10:00:01.234Z"
            sub = appended.submission
            assert (row.kind, row.party, row.author, row.key_id, row.nonce, row.audience, row.body_hash,
                    row.created_at) == (sub["kind"], sub["party"], sub["author"], sub["key"], sub["nonce"],
                                        " ".join(sub["audience"]), sub["body"], sub["created"])


def test_a_batch_is_stored_row_for_row_as_appended(cell, il_liaison, sy_liaison):
    # One transaction appends several entries, written together when it is sealed (on SQLite in one statement
    # per table): every entry, body and audience row holds exactly what was appended, as blobs, text and
    # integers as the single-row path stores them.
    texts = ["plain", "عربي and עברית", "\"quoted\" \\ {json} \u2028", "x" * 5000, ""]
    with cell.log.transaction(cell.db) as session:
        appended = []
        for i, text_ in enumerate(texts):
            who = il_liaison if i % 2 else sy_liaison
            body = {"text": text_}
            submission, sig = who.sign(body, audience=[who.party, "US"] if i == 3 else None)
            appended.append(cell.log.append(session, submission=submission, sig=sig, body=body))
    with cell.db.read() as session:
        for a in appended:
            row = session.get(Entry, a.seq)
            sub = a.submission
            assert (row.leaf_hash, row.leaf, row.sequenced_at) == (a.leaf_hash, a.leaf, a.time)
            assert (row.kind, row.party, row.author, row.key_id, row.nonce, row.audience, row.body_hash,
                    row.created_at) == (sub["kind"], sub["party"], sub["author"], sub["key"], sub["nonce"],
                                        " ".join(sub["audience"]), sub["body"], sub["created"])
            assert session.get(Body, a.seq).data == a.body_bytes == canonical(a.body)
            parties = session.execute(select(EntryAudience.party).where(EntryAudience.seq == a.seq)).scalars()
            assert sorted(parties) == sub["audience"]
        if cell.db.dialect == "sqlite":
            types = session.execute(text(
                "SELECT DISTINCT typeof(e.seq), typeof(e.leaf_hash), typeof(e.kind), typeof(e.audience), "
                "typeof(e.sequenced_at), typeof(e.leaf), typeof(b.data), typeof(a.party), typeof(a.seq) "
                "FROM entry e JOIN body b ON b.seq = e.seq JOIN entry_audience a ON a.seq = e.seq")).all()
            assert types == [("integer", "blob", "text", "text", "text", "blob", "blob", "text", "integer")]


def test_entry_times_never_go_back_even_if_the_clock_does(cell, il_liaison, clock):
    first = il_liaison.append()
    clock.advance(seconds=-30)
    assert il_liaison.append().time == first.time


def test_bad_signature_is_refused(cell, il_liaison):
    body = {"text": "x"}
    submission, sig = il_liaison.sign(body)
    forged = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    refused(cell, il_liaison, submission, forged, body, "bad_signature")


def test_signature_by_another_key_is_refused(cell, il_liaison, sy_liaison):
    body = {"text": "x"}
    submission, _ = il_liaison.sign(body)
    other = signing.sign(sy_liaison.signer.key, canonical(submission))
    refused(cell, il_liaison, submission, other, body, "bad_signature")


def test_unknown_key_is_refused(cell, il_liaison):
    key = signing.generate()
    body = {"text": "x"}
    submission, _ = il_liaison.sign(body)
    submission["key"] = key_id(signing.public_bytes(key))
    refused(cell, il_liaison, submission, signing.sign(key, canonical(submission)), body, "unknown_key")


def test_revoked_key_signs_nothing_after_its_revocation(cell, il_liaison):
    early = il_liaison.sign({"text": "signed before revocation"})
    with cell.log.transaction(cell.db) as session:
        identity_service.revoke_key(session, log=cell.log, key_id=il_liaison.signer.key_id, reason="lost")
    before = log_state(cell)
    for submission, sig in (early, il_liaison.sign({"text": "after"})):
        body = {"text": "signed before revocation"} if submission is early[0] else {"text": "after"}
        with pytest.raises(InvalidSubmission) as info, cell.log.transaction(cell.db) as session:
            cell.log.append(session, submission=submission, sig=sig, body=body)
        assert info.value.code == "revoked_key"
    assert log_state(cell) == before


def test_key_of_another_member_is_refused(cell, il_liaison):
    body = {"text": "x"}
    submission, _ = il_liaison.sign(body)
    submission["author"] = "il/liaison-9"
    refused(cell, il_liaison, submission, signing.sign(il_liaison.signer.key, canonical(submission)), body,
            "wrong_author")


def test_body_not_matching_its_hash_is_refused(cell, il_liaison):
    submission, sig = il_liaison.sign({"text": "withdraw"})
    refused(cell, il_liaison, submission, sig, {"text": "advance"}, "body_hash_mismatch")


@pytest.mark.parametrize(
    ("audience", "why"),
    [(["SY", "US"], "author's party"), (["IL", "SY"], "supervising"), (["IL", "US", "XX"], "unknown")],
)
def test_audience_must_hold_author_and_supervisor_and_known_parties(cell, il_liaison, audience, why):
    body = {"text": "x"}
    submission, sig = il_liaison.sign(body, audience=audience)
    error = refused(cell, il_liaison, submission, sig, body, "bad_audience")
    assert why in error.message


def test_an_audience_found_good_does_not_pass_another(cell, il_liaison, sy_liaison):
    # The registry remembers audiences it found good; only the same audience, from the same party, passes unchecked.
    il_liaison.append()  # audience IL, SY, US: remembered as good for IL
    body = {"text": "x"}
    for persona_, audience, why in [(il_liaison, ["IL", "SY"], "supervising"), (sy_liaison, ["IL", "US"], "author's")]:
        submission, sig = persona_.sign(body, audience=audience)
        assert why in refused(cell, persona_, submission, sig, body, "bad_audience").message


def test_unsorted_audience_is_refused(cell, il_liaison):
    body = {"text": "x"}
    submission, _ = il_liaison.sign(body)
    submission["audience"] = ["US", "IL"]
    sig = signing.sign(il_liaison.signer.key, canonical(submission))
    refused(cell, il_liaison, submission, sig, body, "bad_audience")


def test_unknown_kind_is_refused(cell, il_liaison):
    body = {"text": "x"}
    submission, sig = il_liaison.sign(body, kind="hotline.nonsense")
    refused(cell, il_liaison, submission, sig, body, "unknown_kind")


def test_submission_for_another_cell_is_refused(cell, il_liaison):
    body = {"text": "x"}
    submission, _ = il_liaison.sign(body)
    submission["cell"] = "other-cell"
    refused(cell, il_liaison, submission, signing.sign(il_liaison.signer.key, canonical(submission)), body,
            "wrong_cell")


def test_body_that_breaks_its_kind_schema_is_refused(cell, il_liaison):
    body = {"text": "x", "extra": 1}
    submission, sig = il_liaison.sign(body)
    error = refused(cell, il_liaison, submission, sig, body, "bad_body")
    assert "extra" in error.message


def test_replayed_submission_is_refused_as_duplicate(cell, il_liaison):
    body = {"text": "once"}
    submission, sig = il_liaison.sign(body)
    with cell.log.transaction(cell.db) as session:
        cell.log.append(session, submission=submission, sig=sig, body=body)
    refused(cell, il_liaison, submission, sig, body, "duplicate_submission")


def test_refs_must_name_entries_of_this_log(cell, il_liaison):
    first = il_liaison.append()
    assert il_liaison.append(refs=[first.leaf_hash.hex()]).submission["refs"] == [first.leaf_hash.hex()]
    body = {"text": "x"}
    submission, sig = il_liaison.sign(body, refs=["ab" * 32])
    refused(cell, il_liaison, submission, sig, body, "unknown_ref")


def test_refs_may_name_an_entry_of_the_same_transaction_but_not_one_rolled_back(cell, il_liaison):
    log = cell.log
    with log.transaction(cell.db) as session:
        body = {"text": "first"}
        submission, sig = il_liaison.sign(body)
        first = log.append(session, submission=submission, sig=sig, body=body)
        body = {"text": "cites the first, in the same commit"}
        submission, sig = il_liaison.sign(body, refs=[first.leaf_hash.hex()])
        assert log.append(session, submission=submission, sig=sig, body=body).seq == first.seq + 1
    with pytest.raises(RuntimeError), log.transaction(cell.db) as session:
        body = {"text": "rolled back"}
        submission, sig = il_liaison.sign(body)
        gone = log.append(session, submission=submission, sig=sig, body=body)
        raise RuntimeError("the caller fails after the append")
    body = {"text": "cites what was rolled back"}
    submission, sig = il_liaison.sign(body, refs=[gone.leaf_hash.hex()])
    refused(cell, il_liaison, submission, sig, body, "unknown_ref")


def test_a_replay_is_known_by_key_time_and_nonce(cell, il_liaison):
    body = {"text": "same nonce"}
    submission, sig = il_liaison.sign(body)
    with cell.log.transaction(cell.db) as session:
        cell.log.append(session, submission=submission, sig=sig, body=body)
    # The author's device signing a new submission (a later time) with a nonce it used before: a new entry,
    # not a replay of the old one.
    again = {**submission, "created": "2026-11-22T10:00:00.001Z"}
    assert again["created"] != submission["created"]
    sig_again = sign_submission(again, il_liaison.signer.key)
    with cell.log.transaction(cell.db) as session:
        assert cell.log.append(session, submission=again, sig=sig_again, body=body).submission == again
    refused(cell, il_liaison, again, sig_again, body, "duplicate_submission")


def test_party_cannot_write_cell_only_kinds_or_enrol_for_another_party(cell, il_liaison):
    body = {"cell": {"id": "jfm-demo", "name": "x", "public_key": "A" * 43}, "parties": []}
    submission, sig = il_liaison.sign(body, kind="cell.genesis")
    refused(cell, il_liaison, submission, sig, body, "wrong_author")
    public = b64e(signing.public_bytes(signing.generate()))
    body = {"public_key": public, "party": "SY", "holder": "sy/mole", "purpose": "sign", "custody": "device"}
    submission, sig = il_liaison.sign(body, kind="identity.key_added")
    refused(cell, il_liaison, submission, sig, body, "not_allowed")


def test_cell_authored_entries_carry_party_cell(cell):
    with cell.log.transaction(cell.db) as session:
        entry = identity_service.enrol_key(session, log=cell.log, party="SY", holder="sy/liaison-5",
                                           public_key=signing.public_bytes(signing.generate()), custody="cell")
    assert entry.submission["party"] == "CELL" and entry.submission["author"] == "CELL"
    assert entry.submission["key"] == key_id(bytes(cell.log.cell_key.verify_key))


def test_a_rolled_back_transaction_leaves_no_entry_and_the_next_append_takes_its_seq(cell, il_liaison):
    before = log_state(cell)
    with pytest.raises(RuntimeError), cell.log.transaction(cell.db) as session:
        submission, sig = il_liaison.sign({"text": "x"})
        cell.log.append(session, submission=submission, sig=sig, body={"text": "x"})
        raise RuntimeError("the caller's own work failed")
    assert log_state(cell) == before
    assert il_liaison.append().seq == before[0]


@pytest.mark.parametrize("public", [
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # of order 8
    TORSION_KEY.hex(),  # with a torsion component
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p: not a canonical encoding
])
def test_a_key_not_of_prime_order_is_not_enrolled(cell, il_liaison, public):
    body = {"public_key": b64e(bytes.fromhex(public)), "party": "IL", "holder": "il/liaison-1", "purpose": "sign",
            "custody": "device"}
    submission, sig = il_liaison.sign(body, kind="identity.key_added")
    error = refused(cell, il_liaison, submission, sig, body, "bad_key")
    assert "prime order" in error.message
