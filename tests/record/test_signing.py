"""Ed25519 signing and verification of the record: the GIL-keeping call into libsodium agrees with PyNaCl's."""

from __future__ import annotations

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusioncell.record import signing
from fusioncell.record.canonical import b64e

KEYS = [nacl.signing.SigningKey(bytes([i]) * 32) for i in range(3)]


def pynacl_verdict(public: bytes, message: bytes, sig: str) -> bool:
    try:
        raw = signing.b64d(sig)
        if len(raw) != 64:
            return False
        nacl.signing.VerifyKey(public).verify(message, raw)
        return True
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False


def test_the_gil_keeping_call_is_in_use():
    # PyNaCl's wheels export libsodium's functions; if this fails, verify silently fell back to PyNaCl's call.
    assert signing._ED25519_VERIFY is not None


@settings(max_examples=300, deadline=None)
@given(
    signer=st.sampled_from(KEYS),
    checker=st.sampled_from(KEYS),
    message=st.binary(max_size=600),
    flip=st.one_of(st.none(), st.tuples(st.sampled_from(["message", "sig", "key"]), st.integers(0, 10_000))),
    cut=st.integers(0, 3),
)
def test_verify_agrees_with_pynacl(signer, checker, message, flip, cut):
    public = bytes(checker.verify_key)
    raw = bytearray(signer.sign(message).signature)
    message = bytearray(message)
    if flip is not None:
        where, at = flip
        target = {"message": message, "sig": raw}.get(where)
        if where == "key":
            public = bytes(b ^ (1 if i == at % 32 else 0) for i, b in enumerate(public))
        elif target:
            target[at % len(target)] ^= 1 << (at % 8)
    sig = b64e(bytes(raw))[:len(b64e(bytes(raw))) - cut]  # cut: a truncated signature
    expected = pynacl_verdict(public, bytes(message), sig)
    assert signing.verify(public, bytes(message), sig) is expected
    assert signing.verify(nacl.signing.VerifyKey(public), bytes(message), sig) is expected
    if signer is checker and flip is None and cut == 0:
        assert expected  # the examples include good signatures, not only bad ones


def test_verify_refuses_keys_and_signatures_of_the_wrong_size_without_reading_past_them():
    key = KEYS[0]
    sig = b64e(key.sign(b"m").signature)
    public = bytes(key.verify_key)
    assert signing.verify(public, b"m", sig)
    assert not signing.verify(public[:31], b"m", sig)
    assert not signing.verify(public + b"\0", b"m", sig)
    assert not signing.verify(public, b"m", b64e(key.sign(b"m").signature[:63]))
    assert not signing.verify(public, b"m", b64e(key.sign(b"m").signature + b"\0"))
    assert not signing.verify(public, b"m", "not base64url!")
    assert not signing.verify(public, b"m", 42)  # type: ignore[arg-type]


@pytest.mark.parametrize("message", [b"", b"x", bytes(range(256)) * 4])
def test_verify_without_the_gil_keeping_call_gives_the_same_answers(monkeypatch, message):
    key = KEYS[1]
    public, sig = bytes(key.verify_key), b64e(key.sign(message).signature)
    with_call = [signing.verify(public, message, sig), signing.verify(public, message + b"!", sig)]
    monkeypatch.setattr(signing, "_ED25519_VERIFY", None)
    assert [signing.verify(public, message, sig), signing.verify(public, message + b"!", sig)] == with_call
    assert with_call == [True, False]
