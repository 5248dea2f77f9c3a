"""Checking one new activity notice against 100,000 active notices and 1,000 zones: the in-memory path
(`notices.index.Deconflictor.check`), next to the same query done by PostGIS (GiST indexes) in the same run.

Data (synthetic, seeded): zones and notices in an area like the Golan heights (lon 35.6-36.4, lat 32.6-33.5),
as GeoJSON in WGS84, projected once with `notices.geometry.widened` to UTM 36N metres (EPSG:32636). A point
with a radius is a disc (its centre and its radius, never a polygon), as everywhere in fusioncell: distances to
it are exact (`deconflict.distance_m`), and it meets a zone when its centre is within its radius of it.
  * zones: star-shaped polygons 2-12 km across (85 %) and strips 2-5 km wide, 10-40 km long (15 %), each with
    1-4 rules (max_count, banned, min_distance, no_presence, min_notice; validated with TypeAdapter(list[Rule]));
    most valid throughout, some starting or ending within the two weeks;
  * notices: discs, points with a radius of 100 m-5 km (50 %), short lines of 0.5-8 km (30 %), small polygons of
    200 m-2 km (20 %), two thirds spread over the area, one third around 30 hot spots; time windows of 1-72 h
    starting within ~2 weeks; parties IL and SY; activities with their compositions (troops, tanks,
    artillery with a calibre, aircraft and drones with altitudes for flights, none for humanitarian convoys).
  * new notices to check: the same distribution, filed "now", some with short notice.

Measured (single thread, one check at a time; repetitions alternate the two paths; figures are medians of the
repetitions' figures, min..max shown for the rates; a path repeats only while its repetitions fit in a time
budget, --budget, and a first repetition longer than the budget stops there (after the agreement sample), so
that a slow path does not make the run last for ever: "checks timed" says how many ran, e.g. "2,000 x 3"):
  1. build: the Deconflictor (add every notice, then set_zones), timed, with the growth of the process's RSS;
     then gc.freeze(), as a server does once it has loaded: the objects of the build (and of the scenario) are
     left out of the collector's later full passes, which would otherwise walk them all during a check;
  2. in-memory: `Deconflictor.check(notice, filed_at, min_notice_hours)` for each new notice: p50/p99 latency,
     sustained checks/s (new notices / loop time), mean findings per check;
  3. PostGIS baseline (PostgreSQL on 127.0.0.1, psycopg 3, one prepared statement, one round trip per check):
     notices stored as their shape (a disc as its centre) and a radius column, as in memory. Zones (GiST on
     geometry) that the notice meets (ST_DWithin(zone, shape, radius), ST_Intersects without a radius) and
     active in its window; other parties' notices overlapping in time (tstzrange &&) within the separation:
     ST_DWithin(shape, other, separation + r + r_other), at ST_Distance(shape, other) - r - r_other, found
     through a GiST index on (ST_Expand(geom, radius), tstzrange) with ST_Expand(other, radius) &&
     ST_Expand(shape, separation + r) (separation = max(1,000 m, the touched zones' min_distance) computed in
     the same statement; altitude bands for flights); and, per touched zone, the count and summed composition of
     the same party's concurrent notices that meet it (for the max_count limits), through the same index. A
     second GiST index on the tstzrange.
     Reported: the query alone (what the target compares with), and, for information, the query plus the
     rule evaluation in Python on its rows (zone_rules.evaluate, the findings as `deconflict.check` makes them).
  4. agreement on a sample: in-memory findings against the PostGIS-derived ones: zones touched (brute force
     with check()'s semantics vs PostGIS), conflicting seqs (and distances), rule and notice-period findings.

Targets (PASS/MISS, printed, never asserted): in-memory p99 under 2 ms; in-memory checks/s at least 10x the
PostGIS query rate. Exit status 0 whatever the figures (and if PostGIS is missing: a note, and the baseline
is skipped); 2 if the two paths disagree on the sample (the comparison is void).

PostGIS: `apt-get install -y postgresql-15-postgis-3`. The bench creates a scratch schema in the database of
FUSIONCELL_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test) or --pg, creates the postgis extension
in it (or uses the database's own if it already has one), and drops the schema (and so the extension) at the end.

  .venv/bin/python bench/deconfliction.py            # 100,000 notices, 1,000 zones, 2,000 checks, <= 3 reps (3-5 min)
  .venv/bin/python bench/deconfliction.py --quick    # 10,000 notices, 100 zones, 2,000 checks, 3 reps (~20 s)
  .venv/bin/python bench/deconfliction.py --profile  # also: cProfile of the in-memory check of 200 notices
  .venv/bin/python bench/deconfliction.py --no-pg    # in-memory only
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import os
import pstats
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import shapely
from _common import console, fmt, machine_line, median, spread, table, verdict
from pydantic import TypeAdapter

from fusioncell.geo import rules as zone_rules
from fusioncell.geo.rules import CATEGORIES, Rule
from fusioncell.notices.deconflict import (
    DEFAULT_SEPARATION_M,
    Finding,
    NoticeShape,
    ZoneShape,
    meets,
)
from fusioncell.notices.geometry import project, widened
from fusioncell.notices.index import Deconflictor

AREA = (35.6, 32.6, 36.4, 33.5)  # lon0, lat0, lon1, lat1
UTM = (36, True)  # EPSG:32636
SRID = 32636
T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # "now": every new notice is filed at T0
MIN_NOTICE_HOURS = 2.0  # the cell's own minimum (Cell.settings["min_notice_hours"])
P99_TARGET_MS = 2.0
RATE_TARGET_X = 10.0
PG_URL = os.environ.get("FUSIONCELL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

_RULES = TypeAdapter(list[Rule])
KM_LAT = 1 / 110.9  # degrees of latitude per km
KM_LON = 1 / (111.32 * math.cos(math.radians(33.05)))  # degrees of longitude per km, mid-area


# -- synthetic data ------------------------------------------------------------------------------------------

def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _clip(lon: float, lat: float) -> tuple[float, float]:
    return min(max(lon, AREA[0]), AREA[2]), min(max(lat, AREA[1]), AREA[3])


def _offset(lon: float, lat: float, dx_km: float, dy_km: float) -> list[float]:
    return [round(lon + dx_km * KM_LON, 7), round(lat + dy_km * KM_LAT, 7)]


def _star(rng: random.Random, lon: float, lat: float, radius_km: float, vertices: int) -> dict[str, Any]:
    """A simple (star-shaped about its centre) polygon: always valid."""
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(vertices))
    ring = [_offset(lon, lat, radius_km * rng.uniform(0.65, 1.0) * math.cos(a),
                    radius_km * rng.uniform(0.65, 1.0) * math.sin(a)) for a in angles]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def _strip(rng: random.Random, lon: float, lat: float, width_km: float, length_km: float) -> dict[str, Any]:
    a = rng.uniform(0, math.pi)
    ux, uy = math.cos(a), math.sin(a)
    vx, vy = -uy, ux
    corners = [(s * length_km / 2 * ux + t * width_km / 2 * vx, s * length_km / 2 * uy + t * width_km / 2 * vy)
               for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    ring = [_offset(lon, lat, dx, dy) for dx, dy in corners]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def _zone_rules(rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _ in range(rng.choice((1, 2, 2, 3, 3, 4))):
        kind = rng.choices(("max_count", "banned", "min_distance", "no_presence", "min_notice"),
                           (0.35, 0.15, 0.2, 0.1, 0.2))[0]
        if kind == "max_count":
            category = rng.choices(CATEGORIES, (0.3, 0.25, 0.25, 0.08, 0.06, 0.06))[0]
            limit = {"troops": (200, 3000), "tanks": (10, 150), "artillery": (4, 60), "air_defence": (0, 10),
                     "aircraft": (0, 6), "drones": (0, 20)}[category]
            rule: dict[str, Any] = {"type": "max_count", "category": category, "max": rng.randint(*limit)}
            if category == "artillery" and rng.random() < 0.4:
                rule["max_calibre_mm"] = 122
            out.append(rule)
        elif kind == "banned":
            out.append({"type": "banned",
                        "categories": rng.sample(["artillery", "air_defence", "tanks", "drones"], rng.randint(1, 2))})
        elif kind == "min_distance":
            out.append({"type": "min_distance", "metres": float(rng.choice((1500, 2000, 2500, 3000, 4000, 5000)))})
        elif kind == "no_presence":
            out.append({"type": "no_presence", "parties": rng.choice((["IL"], ["SY"], ["IL", "SY"]))})
        else:
            out.append({"type": "min_notice", "hours": float(rng.choice((12, 24, 48, 72))),
                        "activity": rng.choice(("*", "*", "*", "exercise", "flight", "ground_movement"))})
    return out


def make_zones(rng: random.Random, count: int) -> list[ZoneShape]:
    zones = []
    for i in range(count):
        lon, lat = rng.uniform(AREA[0], AREA[2]), rng.uniform(AREA[1], AREA[3])
        if rng.random() < 0.85:
            geometry = _star(rng, lon, lat, _log_uniform(rng, 1.0, 6.0), rng.randint(8, 24))
        else:
            geometry = _strip(rng, lon, lat, rng.uniform(2, 5), rng.uniform(10, 40))
        valid_from, valid_until = T0 - timedelta(days=60), None
        u = rng.random()
        if u < 0.1:
            valid_from = T0 + timedelta(hours=rng.uniform(0, 14 * 24))
        elif u < 0.2:
            valid_until = T0 + timedelta(hours=rng.uniform(0, 14 * 24))
        zones.append(ZoneShape(f"Z{i:04d}", project(geometry, UTM), _RULES.validate_python(_zone_rules(rng)),
                               valid_from, valid_until))
    return zones


ACTIVITY_WEIGHTS = {"patrol": 0.25, "ground_movement": 0.2, "exercise": 0.15, "flight": 0.12, "engineering": 0.08,
                    "humanitarian_convoy": 0.08, "demining": 0.07, "other": 0.05}


def _composition(rng: random.Random, activity: str) -> tuple[dict[str, int], int | None,
                                                              tuple[float, float] | None]:
    comp: dict[str, int] = {}
    calibre = altitude = None
    if activity == "patrol":
        comp["troops"] = rng.randint(4, 40)
    elif activity == "ground_movement":
        comp["troops"] = rng.randint(10, 300)
        if rng.random() < 0.5:
            comp["tanks"] = rng.randint(1, 20)
        if rng.random() < 0.2:
            comp["artillery"] = rng.randint(2, 12)
    elif activity == "exercise":
        comp["troops"] = rng.randint(50, 800)
        if rng.random() < 0.6:
            comp["tanks"] = rng.randint(1, 40)
        if rng.random() < 0.5:
            comp["artillery"] = rng.randint(1, 18)
        if rng.random() < 0.15:
            comp["air_defence"] = rng.randint(1, 4)
    elif activity == "flight":
        if rng.random() < 0.6:
            comp["aircraft"] = rng.randint(1, 4)
        else:
            comp["drones"] = rng.randint(1, 8)
        low = rng.uniform(100, 3000)
        altitude = (round(low), round(low + rng.uniform(500, 8000)))
    elif activity in ("engineering", "demining"):
        comp["troops"] = rng.randint(5, 80)
    elif activity == "other" and rng.random() < 0.5:
        comp["troops"] = rng.randint(1, 20)
    if comp.get("artillery"):
        calibre = rng.choice((105, 122, 130, 152, 155))
    return comp, calibre, altitude


def _notice_geojson(rng: random.Random, hotspots: list[tuple[float, float]]) -> dict[str, Any]:
    if rng.random() < 0.35:
        hx, hy = rng.choice(hotspots)
        lon, lat = _clip(hx + rng.gauss(0, 4) * KM_LON, hy + rng.gauss(0, 4) * KM_LAT)
    else:
        lon, lat = rng.uniform(AREA[0], AREA[2]), rng.uniform(AREA[1], AREA[3])
    u = rng.random()
    if u < 0.5:
        return {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)],
                "radius_m": round(_log_uniform(rng, 100, 5000))}
    if u < 0.8:
        length = rng.uniform(0.5, 8)
        legs = rng.randint(1, 3)
        coords, a = [[round(lon, 7), round(lat, 7)]], rng.uniform(0, 2 * math.pi)
        for _ in range(legs):
            a += rng.uniform(-0.8, 0.8)
            coords.append(_offset(coords[-1][0], coords[-1][1], length / legs * math.cos(a),
                                  length / legs * math.sin(a)))
        return {"type": "LineString", "coordinates": coords}
    return _star(rng, lon, lat, rng.uniform(0.1, 1.0), rng.randint(4, 7))


GEOJSON_KINDS: dict[str, int] = {}  # what the notices were drawn as


def make_notice(rng: random.Random, seq: int, hotspots: list[tuple[float, float]], *, new: bool) -> NoticeShape:
    activity = rng.choices(list(ACTIVITY_WEIGHTS), list(ACTIVITY_WEIGHTS.values()))[0]
    duration = timedelta(hours=_log_uniform(rng, 1, 72))
    if new:  # filed at T0: a fifth at short notice (under a day), the rest within the fortnight
        lead = rng.uniform(0.25, 24) if rng.random() < 0.2 else rng.uniform(24, 13 * 24)
        start = T0 + timedelta(hours=lead)
    else:  # active: not ended yet (some under way), starting within ~2 weeks
        while True:
            start = T0 + timedelta(hours=rng.uniform(-24, 13 * 24))
            if start + duration > T0:
                break
    start = start.replace(microsecond=0)
    comp, calibre, altitude = _composition(rng, activity)
    geojson = _notice_geojson(rng, hotspots)
    if not new:
        kind = "Point+radius" if "radius_m" in geojson else geojson["type"]
        GEOJSON_KINDS[kind] = GEOJSON_KINDS.get(kind, 0) + 1
    geom, radius = widened(geojson, UTM)
    return NoticeShape(seq, rng.choice(("IL", "SY")), activity, start, start + duration, geom, comp, calibre, altitude,
                       radius)


@dataclass
class Scenario:
    zones: list[ZoneShape]
    notices: list[NoticeShape]
    probes: list[NoticeShape]
    seconds: float = 0.0


def make_scenario(seed: int, n_notices: int, n_zones: int, n_probes: int) -> Scenario:
    start = time.perf_counter()
    rng = random.Random(seed)
    hotspots = [(rng.uniform(AREA[0], AREA[2]), rng.uniform(AREA[1], AREA[3])) for _ in range(30)]
    zones = make_zones(random.Random(seed + 1), n_zones)
    nrng = random.Random(seed + 2)
    notices = [make_notice(nrng, seq, hotspots, new=False) for seq in range(1, n_notices + 1)]
    prng = random.Random(seed + 3)
    probes = [make_notice(prng, 10_000_000 + i, hotspots, new=True) for i in range(n_probes)]
    return Scenario(zones, notices, probes, time.perf_counter() - start)


# -- measuring -------------------------------------------------------------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class Run:
    """One repetition of one path over every new notice."""
    latencies_ms: list[float]
    seconds: float
    findings: int
    kept: dict[int, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return percentile(sorted(self.latencies_ms), 0.50)

    @property
    def p99(self) -> float:
        return percentile(sorted(self.latencies_ms), 0.99)

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    @property
    def mean_findings(self) -> float:
        return self.findings / len(self.latencies_ms)


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def row(self, name: str) -> list[str]:
        p50 = median([r.p50 for r in self.runs])
        p99 = median([r.p99 for r in self.runs])
        rates = [r.rate for r in self.runs]
        counts = [len(r.latencies_ms) for r in self.runs]
        timed = (f"{counts[0]:,} x {len(counts)}" if len(set(counts)) == 1
                 else " + ".join(f"{c:,}" for c in counts))
        return [name, timed, fmt(p50, 3), fmt(p99, 3), fmt(median(rates)), spread(rates),
                fmt(median([r.mean_findings for r in self.runs]), 2)]

    @property
    def rate(self) -> float:
        return median([r.rate for r in self.runs])

    @property
    def p99(self) -> float:
        return median([r.p99 for r in self.runs])


def build_deconflictor(scenario: Scenario) -> tuple[Deconflictor, dict[str, float]]:
    gc.collect()
    rss0 = rss_mb()
    start = time.perf_counter()
    dec = Deconflictor()
    for notice in scenario.notices:
        dec.notices.add(notice)
    added = time.perf_counter()
    dec.set_zones(scenario.zones)
    done = time.perf_counter()
    gc.collect()
    gc.freeze()  # what a server does once loaded: the build's objects stay out of later full collections
    return dec, {"add": added - start, "zones": done - added, "rss": rss_mb() - rss0}


def run_memory(dec: Deconflictor, probes: list[NoticeShape], keep: set[int] = frozenset(),
               max_seconds: float = math.inf) -> Run:
    """`keep`: indexes of probes whose findings are kept (for the agreement check, without checking again).
    Stops after `max_seconds` (but not before the kept ones are done)."""
    latencies, findings, kept = [], 0, {}
    clock = time.perf_counter
    start = clock()
    last_kept = max(keep, default=-1)
    for i, probe in enumerate(probes):
        if i > last_kept and clock() - start > max_seconds:
            break
        t0 = clock()
        found = dec.check(probe, filed_at=T0, min_notice_hours=MIN_NOTICE_HOURS)
        latencies.append((clock() - t0) * 1e3)
        findings += len(found)
        if i in keep:
            kept[i] = found
    return Run(latencies, clock() - start, findings, kept)


# -- PostGIS ---------------------------------------------------------------------------------------------------

PG_QUERY = """
WITH q AS MATERIALIZED (
    SELECT ST_GeomFromWKB(%(g)s::bytea, 32636) AS g, %(r)s::float8 AS r,
           tstzrange(%(s)s::timestamptz, %(e)s::timestamptz) AS w
), touched AS MATERIALIZED (
    SELECT z.id, z.geom, z.min_distance_m, q.w FROM zones z, q
    WHERE z.geom && ST_Expand(q.g, q.r)
      AND CASE WHEN q.r > 0 THEN ST_DWithin(z.geom, q.g, q.r) ELSE ST_Intersects(z.geom, q.g) END
      AND z.valid_from < %(e)s::timestamptz AND (z.valid_until IS NULL OR z.valid_until > %(s)s::timestamptz)
), sep AS (
    SELECT GREATEST(%(sep)s::float8, max(min_distance_m)) AS d FROM touched
), same AS (
    SELECT t.id, count(*) AS n, sum(n.troops) AS troops, sum(n.tanks) AS tanks, sum(n.artillery) AS artillery,
           sum(n.air_defence) AS air_defence, sum(n.aircraft) AS aircraft, sum(n.drones) AS drones
    FROM touched t JOIN notices n ON ST_Expand(n.geom, n.radius) && t.geom AND n.win && t.w
      AND CASE WHEN n.radius > 0 THEN ST_DWithin(t.geom, n.geom, n.radius) ELSE ST_Intersects(t.geom, n.geom) END
    WHERE n.party = %(p)s
    GROUP BY t.id
)
SELECT 'z' AS kind, t.id AS zone, NULL::int AS seq, NULL::float8 AS dist, s.n, s.troops, s.tanks, s.artillery,
       s.air_defence, s.aircraft, s.drones
