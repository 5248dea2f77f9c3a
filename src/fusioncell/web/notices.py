"""Notice pages: the active notices with the cell's findings, and the form to file one (position by MGRS or
'lat, lon' with a radius, or pasted GeoJSON)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from fusioncell.clock import parse_time
from fusioncell.deadlines import engine as deadlines
from fusioncell.deps import state
from fusioncell.errors import FusioncellError
from fusioncell.geo import geometry as geo_geometry
from fusioncell.geo.rules import ACTIVITIES, CATEGORIES
from fusioncell.identity.service import Viewer
from fusioncell.notices import service as notice_service
from fusioncell.web import attention, i18n
from fusioncell.web.routes import check_form_csrf, language_for, page_viewer, render

router = APIRouter(include_in_schema=False)


def labels() -> dict[str, str]:
    """Activity types and equipment categories in the reader's language (the codes stay in the record)."""
    _ = i18n._
    return {
        "ground_movement": _("Ground movement"), "patrol": _("Patrol"), "exercise": _("Exercise"),
        "flight": _("Flight"), "engineering": _("Engineering work"), "humanitarian_convoy": _("Humanitarian convoy"),
        "demining": _("Demining"), "other": _("Other"), "troops": _("Troops"), "tanks": _("Tanks"),
        "artillery": _("Artillery"), "air_defence": _("Air-defence systems"), "aircraft": _("Aircraft"),
        "drones": _("Drones"),
    }


def _page(request: Request, viewer: Any, form: dict[str, Any], errors: dict[str, str], status: int = 200):
    rows = state(request).read(lambda s: notice_service.notices_with_findings(s, viewer=viewer))
    i18n.activate(language_for(request, viewer))
    return render(request, "notices.html", viewer, status=status, rows=rows, form=form, errors=errors,
                  activities=ACTIVITIES, categories=CATEGORIES, labels=labels(),
                  tiles=bool(state(request).settings.mbtiles))


@router.get("/notices")
def notices(request: Request) -> HTMLResponse:
    viewer = page_viewer(request)
    return _page(request, viewer, {"activity": "patrol"}, {})


@router.post("/notices")
async def file_notice(request: Request) -> Response:
    viewer = page_viewer(request)
    data = {k: str(v) for k, v in (await request.form()).items()}
    check_form_csrf(viewer, data.get("csrf_token", ""))
    i18n.activate(language_for(request, viewer))
    _ = i18n._
    errors: dict[str, str] = {}
    form: dict[str, Any] = {"activity": data.get("activity"), "contact": data.get("contact", "").strip(),
                            "start": data.get("start", "").strip(), "end": data.get("end", "").strip(),
                            "mgrs": data.get("mgrs", "").strip() or None, "composition": {}}
    if data.get("radius_m", "").strip():
        try:
            form["radius_m"] = float(data["radius_m"])
        except ValueError:
            errors["radius_m"] = _("A radius is a number of metres.")
    if data.get("geojson", "").strip():
        try:
            form["geometry"] = geo_geometry.geometry_of(json.loads(data["geojson"]))
        except ValueError:
            errors["geojson"] = _("This is not valid GeoJSON.")
    for category in CATEGORIES:
        value = data.get(f"count_{category}", "").strip()
        if value:
            if not value.isdigit():
                errors[f"count_{category}"] = _("A count is a whole number.")
            else:
                form["composition"][category] = int(value)
    for field in ("contact", "start", "end"):
        if not form[field]:
            errors[field] = _("This field is required.")
    if not errors:
        fc = state(request)
        try:
            body = notice_service.notice_body(form)
            await fc.awrite(lambda s: notice_service.file_notice(s, log=fc.cell.log, kek=fc.cell.kek, viewer=viewer,
                                                                  body=body, repair=bool(data.get("repair"))))
            return RedirectResponse("/notices", status_code=303)
        except FusioncellError as exc:
            where = {"bad_position": "mgrs", "no_geometry": "mgrs", "invalid_geometry": "geojson",
                     "too_large": "geojson", "bad_window": "end"}.get(exc.code, "form")
            errors[where] = exc.message
    shown = {**form, **{k: v for k, v in data.items() if k != "csrf_token"}}
    return _page(request, viewer, shown, errors, status=400)


@attention.provider
def _answers_owed(session: Session, viewer: Viewer, now: datetime) -> list[attention.Attention]:
    """Findings on another party's notice, or an incident report naming this party, await its answer."""
    _ = i18n._
    rows = deadlines.owed(session, party=viewer.party, rules=("notice.response", "incident.response"))
    items = []
    for row in rows:
        subject = deadlines.subject_seq(row.id)
        if row.rule == "notice.response":
            items.append(attention.Attention(_("The cell found conflicts with notice %(seq)s: acknowledge or object",
                                               seq=subject), "", "/notices", parse_time(row.due_at), 2))
        else:
            items.append(attention.Attention(_("Incident %(seq)s names your party: respond", seq=subject), "",
                                             f"/incidents/{subject}", parse_time(row.due_at), 2))
    return items
