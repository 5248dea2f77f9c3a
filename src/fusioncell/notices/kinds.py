"""Activity notices: filed, checked by the cell (a cell-signed findings entry), answered, cancelled, and their
outcome recorded. Released to every party: the point of a notice is that the others know."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.clock import format_time, parse_time
from fusioncell.deadlines import engine as deadlines
from fusioncell.errors import FusioncellError, InvalidSubmission
from fusioncell.geo.rules import Activity, Category
from fusioncell.identity.models import Party
from fusioncell.identity.service import cell_setting
from fusioncell.notices.models import Finding, Notice
from fusioncell.record.kinds import BodyModel, Kind, register
from fusioncell.record.sequencer import Appended

OUTCOMES = ("facilitated", "impeded", "denied", "cancelled")


class Altitude(BodyModel):
    min_m: float = Field(ge=-500, le=30000)
    max_m: float = Field(ge=-500, le=30000)


class NoticeBody(BodyModel):
    activity: Activity
    geometry: dict[str, Any]
    altitude: Altitude | None = None
    start: str
    end: str
    composition: dict[Category, int] = Field(default_factory=dict)
    calibre_mm: int | None = Field(default=None, ge=1, le=1000)
    contact: str = Field(min_length=1, max_length=200)

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        return format_time(parse_time(value))

    @model_validator(mode="after")
    def _window(self) -> NoticeBody:
        if parse_time(self.end) <= parse_time(self.start):
            raise ValueError("the time window ends before it starts")
        if any(n < 0 for n in self.composition.values()):
            raise ValueError("counts in the composition cannot be negative")
        return self


class AmendBody(NoticeBody):
    notice: int = Field(ge=0)


class FindingsBody(BodyModel):
    notice: int = Field(ge=0)
    findings: list[dict[str, Any]]


class ResponseBody(BodyModel):
    notice: int = Field(ge=0)
    response: Literal["acknowledge", "object"]
    reason: str = Field(min_length=1, max_length=2000)


class AcceptBody(BodyModel):
    notice: int = Field(ge=0)
    number: int = Field(ge=0)
    reason: str = Field(min_length=1, max_length=2000)


class CancelBody(BodyModel):
    notice: int = Field(ge=0)
    reason: str = Field(min_length=1, max_length=2000)


class OutcomeBody(BodyModel):
    notice: int = Field(ge=0)
    outcome: Literal["facilitated", "impeded", "denied", "cancelled"]
    note: str = Field(default="", max_length=2000)


def _refuse(message: str, code: str) -> InvalidSubmission:
    return InvalidSubmission(message, code=code)


def _notice(session: Session, seq: int) -> Notice:
    notice = session.get(Notice, seq)
    if notice is None:
        raise _refuse(f"no notice {seq}", "unknown_notice")
    return notice


def counter_parties(session: Session, notice: Notice) -> list[str]:
    return sorted(p for p in session.execute(select(Party.id).where(Party.role == "party")).scalars()
                  if p != notice.party)


def _check_filed(session: Session, submission: dict[str, Any], body: NoticeBody) -> None:
    from fusioncell.notices.geometry import checked

    try:
        checked(dict(body.geometry), repair=False)
    except FusioncellError as exc:
        raise _refuse(exc.message, exc.code) from exc
    if parse_time(body.end) < parse_time(submission["created"]):
        raise _refuse("the time window lies in the past", "bad_window")


def _apply_filed(session: Session, entry: Appended, body: NoticeBody) -> None:
    session.add(Notice(seq=entry.seq, party=entry.party, author=entry.submission["author"],
                       audience=" ".join(entry.submission["audience"]), activity=body.activity,
                       start_at=body.start, end_at=body.end, body=body.model_dump(mode="json"), state="active"))
    session.flush()


def _apply_findings(session: Session, entry: Appended, body: FindingsBody) -> None:
    notice = _notice(session, body.notice)
    if notice.checked_seq is not None:
        raise _refuse(f"notice {notice.seq} was already checked at seq {notice.checked_seq}", "duplicate")
    notice.checked_seq = entry.seq
    for number, finding in enumerate(body.findings):
        session.add(Finding(notice_seq=notice.seq, number=number, seq=entry.seq, type=finding.get("type", "?"),
                            detail=finding, responses={}))
    if body.findings:
        hours = float(cell_setting(session, "notice_response_hours", 6))
        for party in counter_parties(session, notice):
            deadlines.open_deadline(session, id=f"notice:{notice.seq}:{party}:{entry.seq}", rule="notice.response",
                                    entry=entry, party=party, due=timedelta(hours=hours))
    session.flush()


def _apply_response(session: Session, entry: Appended, body: ResponseBody) -> None:
    notice = _notice(session, body.notice)
    if entry.party not in counter_parties(session, notice):
        raise _refuse(f"{entry.party} is not a counter-party of notice {notice.seq}", "not_addressed")
    for finding in session.execute(select(Finding).where(Finding.notice_seq == notice.seq)).scalars():
        finding.responses = {**finding.responses, entry.party: {"response": body.response, "reason": body.reason,
                                                                "seq": entry.seq}}
    _response_deadlines(session, notice, entry.party, lambda d: deadlines.meet(session, id=d, seq=entry.seq))
    session.flush()


def _response_deadlines(session: Session, notice: Notice, party: str, act: Any) -> None:
    from fusioncell.deadlines.models import Deadline

    for deadline_id in session.execute(select(Deadline.id).where(
            Deadline.rule == "notice.response", Deadline.party == party,
            Deadline.id.startswith(f"notice:{notice.seq}:{party}:"))).scalars().all():
        act(deadline_id)


def _apply_amended(session: Session, entry: Appended, body: AmendBody) -> None:
    """A new version of the notice: checked again by the cell; what was owed on the old version is closed."""
    notice = _notice(session, body.notice)
    if entry.party != notice.party:
        raise _refuse("only the party that filed a notice amends it", "not_allowed")
    if notice.state != "active":
        raise _refuse(f"notice {notice.seq} is {notice.state}", "not_active")
    fields = body.model_dump(mode="json", exclude={"notice"})
    notice.body, notice.activity = fields, body.activity
    notice.start_at, notice.end_at = body.start, body.end
    notice.checked_seq = None
    for finding in session.execute(select(Finding).where(Finding.notice_seq == notice.seq)).scalars().all():
        session.delete(finding)
    for party in counter_parties(session, notice):
        _response_deadlines(session, notice, party, lambda d: deadlines.close(session, id=d))
    session.flush()


def _apply_accept(session: Session, entry: Appended, body: AcceptBody) -> None:
    finding = session.get(Finding, (body.notice, body.number))
    if finding is None:
        raise _refuse(f"notice {body.notice} has no finding {body.number}", "unknown_finding")
    finding.responses = {**finding.responses, f"accepted:{entry.party}": {"reason": body.reason, "seq": entry.seq}}
    session.flush()


def _apply_cancel(session: Session, entry: Appended, body: CancelBody) -> None:
    notice = _notice(session, body.notice)
    if entry.party != notice.party:
        raise _refuse("only the party that filed a notice cancels it", "not_allowed")
    if notice.state == "cancelled":
        raise _refuse(f"notice {notice.seq} is already cancelled", "duplicate")
    notice.state = "cancelled"
    for party in counter_parties(session, notice):
        _response_deadlines(session, notice, party, lambda d: deadlines.close(session, id=d))
    session.flush()


def _apply_outcome(session: Session, entry: Appended, body: OutcomeBody) -> None:
    notice = _notice(session, body.notice)
    notice.outcome = body.outcome
    session.flush()


register(Kind("notice.filed", NoticeBody, _apply_filed, check=_check_filed))
register(Kind("notice.amended", AmendBody, _apply_amended, check=_check_filed))
register(Kind("notice.findings", FindingsBody, _apply_findings, by_cell=True, by_party=False))
register(Kind("notice.response", ResponseBody, _apply_response))
register(Kind("notice.finding_accepted", AcceptBody, _apply_accept))
register(Kind("notice.cancelled", CancelBody, _apply_cancel))
register(Kind("notice.outcome", OutcomeBody, _apply_outcome))
