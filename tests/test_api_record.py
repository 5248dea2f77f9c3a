"""The record over HTTP: device-signed submissions, the one door for reads (no leaks to any persona),
proofs, the live stream with resume, and the witness catching a rewritten history."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from fusioncell.client import ApiError, Client
from fusioncell.record.canonical import canonical
from fusioncell.record.format import make_entry
from fusioncell.record.merkle import leaf_hash
from fusioncell.record.models import Entry
from fusioncell.record.verify import DatabaseSource, verify_source
from fusioncell.witness import Witness, WitnessAlarm
from tests.factories.identity import PERSONAS, device_member, token_for
from tests.factories.record import NOTE  # noqa: F401  registers test.note

SECRETS = {"IL": "IL-ONLY-7f3a", "SY": "SY-ONLY-91bc"}


def client_for(api, member, scopes=("read", "write")):
    token = token_for(api.cell, member, list(scopes))
    return Client("http://testserver", token=token, http=_with_token(api, token))


def _with_token(api, token):
    from starlette.testclient import TestClient

    client = TestClient(api.app)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture
def devices(api):
    return {
        "IL": device_member(api.cell, "il/device-1", "IL", ["liaison"]),
        "SY": device_member(api.cell, "sy/device-1", "SY", ["liaison"]),
    }


def test_device_signed_submission_is_appended_and_provable(api, devices):
    client = client_for(api, "il/device-1")
    accepted = client.submit(devices["IL"], kind="test.note", body={"text": "patrol 0600Z"}, audience=["IL", "SY", "US"])
    assert client.record(accepted["seq"])["body"] == {"text": "patrol 0600Z"}
    assert client.verify_entry(accepted["seq"])


def test_submissions_of_others_and_bad_signatures_are_refused(api, devices):
    client = client_for(api, "sy/device-1")
    with pytest.raises(ApiError) as info:  # SY's program posting IL's signed submission
        client.submit(devices["IL"], kind="test.note", body={"text": "x"}, audience=["IL", "SY", "US"])
    assert info.value.status == 403
    submission, sig = devices["SY"].submit(kind="test.note", body={"text": "x"}, audience=["IL", "SY", "US"],
                                           created="2026-11-22T10:00:00.000Z")
    forged = sig[:-2] + ("AA" if not sig.endswith("AA") else "BA")
    with pytest.raises(ApiError) as info:
        client._call("POST", "/records", json={"submission": submission, "sig": forged, "body": {"text": "x"}})
    assert info.value.code == "bad_signature" and info.value.status == 422


def test_observer_cannot_write(api):
    observer = device_member(api.cell, "us/observer-2", "US", ["observer"])
    client = client_for(api, "us/observer-2")
    with pytest.raises(ApiError) as info:
        client.submit(observer, kind="test.note", body={"text": "x"}, audience=["IL", "SY", "US"])
    assert info.value.status == 403


@pytest.fixture
def restricted(api, devices):
    """One entry released only to IL and the supervisor, one only to SY and the supervisor."""
    seqs = {}
    for party, signer in devices.items():
        client = client_for(api, signer.author)
        seqs[party] = client.submit(signer, kind="test.note", body={"text": SECRETS[party]},
                                    audience=sorted({party, "US"}))["seq"]
    return seqs


def read_everything(api, member):
    """Every read route, as this member, concatenated."""
    client = client_for(api, member, ("read",))
    parts = [json.dumps(list(client.iter_records()))]
    tree = client.tree()
    size = tree["tree_head"]["size"]
    parts.append(json.dumps(tree))
    for seq in range(size):
        parts.append(json.dumps(client.record(seq)))
        parts.append(json.dumps(client.proof(seq)))
    parts.append(json.dumps(client._call("GET", "/tree/consistency", params={"first": 1, "second": size})))
    parts.append(json.dumps(client._call("GET", "/members")))
    response = client.http.get("/api/v1/export")
    parts.append(response.text)
    with client.http.websocket_connect("/api/v1/stream?after=-1") as ws:
        parts.extend(json.dumps(ws.receive_json()) for _ in range(size))
    return "\n".join(parts), client


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_no_read_route_leaks_another_partys_restricted_entry(api, restricted, persona):
    member, party, _roles = PERSONAS[persona]
    text, client = read_everything(api, member)
    for owner, secret in SECRETS.items():
        released = party in (owner, "US")
        assert (secret in text) == released, f"{persona} {'missed' if released else 'saw'} {owner}'s entry"
    for owner, seq in restricted.items():
        item = client.record(seq)
        if party in (owner, "US"):
            assert item["body"] == {"text": SECRETS[owner]}
        else:
            # Exactly what a non-member may know: the seq and the leaf hash; no kind, author, time or size.
            assert set(item) == {"seq", "leaf_hash"}
            assert client.verify_entry(seq)
    # Nothing to tell a restricted entry from any other by the errors: past the end is 404 for everyone.
    with pytest.raises(ApiError) as info:
        client.record(10_000)
    assert info.value.status == 404


def test_export_over_the_api_verifies_offline(api, restricted, tmp_path):
    client = client_for(api, "il/liaison-1", ("read",))
    path = client.export(tmp_path / "il.jsonl")
    from fusioncell.record.verify import BundleSource

    report = verify_source(BundleSource(path), workers=1)
    with api.cell.db.read() as session:
        not_for_il = [a for a in session.execute(select(Entry.audience)).scalars() if "IL" not in a.split()]
    assert report.redacted == len(not_for_il) >= 2  # SY's note and SY's token creation
    assert SECRETS["SY"] not in path.read_text()


def test_stream_delivers_live_and_resumes_without_gap_or_duplicate(api, devices):
    sy = client_for(api, "sy/device-1")
    il_reader = client_for(api, "il/liaison-1", ("read",))
    with il_reader.http.websocket_connect("/api/v1/stream?after=-1") as ws:
        backlog = []
        size = il_reader.tree()["tree_head"]["size"]
        while len(backlog) < size:
            backlog.append(ws.receive_json())
        assert [m["seq"] for m in backlog] == list(range(size))
        sy.submit(devices["SY"], kind="test.note", body={"text": "live"}, audience=["IL", "SY", "US"])
        live = ws.receive_json()
        assert live["type"] == "entry" and live["body"] == {"text": "live"}
        head = ws.receive_json()
        assert head["type"] == "tree_head" and head["tree_head"]["size"] == live["seq"] + 1
        last = live["seq"]
    # Disconnected: two more entries are appended, one not released to IL.
    sy.submit(devices["SY"], kind="test.note", body={"text": "missed 1"}, audience=["IL", "SY", "US"])
    sy.submit(devices["SY"], kind="test.note", body={"text": SECRETS["SY"]}, audience=["SY", "US"])
    with il_reader.http.websocket_connect(f"/api/v1/stream?after={last}") as ws:
        resumed = [ws.receive_json(), ws.receive_json()]
    assert [m["seq"] for m in resumed] == [last + 1, last + 2]
    assert resumed[0]["body"] == {"text": "missed 1"} and set(resumed[1]) == {"type", "seq", "leaf_hash"}


def test_stream_refuses_the_unauthenticated(api):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as info:
        with api.websocket_connect("/api/v1/stream") as ws:
            ws.receive_json()
    assert info.value.code == 4401


def witness_for(api, tmp_path, party="IL"):
    member = f"{party.lower()}/witness"
    signer = device_member(api.cell, member, party, ["observer"], purpose="witness")
    client = client_for(api, member, ("read", "witness"))
    return Witness(client, party=party, key=signer.key, state_path=tmp_path / f"{party}-witness.json")


def test_witness_countersigns_consistent_heads(api, devices, tmp_path):
    witness = witness_for(api, tmp_path)
    first = witness.check_once()
    client_for(api, "sy/device-1").submit(devices["SY"], kind="test.note", body={"text": "x"},
                                          audience=["IL", "SY", "US"])
    reader = client_for(api, "il/liaison-1", ("read",))  # its token creation is an entry: make it first
    second = witness.check_once()
    assert second["size"] > first["size"]
    tree = reader.tree()
    assert [c["party"] for c in tree["cosignatures"]] == ["IL"]
    report = verify_source(DatabaseSource(api.cell.db.url), workers=1)
    assert report.cosignatures == 2


def test_witness_raises_the_alarm_when_history_is_rewritten(api, devices, tmp_path):
    client_for(api, "sy/device-1").submit(devices["SY"], kind="test.note", body={"text": "we withdrew at 0600"},
                                          audience=["IL", "SY", "US"])
    witness = witness_for(api, tmp_path)
    seen = witness.check_once()
    # The operator rewrites entry 3's time and signs new heads with the cell key: a fork.
    cell = api.cell
    with cell.db.write() as session:
        row = session.get(Entry, 3)
        entry = json.loads(row.leaf)
        forged = canonical(make_entry(seq=3, time="2026-11-22T09:00:00.000Z", submission=entry["submission"],
                                      sig=entry["sig"]))
        session.execute(update(Entry).where(Entry.seq == 3).values(leaf=forged, leaf_hash=leaf_hash(forged)))
    cell.log.forget()
    client_for(api, "sy/device-1").submit(devices["SY"], kind="test.note", body={"text": "after the fork"},
                                          audience=["IL", "SY", "US"])
    with pytest.raises(WitnessAlarm) as info:
        witness.check_once()
    message = info.value.message
    assert "rewritten" in message and f"size {seen['size']}, root {seen['root']}" in message
    # The witness keeps the head it trusted, so it keeps alarming.
    assert json.loads((tmp_path / "IL-witness.json").read_text())["head"] == seen


def _tree_size(api):
    with api.cell.db.read() as session:
        return api.cell.log.tree(session).size


@pytest.mark.parametrize(
    ("payload", "content_type", "field"),
    [
        (b"{not json", "application/json", "body"),
        (b"", "application/json", "body"),
        (b"[]", "application/json", "body"),
        (b"null", "application/json", "body"),
        (b'{"submission": [], "sig": 5, "body": "x"}', "application/json", "submission"),
        (b'{"submission": {}, "sig": "' + b"A" * 101 + b'", "body": {}}', "application/json", "sig"),
        (b'{"submission": {}, "sig": "x", "body": {}, "extra": 1}', "application/json", "extra"),
        (b'{"submission": {}}', "application/json", "body"),
        (b'{"submission": {}, "sig": "x", "body": {}}', "text/plain", "body"),
    ],
)
def test_malformed_posts_of_records_get_problem_details_and_change_nothing(api, devices, payload, content_type,
                                                                           field):
    token = token_for(api.cell, "il/device-1", ["read", "write"])
    before = _tree_size(api)
    response = api.post("/api/v1/records", content=payload,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_request" and field in problem["detail"]
    assert response.headers["content-type"] == "application/problem+json"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert _tree_size(api) == before


def test_a_body_that_is_not_utf8_is_refused(api, devices):
    token = token_for(api.cell, "il/device-1", ["read", "write"])
    response = api.post("/api/v1/records", content=b'{"submission": {}, "sig": "\xff", "body": {}}',
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "http_error"


def test_a_disabled_members_token_posts_nothing(api, devices):
    from tests.test_api_auth import login

    token = token_for(api.cell, "il/device-1", ["read", "write"])
    headers = {"Authorization": f"Bearer {token}"}
    submission, sig = devices["IL"].submit(kind="test.note", body={"text": "first"}, audience=["IL", "SY", "US"],
                                           created="2026-11-22T10:00:00.000Z")
    response = api.post("/api/v1/records", headers=headers, json={"submission": submission, "sig": sig,
                                                                   "body": {"text": "first"}})
    assert response.status_code == 201  # the token is now in the server's short-lived cache
    admin = api.__class__(api.app)
    csrf = login(admin, "il/admin").json()["csrf_token"]
    assert admin.post("/api/v1/members/il/device-1/disable", json={"reason": "device lost"},
                      headers={"X-CSRF-Token": csrf}).status_code == 200
    before = _tree_size(api)
    submission, sig = devices["IL"].submit(kind="test.note", body={"text": "after"}, audience=["IL", "SY", "US"],
                                           created="2026-11-22T10:00:01.000Z")
    response = api.post("/api/v1/records", headers=headers, json={"submission": submission, "sig": sig,
                                                                   "body": {"text": "after"}})
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    assert _tree_size(api) == before


def test_concurrent_posts_are_each_durable_and_answered_once(api, devices):
    """Many submissions in flight at once share group commits; each gets its own seq, and a refused one
    (a bad signature) does not take its neighbours with it."""
    import asyncio

    import httpx

    token = token_for(api.cell, "il/device-1", ["read", "write"])
    posts = []
    for i in range(40):
        body = {"text": f"note {i}"}
        submission, sig = devices["IL"].submit(kind="test.note", body=body, audience=["IL", "SY", "US"],
                                               created="2026-11-22T10:00:00.000Z")
        if i % 10 == 7:
            sig = sig[:-2] + ("AA" if not sig.endswith("AA") else "BA")
        posts.append({"submission": submission, "sig": sig, "body": body})
    before = _tree_size(api)

    async def run():
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            return await asyncio.gather(*(client.post("/api/v1/records", json=p) for p in posts))

    responses = asyncio.run(run())
    accepted = [r.json() for r in responses if r.status_code == 201]
    refused = [r.json()["code"] for r in responses if r.status_code != 201]
    assert len(accepted) == 36 and refused == ["bad_signature"] * 4
    assert len({a["seq"] for a in accepted}) == 36
    assert _tree_size(api) == before + 36


@pytest.fixture
def api_checkers(cell):
    """The application as `fusioncell serve` runs it: device-signed submissions checked in worker processes."""
    from starlette.testclient import TestClient

    from fusioncell.app import create_app
    from fusioncell.deps import Settings
    from tests.factories.identity import add_personas

    add_personas(cell)
    app = create_app(cell, settings=Settings(check_processes=1))
    with TestClient(app) as client:
        client.cell = cell
        yield client
    assert app.state.fc.intake.checkers[0].pid is None  # the worker went with the server


def test_with_checker_processes_a_submission_is_appended_and_a_forgery_refused(api_checkers):
    api = api_checkers
    signer = device_member(api.cell, "il/device-1", "IL", ["liaison"])
    client = client_for(api, "il/device-1")
    accepted = client.submit(signer, kind="test.note", body={"text": "patrol 0600Z"}, audience=["IL", "SY", "US"])
    assert client.record(accepted["seq"])["body"] == {"text": "patrol 0600Z"}
    assert client.verify_entry(accepted["seq"])
    assert api.app.state.fc.intake.checkers[0].batches >= 1  # checked by the worker, not in the server
    submission, sig = signer.submit(kind="test.note", body={"text": "x"}, audience=["IL", "SY", "US"],
                                    created="2026-11-22T10:00:00.000Z")
    forged = sig[:-2] + ("AA" if not sig.endswith("AA") else "BA")
    with pytest.raises(ApiError) as info:
        client._call("POST", "/records", json={"submission": submission, "sig": forged, "body": {"text": "x"}})
    assert info.value.code == "bad_signature" and info.value.status == 422
    with pytest.raises(ApiError) as info:
        client._call("POST", "/records", json={"submission": submission, "sig": sig, "body": {"text": "y"}})
    assert info.value.code == "body_hash_mismatch" and info.value.status == 422
