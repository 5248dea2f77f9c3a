"""The record's time format, and the system clock's per-millisecond shortcut to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from fusioncell.clock import (
    FakeClock,
    SystemClock,
    format_ms,
    format_time,
    is_record_time,
    record_now,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=-30_610_224_000_000, max_value=253_402_300_799_999))  # years 1000 to 9999
def test_format_ms_is_format_time(ms):
    moment = EPOCH + timedelta(milliseconds=ms)
    assert format_ms(ms) == format_time(moment)
    assert is_record_time(format_ms(ms))


def test_the_system_clock_gives_the_record_time_of_now():
    clock = SystemClock()
    before = format_time(clock.now())
    stamped = [record_now(clock) for _ in range(1000)]
    after = format_time(clock.now())
    assert all(before <= s <= after for s in stamped)
    assert stamped == sorted(stamped)


def test_another_clock_is_formatted_from_its_now():
    clock = FakeClock("2026-11-22T10:00:00.123Z")
    assert record_now(clock) == "2026-11-22T10:00:00.123Z"
