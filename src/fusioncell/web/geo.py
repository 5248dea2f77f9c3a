"""Map layers of the geo package: the shared gazetteer."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fusioncell.geo import service as geo_service
from fusioncell.identity.service import Viewer
from fusioncell.web import i18n, layers


@layers.provider
def _places(session: Session, viewer: Viewer) -> list[layers.Layer]:
    language = i18n.current_language()
    features = [{
        "type": "Feature", "geometry": place.geometry,
        "properties": {"id": place.id, "name": geo_service.place_name(place, language), "kind": place.kind,
                       "names": place.names},
    } for place in geo_service.search_places(session, query="", limit=5000)]
    return [layers.Layer("places", i18n._("Places (gazetteer)"), "#1b5e20", features)] if features else []
