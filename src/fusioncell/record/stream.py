"""Live fan-out of committed entries and tree heads to the connected streams of this worker."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fusioncell.record.sequencer import Appended


class Batch:
    """One commit's entries and tree head. Each party's view is encoded once, then sent to all its members'
    streams: fan-out costs a send per client, not a JSON encoding per client."""

    def __init__(self, appended: list[Appended], head: dict[str, Any] | None) -> None:
        self.appended = appended
        self.head = head
        self._texts: dict[str, list[tuple[int, str]]] = {}
        self._head_text: str | None = None

    def entry_texts(self, party: str) -> list[tuple[int, str]]:
        from fusioncell.record.service import view_of

        texts = self._texts.get(party)
        if texts is None:
            texts = [(e.seq, json.dumps({"type": "entry", **view_of(e, party)}, ensure_ascii=False,
                                         separators=(",", ":")))
                     for e in self.appended]
            self._texts[party] = texts
        return texts

    def head_text(self) -> str | None:
        if self.head is not None and self._head_text is None:
            self._head_text = json.dumps({"type": "tree_head", **self.head}, separators=(",", ":"))
        return self._head_text


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    # Batches in commit order; None when the stream's connection has ended.
    queue: asyncio.Queue[Batch | None] = field(default_factory=asyncio.Queue)


class Broadcaster:
    """Called by the log after each commit (from the committer thread); hands the batch to every
    subscriber, with one wake-up per event loop. Filtering by party happens per subscriber, through the
    access layer (record.service.view_of)."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Subscription:
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def __call__(self, appended: list[Appended], head: dict[str, Any] | None = None) -> None:
        batch = Batch(appended, head)
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = defaultdict(list)
        with self._lock:
            for sub in self._subs:
                by_loop[sub.loop].append(sub)
        for loop, subs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, subs, batch)
            except RuntimeError:  # loop closed: those connections are gone
                for sub in subs:
                    self.unsubscribe(sub)

    @property
    def count(self) -> int:
        return len(self._subs)


def _deliver(subs: list[Subscription], batch: Batch) -> None:
    for sub in subs:
        sub.queue.put_nowait(batch)
