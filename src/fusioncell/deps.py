"""What routes depend on: the application's state, and who the caller is (session cookie or bearer token)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request, WebSocket
from sqlalchemy.orm import Session

from fusioncell.cell import CellHandle
from fusioncell.errors import Forbidden, Unauthenticated
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
    deadline_interval: float | None = 1.0  # seconds between deadline checks; None: no background ticker


@dataclass
class AppState:
    cell: CellHandle
    committer: GroupCommitter
    broadcaster: Broadcaster
    settings: Settings
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.login_attempts_per_minute, 60.0)

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
        return fc.read(lambda s: identity_service.authenticate_token(s, token=token.strip(), clock=clock))
    if not cookie:
        raise Unauthenticated("log in first (POST /api/v1/auth/login), or send a bearer token")
    return fc.read(lambda s: identity_service.authenticate_session(s, cookie=cookie, clock=clock))


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
