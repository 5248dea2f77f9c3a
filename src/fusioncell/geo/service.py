"""Gazetteer use cases: add a place (an entry), find places by name in any language, or by id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.errors import NotFound
from fusioncell.geo.models import Place
from fusioncell.record.sequencer import Appended, Log


def add_place(session: Session, *, log: Log, place_id: str, names: dict[str, str], kind: str,
              geometry: dict[str, Any], alt_names: list[str] | None = None) -> Appended:
    body = {"id": place_id, "names": names, "alt_names": alt_names or [], "kind": kind, "geometry": geometry}
    return log.append_as_cell(session, kind="geo.place_added", body=body)


def get_place(session: Session, place_id: str) -> Place | None:
    return session.get(Place, place_id)


def access_place(session: Session, *, place_id: str) -> Place:
    place = session.get(Place, place_id)
    if place is None:
        raise NotFound(f"no place {place_id!r} in the gazetteer; search for it by name first")
    return place


def search_places(session: Session, *, query: str, limit: int = 20) -> list[Place]:
    """Places whose id or any name (Arabic, Hebrew, English, alternatives) contains the query; or, for an
    MGRS reference or 'lat, lon', the places nearest to it."""
    from fusioncell.errors import InvalidInput
    from fusioncell.geo.grid import parse_position

    if any(ch.isdigit() for ch in query):
        try:
            lat, lon = parse_position(query)
        except InvalidInput:
            pass
        else:
            places = list(session.execute(select(Place)).scalars())
            places.sort(key=lambda p: (p.lat - lat) ** 2 + ((p.lon - lon) * 0.84) ** 2)  # cos(33°) for longitude
            return places[:limit]
    needle = query.strip().casefold()
    statement = select(Place).order_by(Place.id).limit(limit)
    if needle:
        statement = statement.where(Place.search.contains(needle))
    return list(session.execute(statement).scalars())


def place_name(place: Place, language: str) -> str:
    return place.names.get(language) or place.names.get("en") or next(iter(place.names.values()))
