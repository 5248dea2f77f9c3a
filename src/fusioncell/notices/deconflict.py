"""Deconfliction: a new activity notice against the agreed zones and against the other parties' notices,
in space (metres, not degrees) and time. Pure: no database; shapes are projected by the caller's zone.

A notice is its shape widened by its radius (`radius_m`, 0 for none): a Point with a radius is a disc, exactly,
not a polygon approximating it. So the distance between two notices is max(0, d(shape, shape) - r1 - r2)
(for two discs, the distance between the centres less both radii), and a notice meets a zone when its shape
comes within its radius of the zone (`distance_m`, `meets`). The index (notices.index) and the PostGIS
baseline (bench/deconfliction.py) compute the same."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import shapely
from shapely.geometry.base import BaseGeometry

from fusioncell.geo import rules as zone_rules

DEFAULT_SEPARATION_M = 1000.0


@dataclass(frozen=True)
class NoticeShape:
    seq: int
    party: str
    activity: str
    start: datetime
    end: datetime
    geom: BaseGeometry
    composition: dict[str, int] = field(default_factory=dict)
    calibre_mm: int | None = None
    altitude: tuple[float, float] | None = None  # metres, for flights
    radius_m: float = 0.0  # the notice is every point within this distance of geom: a disc, for a Point


@dataclass(frozen=True)
class ZoneShape:
    id: str
    geom: BaseGeometry
    rules: list[Any]
    valid_from: datetime
    valid_until: datetime | None


class Finding(NamedTuple):
    """A tuple (immutable, compared and printed by its fields): a busy notice has hundreds of conflicts, and a
    tuple is the cheapest object to make for each."""

    type: str  # rule | conflict | notice_period
    detail: str
    zone: str | None = None
    other: int | None = None
    distance_m: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in zip(self._fields, self, strict=True) if v is not None}


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def _altitudes_meet(a: NoticeShape, b: NoticeShape) -> bool:
    if a.altitude is None or b.altitude is None:
        return True  # a ground activity is at every altitude a flight could descend to
    return a.altitude[0] <= b.altitude[1] and b.altitude[0] <= a.altitude[1]


def distance_m(a: BaseGeometry, a_radius: float, b: BaseGeometry, b_radius: float) -> float:
    """The distance in metres between shape a widened by a_radius and shape b widened by b_radius, exactly:
    max(0, d(a, b) - a_radius - b_radius). Between two points (two discs) it is computed without GEOS, with the
    same floating-point operations as the index's numpy (notices.index), so that both give the same figure."""
    if a.geom_type == "Point" and b.geom_type == "Point":
        (ax, ay), (bx, by) = a.coords[0], b.coords[0]
        dx, dy = ax - bx, ay - by
        d = math.sqrt(dx * dx + dy * dy)
    else:
        d = a.distance(b)
    gap = d - a_radius - b_radius
    return gap if gap > 0.0 else 0.0


def meets(zone: BaseGeometry, geom: BaseGeometry, radius: float) -> bool:
    """Whether a shape widened by `radius` meets a zone: the zone comes within `radius` of the shape (a disc
    meets a zone when its centre is within its radius of it); without a radius, plain intersection."""
    return bool(shapely.dwithin(zone, geom, radius)) if radius > 0 else zone.intersects(geom)


def separation_m(touched: list[ZoneShape]) -> float:
    """The distance other parties' notices must keep: the cell's default, or a touched zone's min_distance."""
    return max([DEFAULT_SEPARATION_M] + [d for z in touched if (d := zone_rules.min_distance(z.rules))])


def check(notice: NoticeShape, *, zones: list[ZoneShape], others: list[NoticeShape], filed_at: datetime,
          min_notice_hours: float = 0.0) -> list[Finding]:
    """Every finding for a notice: zone rules it would break (limits summed over the same party's concurrent
    notices in the zone), conflicts with other parties' notices, and a notice period too short."""
    active = [z for z in zones if z.valid_from < notice.end and (z.valid_until is None or notice.start < z.valid_until)]
    touched = [z for z in active if meets(z.geom, notice.geom, notice.radius_m)]
    concurrent = [o for o in others if o.party == notice.party and o.seq != notice.seq
                  and overlaps(o.start, o.end, notice.start, notice.end)]
    in_zones = [(zone, [o.composition for o in concurrent if meets(zone.geom, o.geom, o.radius_m)])
                for zone in touched]
    near = [(other.seq, other.party, distance_m(notice.geom, notice.radius_m, other.geom, other.radius_m))
            for other in others
            if other.party != notice.party and overlaps(other.start, other.end, notice.start, notice.end)
            and _altitudes_meet(notice, other)]
    return findings(notice, touched=in_zones, near=near, filed_at=filed_at, min_notice_hours=min_notice_hours)


def findings(notice: NoticeShape, *, touched: list[tuple[ZoneShape, list[dict[str, int]]]],
             near: list[tuple[int, str, float]], filed_at: datetime, min_notice_hours: float = 0.0,
             separation: float | None = None) -> list[Finding]:
    """The findings, once the searching is done (by `check` over everything, or by an index): `touched`, the
    zones in effect that the notice intersects, each with the compositions of the party's other notices in it
    at overlapping times (only their sum matters); `near`, other parties' notices overlapping in time and
    altitude, as (seq, party, distance in metres), at least those closer than the separation; `separation`,
    that of the touched zones (`separation_m`), when the caller has it already."""
    found: list[Finding] = []
    hours = (notice.start - filed_at).total_seconds() / 3600
    for zone, in_zone in touched:
        for breach in zone_rules.evaluate(zone.rules, party=notice.party, activity=notice.activity,
                                          composition=notice.composition, calibre_mm=notice.calibre_mm,
                                          notice_hours=hours, concurrent=in_zone):
            kind = "notice_period" if breach.rule == "min_notice" else "rule"
            found.append(Finding(kind, breach.detail, zone=zone.id))
    if hours < min_notice_hours and not any(f.type == "notice_period" for f in found):
        found.append(Finding("notice_period", f"notified {hours:.1f} h ahead; the cell needs {min_notice_hours:g} h"))
    if separation is None:
        separation = separation_m([zone for zone, _ in touched])
    tail = f" at overlapping times (separation {separation:,.0f} m)"
    make = tuple.__new__  # Finding("conflict", detail, None, other, distance_m), without a call to its __new__
    found += [make(Finding, ("conflict", f"within {distance:,.0f} m of notice {seq} of {party}{tail}", None, seq,
                             round(distance, 1)))
              for seq, party, distance in near if distance < separation]
    return found
