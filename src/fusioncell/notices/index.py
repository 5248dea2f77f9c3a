"""An in-memory spatial and temporal index of active notices, and the deconflictor built on it, for checking a
new notice against 100,000 active notices in about a millisecond. Pure (numpy and shapely; no database).

Notices live in columns (numpy arrays indexed by a slot: times in integer microseconds, party code, altitude
band, bounds, composition, a circle holding the shape), so that filters by time, party and altitude run over
arrays, and exact geometry (GEOS, through shapely) is computed only for the candidates left. Spatial search:
one shapely STRtree per party over the notices present at its last build, plus a linear scan of the bounds of
those added since (a few thousand at most; past that the trees are rebuilt at the next query). Removed notices
are only marked dead; their slots are compacted away once they outnumber the live ones. So adds and removals
take microseconds, without a rebuild. The findings are those of `deconflict.check` against every zone and
every active notice (tests/notices/test_index.py holds it to that)."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from fusioncell.geo.rules import CATEGORIES
from fusioncell.notices import deconflict
from fusioncell.notices.deconflict import Finding, NoticeShape, ZoneShape

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_NEVER = np.iinfo(np.int64).max
# Added to a search's reach so that rounding in the bounds can never drop a notice the exact distance keeps.
_SLACK_M = 1.0
_COLUMNS = {"seq": (np.int64, 0), "start": (np.int64, 0), "end": (np.int64, 0), "party": (np.int32, -1),
            "alt_lo": (np.float64, 0.0), "alt_hi": (np.float64, 0.0), "box": (np.float64, 0.0),
            "comp": (np.int64, 0), "alive": (np.bool_, False), "geoms": (object, None),
            "centre": (np.float64, 0.0), "radius": (np.float64, 0.0)}
_WIDTH = {"box": 4, "comp": len(CATEGORIES), "centre": 2}


def micros(t: datetime) -> int:
    """Exact integer microseconds since the epoch: comparisons agree with the datetimes' own."""
    return (t - (_EPOCH if t.tzinfo is not None else _EPOCH_NAIVE)) // _MICROSECOND


