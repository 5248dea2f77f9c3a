"""Ed25519 signing and verification of the record: the record's rule (RFC 8032 §5.1.7, cofactored, strict
decoding, prime-order keys; see record/signing.py) agrees with libsodium on every signature of a real key, and
refuses the published edge cases."""

from __future__ import annotations

import json
import os

import ed25519_zebra
import nacl.bindings
import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusioncell.record import signing
from fusioncell.record.canonical import b64d, b64e
from tests.factories.ed25519 import (
    IDENTITY_NOT_CANONICAL,
    ORDER_8,
    holder_signature,
    scalar_bytes,
    secret_scalar,
)

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
    assert not signing.verify(public, "m", sig)  # type: ignore[arg-type]
    assert signing.verify(public, bytearray(b"m"), sig)  # type: ignore[arg-type]


# The test vectors of "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, CCS 2020), from
# github.com/novifinancial/ed25519-speccheck (cases.json, with its two extra cases): small-order and mixed-order
# keys and R, S >= L. libsodium accepts one of them (mixed-order key and R, cofactorless equation true),
# ed25519-zebra alone nine. The record refuses all: each has a key of small or mixed order, or S >= L.
SPECCHECK = json.loads("""[
["2a66241a42a9ee12994d8068dcf1bb7dfc6637b45450acd43711f637fa5080fc",
 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000"],
["8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000"],
["9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
 "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"],
["9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
 "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"],
["9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
 "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa182ef1a5b928da07fec769cc8a12db6bcf70dab3f3227fa315e9d5e3e01a3405"],
["aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
 "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
 "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e"],
["e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
 "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
 "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09"],
["9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
 "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
 "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009"],
["e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
 "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
 "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405"],
["85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
 "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
 "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514"],
["85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
 "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
 "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22"]
]""")
SMALL_ORDER_KEY = bytes.fromhex(SPECCHECK[0][1])
MIXED_ORDER_KEY = bytes.fromhex(SPECCHECK[6][1])


@pytest.mark.parametrize("case", range(len(SPECCHECK)))
def test_the_published_edge_cases_are_refused(case):
    message, public, raw = (bytes.fromhex(h) for h in SPECCHECK[case])
    assert not signing.verify(public, message, b64e(raw))


def test_keys_of_small_or_mixed_order_are_not_valid_keys():
    assert not signing.valid_public_key(SMALL_ORDER_KEY)
    assert not signing.valid_public_key(MIXED_ORDER_KEY)
    assert not signing.valid_public_key(bytes.fromhex("ed" + "ff" * 30 + "7f"))  # y = p: not canonical
    assert not signing.valid_public_key(bytes(KEYS[0].verify_key)[:31])
    for key in KEYS:
        assert signing.valid_public_key(bytes(key.verify_key))
        assert signing.valid_public_key(bytes(key.verify_key))  # the second answer comes from the cache


@pytest.mark.parametrize("r", [ORDER_8, bytes(32), IDENTITY_NOT_CANONICAL], ids=["order 8", "order 4", "y = p + 1"])
def test_r_of_small_order_or_not_canonical_is_refused_though_the_equation_holds(r):
    """The key's holder makes S = k·a, so that [S]B - [k]A is the identity and any R of small order satisfies the
    cofactored equation: ed25519-zebra alone (ZIP 215) accepts these; the record's rule does not."""
    key = KEYS[0]
    public, message = bytes(key.verify_key), b"a submission"
    sig = holder_signature(key, message, r=0, torsion=r)
    assert ed25519_zebra.ed_verify(b64d(sig), message, public)
    assert not signing.verify(public, message, sig)
    assert not pynacl_verdict(public, message, sig)


def test_the_small_order_list_holds_no_good_point():
    assert not any(nacl.bindings.crypto_core_ed25519_is_valid_point(r) for r in signing._SMALL_ORDER)


def test_a_key_holder_may_add_a_torsion_component_to_r_and_the_rule_says_so():
    """The one difference from libsodium for a prime-order key (record/signing.py): a signature whose R = [r]B + T,
    T of order 8, made on purpose by the key's holder. The cofactored equation holds, the cofactorless one not.
    Nobody else can make one: changing R changes k, so S must be made anew with the secret scalar."""
    key = nacl.signing.SigningKey(bytes(range(32)))
    public, message = bytes(key.verify_key), b"a submission"
    assert nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(scalar_bytes(secret_scalar(key))) == public
    sig = holder_signature(key, message, r=int.from_bytes(os.urandom(64), "little"), torsion=ORDER_8)
    assert signing.verify(public, message, sig)
    assert not pynacl_verdict(public, message, sig)
    assert not signing.verify(public, message + b"!", sig)
    honest = holder_signature(key, message, r=int.from_bytes(os.urandom(64), "little"))
    assert signing.verify(public, message, honest) and pynacl_verdict(public, message, honest)
