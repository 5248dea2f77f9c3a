"""What routes depend on: the application's state, and who the caller is (session cookie or bearer token)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request, WebSocket
from sqlalchemy.orm import Session

from fusioncell.cell import CellHandle
from fusioncell.errors import Forbidden, Unauthenticated
from fusioncell.hotline.service import ALLOWED_TYPES
from fusioncell.hotline.translate import Translator, translator_from_settings
from fusioncell.identity import service as identity_service
from fusioncell.identity.auth import RateLimiter, same
from fusioncell.identity.service import Viewer
from fusioncell.record.commit import GroupCommitter
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


class ViewerCache:
    """Who a cookie or token stands for, remembered for a moment so each request does not read the database.
    Emptied at once by any identity entry (a member disabled, a key revoked, a token created) and by logout;
    the short lifetime bounds how late an expiry is noticed."""

    TTL = 2.0

    def __init__(self) -> None:
        self._items: dict[str, tuple[Viewer, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Viewer | None:
        with self._lock:
            found = self._items.get(key)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, key: str, viewer: Viewer) -> None:
        with self._lock:
            if len(self._items) > 10000:
                self._items.clear()
            self._items[key] = (viewer, time.monotonic() + self.TTL)

    def clear(self, *_args: Any) -> None:
        with self._lock:
            self._items.clear()

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

    def __post_init__(self) -> None:
        self.translator = translator_from_settings(self.settings.mt_models)
        self.limiter = RateLimiter(self.settings.login_attempts_per_minute, 60.0)
        self.viewers = ViewerCache()
        self.cell.log.listeners.append(self.viewers.on_commit)

    def write(self, work: Callable[[Session], T]) -> T:
        """Run a use case in the next group commit; returns once it is durable."""
        return self.committer.run(work)

    async def awrite(self, work: Callable[[Session], T]) -> T:
        return await asyncio.wrap_future(self.committer.submit(work))

    def read(self, work: Callable[[Session], T]) -> T:
        with self.cell.db.read() as session:
            return work(session)


def state(request: Request) -> AppState:
    return request.app.state.fc


def _viewer(fc: AppState, authorization: str | None, cookie: str | None) -> Viewer:
    clock = fc.cell.log.clock
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send 'Authorization: Bearer <token>'")
        key = "t" + token.strip()
        found = fc.viewers.get(key)
        if found is None:
            found = fc.read(lambda s: identity_service.authenticate_token(s, token=token.strip(), clock=clock))
            fc.viewers.put(key, found)
        return found
    if not cookie:
        raise Unauthenticated("log in first (POST /api/v1/auth/login), or send a bearer token")
    key = "c" + cookie
    found = fc.viewers.get(key)
    if found is None:
        found = fc.read(lambda s: identity_service.authenticate_session(s, cookie=cookie, clock=clock))
        fc.viewers.put(key, found)
    return found


def viewer(request: Request) -> Viewer:
    """The authenticated caller. A cookie session must also send its CSRF token on every unsafe method."""
    fc = state(request)
    who = _viewer(fc, request.headers.get("authorization"), request.cookies.get(COOKIE))
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
