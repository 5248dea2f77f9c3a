"""The deconfliction engine (pure): rules, concurrent limits, conflicts in metres and time, notice periods."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from pyproj import Geod
from shapely.geometry import Point, Polygon

from fusioncell.geo.rules import Rule
from fusioncell.notices.deconflict import (
    NoticeShape,
    ZoneShape,
    check,
    distance_m,
    meets,
)
from fusioncell.notices.geometry import project, utm_zone, widened

RULES = TypeAdapter(list[Rule])
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)
UTM = utm_zone(35.85, 33.1)
ZONE = {"type": "Polygon", "coordinates": [[[35.80, 33.40], [35.89, 33.40], [35.93, 32.76], [35.87, 32.76],
                                            [35.80, 33.40]]]}


def notice(seq, party, point, *, radius=300, hours=(0, 2), composition=None, activity="patrol", altitude=None,
           calibre=None):
    geometry = {"type": "Point", "coordinates": list(point), "radius_m": radius}
    geom, radius = widened(geometry, UTM)
    return NoticeShape(seq, party, activity, T0 + timedelta(hours=hours[0]), T0 + timedelta(hours=hours[1]),
                       geom, composition or {}, calibre, altitude, radius)


def zone(rules, **kw):
    return ZoneShape("aos", project(ZONE, UTM), RULES.validate_python(rules), T0 - timedelta(days=1), None, **kw)


FILED = T0 - timedelta(hours=72)


def test_no_presence_and_banned_categories():
    z = zone([{"type": "no_presence", "parties": ["IL"]}, {"type": "banned", "categories": ["air_defence"]}])
    inside = (35.86, 33.17)
    assert [f.type for f in check(notice(1, "IL", inside, composition={"troops": 6}), zones=[z], others=[],
                                  filed_at=FILED)] == ["rule"]
    assert check(notice(1, "IL", inside), zones=[z], others=[], filed_at=FILED) == []  # no military: allowed
    found = check(notice(2, "SY", inside, composition={"air_defence": 1}), zones=[z], others=[], filed_at=FILED)
    assert [f.detail for f in found] == ["banned here: air_defence"]
    assert check(notice(3, "IL", (35.5, 33.0), composition={"troops": 6}), zones=[z], others=[], filed_at=FILED) == []


def test_limits_are_summed_over_the_partys_concurrent_notices_in_the_zone():
    z = zone([{"type": "max_count", "category": "tanks", "max": 75}])
    first = notice(1, "SY", (35.87, 33.1), composition={"tanks": 50})
    later = notice(2, "SY", (35.88, 33.0), composition={"tanks": 30}, hours=(1, 3))
    apart = notice(3, "SY", (35.88, 33.0), composition={"tanks": 30}, hours=(5, 6))
    assert "80 with the party's other notices" in check(later, zones=[z], others=[first], filed_at=FILED)[0].detail
    assert check(apart, zones=[z], others=[first], filed_at=FILED) == []  # not at the same time



def test_rules_of_a_subclass_are_read_as_their_kind():
    """evaluate looks a rule's kind up by its class, and a subclass's by isinstance: the same breaches."""
    from fusioncell.geo.rules import MaxCount, evaluate, limits_concurrent

    class Stricter(MaxCount):
        pass

    plain = MaxCount(type="max_count", category="tanks", max=10)
    sub = Stricter(type="max_count", category="tanks", max=10)
    args = {"party": "SY", "activity": "exercise", "composition": {"tanks": 8}, "calibre_mm": None,
            "notice_hours": 30.0, "concurrent": [{"tanks": 5}]}
    assert evaluate([sub], **args) == evaluate([plain], **args) != []
    assert limits_concurrent([sub]) and not limits_concurrent(RULES.validate_python(
        [{"type": "min_distance", "metres": 2000}, {"type": "no_presence", "parties": ["IL"]}]))

def test_artillery_calibre_limit():
    z = zone([{"type": "max_count", "category": "artillery", "max": 36, "max_calibre_mm": 122}])
    assert check(notice(1, "SY", (35.87, 33.1), composition={"artillery": 4}, calibre=155), zones=[z], others=[],
                 filed_at=FILED)[0].detail.startswith("artillery of 155 mm")


def test_conflicts_need_other_party_overlapping_time_and_distance_in_metres():
    il = notice(1, "IL", (35.86, 33.17), radius=500)
    near = notice(2, "SY", (35.866, 33.17), radius=0.1)  # about 560 m east
    assert [f.type for f in check(near, zones=[], others=[il], filed_at=FILED)] == ["conflict"]
    later = notice(3, "SY", (35.866, 33.17), radius=0.1, hours=(2, 3))
    assert check(later, zones=[], others=[il], filed_at=FILED) == []  # windows touch, do not overlap
    same_party = notice(4, "IL", (35.866, 33.17), radius=0.1)
    assert check(same_party, zones=[], others=[il], filed_at=FILED) == []
    far = notice(5, "SY", (35.90, 33.17), radius=0.1)  # about 3.7 km away
    assert check(far, zones=[], others=[il], filed_at=FILED) == []
    wide = zone([{"type": "min_distance", "metres": 5000}])
    assert [f.type for f in check(far, zones=[wide], others=[il], filed_at=FILED)] == ["conflict"]


def test_flights_conflict_only_when_their_altitude_bands_meet():
    low = notice(1, "IL", (35.86, 33.17), activity="flight", altitude=(0, 1000))
    high = notice(2, "SY", (35.86, 33.17), activity="flight", altitude=(3000, 5000))
    mid = notice(3, "SY", (35.86, 33.17), activity="flight", altitude=(800, 2000))
    assert check(high, zones=[], others=[low], filed_at=FILED) == []
    assert [f.type for f in check(mid, zones=[], others=[low], filed_at=FILED)] == ["conflict"]


def test_notice_period_from_the_zone_and_from_the_cell():
    z = zone([{"type": "min_notice", "hours": 48, "activity": "humanitarian_convoy"}])
    convoy = notice(1, "SY", (35.86, 33.17), activity="humanitarian_convoy")
    late = T0 - timedelta(hours=20)
    assert [f.type for f in check(convoy, zones=[z], others=[], filed_at=late)] == ["notice_period"]
    assert check(convoy, zones=[z], others=[], filed_at=FILED) == []
    patrol = notice(2, "SY", (35.5, 33.17))
    assert [f.type for f in check(patrol, zones=[], others=[], filed_at=late, min_notice_hours=24)] == ["notice_period"]


@settings(max_examples=60, deadline=None)
@given(st.floats(35.6, 36.1), st.floats(32.8, 33.4), st.floats(35.6, 36.1), st.floats(32.8, 33.4))
def test_projected_distance_matches_the_ellipsoid(lon1, lat1, lon2, lat2):
    """Distances are metres on the ellipsoid (within 0.5 % in this area), never degrees."""
    a = project({"type": "Point", "coordinates": [lon1, lat1]}, UTM)
    b = project({"type": "Point", "coordinates": [lon2, lat2]}, UTM)
    geodesic = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)[2]
    assert a.distance(b) == pytest.approx(geodesic, rel=0.005, abs=1.0)


def test_a_point_with_a_radius_is_a_disc_exactly():
    """Distances to a notice given as a point and a radius are those of the circle, not of a polygon drawn
    round it; a disc meets a zone when its centre comes within its radius of the zone."""
    a = notice(1, "IL", (35.86, 33.17), radius=500)
    b = notice(2, "SY", (35.875, 33.17), radius=700)  # centres about 1.4 km apart
    assert a.geom.geom_type == b.geom.geom_type == "Point"
    gap = a.geom.distance(b.geom) - 1200
    assert distance_m(a.geom, a.radius_m, b.geom, b.radius_m) == pytest.approx(gap, abs=1e-9)
    [conflict] = check(b, zones=[], others=[a], filed_at=FILED)
    assert conflict.distance_m == round(gap, 1) and 0 < gap < 1000
    overlapping = notice(3, "SY", (35.865, 33.17), radius=800)
    assert distance_m(a.geom, a.radius_m, overlapping.geom, overlapping.radius_m) == 0.0
    # Towards the middle of a side of the 64-gon that used to stand for the disc: 400.6 m then, 400 m now.
    x, y = a.geom.x + 900 * math.cos(math.pi / 64), a.geom.y + 900 * math.sin(math.pi / 64)
    assert distance_m(a.geom, a.radius_m, Point(x, y), 0.0) == pytest.approx(400, abs=1e-9)
    # A zone 300 m from the centre: met by a disc of 500 m, not by one of 200 m.
    cx, cy = a.geom.x, a.geom.y
    edge = Polygon([(cx + 300, cy - 1000), (cx + 2000, cy - 1000), (cx + 2000, cy + 1000), (cx + 300, cy + 1000)])
    assert meets(edge, a.geom, 500) and not meets(edge, a.geom, 200)
    limit = ZoneShape("edge", edge, RULES.validate_python([{"type": "no_presence", "parties": ["IL"]}]),
                      T0 - timedelta(days=1), None)
    assert [f.zone for f in check(notice(4, "IL", (35.86, 33.17), radius=500, composition={"troops": 5}),
                                  zones=[limit], others=[], filed_at=FILED)] == ["edge"]
    assert check(notice(5, "IL", (35.86, 33.17), radius=200, composition={"troops": 5}), zones=[limit], others=[],
                 filed_at=FILED) == []
