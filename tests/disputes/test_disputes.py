"""Disputes on the record: raised about entries by leaf hash, carried to a ruling and compliance, each step an
entry with the next step's deadline; refused steps leave no trace; others cannot see or move it."""

from __future__ import annotations

from starlette.testclient import TestClient

from fusioncell.deadlines import engine
from tests.factories.identity import token_for


def client(api, member):
    c = TestClient(api.app)
    c.headers["Authorization"] = f"Bearer {token_for(api.cell, member, ['read', 'write'])}"
    return c


def size(c):
    return c.get("/api/v1/tree").json()["tree_head"]["size"]


def message(c, text="Fire near Beit Jinn at 0400Z"):
    return c.post("/api/v1/hotline/messages", json={"audience": ["IL"], "precedence": "IMMEDIATE",
                                                    "subject": "Fire", "text": text}).json()["seq"]


def text(s):
    return {"lang": "en", "text": s}


def test_a_dispute_from_claim_to_ruling_and_compliance(api):
    sy, il, us = client(api, "sy/liaison-1"), client(api, "il/liaison-1"), client(api, "us/supervisor-1")
    about = message(sy)
    raised = sy.post("/api/v1/disputes", json={"about": [about], "respondent": "IL", "claim": text("IL fired first"),
                                               "remedy": text("cease and explain")})
    assert raised.status_code == 201, raised.text
    seq = raised.json()["seq"]
    assert il.get(f"/api/v1/disputes/{seq}").json()["next_actions"] == ["answer", "settle"]
    for c, action in ((il, "answer"), (us, "mediate"), (us, "rule"), (il, "comply")):
        response = c.post(f"/api/v1/disputes/{seq}/steps", json={"action": action, "text": text(action)})
        assert response.status_code == 201, (action, response.text)
    dispute = sy.get(f"/api/v1/disputes/{seq}").json()
    assert dispute["state"] == "complied" and [s["action"] for s in dispute["steps"]] == [
        "answer", "mediate", "rule", "comply"]
    assert dispute["next_actions"] == []
    with api.cell.db.read() as session:
        from sqlalchemy import select

        from fusioncell.record.models import Entry

        raised_entry = session.get(Entry, seq)
        cited = session.get(Entry, about).leaf_hash.hex()
        import json

        assert json.loads(raised_entry.leaf)["submission"]["refs"] == [cited]  # the dispute carries its proof
        kinds = list(session.execute(select(Entry.kind).where(Entry.seq > seq)).scalars())
    assert kinds.count("dispute.step") == 4


def test_a_refused_step_says_why_and_leaves_no_trace(api):
    sy, il = client(api, "sy/liaison-1"), client(api, "il/liaison-1")
    seq = sy.post("/api/v1/disputes", json={"about": [message(sy)], "respondent": "IL", "claim": text("x"),
                                            "remedy": text("y")}).json()["seq"]
    before = size(sy)
    for c, action, code in ((il, "mediate", "not_allowed"), (sy, "answer", "not_allowed"), (il, "comply", "bad_transition"),
                            (il, "appeal", "unknown_step")):
        response = c.post(f"/api/v1/disputes/{seq}/steps", json={"action": action, "text": text("no")})
        assert response.status_code == 422 and response.json()["code"] == code, (action, response.text)
    assert size(sy) == before


def test_a_dispute_cannot_cite_entries_the_raiser_cannot_see(api):
    il, sy = client(api, "il/liaison-1"), client(api, "sy/liaison-1")
    private = il.post("/api/v1/hotline/messages", json={"audience": ["US"], "precedence": "ROUTINE",
                                                        "subject": "x", "text": "only for US"}).json()["seq"]
    response = sy.post("/api/v1/disputes", json={"about": [private], "respondent": "IL", "claim": text("x"),
                                                 "remedy": text("y")})
    assert response.status_code == 404


def test_an_unanswered_dispute_misses_its_deadline(api):
    sy = client(api, "sy/liaison-1")
    seq = sy.post("/api/v1/disputes", json={"about": [message(sy)], "respondent": "IL", "claim": text("x"),
                                            "remedy": text("y")}).json()["seq"]
    api.cell.log.clock.advance(hours=49)
    with api.cell.log.transaction(api.cell.db) as session:
        fired = engine.fire_due(session, log=api.cell.log, now=api.cell.log.clock.now())
    assert [(f.kind, f.body["party"], f.body["source"]) for f in fired if f.body["rule"] == "dispute.step"] == [
        ("deadline.missed", "IL", seq)]


def test_settlement_by_agreement_of_both_parties(api):
    sy, il = client(api, "sy/liaison-1"), client(api, "il/liaison-1")
    seq = sy.post("/api/v1/disputes", json={"about": [message(sy)], "respondent": "IL", "claim": text("x"),
                                            "remedy": text("y")}).json()["seq"]
    sy.post(f"/api/v1/disputes/{seq}/steps", json={"action": "settle", "text": text("agreed")})
    assert sy.get(f"/api/v1/disputes/{seq}").json()["state"] == "raised"
    il.post(f"/api/v1/disputes/{seq}/steps", json={"action": "settle", "text": text("agreed")})
    assert sy.get(f"/api/v1/disputes/{seq}").json()["state"] == "settled"


def test_home_shows_the_open_dispute_and_the_members_next_step(api):
    from tests.web.test_pages import web_login

    sy = client(api, "sy/liaison-1")
    seq = sy.post("/api/v1/disputes", json={"about": [message(sy)], "respondent": "IL", "claim": text("x"),
                                            "remedy": text("y")}).json()["seq"]
    page = TestClient(api.app)
    web_login(page, "il/liaison-1")
    page.cookies.set("fc_lang", "en")
    html = page.get("/").text
    assert f"Dispute {seq} between SY and IL is raised" in html and "Your next step: Answer, Agree to settle" in html


def test_lists_of_disputes_take_as_many_queries_for_four_disputes_as_for_one(api, steady_viewers):
    """The API's list, the disputes page and the home page's attention list read a fixed number of statements, not
    a few more per dispute (each used to read its deadlines and the supervisors on its own)."""
    from tests.factories.queries import statements_per_page
    from tests.web.test_pages import web_login

    sy = client(api, "sy/liaison-1")
    page = TestClient(api.app)
    assert web_login(page, "sy/liaison-1").status_code == 303
    about = [message(sy, f"message {i}") for i in range(4)]

    def raise_about(seq):
        response = sy.post("/api/v1/disputes", json={"about": [seq], "respondent": "IL", "claim": text("x"),
                                                     "remedy": text("y")})
        assert response.status_code == 201, response.text

    def statements():
        return statements_per_page(api.cell.db, [("/api/v1/disputes", sy), ("/disputes", page), ("/", page)])

    raise_about(about[0])
    one = statements()
    for seq in about[1:]:
        raise_about(seq)
    four = statements()
    assert page.get("/disputes").text.count('href="/disputes/') == 4
    assert four == one
