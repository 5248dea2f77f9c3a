"""The one table of deadlines: every kind that owes an answer opens rows here, in its projection."""

from __future__ import annotations

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fusioncell.db import Base


class Deadline(Base):
    __tablename__ = "deadline"
    __table_args__ = (Index("ix_deadline_open_due", "state", "next_at"), {"info": {"projection": True}})

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # e.g. ack:42:SY
    rule: Mapped[str] = mapped_column(String(60))  # what is owed, e.g. hotline.ack
    source_seq: Mapped[int] = mapped_column(Integer)  # the entry that opened it
    party: Mapped[str] = mapped_column(String(100))  # who owes it
    audience: Mapped[str] = mapped_column(String(1000))  # who may see it: the source entry's audience
    opened_at: Mapped[str] = mapped_column(String(24))
    due_at: Mapped[str] = mapped_column(String(24))
    escalate_at: Mapped[str | None] = mapped_column(String(24), nullable=True)  # second escalation, if any
    # open: before due; missed: past due, not met; escalated: past the second escalation; met; closed
    state: Mapped[str] = mapped_column(String(12))
    next_at: Mapped[str | None] = mapped_column(String(24), nullable=True)  # when the engine must act next
    met_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    missed_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    escalated_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
