"""Projections of activity notices and their findings."""

from __future__ import annotations

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fusioncell.db import Base


class Notice(Base):
    __tablename__ = "notice"
    __table_args__ = {"info": {"projection": True}}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    party: Mapped[str] = mapped_column(String(100))
    author: Mapped[str] = mapped_column(String(100))
    audience: Mapped[str] = mapped_column(String(1000))
    activity: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[str] = mapped_column(String(24))
    end_at: Mapped[str] = mapped_column(String(24), index=True)
    body: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12))  # active | cancelled
    outcome: Mapped[str | None] = mapped_column(String(12), nullable=True)
    checked_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the cell's findings entry


class Finding(Base):
    """What the cell found when a notice was filed; accepted when every party accepts it with a reason."""

    __tablename__ = "notice_finding"
    __table_args__ = {"info": {"projection": True}}

    notice_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)  # the cell's findings entry
    type: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSON)
    responses: Mapped[dict] = mapped_column(JSON)  # party -> {"response", "reason", "seq"}
