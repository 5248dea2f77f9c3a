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
from fusioncell.record.checks import Authors, Checked, check_signed

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
    seconds of being asked (a batch takes milliseconds) is killed and replaced, like one that died."""

    def __init__(self, *, timeout: float = 30.0, command: list[str] | None = None) -> None:
        self.timeout = timeout
        self.command = command or [sys.executable, "-m", "fusioncell.record.checker"]
        self._proc: subprocess.Popen[bytes] | None = None
        self._kinds_sent = -1
        self._sent: list[int] = []  # sizes of the batches sent and not yet received, oldest first
        self._output = bytearray()  # what the worker wrote and was not yet received
        self._generation = 0  # counts workers started: a ticket names the worker that has the batch
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
            self._sent.clear()
            self._output.clear()
            self._generation += 1
        return self._proc

    def start(self) -> None:
        """Start the worker now rather than on the first batch (it takes ~0.1 s to import its code)."""
        self.check(None, {}, [])

    def send(self, cell_id: str | None, kinds: Mapping[str, Authors], items: list[Any]) -> int:
        """Queue a batch on the worker and return at once (a ticket for `receive`), or CheckerUnavailable. A
        thread may send the next batch before it receives the last: the worker then starts it without waiting."""
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
                self._pump(proc, memoryview(_frame(frame)), 0, time.monotonic() + self.timeout)
            except (OSError, EOFError) as exc:  # TimeoutError is an OSError
                self._fail()
                raise CheckerUnavailable(str(exc)) from exc
            if send_kinds is not None:
                self._kinds_sent = len(send_kinds)
            self._sent.append(len(items))
            return self._generation

    def receive(self, ticket: int) -> list[tuple[Any, ...]]:
        """The results of the oldest batch sent and not yet received (whose ticket `send` gave), or
        CheckerUnavailable: the worker failed since (the batch died with it) or fails now."""
        with self._lock:
            if ticket != self._generation or not self._sent or self._proc is None:
                raise CheckerUnavailable("the worker that had this batch was replaced")
            count = self._sent.pop(0)
            try:
                deadline = time.monotonic() + self.timeout
                self._pump(self._proc, None, _LENGTH, deadline)
                size = _LENGTH + int.from_bytes(self._output[:_LENGTH], "big")
                self._pump(self._proc, None, size, deadline)
                payload = bytes(self._output[_LENGTH:size])
                del self._output[:size]
                results = marshal.loads(payload)
                if not isinstance(results, list) or len(results) != count:
                    raise EOFError("the worker answered out of protocol")
            except (OSError, EOFError, ValueError, TypeError) as exc:  # TimeoutError is an OSError
                self._fail()
                raise CheckerUnavailable(str(exc)) from exc
            self.batches += bool(count)
            self._failures_in_a_row = 0
            return results

    def check(self, cell_id: str | None, kinds: Mapping[str, Authors], items: list[Any]) -> list[tuple[Any, ...]]:
        """The worker's results for items (no other batch in flight), or CheckerUnavailable."""
        return self.receive(self.send(cell_id, kinds, items))

    def _pump(self, proc: subprocess.Popen[bytes], data: memoryview | None, need: int, deadline: float) -> None:
        """Write all of data to the worker and read its output until `need` bytes of it are held, or EOFError when
        it closes its output, TimeoutError at the deadline. Output is read while writing too: a worker that writes
        the answer to the batch before blocks, with a full pipe, until it is read, and reads nothing meanwhile."""
        assert proc.stdin is not None and proc.stdout is not None
        fd_in, fd_out = proc.stdin.fileno(), proc.stdout.fileno()
        output = self._output
        while (data is not None and len(data)) or len(output) < need:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError("the worker did not answer in time" if not data else "the worker did not read")
            # poll, not select: select refuses descriptors above 1023, which a busy server's pipes may have.
            poller = select.poll()
            poller.register(fd_out, select.POLLIN)
            if data is not None and len(data):
                poller.register(fd_in, select.POLLOUT)
            for fd, _event in poller.poll(wait * 1000):
                if fd == fd_out:
                    chunk = os.read(fd_out, 1 << 20)
                    if not chunk:
                        raise EOFError("the worker closed its output")
                    output += chunk
                elif data is not None:
                    try:
                        data = data[os.write(fd_in, data):]
                    except BlockingIOError:
                        continue

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


def checked(result: tuple[Any, ...], sent: dict[str, Any]) -> Checked:
    """A worker's passed result, for the body `sent`, as record.checks returns it."""
    _ok, body, body_bytes, sub_bytes, sig_json, verified = result
    return Checked(sent if body is None else body, body_bytes, sub_bytes, sig_json, verified)


if __name__ == "__main__":
    _main()
