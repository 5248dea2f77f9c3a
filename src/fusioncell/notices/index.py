"""An in-memory spatial and temporal index of active notices, for checking a new notice in microseconds.
Pure. A uniform grid (cells of `cell_m` metres, in one projected CRS) maps each notice to the cells its
bounds cover; a query gathers the notices in the cells near the new one and keeps those that overlap in time
and lie within the distance. Unlike shapely's STRtree, it takes inserts and removals without a rebuild."""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from datetime import datetime

import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from fusioncell.notices.deconflict import NoticeShape


class NoticeIndex:
    def __init__(self, cell_m: float = 2000.0) -> None:
        self.cell_m = cell_m
        self._notices: dict[int, NoticeShape] = {}
        self._cells: dict[tuple[int, int], set[int]] = defaultdict(set)
        self._keys: dict[int, list[tuple[int, int]]] = {}
        self._ends: list[tuple[datetime, int]] = []  # heap of (end, seq); stale pairs are skipped on pop

    def __len__(self) -> int:
        return len(self._notices)

    def __contains__(self, seq: int) -> bool:
        return seq in self._notices

    def get(self, seq: int) -> NoticeShape | None:
        return self._notices.get(seq)

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
        heapq.heappush(self._ends, (notice.end, notice.seq))

    def remove(self, seq: int) -> None:
        """A cancelled (or replaced) notice leaves the index."""
        for key in self._keys.pop(seq, ()):
            cell = self._cells[key]
            cell.discard(seq)
            if not cell:
                del self._cells[key]
        self._notices.pop(seq, None)

    def expire(self, now: datetime) -> list[int]:
        """Drop notices whose window has ended (in order of their ends: no scan); returns their seqs."""
        ended = []
        while self._ends and self._ends[0][0] <= now:
            end, seq = heapq.heappop(self._ends)
            current = self._notices.get(seq)
            if current is not None and current.end == end:
                self.remove(seq)
                ended.append(seq)
        return ended

    def near(self, geom: BaseGeometry, start: datetime, end: datetime, distance: float) -> list[NoticeShape]:
        """Notices overlapping [start, end) in time and within `distance` metres of geom, by seq."""
        seen: set[int] = set()
        for key in self._cover(geom.bounds, margin=distance):
            seen.update(self._cells.get(key, ()))
        notices = self._notices
        timely = [notices[seq] for seq in seen if notices[seq].start < end and start < notices[seq].end]
        return sorted((o for o in timely if o.geom.distance(geom) <= distance), key=lambda o: o.seq)

    def all(self) -> list[NoticeShape]:
        return [self._notices[seq] for seq in sorted(self._notices)]


class Deconflictor:
    """Zones and active notices in memory, for `deconflict.check` in microseconds: the notice index for
    others, an STRtree over the zones (they change rarely, so it is rebuilt on change), and for each zone the
    notices inside it, so the limits of a zone are summed without a spatial search."""

    def __init__(self, *, cell_m: float = 2000.0, separation_m: float = 0.0) -> None:
        self.notices = NoticeIndex(cell_m)
        self.zones: list = []
        self._tree: STRtree | None = None
        self._members: dict[int, set[int]] = defaultdict(set)  # zone index -> seqs of notices inside it
        self._zones_of: dict[int, list[int]] = {}
        self.separation_m = separation_m

    def set_zones(self, zones: list) -> None:
        self.zones = list(zones)
        for zone in self.zones:
            shapely.prepare(zone.geom)  # repeated intersects tests against the same zone
        self._tree = STRtree([z.geom for z in self.zones]) if self.zones else None
        self._members = defaultdict(set)
        self._zones_of = {}
        for notice in self.notices.all():
            self._place(notice)

    def _place(self, notice: NoticeShape) -> None:
        inside = [int(i) for i in self._tree.query(notice.geom, predicate="intersects")] if self._tree else []
        self._zones_of[notice.seq] = inside
        for index in inside:
            self._members[index].add(notice.seq)

    def add(self, notice: NoticeShape) -> None:
        self.remove(notice.seq)
        self.notices.add(notice)
        self._place(notice)

    def remove(self, seq: int) -> None:
        for index in self._zones_of.pop(seq, ()):
            self._members[index].discard(seq)
        self.notices.remove(seq)

    def expire(self, now: datetime) -> None:
        for seq in self.notices.expire(now):
            for index in self._zones_of.pop(seq, ()):
                self._members[index].discard(seq)

    def check(self, notice: NoticeShape, *, filed_at: datetime, min_notice_hours: float = 0.0) -> list:
        from fusioncell.geo import rules as zone_rules
        from fusioncell.notices.deconflict import DEFAULT_SEPARATION_M, check

        hits = [int(i) for i in self._tree.query(notice.geom, predicate="intersects")] if self._tree else []
        active = [i for i in hits if self.zones[i].valid_from < notice.end
                  and (self.zones[i].valid_until is None or notice.start < self.zones[i].valid_until)]
        touched = [self.zones[i] for i in active]
        reach = max([DEFAULT_SEPARATION_M, self.separation_m]
                    + [d for z in touched if (d := zone_rules.min_distance(z.rules))])
        others = {o.seq: o for o in self.notices.near(notice.geom, notice.start, notice.end, reach)}
        # Same-party notices anywhere in the touched zones count towards their limits.
        for index in active:
            for seq in self._members[index]:
                other = self.notices.get(seq)
                if (other is not None and other.party == notice.party and other.start < notice.end
                        and notice.start < other.end):
                    others[seq] = other
        others.pop(notice.seq, None)
        return check(notice, zones=touched, others=list(others.values()), filed_at=filed_at,
                     min_notice_hours=min_notice_hours)
