"""Verification of a database and of export bundles, and tamper evidence: every change names the bad seq."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select, update

from fusioncell.errors import VerificationFailed
from fusioncell.identity import service as identity_service
from fusioncell.record.export import export_to_file
from fusioncell.record.models import Body, Entry, EntryAudience, TreeHead
from fusioncell.record.verify import BundleSource, DatabaseSource, verify_source


@pytest.fixture
def busy_cell(cell, il_liaison, sy_liaison, clock):
    """A log with open and restricted entries, a revoked key and several tree heads."""
    il_liaison.append({"text": "notice: patrol near Quneitra 0600-0800Z"})
    clock.advance(seconds=5)
    sy_liaison.append({"text": "only for the supervisor"}, audience=["SY", "US"])
    il_liaison.append({"text": "only for the supervisor too"}, audience=["IL", "US"])
    with cell.log.transaction(cell.db) as session:
        identity_service.revoke_key(session, log=cell.log, key_id=sy_liaison.signer.key_id, reason="rotated")
    il_liaison.append({"text": "last"})
    return cell


def source(cell):
    return DatabaseSource(cell.db.url)


def tamper(cell, statement):
    with cell.db.write() as session:
        session.execute(statement)


def flip(data: bytes, needle: bytes) -> bytes:
    at = data.index(needle)
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def failure(src, **kwargs) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as info:
        verify_source(src, workers=1, **kwargs)
    return info.value


def test_a_clean_log_verifies(busy_cell):
    report = verify_source(source(busy_cell), workers=1)
    assert report.size == 8 and report.entries == 8 and report.redacted == 0
    with busy_cell.db.read() as session:
        head = session.execute(select(TreeHead).order_by(TreeHead.size.desc())).scalars().first()
    assert report.root == head.root.hex()


def test_parallel_verification_agrees(busy_cell, monkeypatch):
    import fusioncell.record.verify as verify_module

    monkeypatch.setattr(verify_module, "PARALLEL_FROM", 0)
    monkeypatch.setattr(verify_module, "CHUNK", 3)
    assert verify_source(source(busy_cell), workers=2).root == verify_source(source(busy_cell), workers=1).root


@pytest.mark.parametrize("target", ["submission text", "entry time", "signature"])
def test_changing_one_byte_of_an_entry_names_its_seq(busy_cell, target):
    with busy_cell.db.read() as session:
        leaf = session.get(Entry, 4).leaf
    needle = {"submission text": b'"author":"sy/', "entry time": b'"time":"2026', "signature": b'"sig":"'}[target]
    offset = len(needle) - 1 if target != "signature" else len(needle) + 3
    at = leaf.index(needle) + offset
    changed = leaf[:at] + bytes([leaf[at] ^ 0x01]) + leaf[at + 1:]
    tamper(busy_cell, update(Entry).where(Entry.seq == 4).values(leaf=changed))
    error = failure(source(busy_cell))
    assert error.seq == 4


def test_changing_one_byte_of_a_body_names_its_seq(busy_cell):
    with busy_cell.db.read() as session:
        data = session.get(Body, 5).data
    tamper(busy_cell, update(Body).where(Body.seq == 5).values(data=flip(data, b"supervisor")))
    error = failure(source(busy_cell))
    assert error.seq == 5 and "body" in error.message


def test_changing_one_byte_of_a_tree_head_names_it(busy_cell):
    with busy_cell.db.read() as session:
        head = session.execute(select(TreeHead).order_by(TreeHead.size)).scalars().all()[2]
    root = bytes([head.root[0] ^ 0x01]) + head.root[1:]
    tamper(busy_cell, update(TreeHead).where(TreeHead.size == head.size).values(root=root))
    error = failure(source(busy_cell))
    assert error.seq == head.size - 1 and "tree head" in error.message


def test_a_tree_head_with_a_forged_signature_fails(busy_cell):
    with busy_cell.db.read() as session:
        head = session.execute(select(TreeHead).order_by(TreeHead.size.desc())).scalars().first()
    forged = ("A" if head.sig[0] != "A" else "B") + head.sig[1:]
    tamper(busy_cell, update(TreeHead).where(TreeHead.size == head.size).values(sig=forged))
    assert "not signed by the cell key" in failure(source(busy_cell)).message


def test_deleting_an_entry_names_the_hole(busy_cell):
    for table in (Body, EntryAudience, Entry):
        tamper(busy_cell, delete(table).where(table.seq == 3))
    error = failure(source(busy_cell))
    assert error.seq == 3 and "no entry" in error.message


def test_reordering_two_entries_names_the_first(busy_cell):
    with busy_cell.db.read() as session:
        a, b = session.get(Entry, 3), session.get(Entry, 4)
        rows = [(a.leaf, a.leaf_hash), (b.leaf, b.leaf_hash)]
    tamper(busy_cell, update(Entry).where(Entry.seq == 3).values(leaf_hash=b"\x00" * 32))
    tamper(busy_cell, update(Entry).where(Entry.seq == 4).values(leaf=rows[0][0], leaf_hash=rows[0][1]))
    tamper(busy_cell, update(Entry).where(Entry.seq == 3).values(leaf=rows[1][0], leaf_hash=rows[1][1]))
    error = failure(source(busy_cell))
    assert error.seq == 3


def test_truncating_the_log_is_detected(busy_cell):
    for seq in (7, 6):
        for table in (Body, EntryAudience, Entry):
            tamper(busy_cell, delete(table).where(table.seq == seq))
    error = failure(source(busy_cell))
    assert error.seq == 6 and "removed" in error.message


def test_an_entry_signed_with_a_key_after_its_revocation_fails_verification(busy_cell, sy_liaison):
    """A log written by a dishonest sequencer: SY's revoked key signs entry 7. Re-sign the heads so that only
    the revocation rule can catch it."""
    from fusioncell.record.canonical import canonical
    from fusioncell.record.format import make_entry

    with busy_cell.db.read() as session:
        original = json.loads(session.get(Entry, 7).leaf)
    body = {"text": "last"}
    submission, sig = sy_liaison.sign(body)
    leaf = canonical(make_entry(seq=7, time=original["time"], submission=submission, sig=sig))
    from fusioncell.record.merkle import leaf_hash

    tamper(busy_cell, update(Entry).where(Entry.seq == 7).values(leaf=leaf, leaf_hash=leaf_hash(leaf)))
    tamper(busy_cell, update(Body).where(Body.seq == 7).values(data=canonical(body)))
    error = failure(source(busy_cell))
    assert error.seq == 7 and error.reason == "revoked_key"


def test_an_enrolment_of_a_key_not_of_prime_order_fails_verification(busy_cell, il_liaison):
    """A dishonest sequencer enrols, for IL and signed by IL, a key with a torsion component at seq 7: a key under
    which libsodium's and the record's equations could differ. The verifier refuses it as the sequencer does."""
    from fusioncell.record.canonical import b64e, canonical
    from fusioncell.record.format import make_entry
    from fusioncell.record.merkle import leaf_hash
    from tests.factories.ed25519 import TORSION_KEY

    with busy_cell.db.read() as session:
        original = json.loads(session.get(Entry, 7).leaf)
    body = {"public_key": b64e(TORSION_KEY), "party": "IL", "holder": "il/liaison-1", "purpose": "sign",
            "custody": "device"}
    submission, sig = il_liaison.sign(body, kind="identity.key_added", audience=["IL", "SY", "US"])
    leaf = canonical(make_entry(seq=7, time=original["time"], submission=submission, sig=sig))
    tamper(busy_cell, update(Entry).where(Entry.seq == 7).values(leaf=leaf, leaf_hash=leaf_hash(leaf),
                                                                 kind="identity.key_added"))
    tamper(busy_cell, update(Body).where(Body.seq == 7).values(data=canonical(body)))
    error = failure(source(busy_cell))
    assert error.seq == 7 and error.reason == "bad_key"


@pytest.mark.parametrize("bad_time", ["9999-99-99T99:99:99.999Z", "2026-11-22T10:00:05.5Z", "tomorrow"])
def test_an_entry_time_not_in_the_record_format_is_named(busy_cell, bad_time):
    """A sequencer that stamps an entry with a time that is not UTC with milliseconds (and re-hashes it)."""
    from fusioncell.record.canonical import canonical
    from fusioncell.record.merkle import leaf_hash

    with busy_cell.db.read() as session:
        entry = json.loads(session.get(Entry, 7).leaf)
    leaf = canonical({**entry, "time": bad_time})
    tamper(busy_cell, update(Entry).where(Entry.seq == 7).values(leaf=leaf, leaf_hash=leaf_hash(leaf),
                                                                 sequenced_at=bad_time[:24]))
    error = failure(source(busy_cell))
    assert error.seq == 7 and error.reason == "time" and "not UTC with milliseconds" in error.message


def test_an_empty_time_on_the_first_entry_is_named(busy_cell):
    from fusioncell.record.canonical import canonical
    from fusioncell.record.merkle import leaf_hash

    with busy_cell.db.read() as session:
        entry = json.loads(session.get(Entry, 0).leaf)
    leaf = canonical({**entry, "time": ""})
    tamper(busy_cell, update(Entry).where(Entry.seq == 0).values(leaf=leaf, leaf_hash=leaf_hash(leaf),
                                                                 sequenced_at=""))
    error = failure(source(busy_cell))
    assert error.seq == 0 and error.reason == "time" and "not UTC with milliseconds" in error.message


def test_export_redacts_what_the_party_may_not_see_and_verifies(busy_cell, tmp_path):
    path = tmp_path / "il.jsonl"
    with busy_cell.db.read() as session:
        export_to_file(session, party="IL", path=path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["format"] == "fusioncell-export/1" and lines[0]["party"] == "IL"
    records = lines[1:-1]
    assert [r.get("seq", r.get("entry", {}).get("seq")) for r in records] == list(range(8))
    hidden = records[4]
    assert set(hidden) == {"seq", "leaf_hash"}, "SY's entry for the supervisor leaked to IL"
    assert "only for the supervisor" not in path.read_text().replace("only for the supervisor too", "")
    assert records[5]["body"] == {"text": "only for the supervisor too"}
    report = verify_source(BundleSource(path), workers=1, trusted_cell_key=bytes(busy_cell.log.cell_key.verify_key))
    assert report.redacted == 1 and report.size == 8


def test_supervisor_bundle_sees_everything(busy_cell, tmp_path):
    path = tmp_path / "us.jsonl"
    with busy_cell.db.read() as session:
        export_to_file(session, party="US", path=path)
    assert verify_source(BundleSource(path), workers=1).redacted == 0


@pytest.mark.parametrize("what", ["body", "entry", "tree_head", "drop_line", "swap_lines", "truncate"])
def test_a_tampered_bundle_fails(busy_cell, tmp_path, what):
    path = tmp_path / "us.jsonl"
    with busy_cell.db.read() as session:
        export_to_file(session, party="US", path=path)
    lines = path.read_text().splitlines()
    if what == "body":
        lines[6] = lines[6].replace("supervisor too", "supervisor 2")
    elif what == "entry":
        lines[6] = lines[6].replace('"author":"il/liaison-1"', '"author":"il/liaison-2"')
    elif what == "tree_head":
        record = json.loads(lines[-1])
        record["tree_head"]["size"] -= 1
        lines[-1] = json.dumps(record)
    elif what == "drop_line":
        del lines[4]
    elif what == "swap_lines":
        lines[4], lines[5] = lines[5], lines[4]
    elif what == "truncate":
        lines = lines[:-2]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(VerificationFailed) as info:
        verify_source(BundleSource(path), workers=1)
    if what in ("body", "entry"):
        assert info.value.seq == 5
    if what in ("drop_line", "swap_lines"):
        assert info.value.seq == 3


def test_bundle_from_another_cell_key_is_refused(busy_cell, tmp_path):
    from fusioncell.record import signing

    path = tmp_path / "us.jsonl"
    with busy_cell.db.read() as session:
        export_to_file(session, party="US", path=path)
    stranger = bytes(signing.generate().verify_key)
    error = failure(BundleSource(path), trusted_cell_key=stranger)
    assert error.seq == 0 and error.reason == "wrong_cell_key"
