/**
 * Making a mob, step by step (the map and the panel of the first four steps):
 * - details: title, action, description, GO (in this browser's zone), duration, rehearsal;
 *   a new mob's wait in the store (`pendingDetails`) until its zone is saved, a saved mob's
 *   go as a PATCH of the fields that changed; the form follows the mob unless being edited;
 * - zone: drawn with Leaflet-Geoman (polygon, box, edit corners, cut holes; several parts
 *   make a MultiPolygon), saved (a new mob is created here); nothing is repaired: a zone
 *   error's `where` (lon/lat, or a JSON path into the zone sent) is pinned on the map;
 * - task spots: the pins (their state during a run, "!" on those with a deed to review),
 *   placed by tapping or as a grid, edited, moved or removed in their popup; redrawn on a
 *   change of the store's `tasks` or `reviewDeeds`, of the mob's status, and on each step;
 * - publish: the checklist, and publishing (which starts the live connection).
 *
 * @module organize/edit
 */

import { ApiError } from "../api.js";
import { COLORS, errorMarker, pinSize, taskIcon, taskState, zoneStyle } from "../mapstyle.js";
import { escapeHtml, formatClock } from "../util.js";
import {
  ZONE_HINTS, defaultGo, detailChanges, detailProblems, drawbarText, durationText,
  localInputToIso, locateWhere, toLocalInput, zoneLabel, zoneStatsParts, zoneSummary,
} from "./model.js";
import { $, $$, busy, call, errorText, fitZone, setTab, showAlert, toast, view } from "./page.js";
import { connectIfLive } from "./run.js";
import {
  CLOSED_STATUSES, isClosed, isLive, reviewTaskIds, setMob, store, zoneLocked,
} from "./state.js";

// --- details ---------------------------------------------------------------------------------

export function fillDetails(mob) {
  const d = mob ?? store.get().pendingDetails ?? {};
  $("f-title").value = d.title ?? "";
  $("f-action").value = d.action ?? "";
  $("f-description").value = d.description ?? "";
  $("f-go").value = toLocalInput(d.go_at ?? defaultGo());
  $("f-duration").value = String(d.duration_s ?? 60);
  if (![...$("f-duration").options].some((o) => o.selected)) {
    const option = new Option(`${d.duration_s} s`, String(d.duration_s), true, true);
    $("f-duration").add(option);
  }
  $("f-rehearsal").checked = Boolean(d.rehearsal);
  showGoZone();
  const live = isLive(mob);
  const closed = isClosed(mob);
  $("f-go").disabled = live || closed;
  $("f-duration").disabled = live || closed;
  $("f-rehearsal").disabled = live || closed;
  $("f-schedule-note").hidden = !live;
  $("details-heading").textContent = mob ? "Details" : "What and when";
  $("details-next").textContent = !mob ? "Next: draw the zone" : mob.status === "draft" ? "Save details" : "Save";
  $("details-next").disabled = closed;
}

function showGoZone() {
  $("f-go-zone").textContent = `Your time: ${zoneLabel(new Date($("f-go").value || Date.now()))}`;
}

export function readDetails() {
  return {
    title: $("f-title").value.trim(),
    action: $("f-action").value.trim(),
    description: $("f-description").value.trim(),
    go_at: localInputToIso($("f-go").value),
    duration_s: Number($("f-duration").value),
    rehearsal: $("f-rehearsal").checked,
  };
}

export function clearFieldErrors() {
  for (const el of $$(".field-error")) el.textContent = "";
  for (const el of $$(".field.is-invalid")) el.classList.remove("is-invalid");
}

function showFieldError(field, message) {
  const el = document.querySelector(`.field-error[data-for="${field}"]`);
  if (!el) return false;
  el.textContent = message;
  el.closest(".field")?.classList.add("is-invalid");
  return true;
}

/** Shows what is missing or wrong under its field; true when the details can be sent. */
export function checkDetails(details) {
  clearFieldErrors();
  const problems = detailProblems(details, store.get().mob, Date.now());
  for (const [field, message] of problems) showFieldError(field, message);
  return problems.length === 0;
}

