"""The in-memory notice index and deconflictor against brute force, through adds, amendments, cancellations and
expiry, with queries in between (so that the tree, the scan of recent additions and compaction all take part)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from shapely.geometry import LineString, Point, Polygon

from fusioncell.geo.rules import Rule
from fusioncell.notices.deconflict import (
    Finding,
    NoticeShape,
    ZoneShape,
    check,
    distance_m,
    overlaps,
)
from fusioncell.notices.index import Deconflictor, NoticeIndex

T0 = datetime(2026, 11, 24, tzinfo=timezone.utc)

coords = st.floats(0, 20000, allow_nan=False)
# (shape, radius in metres): a notice is the shape widened by the radius (a disc, for a Point)
shapes = st.one_of(
    st.tuples(coords, coords, st.floats(1, 3000)).map(lambda p: (Point(p[0], p[1]).buffer(p[2], 8), 0.0)),
    st.tuples(coords, coords, st.floats(1, 3000)).map(lambda p: (Point(p[0], p[1]), p[2])),
    st.tuples(coords, coords, st.sampled_from([0.0, 0.0, 250.0])).map(lambda p: (Point(p[0], p[1]), p[2])),
    st.tuples(coords, coords, coords, coords, st.sampled_from([0.0, 0.0, 400.0])).map(
        lambda p: (LineString([(p[0], p[1]), (p[2], p[3])]), p[4])),
    st.tuples(coords, coords, st.floats(10, 2000)).map(
        lambda p: (Polygon([(p[0], p[1]), (p[0] + p[2], p[1]), (p[0], p[1] + p[2] / 2)]), 0.0)),
)
windows = st.tuples(st.integers(0, 48), st.integers(1, 12))
# (delta_max, compact_min): rebuild the tree at every query, now and then, or never in a test
tunings = st.sampled_from([(0, 0), (3, 2), (4096, 4096)])


def shape_of(seq, widened, window, party="IL", composition=None, altitude=None):
    geom, radius = widened
    start = T0 + timedelta(hours=window[0])
    return NoticeShape(seq, party, "patrol" if altitude is None else "flight", start,
                       start + timedelta(hours=window[1]), geom, composition or {}, None, altitude, radius)


operations = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 30), shapes, windows),
    st.tuples(st.just("remove"), st.integers(0, 30)),
    st.tuples(st.just("expire"), st.integers(0, 60)),
    st.tuples(st.just("query"), shapes, windows, st.floats(0, 5000)),
), max_size=60)


@settings(max_examples=200, deadline=None)
@given(operations, st.lists(st.tuples(shapes, windows, st.floats(0, 5000)), min_size=1, max_size=5), tunings)
def test_index_answers_as_brute_force_does(ops, queries, tuning):
    index = NoticeIndex(delta_max=tuning[0], compact_min=tuning[1])
    truth: dict[int, NoticeShape] = {}

    def same_as_truth(widened, window, distance):
        probe = shape_of(-1, widened, window)
        expected = [n.seq for _s, n in sorted(truth.items()) if overlaps(n.start, n.end, probe.start, probe.end)
                    and distance_m(probe.geom, probe.radius_m, n.geom, n.radius_m) <= distance]
        found = index.near(probe.geom, probe.start, probe.end, distance, probe.radius_m)
        assert [n.seq for n in found] == expected

    for op in ops:
        if op[0] == "add":  # a new notice, or an amendment of an existing one
            notice = shape_of(op[1], op[2], op[3])
            index.add(notice)
            truth[op[1]] = notice
        elif op[0] == "remove":
            index.remove(op[1])
            truth.pop(op[1], None)
        elif op[0] == "expire":
            now = T0 + timedelta(hours=op[1])
            index.expire(now)
            truth = {s: n for s, n in truth.items() if n.end > now}
        else:
            same_as_truth(*op[1:])
    assert len(index) == len(truth)
    assert [n.seq for n in index.all()] == sorted(truth)
    for geom, window, distance in queries:
        same_as_truth(geom, window, distance)


RULES = TypeAdapter(list[Rule]).validate_python
rule_sets = st.sampled_from([
    [{"type": "max_count", "category": "tanks", "max": 50}, {"type": "min_distance", "metres": 2500}],
    [{"type": "max_count", "category": "troops", "max": 30}],
    [{"type": "max_count", "category": "tanks", "max": 0}, {"type": "min_notice", "hours": 12}],
    [{"type": "no_presence", "parties": ["SY"]}, {"type": "min_distance", "metres": 4000}],
])
zone_specs = st.lists(st.tuples(coords, coords, st.floats(500, 6000), rule_sets, st.integers(-2, 40),
                                st.one_of(st.none(), st.integers(1, 60))), max_size=4)
notice_specs = st.tuples(shapes, windows, st.sampled_from(["IL", "SY", "US"]), st.integers(0, 60), st.integers(0, 40),
                         st.one_of(st.none(), st.tuples(st.integers(0, 3000), st.integers(0, 3000))))
deconflictor_ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 25), notice_specs),
    st.tuples(st.just("remove"), st.integers(0, 25)),
    st.tuples(st.just("expire"), st.integers(0, 60)),
    st.tuples(st.just("check"), notice_specs, st.integers(0, 60)),
), max_size=40)


def notice_of(seq, spec):
    geom, window, party, tanks, troops, band = spec
    altitude = None if band is None else (min(band), max(band))
    return shape_of(seq, geom, window, party, {"tanks": tanks, "troops": troops}, altitude)


@settings(max_examples=150, deadline=None)
@given(deconflictor_ops, zone_specs, tunings, st.booleans())
def test_deconflictor_finds_what_the_full_check_finds(ops, zone_specs, tuning, zones_first):
    """The indexed check gives the same findings as checking against every zone and every active notice,
    as notices are added, amended, cancelled and expire."""
    zones = [ZoneShape(f"z{i}", Point(x, y).buffer(r, 8), RULES(rules), T0 + timedelta(hours=start),
                       None if length is None else T0 + timedelta(hours=start + length))
             for i, (x, y, r, rules, start, length) in enumerate(zone_specs)]
    fast = Deconflictor(delta_max=tuning[0], compact_min=tuning[1])
    truth: dict[int, NoticeShape] = {}
    if zones_first:
        fast.set_zones(zones)
    filed = T0 - timedelta(hours=6)
    for i, op in enumerate(ops):
        if op[0] == "add":
            truth[op[1]] = notice_of(op[1], op[2])
            fast.add(truth[op[1]])
        elif op[0] == "remove":
            fast.remove(op[1])
            truth.pop(op[1], None)
        elif op[0] == "expire":
            now = T0 + timedelta(hours=op[1])
            fast.expire(now)
            truth = {s: n for s, n in truth.items() if n.end > now}
        else:
            if i < len(ops) // 2 and not zones_first:
                continue  # zones come in later, over the notices already there
            if not fast.zones and zones:
                fast.set_zones(zones)
            if op[2] in truth:  # an amendment: the server puts the new version in the index, then checks it
                notice = truth[op[2]] = notice_of(op[2], op[1])
                fast.add(notice)
            else:  # a notice not in the index
                notice = notice_of(1000 + i, op[1])
            others = [n for n in truth.values() if n.seq != notice.seq]
            expected = check(notice, zones=zones, others=others, filed_at=filed, min_notice_hours=6)
            found = fast.check(notice, filed_at=filed, min_notice_hours=6)
            assert sorted(map(repr, found)) == sorted(map(repr, expected))
    if not fast.zones:
        fast.set_zones(zones)
    for seq, notice in sorted(truth.items()):  # every active notice checked again, as it stands
        others = [n for n in truth.values() if n.seq != seq]
        expected = check(notice, zones=zones, others=others, filed_at=filed)
        assert sorted(map(repr, fast.check(notice, filed_at=filed))) == sorted(map(repr, expected)), seq


small = st.one_of(
    st.tuples(st.floats(0, 4000), st.floats(0, 4000), st.floats(1, 1500)).map(lambda p: (Point(p[0], p[1]), p[2])),
    st.tuples(st.floats(0, 4000), st.floats(0, 4000), st.floats(1, 1500)).map(
        lambda p: (Point(p[0], p[1]).buffer(p[2], 8), 0.0)))
crowd = st.tuples(small, st.tuples(st.integers(0, 6), st.integers(1, 12)), st.sampled_from(["IL", "SY"]),
                  st.integers(0, 30), st.integers(0, 40), st.none())


@settings(max_examples=100, deadline=None)
@given(st.lists(crowd, min_size=1, max_size=30), st.data(), st.sampled_from([(0, 0), (2, 1), (4096, 4096)]))
def test_deconflictor_after_most_notices_leave(notices, data, tuning):
    """Crowded zones, most notices cancelled, expired or amended, then checks: dead slots must not count, and
    compaction (when the dead outnumber the live) must carry each zone's notices to their new slots."""
    zones = [ZoneShape(f"z{i}", Point(x, y).buffer(r, 8), RULES(rules), T0 - timedelta(days=1), None)
             for i, (x, y, r, rules) in enumerate([(1000, 1000, 2500, [{"type": "max_count", "category": "tanks",
                                                                        "max": 40}]),
                                                   (3000, 3000, 2000, [{"type": "max_count", "category": "troops",
                                                                        "max": 50}])])]
    fast = Deconflictor(delta_max=tuning[0], compact_min=tuning[1])
    fast.set_zones(zones)
    truth = {}
    for seq, spec in enumerate(notices):
        truth[seq] = notice_of(seq, spec)
        fast.add(truth[seq])
    for seq in data.draw(st.lists(st.sampled_from(sorted(truth)), unique=True)):
        action = data.draw(st.sampled_from(["cancel", "amend"]))
        if action == "cancel":
            fast.remove(seq)
            del truth[seq]
        else:
            truth[seq] = notice_of(seq, data.draw(crowd))
            fast.add(truth[seq])
    now = T0 + timedelta(hours=data.draw(st.integers(0, 10)))
    fast.expire(now)
    truth = {s: n for s, n in truth.items() if n.end > now}
    filed = T0 - timedelta(hours=6)
    for spec in data.draw(st.lists(crowd, min_size=1, max_size=3)):
        notice = notice_of(1000, spec)
        expected = check(notice, zones=zones, others=list(truth.values()), filed_at=filed)
        assert sorted(map(repr, fast.check(notice, filed_at=filed))) == sorted(map(repr, expected))


