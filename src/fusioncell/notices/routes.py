"""HTTP API of zones and activity notices. Thin: parse, call one service function, return."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from fusioncell.deps import AppState, state, viewer
from fusioncell.identity.service import Viewer
from fusioncell.notices import service as notice_service
from fusioncell.schemas import Schema

router = APIRouter(prefix="/api/v1", tags=["de-escalation"])
Fc = Annotated[AppState, Depends(state)]
Who = Annotated[Viewer, Depends(viewer)]


class NoticeCreate(Schema):
    activity: Literal["ground_movement", "patrol", "exercise", "flight", "engineering", "humanitarian_convoy",
                      "demining", "other"]
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON (RFC 7946); a Point may carry radius_m")
    mgrs: str | None = Field(default=None, max_length=40, description="Or a position: MGRS or 'lat, lon'")
    kml: str | None = Field(default=None, max_length=1 << 20, description="Or a KML document (first placemark)")
    radius_m: float | None = Field(default=None, gt=0, le=100000)
    altitude: dict[str, float] | None = None
    start: str
    end: str
    composition: dict[str, int] = Field(default_factory=dict)
    calibre_mm: int | None = None
    contact: str = Field(min_length=1, max_length=200)
    repair: bool = Field(default=False, description="Accept a repaired geometry if the one given is invalid")


class Answer(Schema):
    kind: Literal["notice.response", "notice.finding_accepted", "notice.cancelled", "notice.outcome",
                  "notice.amended"]
    body: dict[str, Any]


def _accepted(entry: Any) -> dict[str, Any]:
    return {"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex(), "time": entry.time}


@router.get("/zones")
def list_zones(fc: Fc, who: Who) -> list[dict[str, Any]]:
    return [{"id": z.id, **z.body, "in_effect": z.effective_seq is not None, "signed_by": sorted(z.signatures),
             "text": z.text_hash} for z in fc.read(notice_service.zones)]


@router.get("/notices")
def list_notices(fc: Fc, who: Who) -> list[dict[str, Any]]:
    return [notice_service.notice_read(n, findings) for n, findings in
            fc.read(lambda s: notice_service.notices_with_findings(s, viewer=who))]


@router.get("/notices/{seq}")
def get_notice(fc: Fc, who: Who, seq: int) -> dict[str, Any]:
    return notice_service.notice_read(*fc.read(lambda s: notice_service.access_notice(s, viewer=who, seq=seq)))


@router.post("/notices", status_code=201)
def post_notice(fc: Fc, who: Who, form: NoticeCreate) -> dict[str, Any]:
    body = notice_service.notice_body(form.model_dump())
    entry = fc.write(lambda s: notice_service.file_notice(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who, body=body,
                                                           repair=form.repair))
    return _accepted(entry)


@router.post("/notices/{seq}/answers", status_code=201)
def post_answer(fc: Fc, who: Who, seq: int, form: Answer) -> dict[str, Any]:
    """Respond (acknowledge or object), accept a finding, amend (the full new version), cancel, or record the
    outcome."""
    entry = fc.write(lambda s: notice_service.answer(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who, seq=seq,
                                                      kind=form.kind, body=form.body))
    return _accepted(entry)