async function submitDetails(event) {
  event.preventDefault();
  const details = readDetails();
  if (!checkDetails(details)) return;
  const { mob } = store.get();
  if (!mob) {
    store.set({ pendingDetails: details });
    setTab("zone");
    return;
  }
  const changes = detailChanges(mob, details);
  await busy($("details-next"), async () => {
    try {
      store.set({ detailsDirty: false });
      if (Object.keys(changes).length) {
        setMob(await call(`/api/mobs/${store.get().mob.id}`, { method: "PATCH", body: changes }));
        toast("Details saved");
      }
      const { mob: saved, tasks } = store.get();
      if (saved.status === "draft") setTab(tasks.features.length ? "publish" : "zone");
    } catch (error) {
      showDetailsError(error);
    }
  });
}

/** A refused detail under its field (or GO's, for `go_at_in_past`), else above the steps. */
export function showDetailsError(error) {
  const field = error instanceof ApiError ? (error.where?.field ?? (error.code === "go_at_in_past" ? "go_at" : null)) : null;
  if (field && showFieldError(field, error.message)) return;
  showAlert($("mob-error"), errorText(error));
}

export function initDetails() {
  $("details-form").addEventListener("submit", submitDetails);
  $("details-form").addEventListener("input", () => { store.set({ detailsDirty: Boolean(store.get().mob) }); });
  $("f-go").addEventListener("change", showGoZone);
  store.subscribe(({ mob, detailsDirty }) => {
    if (mob && !detailsDirty) fillDetails(mob);
  }, ["mob"]);
}

// --- zone ------------------------------------------------------------------------------------

const TOOLS = ["tool-draw", "tool-rect", "tool-edit", "tool-cut"];

/** The zone drawn in a Leaflet layer group: Polygon, MultiPolygon (several parts) or null. */
export function zoneFromLayers(group) {
  const polygons = [];
  const visit = (layer) => {
    if (layer instanceof L.LayerGroup) return layer.eachLayer(visit);
    if (!(layer instanceof L.Polygon)) return undefined;
    const geometry = layer.toGeoJSON(7).geometry;
    if (geometry.type === "Polygon") polygons.push(geometry.coordinates);
    else if (geometry.type === "MultiPolygon") polygons.push(...geometry.coordinates);
    return undefined;
  };
  group.eachLayer(visit);
  const usable = polygons.filter((rings) => rings.length && rings[0].length >= 4);
  if (!usable.length) return null;
  return usable.length === 1
    ? { type: "Polygon", coordinates: usable[0] }
    : { type: "MultiPolygon", coordinates: usable };
}

export function setupGeoman(map) {
  map.pm.setGlobalOptions({
    layerGroup: view.zoneGroup,
    allowSelfIntersection: true, // the server judges; its error shows where
    snappable: true,
    snapDistance: 14,
    tooltips: false,
    pathOptions: zoneStyle(),
    templineStyle: { color: COLORS.zone, weight: 3 },
    hintlineStyle: { color: COLORS.zone, weight: 2, dashArray: "6 6" },
  });
  map.on("pm:create", (e) => {
    e.layer.setStyle?.(zoneStyle());
    zoneChanged();
    setToolPressed(null);
  });
  map.on("pm:cut", (e) => {
    e.layer.setStyle?.(zoneStyle());
    zoneChanged();
  });
  map.on("pm:remove", zoneChanged);
  map.on("pm:drawstart", (e) => {
    $("drawbar").hidden = false;
    $("zone-stats").hidden = true;
    $("draw-undo").hidden = e.shape === "Rectangle";
    $("draw-finish").hidden = e.shape === "Rectangle";
    updateDrawbar(e.shape, 0);
    e.workingLayer?.on("pm:vertexadded", () => updateDrawbar(e.shape, e.workingLayer.getLatLngs().length));
    e.workingLayer?.on("pm:vertexremoved", () => updateDrawbar(e.shape, e.workingLayer.getLatLngs().length));
  });
  map.on("pm:drawend", () => {
    $("drawbar").hidden = true;
    $("zone-stats").hidden = false;
    setToolPressed(map.pm.globalEditModeEnabled() ? "tool-edit" : null);
  });
  view.zoneGroup.on("layeradd", (e) => {
    e.layer.on("pm:edit", zoneChanged);
  });
}

