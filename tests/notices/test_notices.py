"""Notices through the record: filed, checked by the cell, answered within a deadline, cancelled; bad
geometry and windows refused; the map shows zones (illustrative) and notices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from fusioncell.clock import format_time
from fusioncell.deadlines.models import Deadline
from fusioncell.errors import FusioncellError
from fusioncell.identity import service as identity_service
from fusioncell.notices import service as notice_service
from fusioncell.notices.models import Finding, Notice
from fusioncell.record.models import Entry
from fusioncell.record.rebuild import projection_digest, rebuild
from tests.factories.hotline import viewer
from tests.factories.identity import add_personas


@pytest.fixture
def people(cell):
    add_personas(cell)
    return {k: viewer(cell, m) for k, m in {"il": "il/liaison-1", "sy": "sy/liaison-1", "us": "us/supervisor-1"}.items()}


def body(cell, point, *, hours_ahead=72, composition=None, activity="patrol", radius=500):
    start = cell.log.clock.now() + timedelta(hours=hours_ahead)
    return {"activity": activity, "contact": "desk", "start": format_time(start),
            "end": format_time(start + timedelta(hours=2)), "composition": composition or {},
            "geometry": {"type": "Point", "coordinates": list(point), "radius_m": radius}}


def file(cell, who, b, repair=False):
    with cell.log.transaction(cell.db) as session:
        filed = notice_service.file_notice(session, log=cell.log, kek=cell.kek, viewer=who, body=b, repair=repair)
        checked = notice_service.check_notice(session, log=cell.log, notice_seq=filed.seq)
    return filed, checked


def entries(cell):
    with cell.db.read() as session:
        return session.execute(select(func.count()).select_from(Entry)).scalar_one()


def test_conflicting_notices_are_found_recorded_and_owe_an_answer(cell, people, clock):
    il, _ = file(cell, people["il"], body(cell, (35.86, 33.17)))
    sy, findings = file(cell, people["sy"], body(cell, (35.865, 33.171), radius=10))
    assert findings.party == "CELL" and findings.submission["refs"] == [sy.leaf_hash.hex()]
    assert [f["type"] for f in findings.body["findings"]] == ["conflict"]
    assert findings.body["findings"][0]["other"] == il.seq
    with cell.db.read() as session:
        owed = session.get(Deadline, f"notice:{sy.seq}:IL:{findings.seq}")
        assert owed.state == "open"
    with cell.log.transaction(cell.db) as session:
        identity_service.append_as(session, log=cell.log, kek=cell.kek, actor=people["il"], kind="notice.response",
                                   body={"notice": sy.seq, "response": "object", "reason": "our patrol has priority"},
                                   audience=["IL", "SY", "US"])
    with cell.db.read() as session:
        assert session.get(Deadline, f"notice:{sy.seq}:IL:{findings.seq}").state == "met"
        finding = session.get(Finding, (sy.seq, 0))
        assert finding.responses["IL"]["response"] == "object"
        live = projection_digest(session)
    with cell.db.write() as session:
        rebuild(session)
        assert projection_digest(session) == live


def test_an_empty_check_is_recorded_too(cell, people):
    _filed, checked = file(cell, people["il"], body(cell, (35.5, 33.0)))
    assert checked.kind == "notice.findings" and checked.body["findings"] == []


@pytest.mark.parametrize(("change", "code"), [
    ({"geometry": {"type": "Point", "coordinates": [200, 33]}}, "invalid_input"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[35.8, 33.0], [35.9, 33.1], [35.9, 33.0], [35.8, 33.1],
                                                       [35.8, 33.0]]]}}, "invalid_geometry"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[30, 30], [40, 30], [40, 40], [30, 40], [30, 30]]]}},
     "too_large"),
])
def test_bad_geometry_is_refused_with_the_reason_and_nothing_recorded(cell, people, change, code):
    before = entries(cell)
    with pytest.raises(FusioncellError) as info:
        file(cell, people["il"], {**body(cell, (35.86, 33.17)), **change})
    assert info.value.code == code
    assert entries(cell) == before


def test_self_intersecting_area_is_repaired_only_with_consent(cell, people):
    bowtie = {"type": "Polygon", "coordinates": [[[35.80, 33.0], [35.81, 33.01], [35.81, 33.0], [35.80, 33.01],
                                                  [35.80, 33.0]]]}
    with pytest.raises(FusioncellError):
        file(cell, people["il"], {**body(cell, (0, 0)), "geometry": bowtie})
    with pytest.raises(FusioncellError) as info:  # a bow tie repairs into two triangles: refused, with the reason
        file(cell, people["il"], {**body(cell, (0, 0)), "geometry": bowtie}, repair=True)
    assert "draw it again" in info.value.message


@pytest.mark.parametrize("window", ["backwards", "past"])
def test_bad_time_windows_are_refused(cell, people, window):
    b = body(cell, (35.86, 33.17))
    if window == "backwards":
        b["start"], b["end"] = b["end"], b["start"]
    else:
        start = cell.log.clock.now() - timedelta(days=2)
        b["start"], b["end"] = format_time(start), format_time(start + timedelta(hours=1))
    before = entries(cell)
    with pytest.raises(FusioncellError):
        file(cell, people["il"], b)
    assert entries(cell) == before


def test_cancelled_notice_leaves_the_map_and_closes_its_deadlines(cell, people):
    file(cell, people["il"], body(cell, (35.86, 33.17)))
    sy, found = file(cell, people["sy"], body(cell, (35.865, 33.171), radius=10))
    with cell.log.transaction(cell.db) as session:
        identity_service.append_as(session, log=cell.log, kek=cell.kek, actor=people["sy"], kind="notice.cancelled",
                                   body={"notice": sy.seq, "reason": "postponed"}, audience=["IL", "SY", "US"])
    with cell.db.read() as session:
        assert session.get(Notice, sy.seq).state == "cancelled"
        assert session.get(Deadline, f"notice:{sy.seq}:IL:{found.seq}").state == "closed"
        assert [n.seq for n in notice_service.active_notices(session, viewer=people["us"])] != [sy.seq]


def test_demo_zones_are_illustrative_on_the_map_and_the_proposal_is_not_in_effect(tmp_path):
    from starlette.testclient import TestClient
    from typer.testing import CliRunner

    from fusioncell.app import create_app
    from fusioncell.cell import open_cell
    from fusioncell.cli.main import app
    from tests.web.test_pages import web_login

    data = tmp_path / "demo"
    assert CliRunner().invoke(app, ["init", "--demo", "--dir", str(data)]).exit_code == 0
    cell = open_cell(data)
    client = TestClient(create_app(cell))
    web_login(client, "sy/liaison-1", "sy/liaison-1-demo-pass")
    found = {layer["id"]: layer for layer in client.get("/map/layers.json").json()["layers"]}
    assert found["zones"]["illustrative"] and found["proposals"]["illustrative"]
    assert all(f["properties"]["illustrative"] for f in found["zones"]["data"]["features"])
    assert [f["properties"]["signed_by"] for f in found["proposals"]["data"]["features"]] == [["IL"]]
    assert len(found["notices"]["data"]["features"]) == 4  # three for tomorrow, one notified late (now)
    cell.close()


def test_the_servers_indexed_check_finds_what_the_full_query_finds(cell, people, clock):
    """The live index (kept current by commits) against the database query, over a mix of notices."""
    from fusioncell.notices.service import LiveDeconflictor

    live = LiveDeconflictor(cell.db, cell.log)
    cell.log.listeners.append(live.on_commit)
    points = [(35.86, 33.17), (35.861, 33.171), (35.87, 33.2), (35.5, 33.0), (35.862, 33.169)]
    seqs = []
    for i, point in enumerate(points):
        who = people["il"] if i % 2 else people["sy"]
        with cell.log.transaction(cell.db) as session:
            filed = notice_service.file_notice(session, log=cell.log, kek=cell.kek, viewer=who,
                                               body=body(cell, point, composition={"troops": 3 * i}))
        seqs.append(filed.seq)
        with cell.db.read() as session:
            fast = live.findings(session, notice_seq=filed.seq)
            full = notice_service.findings_for(session, notice_seq=filed.seq)
        assert sorted(map(repr, fast)) == sorted(map(repr, full))
    with cell.log.transaction(cell.db) as session:  # a cancelled notice leaves the index
        identity_service.append_as(session, log=cell.log, kek=cell.kek, actor=people["sy"], kind="notice.cancelled",
                                   body={"notice": seqs[0], "reason": "off"}, audience=["IL", "SY", "US"])
        filed = notice_service.file_notice(session, log=cell.log, kek=cell.kek, viewer=people["il"],
                                           body=body(cell, (35.8601, 33.1701)))
    with cell.db.read() as session:
        fast = live.findings(session, notice_seq=filed.seq)
        assert sorted(map(repr, fast)) == sorted(map(repr, notice_service.findings_for(session, notice_seq=filed.seq)))
        assert all(f.other != seqs[0] for f in fast)


def test_an_amended_notice_is_checked_again(cell, people):
    file(cell, people["il"], body(cell, (35.86, 33.17)))
    sy, first = file(cell, people["sy"], body(cell, (35.865, 33.171), radius=10))
    assert [f["type"] for f in first.body["findings"]] == ["conflict"]
    moved = {**body(cell, (35.95, 33.30), radius=10), "notice": sy.seq}
    with cell.log.transaction(cell.db) as session:
        identity_service.append_as(session, log=cell.log, kek=cell.kek, actor=people["sy"], kind="notice.amended",
                                   body=moved, audience=["IL", "SY", "US"])
        second = notice_service.check_notice(session, log=cell.log, notice_seq=sy.seq)
    assert second.body["findings"] == []  # moved away: nothing found
    with cell.db.read() as session:
        assert session.get(Deadline, f"notice:{sy.seq}:IL:{first.seq}").state == "closed"
        assert session.get(Notice, sy.seq).body["geometry"]["coordinates"] == [35.95, 33.30]
        live = projection_digest(session)
    with cell.db.write() as session:
        rebuild(session)
        assert projection_digest(session) == live
    with pytest.raises(FusioncellError), cell.log.transaction(cell.db) as session:  # only the filing party
        identity_service.append_as(session, log=cell.log, kek=cell.kek, actor=people["il"], kind="notice.amended",
                                   body=moved, audience=["IL", "SY", "US"])
