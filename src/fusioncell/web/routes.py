"""The web pages: server-rendered (Jinja2 + htmx) over the same services as the API. Routes never query."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from jinja2 import Environment, PackageLoader, select_autoescape

from fusioncell.clock import format_time
from fusioncell.deps import COOKIE, AppState, _viewer, state
from fusioncell.errors import FusioncellError, NotFound, RateLimited, Unauthenticated
from fusioncell.identity import service as identity_service
from fusioncell.identity.auth import new_secret, same
from fusioncell.identity.service import Viewer
from fusioncell.record import service as record_service
from fusioncell.web import assets, attention, i18n, layers
from fusioncell.web.i18n import _, ngettext

router = APIRouter(include_in_schema=False)
LANG_COOKIE = "fc_lang"
PRELOGIN_COOKIE = "fc_prelogin"
PAGE = 50

env = Environment(loader=PackageLoader("fusioncell.web"), autoescape=select_autoescape(["html"]),
                  extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
env.install_gettext_callables(gettext=_, ngettext=ngettext, newstyle=True)  # type: ignore[attr-defined]
env.globals["languages"] = i18n.LANGUAGES


class LoginRequired(Exception):
    """Raised by page routes without a valid session: the app redirects to the login page."""


def _party_language(fc: AppState, viewer: Viewer | None) -> str | None:
    if viewer is None:
        return None
    party = fc.read(lambda s: identity_service.access_party(s, party_id=viewer.party))
    return next((lang for lang in party.languages if lang in i18n.LANGUAGES), None)


def language_for(request: Request, viewer: Viewer | None) -> str:
    """The member's choice, else their party's language, else the browser's."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    return _party_language(state(request), viewer) or i18n.negotiate(request.headers.get("accept-language"))


def page_viewer(request: Request) -> Viewer:
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise LoginRequired
    try:
        return _viewer(state(request), None, cookie)
    except Unauthenticated as exc:
        raise LoginRequired from exc


def check_form_csrf(viewer: Viewer, token: str) -> None:
    if not token or not same(token, viewer.csrf or ""):
        raise FusioncellError(_("This form has expired. Reload the page and try again."), code="csrf")


