"""Incident pages: the list and map with filters, the form to report one, each incident's timeline with the
answers owed, and the statistics as charts."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from fusioncell.clock import parse_time
from fusioncell.deps import state
from fusioncell.errors import FusioncellError
from fusioncell.geo import geometry as geo_geometry
from fusioncell.hotline import service as hotline_service
from fusioncell.identity import service as identity_service
from fusioncell.incidents import service as incident_service
from fusioncell.incidents.kinds import CATEGORIES
from fusioncell.notices import service as notice_service
from fusioncell.web import charts, i18n
from fusioncell.web.routes import (
    check_form_csrf,
    language_for,
    page_viewer,
    render,
    respondents,
)

router = APIRouter(include_in_schema=False)
FILTERS = ("since", "until", "category", "party", "zone")


def labels() -> dict[str, str]:
    """Categories, answers and grades in the reader's language (the codes stay in the record)."""
    _ = i18n._
    return {
        "air_strike": _("Air strike"), "fire_across_line": _("Shelling or fire across the line"),
        "ground_incursion": _("Ground incursion"), "raid_or_arrest": _("Raid or arrest"),
        "overflight_or_drone": _("Overflight or drone"), "construction": _("Construction or fortification"),
        "presence_in_restricted_zone": _("Presence in a restricted zone"), "unsafe_encounter": _("Unsafe encounter"),
        "unexploded_ordnance": _("Unexploded ordnance"), "other": _("Other"),
        "acknowledge": _("Acknowledged"), "dispute_facts": _("Disputes the facts"), "explain": _("Explained"),
        "take_action": _("Will take action"), "confirmed": _("Confirmed"), "disputed": _("Disputed"),
        "unknown": _("Not named"),
    }


def _filters(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in FILTERS}


def _checked_filters(filters: dict[str, str]) -> dict[str, str]:
    """The filters with bad dates dropped, and a message for each one dropped."""
    errors = {}
    for key in ("since", "until"):
        if filters[key]:
            try:
                parse_time(filters[key] if "T" in filters[key] else filters[key] + "T00:00:00Z")
            except (ValueError, FusioncellError):
                errors[key] = i18n._("Give a date as YYYY-MM-DD.")
    return errors


def _query(filters: dict[str, str]) -> dict[str, str | None]:
    def day(value: str) -> str | None:
        return (value if "T" in value else value + "T00:00:00Z") if value else None

    return {"category": filters["category"] or None, "party": filters["party"] or None,
            "since": day(filters["since"]), "until": day(filters["until"]), "zone": filters["zone"] or None}


def _list_page(request: Request, viewer: Any, form: dict[str, Any], errors: dict[str, str], status: int = 200):
    fc = state(request)
    i18n.activate(language_for(request, viewer))
    filters = _filters(request)
    filter_errors = _checked_filters(filters)
    query = _query({k: ("" if k in filter_errors else v) for k, v in filters.items()})

    def load(session: Any) -> dict[str, Any]:
        return {"rows": incident_service.incidents(session, viewer=viewer, **query),
                "parties": [p.id for p in identity_service.list_parties(session)],
                "zones": sorted({z.id for z in notice_service.zones(session)})}

    data = fc.read(load)
    layer_query = urlencode({k: v for k, v in filters.items() if v and k not in filter_errors})
    return render(request, "incidents.html", viewer, status=status, **data, filters=filters,
                  filter_errors=filter_errors, categories=CATEGORIES, labels=labels(), form=form, errors=errors,
                  layers_url="/incidents/layers.json" + (f"?{layer_query}" if layer_query else ""),
                  tiles=bool(fc.settings.mbtiles), max_mib=fc.settings.max_attachment_bytes >> 20)


@router.get("/incidents")
def incidents_page(request: Request) -> HTMLResponse:
    viewer = page_viewer(request)
    return _list_page(request, viewer, {"category": "fire_across_line"}, {})


