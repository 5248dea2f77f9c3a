"""An in-memory spatial and temporal index of active notices, and the deconflictor built on it, for checking a
new notice against 100,000 active notices in about a millisecond. Pure (numpy and shapely; no database).

Notices live in columns (numpy arrays indexed by a slot: times in integer microseconds, party code, altitude
band, bounds, composition, radius, the centre of a disc, a circle holding the notice), so that filters by time,
party and altitude run over arrays, and exact distances are computed only for the candidates left: between two
discs in numpy, and where a shape is involved by GEOS (through shapely), one vectorised call per check. A notice
is its shape widened by its radius, as in `deconflict`: a disc is its centre and its radius. Spatial search:
one shapely STRtree per party over the (widened) bounds of the notices present at its last build, plus a
linear scan of the bounds of
those added since (a few thousand at most; past that the add that would pass the limit rebuilds the trees
first). Removed notices are only marked dead; their slots are compacted away (by the removal that makes them
outnumber the live ones) and at every rebuild of the trees, which also puts the slots in Morton order of their
centres (a search's notices then sit close together in the columns). So most adds and removals take
microseconds, and a check never pays for a rebuild. The findings are those of `deconflict.check` against every
zone and every active notice (tests/notices/test_index.py holds it to that)."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import repeat

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from fusioncell.geo import rules as zone_rules
from fusioncell.geo.rules import CATEGORIES
from fusioncell.notices import deconflict
from fusioncell.notices.deconflict import Finding, NoticeShape, ZoneShape

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_NEVER = np.iinfo(np.int64).max
# Added to a search's reach so that rounding in the bounds can never drop a notice the exact distance keeps.
_SLACK_M = 1.0
# box: the bounds widened by the radius; disc: the notice's radius_m; point: the shape is a Point (then xy is it);
# centre, radius: a circle holding the widened notice; seg_lo, seg_n: the notice's segments in the index's segment
# array (a LineString's, or a Polygon's rings', poly: a Polygon; seg_n 0: a Point or another kind of shape).
_COLUMNS = {"seq": (np.int64, 0), "start": (np.int64, 0), "end": (np.int64, 0), "party": (np.int32, -1),
            "alt_lo": (np.float64, 0.0), "alt_hi": (np.float64, 0.0), "box": (np.float64, 0.0),
            "comp": (np.int64, 0), "alive": (np.bool_, False), "geoms": (object, None),
            "disc": (np.float64, 0.0), "point": (np.bool_, False), "xy": (np.float64, 0.0),
            "centre": (np.float64, 0.0), "radius": (np.float64, 0.0),
            "seg_lo": (np.int64, 0), "seg_n": (np.int64, 0), "poly": (np.bool_, False)}
_WIDTH = {"box": 4, "comp": len(CATEGORIES), "centre": 2, "xy": 2}


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


# Shapes whose distance to a point is computed in numpy, from their segments: LineString, Polygon (type ids).
_LINE, _POLYGON = 1, 3
# Between a point and LineStrings or Polygons, numpy pays some 40 us a check and 0.5 us a shape, GEOS about a
# microsecond a shape: numpy only from this many shapes (or discs, from a shape) on.
_NUMPY_MIN = 64
# Past this many point-segment pairs in one check, a shape's distances to discs are left to GEOS.
_PAIRS_MAX = 200_000
# From this many candidates on, a check first drops those whose bounding circles are too far apart.
_CIRCLES_MIN = 48


def segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The segments (rows x0, y0, x1, y1) of the LineStrings and the Polygons' rings among geoms, grouped by
    shape in the order of geoms; for each shape, the number of its segments (0 for other kinds, or empty ones)
    and whether it is a Polygon."""
    kind = shapely.get_type_id(geoms)
    poly = kind == _POLYGON
    lines = np.flatnonzero(kind == _LINE)
    polys = np.flatnonzero(poly)
    rings, ring_of = shapely.get_rings(geoms[polys], return_index=True)
    parts = np.concatenate([geoms[lines], rings])
    owner = np.concatenate([lines, polys[ring_of]])
    order = np.argsort(owner, kind="stable")  # a polygon's rings stay in their order
    parts, owner = parts[order], owner[order]
    coords, part = shapely.get_coordinates(parts, return_index=True)
    same = part[:-1] == part[1:]
    segs = np.column_stack([coords[:-1][same], coords[1:][same]])
    counts = np.bincount(owner[part[:-1][same]], minlength=len(geoms)) if len(segs) else np.zeros(len(geoms), int)
    return segs, counts, poly


