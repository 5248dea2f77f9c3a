"""The deadline engine. Kinds open and meet deadlines from their projections (so the deadlines are rebuilt
from the log like any state); the engine appends a cell-signed `deadline.missed` when one passes unmet, and
`deadline.escalated` at its second escalation time. It keeps no state of its own: a restart loses nothing."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fusioncell.clock import format_time, parse_time
from fusioncell.deadlines.models import Deadline
from fusioncell.errors import InvalidSubmission
from fusioncell.record.kinds import BodyModel, Kind, register
from fusioncell.record.sequencer import Appended, Log

if TYPE_CHECKING:
    from fusioncell.record.commit import GroupCommitter

logger = logging.getLogger(__name__)


def open_deadline(session: Session, *, id: str, rule: str, entry: Appended, party: str, due: timedelta,
                  escalate_after: timedelta | None = None) -> None:
    """Open a deadline owed by party, counted from the entry's sequenced time (so a rebuild agrees)."""
    start = parse_time(entry.time)
    due_at = format_time(start + due)
    session.add(Deadline(
        id=id, rule=rule, source_seq=entry.seq, party=party, audience=" ".join(entry.submission["audience"]),
        opened_at=entry.time, due_at=due_at,
        escalate_at=format_time(start + escalate_after) if escalate_after else None,
        state="open", next_at=due_at,
    ))


def meet(session: Session, *, id: str, seq: int) -> Deadline | None:
    """The owed act arrived at seq: the deadline stops (a late answer is still recorded as met)."""
    row = session.get(Deadline, id)
    if row is not None and row.met_seq is None:
        row.met_seq = seq
        row.state = "met"
        row.next_at = None
    return row


def close(session: Session, *, id: str) -> None:
    """Nothing is owed any more (e.g. the request was withdrawn)."""
    session.execute(update(Deadline).where(Deadline.id == id, Deadline.met_seq.is_(None))
                    .values(state="closed", next_at=None))


def owed(session: Session, *, party: str, rules: tuple[str, ...] | None = None) -> list[Deadline]:
    """What party owes and has not done yet (open, missed or escalated), earliest due first; only for these
    rules, where given."""
    query = select(Deadline).where(Deadline.party == party, Deadline.met_seq.is_(None),
                                   Deadline.state.in_(("open", "missed", "escalated")))
    if rules is not None:
        query = query.where(Deadline.rule.in_(rules))
    return list(session.execute(query.order_by(Deadline.due_at, Deadline.id)).scalars())


def subject_seq(deadline_id: str) -> int:
    """The seq of what a deadline is about. Every kind writes its ids as `{domain}:{that seq}:...`: ack:42:SY,
    notice:{notice}:{party}:{check}, incident:{incident}:{party}, dispute:{dispute}:{step}:{party}."""
    return int(deadline_id.split(":", 2)[1])


def due(session: Session, *, now: datetime) -> list[Deadline]:
    # Only open and missed deadlines wait for the engine: the state filter keeps this on the index however
    # many met deadlines the cell has kept.
    stamp = format_time(now)
    return list(session.execute(
        select(Deadline).where(Deadline.state.in_(("open", "missed")), Deadline.next_at <= stamp)
        .order_by(Deadline.next_at, Deadline.id)).scalars())


def fire(session: Session, *, log: Log, row: Deadline) -> Appended:
    body = {"deadline": row.id, "rule": row.rule, "source": row.source_seq, "party": row.party, "due_at": row.due_at}
    kind = "deadline.missed" if row.state == "open" else "deadline.escalated"
    return log.append_as_cell(session, kind=kind, body=body, audience=row.audience.split())


def fire_due(session: Session, *, log: Log, now: datetime) -> list[Appended]:
    """Append the entries for every deadline that has passed since the last run."""
    return [fire(session, log=log, row=row) for row in due(session, now=now)]


class MissedBody(BodyModel):
    deadline: str = Field(max_length=120)
    rule: str = Field(max_length=60)
    source: int = Field(ge=0)
    party: str = Field(max_length=100)
    due_at: str = Field(max_length=24)


def _apply_missed(session: Session, entry: Appended, body: MissedBody) -> None:
    row = session.get(Deadline, body.deadline)
    if row is None or row.state != "open":
        raise InvalidSubmission(f"deadline {body.deadline} is not open", code="not_open")
    row.state = "missed"
    row.missed_seq = entry.seq
    row.next_at = row.escalate_at


def _apply_escalated(session: Session, entry: Appended, body: MissedBody) -> None:
    row = session.get(Deadline, body.deadline)
    if row is None or row.state != "missed":
        raise InvalidSubmission(f"deadline {body.deadline} has not been missed", code="not_missed")
    row.state = "escalated"
    row.escalated_seq = entry.seq
    row.next_at = None


register(Kind("deadline.missed", MissedBody, _apply_missed, by_cell=True, by_party=False))
register(Kind("deadline.escalated", MissedBody, _apply_escalated, by_cell=True, by_party=False))


class Ticker:
    """Runs the engine every `interval` seconds in the server, through the group committer."""

    def __init__(self, committer: GroupCommitter, log: Log, *, interval: float = 1.0) -> None:
        self.committer = committer
        self.log = log
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fusioncell-deadlines", daemon=True)
        self._thread.start()

    def tick(self) -> list[Appended]:
        """One unit per deadline: one that cannot be recorded does not hold back the others."""
        now = self.log.clock.now()
        with self.committer.db.read() as session:
            ids = [row.id for row in due(session, now=now)]
        fired = []
        for deadline_id in ids:
            try:
                fired.append(self.committer.run(lambda s, d=deadline_id: self._fire_one(s, d, now)))
            except Exception:  # noqa: BLE001  recorded nowhere else: say so, retry at the next tick
                logger.exception("could not record the passing of deadline %s", deadline_id)
        return [f for f in fired if f is not None]

    def _fire_one(self, session: Session, deadline_id: str, now: datetime) -> Appended | None:
        row = session.get(Deadline, deadline_id)
        if row is None or row.state not in ("open", "missed") or not row.next_at or row.next_at > format_time(now):
            return None  # met or recorded meanwhile
        return fire(session, log=self.log, row=row)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001  the next tick retries; a failed tick loses nothing
                logger.exception("deadline tick failed")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
