"""Dispute pages: the list, each dispute with its state, the step owed and its deadline, and the member's next
action; the form to raise one; the bundle that proves it offline. Open disputes also show on the home page."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from fusioncell.clock import parse_time
from fusioncell.deps import state
from fusioncell.disputes import service as dispute_service
from fusioncell.errors import FusioncellError
from fusioncell.identity.service import Viewer
from fusioncell.web import attention, i18n
from fusioncell.web.routes import check_form_csrf, language_for, page_viewer, render

router = APIRouter(include_in_schema=False)


def labels() -> dict[str, str]:
    """States and steps in the reader's language."""
    _ = i18n._
    return {
        "raised": _("raised"), "answered": _("answered"), "in_mediation": _("in mediation"), "ruled": _("ruled"),
        "complied": _("complied with"), "referred": _("referred to a higher level"), "withdrawn": _("withdrawn"),
        "settled": _("settled by agreement"),
        "answer": _("Answer"), "mediate": _("Take into mediation"), "rule": _("Rule"), "comply": _("Comply"),
        "refer": _("Refer to a higher level"), "withdraw": _("Withdraw"), "settle": _("Agree to settle"),
    }


@router.get("/disputes")
def disputes_page(request: Request) -> HTMLResponse:
    viewer = page_viewer(request)
    fc = state(request)
    i18n.activate(language_for(request, viewer))
    rows = fc.read(lambda s: dispute_service.dispute_rows(s, viewer=viewer))
    return render(request, "disputes.html", viewer, rows=rows, labels=labels())


@router.get("/disputes/{seq}")
def dispute_page(request: Request, seq: int) -> HTMLResponse:
    viewer = page_viewer(request)
    return _dispute_page(request, viewer, seq, {}, {})


def _dispute_page(request: Request, viewer: Viewer, seq: int, form: dict[str, Any], errors: dict[str, str],
                  status: int = 200) -> HTMLResponse:
    fc = state(request)
    i18n.activate(language_for(request, viewer))
    view = fc.read(lambda s: dispute_service.dispute_view(s, log=fc.cell.log, viewer=viewer, seq=seq))
    return render(request, "dispute.html", viewer, status=status, v=view, d=view["dispute"], seq=seq,
                  labels=labels(), form=form, errors=errors)


@router.post("/disputes")
async def raise_dispute(request: Request) -> Response:
    viewer = page_viewer(request)
    data = {k: str(v) for k, v in (await request.form()).items()}
    check_form_csrf(viewer, data.get("csrf_token", ""))
    language = language_for(request, viewer)
    i18n.activate(language)
    about = [int(s) for s in data.get("about", "").replace(",", " ").split() if s.isdigit()]
    claim, remedy = data.get("claim", "").strip(), data.get("remedy", "").strip()
    fc = state(request)
    try:
        if not about or not claim or not remedy:
            raise FusioncellError(i18n._("A dispute needs the entries it is about, your claim and the remedy you "
                                         "ask for."), code="incomplete")
        raised = await fc.awrite(lambda s: dispute_service.raise_dispute(
            s, log=fc.cell.log, kek=fc.cell.kek, viewer=viewer, about=about, respondent=data.get("respondent", ""),
            claim={"lang": language, "text": claim}, remedy={"lang": language, "text": remedy}))
    except FusioncellError as exc:
        return render(request, "error.html", viewer, status=400, message=exc.message,
                      back=f"/incidents/{about[0]}" if about else "/disputes")
    return RedirectResponse(f"/disputes/{raised.seq}", status_code=303)


@router.post("/disputes/{seq}/steps")
async def take_step(request: Request, seq: int) -> Response:
    viewer = page_viewer(request)
    data = {k: str(v) for k, v in (await request.form()).items()}
    check_form_csrf(viewer, data.get("csrf_token", ""))
    language = language_for(request, viewer)
    i18n.activate(language)
    text = data.get("text", "").strip()
    if not text:
        return _dispute_page(request, viewer, seq, data, {"text": i18n._("Say why: this field is required.")}, 400)
    fc = state(request)
    try:
        await fc.awrite(lambda s: dispute_service.take_step(s, log=fc.cell.log, kek=fc.cell.kek, viewer=viewer,
                                                             seq=seq, action=data.get("action", ""),
                                                             text={"lang": language, "text": text}))
    except FusioncellError as exc:
        return _dispute_page(request, viewer, seq, data, {"form": exc.message}, 400)
    return RedirectResponse(f"/disputes/{seq}", status_code=303)


@router.get("/disputes/{seq}/bundle")
def download_bundle(request: Request, seq: int) -> Response:
    viewer = page_viewer(request)
    fc = state(request)
    out = io.BytesIO()
    fc.read(lambda s: dispute_service.write_bundle(s, log=fc.cell.log, party=viewer.party, seq=seq, out=out))
    return Response(out.getvalue(), media_type="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="dispute-{seq}.jsonl"'})


@attention.provider
def _open_disputes(session: Session, viewer: Viewer, now: datetime) -> list[attention.Attention]:
    _ = i18n._
    names = labels()
    items = []
    for row in dispute_service.dispute_rows(session, viewer=viewer):
        dispute, actions = row["dispute"], row["next_actions"]
        if row["closed"]:
            continue
        due = row["owed"][0].due_at if row["owed"] else None
        title = _("Dispute %(seq)s between %(raiser)s and %(respondent)s is %(state)s", seq=dispute.seq,
                  raiser=dispute.raiser, respondent=dispute.respondent, state=names[dispute.state])
        detail = _("Your next step: %(steps)s", steps=", ".join(names[a] for a in actions)) if actions else ""
        items.append(attention.Attention(title, detail, f"/disputes/{dispute.seq}",
                                         parse_time(due) if due else None, 2 if actions else 1))
    return items
