/**
 * The map: the zone, you (with your accuracy) and your spot, with a dashed line between you
 * and it; kept in view unless the user is looking around (touch, mouse, wheel pause the
 * automatic framing for USER_MAP_PAUSE_MS). While the GO screen is up the map moves onto it.
 *
 * @module participant/mapview
 */

import { createMap, taskMarker, youMarker, zoneLayer } from "../map.js";
import { $ } from "./feedback.js";
import { store } from "./state.js";

const L = globalThis.L;
const USER_MAP_PAUSE_MS = 20000; // after the user moved the map, leave it alone this long

const ui = {
  map: null, zone: null, you: null, task: null, line: null, fitted: "", userMovedAt: 0,
};

// A new spot is framed again.
let taskId = store.get().task?.id ?? null;
store.subscribe((s) => {
  if ((s.task?.id ?? null) !== taskId) ui.fitted = "";
  taskId = s.task?.id ?? null;
}, ["task"]);

export function renderMap() {
  const state = store.get();
  if (!state.mob?.zone) return;
  if (!ui.map) {
    ui.map = createMap($("map"), { center: [0, 0], zoom: 2, zoomControl: false });
    ui.zone = zoneLayer(state.mob.zone).addTo(ui.map);
    ui.map.fitBounds(ui.zone.getBounds(), { padding: [24, 24] });
    ui.you = youMarker(ui.map);
    // The user looking around (touch, mouse, wheel) pauses the automatic framing.
    const looking = () => { ui.userMovedAt = Date.now(); };
    for (const type of ["pointerdown", "wheel"]) {
      ui.map.getContainer().addEventListener(type, looking, { passive: true });
    }
  }
  const fix = state.fix;
  if (fix) ui.you.update(fix.lat, fix.lon, fix.accuracy_m);
  const task = state.phase === "cancelled" ? null : state.task; // no spot to go to any more
  if (task) {
    if (!ui.task) ui.task = taskMarker(task.lat, task.lon).addTo(ui.map);
    ui.task.setLatLng([task.lat, task.lon]);
  } else if (ui.task) {
    ui.task.remove();
    ui.task = null;
  }
  const points = fix && task ? [[fix.lat, fix.lon], [task.lat, task.lon]] : null;
  if (points) {
    if (!ui.line) ui.line = L.polyline(points, { color: "#0d1f17", weight: 3, dashArray: "6 8", opacity: 0.8, interactive: false }).addTo(ui.map);
    ui.line.setLatLngs(points);
  } else if (ui.line) {
    ui.line.remove();
    ui.line = null;
  }
  fitMap();
}

/** Keeps the zone, you and your spot in view (unless the user is looking around). */
function fitMap() {
  if (Date.now() - ui.userMovedAt < USER_MAP_PAUSE_MS) return;
  const { fix, task } = store.get();
  const key = `${fix ? 1 : 0}:${task?.id ?? ""}`;
  const inner = ui.map.getBounds().pad(-0.12);
  const outOfView = [fix, task].some((p) => p && !inner.contains([p.lat, p.lon]));
  if (ui.fitted === key && !outOfView) return;
  ui.fitted = key;
  let bounds = ui.zone.getBounds();
  if (fix) bounds = bounds.extend([fix.lat, fix.lon]);
  if (task && fix) {
    bounds = L.latLngBounds([[fix.lat, fix.lon], [task.lat, task.lon]]).pad(0.6);
  }
  // Room at the top for the pin's head, at the bottom for the sheet's rounded edge.
  ui.map.fitBounds(bounds, { paddingTopLeft: [28, 52], paddingBottomRight: [28, 48], maxZoom: 18 });
}

/** Moves the map onto the GO screen (`onGo`) or back above the sheet, and frames it again. */
export function placeMap(onGo) {
  const map = $("map");
  const slot = $("go-map-slot");
  const there = map.parentElement === slot;
  if (onGo === there) return;
  if (onGo) slot.append(map);
  else $("sheet").before(map);
  ui.fitted = "";
  setTimeout(() => { ui.map?.invalidateSize(); if (ui.map) fitMap(); }, 60);
}

/** After the map's height changed (the countdown's dark layout). */
export function mapResized() {
  setTimeout(() => ui.map?.invalidateSize(), 60);
}