def render(request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    language = language_for(request, viewer)
    i18n.activate(language)
    fc = state(request)
    html = env.get_template(template).render(
        request=request, viewer=viewer, lang=language, dir=i18n.direction(language),
        csrf=viewer.csrf if viewer else context.pop("prelogin", ""), path=request.url.path,
        now=format_time(fc.cell.log.clock.now()), **context)
    return HTMLResponse(html, status_code=status)


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


# -- login, logout, language ---------------------------------------------------------------------------

@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    token = request.cookies.get(PRELOGIN_COOKIE) or new_secret()
    response = render(request, "login.html", None, prelogin=token, next=_safe_next(next), form={}, errors={})
    response.set_cookie(PRELOGIN_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.post("/login")
def login_submit(request: Request, member: str = Form(""), password: str = Form(""), totp: str = Form(""),
                 csrf_token: str = Form(""), next: str = Form("/")) -> Response:
    fc = state(request)
    prelogin = request.cookies.get(PRELOGIN_COOKIE, "")
    form = {"member": member, "totp": ""}
    i18n.activate(language_for(request, None))
    errors: dict[str, str] = {}
    if not prelogin or not same(csrf_token, prelogin):
        errors["form"] = _("This form has expired. Reload the page and try again.")
    if not member.strip():
        errors["member"] = _("Enter your member id, for example sy/liaison-1.")
    if not password:
        errors["password"] = _("Enter your password.")
    if not errors:
        wait = fc.limiter.hit(request.client.host if request.client else "?")
        if wait:
            errors["form"] = _("Too many attempts. Try again in %(seconds)s seconds.", seconds=int(wait) + 1)
    if not errors:
        attempt = fc.write(lambda s: identity_service.login(s, log=fc.cell.log, kek=fc.cell.kek,
                                                             member_id=member.strip(), password=password,
                                                             totp_code=totp or None))
        if attempt.error is None:
            response = RedirectResponse(_safe_next(next), status_code=303)
            response.set_cookie(COOKIE, attempt.cookie, httponly=True, samesite="strict", path="/",
                                secure=fc.settings.cookie_secure or request.url.scheme == "https",
                                max_age=identity_service.SESSION_HOURS * 3600)
            return response
        if isinstance(attempt.error, RateLimited):
            errors["form"] = _("Too many failed logins: this member is locked for a while. Try again later.")
        elif "second factor" in attempt.error.message:
            errors["totp"] = _("Your party requires a code from your authenticator app.")
        else:
            errors["form"] = _("Member id, password or code is wrong.")
    return render(request, "login.html", None, status=400, prelogin=prelogin, next=_safe_next(next),
                  form=form, errors=errors)


@router.post("/logout")
def logout_submit(request: Request, csrf_token: str = Form("")) -> Response:
    viewer = page_viewer(request)
    check_form_csrf(viewer, csrf_token)
    fc = state(request)
    cookie = request.cookies.get(COOKIE, "")
    fc.write(lambda s: identity_service.logout(s, cookie=cookie, clock=fc.cell.log.clock))
    fc.viewers.clear()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/lang")
def choose_language(request: Request, lang: str = Form(""), csrf_token: str = Form(""),
                    next: str = Form("/")) -> Response:
    expected = request.cookies.get(PRELOGIN_COOKIE, "")
    if request.cookies.get(COOKIE):
        expected = page_viewer(request).csrf or ""
    if not expected or not same(csrf_token, expected):
        raise FusioncellError(_("This form has expired. Reload the page and try again."), code="csrf")
    response = RedirectResponse(_safe_next(next), status_code=303)
    if lang in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, samesite="strict", path="/", max_age=365 * 86400)
    return response


# -- pages ---------------------------------------------------------------------------------------------

@router.get("/")
def home(request: Request) -> HTMLResponse:
    viewer = page_viewer(request)
    fc = state(request)
    language = language_for(request, viewer)
    i18n.activate(language)

    def load(session: Any) -> dict[str, Any]:
        return {
            "items": attention.collect(session, viewer, fc.cell.log.clock.now()),
            "recent": record_service.recent_records(session, viewer=viewer, before=None, limit=10),
            "head": record_service.latest_head(session),
            "members": {m.id: m for m in identity_service.list_members(session)},
        }

    return render(request, "home.html", viewer, **fc.read(load))


@router.get("/records")
def records_page(request: Request, before: int | None = None, kind: str | None = None) -> HTMLResponse:
    viewer = page_viewer(request)
    fc = state(request)
    rows = fc.read(lambda s: record_service.recent_records(s, viewer=viewer, before=before, limit=PAGE,
                                                           kind=kind or None))
    older = rows[-1]["seq"] if len(rows) == PAGE else None
    kinds = fc.read(lambda s: record_service.visible_kinds(s, viewer=viewer))
    head = fc.read(record_service.latest_head)
    return render(request, "records.html", viewer, rows=rows, older=older, kind=kind or "", kinds=kinds, head=head)


@router.get("/records/{seq}")
def record_page(request: Request, seq: int) -> HTMLResponse:
    viewer = page_viewer(request)
    fc = state(request)
    detail = fc.read(lambda s: record_service.entry_detail(s, log=fc.cell.log, viewer=viewer, seq=seq))
    return render(request, "record.html", viewer, d=detail, seq=seq, others=respondents(fc, viewer))


def respondents(fc: AppState, viewer: Viewer) -> list[str]:
    """Whom the member may raise a dispute against: the other parties (not the supervisor, who mediates)."""
    return fc.read(lambda s: [p.id for p in identity_service.list_parties(s)
                              if p.role == "party" and p.id != viewer.party])


@router.get("/map")
def map_page(request: Request) -> HTMLResponse:
    viewer = page_viewer(request)
    return render(request, "map.html", viewer, tiles=bool(state(request).settings.mbtiles))


@router.get("/map/layers.json")
def map_layers(request: Request) -> Response:
    viewer = page_viewer(request)
    i18n.activate(language_for(request, viewer))
    found = state(request).read(lambda s: layers.collect(s, viewer))
    return Response(json.dumps({"layers": [layer.geojson() for layer in found]}, ensure_ascii=False),
                    media_type="application/geo+json")


@router.get("/tiles/{z}/{x}/{y}.png")
def tile(request: Request, z: int, x: int, y: int) -> Response:
    """Tiles of an operator-supplied MBTiles file, served from this machine."""
    page_viewer(request)
    path = state(request).settings.mbtiles
    if not path:
        raise NotFound("no tile file configured")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                           (z, x, (1 << z) - 1 - y)).fetchone()
    if row is None:
        return Response(status_code=204)
    return Response(row[0], media_type="image/png", headers={"Cache-Control": "max-age=86400"})