function updateDrawbar(shape, vertices) {
  $("drawbar-text").textContent = drawbarText(shape, vertices, view.zoneGroup.getLayers().length > 0);
  $("draw-finish").disabled = shape !== "Rectangle" && vertices < 3;
}

function zoneChanged() {
  store.set({ zoneDirty: true });
  hideZoneError();
  updateZoneStats();
}

function setToolPressed(id) {
  for (const tool of TOOLS) $(tool).setAttribute("aria-pressed", String(tool === id));
}

export function stopZoneTools() {
  if (!view.map) return;
  const pm = view.map.pm;
  if (pm.globalDrawModeEnabled()) pm.disableDraw();
  if (pm.globalEditModeEnabled()) pm.disableGlobalEditMode();
  if (pm.globalCutModeEnabled()) pm.disableGlobalCutMode();
  if (pm.globalRemovalModeEnabled?.()) pm.disableGlobalRemovalMode();
  $("drawbar").hidden = true;
  $("zone-stats").hidden = false;
  setToolPressed(null);
}

function useTool(id) {
  if (zoneLocked(store.get().mob)) return;
  const pm = view.map.pm;
  const wasOn = $(id).getAttribute("aria-pressed") === "true";
  stopZoneTools();
  hideZoneError();
  if (wasOn) return;
  if (id === "tool-draw") pm.enableDraw("Polygon", { tooltips: false, allowSelfIntersection: true });
  else if (id === "tool-rect") pm.enableDraw("Rectangle", { tooltips: false });
  else if (id === "tool-edit") {
    if (!view.zoneGroup.getLayers().length) return toast("Draw a zone first.", "error");
    pm.enableGlobalEditMode({ allowSelfIntersection: true, snappable: true });
  } else if (id === "tool-cut") {
    if (!view.zoneGroup.getLayers().length) return toast("Draw a zone first, then cut holes in it.", "error");
    pm.enableGlobalCutMode({ tooltips: false, allowSelfIntersection: false });
  }
  setToolPressed(id);
  return undefined;
}

function activeDraw() {
  const pm = view.map.pm;
  if (pm.globalCutModeEnabled()) return pm.Draw.Cut;
  return ["Polygon", "Rectangle"].map((s) => pm.Draw[s]).find((d) => d.enabled()) ?? null;
}

function finishDrawing() {
  activeDraw()?._finishShape();
}

function undoVertex() {
  const draw = activeDraw();
  if (draw && draw._layer?.getLatLngs().length) draw._removeLastVertex();
}

function clearZone() {
  if (zoneLocked(store.get().mob)) return;
  stopZoneTools();
  if (!view.zoneGroup.getLayers().length) return;
  view.zoneGroup.clearLayers();
  zoneChanged();
}

function setZoneEditable(on) {
  const locked = zoneLocked(store.get().mob);
  for (const id of [...TOOLS, "tool-clear", "zone-save"]) $(id).disabled = locked || !on;
  view.zoneGroup?.eachLayer((layer) => {
    layer.setStyle?.(zoneStyle(on ? {} : { fillOpacity: 0.08, weight: 2 }));
  });
}

export function loadZone(geometry, { fit = false } = {}) {
  view.zoneGroup.clearLayers();
  if (geometry) {
    L.geoJSON(geometry).eachLayer((layer) => {
      layer.setStyle?.(zoneStyle());
      view.zoneGroup.addLayer(layer);
    });
  }
  store.set({ zoneDirty: false });
  updateZoneStats();
  if (fit) fitZone();
}

