"""The hotline over HTTP: send, acknowledge, receipts, attachments, templates, places; bad input refused with
problem details and nothing recorded; the engine's missed-deadline entry reaches the stream at once."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.factories.hotline import places
from tests.factories.identity import token_for


def client(api, member, scopes=("read", "write")):
    c = TestClient(api.app)
    c.headers["Authorization"] = f"Bearer {token_for(api.cell, member, list(scopes))}"
    return c


def size(api):
    with api.cell.db.read() as session:
        return api.cell.log.tree(session).size


@pytest.fixture
def hot(api):
    places(api.cell)
    return api


def test_send_acknowledge_and_read_a_coded_message(hot):
    sy, il = client(hot, "sy/liaison-1"), client(hot, "il/liaison-1")
    sent = sy.post("/api/v1/hotline/messages", json={
        "audience": ["IL"], "precedence": "IMMEDIATE", "subject": "Movement",
        "template": "NOTIFY-MOVE", "fields": {"place": "katzrin", "start": "2026-11-23T06:00Z",
                                              "end": "2026-11-23T07:00Z"}})
    assert sent.status_code == 201, sent.text
    seq = sent.json()["seq"]
    threads = il.get("/api/v1/hotline/threads").json()
    assert threads[0]["unacknowledged"] == 1 and threads[0]["audience"] == ["IL", "SY", "US"]
    assert il.post(f"/api/v1/hotline/messages/{seq}/receipts", json={"status": "read"}).status_code == 201
    assert il.post(f"/api/v1/hotline/messages/{seq}/ack", json={"reply": "Noted"}).status_code == 201
    view = il.get(f"/api/v1/hotline/threads/{threads[0]['thread']}?lang=he").json()
    message = view["messages"][0]
    assert message["acknowledged_by"] == ["IL"] and message["awaiting"] == []
    assert "קצרין" in message["rendered"]
    assert [r["status"] for r in message["receipts"]] == ["read"]


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"audience": ["IL"], "precedence": "URGENT", "subject": "x", "text": "y"}, 422, "invalid_request"),
    ({"audience": ["IL"], "precedence": "FLASH", "subject": "x"}, 422, "bad_body"),
    ({"audience": ["IL"], "precedence": "FLASH", "subject": "x", "template": "NOPE", "fields": {}}, 400,
     "unknown_template"),
    ({"audience": ["IL"], "precedence": "FLASH", "subject": "x", "template": "REQ-CEASE",
      "fields": {"place": "atlantis", "activity": "fire"}}, 422, "unknown_place"),
    ({"audience": ["IL"], "precedence": "FLASH", "subject": "x", "text": "y", "colour": "red"}, 422,
     "invalid_request"),
])
def test_bad_messages_are_refused_with_problem_details(hot, payload, status, code):
    sy = client(hot, "sy/liaison-1")
    before = size(hot)
    response = sy.post("/api/v1/hotline/messages", json=payload)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code and response.headers["content-type"] == "application/problem+json"
    assert size(hot) == before


def test_acknowledging_a_message_not_addressed_to_you_is_refused(hot):
    il, us = client(hot, "il/liaison-1"), client(hot, "us/supervisor-1")
    seq = il.post("/api/v1/hotline/messages", json={"audience": ["SY"], "precedence": "ROUTINE", "subject": "x",
                                                    "text": "y"}).json()["seq"]
    before = size(hot)
    assert il.post(f"/api/v1/hotline/messages/{seq}/ack", json={}).status_code == 403
    assert us.post(f"/api/v1/hotline/messages/{seq}/ack", json={}).status_code == 403
    assert size(hot) == before
    private = il.post("/api/v1/hotline/messages", json={"audience": ["US"], "precedence": "ROUTINE",
                                                        "subject": "x", "text": "y"}).json()["seq"]
    sy = client(hot, "sy/liaison-1")  # its token creation is an entry: before counting
    before = size(hot)
    assert sy.post(f"/api/v1/hotline/messages/{private}/ack", json={}).status_code == 404
    assert size(hot) == before


def test_attachment_upload_limits_and_access(hot):
    il, sy, us = client(hot, "il/liaison-1"), client(hot, "sy/liaison-1"), client(hot, "us/supervisor-1")
    refused = il.post("/api/v1/attachments", files={"file": ("x.exe", b"MZ..", "application/x-msdownload")})
    assert refused.status_code == 400 and refused.json()["code"] == "refused_type"
    uploaded = il.post("/api/v1/attachments", files={"file": ("crater.png", b"\x89PNG photo", "image/png")}).json()
    sent = il.post("/api/v1/hotline/messages", json={"audience": ["US"], "precedence": "PRIORITY", "subject": "Photo",
                                                     "text": "attached", "attachments": [uploaded]})
    assert sent.status_code == 201, sent.text
    assert us.get(f"/api/v1/attachments/{uploaded['sha256']}").content == b"\x89PNG photo"
    assert sy.get(f"/api/v1/attachments/{uploaded['sha256']}").status_code == 404


def test_attachment_over_the_limit_is_refused(cell):
    from fusioncell.app import create_app
    from fusioncell.deps import Settings
    from tests.factories.identity import add_personas

    add_personas(cell)
    c = TestClient(create_app(cell, settings=Settings(max_attachment_bytes=1000,
                                                      attachment_types=frozenset({"text/plain"}))))
    c.headers["Authorization"] = f"Bearer {token_for(cell, 'il/liaison-1', ['read', 'write'])}"
    response = c.post("/api/v1/attachments", files={"file": ("big.txt", b"x" * 5000, "text/plain")})
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    response = c.post("/api/v1/attachments", files={"file": ("a.png", b"\x89PNG", "image/png")})
    assert response.status_code == 400 and "text/plain" in response.json()["detail"]  # the configured types


def test_templates_and_places_are_listed_in_three_languages(hot):
    il = client(hot, "il/liaison-1", ("read",))
    codes = {t["code"]: t for t in il.get("/api/v1/hotline/templates").json()}
    assert {"REQ-CLARIFY", "NOTIFY-MOVE", "REQ-CEASE", "CONFIRM-RECEIPT", "REPORT-INCIDENT"} <= set(codes)
    assert set(codes["REQ-CEASE"]["title"]) == {"en", "ar", "he"}
    for query in ("Hermon", "جبل الشيخ", "חרמון"):
        assert [p["id"] for p in il.get(f"/api/v1/places?q={query}").json()] == ["mount-hermon"]


def test_a_missed_deadline_is_on_the_stream_at_once(hot):
    """The server's own deadline ticker (every second) notices the fake clock moving past the deadline."""
    sy, il = client(hot, "sy/liaison-1"), client(hot, "il/liaison-1")
    start = il.get("/api/v1/tree").json()["tree_head"]["size"] - 1
    seq = sy.post("/api/v1/hotline/messages", json={"audience": ["IL"], "precedence": "FLASH", "subject": "x",
                                                    "text": "y"}).json()["seq"]
    with il.websocket_connect(f"/api/v1/stream?after={start}") as ws:
        hot.cell.log.clock.advance(minutes=6)
        kinds = []
        while "deadline.missed" not in kinds:
            message = ws.receive_json()
            if message["type"] == "entry" and "entry" in message:
                kinds.append(message["entry"]["submission"]["kind"])
                if message["entry"]["submission"]["kind"] == "deadline.missed":
                    assert message["body"]["source"] == seq and message["body"]["party"] == "IL"


