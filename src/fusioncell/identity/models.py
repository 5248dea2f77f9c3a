"""Projections of identity entries: the cell, its parties and the key registry."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from fusioncell.db import Base


class Cell(Base):
    __tablename__ = "cell"
    __table_args__ = {"info": {"projection": True}}

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    key_id: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict] = mapped_column(JSON)
    genesis_at: Mapped[str] = mapped_column(String(24))


class Party(Base):
    __tablename__ = "party"
    __table_args__ = {"info": {"projection": True}}

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))  # party | supervisor | observer
    names: Mapped[dict] = mapped_column(JSON)  # language -> name
    languages: Mapped[list] = mapped_column(JSON)


class SigningKey(Base):
    """Every key ever enrolled; a revoked key stays, with the seq of its revocation."""

    __tablename__ = "signing_key"
    __table_args__ = {"info": {"projection": True}}

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    party: Mapped[str] = mapped_column(String(100))
    holder: Mapped[str] = mapped_column(String(100))  # the author id that signs with it
    purpose: Mapped[str] = mapped_column(String(20))  # sign | witness
    custody: Mapped[str] = mapped_column(String(20))  # device | cell
    added_seq: Mapped[int] = mapped_column(Integer)
    revoked_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class Member(Base):
    """A person who acts for or reads for a party. The id is the author id in the record (e.g. sy/liaison-1)."""

    __tablename__ = "member"
    __table_args__ = {"info": {"projection": True}}

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    party: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSON)  # liaison | supervisor | observer | admin
    added_seq: Mapped[int] = mapped_column(Integer)
    disabled_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PartySetting(Base):
    __tablename__ = "party_setting"
    __table_args__ = {"info": {"projection": True}}

    party: Mapped[str] = mapped_column(String(100), primary_key=True)
    totp_required: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_seq: Mapped[int] = mapped_column(Integer)


# -- Local secrets: never in the log (the log is shared with every party), so not projections. ------------


class Credential(Base):
    __tablename__ = "credential"

    member: Mapped[str] = mapped_column(String(100), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # under the cell's KEK
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[str | None] = mapped_column(String(24), nullable=True)


class CustodialKey(Base):
    """A member's signing key held by the cell for web use, sealed under the key-encryption key in DATA."""

    __tablename__ = "custodial_key"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    member: Mapped[str] = mapped_column(String(100), index=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class AuthSession(Base):
    __tablename__ = "auth_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie value
    member: Mapped[str] = mapped_column(String(100), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(24))
    expires_at: Mapped[str] = mapped_column(String(24))
    ended_at: Mapped[str | None] = mapped_column(String(24), nullable=True)


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # public part, recorded in the log
    secret_hash: Mapped[str] = mapped_column(String(64))
    member: Mapped[str] = mapped_column(String(100), index=True)
    scopes: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[str] = mapped_column(String(24))
    expires_at: Mapped[str] = mapped_column(String(24))
    revoked_at: Mapped[str | None] = mapped_column(String(24), nullable=True)
