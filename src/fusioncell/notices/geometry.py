"""Notice geometry in metres: GeoJSON (WGS84) projected to the UTM zone of the area, so distances are in
metres, not degrees. A geometry with `radius_m` (a Point, in practice) is every point within that radius of it:
a disc for a Point. It is kept as the shape and the radius, never as a polygon approximating it, so that
distances to it are exact (notices.deconflict.distance_m). Pure."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely import make_valid
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from fusioncell.errors import InvalidInput


@cache
def _to_utm(zone: int, north: bool) -> Transformer:
    return Transformer.from_crs("EPSG:4326", f"EPSG:{32600 + zone if north else 32700 + zone}", always_xy=True)


def utm_zone(lon: float, lat: float) -> tuple[int, bool]:
    return int((lon + 180) // 6) + 1, lat >= 0


def project(geometry: dict[str, Any], zone: tuple[int, bool]) -> BaseGeometry:
    """GeoJSON geometry to shapely in the given UTM zone's metres, without its radius (see `widened`)."""
    plain = {k: v for k, v in geometry.items() if k != "radius_m"}
    transformer = _to_utm(*zone)

    def to_metres(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(coords[:, 0], coords[:, 1]))

    return shapely.transform(shape(plain), to_metres)


def radius_of(geometry: dict[str, Any]) -> float:
    """The radius in metres around the shape (0 when none is given)."""
    return float(geometry.get("radius_m") or 0.0)


def widened(geometry: dict[str, Any], zone: tuple[int, bool]) -> tuple[BaseGeometry, float]:
    """The projected shape and the radius around it: a Point with radius_m is a disc (its centre, its radius)."""
    return project(geometry, zone), radius_of(geometry)


def checked(geometry: dict[str, Any], *, repair: bool, max_area_km2: float = 20000.0) -> dict[str, Any]:
    """Refuse invalid or oversize geometry with the reason; repair only when the author consents."""
    from fusioncell.geo.geometry import check_geojson

    plain = {k: v for k, v in geometry.items() if k != "radius_m"}
    check_geojson(plain)
    geom = shape(plain)
    if not geom.is_valid:
        if not repair:
            from shapely.validation import explain_validity

            raise InvalidInput(f"the geometry is invalid ({explain_validity(geom)}); fix it, or resubmit with "
                               "repair=true to accept the repaired shape", code="invalid_geometry")
        repaired = make_valid(geom)
        if repaired.geom_type != "Polygon":
            raise InvalidInput("the geometry cannot be repaired into one polygon; draw it again",
                               code="invalid_geometry")
        plain = {"type": "Polygon", "coordinates": [list(map(list, repaired.exterior.coords))]}
        geometry = {**plain, **({"radius_m": geometry["radius_m"]} if "radius_m" in geometry else {})}
    radius = geometry.get("radius_m")
    if radius is not None and (not isinstance(radius, int | float) or radius <= 0 or radius > 100000):
        raise InvalidInput("radius_m must be a number of metres between 0 and 100,000", code="invalid_geometry")
    lon, lat = geom.representative_point().coords[0]
    core, radius = widened(geometry, utm_zone(lon, lat))
    # A size limit, not a distance: the buffer's polygon is within a fraction of a per cent of the disc's area.
    area = (core.buffer(radius) if radius > 0 else core).area / 1e6
    if area > max_area_km2:
        raise InvalidInput(f"the geometry covers {area:,.0f} km², over the limit of {max_area_km2:,.0f} km²",
                           code="too_large")
    return geometry
