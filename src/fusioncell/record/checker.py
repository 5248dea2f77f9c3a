"""Worker processes that run record.checks for the intake, so that a server on SQLite (one process) checks
submissions on every core: in one process, canonical JSON, SHA-256 and Ed25519 share one core with the
sequencer under the GIL.

A worker is `python -m fusioncell.record.checker`, a child of the server reading batches on its stdin and
writing results on its stdout; it exits when its stdin closes (the server stopped or died). Frames are a 4-byte
big-endian length and a `marshal` payload: builtin types only, nothing in them can run code, and marshal is the
cheapest encoding of them. A batch is `(cell_id, kinds or None, [(submission, sig, body, public_key), ...])`
(kinds, record.checks' {name: (by_cell, by_party)}, is sent again whenever it grew); its result is one item
per submission:

    (True, body, body_bytes, sub_bytes, sig_json, verified)   passed (record.checks.Checked); body is None
                                                              where it is the body as sent, parsed back
    (False, code, message)                                    refused (InvalidSubmission)
    (None, class name, message)                               anything else: the server checks it itself

A worker that dies, hangs or answers out of protocol is dropped (its batch is checked in the server) and
replaced on a later batch; an item answered out of protocol is checked in the server. An answer in protocol is
trusted as the server trusts its own threads: the worker is the server's own code, started by it.
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from fusioncell.errors import InvalidSubmission
from fusioncell.record.checks import Authors, check_signed

_LENGTH = 4
_RESTART_AFTER = 1.0  # seconds before replacing a worker that failed, doubled for each failure in a row
_RESTART_MAX = 60.0
_NICE = 10
_PIPE_SIZE = 1 << 20


def default_processes() -> int:
    """Two workers per core: while the intake thread of one hands its batch to the group commit, the other
    keeps the core busy (bench/append.py --quick on 2 cores, runs alternating: 10,700-11,400 appends/s with 4
    workers, 9,200-9,900 with 2)."""
    return 2 * (os.cpu_count() or 1)


class CheckerUnavailable(Exception):
    """No worker answered this batch; the caller checks it in its own process."""


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LENGTH)
    if not head:
        return None
    if len(head) != _LENGTH:
        raise EOFError("truncated frame length")
    size = int.from_bytes(head, "big")
    payload = stream.read(size)
    if len(payload) != size:
        raise EOFError("truncated frame")
    return payload


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(_LENGTH, "big") + payload


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_frame(payload))
    stream.flush()


def _ready(fd: int, event: int, deadline: float) -> bool:
    """Whether fd is ready for event (or closed) before the deadline. poll, not select: select refuses
    descriptors above 1023, which a busy server's pipes may have."""
    wait = deadline - time.monotonic()
    if wait <= 0:
        return False
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(wait * 1000))


def _read_exactly(fd: int, size: int, deadline: float) -> bytes:
    """size bytes from a pipe, or EOFError when it closes, TimeoutError at the deadline."""
    chunks, left = [], size
    while left:
        if not _ready(fd, select.POLLIN, deadline):
            raise TimeoutError("the worker did not answer in time")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the worker closed its output")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    """All of data into a pipe set non-blocking, or TimeoutError at the deadline."""
    view = memoryview(data)
    while view:
        if not _ready(fd, select.POLLOUT, deadline):
            raise TimeoutError("the worker did not read in time")
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue


def check_batch(cell_id: str | None, kinds: Mapping[str, Authors], items: list[Any]) -> list[tuple[Any, ...]]:
    """A worker's answer to one batch (also what tests hold the in-process checks to)."""
    out: list[tuple[Any, ...]] = []
    for submission, sig, body, public_key in items:
        try:
            c = check_signed(submission, sig, body, cell_id=cell_id, kinds=kinds, public_key=public_key,
                             keep_body=True)
        except InvalidSubmission as exc:
            out.append((False, exc.code, exc.message))
        except Exception as exc:  # noqa: BLE001 - the server checks it again and raises it there
            out.append((None, exc.__class__.__name__, str(exc)))
        else:
            # The body as sent, where parsing its canonical bytes back gives it: not sent back.
            out.append((True, None if c.body is body else c.body, c.body_bytes, c.sub_bytes, c.sig_json,
                        c.verified))
    return out


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    kinds: Mapping[str, Authors] = {}
    while (frame := _read_frame(inp)) is not None:
        cell_id, new_kinds, items = marshal.loads(frame)
        if new_kinds is not None:
            kinds = new_kinds
        _write_frame(out, marshal.dumps(check_batch(cell_id, kinds, items)))


