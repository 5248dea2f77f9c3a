"""Projections of disputes and their steps."""

from __future__ import annotations

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fusioncell.db import Base


class Dispute(Base):
    __tablename__ = "dispute"
    __table_args__ = {"info": {"projection": True}}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    raiser: Mapped[str] = mapped_column(String(100))
    respondent: Mapped[str] = mapped_column(String(100))
    audience: Mapped[str] = mapped_column(String(1000))
    state: Mapped[str] = mapped_column(String(20))
    settle_signed_by: Mapped[list] = mapped_column(JSON)
    body: Mapped[dict] = mapped_column(JSON)


class Step(Base):
    __tablename__ = "dispute_step"
    __table_args__ = {"info": {"projection": True}}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    dispute_seq: Mapped[int] = mapped_column(Integer, index=True)
    party: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    state_after: Mapped[str] = mapped_column(String(20))
    body: Mapped[dict] = mapped_column(JSON)
