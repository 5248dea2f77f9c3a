"""Tables of the log itself. `entry.leaf` (the JCS bytes of the entry) and `body.data` are the truth;
the other columns of `entry` and `entry_audience` are indexes over them, written in the same statement."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fusioncell.db import Base


class Entry(Base):
    __tablename__ = "entry"
    # No index on leaf_hash, and the replay check keyed by (key, created, nonce): an index on a hash grows at
    # random places, and on SQLite each batch then rewrites a page of it per entry (measured: the two such
    # indexes cost more than all the rest of a commit). Leaf hashes are looked up in the sequencer's tree.
    __table_args__ = (UniqueConstraint("key_id", "created_at", "nonce"), Index("ix_entry_kind_seq", "kind", "seq"))

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(100))
    party: Mapped[str] = mapped_column(String(100))
    author: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(String(1000))  # space-separated party ids
    body_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(24))
    sequenced_at: Mapped[str] = mapped_column(String(24))
    leaf: Mapped[bytes] = mapped_column(LargeBinary)


class Body(Base):
    """Entry bodies, kept apart from the entries: only the audience may receive them."""

    __tablename__ = "body"

    seq: Mapped[int] = mapped_column(ForeignKey("entry.seq"), primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class EntryAudience(Base):
    """One row per (party, entry released to it): the access layer's index."""

    __tablename__ = "entry_audience"

    party: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(ForeignKey("entry.seq"), primary_key=True, autoincrement=False)


class TreeHead(Base):
    __tablename__ = "tree_head"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[str] = mapped_column(String(24))
    sig: Mapped[str] = mapped_column(String(100))


class Cosignature(Base):
    """A party witness's signature over the same tree head bytes."""

    __tablename__ = "cosignature"

    size: Mapped[int] = mapped_column(ForeignKey("tree_head.size"), primary_key=True, autoincrement=False)
    party: Mapped[str] = mapped_column(String(100), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    sig: Mapped[str] = mapped_column(String(100))
