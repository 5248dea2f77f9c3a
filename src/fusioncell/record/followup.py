"""Entries the cell writes in answer to others (a notice's findings, an incident's links): run as soon as the
entry is committed, whoever wrote it and through whichever door, and at start-up for any a restart left
without its answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from fusioncell.record.sequencer import Appended

if TYPE_CHECKING:
    from fusioncell.record.commit import GroupCommitter

# work(session, seq) appends the answer, or returns None when it is no longer due (answered meanwhile)
Work = Callable[[Session, int], Any]


class FollowUp:
    def __init__(self, committer: GroupCommitter, *, kinds: dict[str, Callable[[Appended], int]], work: Work,
                 pending: Callable[[Session], list[int]]) -> None:
        self.committer = committer
        self.kinds = kinds  # kind -> the seq to answer for, from the committed entry
        self.work = work
        with committer.db.read() as session:
            for seq in pending(session):
                self._submit(seq)

    def _submit(self, seq: int) -> None:
        self.committer.submit(lambda session: self.work(session, seq))

    def __call__(self, appended: list[Appended], _head: Any) -> None:
        for entry in appended:
            target = self.kinds.get(entry.kind)
            if target is not None:
                self._submit(target(entry))
