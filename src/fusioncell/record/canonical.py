"""RFC 8785 (JCS) canonical JSON, hashing and base64url for the record.

The `rfc8785` package is the reference. It is pure Python and about three times slower than the standard
library's C encoder, which gives the same bytes for JSON without floats and with ASCII keys (key order by code
point equals JCS's UTF-16 order for ASCII; string escaping is the same). `canonical` takes that fast path when
it applies and falls back to `rfc8785` otherwise; a property test holds the two equal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import json.encoder
import json.scanner
from typing import Any

import rfc8785

_MAX_SAFE_INT = 2**53 - 1
# json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")).encode without
# its Python layers: the C encoder it builds on every call, built once (no check for circular references: JSON
# cannot hold any, and deep recursion still ends in RecursionError).
_c_encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, None, json.encoder.c_encode_basestring, None, ":", ",", True, False, False)  # type: ignore[attr-defined]
_scan = json.scanner.c_make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def _encode(value: Any) -> str:
    return "".join(_c_encode(value, 0))


def parse_canonical(data: bytes) -> Any:
    """json.loads of bytes that canonical() made (UTF-8, no surrounding whitespace), without its layers."""
    text = data.decode("utf-8")
    try:
        value, end = _scan(text, 0)
    except StopIteration as exc:
        raise ValueError("not JSON") from exc
    if end != len(text):
        raise ValueError("not one JSON value")
    return value


def _fast_path_ok(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not _fast_path_ok(item):
                return False
        return True
    if kind is list:
        return all(_fast_path_ok(item) for item in value)
    return False


def _sorted_keys(value: Any) -> bool:
    """Whether every object in a value that passed _fast_path_ok has its keys in sorted order already."""
    kind = type(value)
    if kind is dict:
        keys = list(value)
        return keys == sorted(keys) and all(_sorted_keys(item) for item in value.values())
    if kind is list:
        return all(_sorted_keys(item) for item in value)
    return True


def canonical_stable(value: Any) -> tuple[bytes, bool]:
    """JCS bytes of a JSON value, and whether parsing them back gives the value itself: the same types (no float
    to turn into an int) and the same key order. Where it does, a caller may keep the value instead."""
    if _fast_path_ok(value):
        return _encode(value).encode("utf-8"), _sorted_keys(value)
    return canonical(value), False


def canonical(value: Any) -> bytes:
    """JCS bytes of a JSON value (dict, list, str, int, float, bool, None)."""
    if _fast_path_ok(value):
        return _encode(value).encode("utf-8")
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not canonicalisable as JSON: {exc}") from exc


def canonical_trusted(value: Any) -> bytes:
    """JCS bytes of a value the caller has checked holds only strings, small integers, lists and dicts with
    ASCII keys (no floats): the fast path without the walk."""
    return _encode(value).encode("utf-8")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64d(text: str) -> bytes:
    """base64.urlsafe_b64decode's steps (ASCII, the url-safe alphabet to the standard one, lenient decode) after
    refusing padding, without its layers of calls: signatures are decoded once per entry."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("expected base64url without padding")
    # UnicodeEncodeError and binascii.Error are ValueErrors.
    return binascii.a2b_base64((text + "=" * (-len(text) % 4)).encode("ascii").translate(_URLSAFE))