def _main() -> None:
    # Below the server's threads: the sequencer and the event loop do not wait for a core behind the checks.
    os.nice(_NICE)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the channel, whatever a library prints
    try:
        serve(inp, out)
    except (BrokenPipeError, KeyboardInterrupt):
        pass


class Checker:
    """One worker process, used by one thread at a time. A worker that does not answer a batch within `timeout`
    seconds (a batch takes milliseconds) is killed and replaced, like one that died."""

    def __init__(self, *, timeout: float = 30.0, command: list[str] | None = None) -> None:
        self.timeout = timeout
        self.command = command or [sys.executable, "-m", "fusioncell.record.checker"]
        self._proc: subprocess.Popen[bytes] | None = None
        self._kinds_sent = -1
        self._failed_at = float("-inf")
        self._wait = _RESTART_AFTER
        self._failures_in_a_row = 0
        self._lock = threading.Lock()
        self.batches = 0  # batches of submissions checked
        self.failures = 0

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            if time.monotonic() - self._failed_at < self._wait:
                raise CheckerUnavailable(f"the worker failed less than {self._wait:.0f} s ago")
            # Unbuffered: the answer is read straight from the pipe's descriptor, with a deadline.
            self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
            assert self._proc.stdin is not None and self._proc.stdout is not None
            os.set_blocking(self._proc.stdin.fileno(), False)
            for pipe in (self._proc.stdin, self._proc.stdout):
                # A batch's frame (~100-200 KB) in one write and one read, not in rounds of the default 64 KB.
                with contextlib.suppress(OSError, AttributeError):
                    fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            self._kinds_sent = -1
        return self._proc

    def start(self) -> None:
        """Start the worker now rather than on the first batch (it takes ~0.1 s to import its code)."""
        self.check(None, {}, [])

    def check(self, cell_id: str | None, kinds: Mapping[str, Authors], items: list[Any]) -> list[tuple[Any, ...]]:
        """The worker's results for items, or CheckerUnavailable."""
        with self._lock:
            try:
                proc = self._process()
                send_kinds = dict(kinds) if len(kinds) != self._kinds_sent else None
                frame = marshal.dumps((cell_id, send_kinds, items))
            except (OSError, ValueError) as exc:  # could not start; or a value marshal does not take
                if isinstance(exc, OSError):
                    self._fail()
                raise CheckerUnavailable(str(exc)) from exc
            try:
                assert proc.stdin is not None and proc.stdout is not None
                deadline = time.monotonic() + self.timeout
                _write_all(proc.stdin.fileno(), _frame(frame), deadline)
                out = proc.stdout.fileno()
                size = int.from_bytes(_read_exactly(out, _LENGTH, deadline), "big")
                results = marshal.loads(_read_exactly(out, size, deadline))
                if not isinstance(results, list) or len(results) != len(items):
                    raise EOFError("the worker answered out of protocol")
            except (OSError, EOFError, ValueError, TypeError) as exc:  # TimeoutError is an OSError
                self._fail()
                raise CheckerUnavailable(str(exc)) from exc
            if send_kinds is not None:
                self._kinds_sent = len(send_kinds)
            self.batches += bool(items)
            self._failures_in_a_row = 0
            return results

    def _fail(self) -> None:
        self._wait = min(_RESTART_MAX, _RESTART_AFTER * 2 ** self._failures_in_a_row)
        self._failures_in_a_row += 1
        self.failures += 1
        self._failed_at = time.monotonic()
        self._stop(kill=True)

    def _stop(self, *, kill: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if kill:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def close(self) -> None:
        with self._lock:
            self._stop(kill=False)


if __name__ == "__main__":
    _main()