def bounding_circles(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each shape, a circle holding it: the centre of its bounds, and the distance to its farthest vertex
    (a disc is convex, so it holds the segments too), plus a centimetre for rounding."""
    bounds = shapely.bounds(geoms)
    centres = np.column_stack([(bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2])
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    radii = np.zeros(len(geoms))
    np.maximum.at(radii, owner, np.hypot(coords[:, 0] - centres[owner, 0], coords[:, 1] - centres[owner, 1]))
    return centres, radii + 0.01


def _band(notice: NoticeShape) -> tuple[float, float]:
    """The altitude band; a ground activity is at every altitude (as deconflict._altitudes_meet has it)."""
    return notice.altitude if notice.altitude is not None else (-np.inf, np.inf)


class NoticeIndex:
    """`delta_max`: notices added since the tree was built before the next query rebuilds it;
    `compact_min`: dead slots tolerated whatever the live count (they are compacted when they outnumber both)."""

    seq: np.ndarray
    start: np.ndarray
    end: np.ndarray
    party: np.ndarray
    alt_lo: np.ndarray
    alt_hi: np.ndarray
    box: np.ndarray
    comp: np.ndarray
    alive: np.ndarray
    geoms: np.ndarray
    centre: np.ndarray
    radius: np.ndarray

    def __init__(self, *, delta_max: int = 4096, compact_min: int = 4096) -> None:
        self.delta_max = delta_max
        self.compact_min = compact_min
        self._parties: dict[str, int] = {}
        self.party_names: list[str] = []
        self._slot_of: dict[int, int] = {}
        self._shapes: list[NoticeShape | None] = []
        self._n = 0  # slots used
        self._dead = 0
        self._circled = 0  # slots [0, _circled) have their bounding circle
        for name, (dtype, fill) in _COLUMNS.items():
            setattr(self, name, np.full((1024, _WIDTH[name]) if name in _WIDTH else 1024, fill, dtype=dtype))
        self._trees: dict[int, tuple[STRtree, np.ndarray]] = {}  # party code -> tree, and the slots in it
        self._base_n = 0  # slots [0, _base_n) were live or dead when the tree was built; the rest are scanned
        self._ends: list[tuple[datetime, int]] = []  # heap of (end, seq); stale pairs are skipped on pop
        self.on_compact: list[Callable[[np.ndarray], None]] = []  # told old slot -> new slot (-1: gone)

    def _grow(self) -> None:
        for name, (dtype, fill) in _COLUMNS.items():
            old = getattr(self, name)
            new = np.full((2 * len(old),) + old.shape[1:], fill, dtype=dtype)
            new[:self._n] = old[:self._n]
            setattr(self, name, new)

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, seq: int) -> bool:
        return seq in self._slot_of

    def get(self, seq: int) -> NoticeShape | None:
        slot = self._slot_of.get(seq)
        return None if slot is None else self._shapes[slot]

    def party_code(self, party: str) -> int:
        return self._parties.get(party, -1)

    def add(self, notice: NoticeShape) -> int:
        """Add, or replace (an amendment) a notice of the same seq; returns its slot."""
        self.remove(notice.seq)
        if self._n == len(self.seq):
            self._grow()
        slot = self._n
        self._n += 1
        if notice.party not in self._parties:
            self._parties[notice.party] = len(self.party_names)
            self.party_names.append(notice.party)
        self.seq[slot] = notice.seq
        self.start[slot] = micros(notice.start)
        self.end[slot] = micros(notice.end)
        self.party[slot] = self._parties[notice.party]
        self.alt_lo[slot], self.alt_hi[slot] = _band(notice)
        self.box[slot] = notice.geom.bounds
        self.comp[slot] = [notice.composition.get(c, 0) for c in CATEGORIES]
        self.alive[slot] = True
        self.geoms[slot] = notice.geom
        self._shapes.append(notice)
        self._slot_of[notice.seq] = slot
        heapq.heappush(self._ends, (notice.end, notice.seq))
        return slot

    def remove(self, seq: int) -> None:
        """A cancelled (or replaced) notice leaves the index."""
        slot = self._slot_of.pop(seq, None)
        if slot is None:
            return
        self.alive[slot] = False
        self.geoms[slot] = None
        self._shapes[slot] = None
        self._dead += 1

    def expire(self, now: datetime) -> list[int]:
        """Drop notices whose window has ended (in order of their ends: no scan); returns their seqs."""
        ended = []
        while self._ends and self._ends[0][0] <= now:
            end, seq = heapq.heappop(self._ends)
            current = self.get(seq)
            if current is not None and current.end == end:
                self.remove(seq)
                ended.append(seq)
        return ended

    def refresh(self) -> None:
        """Compact dead slots and rebuild the tree when due, and find the bounding circles of the notices added
        since the last query (in one call, not one per add)."""
        if self._dead > max(self.compact_min, len(self._slot_of)):
            self._compact()
        if self._n - self._base_n > self.delta_max:
            self._build_tree()
        if self._circled < self._n:
            new = slice(self._circled, self._n)
            live = self.alive[new]
            self.centre[new], self.radius[new] = bounding_circles(np.where(live, self.geoms[new], None))
            self._circled = self._n

    def _compact(self) -> None:
        n = self._n
        keep = np.flatnonzero(self.alive[:n])
        mapping = np.full(n, -1, np.int64)
        mapping[keep] = np.arange(len(keep))
        for name, (_dtype, fill) in _COLUMNS.items():
            column = getattr(self, name)
            column[:len(keep)] = column[keep]
            column[len(keep):n] = fill
        self._shapes = [self._shapes[i] for i in keep.tolist()]
        self._slot_of = {s: i for i, s in enumerate(self.seq[:len(keep)].tolist())}
        self._n = len(keep)
        self._circled = int(np.searchsorted(keep, self._circled))  # those below it keep their circles
        self._dead = 0
        self._build_tree()
        for hook in self.on_compact:
            hook(mapping)

    def _build_tree(self) -> None:
        """One tree per party: a check looks for the other parties' notices only."""
        slots = np.flatnonzero(self.alive[:self._n])
        self._trees = {}
        for party in np.unique(self.party[slots]).tolist():
            mine = slots[self.party[slots] == party]
            self._trees[party] = (STRtree(self.geoms[mine]), mine)
        self._base_n = self._n

    def candidates(self, bounds: tuple[float, float, float, float], reach: float, *, but: int | None = None
                   ) -> np.ndarray:
        """Slots of live notices (of parties other than the code `but`) whose bounds come within `reach` (per
        axis) of `bounds`: a superset of those within `reach`. Call refresh() first."""
        x0, y0 = bounds[0] - reach - _SLACK_M, bounds[1] - reach - _SLACK_M
        x1, y1 = bounds[2] + reach + _SLACK_M, bounds[3] + reach + _SLACK_M
        parts = []
        window = shapely.box(x0, y0, x1, y1)
        for party, (tree, slots) in self._trees.items():
            if party != but:
                parts.append(slots[tree.query(window)])
        if self._n > self._base_n:
            box = self.box[self._base_n:self._n]
            hit = np.flatnonzero((box[:, 0] <= x1) & (box[:, 2] >= x0) & (box[:, 1] <= y1) & (box[:, 3] >= y0))
            hit += self._base_n
            parts.append(hit if but is None else hit[self.party[hit] != but])
        if not parts:
            return np.empty(0, np.int64)
        slots = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return slots[self.alive[slots]]

    def near(self, geom: BaseGeometry, start: datetime, end: datetime, distance: float) -> list[NoticeShape]:
        """Notices overlapping [start, end) in time and within `distance` metres of geom, by seq."""
        self.refresh()
        slots = self.candidates(geom.bounds, distance)
        slots = slots[(self.start[slots] < micros(end)) & (micros(start) < self.end[slots])]
        slots = slots[shapely.distance(self.geoms[slots], geom) <= distance]
        slots = slots[np.argsort(self.seq[slots], kind="stable")]
        return [self._shapes[s] for s in slots.tolist()]

    def all(self) -> list[NoticeShape]:
        return [self._shapes[self._slot_of[seq]] for seq in sorted(self._slot_of)]

    def slots(self) -> np.ndarray:
        return np.flatnonzero(self.alive[:self._n])


class _Members:
    """The notices of one party that intersect one zone: slots, with copies of their times (so that the time
    filter reads contiguous memory). Append-only: dead slots are filtered out by the reader, and dropped when
    the index compacts."""

    __slots__ = ("slots", "start", "end", "n")

    def __init__(self) -> None:
        self.slots = np.empty(16, np.int64)
        self.start = np.empty(16, np.int64)
        self.end = np.empty(16, np.int64)
        self.n = 0

    def append(self, slot: int, start: int, end: int) -> None:
        if self.n == len(self.slots):
            self.slots, self.start, self.end = (np.concatenate([a, np.empty(len(a), np.int64)])
                                                for a in (self.slots, self.start, self.end))
        self.slots[self.n], self.start[self.n], self.end[self.n] = slot, start, end
        self.n += 1

    def extend(self, slots: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        n = self.n
        if n + len(slots) > len(self.slots):
            size = max(16, 2 * (n + len(slots)))
            for name in ("slots", "start", "end"):
                grown = np.empty(size, np.int64)
                grown[:n] = getattr(self, name)[:n]
                setattr(self, name, grown)
        self.slots[n:n + len(slots)], self.start[n:n + len(slots)], self.end[n:n + len(slots)] = slots, start, end
        self.n += len(slots)

    def remap(self, mapping: np.ndarray) -> None:
        moved = mapping[self.slots[:self.n]]
        kept = moved >= 0
        self.slots, self.start, self.end = moved[kept], self.start[:self.n][kept], self.end[:self.n][kept]
        self.n = len(self.slots)


class Deconflictor:
    """Zones and active notices in memory, giving the findings `deconflict.check` gives against every zone and
    every active notice: the notice index for other parties' notices nearby; an STRtree over the zones (they
    change rarely, so it is rebuilt on change); and for each zone and party the notices inside it, so that the
    limits of a zone are summed over arrays, without a spatial search."""

    def __init__(self, *, delta_max: int = 4096, compact_min: int = 4096) -> None:
        self.notices = NoticeIndex(delta_max=delta_max, compact_min=compact_min)
        self.notices.on_compact.append(self._remap)
        self.zones: list[ZoneShape] = []
        self._geoms = np.empty(0, object)
        self._tree: STRtree | None = None
        self._members: list[dict[int, _Members]] = []
        self._valid_from = np.empty(0, np.int64)
        self._valid_until = np.empty(0, np.int64)

    def set_zones(self, zones: list[ZoneShape]) -> None:
        self.zones = list(zones)
        self._geoms = np.array([z.geom for z in self.zones], dtype=object)
        shapely.prepare(self._geoms)  # each is tested against many notices
        self._tree = STRtree(self._geoms) if self.zones else None
        self._valid_from = np.array([micros(z.valid_from) for z in self.zones], np.int64)
        self._valid_until = np.array([_NEVER if z.valid_until is None else micros(z.valid_until)
                                      for z in self.zones], np.int64)
        self._members = [{} for _ in self.zones]
        # Which notices each zone holds: the zones (prepared) are the queries into a tree of the notices.
        index = self.notices
        slots = index.slots()
        if not len(slots) or not self.zones:
            return
        zone_of, at = STRtree(index.geoms[slots]).query(self._geoms, predicate="intersects")
        found = slots[at]
        order = np.lexsort((found, index.party[found], zone_of))  # by zone, party, slot
        zone_of, found = zone_of[order], found[order]
        party = index.party[found]
        cuts = np.flatnonzero((np.diff(zone_of) != 0) | (np.diff(party) != 0)) + 1
        for group in np.split(np.arange(len(found)), cuts):
            if len(group):
                members = self._members[zone_of[group[0]]].setdefault(int(party[group[0]]), _Members())
                members.extend(found[group], index.start[found[group]], index.end[found[group]])

    def _remap(self, mapping: np.ndarray) -> None:
        for by_party in self._members:
            for members in by_party.values():
                members.remap(mapping)

    def add(self, notice: NoticeShape) -> None:
        index = self.notices
        slot = index.add(notice)
        if self._tree is not None:
            party, start, end = int(index.party[slot]), int(index.start[slot]), int(index.end[slot])
            for zone in self._tree.query(notice.geom, predicate="intersects").tolist():
                self._members[zone].setdefault(party, _Members()).append(slot, start, end)

    def remove(self, seq: int) -> None:
        self.notices.remove(seq)

    def expire(self, now: datetime) -> None:
        self.notices.expire(now)

    def check(self, notice: NoticeShape, *, filed_at: datetime, min_notice_hours: float = 0.0) -> list[Finding]:
        index = self.notices
        index.refresh()
        start, end = micros(notice.start), micros(notice.end)
        party = index.party_code(notice.party)
        geom = notice.geom
        prepared = shapely.is_prepared(geom)
        shapely.prepare(geom)  # tested against zones and notices below
        try:
            touched = self._touched(notice, start, end, party) if self._tree is not None else []
            near = self._near(notice, start, end, party, deconflict.separation_m([zone for zone, _ in touched]))
        finally:
            if not prepared:
                shapely.destroy_prepared(geom)
        return deconflict.findings(notice, touched=touched, near=near, filed_at=filed_at,
                                   min_notice_hours=min_notice_hours)

    def _touched(self, notice: NoticeShape, start: int, end: int, party: int
                 ) -> list[tuple[ZoneShape, list[dict[str, int]]]]:
        """The zones in effect that the notice intersects, in the order of self.zones, each with the summed
        composition of the party's other notices in it at overlapping times."""
        index = self.notices
        hits = np.sort(self._tree.query(notice.geom))  # bounds only; the predicate on the prepared notice
        hits = hits[(self._valid_from[hits] < end) & (start < self._valid_until[hits])]
        hits = hits[shapely.intersects(notice.geom, self._geoms[hits])].tolist()
        groups = [self._members[zone].get(party) for zone in hits]
        lengths = np.array([0 if g is None else g.n for g in groups])
        sums: list[list[int]] = [[]] * len(hits)
        total = int(lengths.sum())
        if total:
            live = [g for g in groups if g is not None and g.n]
            slots = np.concatenate([g.slots[:g.n] for g in live])
            inside = np.flatnonzero((np.concatenate([g.start[:g.n] for g in live]) < end)
                                    & (np.concatenate([g.end[:g.n] for g in live]) > start))
            inside = inside[index.alive[slots[inside]] & (index.seq[slots[inside]] != notice.seq)]
            if len(inside):
                group = np.searchsorted(np.cumsum(lengths), inside, side="right")
                by_zone = np.zeros((len(hits), len(CATEGORIES)), np.int64)
                np.add.at(by_zone, group, index.comp[slots[inside]])
                counted = np.bincount(group, minlength=len(hits)).tolist()
                sums = [row if c else [] for row, c in zip(by_zone.tolist(), counted, strict=True)]
        return [(self.zones[zone], [dict(zip(CATEGORIES, row, strict=True))] if row else [])
                for zone, row in zip(hits, sums, strict=True)]

    def _near(self, notice: NoticeShape, start: int, end: int, party: int, separation: float
              ) -> list[tuple[int, str, float]]:
        """Other parties' notices overlapping in time and altitude, closer than the separation: (seq, party,
        distance), by seq."""
        index = self.notices
        low, high = _band(notice)
        slots = index.candidates(notice.geom.bounds, separation, but=party)
        slots = slots[(index.start[slots] < end) & (index.end[slots] > start)]  # the most selective first
        slots = slots[(index.alt_lo[slots] <= high) & (index.alt_hi[slots] >= low) & (index.seq[slots] != notice.seq)]
        if not len(slots):
            return []
        # No closer than the distance between circles holding them: GEOS (the costly part) only for the rest.
        bounds = notice.geom.bounds
        cx, cy = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
        coords = shapely.get_coordinates(notice.geom)
        radius = float(np.hypot(coords[:, 0] - cx, coords[:, 1] - cy).max()) + 0.01 if len(coords) else np.nan
        gap = np.hypot(index.centre[slots, 0] - cx, index.centre[slots, 1] - cy) - index.radius[slots] - radius
        slots = slots[gap < separation]
        found = shapely.distance(notice.geom, index.geoms[slots])
        close = found < separation
        slots, found = slots[close], found[close]
        order = np.argsort(index.seq[slots], kind="stable")
        slots = slots[order]
        names = index.party_names
        return list(zip(index.seq[slots].tolist(), [names[p] for p in index.party[slots].tolist()],
                        found[order].tolist(), strict=True))