# Shapes for the numpy distances: lines of 2-6 vertices (a repeated vertex now and then: a degenerate segment),
# triangles and quadrilaterals, some with a hole; points anywhere, on a vertex, or on a segment.
metres = st.floats(0, 5000, allow_nan=False).map(lambda v: round(v, 3))  # no subnormal differences
line_shapes = st.lists(st.tuples(metres, metres), min_size=2, max_size=6).map(
    lambda c: LineString(c + [c[-1]] if len(c) % 3 == 0 else c))
polygon_shapes = st.tuples(metres, metres, st.floats(5, 2000), st.booleans()).map(
    lambda p: Polygon([(p[0], p[1]), (p[0] + p[2], p[1]), (p[0] + p[2], p[1] + p[2] / 2), (p[0], p[1] + p[2])],
                      [[(p[0] + p[2] / 10, p[1] + p[2] / 10), (p[0] + p[2] / 3, p[1] + p[2] / 10),
                        (p[0] + p[2] / 10, p[1] + p[2] / 3)]] if p[3] else None))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(line_shapes, polygon_shapes), min_size=64, max_size=120),
       st.lists(st.tuples(metres, metres), min_size=64, max_size=120), st.integers(0, 10 ** 6))
def test_numpy_distances_are_geos_distances(shapes, points, pick):
    """Point to LineString / Polygon distances in numpy (from a point to many shapes, or from a shape to many
    discs) are GEOS's, to within a micrometre (in practice bit for bit), a point inside a polygon at 0."""
    import numpy as np
    import shapely

    index = NoticeIndex()
    for seq, geom in enumerate(shapes):
        index.add(shape_of(seq, (geom, 0.0), (0, 1)))
    for seq, (x, y) in enumerate(points, start=len(shapes)):
        index.add(shape_of(seq, (Point(x, y), 0.0), (0, 1)))
    index.refresh()
    first = shapes[pick % len(shapes)]
    vertex = shapely.get_coordinates(first)[pick % 2]
    on_segment = shapely.get_coordinates(shapely.line_interpolate_point(first.boundary if isinstance(
        first, Polygon) else first, 0.3, normalized=True))[0]
    inside = shapely.get_coordinates(first.representative_point())[0]
    shape_slots = np.arange(len(shapes))
    for x, y in [*points[:5], vertex, on_segment, inside]:
        probe = Point(x, y)
        mine = index.distances(probe, 0.0, shape_slots)
        assert np.abs(mine - shapely.distance(probe, np.array(shapes, dtype=object))).max() <= 1e-6
    disc_slots = np.arange(len(shapes), len(shapes) + len(points))
    for probe in shapes[:5]:
        mine = index.distances(probe, 0.0, disc_slots)
        assert np.abs(mine - shapely.distance(probe, shapely.points(points))).max() <= 1e-6


