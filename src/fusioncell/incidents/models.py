"""Projections of incident reports and the answers to them."""

from __future__ import annotations

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fusioncell.db import Base


class Incident(Base):
    __tablename__ = "incident"
    __table_args__ = {"info": {"projection": True}}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    party: Mapped[str] = mapped_column(String(100))
    author: Mapped[str] = mapped_column(String(100))
    audience: Mapped[str] = mapped_column(String(1000))
    category: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[str] = mapped_column(String(24), index=True)
    end_at: Mapped[str] = mapped_column(String(24))
    responsible: Mapped[str | None] = mapped_column(String(100), nullable=True)
    body: Mapped[dict] = mapped_column(JSON)
    links: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # the cell's linking: zones, notices
    linked_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Answer(Base):
    """A response by the party held responsible, or another party's assessment (graded A–F / 1–6)."""

    __tablename__ = "incident_answer"
    __table_args__ = {"info": {"projection": True}}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    incident_seq: Mapped[int] = mapped_column(Integer, index=True)
    party: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # response | assessment
    body: Mapped[dict] = mapped_column(JSON)
