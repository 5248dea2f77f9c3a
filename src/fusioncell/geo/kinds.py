"""Gazetteer kinds: places are shared by every party, so their entries go to everyone."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fusioncell.errors import InvalidSubmission
from fusioncell.geo.models import Place, Zone
from fusioncell.geo.rules import Rule
from fusioncell.identity.models import Party
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


class ZoneProposedBody(BodyModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    names: dict[str, str] = Field(min_length=1)
    geometry: dict[str, Any]
    valid_from: str
    valid_until: str | None = None
    rules: list[Rule] = Field(default_factory=list)
    illustrative: bool = False

    @field_validator("geometry")
    @classmethod
    def _polygon(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "Polygon":
            raise ValueError("a zone is a Polygon")
        return PlaceAddedBody._geometry(value)


class ZoneSignedBody(BodyModel):
    zone: str = Field(max_length=64)
    text: str = Field(pattern=r"^[0-9a-f]{64}$")


def _apply_zone_proposed(session: Session, entry: Appended, body: ZoneProposedBody) -> None:
    if session.get(Zone, body.id) is not None:
        raise InvalidSubmission(f"zone {body.id!r} exists; propose it under a new id", code="duplicate_zone")
    session.add(Zone(id=body.id, body=body.model_dump(mode="json"), text_hash=entry.submission["body"],
                     proposed_seq=entry.seq, signatures={}, effective_seq=None))
    session.flush()


def _apply_zone_signed(session: Session, entry: Appended, body: ZoneSignedBody) -> None:
    zone = session.get(Zone, body.zone)
    if zone is None:
        raise InvalidSubmission(f"no zone {body.zone!r}", code="unknown_zone")
    if body.text != zone.text_hash:
        raise InvalidSubmission("the signature is for another text than the zone's proposal", code="wrong_text")
    if entry.party in zone.signatures:
        raise InvalidSubmission(f"{entry.party} has already signed zone {body.zone}", code="duplicate")
    zone.signatures = {**zone.signatures, entry.party: entry.seq}
    parties = set(session.execute(select(Party.id)).scalars())
    if zone.effective_seq is None and parties <= set(zone.signatures):
        zone.effective_seq = entry.seq  # every party has signed the same text: the zone takes effect
    session.flush()


register(Kind("geo.zone_proposed", ZoneProposedBody, _apply_zone_proposed, by_cell=True, full_audience=True))
register(Kind("geo.zone_signed", ZoneSignedBody, _apply_zone_signed, full_audience=True))
