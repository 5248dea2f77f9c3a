"""The verifier's fast path agrees with its general checks.

`verify._parse_fast` reads an entry with one regular expression instead of json.loads, the submission shape
check and re-encoding to compare the canonical form. It may only accelerate: whatever it accepts, the general
checks (`_parse_general`) must accept with the very same values, and whatever it refuses goes to them. These tests
hold that on generated entries, on mutations of valid ones and on every one-bit change of real entries; and that
the entries the sequencer writes do take the fast path (else it buys nothing).
"""

from __future__ import annotations

import base64
import json

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

import fusioncell.record.verify as verify_module
from fusioncell.record import signing
from fusioncell.record.canonical import b64e, canonical
from fusioncell.record.models import Body, Entry, EntryAudience
from fusioncell.record.signing import verify as verify_sig
from fusioncell.record.verify import (
    Item,
    _parse_fast,
    _parse_general,
    check_item,
)

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
plain_names = st.builds(str.__add__, st.sampled_from(ALNUM), st.text(ALNUM + "_.:/-", max_size=12))
odd_text = st.text(max_size=12)  # quotes, backslashes, controls, non-ASCII, empty
names = plain_names | odd_text | st.sampled_from(["a" * 100, "a" * 101, "-x", "x y", "é", "x\n"])


def plain_hex(n: int) -> st.SearchStrategy:
    return st.text("0123456789abcdef", min_size=n, max_size=n)


def hexes(n: int) -> st.SearchStrategy:
    return (plain_hex(n) | plain_hex(n).map(str.upper) | st.text("0123456789abcdef", min_size=n - 1, max_size=n + 1)
            | odd_text)


times = (
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z")
    | st.sampled_from(["2026-02-30T10:00:00.000Z", "2026-11-22T24:00:00.000Z", "2026-11-22T10:00:00.00Z",
                       "2026-11-22T10:00:00.000+00:00", "２026-11-22T10:00:00.000Z", "2026-11-22T10:00:00.000z"])
    | odd_text
)
parties = st.sampled_from(["IL", "SY", "US", "UN", "CELL", "a", "Z"]) | odd_text
sigs = st.binary(min_size=64, max_size=64).map(b64e) | st.binary(min_size=0, max_size=70).map(b64e) | odd_text | (
    st.binary(min_size=64, max_size=64).map(lambda b: b64e(b) + "=="))


@st.composite
def submissions(draw: st.DrawFn) -> dict:
    audience = draw(st.lists(parties, max_size=4))
    if draw(st.booleans()):
        audience = sorted(set(audience))
    sub = {
        "v": draw(st.sampled_from([1, 1, 1, 2, 0, True, 1.0, "1"])),
        "cell": draw(names), "kind": draw(names), "party": draw(names), "author": draw(names),
        "key": draw(hexes(16)), "audience": audience,
        "refs": draw(st.lists(hexes(64), max_size=3)),
        "body": draw(hexes(64)), "nonce": draw(hexes(32)), "created": draw(times),
    }
    if draw(st.integers(0, 9)) == 0:  # a field missing, or one too many, or a wrong type
        choice = draw(st.sampled_from(sorted(sub)))
        if draw(st.booleans()):
            del sub[choice]
        else:
            sub[draw(st.sampled_from([choice, "extra"]))] = draw(st.none() | st.integers() | st.lists(odd_text))
    return sub


@st.composite
def plain_submissions(draw: st.DrawFn) -> dict:
    """What a sequencer writes: valid and in plain ASCII."""
    audience = sorted(set(draw(st.lists(st.sampled_from(["IL", "SY", "US", "UN"]), min_size=1, max_size=4))))
    return {
        "v": 1, "cell": draw(plain_names), "kind": draw(plain_names), "party": draw(plain_names),
        "author": draw(plain_names), "key": draw(plain_hex(16)), "audience": audience,
        "refs": draw(st.lists(plain_hex(64), max_size=3)), "body": draw(plain_hex(64)), "nonce": draw(plain_hex(32)),
        "created": draw(times.filter(lambda t: verify_module.is_record_time(t))),
    }


