"""HTTP API of the hotline and attachments. Thin: parse, call one service function, return."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import Response
from pydantic import Field

from fusioncell.deps import AppState, state, viewer
from fusioncell.geo import service as geo_service
from fusioncell.hotline import service as hotline_service
from fusioncell.hotline import templates
from fusioncell.identity.service import Viewer
from fusioncell.schemas import Schema

router = APIRouter(prefix="/api/v1", tags=["hotline"])
Fc = Annotated[AppState, Depends(state)]
Who = Annotated[Viewer, Depends(viewer)]


class MessageCreate(Schema):
    audience: list[str] = Field(default_factory=list, description="Parties; yours and the supervisor are added.")
    thread: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    precedence: Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]
    subject: str = Field(min_length=1, max_length=200)
    template: str | None = Field(default=None, max_length=40)
    fields: dict[str, Any] | None = None
    text: str | None = Field(default=None, max_length=10000)
    lang: str = Field(default="en", pattern=r"^[a-z]{2,3}$")
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=10)


class AckCreate(Schema):
    reply: str | None = Field(default=None, max_length=10000)
    lang: str = Field(default="en", pattern=r"^[a-z]{2,3}$")


class ReceiptCreate(Schema):
    status: Literal["delivered", "read"]


def _accepted(entry: Any) -> dict[str, Any]:
    return {"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex(), "time": entry.time}


@router.get("/hotline/templates")
def list_templates(who: Who) -> list[dict[str, Any]]:
    return [{"code": t.code, "title": t.title, "text": t.text,
             "fields": [{"name": f.name, "type": f.type, "label": f.label, "optional": f.optional,
                         "choices": f.choices} for f in t.fields]}
            for t in templates.catalog().values()]


@router.get("/hotline/threads")
def list_threads(fc: Fc, who: Who) -> list[dict[str, Any]]:
    return [{"thread": s.thread.id, "subject": s.thread.subject, "audience": s.thread.audience.split(),
             "last_seq": s.last.seq, "last_precedence": s.last.precedence, "unacknowledged": s.unacked,
             "next_due": s.next_due}
            for s in fc.read(lambda s: hotline_service.inbox(s, viewer=who))]


@router.get("/hotline/threads/{thread_id}")
def get_thread(fc: Fc, who: Who, thread_id: str, lang: str = "en") -> dict[str, Any]:
    thread, views = fc.read(lambda s: hotline_service.thread_view(s, viewer=who, thread_id=thread_id, language=lang))
    return {"thread": thread.id, "subject": thread.subject, "audience": thread.audience.split(), "messages": [
        {"seq": v.message.seq, "author": v.message.author, "party": v.message.party, "sent_at": v.message.sent_at,
         "precedence": v.message.precedence, "body": v.message.body, "rendered": v.rendered,
         "acknowledged_by": [a.party for a in v.acks], "awaiting": v.awaiting,
         "receipts": [{"member": r.member, "status": r.status, "at": r.at} for r in v.receipts],
         "deadlines": [{"party": d.party, "due_at": d.due_at, "state": d.state} for d in v.deadlines]}
        for v in views]}


@router.post("/hotline/messages", status_code=201)
def post_message(fc: Fc, who: Who, form: MessageCreate) -> dict[str, Any]:
    body = hotline_service.compose_body(precedence=form.precedence, subject=form.subject, thread=form.thread,
                                        template_code=form.template, fields=form.fields, text=form.text,
                                        lang=form.lang, attachments=form.attachments)
    entry = fc.write(lambda s: hotline_service.send_message(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who,
                                                             audience=form.audience, body=body))
    return _accepted(entry)


@router.post("/hotline/messages/{seq}/ack", status_code=201)
def post_ack(fc: Fc, who: Who, seq: int, form: AckCreate) -> dict[str, Any]:
    entry = fc.write(lambda s: hotline_service.acknowledge(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who, seq=seq,
                                                            reply=form.reply, lang=form.lang))
    return _accepted(entry)


@router.post("/hotline/messages/{seq}/receipts", status_code=201)
def post_receipt(fc: Fc, who: Who, seq: int, form: ReceiptCreate) -> dict[str, Any]:
    entry = fc.write(lambda s: hotline_service.record_receipt(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who,
                                                               seq=seq, status=form.status))
    return _accepted(entry) if entry else {"seq": None}


@router.post("/attachments", status_code=201)
async def post_attachment(fc: Fc, who: Who, file: UploadFile) -> dict[str, Any]:
    data = await file.read(fc.settings.max_attachment_bytes + 1)
    media_type = file.content_type or "application/octet-stream"
    stored = await fc.awrite(lambda s: hotline_service.store_file(
        s, viewer=who, data=data, media_type=media_type, clock_now=hotline_service.now_text(fc.cell.log),
        limit=fc.settings.max_attachment_bytes, allowed=fc.settings.attachment_types))
    return {"sha256": stored.sha256, "name": file.filename or stored.sha256[:12], "media_type": stored.media_type,
            "size": stored.size}


@router.get("/attachments/{sha256}")
def get_attachment(fc: Fc, who: Who, sha256: str) -> Response:
    stored = fc.read(lambda s: hotline_service.access_file(s, viewer=who, sha256=sha256))
    return Response(stored.data, media_type=stored.media_type,
                    headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"})


@router.get("/places")
def find_places(fc: Fc, who: Who, request: Request, q: str = "") -> list[dict[str, Any]]:
    return [{"id": p.id, "names": p.names, "kind": p.kind, "lat": p.lat, "lon": p.lon, "geometry": p.geometry}
            for p in fc.read(lambda s: geo_service.search_places(s, query=q))]