FROM touched t LEFT JOIN same s ON s.id = t.id
UNION ALL
SELECT 'c', n.party, n.seq, GREATEST(0, ST_Distance(n.geom, q.g) - q.r - n.radius),
       NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM notices n, q, sep
WHERE n.party <> %(p)s AND n.win && q.w AND ST_Expand(n.geom, n.radius) && ST_Expand(q.g, sep.d + q.r)
  AND ST_DWithin(n.geom, q.g, sep.d + q.r + n.radius)
  AND (n.alt_min IS NULL OR %(amin)s::float8 IS NULL OR (n.alt_min <= %(amax)s::float8 AND %(amin)s::float8 <= n.alt_max))
"""


class PostGIS:
    """A scratch schema with the postgis extension, the zones and notices loaded, the query prepared."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.schema = "bench_deconf_" + uuid.uuid4().hex[:10]
        self.conn.execute(f"CREATE SCHEMA {self.schema}")
        existing = self.conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                                     "ON n.oid = e.extnamespace WHERE e.extname = 'postgis'").fetchone()
        try:
            if existing:  # the database has it already (one per database): use it, leave it
                self.conn.execute(f"SET search_path = {self.schema}, {existing[0]}")
            else:
                self.conn.execute(f"CREATE EXTENSION postgis SCHEMA {self.schema}")
                self.conn.execute(f"SET search_path = {self.schema}")
            self.version = self.conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        try:
            self.conn.execute("RESET search_path")
            self.conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        finally:
            self.conn.close()

    def load(self, scenario: Scenario) -> dict[str, float]:
        conn = self.conn
        start = time.perf_counter()
        conn.execute(f"""CREATE TABLE zones (id text PRIMARY KEY, geom geometry(Polygon, {SRID}) NOT NULL,
                         valid_from timestamptz NOT NULL, valid_until timestamptz, min_distance_m float8)""")
        conn.execute(f"""CREATE TABLE notices (seq int PRIMARY KEY, party text NOT NULL, win tstzrange NOT NULL,
                         alt_min float8, alt_max float8, troops int NOT NULL, tanks int NOT NULL,
                         artillery int NOT NULL, air_defence int NOT NULL, aircraft int NOT NULL,
                         drones int NOT NULL, geom geometry(Geometry, {SRID}) NOT NULL, radius float8 NOT NULL)""")
        zone_wkb = shapely.to_wkb(shapely.set_srid([z.geom for z in scenario.zones], SRID), hex=True,
                                  include_srid=True)
        notice_wkb = shapely.to_wkb(shapely.set_srid([n.geom for n in scenario.notices], SRID), hex=True,
                                    include_srid=True)
        with conn.cursor() as cur:
            with cur.copy("COPY zones (id, geom, valid_from, valid_until, min_distance_m) FROM STDIN") as copy:
                for z, wkb in zip(scenario.zones, zone_wkb, strict=True):
                    copy.write_row((z.id, wkb, z.valid_from, z.valid_until, zone_rules.min_distance(z.rules)))
            with cur.copy("COPY notices (seq, party, win, alt_min, alt_max, troops, tanks, artillery, air_defence, "
                          "aircraft, drones, geom, radius) FROM STDIN") as copy:
                for n, wkb in zip(scenario.notices, notice_wkb, strict=True):
                    alt = n.altitude or (None, None)
                    copy.write_row((n.seq, n.party, f"[{n.start.isoformat()},{n.end.isoformat()})", alt[0], alt[1],
                                    *(n.composition.get(c, 0) for c in CATEGORIES), wkb, n.radius_m))
        loaded = time.perf_counter()
        conn.execute("CREATE INDEX zones_geom ON zones USING gist (geom)")
        conn.execute("CREATE INDEX notices_box_win ON notices USING gist (ST_Expand(geom, radius), win)")
        conn.execute("CREATE INDEX notices_win ON notices USING gist (win)")
        conn.execute("ANALYZE zones")
        conn.execute("ANALYZE notices")
        return {"copy": loaded - start, "index": time.perf_counter() - loaded}

    def explain(self, probe: NoticeShape) -> str:
        rows = self.conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + PG_QUERY, params(probe)).fetchall()
        return "\n".join(r[0] for r in rows)