def encode(entry: dict, how: str) -> bytes:
    if how == "canonical":
        return canonical(entry)
    if how == "spaced":
        return json.dumps(entry, sort_keys=True).encode()
    if how == "unsorted":
        return json.dumps(entry, separators=(",", ":")).encode()
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def agree(leaf: bytes, seq: int) -> None:
    fast = _parse_fast(leaf, seq)
    if fast is not None:
        assert _parse_general(leaf, seq) == fast


@settings(max_examples=1000, deadline=None)
@given(submissions(), st.integers(0, 3) | st.sampled_from([1.0, True, "1", -1]), sigs, times,
       st.sampled_from(["canonical", "canonical", "spaced", "unsorted", "ascii"]), st.integers(0, 3))
def test_whatever_the_fast_path_accepts_the_general_checks_accept_alike(sub, seq, sig, time, how, at):
    entry = {"seq": seq, "sig": sig, "submission": sub, "time": time}
    try:
        leaf = encode(entry, how)
    except ValueError:
        return
    agree(leaf, at)


@settings(max_examples=500, deadline=None)
@given(plain_submissions(), st.integers(0, 10**12), st.binary(min_size=64, max_size=64),
       st.text("".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\'), max_size=30))
def test_a_plain_valid_entry_takes_the_fast_path(sub, seq, sig, time):
    leaf = canonical({"seq": seq, "sig": b64e(sig), "submission": sub, "time": time})
    fast = _parse_fast(leaf, seq)
    assert fast is not None
    assert fast == _parse_general(leaf, seq)
    assert fast[3] == canonical(sub)
    assert _parse_fast(leaf, seq + 1) is None  # the seq is checked too


odd_names = names | st.sampled_from(['x"y', "x\\y", "x\x7f", "x\x00", "ab" * 50, "a:b/c_d.e-f"])
one_off_values = {
    "cell": odd_names, "kind": odd_names, "party": odd_names, "author": odd_names,
    "key": hexes(16), "body": hexes(64), "nonce": hexes(32), "created": times,
    "audience": (st.lists(parties | odd_names, max_size=4) | st.lists(st.sampled_from(["IL", "SY", "US"]), max_size=4)
                 | st.sampled_from(["IL", None, [1], [["IL"]]])),
    "refs": st.lists(hexes(64), max_size=3) | st.sampled_from(["", None, [1], {}]),
    "v": st.sampled_from([2, 0, -1, True, 1.0, "1", None, [1]]),
    "seq": st.sampled_from([4, 6, -5, 5.0, "5", True, None, 10**20]),
    "sig": sigs | st.sampled_from([None, 1, ""]),
    "time": times | st.sampled_from(['a"b', "a\\b", "a\x7fb", "é", "\n", "", None, 1]),
}


@settings(max_examples=1500, deadline=None)
@given(plain_submissions(), st.sampled_from(sorted(one_off_values)), st.data(),
       st.sampled_from(["canonical", "canonical", "canonical", "spaced", "unsorted", "ascii"]))
def test_a_valid_entry_with_one_field_off_gets_the_same_verdict(sub, field, data, how):
    entry = {"seq": 5, "sig": b64e(bytes(range(64))), "submission": sub, "time": "2026-11-22T10:00:00.123Z"}
    (entry if field in entry else sub)[field] = data.draw(one_off_values[field])
    try:
        leaf = encode(entry, how)
    except ValueError:
        return
    agree(leaf, 5)


NEAR_MISSES = [
    *[(f, v) for f in ("key", "body", "nonce") for v in ("upper", "short", "long")],
    *[("refs", v) for v in (["A" * 64], ["a" * 63], ["a" * 65], "a" * 64, [1], ["a" * 64, "b" * 64])],
    *[("audience", v) for v in (["SY", "IL"], ["IL", "IL"], [], ["x\\y"], ['x"y'], ["é"], [1], "IL", ["x y"],
                                ["I\u0000L"], ["IL", "SY"])],
    *[(f, v) for f in ("cell", "kind", "party", "author")
      for v in ("", "-x", "a" * 100, "a" * 101, "x\\y", 'x"y', "é", "x y", "x\n", 1)],
    *[("created", v) for v in ("2026-02-30T10:00:00.000Z", "2026-11-22T10:00:00.00Z", "２026-11-22T10:00:00.000Z",
                               "2026-11-22T10:00:00.000z", "2026-11-22 10:00:00.000Z", "2026-11-22T10:00:00.000Z")],
    *[("v", v) for v in (2, 0, True, 1.0, "1", None)],
    *[("time", v) for v in ("a\\b", 'a"b', "é", "\x7f", "\n", "", 1, None)],
    *[("seq", v) for v in (4, 6, "5", 5.0, True, -5)],
    *[("sig", v) for v in ("A" * 86 + "==", "A" * 85, "A" * 87, "A" * 88, "é" * 86, "A" * 85 + "=", 1)],
]


@pytest.mark.parametrize(("field", "value"), NEAR_MISSES)
@pytest.mark.parametrize("how", ["canonical", "spaced", "ascii"])
def test_near_misses_get_the_same_verdict(field, value, how):
    sub = {"audience": ["IL", "SY", "US"], "author": "il/liaison-1", "body": "ab" * 32, "cell": "jfm-demo",
           "created": "2026-11-22T10:00:00.123Z", "key": "0123456789abcdef", "kind": "test.note",
           "nonce": "cd" * 16, "party": "IL", "refs": ["ef" * 32], "v": 1}
    entry = {"seq": 5, "sig": b64e(bytes(range(64))), "submission": sub, "time": "2026-11-22T10:00:00.124Z"}
    assert _parse_fast(canonical(entry), 5) is not None
    if value in ("upper", "short", "long"):
        value = {"upper": sub[field].upper(), "short": sub[field][1:], "long": sub[field] + "a"}[value]
    (entry if field in entry else sub)[field] = value
    agree(encode(entry, how), 5)


mutations = st.sampled_from(["flip", "delete", "insert", "duplicate", "swap"])


@settings(max_examples=1000, deadline=None)
@given(plain_submissions(), st.integers(0, 1000), st.binary(min_size=64, max_size=64), mutations,
       st.integers(0, 10**6), st.integers(0, 255), st.integers(1, 40))
def test_mutated_entries_agree(sub, seq, sig, mutation, where, byte, length):
    leaf = canonical({"seq": seq, "sig": b64e(sig), "submission": sub, "time": "2026-11-22T10:00:00.123Z"})
    i = where % len(leaf)
    if mutation == "flip":
        leaf = leaf[:i] + bytes([leaf[i] ^ (1 << (byte % 8))]) + leaf[i + 1:]
    elif mutation == "delete":
        leaf = leaf[:i] + leaf[i + length:]
    elif mutation == "insert":
        leaf = leaf[:i] + bytes([byte]) + leaf[i:]
    elif mutation == "duplicate":
        leaf = leaf[:i] + leaf[i:i + length] + leaf[i:]
    else:
        j = (i + length) % len(leaf)
        a, b = sorted((i, j))
        if a != b:
            leaf = leaf[:a] + leaf[b:b + 1] + leaf[a + 1:b] + leaf[a:a + 1] + leaf[b + 1:]
    agree(leaf, seq)


def _without_fast_path(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(verify_module, "_parse_fast", lambda leaf, seq: None)


def test_sequencer_entries_take_the_fast_path_and_every_bit_flip_gets_the_same_verdict(
    cell, il_liaison, sy_liaison, monkeypatch
):
    il_liaison.append({"text": "notice: patrol near Quneitra 0600-0800Z"})
    sy_liaison.append({"text": "only for the supervisor"}, audience=["SY", "US"])
    with cell.db.read() as session:
        rows = [(e.seq, e.leaf, session.get(Body, e.seq).data) for e in session.query(Entry).order_by(Entry.seq)]
    keys = {k: info.public_key for k, info in verify_module._timeline(verify_module.DatabaseSource(cell.db.url))
            .registry.keys.items()}
    assert all(_parse_fast(leaf, seq) is not None for seq, leaf, _ in rows)

    seq, leaf, body = rows[-1]
    changes = [(i, leaf[:i] + bytes([leaf[i] ^ bit]) + leaf[i + 1:]) for i in range(len(leaf)) for bit in (0x01, 0x20)]
    fast = [check_item(Item(seq, v, body), keys) for v in [leaf, *(v for _, v in changes)]]
    _without_fast_path(monkeypatch)
    general = [check_item(Item(seq, v, body), keys) for v in [leaf, *(v for _, v in changes)]]
    assert fast == general
    assert fast[0].error is None
    # What check_item lets through is only in the sequencer's time (not signed by the author) and in the unused
    # low bits of the signature's last base64 character: the Merkle root catches those, not this check.
    time_at = leaf.rindex(b'"time":"') + len(b'"time":"')
    sig_last = leaf.index(b'","submission"') - 1
    assert all(i >= time_at or i == sig_last for (i, _), c in zip(changes, fast[1:]) if c.error is None)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), sigs | st.binary(min_size=64, max_size=64).map(b64e), st.booleans(),
       st.lists(st.tuples(st.integers(0, 100), st.sampled_from("=+/-_.!~ \n\té\x00A")), max_size=3))
@example(b"m", "", True, [(86, "=")])
@example(b"m", "", True, [(86, "="), (87, "=")])
@example(b"m", "", True, [(40, "=")])
@example(b"m", "", True, [(40, "!"), (0, "\n")])
def test_signature_check_equals_the_base64_module_and_pynacl(message, sig, sign_it, junk):
    # The verifier checks signatures with signing.verify, whose b64d takes urlsafe_b64decode's steps without its
    # layers: on odd encodings it must decide as the base64 module and PyNaCl do.
    key = nacl.signing.SigningKey(b"\x07" * 32)
    if sign_it:  # a valid signature, maybe with characters that a lenient base64 decoder skips or refuses
        sig = b64e(key.sign(message).signature)
        for at, char in junk:
            sig = sig[:at] + char + sig[at:]
    public = bytes(key.verify_key)
    try:
        if "=" in sig:
            raise ValueError("padding")
        raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        key.verify_key.verify(message, raw)
        expected = len(raw) == 64
    except (ValueError, nacl.exceptions.BadSignatureError):
        expected = False
    assert verify_sig(public, message, sig) is expected


def test_database_items_name_every_hole_in_a_range(cell, il_liaison):
    for n in range(8):
        il_liaison.append({"text": f"note {n}"})
    with cell.db.write() as session:
        for seq in (2, 3, 6, 9):
            for table in (Body, EntryAudience, Entry):
                session.execute(delete(table).where(table.seq == seq))
        session.execute(delete(Body).where(Body.seq == 5))
    with cell.db.read() as session:
        rows = {e.seq: e.leaf for e in session.query(Entry)}
    source = verify_module.DatabaseSource(cell.db.url)
    for start, stop in [(0, 12), (2, 4), (3, 7), (6, 7), (9, 12), (4, 6)]:
        items = list(source.items(start, stop))
        assert [i.seq for i in items] == list(range(start, stop))
        for item in items:
            assert item.leaf == rows.get(item.seq)
            assert (item.body is None) == (item.seq not in rows)
            assert item.body != b"" or item.seq == 5


def test_a_key_enrolled_with_the_wrong_length_is_named_not_a_crash(cell, il_liaison):
    # The sequencer's schema refuses such a key; only a forged enrolment (signed with the cell key) could put
    # one in a log, and verify must then name the entries it signs instead of failing with a traceback.
    il_liaison.append({"text": "patrol"})
    with cell.db.read() as session:
        entry = session.query(Entry).order_by(Entry.seq.desc()).first()
        seq, leaf, body = entry.seq, entry.leaf, session.get(Body, entry.seq).data
    key = il_liaison.signer.key_id
    for public in (bytes(31), bytes(33), b""):
        checked = check_item(Item(seq, leaf, body), {key: public})
        assert checked.error == (f"signed with key {key}, enrolled as {len(public)} bytes: an Ed25519 public key "
                                 "is 32")
    good = {key: signing.public_bytes(il_liaison.signer.key)}
    assert check_item(Item(seq, leaf, body), good).error is None
