// The map: Natural Earth country outlines served by this cell (no tile server), optional local MBTiles,
// the modules' layers with a legend, and the pointer position in latitude/longitude and MGRS.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const el = document.getElementById("map");
  if (!el || !window.L) return;
  const map = L.map(el, { zoomControl: true, attributionControl: true }).setView([33.2, 35.9], 9);
  const legend = document.getElementById("legend-items");
  let when = null;  // the time slider's moment; null shows every notice

  function addLegend(color, text) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = color;
    li.appendChild(swatch);
    li.appendChild(document.createTextNode(text));
    legend.appendChild(li);
  }

  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, { maxZoom: 16 }).addTo(map);
  }
  fetch(el.dataset.basemap).then(function (r) { return r.json(); }).then(function (topo) {
    const countries = topojson.feature(topo, topo.objects.countries);
    L.geoJSON(countries, { style: { color: "#5b6b7c", weight: 1, fillColor: "#eef1e6", fillOpacity: 1 } })
      .addTo(map).bringToBack();
    addLegend("#eef1e6", el.dataset.tCountries);
  });

  fetch(el.dataset.layers, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
    if (!data.layers.length) {
      const li = document.createElement("li");
      li.textContent = el.dataset.tNolayers;
      legend.appendChild(li);
    }
    let illustrative = false;
    const timed = [];
    data.layers.forEach(function (layer) {
      illustrative = illustrative || layer.illustrative;
      const shown = L.geoJSON(null, {
        style: function (f) {
          const flagged = f.properties && f.properties.flagged;  // the cell found something: stand out
          return { color: layer.color, weight: flagged ? 4 : 2, dashArray: flagged ? "6 4" : null, fillOpacity: 0.15 };
        },
        filter: function (f) {
          if (!f.properties || !f.properties.start || when === null) return true;
          return new Date(f.properties.start) <= when && when < new Date(f.properties.end);
        },
        pointToLayer: function (f, latlng) {
          if (f.properties && f.properties.radius_m) {
            return L.circle(latlng, { radius: f.properties.radius_m, color: layer.color,
              className: f.properties.href ? "fc-link" : "" });
          }
          const linked = f.properties && f.properties.href ? "fc-link" : "";
          return L.circleMarker(latlng, { radius: 7, color: layer.color, className: linked });
        },
        onEachFeature: function (feature, shape) {
          const name = (feature.properties && feature.properties.name) || "";
          const tag = feature.properties && feature.properties.illustrative ? " — " + el.dataset.tIllustrative : "";
          const found = feature.properties && feature.properties.findings && feature.properties.findings.length
            ? " — " + feature.properties.findings.join("; ") : "";
          if (name || tag || found) shape.bindTooltip(name + tag + found, { permanent: !!tag });
          if (feature.properties && feature.properties.href) {
            shape.on("click", function () { window.location.assign(feature.properties.href); });
          }
        },
      }).addTo(map);
      shown.addData(layer.data);
      if (layer.data.features.some(function (f) { return f.properties && f.properties.start; })) {
        timed.push({ shown: shown, data: layer.data });
      }
      addLegend(layer.color, layer.title + (layer.illustrative ? " (" + el.dataset.tIllustrative + ")" : ""));
    });
    const note = document.getElementById("illustrative-note");
    if (note) note.hidden = !illustrative;
    const slider = document.getElementById("when");
    const out = document.getElementById("when-out");
    if (slider) {
      slider.addEventListener("input", function () {
        const hours = Number(slider.value);
        when = hours < 0 ? null : new Date(Date.now() + hours * 3600 * 1000);
        out.textContent = when === null ? out.dataset.tAll : when.toISOString().slice(0, 16).replace("T", " ") + " UTC";
        timed.forEach(function (t) { t.shown.clearLayers(); t.shown.addData(t.data); });
      });
    }
  });

  const coords = document.getElementById("coords");
  map.on("mousemove", function (event) {
    const lat = event.latlng.lat, lon = event.latlng.lng;
    let grid = "";
    try { grid = mgrs.forward([lon, lat], 5); } catch (e) { grid = "—"; }
    coords.textContent = lat.toFixed(5) + ", " + lon.toFixed(5) + " · MGRS " + grid;
  });
});
