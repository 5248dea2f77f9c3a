"""Deconfliction: a new activity notice against the agreed zones and against the other parties' notices,
in space (metres, not degrees) and time. Pure: no database; shapes are projected by the caller's zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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


@dataclass(frozen=True)
class ZoneShape:
    id: str
    geom: BaseGeometry
    rules: list[Any]
    valid_from: datetime
    valid_until: datetime | None


@dataclass(frozen=True)
class Finding:
    type: str  # rule | conflict | notice_period
    detail: str
    zone: str | None = None
    other: int | None = None
    distance_m: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def _altitudes_meet(a: NoticeShape, b: NoticeShape) -> bool:
    if a.altitude is None or b.altitude is None:
        return True  # a ground activity is at every altitude a flight could descend to
    return a.altitude[0] <= b.altitude[1] and b.altitude[0] <= a.altitude[1]


def check(notice: NoticeShape, *, zones: list[ZoneShape], others: list[NoticeShape], filed_at: datetime,
          min_notice_hours: float = 0.0) -> list[Finding]:
    """Every finding for a notice: zone rules it would break (limits summed over the same party's concurrent
    notices in the zone), conflicts with other parties' notices, and a notice period too short."""
    findings: list[Finding] = []
    hours = (notice.start - filed_at).total_seconds() / 3600
    active = [z for z in zones if z.valid_from < notice.end and (z.valid_until is None or notice.start < z.valid_until)]
    touched = [z for z in active if z.geom.intersects(notice.geom)]
    concurrent = [o for o in others if o.party == notice.party and o.seq != notice.seq
                  and overlaps(o.start, o.end, notice.start, notice.end)]
    for zone in touched:
        in_zone = [o.composition for o in concurrent if zone.geom.intersects(o.geom)]
        for breach in zone_rules.evaluate(zone.rules, party=notice.party, activity=notice.activity,
                                          composition=notice.composition, calibre_mm=notice.calibre_mm,
                                          notice_hours=hours, concurrent=in_zone):
            kind = "notice_period" if breach.rule == "min_notice" else "rule"
            findings.append(Finding(kind, breach.detail, zone=zone.id))
    if hours < min_notice_hours and not any(f.type == "notice_period" for f in findings):
        findings.append(Finding("notice_period", f"notified {hours:.1f} h ahead; the cell needs {min_notice_hours:g} h"))
    separation = max([DEFAULT_SEPARATION_M] + [d for z in touched if (d := zone_rules.min_distance(z.rules))])
    for other in others:
        if other.party == notice.party or not overlaps(other.start, other.end, notice.start, notice.end):
            continue
        if not _altitudes_meet(notice, other):
            continue
        distance = notice.geom.distance(other.geom)
        if distance < separation:
            findings.append(Finding("conflict", f"within {distance:,.0f} m of notice {other.seq} of {other.party} "
                                                f"at overlapping times (separation {separation:,.0f} m)",
                                    other=other.seq, distance_m=round(distance, 1)))
    return findings
