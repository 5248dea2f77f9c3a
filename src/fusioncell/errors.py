"""The one error hierarchy of fusioncell. Every error has a stable `code`; the web layer turns them into
RFC 9457 problem details in exactly one handler, the CLI prints the message and exits non-zero.

    FusioncellError
    ├── InvalidInput            400  the caller sent something wrong; nothing was recorded
    │   └── InvalidSubmission   422  a submission the record refuses (bad signature, key, audience, ...)
    ├── Conflict                409  valid, but clashes with what is already recorded
    ├── NotFound                404  missing, or not visible to the caller (the same error for both)
    ├── Unauthenticated         401  no valid session or token (expired, ended, disabled member)
    ├── Forbidden               403  authenticated, but the role or scope does not allow the act
    ├── RateLimited             429  too many attempts; retry later
    ├── TooLarge                413  the request exceeds the configured size limit
    ├── ConfigError             400  the cell configuration or data directory is wrong
    └── VerificationFailed      the log or a bundle does not verify; names the first bad seq
"""

from __future__ import annotations


class FusioncellError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(FusioncellError):
    code = "invalid_input"
    status = 400


class InvalidSubmission(InvalidInput):
    """Refused by the record. `code` says which rule: bad_signature, unknown_key, revoked_key,
    body_hash_mismatch, bad_audience, unknown_kind, wrong_cell, bad_body, bad_submission, wrong_author."""

    code = "invalid_submission"
    status = 422


class Conflict(FusioncellError):
    code = "conflict"
    status = 409


class NotFound(FusioncellError):
    code = "not_found"
    status = 404


class Unauthenticated(FusioncellError):
    code = "unauthenticated"
    status = 401


class Forbidden(FusioncellError):
    code = "forbidden"
    status = 403


class RateLimited(FusioncellError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooLarge(FusioncellError):
    code = "too_large"
    status = 413


class ConfigError(FusioncellError):
    code = "config_error"
    status = 400


class VerificationFailed(FusioncellError):
    code = "verification_failed"

    def __init__(self, message: str, *, seq: int | None = None, reason: str = "") -> None:
        where = f"seq {seq}: " if seq is not None else ""
        super().__init__(where + message)
        self.seq = seq
        self.reason = reason or message
