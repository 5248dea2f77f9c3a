"""Time for the whole cell: an injected clock, always UTC-aware, and the record's time format."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def __init__(self) -> None:
        self._last: tuple[int, str] = (-1, "")

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def record_now(self) -> str:
        """format_time(self.now()), made once per millisecond: the sequencer stamps every entry, many in the
        same millisecond under load."""
        ms = time.time_ns() // 1_000_000
        last = self._last
        if last[0] == ms:
            return last[1]
        text = format_ms(ms)
        self._last = (ms, text)  # one assignment: a reader on another thread sees a matching pair
        return text


def format_ms(ms: int) -> str:
    """format_time of the moment `ms` milliseconds after the Unix epoch (years 1000 to 9999)."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def record_now(clock: Clock) -> str:
    """The clock's time in the record's format."""
    fast = getattr(clock, "record_now", None)
    return fast() if fast is not None else format_time(clock.now())


class FakeClock:
    """A clock that tests move by hand."""

    def __init__(self, start: datetime | str = "2026-11-22T10:00:00Z") -> None:
        self._now = parse_time(start) if isinstance(start, str) else start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds, the only time format in the record: 2026-11-22T10:00:00.123Z."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the record only holds UTC-aware times")
    # isoformat is C and about eight times faster than strftime (the sequencer formats one per entry); it
    # pads the year to four digits and ends in "+00:00" for UTC.
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time that names its offset; naive times are refused, not guessed."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone; write it in UTC, e.g. 2026-11-22T10:00:00Z")
    return moment.astimezone(timezone.utc)


_RECORD_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def is_record_time(text: str) -> bool:
    """True when text is exactly in the record's time format (and a real date and time)."""
    if not _RECORD_TIME.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text[:-1])
    except ValueError:
        return False
    return True
