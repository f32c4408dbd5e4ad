/**
 * The organizer page's frame, used by every concern:
 * - DOM helpers: element lookup, the toast, alerts, two-tap and busy buttons, error texts,
 *   which view (auth, list, mob) shows;
 * - the session (the token kept in localStorage, see state.js `createSession`) and the API
 *   calls made with it: a 401, or a refused socket (run.js), ends it and the router shows
 *   the login (`onSessionExpired`, set by organize.js);
 * - the map: one Leaflet map for every step, its layers in `view`, "go to my location",
 *   fitting the zone (when the map is hidden, as on a phone's details step, once it shows);
 * - the steps (details → zone → tasks → publish, then run): `setTab` shows one and counts
 *   `tabTurn` up in the store, on which each concern redraws its part, also when the step
 *   shown is tapped again; the hash follows (`#/mob/<id>/<tab>`, `#/new`).
 *
 * @module organize/page
 */

import { api, ApiError } from "../api.js";
import { createMap, fitTo } from "../mapstyle.js";
import { createSession, store, tabAvailable } from "./state.js";

// --- DOM helpers -----------------------------------------------------------------------------

export const $ = (id) => document.getElementById(id);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

let toastTimer = null;
export function toast(text, kind = "ok") {
  const el = $("toast");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3200);
}

export function showAlert(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

/** A button that acts only on a second tap within 4 s (no modal dialog; one-handed). */
export function confirmButton(button, action) {
  let timer = null;
  const label = button.textContent;
  button.addEventListener("click", async () => {
    if (!button.classList.contains("is-confirming")) {
      button.classList.add("is-confirming");
      button.textContent = button.dataset.confirm;
      timer = setTimeout(reset, 4000);
      return;
    }
    reset();
    await action();
  });
  function reset() {
    clearTimeout(timer);
    button.classList.remove("is-confirming");
    button.textContent = label;
  }
}

/** Runs an async action with the button disabled and a busy look. */
export async function busy(button, action) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.classList.add("is-busy");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.classList.remove("is-busy");
  }
}

export function errorText(error) {
  if (error instanceof ApiError) return error.message;
  return String(error?.message ?? error);
}

/** Shows one of the views ("auth", "list", "mob") and the account bar when logged in. */
export function setView(name) {
  document.body.dataset.view = name;
  for (const view of ["auth", "list", "mob"]) $(`view-${view}`).hidden = view !== name;
  $("account").hidden = name === "auth" || !session.data;
  if (session.data) $("account-name").textContent = session.data.organizer?.name ?? "";
}

// --- the session -----------------------------------------------------------------------------

export const session = createSession();

let expiredHandler = () => {};

/** What to do when the session ends by a refusal: `fn(message)` (the router shows the login). */
export function onSessionExpired(fn) {
  expiredHandler = fn;
}

/** The server refused the token: forget it and let the page ask for a login. */
export function endSession(message = "") {
  session.clear();
  expiredHandler(message);
}

/** An API call with the organizer's token; a 401 logs out and shows the login form. */
export async function call(path, options = {}) {
  try {
    return await api(path, { ...options, token: session.token });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      endSession(error.code === "token_expired" ? "Your session expired: please log in again." : "");
    }
    throw error;
  }
}

// --- the map ---------------------------------------------------------------------------------

/** The map and its layer groups (null until the first mob or new mob is opened). */
export const view = {
  map: null,
  zoneGroup: null,
  densityGroup: null,
  tasksGroup: null,
  errorGroup: null,
};

let pendingFit = false;

/** Makes the map and its layers; false when they exist already. */
export function createMapView() {
  if (view.map) return false;
  view.map = createMap($("org-map"), { zoomSnap: 0.25 });
  view.zoneGroup = L.featureGroup().addTo(view.map);
  view.densityGroup = L.layerGroup().addTo(view.map);
  view.tasksGroup = L.layerGroup().addTo(view.map);
  view.errorGroup = L.layerGroup().addTo(view.map);
  return true;
}

export function addLocateControl(map) {
  const control = L.control({ position: "topright" });
  control.onAdd = () => {
    const button = L.DomUtil.create("button", "og-map-btn");
    button.type = "button";
    button.title = "Go to my location";
    button.setAttribute("aria-label", "Go to my location");
    button.textContent = "◎";
    L.DomEvent.disableClickPropagation(button);
    L.DomEvent.on(button, "click", () => locateMe(true));
    return button;
  };
  control.addTo(map);
}

/** Centre an empty map on the organizer (asks only when `ask`, else only if already allowed). */
export async function locateMe(ask = false) {
  if (!navigator.geolocation) return;
  if (!ask) {
    try {
      const status = await navigator.permissions?.query({ name: "geolocation" });
      if (status?.state !== "granted") return;
    } catch {
      return;
    }
  }
  navigator.geolocation.getCurrentPosition(
    (pos) => view.map.setView([pos.coords.latitude, pos.coords.longitude], Math.max(view.map.getZoom(), 16)),
    () => ask && toast("Could not get your location.", "error"),
    { enableHighAccuracy: true, timeout: 8000, maximumAge: 60000 },
  );
}

/** Show the whole zone; when the map is hidden (the details tab on a phone), on next show. */
export function fitZone() {
  pendingFit = !fitTo(view.map, view.zoneGroup, { padding: 28 }) && view.zoneGroup.getLayers().length > 0;
}

/** After a step change: the map's box may have changed size (and a fit may be waiting). */
export function refreshMapSize() {
  if (!view.map) return;
  setTimeout(() => {
    view.map.invalidateSize();
    if (pendingFit) fitZone();
  }, 30);
}

// --- the steps -------------------------------------------------------------------------------

export function setTab(tab) {
  const { mob } = store.get();
  const available = tabAvailable(tab, mob) ? tab : "details";
  $("view-mob").dataset.tab = available;
  for (const button of $$(".org-step")) {
    button.setAttribute("aria-current", String(button.dataset.tab === available));
    button.disabled = !tabAvailable(button.dataset.tab, mob);
  }
  for (const pane of $$(".org-pane")) pane.hidden = pane.dataset.pane !== available;
  $("panel").scrollTop = 0;
  store.set({ tab: available, tabTurn: store.get().tabTurn + 1 });
  refreshMapSize();
  const shown = store.get().mob;
  const hash = shown ? `#/mob/${shown.id}/${available}` : "#/new";
  if (location.hash !== hash) history.replaceState(null, "", hash);
}
