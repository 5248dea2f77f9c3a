"""The HTTP application. This issue serves the public parts of the record: the signed tree head and
consistency proofs (no content), and a status page. Authenticated routes come with identity."""

from __future__ import annotations

import html

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import select

from fusioncell.cell import CellHandle
from fusioncell.errors import FusioncellError, InvalidInput, NotFound
from fusioncell.identity.models import Cell, Party
from fusioncell.record.format import tree_head
from fusioncell.record.models import Cosignature, TreeHead


def create_app(cell: CellHandle) -> FastAPI:
    app = FastAPI(title="fusioncell", openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)

    @app.exception_handler(FusioncellError)
    async def _problem(_request: Request, exc: FusioncellError) -> JSONResponse:
        return JSONResponse(
            {"type": f"urn:fusioncell:error:{exc.code}", "title": exc.code.replace("_", " "), "status": exc.status,
             "detail": exc.message, "code": exc.code},
            status_code=exc.status, media_type="application/problem+json",
        )

    def latest_head(session) -> tuple[Cell, TreeHead]:  # noqa: ANN001
        head = session.execute(select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).scalar_one_or_none()
        if head is None:
            raise NotFound("no signed tree head yet")
        return session.execute(select(Cell)).scalar_one(), head

    @app.get("/api/v1/tree")
    def get_tree() -> dict:
        with cell.db.read() as session:
            row, head = latest_head(session)
            cosigs = [{"party": c.party, "key": c.key_id, "sig": c.sig} for c in
                      session.execute(select(Cosignature).where(Cosignature.size == head.size)).scalars()]
            signed = tree_head(cell=row.id, size=head.size, root_hex=head.root.hex(), time=head.signed_at)
            return {"tree_head": signed, "sig": head.sig, "cosignatures": cosigs}

    @app.get("/api/v1/tree/consistency")
    def get_consistency(first: int = Query(ge=1), second: int = Query(ge=1)) -> dict:
        with cell.db.read() as session:
            tree = cell.log.tree(session)
            if first > second or second > tree.size:
                raise InvalidInput(f"need 1 <= first <= second <= {tree.size}, got first={first} second={second}")
            return {"first": first, "second": second,
                    "proof": [h.hex() for h in tree.consistency_proof(first, second)]}

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        with cell.db.read() as session:
            row, head = latest_head(session)
            parties = session.execute(select(Party).order_by(Party.id)).scalars().all()
        items = "".join(f"<li>{html.escape(p.id)} — {html.escape(p.names.get('en', ''))} ({p.role})</li>"
                        for p in parties)
        return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(row.name)}</title>"
                f"</head><body><h1>{html.escape(row.name)}</h1><ul>{items}</ul>"
                f"<p>Record: {head.size} entries, root <code>{head.root.hex()}</code>, signed {head.signed_at}.</p>"
                "</body></html>")

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # noqa: ANN001, ANN202
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = "default-src 'self'; script-src 'self'; style-src 'self'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return app
