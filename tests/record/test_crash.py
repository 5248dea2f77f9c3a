"""Crash safety: a process appending under load is killed with SIGKILL; every acknowledged append survives
and the log verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import select

from fusioncell.record.models import Entry
from fusioncell.record.verify import DatabaseSource, verify_source

WRITER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from fusioncell.cell import open_cell
    from fusioncell.identity import service as identity_service
    from fusioncell.record import signing
    from fusioncell.record.commit import GroupCommitter

    cell = open_cell(Path(sys.argv[1]), db_url=sys.argv[2])
    committer = GroupCommitter(cell.db, cell.log)
    lock = threading.Lock()

    def writer(n):
        while True:
            public = signing.public_bytes(signing.generate())
            entry = committer.run(lambda s: identity_service.enrol_key(
                s, log=cell.log, party="SY", holder=f"sy/w{n}", public_key=public, custody="device"))
            with lock:  # an acknowledgement: printed only after the batch committed
                sys.stdout.write(f"{entry.seq}\\n")
                sys.stdout.flush()

    for n in range(8):
        threading.Thread(target=writer, args=(n,), daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.mark.slow
def test_acknowledged_appends_survive_sigkill(cell, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    cell.close()
    child = subprocess.Popen(
        [sys.executable, str(script), str(cell.paths.root), cell.db.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    acked: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(acked) < 400 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(int(line))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert len(acked) >= 400, f"writer acknowledged only {len(acked)}: {child.stderr.read()[-2000:]}"
    with cell.db.read() as session:
        stored = set(session.execute(select(Entry.seq)).scalars())
    assert set(acked) <= stored, f"acknowledged but lost: {sorted(set(acked) - stored)[:10]}"
    report = verify_source(DatabaseSource(cell.db.url), workers=1)
    assert report.size == len(stored) >= len(acked) + 1
