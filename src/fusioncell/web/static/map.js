// The map: Natural Earth country outlines served by this cell (no tile server), optional local MBTiles,
// the modules' layers with a legend, and the pointer position in latitude/longitude and MGRS.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const el = document.getElementById("map");
  if (!el || !window.L) return;
  const map = L.map(el, { zoomControl: true, attributionControl: true }).setView([33.2, 35.9], 9);
  const legend = document.getElementById("legend-items");

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
    data.layers.forEach(function (layer) {
      illustrative = illustrative || layer.illustrative;
      L.geoJSON(layer.data, {
        style: { color: layer.color, weight: 2, fillOpacity: 0.15 },
        pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 6, color: layer.color }); },
        onEachFeature: function (feature, shape) {
          const name = (feature.properties && feature.properties.name) || "";
          const tag = feature.properties && feature.properties.illustrative ? " — " + el.dataset.tIllustrative : "";
          if (name || tag) shape.bindTooltip(name + tag, { permanent: !!tag });
        },
      }).addTo(map);
      addLegend(layer.color, layer.title + (layer.illustrative ? " (" + el.dataset.tIllustrative + ")" : ""));
    });
    document.getElementById("illustrative-note").hidden = !illustrative;
  });

  const coords = document.getElementById("coords");
  map.on("mousemove", function (event) {
    const lat = event.latlng.lat, lon = event.latlng.lng;
    let grid = "";
    try { grid = mgrs.forward([lon, lat], 5); } catch (e) { grid = "—"; }
    coords.textContent = lat.toFixed(5) + ", " + lon.toFixed(5) + " · MGRS " + grid;
  });
});
