"""Hotline pages: inbox, thread with one-action acknowledgement, compose with the template picker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from fusioncell.clock import parse_time
from fusioncell.deps import state
from fusioncell.errors import FusioncellError
from fusioncell.geo import service as geo_service
from fusioncell.hotline import service as hotline_service
from fusioncell.hotline import templates
from fusioncell.hotline.kinds import PRECEDENCES
from fusioncell.identity import service as identity_service
from fusioncell.identity.service import Viewer
from fusioncell.web import attention, i18n
from fusioncell.web.routes import (
    ALERTS,
    check_form_csrf,
    language_for,
    page_viewer,
    render,
)

router = APIRouter(include_in_schema=False)


@router.get("/hotline")
def inbox(request: Request) -> HTMLResponse:
    viewer = page_viewer(request)
    threads = state(request).read(lambda s: hotline_service.inbox(s, viewer=viewer))
    return render(request, "hotline_inbox.html", viewer, threads=threads)


@router.get("/hotline/threads/{thread_id}")
def thread(request: Request, thread_id: str) -> HTMLResponse:
    viewer = page_viewer(request)
    fc = state(request)
    language = language_for(request, viewer)
    found, views = fc.read(lambda s: hotline_service.thread_view(s, viewer=viewer, thread_id=thread_id,
                                                                 language=language, translator=fc.translator))
    # Opening the thread is reading it: a signed "read" receipt for every message not yet marked.
    for view in views:
        if view.message.party != viewer.party and not any(r.member == viewer.member and r.status == "read"
                                                          for r in view.receipts):
            fc.write(lambda s, seq=view.message.seq: hotline_service.record_receipt(
                s, log=fc.cell.log, kek=fc.cell.kek, viewer=viewer, seq=seq, status="read"))
    return render(request, "hotline_thread.html", viewer, thread=found, views=views, precedences=PRECEDENCES,
                  form={}, errors={})


@router.post("/hotline/messages/{seq}/ack")
async def ack(request: Request, seq: int) -> Response:
    viewer = page_viewer(request)
    form = await request.form()
    check_form_csrf(viewer, str(form.get("csrf_token", "")))
    fc = state(request)
    language = language_for(request, viewer)
    await fc.awrite(lambda s: hotline_service.acknowledge(s, log=fc.cell.log, kek=fc.cell.kek, viewer=viewer,
                                                          seq=seq, reply=str(form.get("reply", "")), lang=language))
    return RedirectResponse(str(form.get("next") or "/hotline"), status_code=303)


def _compose_context(request: Request, viewer: Any, form: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    fc = state(request)
    parties = fc.read(lambda s: identity_service.list_parties(s))
    places = fc.read(lambda s: geo_service.search_places(s, query="", limit=500))
    code = form.get("template") or ""
    return {"parties": [p for p in parties if p.id != viewer.party], "places": places, "catalog": templates.catalog(),
            "chosen": templates.catalog().get(code), "precedences": PRECEDENCES, "form": form, "errors": errors}


@router.get("/hotline/new")
def compose(request: Request, template: str = "") -> HTMLResponse:
    viewer = page_viewer(request)
    form = {"template": template, "precedence": "ROUTINE", "to": []}
    return render(request, "hotline_compose.html", viewer, **_compose_context(request, viewer, form, {}))


@router.get("/hotline/fields")
def template_fields(request: Request, template: str = "") -> HTMLResponse:
    """The fields of the chosen template (htmx fragment of the compose form)."""
    viewer = page_viewer(request)
    return render(request, "_template_fields.html", viewer,
                  **_compose_context(request, viewer, {"template": template}, {}))


@router.post("/hotline/new")
async def compose_submit(request: Request) -> Response:
    viewer = page_viewer(request)
    data = await request.form()
    check_form_csrf(viewer, str(data.get("csrf_token", "")))
    fc = state(request)
    i18n.activate(language_for(request, viewer))
    _ = i18n._
    form: dict[str, Any] = {k: str(v) for k, v in data.items() if k not in ("csrf_token", "to")}
    form["to"] = [str(v) for v in data.getlist("to")]
    code = form.get("template") or None
    chosen = templates.catalog().get(code or "")
    fields = {f.name: form.get(f"field_{f.name}", "") for f in chosen.fields} if chosen else {}
    errors: dict[str, str] = {}
    if not form.get("subject", "").strip():
        errors["subject"] = _("Give the message a subject.")
    if not form["to"] and not form.get("thread"):
        errors["to"] = _("Choose at least one party to address.")
    if not code and not form.get("text", "").strip():
        errors["text"] = _("Write a message, or choose a coded template.")
    if not errors:
        try:
            body = hotline_service.compose_body(
                precedence=form.get("precedence", "ROUTINE"), subject=form.get("subject", ""),
                thread=form.get("thread") or None, template_code=code, fields=fields, text=form.get("text"),
                lang=language_for(request, viewer))
            entry = await fc.awrite(lambda s: hotline_service.send_message(
                s, log=fc.cell.log, kek=fc.cell.kek, viewer=viewer, audience=form["to"], body=body))
            thread_id = form.get("thread") or entry.leaf_hash.hex()
            return RedirectResponse(f"/hotline/threads/{thread_id}", status_code=303)
        except FusioncellError as exc:
            field = next((f.name for f in (chosen.fields if chosen else ()) if f"field {f.name}" in exc.message),
                         None)
            errors[f"field_{field}" if field else "form"] = _field_error(exc)
    return render(request, "hotline_compose.html", viewer, status=400,
                  **_compose_context(request, viewer, form, errors))


def _field_error(exc: FusioncellError) -> str:
    _ = i18n._
    return {
        "unknown_place": _("This place is not in the gazetteer. Pick one from the list."),
        "bad_field": _("This value is not valid: %(detail)s", detail=exc.message),
        "missing_field": _("This field is required."),
    }.get(exc.code, exc.message)


@attention.provider
def _owed(session: Session, viewer: Viewer, now: datetime) -> list[attention.Attention]:
    """Messages waiting for this party's acknowledgement, and (for the supervisor) every missed deadline."""
    _ = i18n._
    items = []
    owed = hotline_service.owed_by(session, viewer=viewer)
    missed = hotline_service.missed_for(session, viewer=viewer) if "supervisor" in viewer.roles else []
    messages = hotline_service.messages_by_seq(session, seqs=[d.source_seq for d in owed + missed])
    for deadline in owed:
        message = messages.get(deadline.source_seq)
        if message is None:
            continue
        severity = {"FLASH": 3, "IMMEDIATE": 2}.get(message.precedence, 1)
        items.append(attention.Attention(
            _("%(precedence)s message from %(party)s awaits your acknowledgement", precedence=message.precedence,
              party=message.party),
            message.body.get("subject", ""), f"/hotline/threads/{message.thread}#m{message.seq}",
            parse_time(deadline.due_at), severity))
    for deadline in missed:
        message = messages.get(deadline.source_seq)
        items.append(attention.Attention(
            _("%(party)s missed the deadline to acknowledge entry %(seq)s", party=deadline.party,
              seq=deadline.source_seq),
            message.body.get("subject", "") if message else "",
            f"/hotline/threads/{message.thread}#m{message.seq}" if message else f"/records/{deadline.source_seq}",
            parse_time(deadline.due_at), 2))
    return items


def _flash_alert(item: dict[str, Any], viewer: Viewer) -> str | None:
    entry = item.get("entry")
    if not entry or entry["submission"]["kind"] != "hotline.message" or entry["submission"]["party"] == viewer.party:
        return None
    if item["body"].get("precedence") != "FLASH":
        return None
    return i18n._("FLASH message from %(party)s: %(subject)s", party=entry["submission"]["party"],
                  subject=item["body"].get("subject", ""))


ALERTS.append(_flash_alert)