def params(probe: NoticeShape) -> dict[str, Any]:
    alt = probe.altitude or (None, None)
    return {"g": shapely.to_wkb(probe.geom), "r": probe.radius_m, "s": probe.start, "e": probe.end, "p": probe.party,
            "sep": DEFAULT_SEPARATION_M, "amin": alt[0], "amax": alt[1]}


def findings_from_rows(probe: NoticeShape, rows: list[tuple], rules_of: dict[str, list[Any]]) -> list[Finding]:
    """The findings `deconflict.check` makes, from the PostGIS rows: the zone rules with the party's summed
    concurrent composition per zone, the cell's notice period, and conflicts within the separation."""
    findings: list[Finding] = []
    hours = (probe.start - T0).total_seconds() / 3600
    touched, conflicts = [], []
    for kind, zone, seq, dist, n, *sums in rows:
        if kind == "z":
            touched.append(zone)
            concurrent = [dict(zip(CATEGORIES, (int(s) for s in sums), strict=True))] if n else []
            for breach in zone_rules.evaluate(rules_of[zone], party=probe.party, activity=probe.activity,
                                              composition=probe.composition, calibre_mm=probe.calibre_mm,
                                              notice_hours=hours, concurrent=concurrent):
                findings.append(Finding("notice_period" if breach.rule == "min_notice" else "rule", breach.detail,
                                        zone=zone))
        else:
            conflicts.append((seq, zone, dist))
    if hours < MIN_NOTICE_HOURS and not any(f.type == "notice_period" for f in findings):
        findings.append(Finding("notice_period", f"notified {hours:.1f} h ahead; the cell needs {MIN_NOTICE_HOURS:g} h"))
    separation = max([DEFAULT_SEPARATION_M] + [d for z in touched if (d := zone_rules.min_distance(rules_of[z]))])
    for seq, party, distance in conflicts:
        if distance < separation:
            findings.append(Finding("conflict", f"within {distance:,.0f} m of notice {seq} of {party} "
                                                f"at overlapping times (separation {separation:,.0f} m)",
                                    other=seq, distance_m=round(distance, 1)))
    return findings


