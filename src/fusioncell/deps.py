"""What routes depend on: the application's state, and who the caller is (session cookie or bearer token)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from fusioncell.cell import CellHandle
from fusioncell.errors import Forbidden, Unauthenticated
from fusioncell.hotline.service import ALLOWED_TYPES
from fusioncell.hotline.translate import Translator, translator_from_settings
from fusioncell.identity import service as identity_service
from fusioncell.identity.auth import RateLimiter, same
from fusioncell.identity.service import Viewer
from fusioncell.record.commit import GroupCommitter
from fusioncell.record.intake import Intake
from fusioncell.record.sequencer import Appended
from fusioncell.record.stream import Broadcaster

T = TypeVar("T")
COOKIE = "fc_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Settings:
    max_request_bytes: int = 1 << 20  # uploads of attachments have their own limit
    cookie_secure: bool = False  # also Secure whenever the request came over https
    login_attempts_per_minute: int = 10
    mbtiles: str | None = None  # an operator-supplied MBTiles basemap, served from this machine
    max_attachment_bytes: int = 10 << 20
    attachment_types: frozenset[str] = ALLOWED_TYPES
    deadline_interval: float | None = 1.0  # seconds between deadline checks; None: no background ticker
    mt_models: str | None = None  # a folder of Argos-format translation models (extra [mt]); none: no MT
    # Processes that check device-signed submissions (record/checker.py); 0: the intake's thread checks them.
    # `fusioncell serve` starts two per core.
    check_processes: int = 0


class ViewerCache:
    """Who a cookie or token stands for, remembered for a moment so each request does not read the database.
    Emptied at once by any identity entry (a member disabled, a key revoked, a token created) and by logout;
    the short lifetime bounds how late an expiry is noticed."""

    TTL = 2.0

    def __init__(self) -> None:
        self._items: dict[str, tuple[Viewer, float]] = {}
        self._lock = threading.Lock()
        # Bumped by every clear: a lookup that read the database before an identity entry was committed does
        # not put its (now possibly stale) answer in the cache after it.
        self.generation = 0

    def get(self, key: str) -> Viewer | None:
        with self._lock:
            found = self._items.get(key)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, key: str, viewer: Viewer, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            if len(self._items) > 10000:
                self._items.clear()
            self._items[key] = (viewer, time.monotonic() + self.TTL)

    def clear(self, *_args: Any) -> None:
        with self._lock:
            self._items.clear()
            self.generation += 1

    def on_commit(self, appended: list[Any], _head: Any) -> None:
        if any(entry.kind.startswith("identity.") for entry in appended):
            self.clear()


@dataclass
class AppState:
    cell: CellHandle
    committer: GroupCommitter
    broadcaster: Broadcaster
    settings: Settings
    limiter: RateLimiter = field(init=False)
    viewers: ViewerCache = field(init=False)
    translator: Translator = field(init=False)
    intake: Intake = field(init=False)
    authenticating: dict[tuple[Any, ...], asyncio.Future[Viewer]] = field(init=False)

    def __post_init__(self) -> None:
        self.translator = translator_from_settings(self.settings.mt_models)
        self.intake = Intake(self.cell.log, self.committer, processes=self.settings.check_processes)
        self.authenticating = {}
        self.limiter = RateLimiter(self.settings.login_attempts_per_minute, 60.0)
        self.viewers = ViewerCache()
        self.cell.log.listeners.append(self.viewers.on_commit)

    def write(self, work: Callable[[Session], T]) -> T:
        """Run a use case in the next group commit; returns once it is durable."""
        return self.committer.run(work)

    async def awrite(self, work: Callable[[Session], T]) -> T:
        """As write, from the event loop: the caller waits without holding a thread."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        done = _completions(loop)
        future = self.committer.submit(work)
        future.add_done_callback(lambda f: done.put(f, waiter))
        # A caller that goes away before its unit ran takes the unit with it (as asyncio.wrap_future did).
        waiter.add_done_callback(lambda w: future.cancel() if w.cancelled() else None)
        return await waiter

    async def aappend(self, *, submission: dict[str, Any], sig: str, body: dict[str, Any]) -> Appended:
        """A device-signed submission checked on the intake thread and appended in the next group commit;
        returns once it is durable, raises what refused it (nothing recorded then)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Appended] = loop.create_future()
        done = _completions(loop)
        self.intake.submit(submission=submission, sig=sig, body=body, done=lambda f: done.put(f, waiter))
        return await waiter

    def read(self, work: Callable[[Session], T]) -> T:
        with self.cell.db.read() as session:
            return work(session)


class _Completions:
    """Hands results of the commit thread to one event loop with one wake-up per batch of results, not one per
    unit: at hundreds of appends per second, a wake-up each (asyncio.wrap_future) costs the loop more than the
    appends' own handling."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[tuple[Future[Any], asyncio.Future[Any]]] = []

    def put(self, future: Future[Any], waiter: asyncio.Future[Any]) -> None:  # any thread
        with self._lock:
            self._ready.append((future, waiter))
            if len(self._ready) > 1:
                return  # a wake-up is already on its way and will take this one too
        try:
            self.loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closed: nobody waits any more
            with self._lock:
                self._ready.clear()

    def _deliver(self) -> None:  # on the loop
        with self._lock:
            ready, self._ready = self._ready, []
        for future, waiter in ready:
            if waiter.done():
                continue
            if future.cancelled():
                waiter.cancel()
            elif (exc := future.exception()) is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(future.result())


