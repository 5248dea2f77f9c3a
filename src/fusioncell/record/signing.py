"""Ed25519 keys of the record: key ids, signing, verification, and keys kept in files."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import nacl._sodium
import nacl.exceptions
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


def _verify_holding_the_gil() -> ctypes._CFuncPtr | None:
    """libsodium's own Ed25519 check (the one PyNaCl calls), called through ctypes.PyDLL, which keeps the GIL.

    Why: PyNaCl releases the GIL for every call, and a 40 µs check is too short for that to pay. Under load
    each release is a hand-off to another thread and back (futex waits, context switches): with eight
    writers and the sequencer's thread, bench/append.py measured ~2.3 context switches and ~40 µs of kernel
    time per append, and ~195 µs of CPU per append against ~155 µs with the GIL kept, for as many appends/s or
    up to a sixth fewer (A/B runs of bench/append.py --quick --appends 40000).
    None where the library does not export the function; PyNaCl's call is then used."""
    try:
        function = ctypes.PyDLL(nacl._sodium.__file__).crypto_sign_ed25519_verify_detached
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p)
    function.restype = ctypes.c_int
    return function


_ED25519_VERIFY = _verify_holding_the_gil()


def verify(public_key: bytes | VerifyKey, message: bytes, sig: str) -> bool:
    try:
        raw = b64d(sig)
    except (ValueError, TypeError):
        return False
    if len(raw) != 64:
        return False
    if isinstance(public_key, VerifyKey):
        public_key = bytes(public_key)
    if type(public_key) is not bytes or len(public_key) != 32:
        return False
    if _ED25519_VERIFY is not None and type(message) is bytes:
        # Lengths checked above: the C function reads exactly 64 and 32 bytes from the first and last.
        return _ED25519_VERIFY(raw, message, len(message), public_key) == 0
    try:
        VerifyKey(public_key).verify(message, raw)
        return True
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False


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
