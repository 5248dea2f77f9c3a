"""Canonical JSON: the fast path gives exactly the bytes of the rfc8785 reference."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from fusioncell.record.canonical import (
    b64d,
    b64e,
    canonical,
    canonical_stable,
    parse_canonical,
)

scalars = st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text()
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
with_floats = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_equals_rfc8785_reference(value):
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ValueError):
            canonical(value)
        return
    assert canonical(value) == expected


@settings(max_examples=200, deadline=None)
@given(with_floats)
def test_canonical_with_floats_equals_reference(value):
    assert canonical(value) == rfc8785.dumps(value)


def test_known_canonical_forms():
    # Key order by UTF-16 code units (RFC 8785 §3.2.3): U+10000 (surrogates D800..) sorts before U+FFFF... not
    # after as code points would; the fast path must not be used for such keys.
    assert canonical({"\U00010000": 1, "\uffff": 2}) == rfc8785.dumps({"\U00010000": 1, "\uffff": 2})
    assert canonical({"b": 1.0, "a": [1e21, 0.5]}) == b'{"a":[1e+21,0.5],"b":1}'
    assert canonical({"z": "é\n\u0001", "a": None}) == '{"a":null,"z":"é\\n\\u0001"}'.encode()


def test_integers_beyond_double_precision_are_refused():
    with pytest.raises(ValueError):
        canonical({"n": 2**60})


@given(st.binary(max_size=64))
def test_base64url_round_trip_without_padding(data):
    text = b64e(data)
    assert "=" not in text and b64d(text) == data


@settings(max_examples=300, deadline=None)
@given(with_floats)
def test_parse_canonical_reads_what_json_loads_reads(value):
    try:
        data = canonical(value)
    except ValueError:
        return
    parsed, expected = parse_canonical(data), json.loads(data)
    assert parsed == expected
    assert same_types(parsed, expected)  # 1 == 1.0 == True in Python, not in what projections see


def same_types(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_types(x, y) for x, y in zip(a, b, strict=True))
    return True


@settings(max_examples=400, deadline=None)
@given(with_floats)
def test_a_value_said_stable_is_what_its_canonical_bytes_parse_to(value):
    # The intake's workers keep the body sent where canonical_stable says so, instead of parsing their bytes back:
    # projections must see the same values, types and key order either way.
    try:
        data, stable = canonical_stable(value)
    except ValueError:
        with pytest.raises(ValueError):
            canonical(value)
        return
    assert data == canonical(value)
    parsed = parse_canonical(data)
    if stable:
        assert parsed == value and same_types(parsed, value)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_a_value_without_floats_is_stable_once_its_keys_are_sorted(value):
    # What the stable path is for: bodies parsed from canonical bytes (a device's) come back in that form.
    try:
        parsed = parse_canonical(canonical(value))
    except ValueError:
        return
    assert canonical_stable(parsed)[1] == _ascii_keys(parsed)  # non-ASCII keys take the reference path


def _ascii_keys(value) -> bool:
    if isinstance(value, dict):
        return all(k.isascii() and _ascii_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_ascii_keys(v) for v in value)
    return True


def test_known_stable_and_unstable_values():
    assert canonical_stable({"a": 1, "b": [{"c": "x", "d": None}]})[1]
    assert not canonical_stable({"b": 1, "a": 2})[1]  # key order changes
    assert not canonical_stable({"a": [{"d": 1, "c": 2}]})[1]
    assert not canonical_stable({"a": 1.0})[1]  # parsed back as the int 1


def test_parse_canonical_refuses_what_is_not_one_value():
    for data in (b"", b" {}", b"{} ", b'{"a":1}x', b"nope", b"\xff"):
        with pytest.raises(ValueError):
            parse_canonical(data)