export function updateZoneStats() {
  if (!view.zoneGroup) return;
  const { mob, zoneDirty } = store.get();
  const geometry = zoneFromLayers(view.zoneGroup);
  const el = $("zone-stats");
  if (!geometry) {
    el.innerHTML = "No zone yet: tap <strong>Draw</strong>, then tap the map at each corner.";
  } else {
    const parts = zoneStatsParts(geometry);
    el.innerHTML = `<strong>Zone:</strong> ${escapeHtml(parts.join(" · "))}${zoneDirty ? ' <span class="og-dirty">unsaved</span>' : ""}`;
  }
  let label = "Save zone";
  if (!mob) label = "Save zone and continue";
  else if (!zoneDirty) label = "Next: task spots";
  $("zone-save").textContent = label;
}

export async function saveZone() {
  stopZoneTools();
  const { mob, zoneDirty } = store.get();
  if (mob && !zoneDirty) {
    setTab("tasks");
    return;
  }
  const geometry = zoneFromLayers(view.zoneGroup);
  if (!geometry) {
    showZoneError(new ApiError(0, "zone_missing", "Draw the zone first: tap Draw, then tap the map at each corner."));
    return;
  }
  if (!mob) {
    const details = readDetails();
    if (!checkDetails(details)) {
      setTab("details");
      showAlert($("mob-error"), "Fill in the details first, then save the zone.");
      return;
    }
    store.set({ pendingDetails: details });
  }
  store.set({ lastSentZone: geometry });
  await busy($("zone-save"), async () => {
    try {
      if (!store.get().mob) {
        const created = await call("/api/mobs", { body: { ...store.get().pendingDetails, zone: geometry } });
        store.set({ pendingDetails: null });
        setMob(created);
        store.set({ zoneDirty: false });
        connectIfLive();
        toast("Draft saved: now add task spots");
        setTab("tasks");
      } else {
        setMob(await call(`/api/mobs/${store.get().mob.id}`, { method: "PATCH", body: { zone: geometry } }));
        store.set({ zoneDirty: false });
        updateZoneStats();
        toast("Zone saved");
        setTab("tasks");
      }
    } catch (error) {
      if (error instanceof ApiError && error.where?.field && error.where.field !== "zone") {
        setTab("details");
        showDetailsError(error);
      } else {
        showZoneError(error, geometry);
      }
    }
  });
}

export function hideZoneError() {
  $("zone-error").hidden = true;
  $("zone-error-fix").hidden = true;
  view.errorGroup?.clearLayers();
  $$(".gm-task.is-outside").forEach((el) => el.classList.remove("is-outside"));
}

function showZoneError(error, geometry = null) {
  hideZoneError();
  if (store.get().tab !== "zone") setTab("zone");
  const hint = ZONE_HINTS[error.code];
  const message = errorText(error);
  $("zone-error-text").innerHTML = hint
    ? `<strong>${escapeHtml(hint)}</strong><br><small>${escapeHtml(message)}</small>`
    : `<strong>${escapeHtml(message)}</strong>`;
  $("zone-error").hidden = false;
  const where = error instanceof ApiError ? error.where : null;
  const at = locateWhere(where, geometry);
  $("zone-error-show").hidden = !at;
  if (at) {
    const marker = errorMarker(at, hint ?? message).addTo(view.errorGroup);
    view.map.panTo([at.lat, at.lon]);
    setTimeout(() => marker.openPopup(), 250);
  }
  if (error.code === "tasks_outside_zone" && Array.isArray(where?.tasks)) {
    const ids = new Set(where.tasks);
    view.tasksGroup.eachLayer((m) => {
      if (ids.has(m.feature?.id)) m.getElement()?.querySelector(".gm-task")?.classList.add("is-outside");
    });
    $("zone-error-fix").hidden = false;
    $("zone-error-fix").dataset.tasks = JSON.stringify(where.tasks);
  }
}

function showZoneErrorOnMap() {
  const marker = view.errorGroup.getLayers()[0];
  if (!marker) return;
  view.map.setView(marker.getLatLng(), Math.max(view.map.getZoom(), 17));
  marker.openPopup();
}

