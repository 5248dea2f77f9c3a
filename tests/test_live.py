"""Against a real server on loopback: the Python client's WebSocket stream, and the witness command."""

from __future__ import annotations

import threading
from contextlib import closing

import pytest
from typer.testing import CliRunner

from fusioncell.cli.main import app
from fusioncell.client import Client
from fusioncell.record import signing
from tests.factories.identity import device_member, token_for
from tests.factories.record import NOTE  # noqa: F401  registers test.note


def test_client_follows_the_stream_over_a_real_websocket(live_server):
    cell = live_server.cell
    signer = device_member(cell, "sy/device-1", "SY", ["liaison"])
    writer = Client(live_server.url, token=token_for(cell, "sy/device-1", ["read", "write"]))
    reader = Client(live_server.url, token=token_for(cell, "il/liaison-1", ["read"]))
    start = reader.tree()["tree_head"]["size"] - 1
    received = []
    ready = threading.Event()

    def follow():
        with closing(reader.stream(after=start, timeout=10)) as messages:
            for message in messages:
                ready.set()
                if message["type"] == "entry":
                    received.append(message)
                    if len(received) == 3:
                        return

    follower = threading.Thread(target=follow)
    follower.start()
    for i in range(3):
        writer.submit(signer, kind="test.note", body={"text": f"m{i}"}, audience=["IL", "SY", "US"])
    follower.join(15)
    assert [m["body"]["text"] for m in received] == ["m0", "m1", "m2"]
    assert [m["seq"] for m in received] == list(range(start + 1, start + 4))


def test_witness_command_countersigns_then_alarms_on_a_fork(live_server, tmp_path):
    import json

    from sqlalchemy import update

    from fusioncell.identity import service as identity_service
    from fusioncell.record.canonical import canonical
    from fusioncell.record.format import make_entry
    from fusioncell.record.merkle import leaf_hash
    from fusioncell.record.models import Entry

    cell = live_server.cell
    key_file = tmp_path / "il-witness.key"
    key = signing.generate()
    signing.save_key(key, key_file)
    with cell.log.transaction(cell.db) as session:
        identity_service.enrol_key(session, log=cell.log, party="IL", holder="il/admin",
                                   public_key=signing.public_bytes(key), custody="device", purpose="witness")
    token = token_for(cell, "il/admin", ["read", "witness"])
    args = ["witness", "--url", live_server.url, "--token", token, "--party", "IL", "--key", str(key_file),
            "--state", str(tmp_path / "state.json"), "--once"]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "countersigned" in result.output, result.output
    with cell.db.write() as session:
        entry = json.loads(session.get(Entry, 2).leaf)
        forged = canonical(make_entry(seq=2, time=entry["time"][:-4] + "999Z", submission=entry["submission"],
                                      sig=entry["sig"]))
        session.execute(update(Entry).where(Entry.seq == 2).values(leaf=forged, leaf_hash=leaf_hash(forged)))
    cell.log.forget()
    token_for(cell, "il/liaison-1", ["read"])  # any new entry: the cell signs a head over the forked tree
    result = runner.invoke(app, args)
    assert result.exit_code == 3 and "ALARM" in result.output and "rewritten" in result.output


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_the_stream(pg_schema_url, tmp_path):
    """A program posts to worker A; a member following worker B's stream receives it (LISTEN/NOTIFY)."""
    from starlette.testclient import TestClient

    from fusioncell.app import create_app
    from fusioncell.cell import init_cell, open_cell
    from fusioncell.config import DEMO_CONFIG, load_config
    from tests.factories.identity import add_personas

    cell = init_cell(tmp_path / "data", config=load_config(DEMO_CONFIG), config_path=DEMO_CONFIG,
                     db_url=pg_schema_url)
    add_personas(cell)
    signer = device_member(cell, "sy/device-1", "SY", ["liaison"])
    write_token = token_for(cell, "sy/device-1", ["read", "write"])
    read_token = token_for(cell, "il/liaison-1", ["read"])
    other = open_cell(cell.paths.root, db_url=pg_schema_url)
    with TestClient(create_app(cell)) as worker_a, TestClient(create_app(other)) as worker_b:
        size = worker_b.get("/api/v1/tree", headers={"Authorization": f"Bearer {read_token}"}).json()
        after = size["tree_head"]["size"] - 1
        with worker_b.websocket_connect(f"/api/v1/stream?after={after}",
                                        headers={"Authorization": f"Bearer {read_token}"}) as ws:
            client = Client("http://testserver", token=write_token, http=worker_a)
            worker_a.headers["Authorization"] = f"Bearer {write_token}"
            accepted = client.submit(signer, kind="test.note", body={"text": "via A"}, audience=["IL", "SY", "US"])
            message = ws.receive_json()
    assert message["seq"] == accepted["seq"] and message["body"] == {"text": "via A"}
    other.close()
    cell.close()



@pytest.mark.postgres
def test_a_worker_keeps_following_the_others_after_a_database_error(pg_schema_url, tmp_path, monkeypatch):
    """A failed catch-up query (a cut connection, a restarted server) does not end the follower: it listens
    again, catches up, and the entries other workers append still reach this worker's listeners."""
    from sqlalchemy.exc import OperationalError

    from fusioncell.cell import init_cell, open_cell
    from fusioncell.config import DEMO_CONFIG, load_config
    from fusioncell.record.notify import Follower
    from tests.factories.record import persona

    cell = init_cell(tmp_path / "data", config=load_config(DEMO_CONFIG), config_path=DEMO_CONFIG,
                     db_url=pg_schema_url)
    other = open_cell(cell.paths.root, db_url=pg_schema_url)  # the other worker
    writer = persona(other, "IL", "il/device-1")
    failures = []
    real_catch_up = Follower.catch_up

    def failing_once(self, size=None):
        if not failures:
            failures.append(size)
            raise OperationalError("SELECT …", {}, Exception("server closed the connection unexpectedly"))
        return real_catch_up(self, size)

    monkeypatch.setattr(Follower, "catch_up", failing_once)
    received = threading.Event()
    seen: list[int] = []
    follower = Follower(cell.db, cell.log)
    cell.log.listeners.append(lambda appended, _head: (seen.extend(a.seq for a in appended), received.set()))
    try:
        appended = writer.append({"text": "appended by the other worker"})
        assert received.wait(15), "the follower stopped after the database error"
        assert failures and appended.seq in seen
    finally:
        follower.close()
        other.close()
        cell.close()
