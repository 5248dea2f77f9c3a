"""Map layers of the geo package: the shared gazetteer."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fusioncell.geo import service as geo_service
from fusioncell.identity.service import Viewer
from fusioncell.notices import service as notice_service
from fusioncell.web import i18n, layers


@layers.provider
def _places(session: Session, viewer: Viewer) -> list[layers.Layer]:
    language = i18n.current_language()
    features = [{
        "type": "Feature", "geometry": place.geometry,
        "properties": {"id": place.id, "name": geo_service.place_name(place, language), "kind": place.kind,
                       "names": place.names},
    } for place in geo_service.search_places(session, query="", limit=5000)]
    return [layers.Layer("places", i18n._("Places (gazetteer)"), "#1b5e20", features)] if features else []


@layers.provider
def _zones(session: Session, viewer: Viewer) -> list[layers.Layer]:
    language = i18n.current_language()
    agreed, proposed = [], []
    for zone in notice_service.zones(session):
        body = zone.body
        feature = {"type": "Feature", "geometry": body["geometry"], "properties": {
            "id": zone.id, "name": body["names"].get(language) or body["names"].get("en") or zone.id,
            "illustrative": bool(body.get("illustrative")), "rules": body["rules"],
            "signed_by": sorted(zone.signatures)}}
        (agreed if zone.effective_seq is not None else proposed).append(feature)
    found = []
    if agreed:
        found.append(layers.Layer("zones", i18n._("Agreed zones"), "#0b4f8a", agreed,
                                  any(f["properties"]["illustrative"] for f in agreed)))
    if proposed:
        found.append(layers.Layer("proposals", i18n._("Proposed zones (not in effect)"), "#8a5a00", proposed,
                                  any(f["properties"]["illustrative"] for f in proposed)))
    return found


@layers.provider
def _notices(session: Session, viewer: Viewer) -> list[layers.Layer]:
    features = []
    for notice, findings in notice_service.notices_with_findings(session, viewer=viewer):
        geometry = {k: v for k, v in notice.body["geometry"].items() if k != "radius_m"}
        features.append({"type": "Feature", "geometry": geometry, "properties": {
            "id": notice.seq, "name": f"{notice.party} {notice.activity} {notice.start_at[:16]}–{notice.end_at[11:16]}Z",
            "radius_m": notice.body["geometry"].get("radius_m"), "start": notice.start_at, "end": notice.end_at,
            "flagged": bool(findings), "findings": [f.detail.get("detail") for f in findings]}})
    return [layers.Layer("notices", i18n._("Activity notices"), "#b00020", features)] if features else []


@layers.provider
def _incidents(session: Session, viewer: Viewer) -> list[layers.Layer]:
    from fusioncell.incidents import service as incident_service

    features = []
    for incident in incident_service.incidents(session, viewer=viewer):
        geometry = {k: v for k, v in incident.body["geometry"].items() if k != "radius_m"}
        notified = bool(incident.links and incident.links.get("notices"))
        features.append({"type": "Feature", "geometry": geometry, "properties": {
            "id": incident.seq, "name": f"{incident.category} {incident.start_at[:16]}Z",
            "radius_m": incident.body["geometry"].get("radius_m"), "flagged": not notified,
            "findings": [z["zone"] for z in (incident.links or {}).get("zones", [])]}})
    return [layers.Layer("incidents", i18n._("Incidents"), "#6a1b9a", features)] if features else []
