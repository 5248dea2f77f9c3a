"""Notices over HTTP: filed by MGRS or GeoJSON, checked by the cell at once whoever filed them, answered;
bad input refused with the reason; the gazetteer found by MGRS or coordinates."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from fusioncell.clock import format_time
from fusioncell.geo.grid import to_mgrs
from tests.factories.hotline import places
from tests.factories.identity import token_for


def client(api, member, scopes=("read", "write")):
    c = TestClient(api.app)
    c.headers["Authorization"] = f"Bearer {token_for(api.cell, member, list(scopes))}"
    return c


def window(api, hours=72):
    start = api.cell.log.clock.now() + timedelta(hours=hours)
    return {"start": format_time(start), "end": format_time(start + timedelta(hours=3))}


def checked(c, seq):
    for _ in range(100):
        notice = c.get(f"/api/v1/notices/{seq}").json()
        if notice["checked"]:
            return notice
        time.sleep(0.05)
    raise AssertionError(f"notice {seq} was never checked")


def test_notices_by_mgrs_are_checked_at_once_and_answered(api):
    il, sy = client(api, "il/liaison-1"), client(api, "sy/liaison-1")
    first = il.post("/api/v1/notices", json={"activity": "patrol", "mgrs": to_mgrs(33.17, 35.86), "radius_m": 500,
                                             "contact": "IL desk", **window(api)})
    assert first.status_code == 201, first.text
    second = sy.post("/api/v1/notices", json={"activity": "ground_movement", "mgrs": "33.171, 35.865",
                                              "radius_m": 50, "contact": "SY desk", **window(api)})
    notice = checked(sy, second.json()["seq"])
    assert [f["type"] for f in notice["findings"]] == ["conflict"]
    assert notice["findings"][0]["other"] == first.json()["seq"]
    answer = il.post(f"/api/v1/notices/{notice['seq']}/answers", json={
        "kind": "notice.response", "body": {"response": "acknowledge", "reason": "we will hold the patrol"}})
    assert answer.status_code == 201, answer.text
    assert il.get(f"/api/v1/notices/{notice['seq']}").json()["findings"][0]["responses"]["IL"]["response"] == \
        "acknowledge"


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"mgrs": "somewhere north"}, 400, "bad_position"),
    ({"mgrs": "95, 35"}, 400, "bad_position"),
    ({"mgrs": None, "geometry": None}, 400, "no_geometry"),
    ({"activity": "picnic"}, 422, "invalid_request"),
    ({"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T09:00:00Z"}, 422, "bad_body"),
])
def test_bad_notices_are_refused_with_the_reason(api, change, status, code):
    il = client(api, "il/liaison-1")
    before = il.get("/api/v1/tree").json()["tree_head"]["size"]
    payload = {"activity": "patrol", "mgrs": "33.17, 35.86", "radius_m": 100, "contact": "IL desk",
               **window(api), **change}
    response = il.post("/api/v1/notices", json={k: v for k, v in payload.items() if v is not None})
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert il.get("/api/v1/tree").json()["tree_head"]["size"] == before


def test_gazetteer_search_by_mgrs_and_coordinates(api):
    places(api.cell)
    il = client(api, "il/liaison-1", ("read",))
    assert il.get("/api/v1/places", params={"q": to_mgrs(33.127, 35.825)}).json()[0]["id"] == "quneitra"
    assert il.get("/api/v1/places", params={"q": "33.41, 35.85"}).json()[0]["id"] == "mount-hermon"


KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Folder><Placemark><name>convoy route</name>
<LineString><coordinates>35.824,33.126,0 35.879,33.18,0</coordinates></LineString></Placemark></Folder></Document></kml>"""


def test_a_notice_route_imported_from_kml(api):
    sy = client(api, "sy/liaison-1")
    response = sy.post("/api/v1/notices", json={"activity": "humanitarian_convoy", "kml": KML, "contact": "SY desk",
                                                **window(api)})
    assert response.status_code == 201, response.text
    notice = sy.get(f"/api/v1/notices/{response.json()['seq']}").json()
    assert notice["geometry"] == {"type": "LineString", "coordinates": [[35.824, 33.126], [35.879, 33.18]]}
    bad = sy.post("/api/v1/notices", json={"activity": "patrol", "kml": "<kml>nothing", "contact": "x",
                                           **window(api)})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_kml"