def point_segment_distances(x: np.ndarray | float, y: np.ndarray | float, segs: np.ndarray) -> np.ndarray:
    """The distance from each point to each segment (broadcast: x and y of shape (n, 1) against segs (k, 4)
    give (n, k)), bit for bit GEOS's (Distance::pointToSegment, its operations in its order: r, the position
    along the segment, picks an end or the perpendicular |s| * |AB|, where s's numerator, (Ay - y)(Bx - Ax) -
    (Ax - x)(By - Ay), is computed here negated, exactly). A degenerate segment (r is NaN) is its end A."""
    ux, uy = segs[..., 2] - segs[..., 0], segs[..., 3] - segs[..., 1]
    px, py = x - segs[..., 0], y - segs[..., 1]
    len2 = ux * ux + uy * uy
    with np.errstate(all="ignore"):
        r = (px * ux + py * uy) / len2
        s = (py * ux - px * uy) / len2
    qx, qy = x - segs[..., 2], y - segs[..., 3]
    ends = np.sqrt(np.where(r >= 1.0, qx * qx + qy * qy, px * px + py * py))  # sqrt is correctly rounded
    s = np.abs(s, out=s)
    s *= np.sqrt(len2)
    return np.where((r > 0.0) & (r < 1.0), s, ends)


def crossings(x: np.ndarray | float, y: np.ndarray | float, segs: np.ndarray) -> np.ndarray:
    """Whether a ray from each point towards +x crosses each segment (broadcast): the even-odd test of a point
    in a polygon, over its rings' segments. A point on a ring (or within rounding of it) may be found on either
    side; its distance to the ring is then 0 (or within rounding of it) anyway."""
    ax, ay, bx, by = segs[..., 0], segs[..., 1], segs[..., 2], segs[..., 3]
    spans = (ay > y) != (by > y)
    with np.errstate(all="ignore"):
        return spans & (x < ax + (y - ay) * (bx - ax) / (by - ay))


def _spread(v: np.ndarray) -> np.ndarray:
    """The bits of 16-bit integers, spread to the even bit positions of 32."""
    v = (v | (v << 8)) & 0x00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F
    v = (v | (v << 2)) & 0x33333333
    return (v | (v << 1)) & 0x55555555


def _morton(xy: np.ndarray) -> np.ndarray:
    """The Morton (Z-order) codes of points on a 65,536 x 65,536 grid over their extent: sorting by it puts
    points near one another near in the order, mostly."""
    if not len(xy):
        return np.empty(0, np.int64)
    lo = xy.min(axis=0)
    scale = 65535.0 / np.maximum(xy.max(axis=0) - lo, 1e-9)
    cells = np.nan_to_num((xy - lo) * scale, nan=0.0).clip(0, 65535).astype(np.int64)
    return _spread(cells[:, 0]) | (_spread(cells[:, 1]) << 1)


def _band(notice: NoticeShape) -> tuple[float, float]:
    """The altitude band; a ground activity is at every altitude (as deconflict._altitudes_meet has it)."""
    return notice.altitude if notice.altitude is not None else (-np.inf, np.inf)