@router.get("/static/vendor/{name:path}")
def vendor(name: str) -> FileResponse:
    path = assets.vendor_path(name)
    if path is None:
        raise NotFound(f"{name} is not installed: run the setup step (npm ci)")
    media = "application/json" if name.endswith(".json") else None
    return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=3600"})


# -- live ----------------------------------------------------------------------------------------------

# Functions that turn a live entry into an alert for this member (e.g. a FLASH message), or None.
ALERTS: list[Callable[[dict[str, Any], Viewer], str | None]] = []


def _row_html(request: Request, viewer: Viewer, item: dict[str, Any]) -> str:
    i18n.activate(language_for(request, viewer))
    return env.get_template("_record_row.html").render(row=item, viewer=viewer, live=True)


@router.get("/events")
async def events(request: Request) -> StreamingResponse:
    """Server-sent events: each entry the member may see, as a table row in their language."""
    viewer = page_viewer(request)
    fc = state(request)
    sub = fc.broadcaster.subscribe()
    resume = request.headers.get("last-event-id") or request.query_params.get("after")
    last = int(resume) if resume and resume.lstrip("-").isdigit() else None

    def event(item: dict[str, Any]) -> str:
        submission = item.get("entry", {}).get("submission", {})
        payload = {"seq": item["seq"], "html": _row_html(request, viewer, item), "kind": submission.get("kind")}
        if submission.get("kind") == "hotline.message" and submission.get("party") != viewer.party:
            payload["deliver"] = True  # the page confirms receipt: a signed "delivered" receipt
        alerts = [text for alert in ALERTS if (text := alert(item, viewer))]
        if alerts:
            payload["alert"] = alerts[0]
        return f"id: {item['seq']}\nevent: entry\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"

    async def stream():  # noqa: ANN202
        nonlocal last
        try:
            yield "retry: 3000\n\n"
            if last is not None:
                backlog = fc.read(lambda s: record_service.list_records(s, viewer=viewer, after=last, limit=200))
                for item in backlog:
                    yield event(item)
                    last = item["seq"]
            while not await request.is_disconnected():
                try:
                    batch = await asyncio.wait_for(sub.queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                head = batch.head
                for entry in batch.appended:
                    if last is not None and entry.seq <= last:
                        continue
                    yield event(record_service.view_of(entry, viewer.party))
                    last = entry.seq
                if head is not None:
                    yield f"event: head\ndata: {json.dumps(head['tree_head'])}\n\n"
        finally:
            fc.broadcaster.unsubscribe(sub)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    viewer = None
    try:
        viewer = page_viewer(request)
    except LoginRequired:
        pass
    return render(request, "error.html", viewer, status=status, message=message)


STATIC_DIR = Path(__file__).parent / "static"