@router.get("/incidents/layers.json")
def incident_layers(request: Request) -> Response:
    viewer = page_viewer(request)
    i18n.activate(language_for(request, viewer))
    filters = _filters(request)
    query = _query({k: ("" if k in _checked_filters(filters) else v) for k, v in filters.items()})
    names = labels()
    rows = state(request).read(lambda s: incident_service.incidents(s, viewer=viewer, **query))
    features = []
    for incident in rows:
        geometry = {k: v for k, v in incident.body["geometry"].items() if k != "radius_m"}
        notified = bool(incident.links and incident.links.get("notices"))
        features.append({"type": "Feature", "geometry": geometry, "properties": {
            "id": incident.seq, "href": f"/incidents/{incident.seq}",
            "name": f"{incident.seq} · {names.get(incident.category, incident.category)} · {incident.start_at[:16]}Z",
            "radius_m": incident.body["geometry"].get("radius_m"), "flagged": not notified,
            "findings": incident_service.zones_of(incident)}})
    layer = {"id": "incidents", "title": i18n._("Incidents"), "color": "#6a1b9a", "illustrative": False,
             "data": {"type": "FeatureCollection", "features": features}}
    return Response(json.dumps({"layers": [layer]}, ensure_ascii=False), media_type="application/geo+json")


