"""Ed25519 keys of the record: key ids, signing, verification, and keys kept in files."""

from __future__ import annotations

import os
from pathlib import Path

import ed25519_zebra
import nacl.bindings
import nacl.signing

from fusioncell.record.canonical import b64d, b64e, hash_hex

SigningKey = nacl.signing.SigningKey
VerifyKey = nacl.signing.VerifyKey


def key_id(public_key: bytes) -> str:
    """First 16 hex characters of SHA-256 of the raw 32-byte public key (format v1)."""
    return hash_hex(public_key)[:16]


def generate() -> SigningKey:
    return nacl.signing.SigningKey.generate()


def public_bytes(key: SigningKey) -> bytes:
    return bytes(key.verify_key)


def sign(key: SigningKey, message: bytes) -> str:
    """base64url Ed25519 signature of message."""
    return b64e(key.sign(message).signature)


# The record's Ed25519 rule, the same for the sequencer, the verifier, proofs and cosignatures (RFC 8032 §5.1.7
# with its strict decoding, and the cofactored equation it names first):
#   - the public key A is the canonical encoding of a point of prime order L: no small-order point and no torsion
#     component (libsodium's crypto_core_ed25519_is_valid_point). Enrolment refuses any other key (registry);
#   - R is a canonical encoding (y < p, and not x = 0 with the sign bit set) of a point not of small order;
#   - S < L;
#   - [8][S]B = [8]R + [8][k]A, k = SHA-512(R || A || M) mod L.
# ed25519-zebra (Zcash Foundation, on curve25519-dalek) checks the last two; it follows ZIP 215, which also
# accepts non-canonical encodings and small-order points, so the first two rules are checked here.
# Why not libsodium's crypto_sign_verify_detached, which the record used before: zebra's check is faster (dalek
# uses AVX2 where the CPU has it; bench/verify.py, one thread: 42-60 µs against libsodium's 56-93 µs in the same
# runs), and most of `fusioncell verify`'s time is this check.
# The two agree on every signature with a prime-order key, but for one that the key's holder makes on purpose
# with a torsion component in R: libsodium's cofactorless equation refuses it, this rule accepts it (only the
# holder can make one, and it signs what the holder chose). The verdict is this rule's wherever it is asked.
# zebra's call keeps the GIL, as the ctypes call into libsodium before it did: releasing it for a check this short
# costs a hand-off to another thread and back under load (bench/append.py measured ~2.3 context switches and
# ~40 µs of kernel time per append with PyNaCl's releasing call, ~195 against ~155 µs of CPU per append).
_FF30 = b"\xff" * 30
# The small-order points' encodings with either sign bit (the x = 0 ones with the bit set are not canonical).
_SMALL_ORDER = frozenset(
    bytes.fromhex(h[:62]) + bytes([int(h[62:], 16) | sign])
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
        "0100000000000000000000000000000000000000000000000000000000000000",  # order 1
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    )
    for sign in (0, 0x80)
)
_GOOD_KEYS: set[bytes] = set()


def valid_public_key(public_key: bytes) -> bool:
    """Whether the record accepts this as an Ed25519 public key: 32 bytes encoding a point of prime order."""
    if type(public_key) is not bytes or len(public_key) != 32:
        return False
    if public_key in _GOOD_KEYS:
        return True
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(public_key):  # ~ a scalar multiplication: cached
        return False
    if len(_GOOD_KEYS) >= 4096:
        _GOOD_KEYS.clear()
    _GOOD_KEYS.add(public_key)
    return True


def _r_acceptable(r: bytes) -> bool:
    if r[1:31] == _FF30 and r[31] & 0x7F == 0x7F and r[0] >= 0xED:  # y >= p: not canonical
        return False
    return r not in _SMALL_ORDER


def verify(public_key: bytes | VerifyKey, message: bytes, sig: str) -> bool:
    try:
        raw = b64d(sig)
    except (ValueError, TypeError):
        return False
    if len(raw) != 64:
        return False
    if isinstance(public_key, VerifyKey):
        public_key = bytes(public_key)
    if not valid_public_key(public_key) or not _r_acceptable(raw[:32]):
        return False
    if type(message) is not bytes:
        if not isinstance(message, (bytearray, memoryview)):
            return False
        message = bytes(message)
    return ed25519_zebra.ed_verify(raw, message, public_key)


def save_key(key: SigningKey, path: Path) -> None:
    """Write the 32-byte seed as base64url, readable by the owner only (mode 0600 from creation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(b64e(bytes(key)) + "\n")


def load_key(path: Path) -> SigningKey:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    return nacl.signing.SigningKey(b64d(path.read_text().strip()))
