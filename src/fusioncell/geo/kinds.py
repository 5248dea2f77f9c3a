"""Gazetteer kinds: places are shared by every party, so their entries go to everyone."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import insert
from sqlalchemy.orm import Session

from fusioncell.errors import InvalidSubmission
from fusioncell.geo.models import Place
from fusioncell.record.kinds import BodyModel, Kind, register
from fusioncell.record.sequencer import Appended

PLACE_KINDS = ("town", "village", "mountain", "post", "crossing", "line", "area", "other")


class PlaceAddedBody(BodyModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    names: dict[str, str] = Field(min_length=1)
    alt_names: list[str] = Field(default_factory=list, max_length=20)
    kind: Literal["town", "village", "mountain", "post", "crossing", "line", "area", "other"]
    geometry: dict[str, Any]

    @field_validator("geometry")
    @classmethod
    def _geometry(cls, value: dict[str, Any]) -> dict[str, Any]:
        from fusioncell.errors import InvalidInput
        from fusioncell.geo.geometry import check_geojson

        try:
            check_geojson(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from exc
        return value


def _apply_place_added(session: Session, entry: Appended, body: PlaceAddedBody) -> None:
    from fusioncell.geo.geometry import representative_point

    if session.get(Place, body.id) is not None:
        raise InvalidSubmission(f"place {body.id!r} is already in the gazetteer", code="duplicate_place")
    lat, lon = representative_point(body.geometry)
    words = list(body.names.values()) + list(body.alt_names) + [body.id]
    session.execute(insert(Place), [{
        "id": body.id, "names": dict(body.names), "alt_names": list(body.alt_names), "kind": body.kind,
        "geometry": dict(body.geometry), "lat": lat, "lon": lon, "search": "\n".join(w.casefold() for w in words),
        "added_seq": entry.seq,
    }])


register(Kind("geo.place_added", PlaceAddedBody, _apply_place_added, by_cell=True, full_audience=True))
