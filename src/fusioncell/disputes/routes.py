"""HTTP API of disputes. Thin: parse, call one service function, return."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from fusioncell.deps import AppState, state, viewer
from fusioncell.disputes import service as dispute_service
from fusioncell.identity.service import Viewer
from fusioncell.schemas import Schema

router = APIRouter(prefix="/api/v1", tags=["disputes"])
Fc = Annotated[AppState, Depends(state)]
Who = Annotated[Viewer, Depends(viewer)]


class DisputeCreate(Schema):
    about: list[int] = Field(min_length=1, max_length=50, description="Seqs of the entries disputed")
    respondent: str = Field(max_length=32)
    claim: dict[str, str]
    remedy: dict[str, str]


class StepCreate(Schema):
    action: str = Field(max_length=20)
    text: dict[str, str]


@router.get("/disputes")
def list_disputes(fc: Fc, who: Who) -> list[dict[str, Any]]:
    return fc.read(lambda s: dispute_service.read_all(s, viewer=who))


@router.get("/disputes/{seq}")
def get_dispute(fc: Fc, who: Who, seq: int) -> dict[str, Any]:
    def load(s: Any) -> dict[str, Any]:
        dispute, steps = dispute_service.access_dispute(s, viewer=who, seq=seq)
        return dispute_service.read(s, viewer=who, dispute=dispute, steps=steps)

    return fc.read(load)


@router.post("/disputes", status_code=201)
def post_dispute(fc: Fc, who: Who, form: DisputeCreate) -> dict[str, Any]:
    entry = fc.write(lambda s: dispute_service.raise_dispute(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who,
                                                              about=form.about, respondent=form.respondent,
                                                              claim=form.claim, remedy=form.remedy))
    return {"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex(), "time": entry.time}


@router.post("/disputes/{seq}/steps", status_code=201)
def post_step(fc: Fc, who: Who, seq: int, form: StepCreate) -> dict[str, Any]:
    entry = fc.write(lambda s: dispute_service.take_step(s, log=fc.cell.log, kek=fc.cell.kek, viewer=who, seq=seq,
                                                          action=form.action, text=form.text))
    return {"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex(), "time": entry.time}


@router.get("/disputes/{seq}/bundle", response_class=Response,
            responses={200: {"content": {"application/x-ndjson": {}},
                             "description": "fusioncell-proof/1 bundle: check it with `fusioncell verify FILE`"}})
def get_bundle(fc: Fc, who: Who, seq: int) -> Response:
    """The dispute, its steps and every entry they cite, with inclusion proofs, as the member's party sees them."""
    out = io.BytesIO()
    fc.read(lambda s: dispute_service.write_bundle(s, log=fc.cell.log, party=who.party, seq=seq, out=out))
    return Response(out.getvalue(), media_type="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="dispute-{seq}.jsonl"'})
