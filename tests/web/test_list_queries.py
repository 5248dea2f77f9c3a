"""List pages and list routes read a fixed number of statements, whatever the number of items they list: a cell
fills up over months, and a page that reads a few more statements per item gets slower with every entry."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from fusioncell.clock import format_time
from fusioncell.geo.grid import to_mgrs
from tests.factories.identity import token_for
from tests.factories.queries import statements_per_page
from tests.incidents.test_incidents import linked, report
from tests.notices.test_api import checked
from tests.web.test_pages import web_login

LISTS = ("/", "/records", "/hotline", "/notices", "/incidents", "/incidents/stats", "/incidents/layers.json",
         "/map/layers.json", "/api/v1/records", "/api/v1/notices", "/api/v1/incidents", "/api/v1/hotline/threads")


def clients(api):
    """SY's API client, IL logged in to the web pages, and IL's API client."""
    sy = TestClient(api.app)
    sy.headers["Authorization"] = f"Bearer {token_for(api.cell, 'sy/liaison-1', ['read', 'write'])}"
    il = TestClient(api.app)
    assert web_login(il, "il/liaison-1").status_code == 303
    il_api = TestClient(api.app)
    il_api.headers["Authorization"] = f"Bearer {token_for(api.cell, 'il/liaison-1', ['read', 'write'])}"
    return sy, il, il_api


def test_lists_read_as_many_statements_for_four_items_as_for_one(api, steady_viewers):
    sy, il, il_api = clients(api)

    def add(i):
        """A notice (days apart: no conflicts between them), an incident IL must answer, a message to IL."""
        start = api.cell.log.clock.now() + timedelta(days=3 + i)
        notice = sy.post("/api/v1/notices", json={
            "activity": "patrol", "mgrs": to_mgrs(33.17, 35.86), "radius_m": 100, "contact": "SY desk",
            "start": format_time(start), "end": format_time(start + timedelta(hours=2))})
        assert notice.status_code == 201, notice.text
        checked(sy, notice.json()["seq"])
        incident = sy.post("/api/v1/incidents", json={"report": report(api)})
        assert incident.status_code == 201, incident.text
        linked(sy, incident.json()["seq"])
        message = sy.post("/api/v1/hotline/messages", json={"audience": ["IL"], "precedence": "PRIORITY",
                                                            "subject": f"Subject {i}", "text": "x"})
        assert message.status_code == 201, message.text

    def statements():
        return statements_per_page(api.cell.db, [(p, il_api if p.startswith("/api/") else il) for p in LISTS])

    add(0)
    one = statements()
    for i in range(1, 4):
        add(i)
    four = statements()
    for path in ("/api/v1/notices", "/api/v1/incidents", "/api/v1/hotline/threads"):
        assert len(il_api.get(path).json()) == 4, path  # the lists did grow
    assert four == one


def test_a_thread_reads_as_many_statements_for_four_messages_as_for_one(api, steady_viewers):
    """A hotline thread's page and route list its messages with their acknowledgements and receipts: a fixed
    number of statements, not a few per message."""
    sy, il, il_api = clients(api)
    thread = None

    def send(i):
        nonlocal thread
        response = sy.post("/api/v1/hotline/messages", json={"audience": ["IL"], "precedence": "PRIORITY",
                                                             "subject": "Convoy", "text": f"message {i}",
                                                             **({"thread": thread} if thread else {})})
        assert response.status_code == 201, response.text
        seq = response.json()["seq"]
        thread = thread or il_api.get("/api/v1/hotline/threads").json()[0]["thread"]
        assert il_api.post(f"/api/v1/hotline/messages/{seq}/receipts", json={"status": "read"}).status_code == 201

    def statements():
        return statements_per_page(api.cell.db, [(f"/hotline/threads/{thread}", il),
                                                 (f"/api/v1/hotline/threads/{thread}", il_api)])

    send(0)
    one = statements()
    for i in range(1, 4):
        send(i)
    four = statements()
    assert len(il_api.get(f"/api/v1/hotline/threads/{thread}").json()["messages"]) == 4
    assert four == one
