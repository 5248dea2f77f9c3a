"""The web pages through the same services as the API: login, languages, the record explorer, forms with
bad input, CSRF, the Content Security Policy, and no data of another party in any page or fragment."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from tests.factories.identity import PERSONAS, password_of
from tests.factories.record import NOTE  # noqa: F401  registers test.note

SECRETS = {"IL": "IL-ONLY-51d2", "SY": "SY-ONLY-77e0"}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]*)"', html).group(1)


def web_login(client: TestClient, member: str, password: str | None = None):
    page = client.get("/login")
    return client.post("/login", data={"member": member, "password": password or password_of(member),
                                       "csrf_token": csrf_of(page.text), "next": "/"}, follow_redirects=False)


def fresh(api) -> TestClient:
    return TestClient(api.app)


def test_pages_redirect_to_login_and_back(api):
    client = fresh(api)
    response = client.get("/records", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/records"
    page = client.get("/login?next=/records")
    response = client.post("/login", data={"member": "il/liaison-1", "password": password_of("il/liaison-1"),
                                           "csrf_token": csrf_of(page.text), "next": "/records"},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/records"


@pytest.mark.parametrize(("member", "lang", "direction"),
                         [("il/liaison-1", "he", "rtl"), ("sy/liaison-1", "ar", "rtl"), ("us/supervisor-1", "en", "ltr")])
def test_language_and_direction_default_to_the_party(api, member, lang, direction):
    client = fresh(api)
    assert web_login(client, member).status_code == 303
    html = client.get("/").text
    assert f'<html lang="{lang}" dir="{direction}">' in html


def test_member_chooses_the_language(api):
    client = fresh(api)
    web_login(client, "sy/liaison-1")
    html = client.get("/").text
    response = client.post("/lang", data={"lang": "he", "csrf_token": csrf_of(html), "next": "/records"},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/records"
    assert '<html lang="he" dir="rtl">' in client.get("/records").text


def test_login_page_follows_the_browser_language(api):
    html = fresh(api).get("/login", headers={"Accept-Language": "ar,en;q=0.5"}).text
    assert '<html lang="ar" dir="rtl">' in html and "تسجيل الدخول" in html


def test_bad_login_re_renders_with_input_kept_and_message_beside_the_field(api):
    client = fresh(api)
    page = client.get("/login", headers={"Accept-Language": "he"})
    response = client.post("/login", data={"member": "il/liaison-1", "password": "", "csrf_token": csrf_of(page.text)},
                           headers={"Accept-Language": "he"})
    assert response.status_code == 400
    assert 'value="il/liaison-1"' in response.text
    assert 'aria-describedby="password-error"' in response.text and "הזן את הסיסמה." in response.text
    wrong = client.post("/login", data={"member": "il/liaison-1", "password": "not the password",
                                        "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 400 and 'value="il/liaison-1"' in wrong.text


def test_login_form_without_its_csrf_token_is_refused(api):
    client = fresh(api)
    client.get("/login")
    response = client.post("/login", data={"member": "il/liaison-1", "password": password_of("il/liaison-1"),
                                           "csrf_token": "forged"}, follow_redirects=False)
    assert response.status_code == 400 and "fc_session" not in response.headers.get("set-cookie", "")


def test_logout_form_needs_its_csrf_token(api):
    client = fresh(api)
    web_login(client, "il/liaison-1")
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/", follow_redirects=False).status_code == 200
    html = client.get("/").text
    assert client.post("/logout", data={"csrf_token": csrf_of(html)}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.fixture
def secrets_on_record(api):
    """An entry released only to IL (and the supervisor), one only to SY."""
    from tests.factories.record import persona

    seqs = {}
    for party in ("IL", "SY"):
        writer = persona(api.cell, party, f"{party.lower()}/notes")
        seqs[party] = writer.append({"text": SECRETS[party]}, audience=sorted({party, "US"})).seq
    return seqs


@pytest.mark.parametrize("name", sorted(PERSONAS))
def test_no_page_shows_another_partys_entries(api, secrets_on_record, name):
    member, party, _roles = PERSONAS[name]
    client = fresh(api)
    web_login(client, member)
    pages = ["/", "/records", "/map", "/map/layers.json", "/records?kind=test.note"]
    pages += [f"/records/{seq}" for seq in secrets_on_record.values()]
    text = "\n".join(client.get(p).text for p in pages)
    for owner, secret in SECRETS.items():
        assert (secret in text) == (party in (owner, "US")), f"{name} and {owner}'s secret"
    for owner, seq in secrets_on_record.items():
        html = client.get(f"/records/{seq}").text
        if party not in (owner, "US"):
            assert "test.note" not in html and f"{owner.lower()}/notes" not in html
            assert "Not released to your party" in html or "לא שוחרר" in html or "غير مُتاح" in html


def test_record_page_shows_verified_signature_and_inclusion_proof(api, secrets_on_record):
    client = fresh(api)
    web_login(client, "us/supervisor-1")
    html = client.get(f"/records/{secrets_on_record['IL']}").text
    assert html.count("✓ verified") == 3  # author signature, cell signature on the head, inclusion proof
    assert "does not verify" not in html


def test_unknown_record_and_page_get_a_page_not_json(api):
    client = fresh(api)
    web_login(client, "il/liaison-1")
    for path in ("/records/99999", "/no-such-page"):
        response = client.get(path)
        assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")


def test_pages_carry_a_strict_csp_and_no_inline_script_or_style(api):
    client = fresh(api)
    web_login(client, "il/admin")
    for path in ("/login", "/", "/records", "/records/0", "/map", "/notices"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script in {path}"
        assert not re.search(r"\sstyle=", html), f"inline style in {path}"
        assert not re.search(r"\son[a-z]+=", html), f"inline handler in {path}"
        assert "http://" not in html.replace("http://testserver", "") and "https://" not in html


def test_every_form_carries_a_csrf_token(api):
    client = fresh(api)
    web_login(client, "il/admin")
    for path in ("/", "/records", "/map", "/login"):
        html = client.get(path).text
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", html, flags=re.S):
            assert 'name="csrf_token"' in form, f"form without CSRF token on {path}"


def test_events_deliver_new_entries_as_rows_in_the_members_language(api):
    from tests.factories.record import persona

    writer = persona(api.cell, "SY", "sy/notes")
    client = fresh(api)
    web_login(client, "il/liaison-1")
    with api.cell.db.read() as session:
        last = api.cell.log.tree(session).size - 1
    with client.stream("GET", f"/events?after={last}") as response:
        writer.append({"text": "live"}, audience=["IL", "SY", "US"])
        writer.append({"text": SECRETS["SY"]}, audience=["SY", "US"])
        events = []
        for line in response.iter_lines():
            if line.startswith("data: ") and '"seq"' in line:
                events.append(json.loads(line[len("data: "):]))
                if len(events) == 2:
                    break
    assert [e["seq"] for e in events] == [last + 1, last + 2]
    assert "test.note" in events[0]["html"] and "sy/notes" in events[0]["html"]
    assert SECRETS["SY"] not in events[1]["html"] and "sy/notes" not in events[1]["html"]
    assert "לא שוחרר לצד שלך" in events[1]["html"]  # a redacted row, in the member's language


def test_an_operator_mbtiles_basemap_is_served_locally(cell, tmp_path):
    import sqlite3

    from fusioncell.app import create_app
    from fusioncell.deps import Settings
    from tests.factories.identity import add_personas

    path = tmp_path / "base.mbtiles"
    png = b"\x89PNG\r\n\x1a\n-one-tile-"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tiles (zoom_level int, tile_column int, tile_row int, tile_data blob)")
        conn.execute("INSERT INTO tiles VALUES (1, 1, 0, ?)", (png,))  # TMS row 0 is XYZ row 1 at zoom 1
    add_personas(cell)
    client = TestClient(create_app(cell, settings=Settings(mbtiles=str(path))))
    assert client.get("/tiles/1/1/1.png", follow_redirects=False).status_code == 303  # members only
    web_login(client, "il/liaison-1")
    response = client.get("/tiles/1/1/1.png")
    assert response.status_code == 200 and response.content == png
    assert client.get("/tiles/1/0/0.png").status_code == 204
    assert 'data-tiles="/tiles/{z}/{x}/{y}.png"' in client.get("/map").text


def test_thread_shows_the_original_and_a_labelled_machine_translation(cell, tmp_path):
    from fusioncell.app import create_app
    from fusioncell.deps import Settings
    from tests.factories.hotline import places, send, viewer
    from tests.factories.identity import add_personas
    from tests.hotline.test_translate import ARABIC, ENGLISH, build_package

    models = tmp_path / "models"
    build_package(models / "translate-ar_en-1_0", "ar", "en", ARABIC, ["▁hello", "▁world"])
    build_package(models / "translate-en_he-1_0", "en", "he", ENGLISH, ["▁שלום"])
    add_personas(cell)
    places(cell)
    message = send(cell, viewer(cell, "sy/liaison-1"), text="مرحبا بالعالم", lang="ar", audience=["IL"])
    client = TestClient(create_app(cell, settings=Settings(mt_models=str(models))))
    web_login(client, "il/liaison-1")
    html = client.get(f"/hotline/threads/{message.leaf_hash.hex()}").text
    assert "مرحبا بالعالم" in html  # the original, always
    assert 'class="machine">שלום' in html  # Arabic to Hebrew through English
    assert "translate-ar_en-1_0 + translate-en_he-1_0" in html


def test_thread_without_models_says_it_is_not_translated(api):
    from tests.factories.hotline import places, send, viewer

    places(api.cell)
    message = send(api.cell, viewer(api.cell, "sy/liaison-1"), text="مرحبا", lang="ar", audience=["IL"])
    client = fresh(api)
    web_login(client, "us/supervisor-1")
    html = client.get(f"/hotline/threads/{message.leaf_hash.hex()}").text
    assert "مرحبا" in html and "Not translated" in html


def test_map_layers_carry_the_gazetteer_in_the_members_language(api):
    from tests.factories.hotline import places

    places(api.cell)
    client = fresh(api)
    web_login(client, "sy/liaison-1")
    data = client.get("/map/layers.json").json()
    [layer] = [layer for layer in data["layers"] if layer["id"] == "places"]
    names = {f["properties"]["id"]: f["properties"]["name"] for f in layer["data"]["features"]}
    assert names["mount-hermon"] == "جبل الشيخ" and len(names) == 8
    assert layer["data"]["features"][0]["geometry"]["type"] == "Point"


def test_notice_form_keeps_input_and_explains_a_bad_position(api):
    client = fresh(api)
    web_login(client, "il/liaison-1")
    html = client.get("/notices").text
    response = client.post("/notices", data={"csrf_token": csrf_of(html), "activity": "patrol", "mgrs": "north",
                                             "radius_m": "500", "start": "2026-11-25T06:00Z",
                                             "end": "2026-11-25T08:00Z", "contact": "desk 3", "count_troops": "6"})
    assert response.status_code == 400
    assert 'aria-describedby="mgrs-error"' in response.text and 'value="desk 3"' in response.text
    assert 'value="6"' in response.text
    good = client.post("/notices", data={"csrf_token": csrf_of(html), "activity": "patrol", "mgrs": "33.17, 35.86",
                                         "radius_m": "500", "start": "2026-11-25T06:00Z", "end": "2026-11-25T08:00Z",
                                         "contact": "desk 3", "count_troops": "6"}, follow_redirects=False)
    assert good.status_code == 303
    assert "patrol" in client.get("/notices").text


def test_notice_form_takes_a_pasted_feature_and_its_drawing_map_waits_for_javascript(api):
    client = fresh(api)
    web_login(client, "il/liaison-1")
    html = client.get("/notices").text
    # The drawing map is hidden until draw.js shows it: without JavaScript the text fields are the form.
    assert re.search(r'<div class="draw" id="notice-draw" data-draw hidden', html)
    assert 'data-geojson="geojson" data-position="mgrs" data-radius="radius_m"' in html
    route = {"type": "LineString", "coordinates": [[35.824, 33.126], [35.879, 33.18]]}
    pasted = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": route}]}
    response = client.post("/notices", data={"csrf_token": csrf_of(html), "activity": "humanitarian_convoy",
                                             "geojson": json.dumps(pasted), "start": "2026-11-28T06:00Z",
                                             "end": "2026-11-28T08:00Z", "contact": "desk 7"}, follow_redirects=False)
    assert response.status_code == 303
    layers = client.get("/map/layers.json").json()["layers"]
    [notices] = [layer for layer in layers if layer["id"] == "notices"]
    assert [f["geometry"] for f in notices["data"]["features"]] == [route]


def test_home_shows_the_answers_a_party_owes_on_notices(api):
    from datetime import timedelta

    from fusioncell.clock import format_time
    from fusioncell.notices import service as notice_service
    from tests.factories.hotline import viewer

    start = api.cell.log.clock.now() + timedelta(hours=72)
    window = {"start": format_time(start), "end": format_time(start + timedelta(hours=2))}
    for member, point in (("il/liaison-1", [35.86, 33.17]), ("sy/liaison-1", [35.8605, 33.1705])):
        with api.cell.log.transaction(api.cell.db) as session:
            filed = notice_service.file_notice(session, log=api.cell.log, kek=api.cell.kek,
                                               viewer=viewer(api.cell, member), body={
                                                   "activity": "patrol", "contact": "desk", "composition": {},
                                                   "geometry": {"type": "Point", "coordinates": point}, **window})
            notice_service.check_notice(session, log=api.cell.log, notice_seq=filed.seq)
    client = fresh(api)
    web_login(client, "il/liaison-1")
    client.cookies.set("fc_lang", "en")
    html = client.get("/").text
    assert f"The cell found conflicts with notice {filed.seq}: acknowledge or object" in html


def test_home_tells_the_party_held_responsible_for_an_incident_to_respond(api):
    from datetime import timedelta

    from fusioncell.clock import format_time
    from fusioncell.incidents import service as incident_service
    from tests.factories.hotline import viewer

    when = api.cell.log.clock.now() - timedelta(hours=1)
    with api.cell.log.transaction(api.cell.db) as session:
        reported = incident_service.report_incident(session, log=api.cell.log, kek=api.cell.kek,
                                                    viewer=viewer(api.cell, "sy/liaison-1"), body={
                                                        "category": "fire_across_line", "start": format_time(when),
                                                        "geometry": {"type": "Point", "coordinates": [35.86, 33.17]},
                                                        "description": {"lang": "en", "text": "Shots across the line"},
                                                        "casualties": {"killed": 0, "injured": 0},
                                                        "responsible": "IL"})
    item = f"Incident {reported.seq} names your party: respond"
    for member, shown in (("il/liaison-1", True), ("sy/liaison-1", False)):
        client = fresh(api)
        web_login(client, member)
        client.cookies.set("fc_lang", "en")
        html = client.get("/").text
        assert (item in html) is shown, member
        assert (f'href="/incidents/{reported.seq}"' in html) is shown, member
