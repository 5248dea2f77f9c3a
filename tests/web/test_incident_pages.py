"""Incident and dispute pages as members use them, on the demo cell: the list and map with filters, the report
form, each incident's timeline with the answers owed, the statistics charts, the dispute page with its state,
deadline and next action, and the dispute bundle; other parties' restricted reports never show."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from fusioncell.demo.scenario import demo_password
from fusioncell.record.models import Entry
from tests.web.test_pages import csrf_of


@pytest.fixture
def demo(cell):
    from fusioncell.app import create_app
    from fusioncell.demo import scenario

    scenario.play(cell)
    scenario.play_hotline(cell)
    scenario.play_zones_and_notices(cell)
    scenario.play_incidents_and_disputes(cell)
    app = create_app(cell)
    with TestClient(app):
        yield app, cell


def login(demo, member):
    app, _cell = demo
    client = TestClient(app)
    client.cookies.set("fc_lang", "en")  # messages asserted in English; the catalogs are tested elsewhere
    page = client.get("/login")
    response = client.post("/login", data={"member": member, "password": demo_password(member),
                                           "csrf_token": csrf_of(page.text), "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    client.csrf = csrf_of(client.get("/").text)
    return client


def size(demo):
    with demo[1].db.read() as session:
        return session.execute(select(func.count()).select_from(Entry)).scalar_one()


def listed(html):
    table = html[html.index('id="incident-list"'):html.index("</table>", html.index('id="incident-list"'))]
    return [int(s) for s in re.findall(r'href="/incidents/(\d+)"', table)]


def incident_seqs(demo, **where):
    from fusioncell.incidents.models import Incident

    with demo[1].db.read() as session:
        query = select(Incident)
        for key, value in where.items():
            query = query.where(getattr(Incident, key) == value)
        return {i.seq: i for i in session.execute(query).scalars()}


def test_the_list_filters_by_category_party_zone_and_time(demo):
    us = login(demo, "us/supervisor-1")
    every = incident_seqs(demo)
    assert sorted(listed(us.get("/incidents").text)) == sorted(every)
    drones = incident_seqs(demo, category="overflight_or_drone")
    assert sorted(listed(us.get("/incidents?category=overflight_or_drone").text)) == sorted(drones)
    by_sy = incident_seqs(demo, responsible="SY")
    assert sorted(listed(us.get("/incidents?party=SY").text)) == sorted(by_sy)
    in_aos = [s for s, i in every.items() if "aos-demo" in [z["zone"] for z in (i.links or {}).get("zones", [])]]
    assert in_aos and sorted(listed(us.get("/incidents?zone=aos-demo").text)) == sorted(in_aos)
    now = demo[1].log.clock.now()
    since = (now.date()).isoformat()
    recent = [s for s, i in every.items() if i.end_at >= since]
    assert sorted(listed(us.get(f"/incidents?since={since}").text)) == sorted(recent) and len(recent) < len(every)
    page = us.get("/incidents?since=last-week")
    assert page.status_code == 200 and "Give a date as YYYY-MM-DD." in page.text
    assert sorted(listed(page.text)) == sorted(every)  # a bad filter is named, and ignored, not an empty list
    layers = us.get("/incidents/layers.json?category=overflight_or_drone").json()["layers"][0]
    assert sorted(f["properties"]["id"] for f in layers["data"]["features"]) == sorted(drones)


def test_a_report_released_to_some_parties_never_reaches_the_others(demo):
    restricted = incident_seqs(demo, audience="IL US")
    assert len(restricted) == 1
    (seq,) = restricted
    sy = login(demo, "sy/liaison-1")
    assert seq not in listed(sy.get("/incidents").text)
    missing = sy.get("/incidents/999999")
    hidden = sy.get(f"/incidents/{seq}")
    assert hidden.status_code == missing.status_code == 404  # the same answer as for an incident that is not there
    features = sy.get("/incidents/layers.json").json()["layers"][0]["data"]["features"]
    assert seq not in [f["properties"]["id"] for f in features]
    stats = sy.get("/incidents/stats").text
    assert "Presence in a restricted zone" not in stats  # not even counted
    assert seq in listed(login(demo, "us/supervisor-1").get("/incidents").text)


def test_an_officer_reports_an_incident_and_bad_input_is_named(demo):
    sy = login(demo, "sy/liaison-1")
    now = demo[1].log.clock.now()
    before = size(demo)
    form = {"csrf_token": sy.csrf, "category": "overflight_or_drone", "start": now.strftime("%Y-%m-%dT%H:%MZ"),
            "position": "33.20, 35.90", "radius_m": "300", "description": "طائرة مسيرة فوق القرية",
            "responsible": "IL", "injured": "1", "text_lang": "ar"}
    for change, message in [({"position": ""}, "Give the position, or paste GeoJSON."),
                            ({"position": "somewhere"}, "MGRS"),
                            ({"injured": "two"}, "A count is a whole number."),
                            ({"start": "2030-01-01T00:00Z"}, "the incident starts in the future"),
                            ({"description": ""}, "This field is required."),
                            ({"position": "", "geojson": '{"type": "Polygon", "coordinates": [[[35.8, 33.1], '
                              '[35.9, 33.2], [35.9, 33.1], [35.8, 33.2], [35.8, 33.1]]]}'}, "the geometry is invalid")]:
        page = sy.post("/incidents", data={**form, **change})
        assert page.status_code == 400 and message in page.text, (change, page.text[-3000:])
        assert {**form, **change}["description"] in page.text  # what was typed is kept
        assert size(demo) == before  # nothing recorded
    done = sy.post("/incidents", data=form, follow_redirects=False)
    assert done.status_code == 303
    seq = int(done.headers["location"].rsplit("/", 1)[1])
    incident = incident_seqs(demo)[seq]
    assert incident.body["geometry"] == {"type": "Point", "coordinates": [35.9, 33.2], "radius_m": 300.0}
    assert incident.body["description"] == {"lang": "ar", "text": "طائرة مسيرة فوق القرية"}
    assert incident.audience == "IL SY US" and incident.body["casualties"]["injured"] == 1


def test_the_incident_page_shows_the_timeline_and_the_answer_owed(demo):
    fire = next(i for i in incident_seqs(demo, category="fire_across_line", party="SY").values()
                if i.body["casualties"]["injured"] == 2)
    sy = login(demo, "sy/liaison-1")
    page = sy.get(f"/incidents/{fire.seq}").text
    timeline = page[page.index('class="timeline"'):]
    order = [timeline.index(k) for k in ("ev-incident-reported", "ev-incident-linked", "ev-incident-response",
                                          "ev-incident-assessment", "ev-dispute-raised")]
    assert order == sorted(order)
    assert "Notified nearby: IL" in page  # was this notified? yes: IL's patrol
    assert "Respond for your party" not in page  # SY reported it; IL owes the answer (and gave it)
    # A new report naming IL: IL sees the form, answers, and the timeline grows by that answer.
    now = demo[1].log.clock.now().strftime("%Y-%m-%dT%H:%MZ")
    seq = int(sy.post("/incidents", data={"csrf_token": sy.csrf, "category": "construction", "start": now,
                                          "position": "33.15, 35.88", "description": "تحصينات جديدة",
                                          "responsible": "IL"}, follow_redirects=False)
              .headers["location"].rsplit("/", 1)[1])
    il = login(demo, "il/liaison-1")
    assert "Respond for your party" in il.get(f"/incidents/{seq}").text
    refused = sy.post(f"/incidents/{seq}/answers", data={"csrf_token": sy.csrf, "kind": "incident.response",
                                                         "response": "explain", "text": "x"})
    assert refused.status_code == 400 and "only IL responds" in refused.text
    answered = il.post(f"/incidents/{seq}/answers", data={"csrf_token": il.csrf, "kind": "incident.response",
                                                          "response": "take_action", "text": "נבדוק"},
                       follow_redirects=False)
    assert answered.status_code == 303
    page = il.get(f"/incidents/{seq}").text
    assert "Will take action" in page and "נבדוק" in page and "Respond for your party" not in page
    graded = login(demo, "us/supervisor-1").post(f"/incidents/{seq}/answers", data={
        "csrf_token": login(demo, "us/supervisor-1").csrf, "kind": "incident.assessment"})
    assert graded.status_code in (400, 403)  # another session's CSRF token, and no text: refused either way


def test_statistics_are_charts_with_the_right_counts(demo):
    us = login(demo, "us/supervisor-1")
    page = us.get("/incidents/stats").text
    every = incident_seqs(demo)
    for key in ("week", "category", "zone", "party"):
        chart = page[page.index(f'id="chart-{key}"'):]
        chart = chart[:chart.index("</figure>")]
        assert "<svg" in chart and 'class="chart-bar"' in chart, key
        values = [int(v) for v in re.findall(r'class="chart-value"[^>]*>(\d+)<', chart)]
        if key == "week":
            assert len(values) == 12 and 0 < sum(values) <= len(every)
        elif key == "category":
            assert sum(values) == len(every)
            counts = {}
            for i in every.values():
                counts[i.category] = counts.get(i.category, 0) + 1
            assert sorted(values, reverse=True) == sorted(counts.values(), reverse=True)
        elif key == "party":
            assert sum(values) == len(every)


def test_the_dispute_page_shows_state_deadline_and_the_members_next_step(demo):
    from fusioncell.disputes.models import Dispute

    with demo[1].db.read() as session:
        mediated = session.execute(select(Dispute).where(Dispute.state == "in_mediation")).scalar_one()
    sy, us = login(demo, "sy/liaison-1"), login(demo, "us/supervisor-1")
    page = us.get(f"/disputes/{mediated.seq}").text
    assert "in mediation" in page and "Owed by US" in page and 'data-deadline="' in page
    assert 'name="action" value="rule"' in page  # the supervisor's next step
    page = sy.get(f"/disputes/{mediated.seq}").text
    assert 'value="rule"' not in page and 'value="withdraw"' in page and 'value="settle"' in page
    before = size(demo)
    refused = sy.post(f"/disputes/{mediated.seq}/steps", data={"csrf_token": sy.csrf, "action": "rule",
                                                               "text": "I rule"})
    assert refused.status_code == 400 and "the raiser cannot rule this dispute" in refused.text
    empty = us.post(f"/disputes/{mediated.seq}/steps", data={"csrf_token": us.csrf, "action": "rule", "text": ""})
    assert empty.status_code == 400 and "this field is required" in empty.text
    assert size(demo) == before
    ruled = us.post(f"/disputes/{mediated.seq}/steps", data={"csrf_token": us.csrf, "action": "rule",
                                                             "text": "The patrol fired; IL compensates."},
                    follow_redirects=False)
    assert ruled.status_code == 303
    page = login(demo, "il/liaison-1").get(f"/disputes/{mediated.seq}").text
    assert "ruled" in page and 'value="comply"' in page and "Owed by IL" in page
    home = login(demo, "il/liaison-1").get("/").text
    assert f'href="/disputes/{mediated.seq}"' in home
    bundle = sy.get(f"/disputes/{mediated.seq}/bundle")
    assert bundle.status_code == 200
    assert json.loads(bundle.text.splitlines()[0])["subject"]["seqs"][0] == mediated.seq
    listing = sy.get("/disputes").text
    assert f'href="/disputes/{mediated.seq}"' in listing and "ruled" in listing


def test_a_dispute_is_raised_from_the_incident_page(demo):
    fire = next(iter(incident_seqs(demo, category="overflight_or_drone", party="SY")))
    il = login(demo, "il/liaison-1")
    before = size(demo)
    incomplete = il.post("/disputes", data={"csrf_token": il.csrf, "about": str(fire), "respondent": "SY",
                                            "claim": "", "remedy": ""})
    assert incomplete.status_code == 400 and "your claim" in incomplete.text and size(demo) == before
    raised = il.post("/disputes", data={"csrf_token": il.csrf, "about": str(fire), "respondent": "SY",
                                        "claim": "לא הייתה טיסה", "remedy": "חזרה בדיווח"}, follow_redirects=False)
    assert raised.status_code == 303
    seq = int(raised.headers["location"].rsplit("/", 1)[1])
    page = il.get(f"/disputes/{seq}").text
    assert "raised" in page and "לא הייתה טיסה" in page and f'href="/incidents/{fire}"' in page
    assert f'href="/disputes/{seq}"' in il.get(f"/incidents/{fire}").text  # and the incident lists it


def test_evidence_is_uploaded_with_the_report_and_reaches_the_named_party(demo):
    from fusioncell.hotline.models import StoredFile

    sy = login(demo, "sy/liaison-1")
    now = demo[1].log.clock.now().strftime("%Y-%m-%dT%H:%MZ")
    form = {"csrf_token": sy.csrf, "category": "air_strike", "start": now, "position": "33.10, 35.95",
            "description": "غارة جوية", "responsible": "IL"}
    photo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000
    before = size(demo)
    with demo[1].db.read() as session:
        files = session.execute(select(func.count()).select_from(StoredFile)).scalar_one()
    refused = sy.post("/incidents", data={**form, "description": ""},
                      files={"evidence": ("crater.png", photo, "image/png")})
    assert refused.status_code == 400 and size(demo) == before
    wrong = sy.post("/incidents", data=form, files={"evidence": ("run.sh", b"#!/bin/sh", "application/x-sh")})
    assert wrong.status_code == 400 and "files of type application/x-sh are refused" in wrong.text
    with demo[1].db.read() as session:  # nothing stored by the refused reports
        assert session.execute(select(func.count()).select_from(StoredFile)).scalar_one() == files
    done = sy.post("/incidents", data=form, files={"evidence": ("crater.png", photo, "image/png")},
                   follow_redirects=False)
    assert done.status_code == 303, done.text
    seq = int(done.headers["location"].rsplit("/", 1)[1])
    (evidence,) = incident_seqs(demo)[seq].body["evidence"]
    assert evidence["name"] == "crater.png" and evidence["size"] == len(photo)
    il = login(demo, "il/liaison-1")
    assert f'/api/v1/attachments/{evidence["sha256"]}' in il.get(f"/incidents/{seq}").text
    download = il.get(f'/api/v1/attachments/{evidence["sha256"]}')
    assert download.status_code == 200 and download.content == photo  # the named party gets the evidence


def test_evidence_over_the_size_limit_is_refused_and_nothing_is_recorded(cell):
    from fusioncell.app import create_app
    from fusioncell.demo import scenario
    from fusioncell.deps import Settings

    scenario.play(cell)
    app = create_app(cell, settings=Settings(max_attachment_bytes=1000))
    with TestClient(app):
        sy = login((app, cell), "sy/liaison-1")
        before = size((app, cell))
        now = cell.log.clock.now().strftime("%Y-%m-%dT%H:%MZ")
        page = sy.post("/incidents", data={"csrf_token": sy.csrf, "category": "air_strike", "start": now,
                                           "position": "33.10, 35.95", "description": "x"},
                       files={"evidence": ("big.png", b"\x89PNG" + b"\x00" * 1500, "image/png")})
        assert page.status_code in (400, 413) and "limited to" in page.text
        assert size((app, cell)) == before


def test_any_entry_can_be_disputed_from_its_record_page(demo):
    from fusioncell.hotline.models import Message

    with demo[1].db.read() as session:
        flash = session.execute(select(Message).where(Message.precedence == "FLASH")).scalars().first()
    il = login(demo, "il/liaison-1")
    page = il.get(f"/records/{flash.seq}").text
    assert "Raise a dispute about this entry" in page
    assert "Raise a dispute" not in login(demo, "us/observer-1").get(f"/records/{flash.seq}").text
    raised = il.post("/disputes", data={"csrf_token": il.csrf, "about": str(flash.seq), "respondent": "SY",
                                        "claim": "אין ירי באזור", "remedy": "תיקון ההודעה"}, follow_redirects=False)
    assert raised.status_code == 303
    page = il.get(raised.headers["location"]).text
    assert f'href="/records/{flash.seq}"' in page and "hotline.message" in page