@dataclass
class PgRuns:
    query: Run
    with_rules: Run
    zones: float  # mean touched zones per check
    same: float  # mean same-party concurrent notices summed over the touched zones
    conflicts: float  # mean conflict rows


def run_pg(pg: PostGIS, probes: list[NoticeShape], rules_of: dict[str, list[Any]], keep: set[int] = frozenset(),
           max_seconds: float = math.inf) -> PgRuns:
    """`keep`: indexes of probes whose rows are kept (for the agreement check). Stops as run_memory does."""
    query_ms, total_ms, findings, kept = [], [], 0, {}
    zones = same = conflicts = 0
    clock = time.perf_counter
    query_s = 0.0
    with pg.conn.cursor() as cur:
        start = clock()
        last_kept = max(keep, default=-1)
        for i, probe in enumerate(probes):
            if i > last_kept and clock() - start > max_seconds:
                break
            t0 = clock()
            cur.execute(PG_QUERY, params(probe), prepare=True)
            rows = cur.fetchall()
            t1 = clock()
            found = findings_from_rows(probe, rows, rules_of)
            t2 = clock()
            query_ms.append((t1 - t0) * 1e3)
            total_ms.append((t2 - t0) * 1e3)
            query_s += t1 - t0
            findings += len(found)
            if i in keep:
                kept[i] = rows
            for row in rows:
                if row[0] == "z":
                    zones += 1
                    same += row[4] or 0
                else:
                    conflicts += 1
        seconds = clock() - start
    n = len(query_ms)
    # The query's sustained rate counts the time in the query calls only (the rules ran between them).
    return PgRuns(Run(query_ms, query_s, findings, kept), Run(total_ms, seconds, findings), zones / n, same / n,
                  conflicts / n)


