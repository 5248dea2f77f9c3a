"""Live fan-out of committed entries and tree heads to the connected streams of this worker."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from fusioncell.record.sequencer import Appended


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


class Broadcaster:
    """Called by the log after each commit (from the committer thread); hands the batch to every
    subscriber's event loop. Filtering by party happens per subscriber, through the access layer."""

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
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, (appended, head))
            except RuntimeError:  # loop closed: the connection is gone
                self.unsubscribe(sub)

    @property
    def count(self) -> int:
        return len(self._subs)
