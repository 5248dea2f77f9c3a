"""Factories for the record: personas with enrolled device keys, and a test kind with a restricted audience."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fusioncell.cell import CellHandle
from fusioncell.clock import format_time
from fusioncell.identity import service as identity_service
from fusioncell.record import signing
from fusioncell.record.format import Signer
from fusioncell.record.kinds import BodyModel, Kind, register
from fusioncell.record.sequencer import Appended


class NoteBody(BodyModel):
    text: str


NOTE = register(Kind("test.note", NoteBody))


@dataclass
class Persona:
    signer: Signer
    cell: CellHandle

    @property
    def party(self) -> str:
        return self.signer.party

    def sign(self, body: dict[str, Any], *, audience: list[str] | None = None, kind: str = "test.note",
             refs: list[str] | None = None) -> tuple[dict[str, Any], str]:
        return self.signer.submit(kind=kind, body=body, audience=audience or ["IL", "SY", "US"],
                                  created=format_time(self.cell.log.clock.now()), refs=refs)

    def append(self, body: dict[str, Any] | None = None, **kwargs: Any) -> Appended:
        body = body if body is not None else {"text": "hello"}
        submission, sig = self.sign(body, **kwargs)
        with self.cell.log.transaction(self.cell.db) as session:
            return self.cell.log.append(session, submission=submission, sig=sig, body=body)


def persona(cell: CellHandle, party: str, holder: str) -> Persona:
    """A member of party with a device key enrolled by the cell."""
    key = signing.generate()
    with cell.log.transaction(cell.db) as session:
        identity_service.enrol_key(session, log=cell.log, party=party, holder=holder,
                                   public_key=signing.public_bytes(key), custody="device")
    return Persona(Signer(cell=cell.log.cell_id or "", party=party, author=holder, key=key), cell)
