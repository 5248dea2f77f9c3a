"""Hotline use cases: send (coded or free text), receipts, acknowledgements, attachments; and the reads
through the access layer (inbox, thread). Services flush, never commit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from fusioncell.clock import format_time
from fusioncell.deadlines import engine as deadline_engine
from fusioncell.deadlines.models import Deadline
from fusioncell.errors import Forbidden, InvalidInput, NotFound, TooLarge
from fusioncell.geo import service as geo_service
from fusioncell.hotline import templates
from fusioncell.hotline.kinds import PRECEDENCES, MessageBody, addressed
from fusioncell.hotline.models import (
    Ack,
    AttachmentRef,
    Message,
    Receipt,
    StoredFile,
    Thread,
)
from fusioncell.hotline.translate import Translation, Translator
from fusioncell.identity import service as identity_service
from fusioncell.identity.auth import KeyEncryptionKey
from fusioncell.identity.service import Viewer
from fusioncell.record import access
from fusioncell.record.models import Entry, EntryAudience
from fusioncell.record.sequencer import Appended, Log

MAX_ATTACHMENT = 10 << 20
ALLOWED_TYPES = frozenset({"image/png", "image/jpeg", "application/pdf", "text/plain", "application/geo+json",
                 "application/vnd.google-earth.kml+xml"})


def _entry_visible(session: Session, party: str, seq: int) -> bool:
    return session.get(EntryAudience, (party, seq)) is not None


def check_message_body(session: Session, *, party: str, body: MessageBody) -> None:
    """What the schema cannot check: template fields (places in the gazetteer, entries the author's party can
    see) and attachments present in the store."""
    if body.template is not None:
        templates.check(body.template.code, dict(body.template.fields),
                        place_exists=lambda pid: geo_service.get_place(session, pid) is not None,
                        entry_visible=lambda seq: _entry_visible(session, party, seq))
    for attachment in body.attachments:
        check_attachment(session, attachment)


def check_attachment(session: Session, attachment: Any) -> None:
    """A file cited by hash in a signed body must be the one uploaded (evidence and message attachments)."""
    stored = session.get(StoredFile, attachment.sha256)
    if stored is None or stored.size != attachment.size or stored.media_type != attachment.media_type:
        raise InvalidInput(f"attachment {attachment.name} is not uploaded (or differs from the upload)",
                           code="unknown_attachment")


def compose_body(*, precedence: str, subject: str, thread: str | None, template_code: str | None,
                 fields: dict[str, Any] | None, text: str | None, lang: str,
                 attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if precedence not in PRECEDENCES:
        raise InvalidInput(f"precedence must be one of {', '.join(PRECEDENCES)}", code="bad_precedence")
    body: dict[str, Any] = {"thread": thread, "precedence": precedence, "subject": subject.strip(),
                            "attachments": attachments or []}
    if template_code:
        body["template"] = {"code": template_code,
                            "fields": templates.check(template_code, fields or {}, place_exists=lambda _p: True,
                                                      entry_visible=lambda _s: True)}
    if text and text.strip():
        body["text"] = {"lang": lang, "text": text.strip()}
    return body


def send_message(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, audience: list[str],
                 body: dict[str, Any]) -> Appended:
    """Send as the member, signed with their cell-held key. Device-signed messages come through
    POST /api/v1/records and meet the same checks (the kind's check and apply)."""
    if not {"liaison", "supervisor", "admin"} & set(viewer.roles):
        raise Forbidden("observers read; they do not send messages")
    thread = body.get("thread")
    if thread:
        row = access_thread(session, viewer=viewer, thread_id=thread)
        audience = row.audience.split()
    # The supervisor is always on the line.
    audience = sorted(set(audience) | {viewer.party} | identity_service.supervising_parties(session))
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind="hotline.message", body=body,
                                      audience=audience)


def access_message(session: Session, *, viewer: Viewer, seq: int) -> Message:
    message = session.get(Message, seq)
    if message is None or not access.may_see(viewer.party, message.audience):
        raise NotFound(f"no message {seq}")
    return message