async function removeOutsideTasksAndSave() {
  const ids = JSON.parse($("zone-error-fix").dataset.tasks || "[]");
  await busy($("zone-error-fix"), async () => {
    try {
      for (const id of ids) await call(`/api/mobs/${store.get().mob.id}/tasks/${id}`, { method: "DELETE" });
      await loadTasks();
      await saveZone();
    } catch (error) {
      showZoneError(error, store.get().lastSentZone);
    }
  });
}

export function initZone() {
  for (const id of TOOLS) $(id).addEventListener("click", () => useTool(id));
  $("tool-clear").addEventListener("click", clearZone);
  $("draw-finish").addEventListener("click", finishDrawing);
  $("draw-undo").addEventListener("click", undoVertex);
  $("draw-cancel").addEventListener("click", stopZoneTools);
  $("zone-save").addEventListener("click", saveZone);
  $("zone-error-show").addEventListener("click", showZoneErrorOnMap);
  $("zone-error-fix").addEventListener("click", removeOutsideTasksAndSave);

  store.subscribe(({ mob }) => {
    if (mob) updateZoneStats();
  }, ["mob"]);
  store.subscribe(({ tab }) => {
    if (tab !== "zone") stopZoneTools();
    setZoneEditable(tab === "zone");
  }, ["tabTurn"]);
}

// --- task spots ------------------------------------------------------------------------------

let placeMode = false;
let grid = "hex";

export async function loadTasks() {
  const { mob } = store.get();
  if (!mob) return;
  store.set({ tasks: await call(`/api/mobs/${mob.id}/tasks`) });
}

function withFeatures(features) {
  return { ...store.get().tasks, features };
}

function tasksEditable() {
  const { mob, tab } = store.get();
  return Boolean(mob) && tab === "tasks" && !CLOSED_STATUSES.includes(mob.status);
}

export function renderTasks() {
  if (!view.tasksGroup) return;
  const { mob, tasks, reviewDeeds } = store.get();
  view.tasksGroup.clearLayers();
  const editable = tasksEditable();
  const showState = mob && mob.status !== "draft";
  const size = pinSize(view.map, tasks.features, { min: editable ? 14 : 10, max: editable ? 28 : 22 });
  const toReview = reviewTaskIds(reviewDeeds);
  for (const feature of tasks.features) {
    const [lon, lat] = feature.geometry.coordinates;
    const state = showState ? taskState(feature.properties) : "draft";
    const review = !editable && toReview.has(feature.id);
    const marker = L.marker([lat, lon], {
      icon: taskIcon(state, review ? { size: Math.max(size, 22), label: "!", className: "is-review" } : { size }),
      zIndexOffset: review ? 1000 : 0,
      draggable: editable,
      pmIgnore: true,
      autoPan: true,
      title: feature.properties.label ?? "",
      keyboard: editable,
    });
    marker.feature = feature;
    if (editable) {
      marker.bindPopup(() => taskPopup(feature, marker), { maxWidth: 280, minWidth: 220 });
      marker.on("dragstart", () => store.set({ dragging: true }));
      marker.on("dragend", () => {
        store.set({ dragging: false });
        moveTask(feature, marker);
      });
    } else {
      const label = escapeHtml(feature.properties.label ?? "Task");
      marker.bindTooltip(review ? `${label}: a deed to review` : label, { direction: "top" });
    }
    marker.addTo(view.tasksGroup);
  }
  const n = tasks.features.length;
  $("task-count").textContent = String(n);
  $("t-replace-hint").hidden = n === 0;
  $("t-replace-hint").textContent = `Replaces the ${n} current spot${n === 1 ? "" : "s"}.`;
  const live = isLive(mob);
  $("t-generate").disabled = !tasksEditable() || Boolean(live && n);
  $("t-place").disabled = !tasksEditable();
  $("tasks-next").textContent = mob?.status === "draft" ? "Next: publish" : "Back to Run";
  $("tasks-next").disabled = !n;
}

