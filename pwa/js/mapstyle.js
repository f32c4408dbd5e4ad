/**
 * Shared map helpers for the organizer page and the live map.
 *
 * Uses the global `L` of Leaflet's UMD build (loaded with a classic <script> before the page's
 * module, because Leaflet-Geoman extends that global). Everything here degrades without
 * network: when the configured tiles fail to load (no internet, as in the tests), the tile
 * layer is dropped and the map keeps showing zone, tasks and density cells on a plain,
 * gridded background with a small "offline map" note.
 *
 * Privacy: nothing here draws a person. Crowds are drawn only as the server's density cells
 * (H3 outlines with counts, small counts already suppressed by the server).
 *
 * @module mapstyle
 */

import { loadConfig } from "./api.js";
import { escapeHtml } from "./util.js";

/** Colours shared by the pages (kept in sync with organize.css). */
export const COLORS = {
  brand: "#0b6e4f",
  zone: "#0b6e4f",
  hole: "#0b6e4f",
  open: "#ffffff",
  full: "#f4a300",
  done: "#14a05a",
  density: "#7b2cbf",
  error: "#d32f2f",
};

/** Without a single loaded tile after this long, the map says it is offline. */
const TILE_GRACE_MS = 6000;
/** Berlin-Mitte: where an empty organizer map opens before the browser knows better. */
export const DEFAULT_VIEW = { lat: 52.532, lon: 13.4, zoom: 16 };

/**
 * A Leaflet map in `element` with the configured tiles over a plain background.
 * @param {HTMLElement} element
 * @param {{lat?: number, lon?: number, zoom?: number, zoomControl?: boolean}} [options]
 * @returns {L.Map} the map; `map.goodmob.offline` tells whether tiles failed.
 */
export function createMap(element, options = {}) {
  const view = { ...DEFAULT_VIEW, ...options };
  element.classList.add("map", "gm-map");
  const map = L.map(element, {
    zoomControl: options.zoomControl ?? true,
    zoomSnap: options.zoomSnap ?? 1,
    attributionControl: true,
    preferCanvas: false,
    tap: true,
  }).setView([view.lat, view.lon], view.zoom);
  map.attributionControl.setPrefix(false);
  map.goodmob = { offline: false };
  loadConfig().then((config) => addTiles(map, element, config));
  return map;
}

function addTiles(map, element, config) {
  if (!config.tile_url) return markOffline(map, element, "No map tiles configured · plain background");
  const tiles = L.tileLayer(config.tile_url, {
    maxZoom: 19,
    attribution: config.tile_attribution,
    crossOrigin: true,
  });
  let loaded = 0;
  let errors = 0;
  tiles.on("tileload", () => { loaded += 1; });
  tiles.on("tileerror", () => {
    errors += 1;
    if (loaded === 0 && errors >= 2) fallback();
  });
  const timer = setTimeout(() => { if (loaded === 0) fallback(); }, TILE_GRACE_MS);
  function fallback() {
    clearTimeout(timer);
    if (map.hasLayer(tiles)) map.removeLayer(tiles);
    markOffline(map, element, "Map tiles offline · plain background");
  }
  tiles.addTo(map);
}

function markOffline(map, element, text) {
  if (map.goodmob.offline) return;
  map.goodmob.offline = true;
  element.classList.add("no-tiles", "gm-map--plain");
  const note = L.control({ position: "bottomleft" });
  note.onAdd = () => {
    const div = L.DomUtil.create("div", "gm-map-note");
    div.textContent = text;
    div.setAttribute("role", "status");
    return div;
  };
  note.addTo(map);
}

/** Leaflet path style of a mob's zone. */
export function zoneStyle(extra = {}) {
  return {
    color: COLORS.zone,
    weight: 3,
    opacity: 0.95,
    fillColor: COLORS.zone,
    fillOpacity: 0.12,
    ...extra,
  };
}

/**
 * A read-only layer of the zone (Polygon or MultiPolygon GeoJSON), ignored by Geoman.
 * @param {object} geometry GeoJSON geometry
 * @returns {L.GeoJSON}
 */
export function zoneLayer(geometry, extra = {}) {
  return L.geoJSON(geometry, {
    pmIgnore: true,
    interactive: false,
    style: () => zoneStyle(extra),
  });
}

/**
 * The spectator state of a task feature's properties: "done" when at least one deed was
 * counted there, "full" (drawn as closed) when the organizer closed it, else "open". Whether
 * someone holds a task is never sent (it would tell where a lone participant is).
 * @param {{status?: string, deeds_done?: number}} p
 * @returns {"open"|"full"|"done"}
 */
export function taskState(p) {
  if ((p.deeds_done ?? 0) > 0) return "done";
  if (p.status === "closed") return "full";
  return "open";
}

const STATE_GLYPH = { open: "", full: "", done: "✓" };

/**
 * A round task pin (divIcon) coloured by state.
 * @param {"open"|"full"|"done"|"draft"} state
 * @param {{size?: number, label?: string, className?: string}} [options] `className` is
 *   added to the pin (e.g. "is-review": a deed there waits for the organizer's verdict)
 */
export function taskIcon(state, { size = 24, label = "", className = "" } = {}) {
  const glyph = label || STATE_GLYPH[state] || "";
  const extra = className ? ` ${escapeHtml(className)}` : "";
  return L.divIcon({
    className: "gm-task-icon",
    html: `<span class="gm-task gm-task--${state}${extra}" style="--size:${size}px">${escapeHtml(glyph)}</span>`,
    iconSize: [size, size],
    iconAnchor: [size / 2, size / 2],
    popupAnchor: [0, -size / 2],
  });
}

