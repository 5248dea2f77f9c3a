"""Projections of identity entries: the cell, its parties and the key registry."""

from __future__ import annotations

from sqlalchemy import JSON, Integer, LargeBinary, String
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
