"""Hotline kinds: messages with precedence, receipts (delivered, read) and acknowledgements, each a signed
entry, so nobody can later deny having received or acknowledged a message."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from fusioncell.deadlines import engine as deadlines
from fusioncell.errors import FusioncellError, InvalidSubmission
from fusioncell.hotline.models import Ack, AttachmentRef, Message, Receipt, Thread
from fusioncell.identity.service import cell_setting, supervising_parties
from fusioncell.record.kinds import BodyModel, Kind, register
from fusioncell.record.sequencer import Appended

PRECEDENCES = ("FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE")
Precedence = Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]
DEFAULT_ACK_MINUTES = {"FLASH": 5, "IMMEDIATE": 30, "PRIORITY": 180, "ROUTINE": 1440}
ESCALATE_TWICE = {"FLASH", "IMMEDIATE"}


class FreeText(BodyModel):
    lang: str = Field(pattern=r"^[a-z]{2,3}$")
    text: str = Field(min_length=1, max_length=10000)


class Coded(BodyModel):
    code: str = Field(max_length=40)
    fields: dict[str, Any]


class Attachment(BodyModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    name: str = Field(min_length=1, max_length=200)
    media_type: str = Field(max_length=100)
    size: int = Field(ge=1)


class MessageBody(BodyModel):
    thread: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    precedence: Precedence
    subject: str = Field(min_length=1, max_length=200)
    template: Coded | None = None
    text: FreeText | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _says_something(self) -> MessageBody:
        if self.template is None and self.text is None:
            raise ValueError("a message needs a coded template, free text, or both")
        return self


class ReceiptBody(BodyModel):
    message: int = Field(ge=0)
    status: Literal["delivered", "read"]


class AckBody(BodyModel):
    message: int = Field(ge=0)
    reply: FreeText | None = None


def ack_minutes(session: Session) -> dict[str, float]:
    configured = cell_setting(session, "ack_minutes", {})
    return {p: float(configured.get(p, DEFAULT_ACK_MINUTES[p])) for p in PRECEDENCES}


def addressed(session: Session, *, audience: list[str], author_party: str,
              supervising: set[str] | None = None) -> list[str]:
    """Who must acknowledge: the audience but the author's party and the supervisors (supervising, where the
    caller has read them already)."""
    if supervising is None:
        supervising = supervising_parties(session)
    return [p for p in audience if p != author_party and p not in supervising]


def _refuse(message: str, code: str) -> InvalidSubmission:
    return InvalidSubmission(message, code=code)


def _apply_message(session: Session, entry: Appended, body: MessageBody) -> None:
    audience = entry.submission["audience"]
    if body.thread is None:
        thread_id = entry.leaf_hash.hex()
        session.add(Thread(id=thread_id, subject=body.subject, audience=" ".join(audience), opened_seq=entry.seq,
                           last_seq=entry.seq))
    else:
        thread = session.get(Thread, body.thread)
        if thread is None or thread.audience != " ".join(audience):
            raise _refuse("a reply goes to an existing thread, with the thread's audience", "bad_thread")
        thread_id = thread.id
        thread.last_seq = entry.seq
    for attachment in body.attachments:
        session.add(AttachmentRef(message_seq=entry.seq, sha256=attachment.sha256))
    session.add(Message(seq=entry.seq, thread=thread_id, leaf_hash=entry.leaf_hash.hex(),
                        precedence=body.precedence, author=entry.submission["author"], party=entry.party,
                        audience=" ".join(audience), sent_at=entry.time, body=body.model_dump(mode="json")))
    minutes = ack_minutes(session)[body.precedence]
    for party in addressed(session, audience=audience, author_party=entry.party):
        deadlines.open_deadline(
            session, id=f"ack:{entry.seq}:{party}", rule="hotline.ack", entry=entry, party=party,
            due=timedelta(minutes=minutes),
            escalate_after=timedelta(minutes=2 * minutes) if body.precedence in ESCALATE_TWICE else None,
        )
    session.flush()


def _message_for(session: Session, entry: Appended, seq: int) -> Message:
    message = session.get(Message, seq)
    if message is None or entry.party not in message.audience.split():
        raise _refuse(f"no message {seq} addressed to {entry.party}", "not_addressed")
    if message.leaf_hash not in entry.submission["refs"]:
        raise _refuse(f"cite message {seq} by its leaf hash in refs", "bad_refs")
    return message


def _apply_receipt(session: Session, entry: Appended, body: ReceiptBody) -> None:
    message = _message_for(session, entry, body.message)
    member = entry.submission["author"]
    if session.get(Receipt, (message.seq, member, body.status)) is not None:
        raise _refuse(f"{member} already sent a {body.status} receipt for message {message.seq}", "duplicate")
    session.add(Receipt(message_seq=message.seq, member=member, status=body.status, party=entry.party,
                        seq=entry.seq, at=entry.time))
    session.flush()


def _apply_ack(session: Session, entry: Appended, body: AckBody) -> None:
    message = _message_for(session, entry, body.message)
    if entry.party not in addressed(session, audience=message.audience.split(), author_party=message.party):
        raise _refuse(f"message {message.seq} is not addressed to {entry.party} for acknowledgement",
                      "not_addressed")
    if session.get(Ack, (message.seq, entry.party)) is not None:
        raise _refuse(f"{entry.party} has already acknowledged message {message.seq}", "duplicate")
    session.add(Ack(message_seq=message.seq, party=entry.party, member=entry.submission["author"], seq=entry.seq,
                    at=entry.time, reply=body.reply.model_dump() if body.reply else None))
    deadlines.meet(session, id=f"ack:{message.seq}:{entry.party}", seq=entry.seq)
    session.flush()


def _check_message(session: Session, submission: dict[str, Any], body: MessageBody) -> None:
    """Coded fields against the templates and the gazetteer; attachments present in the store."""
    from fusioncell.hotline import service

    try:
        service.check_message_body(session, party=submission["party"], body=body)
    except FusioncellError as exc:
        raise _refuse(exc.message, exc.code) from exc


register(Kind("hotline.message", MessageBody, _apply_message, check=_check_message))
register(Kind("hotline.receipt", ReceiptBody, _apply_receipt))
register(Kind("hotline.ack", AckBody, _apply_ack))