/**
 * A layer group of task pins from a tasks FeatureCollection, coloured by state.
 * @param {object} collection GeoJSON FeatureCollection of Points
 * @param {{size?: number, tooltip?: boolean}} [options]
 * @returns {L.LayerGroup}
 */
export function tasksLayer(collection, { size = 24, tooltip = true } = {}) {
  const group = L.layerGroup([], { pmIgnore: true });
  for (const feature of collection?.features ?? []) {
    const [lon, lat] = feature.geometry.coordinates;
    const props = feature.properties ?? {};
    const state = taskState(props);
    const marker = L.marker([lat, lon], {
      icon: taskIcon(state, { size }),
      pmIgnore: true,
      keyboard: false,
      title: props.label ?? "",
    });
    if (tooltip) {
      marker.bindTooltip(taskSummary(props, state), { direction: "top", offset: [0, -size / 2] });
    }
    marker.addTo(group);
  }
  return group;
}

function taskSummary(p, state) {
  const words = { open: "open", full: "closed", done: "done" };
  const done = p.deeds_done ? ` · ${p.deeds_done} deed${p.deeds_done === 1 ? "" : "s"}` : "";
  return `${escapeHtml(p.label ?? "Task")} — ${words[state]}${done}`;
}

/**
 * A layer of crowd-density cells: `cells` = [{h3, count, boundary: [[lon, lat], …]}], as the
 * server sends them (cells under k people already left out). Opacity grows with the count;
 * the count is drawn on each cell as a permanent label (`.gm-density-label`).
 * @returns {L.LayerGroup}
 */
export function densityLayer(cells) {
  const group = L.layerGroup([], { pmIgnore: true });
  const max = Math.max(1, ...(cells ?? []).map((c) => c.count));
  for (const cell of cells ?? []) {
    if (!Array.isArray(cell.boundary) || cell.boundary.length < 3) continue;
    const share = cell.count / max;
    L.polygon(
      cell.boundary.map(([lon, lat]) => [lat, lon]),
      {
        pmIgnore: true,
        interactive: true,
        className: "gm-density",
        color: COLORS.density,
        weight: 1,
        opacity: 0.6,
        fillColor: COLORS.density,
        fillOpacity: 0.18 + 0.42 * share,
      },
    )
      // The count is written on the cell (a projector never hovers); the label's title and
      // aria-label say what it counts.
      .bindTooltip(`<span title="${cell.count} people here">${Number(cell.count)}</span>`, {
        permanent: true,
        direction: "center",
        className: "gm-density-label",
        interactive: false,
        opacity: 1,
      })
      .addTo(group);
  }
  return group;
}

/**
 * A pulsing marker where a validation error is, with its message open in a popup.
 * @param {{lat: number, lon: number}} at
 * @param {string} message
 * @returns {L.Marker}
 */
export function errorMarker(at, message) {
  const marker = L.marker([at.lat, at.lon], {
    pmIgnore: true,
    keyboard: false,
    zIndexOffset: 1000,
    icon: L.divIcon({
      className: "gm-error-icon",
      html: '<span class="gm-error-pin" aria-hidden="true">!</span>',
      iconSize: [34, 34],
      iconAnchor: [17, 17],
      popupAnchor: [0, -16],
    }),
  });
  marker.bindPopup(`<strong>Fix this here</strong><br>${escapeHtml(message)}`, {
    className: "gm-error-popup",
    autoClose: false,
    closeOnClick: false,
    maxWidth: 240,
  });
  return marker;
}

/**
 * Fit the map to a layer's bounds with some padding. Returns false (and leaves the view) when
 * the layer is empty or the map is not laid out (a hidden container has no size to fit into).
 */
export function fitTo(map, layer, { maxZoom = 18, padding = 24 } = {}) {
  const bounds = layer?.getBounds?.();
  if (!bounds || !bounds.isValid()) return false;
  map.invalidateSize({ pan: false });
  const size = map.getSize();
  if (size.x <= 2 * padding || size.y <= 2 * padding) return false;
  map.fitBounds(bounds, { padding: [padding, padding], maxZoom });
  return true;
}

/**
 * A pin size (px) that keeps task pins apart at the map's zoom: 70 % of the median distance
 * between neighbouring pins on screen, within [min, max].
 * @param {L.Map} map
 * @param {object[]} features GeoJSON Point features
 */
export function pinSize(map, features, { min = 10, max = 26 } = {}) {
  if (!features || features.length < 2) return max;
  const points = features.map((f) => map.latLngToLayerPoint([f.geometry.coordinates[1], f.geometry.coordinates[0]]));
  const step = Math.max(1, Math.ceil(points.length / 150));
  const nearest = [];
  for (let i = 0; i < points.length; i += step) {
    let best = Infinity;
    for (let j = 0; j < points.length; j++) {
      if (j === i) continue;
      const d = points[i].distanceTo(points[j]);
      if (d > 0 && d < best) best = d;
    }
    if (Number.isFinite(best)) nearest.push(best);
  }
  if (!nearest.length) return max;
  nearest.sort((a, b) => a - b);
  return Math.max(min, Math.min(max, Math.round(nearest[nearest.length >> 1] * 0.7)));
}
