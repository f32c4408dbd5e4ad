/**
 * Leaflet maps with the server's tile URL (from /config.json) that stay useful without
 * tiles: when tiles fail to load (no internet, a blocked tile server) the map keeps a plain
 * background with a light grid and still shows the zone, tasks and you.
 *
 * Needs Leaflet loaded as a classic script first (`window.L`, /vendor/leaflet/leaflet.js).
 *
 *     import { createMap, zoneLayer } from "./map.js";
 *     const map = createMap(document.getElementById("map"), { center: [52.53, 13.40], zoom: 15 });
 *     zoneLayer(mob.zone).addTo(map);
 *
 * @module map
 */

import { loadConfig } from "./api.js";

const L = globalThis.L;
const TRANSPARENT_PNG =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/** Zone styling shared by the pages. */
export const ZONE_STYLE = {
  color: "#0b6e4f", weight: 3, opacity: 0.95, fillColor: "#11845f", fillOpacity: 0.16,
};

/**
 * A Leaflet map in `element`, tiles from the configured URL, plain background when they fail.
 * @param {HTMLElement} element
 * @param {object} [options] Leaflet map options, plus `center` and `zoom`.
 * @returns {L.Map}
 */
export function createMap(element, { center = [20, 0], zoom = 2, ...options } = {}) {
  const map = L.map(element, { zoomControl: true, attributionControl: true, ...options })
    .setView(center, zoom);
  map.attributionControl.setPrefix(false);
  element.classList.add("map");
  loadConfig().then((config) => addTiles(map, element, config));
  return map;
}

function addTiles(map, element, { tile_url: url, tile_attribution: attribution }) {
  if (!url) {
    element.classList.add("no-tiles");
    return;
  }
  let loaded = 0;
  let failed = 0;
  const layer = L.tileLayer(url, {
    maxZoom: 19,
    attribution: attribution || "",
    errorTileUrl: TRANSPARENT_PNG,
    crossOrigin: false,
  });
  layer.on("tileload", () => {
    loaded += 1;
    element.classList.remove("no-tiles");
  });
  layer.on("tileerror", () => {
    failed += 1;
    if (loaded === 0 && failed >= 1) element.classList.add("no-tiles");
  });
  layer.addTo(map);
}

/** The mob's zone (GeoJSON Polygon/MultiPolygon) as a Leaflet layer. */
export function zoneLayer(zone, style = ZONE_STYLE) {
  return L.geoJSON(zone, { style: () => style, interactive: false });
}

/** The centre of a GeoJSON geometry's bounding box, as [lat, lon]. */
export function zoneCenter(zone) {
  const bounds = L.geoJSON(zone).getBounds();
  const c = bounds.getCenter();
  return [c.lat, c.lng];
}

/** A "you are here" dot with its accuracy circle; `update(lat, lon, accuracy_m)`. */
export function youMarker(map) {
  const circle = L.circle([0, 0], {
    radius: 1, color: "#1a5fd6", weight: 1.5, opacity: 0.6, fillColor: "#1a5fd6", fillOpacity: 0.12,
    interactive: false,
  });
  const dot = L.marker([0, 0], {
    icon: L.divIcon({ className: "", html: '<div class="me-dot"></div>', iconSize: [20, 20], iconAnchor: [10, 10] }),
    keyboard: false, interactive: false, zIndexOffset: 1000,
  });
  let shown = false;
  return {
    update(lat, lon, accuracy) {
      circle.setLatLng([lat, lon]).setRadius(Math.max(1, accuracy || 1));
      dot.setLatLng([lat, lon]);
      if (!shown) {
        circle.addTo(map);
        dot.addTo(map);
        shown = true;
      }
    },
    get shown() { return shown; },
    latLng() { return dot.getLatLng(); },
  };
}

/** A task pin (yellow) at [lat, lon]. */
export function taskMarker(lat, lon, title = "Your spot") {
  return L.marker([lat, lon], {
    icon: L.divIcon({ className: "", html: '<div class="task-pin"></div>', iconSize: [36, 36], iconAnchor: [18, 40] }),
    title, keyboard: false, zIndexOffset: 500,
  });
}