def test_conflict_findings_round_as_python_does():
    """_conflicts rounds in numpy; the strings and figures are those of deconflict.findings, halves included."""
    import numpy as np

    from fusioncell.notices.index import _conflicts

    rng = np.random.default_rng(7)
    values = [0.0, 0.05, 0.15, 0.25, 0.35, 0.45, 2.5, 3.5, 999.95, 1000.05, 1234.5, 1234.45, 0.5, 1.5, 12345.65]
    values += (rng.integers(0, 20_000_000, 2000) / 1000).tolist() + rng.uniform(0, 5000, 2000).tolist()
    distances = np.array(values)
    seqs = np.arange(len(values))
    parties = np.zeros(len(values), np.int32)
    got = _conflicts(seqs, parties, distances, ["SY"], 1000.0)
    tail = " at overlapping times (separation 1,000 m)"
    assert got == [Finding("conflict", f"within {d:,.0f} m of notice {s} of SY{tail}", None, s, round(d, 1))
                   for s, d in zip(seqs.tolist(), values, strict=True)]
    # past the cache of formatted metres (the distances under a large separation), and two parties
    far = [99_999.5, 100_000.5, 123_456.75, 2_500_000.04]
    got = _conflicts(np.arange(4), np.array([0, 1, 1, 0], np.int32), np.array(far), ["IL", "SY"], 3e6)
    tail = " at overlapping times (separation 3,000,000 m)"
    assert got == [Finding("conflict", f"within {d:,.0f} m of notice {s} of {p}{tail}", None, s, round(d, 1))
                   for s, d, p in zip(range(4), far, ["IL", "SY", "SY", "IL"], strict=True)]


