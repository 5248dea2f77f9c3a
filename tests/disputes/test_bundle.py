"""Dispute bundles: the dispute, its steps and every entry they cite, each with its inclusion proof against a
signed tree head, checked offline with nothing but the file; any change to it is named; a party gets only
what was released to it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from fusioncell.disputes import service as dispute_service
from fusioncell.disputes.models import Dispute
from fusioncell.errors import NotFound, VerificationFailed
from fusioncell.record.proofs import verify_proof_bundle


@pytest.fixture
def demo(cell):
    from fusioncell.demo import scenario

    scenario.play(cell)
    scenario.play_hotline(cell)
    scenario.play_zones_and_notices(cell)
    scenario.play_incidents_and_disputes(cell)
    return cell


def _dispute(cell, state):
    with cell.db.read() as session:
        return session.execute(select(Dispute).where(Dispute.state == state)).scalars().first()


def _bundle(cell, party, seq, path):
    with cell.db.read() as session, path.open("wb") as out:
        dispute_service.write_bundle(session, log=cell.log, party=party, seq=seq, out=out)
    return path


def test_a_dispute_bundle_proves_the_dispute_and_what_it_cites_offline(demo, tmp_path):
    dispute = _dispute(demo, "in_mediation")
    path = _bundle(demo, "SY", dispute.seq, tmp_path / "d.jsonl")
    demo.close()  # offline: the cell's database plays no part in the check
    report = verify_proof_bundle(path)
    assert dispute_service.verified_state(report).state == "in_mediation"
    kinds = {e.submission["kind"] for e in report.entries.values() if e.submission}
    assert {"dispute.raised", "dispute.step", "incident.reported", "incident.response", "cell.genesis",
            "identity.key_added"} <= kinds
    assert report.subject["seqs"][0] == dispute.seq and len(report.subject["seqs"]) == 3
    assert report.head["size"] > max(report.entries)


@pytest.mark.parametrize("tamper, reason", [
    ("claim", "body_mismatch"),
    ("entry_time", "not_included"),
    ("drop_cited", "incomplete"),
    ("drop_step", "incomplete"),
    ("head_root", "bad_tree_head"),
    ("swap", "order"),
])
def test_a_changed_bundle_fails_naming_the_entry(demo, tmp_path, tamper, reason):
    dispute = _dispute(demo, "in_mediation")
    path = _bundle(demo, "US", dispute.seq, tmp_path / "d.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    subject = json.loads(lines[0])["subject"]["seqs"]
    at = {json.loads(line).get("entry", json.loads(line)).get("seq"): i for i, line in enumerate(lines[1:-1], 1)}
    item = json.loads(lines[at[dispute.seq]])
    cited = min(s for s in at if s not in subject and s > 0 and json.loads(lines[at[s]]).get("entry", {})
                .get("submission", {}).get("kind") == "incident.reported")
    expected_seq = {"claim": dispute.seq, "entry_time": dispute.seq, "drop_cited": dispute.seq,
                    "drop_step": dispute.seq, "swap": subject[1]}.get(tamper)
    if tamper == "claim":
        item["body"]["claim"]["text"] = "something else"
        lines[at[dispute.seq]] = json.dumps(item, ensure_ascii=False)
    elif tamper == "entry_time":
        time = item["entry"]["time"]
        item["entry"]["time"] = time[:-2] + ("1" if time[-2] != "1" else "2") + "Z"  # a millisecond later
        lines[at[dispute.seq]] = json.dumps(item, ensure_ascii=False)
    elif tamper == "drop_cited":
        del lines[at[cited]]
    elif tamper == "drop_step":
        del lines[at[subject[-1]]]
        expected_seq = subject[-1]
    elif tamper == "head_root":
        head = json.loads(lines[-1])
        head["tree_head"]["root"] = "00" * 32
        lines[-1] = json.dumps(head)
    elif tamper == "swap":
        lines[at[subject[0]]], lines[at[subject[1]]] = lines[at[subject[1]]], lines[at[subject[0]]]
        expected_seq = subject[0]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(VerificationFailed) as failed:
        verify_proof_bundle(path)
    assert failed.value.reason == reason
    if expected_seq is not None and tamper != "drop_cited":
        assert failed.value.seq == expected_seq


def test_a_subject_that_lists_another_entry_as_a_step_is_refused(demo, tmp_path):
    """The header is not signed: a bundle whose subject passes off a cited entry as a step of the dispute is
    refused by the replay, though every entry in it is genuine and included."""
    dispute = _dispute(demo, "in_mediation")
    path = _bundle(demo, "US", dispute.seq, tmp_path / "d.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    other = next(json.loads(line)["entry"]["seq"] for line in lines[1:-1] if "entry" in json.loads(line)
                 and json.loads(line)["entry"]["submission"]["kind"] == "incident.reported")
    header["subject"]["seqs"] = [*header["subject"]["seqs"], other]
    lines[0] = json.dumps(header)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = verify_proof_bundle(path)
    with pytest.raises(VerificationFailed) as failed:
        dispute_service.verified_state(report)
    assert failed.value.reason == "not_a_step" and failed.value.seq == other


def test_a_cited_entry_not_released_to_the_party_travels_as_its_leaf_hash(demo, tmp_path):
    from fusioncell.demo.scenario import _viewer
    from fusioncell.incidents.models import Incident

    with demo.db.read() as session:
        restricted = session.execute(select(Incident).where(Incident.audience == "IL US")).scalar_one()
    with demo.log.transaction(demo.db) as session:
        raised = dispute_service.raise_dispute(
            session, log=demo.log, kek=demo.kek, viewer=_viewer(session, "il/liaison-1"), about=[restricted.seq],
            respondent="SY", claim={"lang": "en", "text": "armed men in the area"},
            remedy={"lang": "en", "text": "withdraw them"})
    path = _bundle(demo, "SY", raised.seq, tmp_path / "sy.jsonl")
    text = path.read_text(encoding="utf-8")
    assert "armed" not in json.dumps([json.loads(line).get("body") for line in text.splitlines()
                                      if json.loads(line).get("entry", {}).get("seq") == restricted.seq])
    assert "כוח חמוש" not in text  # the restricted report's description never reaches SY
    report = verify_proof_bundle(path)
    assert report.entries[restricted.seq].submission is None  # proven included, not readable
    assert dispute_service.verified_state(report).state == "raised"
    with pytest.raises(NotFound):
        _bundle(demo, "SY", 10**6, tmp_path / "none.jsonl")


def test_export_dispute_and_verify_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from fusioncell.cli.main import app

    runner = CliRunner()
    data = tmp_path / "data"
    assert runner.invoke(app, ["init", "--demo", "--dir", str(data)]).exit_code == 0
    from fusioncell.cell import open_cell

    cell = open_cell(data, with_key=False)
    seq = _dispute(cell, "in_mediation").seq
    cell.close()
    out = tmp_path / "dispute.jsonl"
    result = runner.invoke(app, ["export", "--dir", str(data), "--party", "IL", "--dispute", str(seq),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0 and "state in mediation" in result.output, result.output
    out.write_bytes(out.read_bytes().replace(b'"action":"mediate"', b'"action":"rule"'))
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 2 and "does not match the hash" in result.output, result.output
    missing = runner.invoke(app, ["export", "--dir", str(data), "--party", "IL", "--dispute", "99999",
                                  "--out", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 1 and "no dispute 99999" in missing.output
    assert not (tmp_path / "none.jsonl").exists() and not (tmp_path / "none.jsonl.partial").exists()


def test_the_member_downloads_the_bundle_of_a_dispute_they_can_see(api, tmp_path):
    from tests.disputes.test_disputes import client, message, text

    sy = client(api, "sy/liaison-1")
    about = message(sy)
    seq = sy.post("/api/v1/disputes", json={"about": [about], "respondent": "IL", "claim": text("fired"),
                                            "remedy": text("explain")}).json()["seq"]
    response = sy.get(f"/api/v1/disputes/{seq}/bundle")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    assert json.loads(response.text.splitlines()[0])["subject"]["seqs"] == [seq]
    downloaded = tmp_path / "downloaded.jsonl"
    downloaded.write_bytes(response.content)
    report = verify_proof_bundle(downloaded)
    assert dispute_service.verified_state(report).state == "raised"
    assert client(api, "sy/liaison-1").get("/api/v1/disputes/99999/bundle").status_code == 404

