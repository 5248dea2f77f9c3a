"""Dispute kinds: raised about entries (cited by leaf hash, so a dispute carries its own proof), then each step
of the state machine as an entry, with the deadlines of the next step in the cell's deadline engine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.deadlines import engine as deadlines
from fusioncell.deadlines.models import Deadline
from fusioncell.disputes import machine
from fusioncell.disputes.models import Dispute, Step
from fusioncell.hotline.kinds import FreeText
from fusioncell.identity.models import Party
from fusioncell.identity.service import cell_setting, supervising_parties
from fusioncell.record.kinds import BodyModel, Kind, register
from fusioncell.record.sequencer import Appended

# After each state, who owes the next step, and within how many hours by default (cell setting dispute_hours).
OWED = {"raised": ("respondent", 48), "answered": ("supervisor", 72), "in_mediation": ("supervisor", 168),
        "ruled": ("respondent", 336)}


class RaisedBody(BodyModel):
    respondent: str = Field(max_length=32)
    claim: FreeText
    remedy: FreeText


class StepBody(BodyModel):
    dispute: int = Field(ge=0)
    action: str = Field(max_length=20)
    text: FreeText


def _refuse(message: str, code: str) -> Any:
    from fusioncell.errors import InvalidSubmission

    return InvalidSubmission(message, code=code)


def _owe(session: Session, entry: Appended, dispute: Dispute) -> None:
    """Close what was owed; open the deadline of the next step, if the dispute is still open."""
    for row in session.execute(select(Deadline).where(Deadline.rule == "dispute.step",
                                                      Deadline.id.startswith(f"dispute:{dispute.seq}:"),
                                                      Deadline.met_seq.is_(None))).scalars().all():
        deadlines.meet(session, id=row.id, seq=entry.seq)
    if dispute.state not in OWED:
        return
    role, hours = OWED[dispute.state]
    configured = cell_setting(session, "dispute_hours", {})
    hours = float(configured.get(dispute.state, hours))
    parties = {"respondent": [dispute.respondent], "raiser": [dispute.raiser],
               "supervisor": sorted(supervising_parties(session))}[role]
    for party in parties:
        deadlines.open_deadline(session, id=f"dispute:{dispute.seq}:{entry.seq}:{party}", rule="dispute.step",
                                entry=entry, party=party, due=timedelta(hours=hours))


def _apply_raised(session: Session, entry: Appended, body: RaisedBody) -> None:
    if not entry.submission["refs"]:
        raise _refuse("a dispute is about entries: cite them by leaf hash in refs", "no_refs")
    if session.get(Party, body.respondent) is None or body.respondent == entry.party:
        raise _refuse("the respondent is another party of this cell", "bad_respondent")
    audience = entry.submission["audience"]
    if body.respondent not in audience:
        raise _refuse("the respondent must be in the audience", "bad_audience")
    dispute = Dispute(seq=entry.seq, raiser=entry.party, respondent=body.respondent, audience=" ".join(audience),
                      state="raised", settle_signed_by=[], body=body.model_dump(mode="json"))
    session.add(dispute)
    session.flush()
    _owe(session, entry, dispute)
    session.flush()


def _apply_step(session: Session, entry: Appended, body: StepBody) -> None:
    dispute = session.get(Dispute, body.dispute)
    if dispute is None or entry.party not in dispute.audience.split():
        raise _refuse(f"no dispute {body.dispute}", "unknown_dispute")
    role = machine.role_of(party=entry.party, raiser=dispute.raiser, respondent=dispute.respondent,
                           supervisors=supervising_parties(session))
    try:
        after = machine.step(machine.Dispute(dispute.state, frozenset(dispute.settle_signed_by)), body.action, role)
    except machine.StepRefused as exc:
        raise _refuse(str(exc), exc.code) from exc
    moved = after.state != dispute.state
    dispute.state, dispute.settle_signed_by = after.state, sorted(after.settle_signed_by)
    session.add(Step(seq=entry.seq, dispute_seq=dispute.seq, party=entry.party, action=body.action,
                     state_after=after.state, body=body.model_dump(mode="json")))
    session.flush()
    if moved:
        _owe(session, entry, dispute)
    session.flush()


register(Kind("dispute.raised", RaisedBody, _apply_raised))
register(Kind("dispute.step", StepBody, _apply_step))