function taskPopup(feature, marker) {
  const p = feature.properties;
  const form = document.createElement("form");
  form.className = "org-task-form";
  form.innerHTML = `
    <label class="field"><span>Label</span><input name="label" maxlength="100" value="${escapeHtml(p.label ?? "")}"></label>
    <label class="field"><span>Prompt at this spot</span><textarea name="prompt" maxlength="500" rows="3">${escapeHtml(p.prompt ?? "")}</textarea></label>
    <label class="field field-narrow"><span>Places</span><input name="capacity" type="number" min="1" max="1000" value="${p.capacity ?? 1}"></label>
    <div class="og-row">
      <button class="btn btn-small btn-danger" type="button" data-act="remove">Remove</button>
      <button class="btn btn-small btn-primary" type="submit">Save</button>
    </div>`;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const changes = {
      label: String(data.get("label")).trim() || undefined,
      prompt: String(data.get("prompt")).trim(),
      capacity: Number(data.get("capacity")) || 1,
    };
    marker.closePopup();
    await replaceTask(feature, marker.getLatLng(), changes, "Spot saved");
  });
  form.querySelector('[data-act="remove"]').addEventListener("click", async () => {
    marker.closePopup();
    await removeTask(feature);
  });
  return form;
}

/**
 * Moves or edits a task: the new one is added first, the old one removed after (the API has
 * no task update; a failed add leaves the old task as it was, and its pin goes back).
 */
async function replaceTask(feature, latlng, changes, message) {
  const p = feature.properties;
  const body = {
    lat: Number(latlng.lat.toFixed(7)),
    lon: Number(latlng.lng.toFixed(7)),
    kind: p.kind,
    capacity: changes.capacity ?? p.capacity,
    prompt: changes.prompt ?? p.prompt ?? "",
  };
  const label = changes.label ?? p.label;
  if (label) body.label = label;
  try {
    const added = await call(`/api/mobs/${store.get().mob.id}/tasks`, { body });
    await call(`/api/mobs/${store.get().mob.id}/tasks/${feature.id}`, { method: "DELETE" });
    const features = [...store.get().tasks.features];
    features.splice(features.indexOf(feature), 1, added);
    store.set({ tasks: withFeatures(features) }); // redraws the pins
    toast(message);
  } catch (error) {
    toast(errorText(error), "error");
    renderTasks();
  }
}

function moveTask(feature, marker) {
  return replaceTask(feature, marker.getLatLng(), {}, "Spot moved");
}

async function removeTask(feature) {
  try {
    await call(`/api/mobs/${store.get().mob.id}/tasks/${feature.id}`, { method: "DELETE" });
    store.set({ tasks: withFeatures(store.get().tasks.features.filter((f) => f !== feature)) });
    toast("Spot removed");
  } catch (error) {
    toast(errorText(error), "error");
    renderTasks();
  }
}

function taskDefaults() {
  const body = {
    kind: $("t-kind").value,
    capacity: Math.max(1, Math.min(1000, Number($("t-capacity").value) || 1)),
  };
  const prompt = $("t-prompt").value.trim();
  if (prompt) body.prompt = prompt;
  return body;
}

async function generateTasks(event) {
  event.preventDefault();
  const { mob } = store.get();
  if (!mob) return;
  showAlert($("tasks-error"), "");
  const body = { ...taskDefaults(), spacing_m: Number($("t-spacing").value), grid, replace: true };
  await busy($("t-generate"), async () => {
    try {
      const result = await call(`/api/mobs/${mob.id}/tasks/generate`, { body });
      await loadTasks();
      toast(`${result.count} task spot${result.count === 1 ? "" : "s"} placed`);
    } catch (error) {
      showAlert($("tasks-error"), errorText(error));
    }
  });
}

export function setPlaceMode(on) {
  placeMode = on;
  $("t-place").setAttribute("aria-pressed", String(on));
  $("org-map").classList.toggle("is-placing", on);
  const hint = $("map-hint");
  hint.hidden = !on;
  hint.textContent = on ? "Tap inside the zone to drop a spot" : "";
}

