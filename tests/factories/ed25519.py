"""Ed25519 signatures that only a key's holder can make, with a chosen R: for the edge cases of the record's rule
(record/signing.py). Built from libsodium's scalar and point operations (PyNaCl's bindings)."""

from __future__ import annotations

import hashlib

import nacl.bindings

from fusioncell.record.canonical import b64e
from fusioncell.record.signing import SigningKey, public_bytes

L = 2**252 + 27742317777372353535851937790883648493
ORDER_8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
# A point of mixed order (a prime-order part plus torsion): the public key of three of ed25519-speccheck's vectors.
TORSION_KEY = bytes.fromhex("cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d")
# The identity (y = 1) written as y = p + 1: a point of small order, and not a canonical encoding.
IDENTITY_NOT_CANONICAL = bytes.fromhex("ee" + "ff" * 30 + "7f")


def scalar_bytes(n: int) -> bytes:
    return (n % L).to_bytes(32, "little")


def secret_scalar(key: SigningKey) -> int:
    """a, the clamped SHA-512 of the seed: libsodium hands it out as the key's X25519 scalar."""
    return int.from_bytes(nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(bytes(key) + public_bytes(key)),
                          "little")


def holder_signature(key: SigningKey, message: bytes, *, r: int, torsion: bytes | None = None) -> str:
    """A signature with R = [r]B + torsion, S = r + k·a (k = SHA-512(R || A || M) mod L): the cofactored equation
    holds. With r = 0, R is `torsion` exactly as given (which may be a non-canonical encoding)."""
    public = public_bytes(key)
    if r % L == 0:
        assert torsion is not None
        big_r = torsion
    else:
        big_r = nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(scalar_bytes(r))
        if torsion is not None:
            big_r = nacl.bindings.crypto_core_ed25519_add(big_r, torsion)
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    return b64e(big_r + scalar_bytes(r + k * secret_scalar(key)))