class NoticeIndex:
    """`delta_max`: notices added since the trees were built before the next add rebuilds them;
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
    disc: np.ndarray
    point: np.ndarray
    xy: np.ndarray
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
        self._queried = False  # a search since the trees were built (adds rebuild them only then, not in bulk)
        self._segs = np.empty((4096, 4))  # the segments of the slots' shapes (seg_lo, seg_n)
        self._segs_n = 0
        self._ends: list[tuple[datetime, int]] = []  # heap of (end, seq); stale pairs are skipped on pop
        self.on_compact: list[Callable[[np.ndarray], None]] = []  # told old slot -> new slot (-1: gone)
        self.on_remove: list[Callable[[int], None]] = []  # told the slot of a notice that has left

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

    def slot_of(self, seq: int) -> int | None:
        return self._slot_of.get(seq)

    def party_code(self, party: str) -> int:
        return self._parties.get(party, -1)

    def add(self, notice: NoticeShape) -> int:
        """Add, or replace (an amendment) a notice of the same seq; returns its slot."""
        self.remove(notice.seq)
        if self._queried and self._n - self._base_n >= self.delta_max:
            self.refresh(rebuild=True)  # the trees' rebuild falls to an add, not to a check
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
        x0, y0, x1, y1 = notice.geom.bounds
        r = notice.radius_m
        self.box[slot] = (x0 - r, y0 - r, x1 + r, y1 + r)
        self.disc[slot] = r
        if isinstance(notice.geom, Point):
            self.point[slot] = True
            self.xy[slot] = (x0, y0)
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
        for hook in self.on_remove:
            hook(slot)
        if self._dead > max(self.compact_min, len(self._slot_of)):  # compaction too falls to a removal
            self.refresh()

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

    def refresh(self, *, rebuild: bool = False) -> None:
        """Find the bounding circles of the notices added since the last query (in one call, not one per add),
        and compact dead slots and rebuild the trees when due, or now. Adds and removals see to that first, so
        a check does not, unless notices were loaded in bulk with no query between (then the first query, or
        Deconflictor.set_zones, builds the trees once). A rebuild compacts too, into spatial order."""
        if self._circled < self._n:
            new = slice(self._circled, self._n)
            live = self.alive[new]
            self.centre[new], self.radius[new] = bounding_circles(np.where(live, self.geoms[new], None))
            self.radius[new] += self.disc[new]
            self._add_segments(new, np.where(live, self.geoms[new], None))
            self._circled = self._n
        if (rebuild or self._dead > max(self.compact_min, len(self._slot_of))
                or self._n - self._base_n > self.delta_max):
            self._compact()

    def _add_segments(self, new: slice, geoms: np.ndarray) -> None:
        segs, counts, poly = segments(geoms)
        need = self._segs_n + len(segs)
        if need > len(self._segs):
            grown = np.empty((max(need, 2 * len(self._segs)), 4))
            grown[:self._segs_n] = self._segs[:self._segs_n]
            self._segs = grown
        self._segs[self._segs_n:need] = segs
        self.seg_lo[new] = self._segs_n + np.cumsum(counts) - counts
        self.seg_n[new] = counts
        self.poly[new] = poly
        self._segs_n = need

    def _segment_rows(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the slots' segments, one slot after the other, and where each slot's run begins."""
        counts = self.seg_n[slots]
        firsts = np.cumsum(counts) - counts
        rows = np.arange(int(counts.sum())) + np.repeat(self.seg_lo[slots] - firsts, counts)
        return rows, firsts

    def _compact(self) -> None:
        """Drop the dead slots and put the live ones in Morton order of their centres (every slot has its
        circle: refresh() finds them first), so that the notices one search finds sit close together in every
        column (fewer cache misses when a check gathers them); then rebuild the trees."""
        n = self._n
        keep = np.flatnonzero(self.alive[:n])
        keep = keep[np.argsort(_morton(self.centre[keep]), kind="stable")]
        mapping = np.full(n, -1, np.int64)
        mapping[keep] = np.arange(len(keep))
        for name, (_dtype, fill) in _COLUMNS.items():
            column = getattr(self, name)
            column[:len(keep)] = column[keep]
            column[len(keep):n] = fill
        # In place: the list a server froze (gc.freeze) after loading stays out of later full collections.
        self._shapes[:] = [self._shapes[i] for i in keep.tolist()]
        self._slot_of = {s: i for i, s in enumerate(self.seq[:len(keep)].tolist())}
        self._n = len(keep)
        self._circled = self._n
        rows, firsts = self._segment_rows(np.arange(self._circled))
        self._segs = self._segs[rows] if len(rows) else np.empty((4096, 4))
        self._segs_n = len(rows)
        self.seg_lo[:self._circled] = firsts
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
            self._trees[party] = (STRtree(self.boxes(mine)), mine)
        self._base_n = self._n
        self._queried = False

    def candidates(self, bounds: tuple[float, float, float, float], reach: float, *, but: int | None = None
                   ) -> np.ndarray:
        """Slots of live notices (of parties other than the code `but`) whose bounds come within `reach` (per
        axis) of `bounds`: a superset of those within `reach`. Call refresh() first."""
        x0, y0 = bounds[0] - reach - _SLACK_M, bounds[1] - reach - _SLACK_M
        x1, y1 = bounds[2] + reach + _SLACK_M, bounds[3] + reach + _SLACK_M
        self._queried = True
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
        return slots[self.alive[slots]] if self._dead else slots

    def boxes(self, slots: np.ndarray) -> np.ndarray:
        """The widened bounds of notices, as rectangles (what the trees hold)."""
        box = self.box[slots]
        return shapely.box(box[:, 0], box[:, 1], box[:, 2], box[:, 3])

    def distances(self, geom: BaseGeometry, radius: float, slots: np.ndarray,
                  bounds: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """`deconflict.distance_m` from geom widened by radius to each notice in slots: between two points in
        numpy (its operations, in its order); between a point and a LineString or a Polygon in numpy too, with
        GEOS's operations in its order (the nearest of the segments; 0 inside a polygon); otherwise by GEOS, one
        vectorised call. `bounds`: geom's, when known."""
        if not len(slots):
            return np.empty(0)
        found = np.empty(len(slots))
        point = self.point[slots]
        if isinstance(geom, Point) and (bounds := geom.bounds if bounds is None else bounds)[0] == bounds[0]:
            x, y = bounds[0], bounds[1]  # an empty point has NaN bounds
            if point.any():
                xy = self.xy[slots[point]]
                dx, dy = x - xy[:, 0], y - xy[:, 1]
                found[point] = np.sqrt(dx * dx + dy * dy)
            shaped = ~point & (self.seg_n[slots] > 0)
            if np.count_nonzero(shaped) >= _NUMPY_MIN:
                found[shaped] = self._point_to_shapes(x, y, slots[shaped])
            else:
                shaped[:] = False
            rest = ~point & ~shaped
        else:
            rest = np.ones(len(slots), np.bool_)
            points = np.count_nonzero(point)
            kind = shapely.get_type_id(geom) if points >= _NUMPY_MIN else -1
            if kind == _LINE or kind == _POLYGON:
                segs, counts, _ = segments(np.array([geom], dtype=object))
                if counts[0] and counts[0] * points <= _PAIRS_MAX:
                    xy = self.xy[slots[point]]
                    x, y = xy[:, :1], xy[:, 1:]
                    d = point_segment_distances(x, y, segs).min(axis=1)
                    if kind == _POLYGON:
                        d[np.count_nonzero(crossings(x, y, segs), axis=1) % 2 == 1] = 0.0
                    found[point] = d
                    rest = ~point
        if rest.any():
            found[rest] = shapely.distance(geom, self.geoms[slots[rest]])
        found -= radius
        found -= self.disc[slots]
        return np.where(found > 0.0, found, 0.0)

    def _point_to_shapes(self, x: float, y: float, slots: np.ndarray) -> np.ndarray:
        """GEOS's distance from the point (x, y) to each of the shapes at slots (each with segments)."""
        rows, firsts = self._segment_rows(slots)
        segs = self._segs[rows]
        found = np.minimum.reduceat(point_segment_distances(x, y, segs), firsts)
        poly = self.poly[slots]
        if poly.any():
            inside = np.add.reduceat(crossings(x, y, segs).astype(np.intp), firsts) % 2 == 1
            found[poly & inside] = 0.0
        return found

    def near(self, geom: BaseGeometry, start: datetime, end: datetime, distance: float, radius: float = 0.0
             ) -> list[NoticeShape]:
        """Notices overlapping [start, end) in time and within `distance` metres of geom widened by radius,
        by seq."""
        self.refresh()
        x0, y0, x1, y1 = geom.bounds
        slots = self.candidates((x0 - radius, y0 - radius, x1 + radius, y1 + radius), distance)
        slots = slots[(self.start[slots] < micros(end)) & (micros(start) < self.end[slots])]
        slots = slots[self.distances(geom, radius, slots) <= distance]
        slots = slots[np.argsort(self.seq[slots], kind="stable")]
        return [self._shapes[s] for s in slots.tolist()]

    def all(self) -> list[NoticeShape]:
        return [self._shapes[self._slot_of[seq]] for seq in sorted(self._slot_of)]

    def slots(self) -> np.ndarray:
        return np.flatnonzero(self.alive[:self._n])


class _Members:
    """For one party, the notices that meet each zone, so that the summed compositions of a check's zones are
    found by a few binary searches, however many notices the zones hold. The entries (zone, slot) present at the
    last merge are kept in two orders, by zone then start and by zone then end, each with running sums of the
    compositions (and a count): the notices of a zone overlapping [s, e) are those starting before e less those
    ending by s (which start before e too), so their sum is a difference of two differences of running sums.
    Times enter the keys (zone * M + rank) as their offsets from the first of them (M: the span, plus one),
    or, where that could overflow, as their ranks among the M distinct times of the entries. Changes since the
    merge are kept apart, in arrival order, and scanned: the entries added (sign +1), and the merged entries of
    each notice removed since (sign -1, to be taken off again). Merged past `merge_max` changes, and when the
    index compacts."""

    _FIELDS = ("zone", "slots", "start", "end", "comp", "sign")
    key_limit = 2 ** 62  # keys zone * M + offset stay below it, or ranks are used

    def __init__(self, index: NoticeIndex, zones: int, merge_max: int) -> None:
        self.index = index
        self.zones = zones
        self.merge_max = merge_max
        self.new = self._empty(16)  # the changes since the merge
        self.n = 0
        self._merged(np.empty(0, np.int64), np.empty(0, np.int64))

    @staticmethod
    def _empty(size: int) -> dict[str, np.ndarray]:
        return {name: np.empty((size, len(CATEGORIES)) if name == "comp" else size, np.int64)
                for name in _Members._FIELDS}

    def _merged(self, zone: np.ndarray, slots: np.ndarray) -> None:
        """Make the merged entries these (zone, slot) pairs; the changes are folded in (or void)."""
        self.n = 0
        by_slot = np.argsort(slots, kind="stable")
        self.by_slot, self.zone_by_slot = slots[by_slot], zone[by_slot]  # a removed notice's entries
        index = self.index
        start, end, comp = index.start[slots], index.end[slots], index.comp[slots]
        lo = int(min(start.min(), end.min())) if len(slots) else 0
        hi = int(max(start.max(), end.max())) if len(slots) else 0
        if (self.zones + 1) * (hi - lo + 1) < self.key_limit:  # a time's rank: its offset from the first
            self.times, self.t0, m = None, lo, hi - lo + 1
            ranks = start - lo, end - lo
        else:  # times too far apart for that: its position among the distinct times
            self.times = np.unique(np.concatenate([start, end]))
            m = len(self.times)
            ranks = np.searchsorted(self.times, start), np.searchsorted(self.times, end)
        self.m = m
        width = len(CATEGORIES) + 1  # the compositions, and a count
        values = np.empty((len(slots), width), np.int64)
        values[:, :-1] = comp
        values[:, -1] = 1
        # Running sums in 32 bits when no sum can reach 2**31 (half the memory), else in 64.
        dtype = np.int32 if not len(slots) or np.abs(values).sum(axis=0).max() < 2 ** 31 else np.int64
        for name, rank in zip(("start", "end"), ranks, strict=True):
            key = zone * m + rank
            order = np.argsort(key, kind="stable")
            running = np.zeros((len(slots) + 1, width), dtype)
            np.cumsum(values[order], axis=0, dtype=dtype, out=running[1:])
            setattr(self, f"key_{name}", key[order])
            setattr(self, f"sum_{name}", running)
        # where each zone's entries begin (the same in both orders), and end: zone z's are [first[z], first[z + 1])
        self.first = np.searchsorted(self.key_start, np.arange(self.zones + 1) * m)

    def merge(self, mapping: np.ndarray | None = None) -> None:
        """Fold the changes into the merged entries; with a mapping (old slot -> new slot, -1: gone: the index
        has compacted), move every entry to its new slot. Entries of removed notices go."""
        added = self.new["sign"][:self.n] > 0
        zone = np.concatenate([self.zone_by_slot, self.new["zone"][:self.n][added]])
        slots = np.concatenate([self.by_slot, self.new["slots"][:self.n][added]])
        if mapping is not None:
            slots = mapping[slots]
            kept = slots >= 0
        else:
            kept = self.index.alive[slots]
        self._merged(zone[kept], slots[kept])

    def _append(self, zone: np.ndarray, slots: np.ndarray, start: np.ndarray, end: np.ndarray, comp: np.ndarray,
                sign: int) -> None:
        n, more = self.n, len(zone)
        if n + more > len(self.new["zone"]):
            grown = self._empty(max(16, 2 * (n + more)))
            for name, column in grown.items():
                column[:n] = self.new[name][:n]
            self.new = grown
        for name, values in zip(self._FIELDS, (zone, slots, start, end, comp, sign), strict=True):
            self.new[name][n:n + more] = values
        self.n += more
        if self.n > self.merge_max:
            self.merge()

    def extend(self, zone: np.ndarray, slot: int) -> None:
        """The notice at `slot` meets these zones."""
        index, k = self.index, len(zone)
        self._append(zone, np.full(k, slot), np.full(k, index.start[slot]), np.full(k, index.end[slot]),
                     np.broadcast_to(index.comp[slot], (k, len(CATEGORIES))), 1)

    def drop(self, slot: int) -> None:
        """The notice at `slot` has left the index: its merged entries are taken off (its added ones are
        skipped, as dead, when read)."""
        lo, hi = np.searchsorted(self.by_slot, (slot, slot + 1))
        if hi > lo:
            index, k = self.index, hi - lo
            self._append(self.zone_by_slot[lo:hi], np.full(k, slot), np.full(k, index.start[slot]),
                         np.full(k, index.end[slot]), np.broadcast_to(index.comp[slot], (k, len(CATEGORIES))), -1)

    def sums(self, hits: np.ndarray, start: int, end: int, but_slot: int | None) -> tuple[np.ndarray, np.ndarray]:
        """For the zones at positions `hits` (ascending): the summed compositions (one row each) and the
        counts of the live notices overlapping [start, end) in time, other than the one at `but_slot` (the
        notice checked, when it is in the index)."""
        index = self.index
        # Merged: (starting before end) - (ending by start), each the difference of two running sums. A rank
        # r in [0, m]: the entries of a zone with a rank below it (m: all of them).
        m = self.m
        if self.times is None:
            before_end, by_start = min(max(end - self.t0, 0), m), min(max(start - self.t0 + 1, 0), m)
        else:
            before_end = int(np.searchsorted(self.times, end))
            by_start = int(np.searchsorted(self.times, start, side="right"))
        first = hits * m
        lo = self.first[hits]
        began = self.key_start.searchsorted(first + before_end)
        ended = self.key_end.searchsorted(first + by_start)
        found = (self.sum_start[began] - self.sum_start[lo]) - (self.sum_end[ended] - self.sum_end[lo])
        found = found.astype(np.int64, copy=False)
        sums, counts = found[:, :-1], found[:, -1]
        position = None
        if but_slot is not None:
            b_lo, b_hi = np.searchsorted(self.by_slot, (but_slot, but_slot + 1))
            if b_hi > b_lo and index.start[but_slot] < end and index.end[but_slot] > start:
                position = np.full(self.zones, -1, np.int64)
                position[hits] = np.arange(len(hits))
                where = position[self.zone_by_slot[b_lo:b_hi]]
                where = where[where >= 0]
                sums[where] -= index.comp[but_slot]
                counts[where] -= 1
        if self.n:
            new = {name: column[:self.n] for name, column in self.new.items()}
            if position is None:
                position = np.full(self.zones, -1, np.int64)
                position[hits] = np.arange(len(hits))
            where = position[new["zone"]]
            keep = np.flatnonzero((where >= 0) & (new["start"] < end) & (new["end"] > start))
            slots, sign = new["slots"][keep], new["sign"][keep]
            keep = keep[(sign < 0) | (index.alive[slots] & (slots != (-1 if but_slot is None else but_slot)))]
            sign = new["sign"][keep]
            np.add.at(sums, where[keep], new["comp"][keep] * sign[:, None])
            np.add.at(counts, where[keep], sign)
        return sums, counts


# f"{d:,}" for the whole metres d below its length: a conflict's distance, formatted once, not per finding.
_METRES: list[str] = []
_METRES_MAX = 100_000


def _conflicts(seqs: np.ndarray, parties: np.ndarray, distances: np.ndarray, names: list[str],
               separation: float) -> list[Finding]:
    """The conflict findings `deconflict.findings` makes from near = (seq, party name, distance), the same
    strings and floats, with the two roundings done in numpy: f"{d:,.0f}" is f"{rint(d):,}" (both round half
    to even, on the exact value), and round(d, 1) is rint(10 d) / 10 (an integer over 10, correctly rounded,
    is what round's decimal string reads back as) unless 10 d, itself rounded, lies within a hair of a half:
    there Python's round decides."""
    tail = f" at overlapping times (separation {separation:,.0f} m)"
    whole = np.rint(distances).astype(np.int64)
    top = int(whole.max()) if len(whole) else 0
    if len(_METRES) <= top < _METRES_MAX:
        _METRES.extend(f"{d:,}" for d in range(len(_METRES), top + 1))
    whole = whole.tolist()
    metres = list(map(_METRES.__getitem__, whole)) if top < len(_METRES) else [f"{d:,}" for d in whole]
    tens = distances * 10.0
    tenths = np.rint(tens)
    rounded = (tenths / 10.0).tolist()
    # |tens - tenths| <= 0.5, exactly: within a hair of a half is over 0.5 - 1e-6
    near_half = np.abs(tens - tenths) > 0.5 - 1e-6
    if top >= 2 ** 51:
        near_half |= tens >= 2.0 ** 52
    for i in near_half.nonzero()[0].tolist():
        rounded[i] = round(float(distances[i]), 1)
    ends = [f" of {name}{tail}" for name in names]
    seqs = seqs.tolist()
    details = [f"within {m} m of notice {seq}{ends[p]}" for seq, p, m in zip(seqs, parties.tolist(), metres,
                                                                               strict=True)]
    # Finding("conflict", detail, None, other, distance_m) each, without a call to its __new__
    return list(map(tuple.__new__, repeat(Finding), zip(repeat("conflict"), details, repeat(None), seqs, rounded)))


def _meet(zones: np.ndarray, geoms: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """`deconflict.meets` pair by pair (zones[i] and geoms[i] widened by radii[i]), in vectorised calls."""
    found = np.zeros(len(geoms), np.bool_)
    wide = radii > 0
    if wide.any():
        found[wide] = shapely.dwithin(zones[wide], geoms[wide], radii[wide])
    if not wide.all():
        found[~wide] = shapely.intersects(zones[~wide], geoms[~wide])
    return found


class Deconflictor:
    """Zones and active notices in memory, giving the findings `deconflict.check` gives against every zone and
    every active notice: the notice index for other parties' notices nearby; the zones' bounds (scanned) or,
    past `zone_scan_max` zones, an STRtree over them (they change rarely, so both are rebuilt on change); and
    for each zone and party the notices that meet it, with running sums of their compositions (`_Members`), so
    that the limits of a zone are summed by a few binary searches, without a spatial search."""

    def __init__(self, *, delta_max: int = 4096, compact_min: int = 4096) -> None:
        self.notices = NoticeIndex(delta_max=delta_max, compact_min=compact_min)
        self.notices.on_compact.append(self._remap)
        self.notices.on_remove.append(self._dropped)
        self.merge_max = delta_max
        self.zone_scan_max = 4096  # up to this many zones, a check scans their bounds; past it, it asks a tree
        self.zones: list[ZoneShape] = []
        self._geoms = np.empty(0, object)
        self._tree: STRtree | None = None
        self._members: dict[int, _Members] = {}  # party code -> the party's notices in each zone
        self._valid_from = np.empty(0, np.int64)
        self._valid_until = np.empty(0, np.int64)

    def set_zones(self, zones: list[ZoneShape]) -> None:
        self.zones = list(zones)
        self._geoms = np.array([z.geom for z in self.zones], dtype=object)
        shapely.prepare(self._geoms)  # each is tested against many notices
        self._tree = STRtree(self._geoms) if self.zones else None
        self._zone_box = np.ascontiguousarray(shapely.bounds(self._geoms).T)  # x0, y0, x1, y1: one row each
        # each zone's min_distance (0: none), for the separation
        self._zone_separation = np.array([zone_rules.min_distance(z.rules) or 0.0 for z in self.zones], np.float64)
        # whether a zone has limits summed over the party's concurrent notices (max_count rules)
        self._limited = np.array([zone_rules.limits_concurrent(z.rules) for z in self.zones], np.bool_)
        self._valid_from = np.array([micros(z.valid_from) for z in self.zones], np.int64)
        self._valid_until = np.array([_NEVER if z.valid_until is None else micros(z.valid_until)
                                      for z in self.zones], np.int64)
        self._members = {}
        # Which notices each zone holds: the zones are the queries into a tree of the notices' widened bounds,
        # then the exact test pair by pair, with the zone (prepared) first.
        index = self.notices
        index.refresh()  # any compaction (into spatial order) now, before the members are found, not later
        slots = index.slots()
        if not len(slots) or not self.zones:
            return
        zone_of, at = STRtree(index.boxes(slots)).query(self._geoms)
        found = slots[at]
        meet = _meet(self._geoms[zone_of], index.geoms[found], index.disc[found])
        zone_of, found = zone_of[meet], found[meet]
        party = index.party[found]
        for code in np.unique(party).tolist():
            mine = party == code
            self._members[code] = _Members(index, len(self.zones), self.merge_max)
            self._members[code]._merged(zone_of[mine], found[mine])

    def _members_of(self, party: int) -> _Members:
        members = self._members.get(party)
        if members is None:
            members = self._members[party] = _Members(self.notices, len(self.zones), self.merge_max)
        return members

    def _remap(self, mapping: np.ndarray) -> None:
        for members in self._members.values():
            members.merge(mapping)

    def _dropped(self, slot: int) -> None:
        members = self._members.get(int(self.notices.party[slot]))
        if members is not None:
            members.drop(slot)

    def _zones_met(self, notice: NoticeShape, bounds: tuple[float, float, float, float] | None = None
                   ) -> np.ndarray:
        """The zones (positions, in order) that the notice meets (`deconflict.meets`), whatever their times.
        `bounds`: the notice's shape's, when known."""
        r = notice.radius_m
        x0, y0, x1, y1 = notice.geom.bounds if bounds is None else bounds
        x0, y0, x1, y1 = x0 - r, y0 - r, x1 + r, y1 + r
        if len(self.zones) <= self.zone_scan_max:  # a scan of the zones' bounds, cheaper than a tree's query
            box = self._zone_box
            hits = ((box[0] <= x1) & (box[2] >= x0) & (box[1] <= y1) & (box[3] >= y0)).nonzero()[0]
        else:
            hits = np.sort(self._tree.query(shapely.box(x0, y0, x1, y1)))  # bounds only
        geoms = self._geoms[hits]
        return hits[shapely.dwithin(geoms, notice.geom, r) if r > 0 else shapely.intersects(geoms, notice.geom)]

    def add(self, notice: NoticeShape) -> None:
        index = self.notices
        slot = index.add(notice)
        if self._tree is not None:
            zones = self._zones_met(notice)
            if len(zones):
                self._members_of(int(index.party[slot])).extend(zones, slot)

    def remove(self, seq: int) -> None:
        self.notices.remove(seq)

    def expire(self, now: datetime) -> None:
        self.notices.expire(now)

    def check(self, notice: NoticeShape, *, filed_at: datetime, min_notice_hours: float = 0.0) -> list[Finding]:
        index = self.notices
        index.refresh()
        start, end = micros(notice.start), micros(notice.end)
        party = index.party_code(notice.party)
        bounds = notice.geom.bounds
        separation = deconflict.DEFAULT_SEPARATION_M  # deconflict.separation_m of the zones touched
        if self._tree is not None:
            touched, hits = self._touched(notice, start, end, party, bounds)
            if len(hits):
                separation = max(separation, float(np.maximum.reduce(self._zone_separation[hits])))
        else:
            touched = []
        seqs, parties, distances = self._near(notice, start, end, party, separation, bounds)
        # The conflicts come last in deconflict.findings: its rule and notice-period findings (near=[]), then
        # the same conflict findings it would make, built from the arrays (a busy notice has hundreds).
        found = deconflict.findings(notice, touched=touched, near=[], filed_at=filed_at,
                                    min_notice_hours=min_notice_hours, separation=separation)
        if len(seqs):
            found += _conflicts(seqs, parties, distances, self.notices.party_names, separation)
        return found

    def _touched(self, notice: NoticeShape, start: int, end: int, party: int,
                 bounds: tuple[float, float, float, float]
                 ) -> tuple[list[tuple[ZoneShape, list[dict[str, int]]]], np.ndarray]:
        """The zones in effect that the notice meets, in the order of self.zones, each with the summed
        composition of the party's other notices in it at overlapping times; and their positions."""
        index = self.notices
        hits = self._zones_met(notice, bounds)
        hits = hits[(self._valid_from[hits] < end) & (start < self._valid_until[hits])]
        members = self._members.get(party)
        touched: list[tuple[ZoneShape, list[dict[str, int]]]] = [(self.zones[zone], []) for zone in hits.tolist()]
        limited = self._limited[hits].nonzero()[0]  # only limits read the notices in a zone
        if members is None or not len(limited):
            return touched, hits
        sums, counts = members.sums(hits[limited], start, end, index.slot_of(notice.seq))
        for at, row, count in zip(limited.tolist(), sums.tolist(), counts.tolist(), strict=True):
            if count:
                touched[at][1].append(dict(zip(CATEGORIES, row, strict=True)))
        return touched, hits

    def _near(self, notice: NoticeShape, start: int, end: int, party: int, separation: float,
              bounds: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Other parties' notices overlapping in time and altitude, closer than the separation: their seqs,
        party codes and distances, by seq."""
        index = self.notices
        geom, r = notice.geom, notice.radius_m
        x0, y0, x1, y1 = bounds
        slots = index.candidates((x0 - r, y0 - r, x1 + r, y1 + r), separation, but=party)
        slots = slots[(index.start[slots] < end) & (index.end[slots] > start)]  # the most selective first
        if notice.altitude is not None:  # a ground activity meets every band
            low, high = notice.altitude
            slots = slots[(index.alt_lo[slots] <= high) & (index.alt_hi[slots] >= low)]
        # Not the notice itself: a notice of the same seq in the index is the notice's party's (excluded
        # already), unless its party was changed.
        own = index.slot_of(notice.seq)
        if own is not None and index.party[own] != party:
            slots = slots[slots != own]
        if not len(slots):
            return slots, slots, np.empty(0)
        # No closer than the distance between circles holding them: exact distances only for the rest (worth
        # its dozen array passes only when there are many).
        if len(slots) >= _CIRCLES_MIN:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            if isinstance(geom, Point):
                radius = r + 0.01
            else:
                coords = shapely.get_coordinates(geom)
                radius = (float(np.hypot(coords[:, 0] - cx, coords[:, 1] - cy).max()) + 0.01 + r if len(coords)
                          else np.nan)
            gap = np.hypot(index.centre[slots, 0] - cx, index.centre[slots, 1] - cy) - index.radius[slots] - radius
            slots = slots[gap < separation]
        found = index.distances(geom, r, slots, bounds)
        close = found < separation
        slots, found = slots[close], found[close]
        order = index.seq[slots].argsort(kind="stable")
        slots = slots[order]
        return index.seq[slots], index.party[slots], found[order]