@router.post("/incidents")
async def report_incident(request: Request) -> Response:
    """The report form: position by MGRS or 'lat, lon' (with a radius), or GeoJSON; released to every party
    unless the member ticks only some."""
    from fusioncell.geo import grid

    viewer = page_viewer(request)
    form_data = await request.form()
    data = {k: str(v) for k, v in form_data.items()}
    check_form_csrf(viewer, data.get("csrf_token", ""))
    language = language_for(request, viewer)
    i18n.activate(language)
    _ = i18n._
    errors: dict[str, str] = {}
    form: dict[str, Any] = {k: data.get(k, "").strip() for k in (
        "category", "start", "end", "position", "radius_m", "geojson", "description", "damage", "responsible",
        "killed", "injured")}
    text_lang = data.get("text_lang") if data.get("text_lang") in i18n.LANGUAGES else language
    form["text_lang"] = text_lang
    audience = [str(v) for v in form_data.getlist("audience")]
    form["audience"] = audience
    body: dict[str, Any] = {"category": form["category"], "start": form["start"], "damage": form["damage"],
                            "responsible": form["responsible"] or None,
                            "description": {"lang": text_lang, "text": form["description"]}}
    if form["end"]:
        body["end"] = form["end"]
    casualties = {}
    for key in ("killed", "injured"):
        if form[key]:
            if not form[key].isdigit():
                errors[key] = _("A count is a whole number.")
            else:
                casualties[key] = int(form[key])
    body["casualties"] = casualties
    if form["geojson"]:
        try:
            body["geometry"] = geo_geometry.geometry_of(json.loads(form["geojson"]))
        except ValueError:
            errors["geojson"] = _("This is not valid GeoJSON.")
    elif form["position"]:
        try:
            lat, lon = grid.parse_position(form["position"])
            body["geometry"] = {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
            if form["radius_m"]:
                body["geometry"]["radius_m"] = float(form["radius_m"])
        except ValueError:
            errors["radius_m"] = _("A radius is a number of metres.")
        except FusioncellError as exc:
            errors["position"] = exc.message
    else:
        errors["position"] = _("Give the position, or paste GeoJSON.")
    for key in ("start", "description"):
        if not form[key]:
            errors[key] = _("This field is required.")
    fc = state(request)
    uploads = []
    for item in form_data.getlist("evidence"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read(fc.settings.max_attachment_bytes + 1)
            uploads.append((item.filename, item.content_type or "application/octet-stream", data))
    if not errors:
        def report(session: Any) -> Any:
            # Evidence is stored in the same transaction as the report: a refused report leaves no file behind.
            body["evidence"] = [{"sha256": f.sha256, "name": name[:200], "media_type": f.media_type, "size": f.size}
                                for name, media_type, data in uploads
                                for f in [hotline_service.store_file(
                                    session, viewer=viewer, data=data, media_type=media_type,
                                    clock_now=hotline_service.now_text(fc.cell.log),
                                    limit=fc.settings.max_attachment_bytes, allowed=fc.settings.attachment_types)]]
            return incident_service.report_incident(session, log=fc.cell.log, kek=fc.cell.kek, viewer=viewer,
                                                    body=body, audience=audience or None)

        try:
            filed = await fc.awrite(report)
            return RedirectResponse(f"/incidents/{filed.seq}", status_code=303)
        except FusioncellError as exc:
            where = {"invalid_geometry": "geojson", "outside_area": "position", "unknown_party": "responsible",
                     "too_large": "evidence" if uploads else "geojson", "refused_type": "evidence",
                     "in_future": "start"}.get(exc.code, "form")
            errors[where] = exc.message
    return _list_page(request, viewer, form, errors, status=400)


@router.get("/incidents/stats")
def statistics_page(request: Request) -> HTMLResponse:
    viewer = page_viewer(request)
    fc = state(request)
    i18n.activate(language_for(request, viewer))
    stats = fc.read(lambda s: incident_service.statistics(s, viewer=viewer, now=fc.cell.log.clock.now()))
    names = labels()
    _ = i18n._
    drawn = [
        ("week", _("Incidents by week (week starting, UTC)"), charts.bars(stats["week"], vertical=True)),
        ("category", _("By category"), charts.bars([(names.get(k, k), n) for k, n in stats["category"]])),
        ("zone", _("By zone (where the cell placed them)"), charts.bars(stats["zone"])),
        ("party", _("By party held responsible"), charts.bars([(names.get(k, k), n) for k, n in stats["party"]])),
    ]
    return render(request, "incident_stats.html", viewer, charts=drawn, stats=stats, labels=names)


@router.get("/incidents/{seq}")
def incident_page(request: Request, seq: int) -> HTMLResponse:
    viewer = page_viewer(request)
    return _incident_page(request, viewer, seq, {}, {})


def _incident_page(request: Request, viewer: Any, seq: int, form: dict[str, Any], errors: dict[str, str],
                   status: int = 200) -> HTMLResponse:
    fc = state(request)
    i18n.activate(language_for(request, viewer))

    def load(session: Any) -> dict[str, Any]:
        incident, events = incident_service.timeline(session, viewer=viewer, seq=seq)
        return {"incident": incident, "events": events}

    data = fc.read(load)
    incident = data["incident"]
    answered = any(e["kind"] == "incident.response" for e in data["events"])
    return render(request, "incident.html", viewer, status=status, **data, others=respondents(fc, viewer),
                  labels=labels(), form=form,
                  errors=errors, seq=seq,
                  may_respond="liaison" in viewer.roles and viewer.party == incident.responsible and not answered,
                  may_assess=bool({"liaison", "supervisor"} & set(viewer.roles))
                  and viewer.party not in (incident.responsible, incident.party))


@router.post("/incidents/{seq}/answers")
async def answer_incident(request: Request, seq: int) -> Response:
    viewer = page_viewer(request)
    data = {k: str(v) for k, v in (await request.form()).items()}
    check_form_csrf(viewer, data.get("csrf_token", ""))
    language = language_for(request, viewer)
    i18n.activate(language)
    _ = i18n._
    errors: dict[str, str] = {}
    text = {"lang": language, "text": data.get("text", "").strip()}
    if not text["text"]:
        errors["text"] = _("This field is required.")
    if data.get("kind") == "incident.response":
        kind, body = "incident.response", {"response": data.get("response", ""), "text": text}
    else:
        credibility = data.get("credibility", "")
        kind, body = "incident.assessment", {"assessment": data.get("assessment", ""), "text": text,
                                             "reliability": data.get("reliability", ""),
                                             "credibility": int(credibility) if credibility.isdigit() else 0}
    if not errors:
        fc = state(request)
        try:
            await fc.awrite(lambda s: incident_service.answer(s, log=fc.cell.log, kek=fc.cell.kek, viewer=viewer,
                                                              seq=seq, kind=kind, body=body))
            return RedirectResponse(f"/incidents/{seq}", status_code=303)
        except FusioncellError as exc:
            errors["answer"] = exc.message
    return _incident_page(request, viewer, seq, data, errors, status=400)
