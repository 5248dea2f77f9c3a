"""HTTP API of incidents. Thin: parse, call one service function, return."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from fusioncell.deps import AppState, state, viewer
from fusioncell.identity.service import Viewer
from fusioncell.incidents import service as incident_service
from fusioncell.schemas import Schema

router = APIRouter(prefix="/api/v1", tags=["incidents"])
Fc = Annotated[AppState, Depends(state)]
Who = Annotated[Viewer, Depends(viewer)]


class IncidentCreate(Schema):
    report: dict[str, Any] = Field(description="The body of incident.reported")
    audience: list[str] | None = Field(default=None, description="Default: every party")


class IncidentAnswer(Schema):
    kind: Literal["incident.response", "incident.assessment"]
    body: dict[str, Any]


def _read(incident: Any, answers: list[Any]) -> dict[str, Any]:
    return {"seq": incident.seq, "party": incident.party, "author": incident.author, **incident.body,
            "linked": incident.linked_seq is not None, "links": incident.links,
            "answers": [{"seq": a.seq, "party": a.party, "kind": a.kind, **a.body} for a in answers]}


@router.get("/incidents")
def list_incidents(fc: Fc, who: Who, category: str | None = None, party: str | None = None,
                   since: str | None = None) -> list[dict[str, Any]]:
    return [_read(i, []) for i in fc.read(lambda s: incident_service.incidents(s, viewer=who, category=category,
                                                                                party=party, since=since))]


@router.get("/incidents/{seq}")
def get_incident(fc: Fc, who: Who, seq: int) -> dict[str, Any]:
    return _read(*fc.read(lambda s: incident_service.access_incident(s, viewer=who, seq=seq)))


@router.post("/incidents", status_code=201)
def post_incident(fc: Fc, who: Who, form: IncidentCreate) -> dict[str, Any]:
    entry = fc.write(lambda s: incident_service.report_incident(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who,
                                                                 body=form.report, audience=form.audience))
    return {"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex(), "time": entry.time}


@router.post("/incidents/{seq}/answers", status_code=201)
def post_answer(fc: Fc, who: Who, seq: int, form: IncidentAnswer) -> dict[str, Any]:
    entry = fc.write(lambda s: incident_service.answer(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who, seq=seq,
                                                        kind=form.kind, body=form.body))
    return {"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex(), "time": entry.time}
