"""Front-end libraries, installed from the npm registry by the setup step (never a CDN), served by the app."""

from __future__ import annotations

import os
from pathlib import Path

# name -> file inside node_modules; served under /static/vendor/<name>
VENDOR = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet.css": "leaflet/dist/leaflet.css",
    "images/layers.png": "leaflet/dist/images/layers.png",
    "images/layers-2x.png": "leaflet/dist/images/layers-2x.png",
    "images/marker-icon.png": "leaflet/dist/images/marker-icon.png",
    "images/marker-icon-2x.png": "leaflet/dist/images/marker-icon-2x.png",
    "images/marker-shadow.png": "leaflet/dist/images/marker-shadow.png",
    "topojson-client.min.js": "topojson-client/dist/topojson-client.min.js",
    "mgrs.min.js": "mgrs/dist/mgrs.min.js",
    "countries-50m.json": "world-atlas/countries-50m.json",
}


def node_modules() -> Path | None:
    """Where `npm ci` put the libraries: FUSIONCELL_ASSETS, or the checkout this package runs from."""
    candidates = [Path(os.environ["FUSIONCELL_ASSETS"])] if os.environ.get("FUSIONCELL_ASSETS") else []
    candidates += [parent / "node_modules" for parent in Path(__file__).resolve().parents]
    for candidate in candidates:
        if (candidate / "leaflet" / "dist" / "leaflet.js").exists():
            return candidate
    return None


def vendor_path(name: str) -> Path | None:
    root = node_modules()
    relative = VENDOR.get(name)
    if root is None or relative is None:
        return None
    path = root / relative
    return path if path.exists() else None