def record_receipt(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, seq: int,
                   status: str) -> Appended | None:
    """Delivered or read, once per member; a repeat is a no-op, not a new entry."""
    message = access_message(session, viewer=viewer, seq=seq)
    if session.get(Receipt, (seq, viewer.member, status)) is not None:
        return None
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind="hotline.receipt",
                                      body={"message": seq, "status": status}, audience=message.audience.split(),
                                      refs=[message.leaf_hash])


def acknowledge(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, seq: int,
                reply: str | None = None, lang: str = "en") -> Appended:
    """"Received and understood", for the member's party, optionally with a reply."""
    message = access_message(session, viewer=viewer, seq=seq)
    if viewer.party not in addressed(session, audience=message.audience.split(), author_party=message.party):
        raise Forbidden(f"message {seq} is not addressed to {viewer.party} for acknowledgement")
    if session.get(Ack, (seq, viewer.party)) is not None:
        raise InvalidInput(f"{viewer.party} has already acknowledged message {seq}", code="duplicate")
    body: dict[str, Any] = {"message": seq}
    if reply and reply.strip():
        body["reply"] = {"lang": lang, "text": reply.strip()}
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind="hotline.ack", body=body,
                                      audience=message.audience.split(), refs=[message.leaf_hash])


def store_file(session: Session, *, viewer: Viewer, data: bytes, media_type: str, clock_now: str,
               limit: int = MAX_ATTACHMENT, allowed: frozenset[str] | set[str] = ALLOWED_TYPES) -> StoredFile:
    if len(data) > limit:
        raise TooLarge(f"attachments are limited to {limit // (1 << 20)} MiB; this one is {len(data)} bytes")
    if media_type not in allowed:
        raise InvalidInput(f"files of type {media_type} are refused; allowed: {', '.join(sorted(allowed))}",
                           code="refused_type")
    if not data:
        raise InvalidInput("the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    stored = session.get(StoredFile, digest)
    if stored is None:
        stored = StoredFile(sha256=digest, media_type=media_type, size=len(data), party=viewer.party,
                            uploaded_at=clock_now, data=data)
        session.add(stored)
        session.flush()
    return stored


def access_file(session: Session, *, viewer: Viewer, sha256: str) -> StoredFile:
    """A file the viewer's party uploaded, or that an entry released to it carries (a message's attachment, an
    incident's evidence)."""
    stored = session.get(StoredFile, sha256)
    if stored is None:
        raise NotFound("no such attachment")
    if stored.party == viewer.party:
        return stored
    carried = session.execute(
        select(Entry.audience).join(AttachmentRef, AttachmentRef.message_seq == Entry.seq)
        .where(AttachmentRef.sha256 == sha256)).scalars()
    if not any(access.may_see(viewer.party, audience) for audience in carried):
        raise NotFound("no such attachment")
    return stored


# -- reads -----------------------------------------------------------------------------------------------

@dataclass
class ThreadSummary:
    thread: Thread
    last: Message
    unacked: int  # messages still awaiting this party's acknowledgement
    next_due: str | None
    flash: bool


@dataclass
class MessageView:
    message: Message
    rendered: str | None  # the coded template in the reader's language
    original: dict[str, str] | None
    translation: Translation | None = None  # machine translation of the original, labelled as such
    acks: list[Ack] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    awaiting: list[str] = field(default_factory=list)  # parties that have not acknowledged yet
    my_due: Deadline | None = None  # the reader's party's deadline to acknowledge, if open
    deadlines: list[Deadline] = field(default_factory=list)


def _visible_threads(viewer: Viewer):  # noqa: ANN202
    return Thread.audience.contains(viewer.party)


def inbox(session: Session, *, viewer: Viewer, limit: int = 100) -> list[ThreadSummary]:
    threads = [t for t in session.execute(select(Thread).order_by(Thread.last_seq.desc()).limit(limit * 3)).scalars()
               if access.may_see(viewer.party, t.audience)][:limit]
    if not threads:
        return []
    ids = [t.id for t in threads]
    last = {m.seq: m for m in session.execute(select(Message).where(Message.seq.in_([t.last_seq for t in threads])))
            .scalars()}
    pending = session.execute(
        select(Message.thread, func.count(), func.min(Deadline.due_at), func.max(case((Message.precedence == "FLASH", 1), else_=0)))
        .join(Deadline, and_(Deadline.source_seq == Message.seq, Deadline.rule == "hotline.ack",
                             Deadline.party == viewer.party, Deadline.met_seq.is_(None),
                             Deadline.state != "closed"))
        .where(Message.thread.in_(ids)).group_by(Message.thread)).all()
    by_thread = {row[0]: row[1:] for row in pending}
    return [ThreadSummary(t, last[t.last_seq], by_thread.get(t.id, (0, None, False))[0],
                          by_thread.get(t.id, (0, None, False))[1], bool(by_thread.get(t.id, (0, None, False))[2]))
            for t in threads]


def access_thread(session: Session, *, viewer: Viewer, thread_id: str) -> Thread:
    thread = session.get(Thread, thread_id)
    if thread is None or not access.may_see(viewer.party, thread.audience):
        raise NotFound("no such thread")
    return thread


def render_body(session: Session, body: dict[str, Any], language: str) -> str | None:
    template = body.get("template")
    if not template:
        return None

    def name(place_id: str, lang: str) -> str:
        place = geo_service.get_place(session, place_id)
        return geo_service.place_name(place, lang) if place else place_id

    return templates.render(template["code"], template["fields"], language, place_name=name)


def thread_view(session: Session, *, viewer: Viewer, thread_id: str, language: str,
                translator: Translator | None = None) -> tuple[Thread, list[MessageView]]:
    thread = access_thread(session, viewer=viewer, thread_id=thread_id)
    messages = list(session.execute(select(Message).where(Message.thread == thread.id).order_by(Message.seq))
                    .scalars())
    seqs = [m.seq for m in messages]
    acks = list(session.execute(select(Ack).where(Ack.message_seq.in_(seqs))).scalars())
    receipts = list(session.execute(select(Receipt).where(Receipt.message_seq.in_(seqs))).scalars())
    rows = list(session.execute(select(Deadline).where(Deadline.source_seq.in_(seqs),
                                                       Deadline.rule == "hotline.ack")).scalars())
    views = []
    supervising = identity_service.supervising_parties(session)
    for message in messages:
        owed = addressed(session, audience=message.audience.split(), author_party=message.party,
                         supervising=supervising)
        done = {a.party for a in acks if a.message_seq == message.seq}
        mine = [d for d in rows if d.source_seq == message.seq]
        views.append(MessageView(
            message=message, rendered=render_body(session, message.body, language), original=message.body.get("text"),
            acks=[a for a in acks if a.message_seq == message.seq],
            receipts=[r for r in receipts if r.message_seq == message.seq],
            awaiting=[p for p in owed if p not in done],
            my_due=next((d for d in mine if d.party == viewer.party and d.met_seq is None), None),
            deadlines=mine,
            translation=_translate(translator, message.body.get("text"), language),
        ))
    return thread, views


def _translate(translator: Translator | None, original: dict[str, str] | None, language: str) -> Translation | None:
    if translator is None or not original or original["lang"] == language:
        return None
    return translator.translate(original["text"], source=original["lang"], target=language)


def missed_for(session: Session, *, viewer: Viewer) -> list[Deadline]:
    """Deadlines passed and not met that the viewer's party may see (a supervisor sees them all)."""
    rows = session.execute(select(Deadline).where(Deadline.state.in_(("missed", "escalated")),
                                                  Deadline.met_seq.is_(None)).order_by(Deadline.due_at)).scalars()
    return [d for d in rows if access.may_see(viewer.party, d.audience)]


def owed_by(session: Session, *, viewer: Viewer) -> list[Deadline]:
    return deadline_engine.owed(session, party=viewer.party)


def messages_by_seq(session: Session, *, seqs: list[int]) -> dict[int, Message]:
    """The messages among these entries, by seq, in one query (entries of other kinds are left out)."""
    if not seqs:
        return {}
    return {m.seq: m for m in session.execute(select(Message).where(Message.seq.in_(set(seqs)))).scalars()}


def now_text(log: Log) -> str:
    return format_time(log.clock.now())
