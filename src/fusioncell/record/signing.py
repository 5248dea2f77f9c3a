"""Ed25519 keys of the record: key ids, signing, verification, and keys kept in files."""

from __future__ import annotations

import os
from pathlib import Path

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


def verify(public_key: bytes | VerifyKey, message: bytes, sig: str) -> bool:
    try:
        raw = b64d(sig)
        if len(raw) != 64:
            return False
        verifier = public_key if isinstance(public_key, VerifyKey) else VerifyKey(public_key)
        verifier.verify(message, raw)
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
