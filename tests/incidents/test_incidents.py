"""Incident reports: linked by the cell to zones, rule breaches and nearby notices ("was this notified?");
the party held responsible answers within a deadline; others assess with a grade; bad input refused."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from fusioncell.clock import format_time, parse_time
from tests.factories.identity import token_for


def client(api, member, scopes=("read", "write")):
    c = TestClient(api.app)
    c.headers["Authorization"] = f"Bearer {token_for(api.cell, member, list(scopes))}"
    return c


def report(api, **change):
    when = api.cell.log.clock.now() - timedelta(hours=1)
    return {"category": "fire_across_line", "start": format_time(when),
            "geometry": {"type": "Point", "coordinates": [35.86, 33.17]},
            "description": {"lang": "ar", "text": "إطلاق نار قرب خان أرنبة"},
            "casualties": {"killed": 0, "injured": 2}, "responsible": "IL", **change}


def linked(c, seq):
    for _ in range(100):
        incident = c.get(f"/api/v1/incidents/{seq}").json()
        if incident["linked"]:
            return incident
        time.sleep(0.05)
    raise AssertionError("the cell never linked the incident")


def test_incident_is_linked_to_zones_and_nearby_notices_and_answered(api):
    from fusioncell.demo.scenario import play_zones_and_notices

    play_zones_and_notices(api.cell)  # illustrative zones, and an IL patrol near Khan Arnabah tomorrow 01:00
    sy, il, us = client(api, "sy/liaison-1"), client(api, "il/liaison-1"), client(api, "us/supervisor-1")
    with api.cell.db.read() as session:
        from sqlalchemy import select

        from fusioncell.notices.models import Notice

        patrol = session.execute(select(Notice).where(Notice.party == "IL")).scalars().first()
    api.cell.log.clock.advance(seconds=(parse_time(patrol.start_at) - api.cell.log.clock.now()).total_seconds() + 600)
    body = report(api, start=patrol.start_at, geometry={"type": "Point", "coordinates": [35.861, 33.171]})
    response = sy.post("/api/v1/incidents", json={"report": body})
    assert response.status_code == 201, response.text
    incident = linked(sy, response.json()["seq"])
    assert [z["zone"] for z in incident["links"]["zones"]] == ["aos-demo"]
    assert incident["links"]["zones"][0]["breaches"] == ["no military presence of IL is allowed here"]
    nearby = {n["notice"]: n for n in incident["links"]["notices"]}
    assert patrol.seq in nearby and nearby[patrol.seq]["party"] == "IL"  # it was notified
    assert all(n["distance_m"] <= 5000 for n in nearby.values()) and len(nearby) == 2  # and SY's convoy too
    answered = il.post(f"/api/v1/incidents/{incident['seq']}/answers", json={
        "kind": "incident.response", "body": {"response": "explain",
                                              "text": {"lang": "he", "text": "הסיור הודיע מראש"}}})
    assert answered.status_code == 201, answered.text
    graded = us.post(f"/api/v1/incidents/{incident['seq']}/answers", json={
        "kind": "incident.assessment", "body": {"assessment": "confirmed", "reliability": "B", "credibility": 2,
                                                "text": {"lang": "en", "text": "Observed by the UN post"}}})
    assert graded.status_code == 201, graded.text
    answers = sy.get(f"/api/v1/incidents/{incident['seq']}").json()["answers"]
    assert [(a["party"], a["kind"]) for a in answers] == [("IL", "response"), ("US", "assessment")]
    layers = {layer["id"] for layer in _layers(api)}
    assert "incidents" in layers


def _layers(api):
    from tests.web.test_pages import web_login

    c = TestClient(api.app)
    web_login(c, "us/supervisor-1")
    return c.get("/map/layers.json").json()["layers"]


def test_only_the_party_held_responsible_responds(api):
    sy = client(api, "sy/liaison-1")
    seq = sy.post("/api/v1/incidents", json={"report": report(api)}).json()["seq"]
    response = sy.post(f"/api/v1/incidents/{seq}/answers", json={
        "kind": "incident.response", "body": {"response": "acknowledge", "text": {"lang": "ar", "text": "x"}}})
    assert response.status_code == 422 and response.json()["code"] == "not_responsible"


@pytest.mark.parametrize(("change", "code"), [
    ({"category": "picnic"}, "bad_body"),
    ({"geometry": {"type": "Point", "coordinates": [35.86, 133.17]}}, "invalid_input"),
    ({"responsible": "XX"}, "unknown_party"),
    ({"end": "2000-01-01T00:00:00Z"}, "bad_body"),
    ({"evidence": [{"sha256": "ab" * 32, "name": "photo.png", "media_type": "image/png", "size": 10}]},
     "unknown_attachment"),
])
def test_bad_reports_are_refused_and_nothing_recorded(api, change, code):
    sy = client(api, "sy/liaison-1")
    before = sy.get("/api/v1/tree").json()["tree_head"]["size"]
    response = sy.post("/api/v1/incidents", json={"report": report(api, **change)})
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] == code
    assert sy.get("/api/v1/tree").json()["tree_head"]["size"] == before


def test_a_location_outside_the_cells_area_is_refused(cell, tmp_path):
    from fusioncell.app import create_app
    from fusioncell.cell import init_cell
    from fusioncell.config import CellConfig
    from tests.factories.identity import add_personas

    config = CellConfig.model_validate({
        "cell": {"id": "area-cell", "name": "Area"}, "settings": {"area": [35.5, 32.5, 36.5, 33.6]},
        "party": [{"id": "IL", "names": {"en": "Israel"}, "languages": ["he"]},
                  {"id": "SY", "names": {"en": "Syria"}, "languages": ["ar"]},
                  {"id": "US", "role": "supervisor", "names": {"en": "US"}, "languages": ["en"]}]})
    path = tmp_path / "cell.toml"
    path.write_text("")
    other = init_cell(tmp_path / "other", config=config, config_path=path, clock=cell.log.clock)
    add_personas(other)
    with TestClient(create_app(other)) as c:
        c.headers["Authorization"] = f"Bearer {token_for(other, 'sy/liaison-1', ['read', 'write'])}"
        when = format_time(other.log.clock.now() - timedelta(hours=1))
        response = c.post("/api/v1/incidents", json={"report": {
            "category": "other", "start": when, "geometry": {"type": "Point", "coordinates": [31.2, 30.0]},
            "description": {"lang": "en", "text": "far away"}}})
    other.close()
    assert response.status_code == 422 and response.json()["code"] == "outside_area"
