"""Factories for the hotline: members as viewers, the demo gazetteer, messages."""

from __future__ import annotations

from typing import Any

from fusioncell.cell import CellHandle
from fusioncell.demo.scenario import load_places
from fusioncell.hotline import service as hotline_service
from fusioncell.identity import service as identity_service
from fusioncell.identity.service import SCOPES, Viewer
from fusioncell.record.sequencer import Appended


def viewer(cell: CellHandle, member: str) -> Viewer:
    with cell.db.read() as session:
        row = identity_service.get_member(session, member)
        return Viewer(row.id, row.party, tuple(row.roles), "session", SCOPES, "csrf")


def places(cell: CellHandle) -> None:
    with cell.log.transaction(cell.db) as session:
        load_places(session, log=cell.log)


def send(cell: CellHandle, who: Viewer, *, audience: list[str] | None = None, precedence: str = "ROUTINE",
         subject: str = "Patrol", text: str | None = "Patrol near the line at 0600Z", template: str | None = None,
         fields: dict[str, Any] | None = None, thread: str | None = None, lang: str = "en") -> Appended:
    body = hotline_service.compose_body(precedence=precedence, subject=subject, thread=thread, template_code=template,
                                        fields=fields, text=text, lang=lang)
    with cell.log.transaction(cell.db) as session:
        return hotline_service.send_message(session, log=cell.log, kek=cell.kek, viewer=who,
                                            audience=audience or ["IL", "SY", "US"], body=body)


def ack(cell: CellHandle, who: Viewer, seq: int, reply: str | None = None) -> Appended:
    with cell.log.transaction(cell.db) as session:
        return hotline_service.acknowledge(session, log=cell.log, kek=cell.kek, viewer=who, seq=seq, reply=reply)


def receipt(cell: CellHandle, who: Viewer, seq: int, status: str) -> Appended | None:
    with cell.log.transaction(cell.db) as session:
        return hotline_service.record_receipt(session, log=cell.log, kek=cell.kek, viewer=who, seq=seq, status=status)