# -- agreement -------------------------------------------------------------------------------------------------

def touched_reference(zones: list[ZoneShape], probe: NoticeShape) -> set[str]:
    """The zones `deconflict.check` counts as touched (active in the window, met), by brute force."""
    return {z.id for z in zones if z.valid_from < probe.end and (z.valid_until is None or probe.start < z.valid_until)
            and meets(z.geom, probe.geom, probe.radius_m)}


def agreement(scenario: Scenario, sample: list[tuple[NoticeShape, list[Finding], list[tuple]]],
              rules_of: dict[str, list[Any]]) -> tuple[int, list[str], float]:
    """How many of the sample agree in full; the first differences; the largest conflict-distance difference.
    `sample`: (new notice, its in-memory findings, its PostGIS rows), kept from the first repetition."""
    agree, problems, max_dd = 0, [], 0.0
    for probe, mem, rows in sample:
        sql = findings_from_rows(probe, rows, rules_of)
        issues = []
        pg_zones = {r[1] for r in rows if r[0] == "z"}
        ref_zones = touched_reference(scenario.zones, probe)
        if pg_zones != ref_zones:
            issues.append(f"zones touched: PostGIS {sorted(pg_zones ^ ref_zones)} differ")
        mem_c = {f.other: f.distance_m for f in mem if f.type == "conflict"}
        sql_c = {f.other: f.distance_m for f in sql if f.type == "conflict"}
        if set(mem_c) != set(sql_c):
            issues.append(f"conflicts: only in memory {sorted(set(mem_c) - set(sql_c))[:5]}, "
                          f"only PostGIS {sorted(set(sql_c) - set(mem_c))[:5]}")
        for seq in set(mem_c) & set(sql_c):
            max_dd = max(max_dd, abs(mem_c[seq] - sql_c[seq]))
        mem_r = sorted((f.type, f.zone or "", f.detail) for f in mem if f.type != "conflict")
        sql_r = sorted((f.type, f.zone or "", f.detail) for f in sql if f.type != "conflict")
        if mem_r != sql_r:
            diff = sorted(set(mem_r) ^ set(sql_r))[:3]
            issues.append(f"rule findings differ: {diff}")
        if issues:
            problems.append(f"notice {probe.seq}: " + "; ".join(issues))
        else:
            agree += 1
    return agree, problems, max_dd


