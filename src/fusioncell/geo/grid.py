"""MGRS and coordinate text: what officers read off maps and GPS, turned into WGS84 and back."""

from __future__ import annotations

import re

import mgrs as _mgrs

from fusioncell.errors import InvalidInput

_converter = _mgrs.MGRS()
_LATLON = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[,; ]\s*(-?\d+(?:\.\d+)?)\s*$")


def to_mgrs(lat: float, lon: float, precision: int = 5) -> str:
    return _converter.toMGRS(lat, lon, MGRSPrecision=precision)


def parse_position(text: str) -> tuple[float, float]:
    """(lat, lon) from 'lat, lon' or an MGRS reference such as 36SYB6347368805."""
    match = _LATLON.match(text)
    if match:
        lat, lon = float(match.group(1)), float(match.group(2))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InvalidInput(f"{text!r}: latitude first, then longitude, in degrees", code="bad_position")
        return lat, lon
    compact = text.replace(" ", "").upper()
    if not re.fullmatch(r"\d{1,2}[C-X][A-Z]{2}(\d{2}){1,5}", compact):
        raise InvalidInput(f"{text!r} is neither 'lat, lon' nor an MGRS reference like 36SYB6347368805",
                           code="bad_position")
    try:
        lat, lon = _converter.toLatLon(compact)
    except Exception as exc:  # noqa: BLE001  the C library raises its own types
        raise InvalidInput(f"{text!r} is not a valid MGRS reference", code="bad_position") from exc
    return lat, lon
