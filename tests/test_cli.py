"""The `fusioncell` command as an operator uses it, bad input included."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from fusioncell.cli.main import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def demo_dir(tmp_path):
    data = tmp_path / "data"
    result = run("init", "--demo", "--dir", str(data))
    assert result.exit_code == 0, result.output
    return data


def test_init_demo_creates_key_0600_database_and_a_verifying_log(demo_dir):
    assert stat.S_IMODE((demo_dir / "cell.key").stat().st_mode) == 0o600
    result = run("verify", "--dir", str(demo_dir))
    from fusioncell.cell import open_cell

    cell = open_cell(demo_dir, with_key=False)
    with cell.db.read() as session:
        size = cell.log.tree(session).size
    cell.close()
    assert size > 7
    assert result.exit_code == 0 and f"OK: {size} entries" in result.output


def test_init_from_config_and_refuses_a_second_init(tmp_path):
    config = tmp_path / "cell.toml"
    config.write_text(
        '[cell]\nid = "north-cell"\nname = "North"\n'
        '[[party]]\nid = "A"\nnames = {en = "A"}\nlanguages = ["en"]\n'
        '[[party]]\nid = "B"\nnames = {en = "B"}\nlanguages = ["en"]\n'
        '[[party]]\nid = "S"\nrole = "supervisor"\nnames = {en = "S"}\nlanguages = ["en"]\n'
    )
    data = tmp_path / "d"
    assert run("init", "--config", str(config), "--dir", str(data)).exit_code == 0
    again = run("init", "--config", str(config), "--dir", str(data))
    assert again.exit_code == 1 and "already holds a cell" in again.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cell\nid=", "not valid TOML"),
        ('[cell]\nid = "Bad Id"\nname = "x"\n[[party]]\nid="A"\nnames={en="A"}\nlanguages=["en"]\n', "cell.id"),
        ('[cell]\nid = "c"\nname = "x"\n[[party]]\nid="A"\nnames={en="A"}\nlanguages=["en"]\n'
         '[[party]]\nid="A"\nnames={en="A"}\nlanguages=["en"]\n', "unique"),
    ],
)
def test_bad_configuration_is_explained_and_creates_nothing(tmp_path, text, message):
    config = tmp_path / "cell.toml"
    config.write_text(text)
    result = run("init", "--config", str(config), "--dir", str(tmp_path / "d"))
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "d" / "cell.key").exists()


def test_export_verify_and_rebuild(demo_dir, tmp_path):
    bundle = tmp_path / "sy.jsonl"
    result = run("export", "--dir", str(demo_dir), "--party", "SY", "--out", str(bundle))
    assert result.exit_code == 0, result.output
    assert json.loads(bundle.read_text().splitlines()[0])["party"] == "SY"
    assert run("verify", str(bundle)).exit_code == 0
    result = run("rebuild", "--dir", str(demo_dir))
    assert result.exit_code == 0 and "identical" in result.output


def test_verify_names_the_bad_seq_and_exits_non_zero(demo_dir, tmp_path):
    bundle = tmp_path / "us.jsonl"
    run("export", "--dir", str(demo_dir), "--party", "US", "--out", str(bundle))
    lines = bundle.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if '"custody":"cell"' in line and i > 1)
    lines[at] = lines[at].replace('"custody":"cell"', '"custody":"device"')
    bundle.write_text("\n".join(lines) + "\n")
    result = run("verify", str(bundle))
    assert result.exit_code == 2 and f"seq {at - 1}:" in result.output


def test_export_for_an_unknown_party_lists_the_parties(demo_dir, tmp_path):
    result = run("export", "--dir", str(demo_dir), "--party", "XX", "--out", str(tmp_path / "x.jsonl"))
    assert result.exit_code == 1 and "IL, SY, US" in result.output


def test_key_lifecycle_from_the_command_line(demo_dir, tmp_path):
    result = run("key", "generate", "--out", str(tmp_path / "device.key"))
    public = result.output.split()[2]
    assert stat.S_IMODE((tmp_path / "device.key").stat().st_mode) == 0o600
    result = run("key", "add", "--dir", str(demo_dir), "--party", "IL", "--holder", "il/liaison-7",
                 "--public-key", public)
    assert result.exit_code == 0 and "enrolled at seq" in result.output
    again = run("key", "add", "--dir", str(demo_dir), "--party", "IL", "--holder", "il/liaison-7",
                "--public-key", public)
    assert again.exit_code == 1 and "already enrolled" in again.output
    from fusioncell.record.canonical import b64d
    from fusioncell.record.signing import key_id

    kid = key_id(b64d(public))
    assert run("key", "revoke", kid, "--reason", "lost", "--dir", str(demo_dir)).exit_code == 0
    twice = run("key", "revoke", kid, "--reason", "lost", "--dir", str(demo_dir))
    assert twice.exit_code == 1 and "already revoked" in twice.output
    assert run("verify", "--dir", str(demo_dir)).exit_code == 0


@pytest.mark.parametrize("public", ["not base64!", "AAAA"])
def test_key_add_refuses_a_malformed_public_key(demo_dir, public):
    result = run("key", "add", "--dir", str(demo_dir), "--party", "IL", "--holder", "x", "--public-key", public)
    assert result.exit_code == 1 and "public-key" in result.output


def test_commands_on_a_missing_cell_say_how_to_create_one(tmp_path):
    result = run("status", "--dir", str(tmp_path / "nothing"))
    assert result.exit_code == 1 and "fusioncell init" in result.output
    assert run("verify", str(tmp_path / "missing.jsonl")).exit_code == 1


def test_a_cell_key_readable_by_others_is_refused(demo_dir):
    (demo_dir / "cell.key").chmod(0o644)
    result = run("key", "revoke", "0123456789abcdef", "--reason", "x", "--dir", str(demo_dir))
    assert result.exit_code == 1 and "chmod 600" in result.output