# -- main ------------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 notices, 100 zones, 2,000 checks (~20 s)")
    parser.add_argument("--notices", type=int, help="active notices (default 100,000; quick 10,000)")
    parser.add_argument("--zones", type=int, help="zones (default 1,000; quick 100)")
    parser.add_argument("--checks", type=int, help="new notices checked per repetition (default 2,000)")
    parser.add_argument("--reps", type=int, help="repetitions at most (default 3)")
    parser.add_argument("--budget", type=float,
                        help="seconds per path for its repetitions (default 100; quick 12); see above")
    parser.add_argument("--sample", type=int, help="new notices in the agreement check (default 200; quick 100)")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--pg", metavar="URL", default=PG_URL, help=f"PostgreSQL with PostGIS (default {PG_URL})")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostGIS baseline")
    parser.add_argument("--explain", action="store_true", help="print the PostGIS plan (EXPLAIN ANALYZE) of one check")
    parser.add_argument("--profile", action="store_true", help="cProfile one pass of the in-memory checks")
    args = parser.parse_args()
    n_notices = args.notices or (10_000 if args.quick else 100_000)
    n_zones = args.zones or (100 if args.quick else 1_000)
    n_checks = args.checks or 2_000
    reps = args.reps or 3
    budget = args.budget if args.budget is not None else (12.0 if args.quick else 100.0)
    n_sample = min(args.sample or (100 if args.quick else 200), n_checks)

    console.print(f"[bold]bench/deconfliction.py[/] | {machine_line()}")
    console.print(f"{n_notices:,} active notices, {n_zones:,} zones, {n_checks:,} new notices checked one at a time "
                  f"x up to {reps} repetitions ({budget:g} s budget per path); cell min_notice_hours {MIN_NOTICE_HOURS:g}; seed {args.seed}")

    rss0 = rss_mb()
    scenario = make_scenario(args.seed, n_notices, n_zones, n_checks + 20)
    warmup, probes = scenario.probes[:20], scenario.probes[20:]
    rss_data = rss_mb() - rss0
    console.print(f"data: generated and projected to UTM 36N in {scenario.seconds:.1f} s (+{rss_data:,.0f} MB RSS); "
                  "notices drawn as: " + ", ".join(f"{k} {v:,}" for k, v in sorted(GEOJSON_KINDS.items())))

    dec, build = build_deconflictor(scenario)
    rules_of = {z.id: z.rules for z in scenario.zones}

    pg: PostGIS | None = None
    pg_note = ""
    pg_build: dict[str, float] = {}
    if args.no_pg:
        pg_note = "PostGIS baseline skipped (--no-pg)"
    else:
        try:
            pg = PostGIS(args.pg)
        except (ImportError, OSError, psycopg.Error) as exc:  # no server, no extension: the in-memory figures stand
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            pg_note = (f"PostGIS baseline skipped: {first} (needs PostgreSQL at {args.pg} with PostGIS: "
                       "apt-get install -y postgresql-15-postgis-3)")
    try:
        if pg is not None:
            pg_build = pg.load(scenario)
        rows = [["Deconflictor: add every notice (NoticeIndex.add)", f"{build['add']:.2f} s",
                 f"{build['add'] / n_notices * 1e6:.1f} µs per notice"],
                ["Deconflictor: set_zones (STRtree)", f"{build['zones'] * 1e3:.1f} ms", ""],
                ["Deconflictor: RSS growth of the build", f"{build['rss']:,.0f} MB",
                 f"shapes themselves: +{rss_data:,.0f} MB (generation)"]]
        if pg is not None:
            rows += [[f"PostGIS {pg.version}: COPY zones and notices", f"{pg_build['copy']:.2f} s", ""],
                     ["PostGIS: GiST indexes + ANALYZE", f"{pg_build['index']:.2f} s", ""]]
        table("Build", ["step", "time", "note"], rows)
        if pg_note:
            console.print(f"[yellow]{pg_note}[/]")

        if args.explain and pg is not None:
            console.print(pg.explain(probes[0]))

        # warm-up: caches, the prepared statement, the first allocations
        run_memory(dec, warmup)
        if pg is not None:
            run_pg(pg, warmup, rules_of)

        # Repetitions alternate the two paths. Each path has a time budget: a further repetition of a path runs
        # only if its repetitions so far plus one more (as long as its last) fit in it; the first always runs,
        # but stops early (after the notices of the agreement sample) if it alone takes longer than the budget.
        memory, pg_query, pg_rules = Series(), Series(), Series()
        work: PgRuns | None = None
        keep = set(range(n_sample)) if pg is not None else set()  # the new notices are drawn at random anyway
        spent = {"memory": 0.0, "pg": 0.0}
        last = {"memory": 0.0, "pg": 0.0}

        def fits(path: str) -> bool:
            return spent[path] == 0.0 or spent[path] + last[path] <= budget

        for rep in range(reps):
            did = []
            if fits("memory"):
                t0 = time.perf_counter()
                memory.runs.append(run_memory(dec, probes, keep if rep == 0 else set(), budget))
                last["memory"] = time.perf_counter() - t0
                spent["memory"] += last["memory"]
                did.append(f"in-memory {memory.runs[-1].rate:,.1f} checks/s")
            if pg is not None and fits("pg"):
                t0 = time.perf_counter()
                work = run_pg(pg, probes, rules_of, keep if rep == 0 else set(), budget)
                last["pg"] = time.perf_counter() - t0
                spent["pg"] += last["pg"]
                pg_query.runs.append(work.query)
                pg_rules.runs.append(work.with_rules)
                did.append(f"PostGIS query {pg_query.runs[-1].rate:,.1f} checks/s")
            if not did:
                break
            console.print(f"  repetition {rep + 1}/{reps}: " + ", ".join(did))
        for name, series in (("in-memory", memory), ("PostGIS", pg_query)):
            if series.runs and len(series.runs[0].latencies_ms) < len(probes):
                console.print(f"  [yellow]{name}: stopped at the time budget ({budget:g} s per path) after "
                              f"{len(series.runs[0].latencies_ms):,} of the {len(probes):,} new notices, "
                              "in 1 repetition[/]")
            elif series.runs and len(series.runs) < reps:
                console.print(f"  [yellow]{name}: {len(series.runs)} of {reps} repetitions (time budget of "
                              f"{budget:g} s per path)[/]")

        columns = ["path (1 thread, 1 notice at a time)", "checks timed", "p50 ms", "p99 ms", "checks/s", "checks/s reps",
                   "findings/check"]
        rows = [memory.row("in-memory Deconflictor.check")]
        if pg is not None:
            rows.append(pg_query.row("PostGIS query (1 round trip)"))
            rows.append(pg_rules.row("PostGIS + rules in Python (info)"))
        caption = None
        if work is not None:
            caption = (f"work per check (PostGIS rows, last repetition): {work.zones:.1f} zones touched, "
                       f"{work.same:,.0f} same-party concurrent notices summed over them, "
                       f"{work.conflicts:.1f} other-party notices within the separation (before altitude "
                       f"and the strict < test). findings/check for the query alone: those of the rules on its rows.")
        table(f"Checking a new notice: {n_notices:,} active notices, {n_zones:,} zones; medians over the "
              "repetitions", columns, rows, caption=caption)

        verdicts = [["in-memory p99 latency", f"{memory.p99:.3f} ms", f"< {P99_TARGET_MS:g} ms",
                     verdict(memory.p99 < P99_TARGET_MS)]]
        if pg is not None:
            ratio = memory.rate / pg_query.rate
            verdicts.append(["in-memory checks/s vs PostGIS query checks/s", f"{fmt(ratio)}x",
                             f">= {RATE_TARGET_X:g}x", verdict(ratio >= RATE_TARGET_X)])
            verdicts.append(["(info) in-memory vs PostGIS + Python rules", f"{fmt(memory.rate / pg_rules.rate)}x",
                             "-", "-"])
        else:
            verdicts.append(["in-memory checks/s vs PostGIS query checks/s", "-", f">= {RATE_TARGET_X:g}x",
                             "n/a (no baseline)"])
        table("Targets", ["target", "measured", "target", "verdict"], verdicts)

        status = 0
        if pg is not None:
            mem_kept, pg_kept = memory.runs[0].kept, pg_query.runs[0].kept
            sample = [(probes[i], mem_kept[i], pg_kept[i]) for i in sorted(keep)]
            agree, problems, max_dd = agreement(scenario, sample, rules_of)
            colour = "green" if agree == len(sample) else "red"
            console.print(f"[bold {colour}]agreement: {agree}/{len(sample)} new notices identical[/] in memory and "
                          "by PostGIS (zones touched, conflicting seqs, rule and notice-period findings); "
                          f"largest conflict distance difference {max_dd:.1f} m")
            for line in problems[:10]:
                console.print(f"  [red]{line}[/]")
            if problems:
                status = 2

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_memory(dec, probes[:200])
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
            console.print(f"[bold]cProfile of the in-memory check of {min(200, len(probes))} new notices (by own time)[/]")
            console.print(out.getvalue(), markup=False)
        return status
    finally:
        if pg is not None:
            pg.close()


if __name__ == "__main__":
    sys.exit(main())
