"""Disputes on the home page: every open dispute the member's party is in, with its next step and deadline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.clock import parse_time
from fusioncell.deadlines.models import Deadline
from fusioncell.disputes import machine
from fusioncell.disputes import service as dispute_service
from fusioncell.identity.service import Viewer
from fusioncell.web import attention, i18n


@attention.provider
def _open_disputes(session: Session, viewer: Viewer, now: datetime) -> list[attention.Attention]:
    _ = i18n._
    items = []
    for dispute in dispute_service.disputes(session, viewer=viewer):
        if dispute.state in machine.CLOSED:
            continue
        actions = dispute_service.next_actions(session, viewer=viewer, dispute=dispute)
        due = session.execute(select(Deadline.due_at).where(
            Deadline.rule == "dispute.step", Deadline.id.startswith(f"dispute:{dispute.seq}:"),
            Deadline.met_seq.is_(None)).order_by(Deadline.due_at).limit(1)).scalar()
        title = _("Dispute %(seq)s between %(raiser)s and %(respondent)s is %(state)s", seq=dispute.seq,
                  raiser=dispute.raiser, respondent=dispute.respondent, state=dispute.state.replace("_", " "))
        detail = _("Your next step: %(steps)s", steps=", ".join(actions)) if actions else ""
        items.append(attention.Attention(title, detail, f"/records/{dispute.seq}",
                                         parse_time(due) if due else None, 2 if actions else 1))
    return items
