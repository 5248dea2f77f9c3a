"""HTTP routes of the record. Thin: parse, call one service function, return."""

from __future__ import annotations

import asyncio
import email.message
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from fusioncell.deps import AppState, state, viewer, websocket_viewer
from fusioncell.errors import FusioncellError
from fusioncell.identity.service import Viewer
from fusioncell.record import service
from fusioncell.record.export import export_to_file
from fusioncell.schemas import CosignatureCreate, Page, RecordAccepted, RecordCreate

router = APIRouter(prefix="/api/v1", tags=["record"])
Fc = Annotated[AppState, Depends(state)]
Who = Annotated[Viewer, Depends(viewer)]
STREAM_PAGE = 500


@router.get("/records", response_model=Page[dict[str, Any]])
def list_records(fc: Fc, who: Who, after: int = Query(-1, ge=-1), limit: int = Query(100, ge=1, le=1000)):
    items = fc.read(lambda s: service.list_records(s, viewer=who, after=after, limit=limit))
    return {"items": items, "next_after": items[-1]["seq"] if len(items) == limit else None}


@router.get("/records/{seq}")
def get_record(fc: Fc, who: Who, seq: int) -> dict[str, Any]:
    return fc.read(lambda s: service.get_record(s, viewer=who, seq=seq))


_NO_BODY = object()


def _json_body(request: Request, raw: bytes) -> Any:
    """The request body as FastAPI reads a body parameter: JSON when the content type says so (_NO_BODY when
    the body is empty), else the raw bytes, which the schema then refuses."""
    if not raw:
        return _NO_BODY
    content_type = request.headers.get("content-type")
    if not content_type:
        return raw
    if content_type != "application/json":
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
            return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from exc
    except ValueError as exc:  # not UTF-8
        raise HTTPException(400, "There was an error parsing the body") from exc


def _record_create(data: Any) -> RecordCreate:
    """The body checked against RecordCreate, with the errors FastAPI gives for a body parameter."""
    if data is _NO_BODY:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    if not isinstance(data, dict):
        raise RequestValidationError([{"type": "model_attributes_type", "loc": ("body",), "input": data,
                                       "msg": "Input should be a valid dictionary or object to extract fields from"}])
    try:
        return RecordCreate.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in exc.errors()],
                                     body=data) from None


# The busiest write route, so written out by hand rather than with FastAPI's body and dependency machinery,
# which cost more than the append's own handling on the event loop; app.DirectRoutes serves it past FastAPI's
# routing too. The body is read, parsed and checked against RecordCreate here, in the order and with the
# problem details FastAPI gives (malformed JSON, then the caller, then the schema); the record's own checks
# and the append happen off the loop (AppState.aappend). The 201 goes out only once the entry's transaction
# is committed and synced.
@router.post("/records", status_code=201, response_model=RecordAccepted, openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": RecordCreate.model_json_schema()}}}})
async def post_record(request: Request) -> JSONResponse:
    """Append a submission signed on the member's own device; the server verifies, never signs. Answered
    once the entry is durable."""
    fc = state(request)
    data = _json_body(request, await request.body())
    who = await viewer(request)
    record = _record_create(data)
    service.check_submitter(viewer=who, submission=record.submission)
    entry = await fc.aappend(submission=record.submission, sig=record.sig, body=record.body)
    return JSONResponse({"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex(), "time": entry.time},
                        status_code=201)


@router.get("/records/{seq}/proof")
def get_proof(fc: Fc, who: Who, seq: int, size: int | None = Query(None, ge=1)) -> dict[str, Any]:
    return fc.read(lambda s: service.inclusion(s, log=fc.cell.log, viewer=who, seq=seq, size=size))


@router.get("/tree")
def get_tree(fc: Fc, who: Who) -> dict[str, Any]:
    return fc.read(service.latest_head)


@router.get("/tree/consistency")
def get_consistency(fc: Fc, who: Who, first: int = Query(ge=1), second: int = Query(ge=1)) -> dict[str, Any]:
    return fc.read(lambda s: service.consistency(s, log=fc.cell.log, first=first, second=second))


@router.post("/tree/cosignatures", status_code=201)
def post_cosignature(fc: Fc, who: Who, cosig: CosignatureCreate) -> dict[str, Any]:
    return fc.write(lambda s: service.add_cosignature(s, viewer=who, size=cosig.size, key_id=cosig.key,
                                                       sig=cosig.sig))


@router.get("/export")
def get_export(fc: Fc, who: Who) -> FileResponse:
    """The caller's party's bundle (DESIGN.md §2), to verify offline with `fusioncell verify`."""
    handle = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)
    handle.close()
    path = Path(handle.name)
    fc.read(lambda s: export_to_file(s, party=who.party, path=path))
    return FileResponse(path, media_type="application/jsonl", filename=f"fusioncell-{who.party}.jsonl",
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.websocket("/stream")
async def stream(ws: WebSocket, after: int = -1) -> None:
    """Every entry visible to the member as it is committed, from seq after+1 on, then tree heads. Resume
    with ?after=<last seq received>: no gap, no duplicate."""
    fc: AppState = ws.app.state.fc
    try:
        who = await run_in_threadpool(websocket_viewer, ws)
    except FusioncellError as exc:
        await ws.close(code=4401 if exc.status == 401 else 4403, reason=exc.message[:120])
        return
    await ws.accept()
    # Subscribe before reading the backlog, so nothing committed in between is missed.
    sub = fc.broadcaster.subscribe()
    last = max(after, -1)

    async def catch_up(until: int | None) -> None:
        nonlocal last
        while until is None or last < until:
            limit = STREAM_PAGE if until is None else min(STREAM_PAGE, until - last)
            page = await run_in_threadpool(
                fc.read, lambda s, after=last, limit=limit: service.list_records(s, viewer=who, after=after,
                                                                                  limit=limit))
            for item in page:
                await ws.send_json({"type": "entry", **item})
                last = item["seq"]
            if len(page) < limit:
                return

    # A client that goes away (or sends anything) is noticed at once, not at the next entry: its end is put on
    # the same queue as the batches, so each batch costs one queue get, not a wait on two futures.
    closed = asyncio.ensure_future(ws.receive())
    closed.add_done_callback(lambda _: sub.queue.put_nowait(None))
    try:
        await catch_up(None)
        while True:
            batch = await sub.queue.get()
            if batch is None:
                return
            for seq, text in batch.entry_texts(who.party):
                if seq <= last:
                    continue
                if seq > last + 1:  # appended by another worker: read what lies between
                    await catch_up(seq - 1)
                await ws.send_text(text)
                last = seq
            head = batch.head_text()
            if head is not None:
                await ws.send_text(head)
    except (WebSocketDisconnect, asyncio.CancelledError, RuntimeError):
        pass
    finally:
        closed.cancel()
        fc.broadcaster.unsubscribe(sub)