def test_a_program_can_send_right_after_a_restart(hot):
    """Nothing but a bearer token, on a freshly opened cell: the cell id comes from the database."""
    from fusioncell.app import create_app
    from fusioncell.cell import open_cell

    token = token_for(hot.cell, "sy/liaison-1", ["read", "write"])
    reopened = open_cell(hot.cell.paths.root, db_url=hot.cell.db.url, clock=hot.cell.log.clock)
    with TestClient(create_app(reopened)) as fresh:
        response = fresh.post("/api/v1/hotline/messages", headers={"Authorization": f"Bearer {token}"},
                              json={"audience": ["IL"], "precedence": "ROUTINE", "subject": "x", "text": "y"})
    reopened.close()
    assert response.status_code == 201, response.text


def test_the_home_page_reads_as_many_statements_for_four_messages_owed_as_for_one(hot, steady_viewers):
    """The attention list on the home page: messages awaiting IL's acknowledgement, and for the supervisor every
    missed deadline, are read together, not one query per message."""
    from fusioncell.deadlines import engine
    from tests.factories.queries import statements_per_page
    from tests.web.test_pages import web_login

    sy = client(hot, "sy/liaison-1")
    pages = {}
    for member in ("il/liaison-1", "us/supervisor-1"):
        pages[member] = TestClient(hot.app)
        assert web_login(pages[member], member).status_code == 303

    def send(n):
        for i in range(n):
            response = sy.post("/api/v1/hotline/messages", json={
                "audience": ["IL"], "precedence": "FLASH", "subject": f"Movement {i}", "text": "Convoy at 0400Z"})
            assert response.status_code == 201, response.text
        hot.cell.log.clock.advance(hours=1)  # past the acknowledgement deadlines: missed, for the supervisor
        with hot.cell.log.transaction(hot.cell.db) as session:
            engine.fire_due(session, log=hot.cell.log, now=hot.cell.log.clock.now())

    def statements():
        return {member: (statements_per_page(hot.cell.db, [("/", page)])["/"], page.get("/").text.count("Movement "))
                for member, page in pages.items()}

    send(1)
    one = statements()
    send(3)
    four = statements()
    assert {m: n for m, (_, n) in one.items()} == {"il/liaison-1": 1, "us/supervisor-1": 1}
    assert {m: n for m, (_, n) in four.items()} == {"il/liaison-1": 4, "us/supervisor-1": 4}
    assert {m: q for m, (q, _) in four.items()} == {m: q for m, (q, _) in one.items()}
