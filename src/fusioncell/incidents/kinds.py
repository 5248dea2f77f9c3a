"""Incident kinds: the report (with evidence by hash), the cell's linking to zones and notices ("was this
notified?"), the response of the party held responsible within a deadline, and other parties' assessments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy.orm import Session

from fusioncell.clock import format_time, parse_time
from fusioncell.deadlines import engine as deadlines
from fusioncell.errors import FusioncellError, InvalidSubmission
from fusioncell.hotline.kinds import Attachment, FreeText
from fusioncell.identity.models import Party
from fusioncell.identity.service import cell_setting
from fusioncell.incidents.models import Answer, Incident
from fusioncell.record.kinds import BodyModel, Kind, register
from fusioncell.record.sequencer import Appended

CATEGORIES = ("air_strike", "fire_across_line", "ground_incursion", "raid_or_arrest", "overflight_or_drone",
              "construction", "presence_in_restricted_zone", "unsafe_encounter", "unexploded_ordnance", "other")
Category = Literal["air_strike", "fire_across_line", "ground_incursion", "raid_or_arrest", "overflight_or_drone",
                   "construction", "presence_in_restricted_zone", "unsafe_encounter", "unexploded_ordnance", "other"]


class Casualties(BodyModel):
    killed: int = Field(default=0, ge=0)
    injured: int = Field(default=0, ge=0)


class ReportBody(BodyModel):
    category: Category
    start: str
    end: str | None = None
    geometry: dict[str, Any]
    description: FreeText
    casualties: Casualties = Field(default_factory=Casualties)
    damage: str = Field(default="", max_length=2000)
    responsible: str | None = Field(default=None, max_length=32)
    evidence: list[Attachment] = Field(default_factory=list, max_length=20)

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return None if value is None else format_time(parse_time(value))

    @model_validator(mode="after")
    def _window(self) -> ReportBody:
        if self.end is not None and parse_time(self.end) < parse_time(self.start):
            raise ValueError("the incident ends before it starts")
        return self


class LinkedBody(BodyModel):
    incident: int = Field(ge=0)
    zones: list[dict[str, Any]]
    notices: list[dict[str, Any]]


class ResponseBody(BodyModel):
    incident: int = Field(ge=0)
    response: Literal["acknowledge", "dispute_facts", "explain", "take_action"]
    text: FreeText
    evidence: list[Attachment] = Field(default_factory=list, max_length=20)


class AssessmentBody(BodyModel):
    incident: int = Field(ge=0)
    assessment: Literal["confirmed", "disputed"]
    reliability: Literal["A", "B", "C", "D", "E", "F"]  # of the source (Admiralty code)
    credibility: Literal[1, 2, 3, 4, 5, 6]  # of the information
    text: FreeText


def _refuse(message: str, code: str) -> InvalidSubmission:
    return InvalidSubmission(message, code=code)


def _incident(session: Session, seq: int) -> Incident:
    incident = session.get(Incident, seq)
    if incident is None:
        raise _refuse(f"no incident {seq}", "unknown_incident")
    return incident


def _check_report(session: Session, submission: dict[str, Any], body: ReportBody) -> None:
    from fusioncell.notices.geometry import checked

    try:
        checked(dict(body.geometry), repair=False)
    except FusioncellError as exc:
        raise _refuse(exc.message, exc.code) from exc
    if parse_time(body.start) > parse_time(submission["created"]) + timedelta(minutes=5):
        raise _refuse("the incident starts in the future: give the time it happened (UTC)", "in_future")
    if body.responsible is not None and session.get(Party, body.responsible) is None:
        raise _refuse(f"no party {body.responsible!r} in this cell", "unknown_party")
    area = cell_setting(session, "area", None)
    if area:  # the cell's area of responsibility, as [min lon, min lat, max lon, max lat]
        from shapely.geometry import box, shape

        if not box(*area).intersects(shape({k: v for k, v in body.geometry.items() if k != "radius_m"})):
            raise _refuse("the location is outside the cell's area", "outside_area")
    from fusioncell.hotline import service as hotline_service

    for item in body.evidence:
        hotline_service.check_attachment(session, item)


def _carry(session: Session, entry: Appended, evidence: list[Attachment]) -> None:
    """The entry's audience may download its evidence (the access rule of hotline attachments)."""
    from fusioncell.hotline.models import AttachmentRef

    for sha256 in sorted({item.sha256 for item in evidence}):
        session.add(AttachmentRef(message_seq=entry.seq, sha256=sha256))


def _apply_report(session: Session, entry: Appended, body: ReportBody) -> None:
    _carry(session, entry, body.evidence)
    session.add(Incident(seq=entry.seq, party=entry.party, author=entry.submission["author"],
                         audience=" ".join(entry.submission["audience"]), category=body.category,
                         start_at=body.start, end_at=body.end or body.start, responsible=body.responsible,
                         body=body.model_dump(mode="json")))
    if body.responsible and body.responsible != entry.party and body.responsible in entry.submission["audience"]:
        hours = float(cell_setting(session, "incident_response_hours", 24))
        deadlines.open_deadline(session, id=f"incident:{entry.seq}:{body.responsible}", rule="incident.response",
                                entry=entry, party=body.responsible, due=timedelta(hours=hours))
    session.flush()


def _apply_linked(session: Session, entry: Appended, body: LinkedBody) -> None:
    incident = _incident(session, body.incident)
    if incident.linked_seq is not None:
        raise _refuse(f"incident {incident.seq} is already linked", "duplicate")
    incident.links = {"zones": body.zones, "notices": body.notices}
    incident.linked_seq = entry.seq
    session.flush()


def _apply_response(session: Session, entry: Appended, body: ResponseBody) -> None:
    incident = _incident(session, body.incident)
    if entry.party != incident.responsible:
        raise _refuse(f"only {incident.responsible or 'the party held responsible'} responds to incident "
                      f"{incident.seq}; others send an assessment", "not_responsible")
    _carry(session, entry, body.evidence)
    session.add(Answer(seq=entry.seq, incident_seq=incident.seq, party=entry.party, kind="response",
                       body=body.model_dump(mode="json")))
    deadlines.meet(session, id=f"incident:{incident.seq}:{entry.party}", seq=entry.seq)
    session.flush()


def _apply_assessment(session: Session, entry: Appended, body: AssessmentBody) -> None:
    incident = _incident(session, body.incident)
    session.add(Answer(seq=entry.seq, incident_seq=incident.seq, party=entry.party, kind="assessment",
                       body=body.model_dump(mode="json")))
    session.flush()


def _check_response(session: Session, submission: dict[str, Any], body: ResponseBody) -> None:
    from fusioncell.hotline import service as hotline_service

    for item in body.evidence:
        hotline_service.check_attachment(session, item)


register(Kind("incident.reported", ReportBody, _apply_report, check=_check_report))
register(Kind("incident.linked", LinkedBody, _apply_linked, by_cell=True, by_party=False))
register(Kind("incident.response", ResponseBody, _apply_response, check=_check_response))
register(Kind("incident.assessment", AssessmentBody, _apply_assessment))
