"""The HTTP application: the API under /api/v1 and (later) the web pages, over the same services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fusioncell.cell import CellHandle
from fusioncell.deps import AppState, Settings
from fusioncell.errors import FusioncellError
from fusioncell.record.commit import GroupCommitter
from fusioncell.record.stream import Broadcaster
from fusioncell.web import routes as web_routes
from fusioncell.web.routes import LoginRequired

if TYPE_CHECKING:
    import uvicorn

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """RFC 9457 problem details with our stable code."""
    body = {"type": f"urn:fusioncell:problem:{code}", "title": code.replace("_", " "), "status": status,
            "detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


UPLOAD_PATHS = {"/api/v1/attachments", "/hotline/attachments", "/incidents"}  # /incidents: with evidence


class SizeLimit:
    """Refuse request bodies over the configured size before they are read into memory."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] in UPLOAD_PATHS else self.limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _Oversize
            return message

        try:
            await self.app(scope, counted, send)
        except _Oversize:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(413, "too_large", f"request body over the limit of {limit} bytes")
        await response(scope, receive, send)


class _Oversize(Exception):
    pass


SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """CSP and friends on every response (plain ASGI: no per-request task group)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"cache-control"]
                static = scope["path"].startswith("/static/")
                extra = [] if static else [(b"cache-control", b"no-store")]
                cache = [h for h in message.get("headers", []) if h[0] == b"cache-control"] if static else []
                message["headers"] = headers + cache + extra + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    """The busiest routes served straight from the middleware stack, past FastAPI's routing, dependency and
    exception machinery, which costs more per request than a durable append's own handling on the event loop.
    Each endpoint takes the Request and returns a Response; what it raises is turned into an answer by the
    application's own exception handlers, so errors are the same problem+json as on every other route. The
    routes stay declared in FastAPI as well (OpenAPI, and the same endpoint function). Inside SizeLimit and
    SecurityHeaders, so both apply."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.routes.get((scope.get("method", ""), scope["path"])) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(scope["app"], exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    @staticmethod
    def _handler(app: FastAPI, exc: Exception) -> Any:
        for cls in type(exc).__mro__:
            if cls in app.exception_handlers:
                return app.exception_handlers[cls]
        return None


def server_config(app: ASGIApp, *, host: str, port: int) -> uvicorn.Config:
    """How `fusioncell serve` runs the application (and bench/ its baselines): one uvicorn worker, on httptools
    and uvloop (dependencies of fusioncell; uvicorn's "auto" falls back to h11 and asyncio where they are
    missing), without an access log (it would cost a log record per request)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)


def create_app(cell: CellHandle, *, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    broadcaster = Broadcaster()
    committer = GroupCommitter(cell.db, cell.log)
    cell.log.listeners.append(broadcaster)
    follower = None
    if cell.db.dialect == "postgresql":
        from fusioncell.record.notify import Follower

        follower = Follower(cell.db, cell.log)  # other workers' entries reach this worker's streams

    from fusioncell.incidents.service import linker
    from fusioncell.notices.service import checker

    cell.log.listeners.append(checker(committer, cell.log))
    cell.log.listeners.append(linker(committer, cell.log))
    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        # The deadline engine runs while the server runs (started here, not at import or in a bare app object).
        ticker = None
        if settings.deadline_interval:
            from fusioncell.deadlines.engine import Ticker

            ticker = Ticker(committer, cell.log, interval=settings.deadline_interval)
        yield
        if ticker is not None:
            ticker.close()
        _app.state.fc.intake.close()
        committer.close()
        if follower is not None:
            follower.close()

    app = FastAPI(title="fusioncell", version="1", openapi_url="/api/v1/openapi.json", docs_url=None,
                  redoc_url=None, lifespan=lifespan)
    app.state.fc = AppState(cell, committer, broadcaster, settings)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if request.url.path.startswith("/events") or request.url.path.startswith("/map/layers"):
            return problem(401, "unauthenticated", "log in first")
        return web_routes.login_redirect(request)

    @app.exception_handler(FusioncellError)
    async def _fusioncell_error(request: Request, exc: FusioncellError) -> Response:
        if not request.url.path.startswith("/api/"):
            return await run_in_threadpool(web_routes.error_page, request, exc.status if exc.status < 500 else 400,
                                           exc.message)
        response = problem(exc.status, exc.code, exc.message)
        if hasattr(exc, "retry_after"):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            if err["type"] == "json_invalid":
                errors.append({"field": "body", "message": f"body is not valid JSON ({err['ctx'].get('error', '')})"})
            else:
                field = ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0])
                errors.append({"field": field, "message": err["msg"]})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "invalid_request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if not request.url.path.startswith("/api/"):
            from fusioncell.web.i18n import _

            return await run_in_threadpool(web_routes.error_page, request, exc.status_code,
                                           _("There is no such page.") if exc.status_code == 404 else str(exc.detail))
        return problem(exc.status_code, code, str(exc.detail))

    from fusioncell.hotline.routes import router as hotline_router
    from fusioncell.identity.routes import router as identity_router
    from fusioncell.record.routes import router as record_router

    app.include_router(identity_router)
    app.include_router(record_router)
    app.include_router(hotline_router)
    from fusioncell.notices.routes import router as notices_router

    app.include_router(notices_router)
    from fusioncell.incidents.routes import router as incidents_router

    app.include_router(incidents_router)
    from fusioncell.disputes.routes import router as disputes_router

    app.include_router(disputes_router)
    import fusioncell.web.geo  # noqa: F401  registers the map layers
    from fusioncell.web.disputes import router as dispute_pages
    from fusioncell.web.hotline import router as hotline_pages
    from fusioncell.web.incidents import router as incident_pages
    from fusioncell.web.notices import router as notice_pages

    app.include_router(hotline_pages)
    app.include_router(notice_pages)
    app.include_router(incident_pages)
    app.include_router(dispute_pages)
    app.include_router(web_routes.router)
    app.mount("/static", StaticFiles(directory=web_routes.STATIC_DIR), name="static")

    from fusioncell.record.routes import post_record

    app.add_middleware(DirectRoutes, routes={("POST", "/api/v1/records"): post_record})
    app.add_middleware(SizeLimit, limit=settings.max_request_bytes,
                       upload_limit=settings.max_attachment_bytes + (64 << 10))
    app.add_middleware(SecurityHeaders)
    return app
