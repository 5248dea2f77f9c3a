"""Geometry helpers (pure): GeoJSON (RFC 7946) checks and a representative point."""

from __future__ import annotations

from typing import Any

from fusioncell.errors import InvalidInput


def _position(value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise InvalidInput("a position is [longitude, latitude] (RFC 7946)")
    lon, lat = value[0], value[1]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
        raise InvalidInput("coordinates must be numbers")
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise InvalidInput(f"coordinates out of range: longitude {lon}, latitude {lat} (longitude comes first)")
    return float(lon), float(lat)


def check_geojson(geometry: dict[str, Any]) -> None:
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Point":
        _position(coords)
    elif kind == "LineString":
        if not isinstance(coords, list) or len(coords) < 2:
            raise InvalidInput("a LineString needs at least two positions")
        for p in coords:
            _position(p)
    elif kind == "Polygon":
        if not isinstance(coords, list) or not coords:
            raise InvalidInput("a Polygon needs at least one ring")
        for ring in coords:
            if not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1]:
                raise InvalidInput("each Polygon ring needs four or more positions and must close on its start")
            for p in ring:
                _position(p)
    else:
        raise InvalidInput(f"geometry type {kind!r} is not supported here; use Point, LineString or Polygon")


def representative_point(geometry: dict[str, Any]) -> tuple[float, float]:
    """(lat, lon): the point itself, or the mean of the positions of a line or outer ring."""
    kind = geometry["type"]
    if kind == "Point":
        lon, lat = _position(geometry["coordinates"])
        return lat, lon
    positions = geometry["coordinates"] if kind == "LineString" else geometry["coordinates"][0][:-1]
    lons, lats = zip(*(_position(p) for p in positions), strict=True)
    return sum(lats) / len(lats), sum(lons) / len(lons)


def geometry_of(pasted: Any) -> Any:
    """The geometry in pasted GeoJSON. GIS tools export a Feature or a FeatureCollection of one feature; the
    forms take the geometry inside (the drawing map shows the same)."""
    if isinstance(pasted, dict) and pasted.get("type") == "FeatureCollection":
        features = pasted.get("features")
        if isinstance(features, list) and len(features) == 1:
            pasted = features[0]
    if isinstance(pasted, dict) and pasted.get("type") == "Feature" and isinstance(pasted.get("geometry"), dict):
        return pasted["geometry"]
    return pasted
