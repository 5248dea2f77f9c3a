"""Secrets of authentication: argon2id passwords, TOTP, sealing under the key-encryption key, session and
token values, and the login rate limiter. No database here."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path

import nacl.secret
import nacl.utils
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from fusioncell.errors import InvalidInput

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verifying against this keeps the time of a login for an unknown member equal to that of a known one.
_DUMMY_HASH = _hasher.hash("not a password of anyone")
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, *, member: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=member, issuer_name=issuer)


def check_totp(secret: str, code: str, *, at: float) -> bool:
    code = (code or "").strip().replace(" ", "")
    return code.isdigit() and pyotp.TOTP(secret).verify(code, for_time=at, valid_window=1)


def totp_now(secret: str, *, at: float) -> str:
    return pyotp.TOTP(secret).at(at)


class KeyEncryptionKey:
    """The key that seals custodial keys and TOTP secrets at rest. It lives in DATA (0600), never in the
    database, so a stolen database alone yields no signing key."""

    def __init__(self, key: bytes) -> None:
        self._box = nacl.secret.SecretBox(key)

    @classmethod
    def load_or_create(cls, path: Path) -> KeyEncryptionKey:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE))
        if path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} is readable by others; run: chmod 600 {path}")
        return cls(path.read_bytes())

    def seal(self, data: bytes) -> bytes:
        return bytes(self._box.encrypt(data))

    def open(self, sealed: bytes) -> bytes:
        return self._box.decrypt(sealed)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class RateLimiter:
    """Sliding-window limit of attempts per key (client address), in memory."""

    def __init__(self, attempts: int, per_seconds: float) -> None:
        self.attempts = attempts
        self.per_seconds = per_seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> float:
        """Record an attempt; return 0 if allowed, else seconds until the next is allowed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.per_seconds:
                hits.popleft()
            if len(hits) >= self.attempts:
                return hits[0] + self.per_seconds - now
            hits.append(now)
            return 0.0
