// The drawing map of forms that take a place (templates/_draw.html). A point (with a radius by a second click),
// a route or an area drawn by clicks fills the form's own fields: the position (MGRS) and radius inputs, or the
// GeoJSON textarea (RFC 7946: longitude first). What is typed or pasted in those fields is drawn on the map, so
// the fields stay the one source of the place and keyboard users lose nothing. The zones and active notices are
// shown for context. Hand-written rather than a drawing plugin: three shapes need little code, and every string
// comes from the server in the reader's language.
"use strict";
(function () {
  const MAX_ZOOM = 14;
  const MINE = "#c2185b";  // this form's place: apart from the notices' red, the zones' blue, the places' green

  function round6(x) { return Math.round(x * 1e6) / 1e6; }
  function position(latlng) { return [round6(latlng.lng), round6(latlng.lat)]; }

  // The geometry in pasted text: a geometry, a Feature, or a FeatureCollection of one feature.
  function geometryOf(text) {
    let value = JSON.parse(text);
    if (value && value.type === "FeatureCollection" && value.features && value.features.length === 1) {
      value = value.features[0];
    }
    if (value && value.type === "Feature") value = value.geometry;
    if (!value || ["Point", "LineString", "Polygon"].indexOf(value.type) < 0 || !Array.isArray(value.coordinates)) {
      throw new Error("not a Point, LineString or Polygon");
    }
    return value;
  }

  // [lat, lon] from 'lat, lon' or an MGRS reference, as the server reads them (geo/grid.py); null otherwise.
  function latLonOf(text) {
    const match = /^\s*(-?\d+(?:\.\d+)?)\s*[,; ]\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
    if (match) {
      const lat = Number(match[1]), lon = Number(match[2]);
      return Math.abs(lat) <= 90 && Math.abs(lon) <= 180 ? [lat, lon] : null;
    }
    const compact = text.replace(/\s+/g, "").toUpperCase();
    if (!window.mgrs || !/^\d{1,2}[C-X][A-Z]{2}(\d{2}){1,5}$/.test(compact)) return null;
    try {
      const point = mgrs.toPoint(compact);  // [lon, lat]
      return [point[1], point[0]];
    } catch (e) {
      return null;
    }
  }

  function setup(root) {
    const t = root.dataset;
    const field = function (id) { return id ? document.getElementById(id) : null; };
    const geoField = field(t.geojson), posField = field(t.position), radiusField = field(t.radius);
    if (!geoField) return;
    root.hidden = false;

    const mapEl = root.querySelector(".draw-map");
    const status = root.querySelector(".draw-status");
    const buttons = {};
    root.querySelectorAll(".draw-tools button").forEach(function (b) { buttons[b.dataset.mode || b.dataset.act] = b; });
    const map = L.map(mapEl, { zoomControl: true, attributionControl: true }).setView([33.2, 35.9], 9);
    map.createPane("basemap").style.zIndex = 250;  // under the context and the shape, above any tiles

    const shape = L.featureGroup().addTo(map);   // what the form's fields say
    const sketch = L.featureGroup().addTo(map);  // the shape being drawn
    const guide = L.polyline([], { color: MINE, weight: 2, dashArray: "4 4", interactive: false });  // to the pointer
    let mode = null;      // "point" | "line" | "polygon" while drawing
    let vertices = [];    // L.LatLng clicked so far
    let centre = null;    // point mode: the point, before its radius
    let contextBounds = null;

    function say(text) { status.textContent = text || ""; }

    function styleOf() { return { color: MINE, weight: 3, fillOpacity: 0.2 }; }

    // -- the form's fields, drawn -----------------------------------------------------------------------------
    function showFields(fit, quiet) {
      shape.clearLayers();
      const text = geoField.value.trim();
      if (text) {
        let geometry;
        try { geometry = geometryOf(text); } catch (e) { say(t.tBadgeojson); return; }
        const radius = Number(geometry.radius_m) || 0;
        L.geoJSON(geometry, {
          style: styleOf(),
          pointToLayer: function (f, latlng) {
            return radius > 0 ? L.circle(latlng, L.extend({ radius: radius }, styleOf()))
              : L.circleMarker(latlng, L.extend({ radius: 7 }, styleOf()));
          },
        }).eachLayer(function (l) { shape.addLayer(l); });
      } else if (posField && posField.value.trim()) {
        const at = latLonOf(posField.value);
        if (!at) { say(t.tBadposition); return; }
        const radius = radiusField ? Number(radiusField.value) || 0 : 0;
        shape.addLayer(radius > 0 ? L.circle(at, L.extend({ radius: radius }, styleOf()))
          : L.circleMarker(at, L.extend({ radius: 7 }, styleOf())));
      } else {
        return;
      }
      if (!quiet) say(t.tShown);
      if (fit) {
        const bounds = shape.getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, { maxZoom: MAX_ZOOM - 2, padding: [24, 24] });
      }
    }

    let timer = null;
    [geoField, posField, radiusField].forEach(function (f) {
      if (!f) return;
      f.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { showFields(true); }, 300);
      });
    });

    function put(f, value) {
      if (!f || f.value === value) return;
      f.value = value;
      f.dispatchEvent(new Event("change", { bubbles: true }));
    }

    // -- drawing ----------------------------------------------------------------------------------------------
    function refresh() {
      sketch.clearLayers();
      guide.remove();
      if (mode === "point" && centre) {
        sketch.addLayer(L.circleMarker(centre, { radius: 6, color: MINE, interactive: false }));
      } else if (vertices.length) {
        const line = mode === "polygon" && vertices.length > 2 ? L.polygon(vertices, styleOf())
          : L.polyline(vertices, styleOf());
        line.options.interactive = false;
        sketch.addLayer(line);
        vertices.forEach(function (v, i) {
          const closes = mode === "polygon" && i === 0 && vertices.length > 2;
          const dot = L.circleMarker(v, { radius: closes ? 8 : 5, color: MINE, fillColor: "#fff", fillOpacity: 1,
            weight: 2, interactive: closes, bubblingMouseEvents: !closes });
          if (closes) dot.on("click", finish);
          sketch.addLayer(dot);
        });
      }
      const count = mode === "point" ? (centre ? 1 : 0) : vertices.length;
      buttons.undo.disabled = !mode || count === 0;
      buttons.finish.disabled = !mode || count < (mode === "polygon" ? 3 : mode === "line" ? 2 : 1);
      Object.keys(buttons).forEach(function (k) {
        if (buttons[k].dataset.mode) buttons[k].setAttribute("aria-pressed", String(k === mode));
      });
      root.classList.toggle("drawing", !!mode);
    }

    function start(which) {
      // Typing that has not been shown yet must not redraw (and re-announce) over the shape being drawn.
      clearTimeout(timer);
      if (mode === which) { stop(); say(t.tCancelled); return; }
      mode = which;
      vertices = [];
      centre = null;
      map.doubleClickZoom.disable();
      say({ point: t.tPoint, line: t.tLine, polygon: t.tPolygon }[which]);
      refresh();
    }

    function stop() {
      mode = null;
      vertices = [];
      centre = null;
      map.doubleClickZoom.enable();
      refresh();
    }

    function add(latlng) {
      if (!mode) return;
      if (mode === "point") {
        if (!centre) {
          centre = latlng;
          refresh();
          say(t.tRadius);
          return;
        }
        finish(Math.max(10, Math.round(centre.distanceTo(latlng) / 10) * 10));
        return;
      }
      vertices.push(latlng);
      refresh();
    }

    function finish(radius) {
      if (typeof radius !== "number") radius = 0;
      if (mode === "point" && centre) {
        if (posField) {
          let text = centre.lat.toFixed(5) + ", " + centre.lng.toFixed(5);
          try { if (window.mgrs) text = mgrs.forward([centre.lng, centre.lat], 5); } catch (e) { /* keep lat, lon */ }
          put(posField, text);
          if (radiusField && radius) put(radiusField, String(radius));
          put(geoField, "");
        } else {
          const point = { type: "Point", coordinates: position(centre) };
          if (radius) point.radius_m = radius;
          put(geoField, JSON.stringify(point));
        }
      } else if (mode === "line" && vertices.length >= 2) {
        put(geoField, JSON.stringify({ type: "LineString", coordinates: vertices.map(position) }));
      } else if (mode === "polygon" && vertices.length >= 3) {
        const ring = vertices.map(position);
        ring.push(ring[0].slice());
        put(geoField, JSON.stringify({ type: "Polygon", coordinates: [ring] }));
      } else {
        say(t.tShort);
        return;
      }
      if (mode !== "point") {  // the GeoJSON is the place now: a position left in the form would contradict it
        put(posField, "");
        put(radiusField, "");
      }
      stop();
      showFields(false, true);
      say(t.tDrawn);
    }

    map.on("click", function (e) { add(e.latlng); });
    map.on("dblclick", function (e) {
      if (mode !== "line" && mode !== "polygon") return;
      // The double click's two clicks added the same place twice: keep one, then finish.
      const n = vertices.length;
      if (n > 1 && map.latLngToContainerPoint(vertices[n - 1]).distanceTo(map.latLngToContainerPoint(vertices[n - 2])) < 6) {
        vertices.pop();
      }
      L.DomEvent.stop(e);
      finish();
    });
    const pointer = root.querySelector(".draw-pointer output");
    map.on("mousemove", function (e) {
      const lat = e.latlng.lat, lon = e.latlng.lng;
      let grid = "—";
      try { grid = mgrs.forward([lon, lat], 5); } catch (err) { /* outside MGRS */ }
      pointer.textContent = lat.toFixed(5) + ", " + lon.toFixed(5) + " · MGRS " + grid;
      if (!mode || mode === "point" || !vertices.length) return;
      const last = vertices[vertices.length - 1];
      guide.setLatLngs(mode === "polygon" && vertices.length > 1 ? [last, e.latlng, vertices[0]] : [last, e.latlng]);
      if (!map.hasLayer(guide)) guide.addTo(map);
    });
    // Keyboard: the arrow keys move the map (Leaflet); Enter adds its centre, Escape stops drawing.
    mapEl.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && mode) { e.preventDefault(); add(map.getCenter()); }
    });
    root.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && mode) { stop(); say(t.tCancelled); }
    });

    root.querySelectorAll(".draw-tools button").forEach(function (b) {
      b.addEventListener("click", function () {
        if (b.dataset.mode) { start(b.dataset.mode); return; }
        if (b.dataset.act === "undo") {
          if (mode === "point") centre = null; else vertices.pop();
          refresh();
        } else if (b.dataset.act === "finish") {
          finish();
        } else if (b.dataset.act === "clear") {
          stop();
          put(geoField, "");
          put(posField, "");
          put(radiusField, "");
          shape.clearLayers();
          say(t.tCleared);
        }
      });
    });

    // -- context: outlines, optional tiles, the zones and notices -----------------------------------------------
    const legend = root.querySelector(".draw-legend");
    function addLegend(color, text) {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = color;
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(text));
      legend.appendChild(li);
    }
    if (t.tiles) L.tileLayer(t.tiles, { maxZoom: 16 }).addTo(map);
    fetch(t.basemap).then(function (r) { return r.json(); }).then(function (topo) {
      const countries = topojson.feature(topo, topo.objects.countries);
      L.geoJSON(countries, { pane: "basemap", interactive: false,
        style: { color: "#5b6b7c", weight: 1, fillColor: "#eef1e6", fillOpacity: 1 } }).addTo(map);
      addLegend("#eef1e6", t.tCountries);
    }).catch(function () { /* the shape and the fields work without outlines */ });

    const wanted = (t.context || "").split(/\s+/).filter(Boolean);
    fetch(t.layers, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
      let illustrative = false;
      data.layers.filter(function (layer) { return wanted.indexOf(layer.id) >= 0; }).forEach(function (layer) {
        illustrative = illustrative || layer.illustrative;
        const shown = L.geoJSON(layer.data, {
          style: function (f) {
            const flagged = f.properties && f.properties.flagged;
            return { color: layer.color, weight: flagged ? 3 : 2, dashArray: flagged ? "6 4" : null, fillOpacity: 0.1 };
          },
          pointToLayer: function (f, latlng) {
            if (f.properties && f.properties.radius_m) {
              return L.circle(latlng, { radius: f.properties.radius_m, color: layer.color, weight: 2, fillOpacity: 0.1 });
            }
            return L.circleMarker(latlng, { radius: 4, color: layer.color, weight: 2 });
          },
          onEachFeature: function (f, l) {
            const p = f.properties || {};
            const text = (p.name || "") + (p.illustrative ? " — " + t.tIllustrative : "");
            if (text) l.bindTooltip(text);
          },
        }).addTo(map);
        shown.bringToBack();
        if (layer.id !== "places") {
          contextBounds = contextBounds ? contextBounds.extend(shown.getBounds()) : L.latLngBounds(shown.getBounds());
        }
        addLegend(layer.color, layer.title + (layer.illustrative ? " (" + t.tIllustrative + ")" : ""));
      });
      root.querySelector(".draw-illustrative").hidden = !illustrative;
      if (!shape.getLayers().length && contextBounds && contextBounds.isValid()) {
        map.fitBounds(contextBounds, { maxZoom: MAX_ZOOM - 4 });
      }
    }).catch(function () { /* drawing works without the context */ });

    addLegend(MINE, t.tMine);
    showFields(true, true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.L) return;
    document.querySelectorAll("[data-draw]").forEach(setup);
  });
})();