_COMPLETIONS: dict[asyncio.AbstractEventLoop, _Completions] = {}
_COMPLETIONS_LOCK = threading.Lock()


def _completions(loop: asyncio.AbstractEventLoop) -> _Completions:
    found = _COMPLETIONS.get(loop)
    if found is None:
        with _COMPLETIONS_LOCK:
            for old in [lp for lp in _COMPLETIONS if lp.is_closed()]:  # test clients come and go
                del _COMPLETIONS[old]
            found = _COMPLETIONS.setdefault(loop, _Completions(loop))
    return found


def state(request: Request) -> AppState:
    return request.app.state.fc


def _credential(authorization: str | None, cookie: str | None) -> str:
    """The cache key of what the caller sent: 't' + bearer token or 'c' + session cookie."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send 'Authorization: Bearer <token>'")
        return "t" + token.strip()
    if not cookie:
        raise Unauthenticated("log in first (POST /api/v1/auth/login), or send a bearer token")
    return "c" + cookie


def _authenticate(fc: AppState, credential: str) -> Viewer:
    """Who a credential stands for, read from the database (and remembered for ViewerCache.TTL)."""
    clock = fc.cell.log.clock
    secret = credential[1:]
    generation = fc.viewers.generation
    if credential[0] == "t":
        found = fc.read(lambda s: identity_service.authenticate_token(s, token=secret, clock=clock))
    else:
        found = fc.read(lambda s: identity_service.authenticate_session(s, cookie=secret, clock=clock))
    fc.viewers.put(credential, found, generation)
    return found


async def _authenticate_once(fc: AppState, credential: str) -> Viewer:
    """_authenticate on a thread, once for every request of the same credential that arrives meanwhile: when
    a busy client's cache entry expires, its concurrent requests wait for one read instead of each making it."""
    # Keyed by the cache's generation too: a request that arrives after an identity entry was committed never
    # joins a read that started before it.
    key = (asyncio.get_running_loop(), credential, fc.viewers.generation)
    pending = fc.authenticating.get(key)
    if pending is None:
        pending = fc.authenticating[key] = asyncio.ensure_future(run_in_threadpool(_authenticate, fc, credential))
        pending.add_done_callback(lambda _f: fc.authenticating.pop(key, None))
    return await asyncio.shield(pending)


def _viewer(fc: AppState, authorization: str | None, cookie: str | None) -> Viewer:
    credential = _credential(authorization, cookie)
    return fc.viewers.get(credential) or _authenticate(fc, credential)


async def viewer(request: Request) -> Viewer:
    """The authenticated caller. A cookie session must also send its CSRF token on every unsafe method.
    Async so that a caller the cache knows costs no thread hop; only a database read goes to a thread."""
    fc = state(request)
    credential = _credential(request.headers.get("authorization"), request.cookies.get(COOKIE))
    who = fc.viewers.get(credential) or await _authenticate_once(fc, credential)
    if who.via == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not sent or not same(sent, who.csrf or ""):
            raise Forbidden("missing or wrong CSRF token (header X-CSRF-Token)", code="csrf")
    return who


def websocket_viewer(ws: WebSocket) -> Viewer:
    fc: AppState = ws.app.state.fc
    origin = ws.headers.get("origin")
    if origin and ws.cookies.get(COOKIE) and origin.split("://", 1)[-1] != ws.headers.get("host"):
        raise Forbidden("cross-origin stream refused")
    return _viewer(fc, ws.headers.get("authorization"), ws.cookies.get(COOKIE))
