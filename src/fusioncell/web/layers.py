"""Map layers. Each geographic module registers a provider of GeoJSON (RFC 7946) features for a member; the
map page shows every layer with a legend. Features carry `illustrative: true` where they are not agreed lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fusioncell.identity.service import Viewer


@dataclass(frozen=True)
class Layer:
    id: str
    title: str  # translated
    color: str
    features: list[dict[str, Any]] = field(default_factory=list)
    illustrative: bool = False

    def geojson(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "color": self.color, "illustrative": self.illustrative,
                "data": {"type": "FeatureCollection", "features": self.features}}


Provider = Callable[[Session, Viewer], list[Layer]]
_PROVIDERS: list[Provider] = []


def provider(function: Provider) -> Provider:
    _PROVIDERS.append(function)
    return function


def collect(session: Session, viewer: Viewer) -> list[Layer]:
    return [layer for p in _PROVIDERS for layer in p(session, viewer)]
