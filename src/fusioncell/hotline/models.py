"""Projections of the hotline: threads, messages, receipts and acknowledgements."""

from __future__ import annotations

from sqlalchemy import JSON, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from fusioncell.db import Base


class Thread(Base):
    __tablename__ = "hotline_thread"
    __table_args__ = {"info": {"projection": True}}

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # leaf hash of the first message
    subject: Mapped[str] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(1000))
    opened_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)


class Message(Base):
    __tablename__ = "hotline_message"
    __table_args__ = {"info": {"projection": True}}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    thread: Mapped[str] = mapped_column(String(64), index=True)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    precedence: Mapped[str] = mapped_column(String(10))
    author: Mapped[str] = mapped_column(String(100))
    party: Mapped[str] = mapped_column(String(100))
    audience: Mapped[str] = mapped_column(String(1000))
    sent_at: Mapped[str] = mapped_column(String(24))
    body: Mapped[dict] = mapped_column(JSON)


class Receipt(Base):
    """Signed proof that a member's client received (delivered) or the member opened (read) a message."""

    __tablename__ = "hotline_receipt"
    __table_args__ = {"info": {"projection": True}}

    message_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    member: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), primary_key=True)  # delivered | read
    party: Mapped[str] = mapped_column(String(100))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[str] = mapped_column(String(24))


class Ack(Base):
    """"Received and understood", by a party addressed, once."""

    __tablename__ = "hotline_ack"
    __table_args__ = {"info": {"projection": True}}

    message_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    party: Mapped[str] = mapped_column(String(100), primary_key=True)
    member: Mapped[str] = mapped_column(String(100))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[str] = mapped_column(String(24))
    reply: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class AttachmentRef(Base):
    """Which message carries which attachment: who may download it follows from the message's audience."""

    __tablename__ = "hotline_attachment_ref"
    __table_args__ = {"info": {"projection": True}}

    message_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)


class StoredFile(Base):
    """Attachment bytes, addressed by their SHA-256 (which the signed body carries). Local, not a projection."""

    __tablename__ = "stored_file"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    party: Mapped[str] = mapped_column(String(100))  # who uploaded it; only they may cite it before sending
    uploaded_at: Mapped[str] = mapped_column(String(24))
    data: Mapped[bytes] = mapped_column(LargeBinary)
