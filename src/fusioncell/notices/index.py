"""An in-memory spatial and temporal index of active notices, for checking a new notice in microseconds.
Pure. A uniform grid (cells of `cell_m` metres, in one projected CRS) maps each notice to the cells its
bounds cover; a query gathers the notices in the cells near the new one and keeps those that overlap in time
and lie within the distance. Unlike shapely's STRtree, it takes inserts and removals without a rebuild."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from shapely.geometry.base import BaseGeometry

from fusioncell.notices.deconflict import NoticeShape, overlaps


class NoticeIndex:
    def __init__(self, cell_m: float = 2000.0) -> None:
        self.cell_m = cell_m
        self._notices: dict[int, NoticeShape] = {}
        self._cells: dict[tuple[int, int], set[int]] = defaultdict(set)
        self._keys: dict[int, list[tuple[int, int]]] = {}

    def __len__(self) -> int:
        return len(self._notices)

    def __contains__(self, seq: int) -> bool:
        return seq in self._notices

    def _cover(self, bounds: tuple[float, float, float, float], margin: float = 0.0) -> list[tuple[int, int]]:
        size = self.cell_m
        x0, y0 = math.floor((bounds[0] - margin) / size), math.floor((bounds[1] - margin) / size)
        x1, y1 = math.floor((bounds[2] + margin) / size), math.floor((bounds[3] + margin) / size)
        return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]

    def add(self, notice: NoticeShape) -> None:
        """Add, or replace (an amendment) a notice of the same seq."""
        self.remove(notice.seq)
        keys = self._cover(notice.geom.bounds)
        for key in keys:
            self._cells[key].add(notice.seq)
        self._keys[notice.seq] = keys
        self._notices[notice.seq] = notice

    def remove(self, seq: int) -> None:
        """A cancelled (or replaced) notice leaves the index."""
        for key in self._keys.pop(seq, ()):
            cell = self._cells[key]
            cell.discard(seq)
            if not cell:
                del self._cells[key]
        self._notices.pop(seq, None)

    def expire(self, now: datetime) -> int:
        """Drop notices whose window has ended; returns how many."""
        ended = [seq for seq, n in self._notices.items() if n.end <= now]
        for seq in ended:
            self.remove(seq)
        return len(ended)

    def near(self, geom: BaseGeometry, start: datetime, end: datetime, distance: float) -> list[NoticeShape]:
        """Notices overlapping [start, end) in time and within `distance` metres of geom, by seq."""
        seen: set[int] = set()
        for key in self._cover(geom.bounds, margin=distance):
            seen.update(self._cells.get(key, ()))
        found = []
        for seq in sorted(seen):
            other = self._notices[seq]
            if overlaps(other.start, other.end, start, end) and other.geom.distance(geom) <= distance:
                found.append(other)
        return found

    def all(self) -> list[NoticeShape]:
        return [self._notices[seq] for seq in sorted(self._notices)]


class Deconflictor:
    """Zones and active notices in memory, for `deconflict.check` in microseconds: the notice index for
    others, an STRtree over the zones (they change rarely, so it is rebuilt on change)."""

    def __init__(self, *, cell_m: float = 2000.0, separation_m: float = 0.0) -> None:
        from shapely import STRtree

        self._strtree = STRtree
        self.notices = NoticeIndex(cell_m)
        self.zones: list = []
        self._tree = None
        self.separation_m = separation_m

    def set_zones(self, zones: list) -> None:
        self.zones = list(zones)
        self._tree = self._strtree([z.geom for z in self.zones]) if self.zones else None

    def check(self, notice: NoticeShape, *, filed_at: datetime, min_notice_hours: float = 0.0) -> list:
        from fusioncell.geo import rules as zone_rules
        from fusioncell.notices.deconflict import DEFAULT_SEPARATION_M, check

        touched = [self.zones[i] for i in self._tree.query(notice.geom)] if self._tree is not None else []
        reach = max([DEFAULT_SEPARATION_M, self.separation_m]
                    + [d for z in touched if (d := zone_rules.min_distance(z.rules))])
        # Same-party notices anywhere in the touched zones count towards their limits; others only nearby.
        near = self.notices.near(notice.geom, notice.start, notice.end, reach)
        same = []
        for zone in touched:
            same += [o for o in self.notices.near(zone.geom, notice.start, notice.end, 0.0) if o.party == notice.party]
        others = {o.seq: o for o in near + same if o.seq != notice.seq}
        return check(notice, zones=touched, others=list(others.values()), filed_at=filed_at,
                     min_notice_hours=min_notice_hours)