async function onMapClick(event) {
  const { mob, tab } = store.get();
  if (!placeMode || tab !== "tasks" || !mob) return;
  const body = {
    ...taskDefaults(),
    lat: Number(event.latlng.lat.toFixed(7)),
    lon: Number(event.latlng.lng.toFixed(7)),
  };
  try {
    const added = await call(`/api/mobs/${mob.id}/tasks`, { body });
    store.set({ tasks: withFeatures([...store.get().tasks.features, added]) });
  } catch (error) {
    toast(errorText(error), "error");
  }
}

/** Placing by tapping, and redrawing the pins at each zoom (their size follows it). */
export function setupTaskMap(map) {
  map.on("click", onMapClick);
  map.on("zoomend", renderTasks);
}

export function initTasks() {
  $("tasks-form").addEventListener("submit", generateTasks);
  $("t-spacing").addEventListener("input", () => { $("t-spacing-out").textContent = `${$("t-spacing").value} m`; });
  for (const button of $$("[data-grid]")) {
    button.addEventListener("click", () => {
      grid = button.dataset.grid;
      for (const b of $$("[data-grid]")) b.setAttribute("aria-checked", String(b === button));
    });
  }
  $("t-place").addEventListener("click", () => setPlaceMode(!placeMode));
  $("tasks-next").addEventListener("click", () => setTab(store.get().mob?.status === "draft" ? "publish" : "run"));

  store.subscribe(renderTasks, ["tasks", "reviewDeeds"]);
  let status = store.get().mob?.status ?? null;
  store.subscribe(({ mob }) => {
    const before = status;
    status = mob?.status ?? null;
    if (before && status && before !== status) renderTasks(); // the pins show the run's states
  }, ["mob"]);
  store.subscribe(({ tab }) => {
    if (tab !== "tasks") setPlaceMode(false);
    renderTasks();
  }, ["tabTurn"]);
}

// --- publish ---------------------------------------------------------------------------------

function renderPublish() {
  const { mob, tasks } = store.get();
  if (!mob) return;
  const n = tasks.features.length;
  const goMs = new Date(mob.go_at).getTime();
  const checks = [
    [Boolean(mob.title && mob.action), `“${mob.title}”: ${mob.action}`, "details"],
    [Boolean(mob.zone), zoneSummary(mob.zone), "zone"],
    [n > 0, n ? `${n} task spot${n === 1 ? "" : "s"}` : "No task spots yet", "tasks"],
    [goMs > Date.now(), `GO ${formatClock(goMs)} · lasts ${durationText(mob.duration_s)}`, "details"],
  ];
  $("checklist").innerHTML = checks.map(([ok, text, tab]) => `
    <li class="${ok ? "is-ok" : "is-missing"}"><span class="org-check-mark" aria-hidden="true">${ok ? "✓" : "!"}</span>
      <span>${escapeHtml(text)}</span><button type="button" class="og-link" data-goto="${tab}">Edit</button></li>`).join("");
  $("publish-summary").innerHTML = mob.rehearsal
    ? '<span class="chip chip-rehearsal">Rehearsal</span> No deed will count.' : "";
  $("publish").disabled = !checks.every(([ok]) => ok);
}

async function publish() {
  await busy($("publish"), async () => {
    try {
      setMob(await call(`/api/mobs/${store.get().mob.id}/publish`, { method: "POST" }));
      toast("Published! Share the link.");
      connectIfLive();
      setTab("run");
      $("share-box").classList.add("og-flash");
    } catch (error) {
      showAlert($("mob-error"), errorText(error));
    }
  });
}

export function initPublish() {
  $("checklist").addEventListener("click", (event) => {
    const tab = event.target.closest("[data-goto]")?.dataset.goto;
    if (tab) setTab(tab);
  });
  $("publish").addEventListener("click", publish);
  const onPublishStep = ({ tab }) => {
    if (tab === "publish") renderPublish();
  };
  store.subscribe(onPublishStep, ["mob", "tabTurn"]);
}
