"""KML import (fastkml): the first placemark geometry of a KML document, as GeoJSON for a notice."""

from __future__ import annotations

import warnings
from typing import Any

from fusioncell.errors import InvalidInput

MAX_KML = 1 << 20


def _features(node: Any):  # noqa: ANN202
    for feature in getattr(node, "features", None) or []:
        yield feature
        yield from _features(feature)


def geometry_from_kml(text: str) -> dict[str, Any]:
    """GeoJSON (2D, WGS84) of the first Point, LineString or Polygon in the document."""
    if len(text) > MAX_KML:
        raise InvalidInput("the KML file is over 1 MiB", code="too_large")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fastkml warns that lxml (pretty printing) is missing
        from fastkml import kml

        try:
            document = kml.KML.from_string(text)
        except Exception as exc:  # noqa: BLE001  fastkml raises parser errors of several types
            raise InvalidInput(f"this is not a KML document: {exc}", code="bad_kml") from exc
    for feature in _features(document):
        geometry = getattr(feature, "geometry", None)
        if geometry is None:
            continue
        shape = geometry.__geo_interface__
        if shape["type"] == "Point":
            return {"type": "Point", "coordinates": list(shape["coordinates"][:2])}
        if shape["type"] == "LineString":
            return {"type": "LineString", "coordinates": [list(p[:2]) for p in shape["coordinates"]]}
        if shape["type"] == "Polygon":
            return {"type": "Polygon", "coordinates": [[list(p[:2]) for p in ring] for ring in shape["coordinates"]]}
    raise InvalidInput("the KML has no point, line or polygon placemark", code="bad_kml")
