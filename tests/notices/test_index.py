"""The in-memory notice index against brute force, through adds, amendments, cancellations and expiry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point

from fusioncell.notices.deconflict import NoticeShape, overlaps
from fusioncell.notices.index import NoticeIndex

T0 = datetime(2026, 11, 24, tzinfo=timezone.utc)

coords = st.floats(0, 20000, allow_nan=False)
shapes = st.one_of(
    st.tuples(coords, coords, st.floats(1, 3000)).map(lambda p: Point(p[0], p[1]).buffer(p[2], 8)),
    st.tuples(coords, coords, coords, coords).map(lambda p: LineString([(p[0], p[1]), (p[2], p[3])])),
)
windows = st.tuples(st.integers(0, 48), st.integers(1, 12))


def shape_of(seq, geom, window):
    start = T0 + timedelta(hours=window[0])
    return NoticeShape(seq, "IL", "patrol", start, start + timedelta(hours=window[1]), geom)


operations = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 30), shapes, windows),
    st.tuples(st.just("remove"), st.integers(0, 30)),
    st.tuples(st.just("expire"), st.integers(0, 60)),
), max_size=60)


@settings(max_examples=150, deadline=None)
@given(operations, st.lists(st.tuples(shapes, windows, st.floats(0, 5000)), min_size=1, max_size=5),
       st.sampled_from([500.0, 2000.0, 7000.0]))
def test_index_answers_as_brute_force_does(ops, queries, cell_m):
    index = NoticeIndex(cell_m=cell_m)
    truth: dict[int, NoticeShape] = {}
    for op in ops:
        if op[0] == "add":  # a new notice, or an amendment of an existing one
            notice = shape_of(op[1], op[2], op[3])
            index.add(notice)
            truth[op[1]] = notice
        elif op[0] == "remove":
            index.remove(op[1])
            truth.pop(op[1], None)
        else:
            now = T0 + timedelta(hours=op[1])
            index.expire(now)
            truth = {s: n for s, n in truth.items() if n.end > now}
    assert len(index) == len(truth)
    for geom, window, distance in queries:
        probe = shape_of(-1, geom, window)
        expected = [n.seq for _s, n in sorted(truth.items())
                    if overlaps(n.start, n.end, probe.start, probe.end) and n.geom.distance(geom) <= distance]
        assert [n.seq for n in index.near(geom, probe.start, probe.end, distance)] == expected


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(shapes, windows, st.sampled_from(["IL", "SY"]), st.integers(0, 60)), max_size=25),
       st.lists(st.tuples(coords, coords, st.floats(500, 6000)), max_size=4), shapes, windows,
       st.sampled_from(["IL", "SY"]))
def test_deconflictor_finds_what_the_full_check_finds(existing, zone_specs, geom, window, party):
    """The indexed check gives the same findings as checking against every zone and every notice."""
    from pydantic import TypeAdapter

    from fusioncell.geo.rules import Rule
    from fusioncell.notices.deconflict import ZoneShape, check
    from fusioncell.notices.index import Deconflictor

    rules = TypeAdapter(list[Rule]).validate_python([
        {"type": "max_count", "category": "tanks", "max": 50}, {"type": "min_distance", "metres": 2500}])
    zones = [ZoneShape(f"z{i}", Point(x, y).buffer(r, 8), rules, T0 - timedelta(days=1), None)
             for i, (x, y, r) in enumerate(zone_specs)]
    others = []
    for seq, (g, w, p, tanks) in enumerate(existing):
        start = T0 + timedelta(hours=w[0])
        others.append(NoticeShape(seq, p, "exercise", start, start + timedelta(hours=w[1]), g, {"tanks": tanks}))
    start = T0 + timedelta(hours=window[0])
    notice = NoticeShape(999, party, "exercise", start, start + timedelta(hours=window[1]), geom, {"tanks": 20})
    fast = Deconflictor(cell_m=3000)
    fast.set_zones(zones)
    for other in others:
        fast.add(other)
    filed = T0 - timedelta(days=3)
    expected = check(notice, zones=zones, others=others, filed_at=filed)
    assert sorted(map(repr, fast.check(notice, filed_at=filed))) == sorted(map(repr, expected))
