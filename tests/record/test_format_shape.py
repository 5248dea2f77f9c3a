"""The submission's shape check: its one-pattern path gives exactly the verdict, the error and the bytes of the
check of each field."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusioncell.errors import InvalidSubmission
from fusioncell.record import format as record_format
from fusioncell.record.canonical import canonical
from fusioncell.record.format import (
    check_submission_shape,
    checked_submission_bytes,
    make_submission,
)


class One(enum.IntEnum):
    ONE = 1


def valid_submission(**fields) -> dict:
    sub = make_submission(cell="jfm-demo", kind="hotline.message", party="SY", author="sy/liaison-1",
                          key="0123456789abcdef", audience=["IL", "SY", "US"], body={"text": "x"},
                          created="2026-11-22T10:00:00.123Z", refs=["ab" * 32])
    sub.update(fields)
    return sub


def verdict(check, sub):
    """What a check makes of sub: its bytes, or the error it raises (code and message)."""
    try:
        return "ok", check(sub)
    except InvalidSubmission as exc:
        return exc.code, exc.message


def reference(sub):
    check_submission_shape(sub)
    return canonical(sub)


# Values a field may be given: right, wrong in type, wrong in form, and the ones JSON text cannot tell apart
# (a tuple writes as a list, an IntEnum and True compare equal to 1).
odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["IL", "US", "CELL", "a b", "Z", "é", "x\"y", "0123456789abcdef", "ab" * 32, "AB" * 32,
                     "2026-02-30T10:00:00.000Z", "2026-11-22T10:00:00.123Z", "2026-11-22T10:00:00Z",
                     "\u0663" * 4 + "-11-22T10:00:00.123Z", "x" * 100, "x" * 101]),
    st.just(One.ONE), st.just(1.0),
    st.lists(st.sampled_from(["IL", "SY", "US", "CELL", "a b", "é", ""]), max_size=4),
    st.lists(st.sampled_from(["IL", "SY", "US"]), max_size=3).map(tuple),
    st.lists(st.sampled_from(["ab" * 32, "cd" * 32, "AB" * 32, "ab"]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
)
fields = st.sampled_from(record_format.SUBMISSION_FIELDS)


@settings(max_examples=1500, deadline=None)
@given(changes=st.dictionaries(fields, odd_values, max_size=3), dropped=st.lists(fields, max_size=2),
       extra=st.dictionaries(st.sampled_from(["extra", "sig", 1, "V"]), odd_values, max_size=1))
def test_the_fast_path_agrees_with_the_check_of_each_field(changes, dropped, extra):
    sub = valid_submission(**changes)
    for name in dropped:
        sub.pop(name, None)
    sub.update(extra)
    assert verdict(checked_submission_bytes, sub) == verdict(reference, sub)


@pytest.mark.parametrize("value", [None, [], "submission", 3, ("v", 1)])
def test_what_is_not_an_object_is_refused_as_before(value):
    assert verdict(checked_submission_bytes, value) == verdict(reference, value)


@pytest.mark.parametrize("fields", [
    {"audience": ("IL", "SY", "US")}, {"refs": ("ab" * 32,)}, {"v": True}, {"v": One.ONE},  # JSON writes them alike
    {"audience": ["SY", "IL", "US"]}, {"audience": ["IL", "IL", "US"]},  # unsorted, repeated
    {"created": "2026-02-30T10:00:00.000Z"}, {"created": "2026-11-22T24:00:00.000Z"},  # no such date or time
], ids=repr)
def test_what_the_pattern_passes_and_the_values_do_not_is_refused_as_before(fields):
    sub = valid_submission(**fields)
    code, message = verdict(reference, sub)
    assert code != "ok"
    assert verdict(checked_submission_bytes, sub) == (code, message)


def test_a_valid_submission_takes_the_one_pattern_path(monkeypatch):
    """The common case does not fall back to the check of each field (which would cost as much as before)."""
    calls = []
    monkeypatch.setattr(record_format, "check_submission_shape", lambda sub: calls.append(sub))
    sub = valid_submission()
    assert checked_submission_bytes(sub) == canonical(sub)
    assert calls == []
    checked_submission_bytes(valid_submission(audience=["SY", "IL", "US"]))  # unsorted: the full check says why
    assert len(calls) == 1