@settings(max_examples=60, deadline=None)
@given(st.lists(crowd, min_size=1, max_size=40), st.data(), st.booleans(), st.booleans(), st.booleans())
def test_deconflictor_sums_and_zone_search_either_way(notices, data, ranks, tree, circles):
    """The zone limits summed from running sums whether times enter the keys as offsets or as ranks (far-apart
    times), over merged entries, recent ones and removed ones, with the notice checked in the index (an
    amendment); the zones found by a scan of their bounds or by their tree; candidates first sifted by their
    bounding circles or not."""
    from fusioncell.notices import index as index_module
    from fusioncell.notices.index import _Members

    zones = [ZoneShape(f"z{i}", Point(x, y).buffer(r, 8), RULES(rules), T0 - timedelta(days=1), None)
             for i, (x, y, r, rules) in enumerate([(1000, 1000, 2500, [{"type": "max_count", "category": "tanks",
                                                                        "max": 40}]),
                                                   (3000, 3000, 2000, [{"type": "max_count", "category": "troops",
                                                                        "max": 50}]),
                                                   (2000, 500, 1500, [{"type": "max_count", "category": "tanks",
                                                                       "max": 10}])])]
    limit, circles_min = _Members.key_limit, index_module._CIRCLES_MIN
    _Members.key_limit = 0 if ranks else limit
    index_module._CIRCLES_MIN = 0 if circles else 10 ** 9
    try:
        fast = Deconflictor(delta_max=8, compact_min=8)
        fast.zone_scan_max = -1 if tree else 4096
        half = len(notices) // 2
        truth = {}
        for seq, spec in enumerate(notices[:half]):
            truth[seq] = notice_of(seq, spec)
            fast.add(truth[seq])
        fast.set_zones(zones)  # the first half merged, the rest added after
        for seq, spec in enumerate(notices[half:], start=half):
            truth[seq] = notice_of(seq, spec)
            fast.add(truth[seq])
        for seq in data.draw(st.lists(st.sampled_from(sorted(truth)), unique=True, max_size=10)):
            fast.remove(seq)
            del truth[seq]
        filed = T0 - timedelta(hours=6)
        for seq, notice in sorted(truth.items()):
            others = [n for n in truth.values() if n.seq != seq]
            expected = check(notice, zones=zones, others=others, filed_at=filed)
            assert sorted(map(repr, fast.check(notice, filed_at=filed))) == sorted(map(repr, expected)), seq
    finally:
        _Members.key_limit, index_module._CIRCLES_MIN = limit, circles_min


def test_a_check_never_rebuilds_the_trees():
    """Past delta_max additions, the add rebuilds the trees (and compacts), not the check that follows."""
    fast = Deconflictor(delta_max=4, compact_min=4)
    fast.set_zones([ZoneShape("z", Point(0, 0).buffer(500, 8), RULES([]), T0 - timedelta(days=1), None)])
    index = fast.notices
    for seq in range(12):
        fast.add(shape_of(seq, (Point(seq * 10.0, 0), 50.0), (0, 2), "IL" if seq % 2 else "SY"))
        built, trees = index._base_n, dict(index._trees)
        assert index._n - built <= 4
        fast.check(shape_of(100, (Point(0, 0), 10.0), (0, 2), "SY"), filed_at=T0)
        assert (index._base_n, index._trees) == (built, trees)
    for seq in range(9):
        fast.remove(seq)
        assert index._dead <= max(4, len(index))
