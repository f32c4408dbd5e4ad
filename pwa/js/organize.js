/**
 * The organizer page (/organize): sign up or log in, list my mobs, create a mob step by step
 * (details → zone → tasks → publish) and run it (start now, postpone, cancel, announce,
 * rehearsal, live counters, the flagged-deeds review queue).
 *
 * - The organizer token lives in localStorage (`goodmob.organizer`), is sent as a bearer
 *   header (api.js) and in the Socket.IO auth payload (socket.js), never in a URL.
 * - The zone is drawn with Leaflet-Geoman (polygon, box, edit corners, cut holes); several
 *   parts make a MultiPolygon. The server validates it and nothing is repaired: its error's
 *   `where` (lon/lat, or a JSON path into the zone sent) is pinned on the map.
 * - Routes live in the hash: `#/` (my mobs), `#/new`, `#/mob/<id>[/<tab>]`.
 *
 * @module organize
 */

import { api, ApiError, signUpAndLogIn } from "/js/api.js";
import { registerServiceWorker } from "/js/pwa.js";
import { MobConnection } from "/js/socket.js";
import {
  COLORS, createMap, densityLayer, errorMarker, fitTo, pinSize, taskIcon, taskState, zoneStyle,
} from "/js/mapstyle.js";
import { escapeHtml, formatClock, formatCountdown, phaseAt } from "/js/util.js";

const STORE_KEY = "goodmob.organizer";
const LIVE_STATUSES = ["gathering", "countdown", "action"];
const CLOSED_STATUSES = ["finished", "cancelled"];
const STATUS_WORDS = {
  draft: "Draft", published: "Published", gathering: "Gathering", countdown: "Countdown",
  action: "GO!", finished: "Finished", cancelled: "Cancelled",
};
const DETAIL_FIELDS = ["title", "action", "description", "go_at", "duration_s", "rehearsal"];
const EARTH_RADIUS_M = 6371008.8;

const $ = (id) => document.getElementById(id);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// --- pure helpers (exported for tests and reuse) --------------------------------------------

/**
 * A `datetime-local` value ("2025-06-14T18:00") as ISO 8601 with this browser's offset
 * ("2025-06-14T18:00:00+02:00"), the offset being the one in force at that local time.
 */
export function localInputToIso(value) {
  if (!value) return null;
  const base = value.length === 16 ? `${value}:00` : value.slice(0, 19);
  const date = new Date(base);
  if (Number.isNaN(date.getTime())) return null;
  const minutes = -date.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  const pad = (n) => String(n).padStart(2, "0");
  return `${base}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** An instant (ISO string or epoch ms) as a `datetime-local` value in this browser's zone. */
export function toLocalInput(when) {
  const d = new Date(when);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** This browser's time zone as "Europe/Berlin (UTC+02:00)" at the given instant. */
export function zoneLabel(at = new Date()) {
  const minutes = -at.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "−";
  const abs = Math.abs(minutes);
  const offset = `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return name ? `${name} (${offset})` : offset;
}

/** Unsigned spherical area (m²) of a closed [lon, lat] ring (as the server computes it). */
export function ringAreaM2(ring) {
  const pts = ring.length > 1 && ring[0][0] === ring.at(-1)[0] && ring[0][1] === ring.at(-1)[1]
    ? ring.slice(0, -1) : ring;
  const n = pts.length;
  if (n < 3) return 0;
  const rad = Math.PI / 180;
  const lam = pts.map((p) => (p[0] - pts[0][0]) * rad);
  const sin = pts.map((p) => Math.sin(p[1] * rad));
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += (lam[(i + 1) % n] - lam[(i - 1 + n) % n]) * (sin[i] - sin[0]);
  }
  return (Math.abs(total) * EARTH_RADIUS_M ** 2) / 2;
}

/** Area (m²), corners and holes of a Polygon/MultiPolygon geometry. */
export function zoneStats(geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  let area = 0;
  let corners = 0;
  let holes = 0;
  for (const rings of polygons) {
    rings.forEach((ring, i) => {
      area += (i === 0 ? 1 : -1) * ringAreaM2(ring);
      corners += Math.max(0, ring.length - 1);
      if (i > 0) holes += 1;
    });
  }
  return { areaM2: Math.max(0, area), corners, holes, parts: polygons.length };
}

/** "850 m²", "1.2 ha", "0.35 km²". */
export function formatArea(m2) {
  if (m2 < 10_000) return `${Math.round(m2).toLocaleString()} m²`;
  if (m2 < 1_000_000) return `${(m2 / 10_000).toFixed(1)} ha`;
  return `${(m2 / 1_000_000).toFixed(2)} km²`;
}

/**
 * Where a zone error is: `where` = {lon, lat} as given, or a JSON path
 * ("coordinates[0][3][1]") resolved in the geometry that was sent (a ring → its first corner).
 * @returns {{lat: number, lon: number} | null}
 */
export function locateWhere(where, geometry) {
  if (!where) return null;
  if (Number.isFinite(where.lat) && Number.isFinite(where.lon)) return { lat: where.lat, lon: where.lon };
  if (typeof where.path !== "string" || !geometry) return null;
  let node = geometry.coordinates;
  for (const [, index] of where.path.matchAll(/\[(\d+)\]/g)) {
    if (!Array.isArray(node) || !Array.isArray(node[Number(index)])) break;
    node = node[Number(index)];
  }
  while (Array.isArray(node) && Array.isArray(node[0])) node = node[0];
  if (Array.isArray(node) && Number.isFinite(node[0]) && Number.isFinite(node[1])) {
    return { lon: node[0], lat: node[1] };
  }
  return null;
}

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

/** A default GO for a new mob: tomorrow at 18:00 local time. */
function defaultGo() {
  const d = new Date();
  d.setDate(d.getDate() + 1);
  d.setHours(18, 0, 0, 0);
  return d;
}

// --- session --------------------------------------------------------------------------------

const session = {
  data: null,
  load() {
    try {
      this.data = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
    } catch {
      this.data = null;
    }
    if (this.data && this.data.expires_at && Date.now() > this.data.expires_at) this.clear();
    return this.data;
  },
  save(body) {
    this.data = {
      token: body.token,
      organizer: body.organizer,
      expires_at: Date.now() + (body.expires_in_s ?? 0) * 1000,
    };
    localStorage.setItem(STORE_KEY, JSON.stringify(this.data));
  },
  clear() {
    this.data = null;
    localStorage.removeItem(STORE_KEY);
  },
  get token() {
    return this.data?.token ?? null;
  },
};

/** An API call with the organizer's token; a 401 logs out and shows the login form. */
async function call(path, options = {}) {
  try {
    return await api(path, { ...options, token: session.token });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session.clear();
      showAuth(error.code === "token_expired" ? "Your session expired: please log in again." : "");
    }
    throw error;
  }
}

// --- small UI helpers -------------------------------------------------------------------------

let toastTimer = null;
function toast(text, kind = "ok") {
  const el = $("toast");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3200);
}

function showAlert(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

/** A button that acts only on a second tap within 4 s (no modal dialog; one-handed). */
function confirmButton(button, action) {
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
async function busy(button, action) {
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

function errorText(error) {
  if (error instanceof ApiError) return error.message;
  return String(error?.message ?? error);
}

// --- views and routing --------------------------------------------------------------------------

const app = {
  mob: null, // the mob as the server sent it (null for a new, unsaved mob)
  pendingDetails: null, // details of a new mob, kept until its zone is saved
  tab: "details",
  tasks: { type: "FeatureCollection", features: [] },
  counters: {},
  map: null,
  zoneGroup: null,
  tasksGroup: null,
  errorGroup: null,
  densityGroup: null,
  zoneDirty: false,
  detailsDirty: false,
  pendingFit: false,
  placeMode: false,
  grid: "hex",
  conn: null,
  announcementSeqs: new Set(),
  dragging: false,
  lastSentZone: null,
  afterLogin: null,
  reviewDeeds: [], // the flagged deeds waiting for a verdict (their tasks are marked "!")
};
window.goodmobOrganize = app; // for tests and debugging (no secrets: the token is not here)

function setView(name) {
  document.body.dataset.view = name;
  for (const view of ["auth", "list", "mob"]) $(`view-${view}`).hidden = view !== name;
  $("account").hidden = name === "auth" || !session.data;
  if (session.data) $("account-name").textContent = session.data.organizer?.name ?? "";
}

function showAuth(message = "") {
  app.afterLogin = location.hash || "#/";
  closeConnection();
  setView("auth");
  showAlert($("auth-error"), message);
}

async function route() {
  if (!session.token) return showAuth();
  const hash = location.hash.replace(/^#/, "") || "/";
  const mobMatch = hash.match(/^\/mob\/([A-Za-z0-9_-]+)(?:\/(\w+))?$/);
  if (hash === "/new") return openNew();
  if (mobMatch) return openMob(mobMatch[1], mobMatch[2]);
  return showList();
}

function go(hash, { replace = false } = {}) {
  if (location.hash === hash) return route();
  if (replace) {
    history.replaceState(null, "", hash);
    return route();
  }
  location.hash = hash;
  return undefined;
}

// --- auth -----------------------------------------------------------------------------------------

let authMode = "login";

function setAuthMode(mode) {
  authMode = mode;
  $("auth-mode-login").setAttribute("aria-selected", String(mode === "login"));
  $("auth-mode-signup").setAttribute("aria-selected", String(mode === "signup"));
  $("auth-name-field").hidden = mode !== "signup";
  $("auth-password-hint").hidden = mode !== "signup";
  $("auth-password").autocomplete = mode === "signup" ? "new-password" : "current-password";
  $("auth-submit").textContent = mode === "signup" ? "Create account" : "Log in";
  showAlert($("auth-error"), "");
}

async function submitAuth(event) {
  event.preventDefault();
  const email = $("auth-email").value.trim();
  const password = $("auth-password").value;
  const name = $("auth-name").value.trim();
  if (!email || !password || (authMode === "signup" && !name)) {
    showAlert($("auth-error"), authMode === "signup"
      ? "Fill in your name, email and a password." : "Fill in your email and password.");
    return;
  }
  await busy($("auth-submit"), async () => {
    try {
      const body = authMode === "signup"
        ? await signUpAndLogIn({ email, password, name })
        : await api("/api/sessions", { body: { email, password } });
      session.save(body);
      $("auth-password").value = "";
      const next = app.afterLogin && app.afterLogin !== "#" ? app.afterLogin : "#/";
      app.afterLogin = null;
      go(next, { replace: true });
    } catch (error) {
      showAlert($("auth-error"), errorText(error));
    }
  });
}

function logout() {
  // End this session on the server too (its token is refused from now on), best effort.
  if (session.token) api("/api/sessions/current", { method: "DELETE", token: session.token }).catch(() => {});
  session.clear();
  closeConnection();
  app.mob = null;
  history.replaceState(null, "", "#/");
  showAuth();
}

// --- my mobs --------------------------------------------------------------------------------------

async function showList() {
  closeConnection();
  app.mob = null; // reopening a mob loads it afresh
  setView("list");
  const list = $("mob-list");
  showAlert($("list-error"), "");
  try {
    const { mobs } = await call("/api/organizers/me/mobs");
    list.innerHTML = "";
    for (const mob of mobs) list.append(mobCard(mob));
    $("list-empty").hidden = mobs.length > 0;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showAlert($("list-error"), errorText(error));
  }
}

function mobCard(mob) {
  const li = document.createElement("li");
  const goMs = new Date(mob.go_at).getTime();
  li.innerHTML = `
    <a class="org-mob-card" href="#/mob/${encodeURIComponent(mob.id)}">
      <span class="org-mob-main">
        <span class="org-mob-title">${escapeHtml(mob.title)}</span>
        <span class="org-mob-meta">GO ${escapeHtml(formatClock(goMs))} · ${mob.task_count ?? 0} task spot${mob.task_count === 1 ? "" : "s"}${mob.rehearsal ? " · rehearsal" : ""}</span>
      </span>
      <span class="chip" data-phase="${escapeHtml(mob.status)}">${escapeHtml(STATUS_WORDS[mob.status] ?? mob.status)}</span>
    </a>`;
  return li;
}

// --- one mob: opening, tabs ------------------------------------------------------------------------

function ensureMap() {
  if (app.map) return;
  app.map = createMap($("org-map"), { zoomSnap: 0.25 });
  app.zoneGroup = L.featureGroup().addTo(app.map);
  app.densityGroup = L.layerGroup().addTo(app.map);
  app.tasksGroup = L.layerGroup().addTo(app.map);
  app.errorGroup = L.layerGroup().addTo(app.map);
  setupGeoman(app.map);
  addLocateControl(app.map);
  app.map.on("click", onMapClick);
  app.map.on("zoomend", renderTasks);
}

function addLocateControl(map) {
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
async function locateMe(ask = false) {
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
    (pos) => app.map.setView([pos.coords.latitude, pos.coords.longitude], Math.max(app.map.getZoom(), 16)),
    () => ask && toast("Could not get your location.", "error"),
    { enableHighAccuracy: true, timeout: 8000, maximumAge: 60000 },
  );
}

function resetMobState() {
  closeConnection();
  app.mob = null;
  app.pendingDetails = null;
  app.tasks = { type: "FeatureCollection", features: [] };
  app.counters = {};
  app.zoneDirty = false;
  app.detailsDirty = false;
  app.announcementSeqs = new Set();
  app.lastSentZone = null;
  app.reviewDeeds = [];
  $("review-list").innerHTML = "";
  $("announcements").innerHTML = "";
  showAlert($("mob-error"), "");
  hideZoneError();
  clearFieldErrors();
  setPlaceMode(false);
}

function openNew() {
  setView("mob");
  ensureMap();
  resetMobState();
  stopZoneTools();
  app.zoneGroup.clearLayers();
  app.tasksGroup.clearLayers();
  app.densityGroup.clearLayers();
  fillDetails(null);
  updateZoneStats();
  locateMe(false);
  setTab("details");
}

async function openMob(id, tab) {
  setView("mob");
  ensureMap();
  if (app.mob?.id === id) {
    setTab(tab || app.tab || defaultTab(app.mob));
    return;
  }
  resetMobState();
  stopZoneTools();
  for (const pane of $$(".org-pane")) pane.hidden = true; // until the mob is loaded
  app.zoneGroup.clearLayers();
  app.tasksGroup.clearLayers();
  app.densityGroup.clearLayers();
  try {
    const mob = await call(`/api/mobs/${encodeURIComponent(id)}`);
    setMob(mob);
    loadZone(mob.zone, { fit: true });
    await loadTasks();
    setTab(tab || defaultTab(mob));
    if (mob.status !== "draft") connect();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    showAlert($("mob-error"), errorText(error));
  }
}

function defaultTab(mob) {
  if (!mob) return "details";
  if (mob.status !== "draft") return "run";
  if (!app.tasks.features.length) return "tasks";
  return "publish";
}

/** Keep the server's copy of the mob and refresh everything that shows it. */
function setMob(mob) {
  const statusChanged = app.mob && app.mob.status !== mob.status;
  app.mob = mob;
  if (mob.counters) setCounters(mob.counters);
  if (!app.detailsDirty) fillDetails(mob);
  const draft = mob.status === "draft";
  $("step-publish").hidden = !draft;
  $("step-run").hidden = draft;
  $("view-mob").dataset.status = mob.status;
  const live = LIVE_STATUSES.includes(mob.status);
  const closed = CLOSED_STATUSES.includes(mob.status);
  $("zone-locked").hidden = !(live || closed);
  $("zone-locked").textContent = closed
    ? `The mob is ${mob.status}: its zone no longer changes.`
    : "The mob is live: its zone can no longer change.";
  $("run-rehearsal-toggle").checked = Boolean(mob.rehearsal);
  $("run-rehearsal-toggle").disabled = live || closed;
  const share = new URL(mob.url ?? `/m/${mob.id}`, location.origin).href;
  $("share-url").value = share;
  $("live-link").href = `/live/${encodeURIComponent(mob.id)}`;
  $("summary-link").href = `/s/${encodeURIComponent(mob.id)}`;
  updateRun();
  updateZoneStats();
  if (statusChanged) renderTasks();
  if (app.tab === "publish") renderPublish();
}

function setTab(tab) {
  const available = tabAvailable(tab) ? tab : "details";
  app.tab = available;
  $("view-mob").dataset.tab = available;
  for (const button of $$(".org-step")) {
    button.setAttribute("aria-current", String(button.dataset.tab === available));
    button.disabled = !tabAvailable(button.dataset.tab);
  }
  for (const pane of $$(".org-pane")) pane.hidden = pane.dataset.pane !== available;
  $("panel").scrollTop = 0;
  if (available !== "zone") stopZoneTools();
  if (available !== "tasks") setPlaceMode(false);
  setZoneEditable(available === "zone");
  renderTasks();
  if (available === "publish") renderPublish();
  if (available === "run") {
    updateRun();
    loadReview();
  }
  if (available === "run") app.densityGroup.addTo(app.map);
  else app.densityGroup.remove();
  if (app.map) {
    setTimeout(() => {
      app.map.invalidateSize();
      if (app.pendingFit) fitZone();
    }, 30);
  }
  const hash = app.mob ? `#/mob/${app.mob.id}/${available}` : "#/new";
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function tabAvailable(tab) {
  const mob = app.mob;
  if (tab === "details" || tab === "zone") return true;
  if (tab === "tasks") return Boolean(mob);
  if (tab === "publish") return Boolean(mob) && mob.status === "draft";
  if (tab === "run") return Boolean(mob) && mob.status !== "draft";
  return false;
}

// --- details --------------------------------------------------------------------------------------

function fillDetails(mob) {
  const d = mob ?? app.pendingDetails ?? {};
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
  $("f-go-zone").textContent = `Your time: ${zoneLabel(new Date($("f-go").value || Date.now()))}`;
  const live = mob && LIVE_STATUSES.includes(mob.status);
  const closed = mob && CLOSED_STATUSES.includes(mob.status);
  $("f-go").disabled = Boolean(live || closed);
  $("f-duration").disabled = Boolean(live || closed);
  $("f-rehearsal").disabled = Boolean(live || closed);
  $("f-schedule-note").hidden = !live;
  $("details-heading").textContent = mob ? "Details" : "What and when";
  $("details-next").textContent = !mob ? "Next: draw the zone" : mob.status === "draft" ? "Save details" : "Save";
  $("details-next").disabled = Boolean(closed);
}

function readDetails() {
  return {
    title: $("f-title").value.trim(),
    action: $("f-action").value.trim(),
    description: $("f-description").value.trim(),
    go_at: localInputToIso($("f-go").value),
    duration_s: Number($("f-duration").value),
    rehearsal: $("f-rehearsal").checked,
  };
}

function clearFieldErrors() {
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

function checkDetails(details) {
  clearFieldErrors();
  const problems = [];
  if (!details.title) problems.push(["title", "Give the mob a title."]);
  if (!details.action) problems.push(["action", "Say what everyone does at GO."]);
  if (!details.go_at) problems.push(["go_at", "Pick the day and time of GO."]);
  else if (new Date(details.go_at).getTime() <= Date.now() && (!app.mob || app.mob.status === "draft")) {
    problems.push(["go_at", "GO must be in the future."]);
  }
  for (const [field, message] of problems) showFieldError(field, message);
  return problems.length === 0;
}

async function submitDetails(event) {
  event.preventDefault();
  const details = readDetails();
  if (!checkDetails(details)) return;
  if (!app.mob) {
    app.pendingDetails = details;
    setTab("zone");
    return;
  }
  const changes = {};
  for (const key of DETAIL_FIELDS) {
    const before = key === "go_at" ? new Date(app.mob.go_at).getTime() : app.mob[key];
    const after = key === "go_at" ? new Date(details.go_at).getTime() : details[key];
    if (before !== after && !(key === "description" && !before && !after)) changes[key] = details[key];
  }
  if (LIVE_STATUSES.includes(app.mob.status)) {
    delete changes.go_at;
    delete changes.duration_s;
    delete changes.rehearsal;
  }
  await busy($("details-next"), async () => {
    try {
      app.detailsDirty = false;
      if (Object.keys(changes).length) {
        setMob(await call(`/api/mobs/${app.mob.id}`, { method: "PATCH", body: changes }));
        toast("Details saved");
      }
      if (app.mob.status === "draft") setTab(app.tasks.features.length ? "publish" : "zone");
    } catch (error) {
      showDetailsError(error);
    }
  });
}

function showDetailsError(error) {
  const field = error instanceof ApiError ? (error.where?.field ?? (error.code === "go_at_in_past" ? "go_at" : null)) : null;
  if (field && showFieldError(field, error.message)) return;
  showAlert($("mob-error"), errorText(error));
}

// --- zone -----------------------------------------------------------------------------------------

function setupGeoman(map) {
  map.pm.setGlobalOptions({
    layerGroup: app.zoneGroup,
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
  app.zoneGroup.on("layeradd", (e) => {
    e.layer.on("pm:edit", zoneChanged);
  });
}

function updateDrawbar(shape, vertices) {
  let text;
  if (shape === "Rectangle") text = "Tap one corner of the box, then the opposite corner.";
  else if (shape === "Cut") text = vertices < 3 ? "Tap the corners of the hole inside the zone." : "Tap the first corner or Finish to cut the hole.";
  else if (vertices === 0) text = app.zoneGroup.getLayers().length ? "Tap the map to start another part of the zone." : "Tap the map at the first corner of the zone.";
  else if (vertices < 3) text = `${vertices} corner${vertices === 1 ? "" : "s"}: keep tapping around the area.`;
  else text = `${vertices} corners: tap the first corner or Finish to close the zone.`;
  $("drawbar-text").textContent = text;
  $("draw-finish").disabled = shape !== "Rectangle" && vertices < 3;
}

function zoneChanged() {
  app.zoneDirty = true;
  hideZoneError();
  updateZoneStats();
}

function zoneLocked() {
  return Boolean(app.mob) && (LIVE_STATUSES.includes(app.mob.status) || CLOSED_STATUSES.includes(app.mob.status));
}

function setToolPressed(id) {
  for (const tool of ["tool-draw", "tool-rect", "tool-edit", "tool-cut"]) {
    $(tool).setAttribute("aria-pressed", String(tool === id));
  }
}

function stopZoneTools() {
  if (!app.map) return;
  const pm = app.map.pm;
  if (pm.globalDrawModeEnabled()) pm.disableDraw();
  if (pm.globalEditModeEnabled()) pm.disableGlobalEditMode();
  if (pm.globalCutModeEnabled()) pm.disableGlobalCutMode();
  if (pm.globalRemovalModeEnabled?.()) pm.disableGlobalRemovalMode();
  $("drawbar").hidden = true;
  $("zone-stats").hidden = false;
  setToolPressed(null);
}

function useTool(id) {
  if (zoneLocked()) return;
  const pm = app.map.pm;
  const wasOn = $(id).getAttribute("aria-pressed") === "true";
  stopZoneTools();
  hideZoneError();
  if (wasOn) return;
  if (id === "tool-draw") pm.enableDraw("Polygon", { tooltips: false, allowSelfIntersection: true });
  else if (id === "tool-rect") pm.enableDraw("Rectangle", { tooltips: false });
  else if (id === "tool-edit") {
    if (!app.zoneGroup.getLayers().length) return toast("Draw a zone first.", "error");
    pm.enableGlobalEditMode({ allowSelfIntersection: true, snappable: true });
  } else if (id === "tool-cut") {
    if (!app.zoneGroup.getLayers().length) return toast("Draw a zone first, then cut holes in it.", "error");
    pm.enableGlobalCutMode({ tooltips: false, allowSelfIntersection: false });
  }
  setToolPressed(id);
  return undefined;
}

function activeDraw() {
  const pm = app.map.pm;
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
  if (zoneLocked()) return;
  stopZoneTools();
  if (!app.zoneGroup.getLayers().length) return;
  app.zoneGroup.clearLayers();
  zoneChanged();
}

function setZoneEditable(on) {
  const locked = zoneLocked();
  for (const id of ["tool-draw", "tool-rect", "tool-edit", "tool-cut", "tool-clear", "zone-save"]) {
    $(id).disabled = locked || !on;
  }
  app.zoneGroup?.eachLayer((layer) => {
    layer.setStyle?.(zoneStyle(on ? {} : { fillOpacity: 0.08, weight: 2 }));
  });
}

function loadZone(geometry, { fit = false } = {}) {
  app.zoneGroup.clearLayers();
  if (geometry) {
    L.geoJSON(geometry).eachLayer((layer) => {
      layer.setStyle?.(zoneStyle());
      app.zoneGroup.addLayer(layer);
    });
  }
  app.zoneDirty = false;
  updateZoneStats();
  if (fit) fitZone();
}

/** Show the whole zone; when the map is hidden (the details tab on a phone), on next show. */
function fitZone() {
  app.pendingFit = !fitTo(app.map, app.zoneGroup, { padding: 28 }) && app.zoneGroup.getLayers().length > 0;
}

function updateZoneStats() {
  if (!app.zoneGroup) return;
  const geometry = zoneFromLayers(app.zoneGroup);
  const el = $("zone-stats");
  if (!geometry) {
    el.innerHTML = "No zone yet: tap <strong>Draw</strong>, then tap the map at each corner.";
  } else {
    const s = zoneStats(geometry);
    const parts = s.areaM2 >= 1 ? [formatArea(s.areaM2), `${s.corners} corners`] : [`${s.corners} corners`];
    if (s.holes) parts.push(`${s.holes} hole${s.holes === 1 ? "" : "s"}`);
    if (s.parts > 1) parts.push(`${s.parts} parts`);
    el.innerHTML = `<strong>Zone:</strong> ${escapeHtml(parts.join(" · "))}${app.zoneDirty ? ' <span class="og-dirty">unsaved</span>' : ""}`;
  }
  let label = "Save zone";
  if (!app.mob) label = "Save zone and continue";
  else if (!app.zoneDirty) label = "Next: task spots";
  $("zone-save").textContent = label;
}

async function saveZone() {
  stopZoneTools();
  if (app.mob && !app.zoneDirty) {
    setTab("tasks");
    return;
  }
  const geometry = zoneFromLayers(app.zoneGroup);
  if (!geometry) {
    showZoneError(new ApiError(0, "zone_missing", "Draw the zone first: tap Draw, then tap the map at each corner."));
    return;
  }
  if (!app.mob) {
    const details = readDetails();
    if (!checkDetails(details)) {
      setTab("details");
      showAlert($("mob-error"), "Fill in the details first, then save the zone.");
      return;
    }
    app.pendingDetails = details;
  }
  app.lastSentZone = geometry;
  await busy($("zone-save"), async () => {
    try {
      if (!app.mob) {
        const mob = await call("/api/mobs", { body: { ...app.pendingDetails, zone: geometry } });
        app.pendingDetails = null;
        setMob(mob);
        app.zoneDirty = false;
        connectIfLive();
        toast("Draft saved: now add task spots");
        setTab("tasks");
      } else {
        setMob(await call(`/api/mobs/${app.mob.id}`, { method: "PATCH", body: { zone: geometry } }));
        app.zoneDirty = false;
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

function hideZoneError() {
  $("zone-error").hidden = true;
  $("zone-error-fix").hidden = true;
  app.errorGroup?.clearLayers();
  $$(".gm-task.is-outside").forEach((el) => el.classList.remove("is-outside"));
}

/** What to do about a zone error, in the organizer's words (the server's message follows). */
const ZONE_HINTS = {
  zone_self_intersects: "The zone's edges cross at the red mark. Use Corners to drag a corner so no two edges cross.",
  zone_hole_outside_shell: "A hole lies outside the zone. Clear it and cut the hole inside the zone.",
  zone_nested_rings: "Two parts of the zone lie inside each other. Remove one of them.",
  zone_interior_disconnected: "The holes cut the zone into pieces. Make the holes smaller or apart.",
  zone_duplicate_rings: "The same shape was drawn twice. Remove one copy.",
  zone_too_large: "The zone is too large. Draw a smaller area.",
  zone_too_small: "The zone is too small for a mob. Draw a larger area.",
  zone_too_many_vertices: "The zone has too many corners. Draw it with fewer.",
  zone_crosses_antimeridian: "The zone crosses the 180° meridian. Draw one part on each side.",
  tasks_outside_zone: "Some task spots (in red) would lie outside the new zone.",
};

function showZoneError(error, geometry = null) {
  hideZoneError();
  if (app.tab !== "zone") setTab("zone");
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
    const marker = errorMarker(at, hint ?? message).addTo(app.errorGroup);
    app.map.panTo([at.lat, at.lon]);
    setTimeout(() => marker.openPopup(), 250);
  }
  if (error.code === "tasks_outside_zone" && Array.isArray(where?.tasks)) {
    const ids = new Set(where.tasks);
    app.tasksGroup.eachLayer((m) => {
      if (ids.has(m.feature?.id)) m.getElement()?.querySelector(".gm-task")?.classList.add("is-outside");
    });
    $("zone-error-fix").hidden = false;
    $("zone-error-fix").dataset.tasks = JSON.stringify(where.tasks);
  }
}

function showZoneErrorOnMap() {
  const marker = app.errorGroup.getLayers()[0];
  if (!marker) return;
  app.map.setView(marker.getLatLng(), Math.max(app.map.getZoom(), 17));
  marker.openPopup();
}

async function removeOutsideTasksAndSave() {
  const ids = JSON.parse($("zone-error-fix").dataset.tasks || "[]");
  await busy($("zone-error-fix"), async () => {
    try {
      for (const id of ids) await call(`/api/mobs/${app.mob.id}/tasks/${id}`, { method: "DELETE" });
      await loadTasks();
      await saveZone();
    } catch (error) {
      showZoneError(error, app.lastSentZone);
    }
  });
}

// --- tasks --------------------------------------------------------------------------------------

async function loadTasks() {
  if (!app.mob) return;
  app.tasks = await call(`/api/mobs/${app.mob.id}/tasks`);
  renderTasks();
}

function tasksEditable() {
  return Boolean(app.mob) && app.tab === "tasks" && !CLOSED_STATUSES.includes(app.mob.status);
}

function renderTasks() {
  if (!app.tasksGroup) return;
  app.tasksGroup.clearLayers();
  const editable = tasksEditable();
  const showState = app.mob && app.mob.status !== "draft";
  const size = pinSize(app.map, app.tasks.features, { min: editable ? 14 : 10, max: editable ? 28 : 22 });
  const toReview = reviewTaskIds();
  for (const feature of app.tasks.features) {
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
      marker.on("dragstart", () => { app.dragging = true; });
      marker.on("dragend", () => {
        app.dragging = false;
        moveTask(feature, marker);
      });
    } else {
      const label = escapeHtml(feature.properties.label ?? "Task");
      marker.bindTooltip(review ? `${label}: a deed to review` : label, { direction: "top" });
    }
    marker.addTo(app.tasksGroup);
  }
  const n = app.tasks.features.length;
  $("task-count").textContent = String(n);
  $("t-replace-hint").hidden = n === 0;
  $("t-replace-hint").textContent = `Replaces the ${n} current spot${n === 1 ? "" : "s"}.`;
  const live = app.mob && LIVE_STATUSES.includes(app.mob.status);
  $("t-generate").disabled = !tasksEditable() || Boolean(live && n);
  $("t-place").disabled = !tasksEditable();
  $("tasks-next").textContent = app.mob?.status === "draft" ? "Next: publish" : "Back to Run";
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
 * no task update; a failed add leaves the old task as it was).
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
    const added = await call(`/api/mobs/${app.mob.id}/tasks`, { body });
    await call(`/api/mobs/${app.mob.id}/tasks/${feature.id}`, { method: "DELETE" });
    const i = app.tasks.features.indexOf(feature);
    app.tasks.features.splice(i, 1, added);
    toast(message);
  } catch (error) {
    toast(errorText(error), "error");
  }
  renderTasks();
}

function moveTask(feature, marker) {
  return replaceTask(feature, marker.getLatLng(), {}, "Spot moved");
}

async function removeTask(feature) {
  try {
    await call(`/api/mobs/${app.mob.id}/tasks/${feature.id}`, { method: "DELETE" });
    app.tasks.features = app.tasks.features.filter((f) => f !== feature);
    toast("Spot removed");
  } catch (error) {
    toast(errorText(error), "error");
  }
  renderTasks();
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
  if (!app.mob) return;
  showAlert($("tasks-error"), "");
  const body = { ...taskDefaults(), spacing_m: Number($("t-spacing").value), grid: app.grid, replace: true };
  await busy($("t-generate"), async () => {
    try {
      const result = await call(`/api/mobs/${app.mob.id}/tasks/generate`, { body });
      await loadTasks();
      toast(`${result.count} task spot${result.count === 1 ? "" : "s"} placed`);
    } catch (error) {
      showAlert($("tasks-error"), errorText(error));
    }
  });
}

function setPlaceMode(on) {
  app.placeMode = on;
  $("t-place").setAttribute("aria-pressed", String(on));
  $("org-map").classList.toggle("is-placing", on);
  const hint = $("map-hint");
  hint.hidden = !on;
  hint.textContent = on ? "Tap inside the zone to drop a spot" : "";
}

async function onMapClick(event) {
  if (!app.placeMode || app.tab !== "tasks" || !app.mob) return;
  const body = {
    ...taskDefaults(),
    lat: Number(event.latlng.lat.toFixed(7)),
    lon: Number(event.latlng.lng.toFixed(7)),
  };
  try {
    const added = await call(`/api/mobs/${app.mob.id}/tasks`, { body });
    app.tasks.features.push(added);
    renderTasks();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

// --- publish ------------------------------------------------------------------------------------

function renderPublish() {
  const mob = app.mob;
  if (!mob) return;
  const n = app.tasks.features.length;
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

function zoneSummary(zone) {
  if (!zone) return "No zone yet";
  const s = zoneStats(zone);
  return `Zone of ${formatArea(s.areaM2)}${s.holes ? ` with ${s.holes} hole${s.holes === 1 ? "" : "s"}` : ""}`;
}

function durationText(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(s % 3600 ? 1 : 0)} h`;
}

async function publish() {
  await busy($("publish"), async () => {
    try {
      setMob(await call(`/api/mobs/${app.mob.id}/publish`, { method: "POST" }));
      toast("Published! Share the link.");
      connectIfLive();
      setTab("run");
      $("share-box").classList.add("og-flash");
    } catch (error) {
      showAlert($("mob-error"), errorText(error));
    }
  });
}

// --- run: live view and controls -------------------------------------------------------------------

function connectIfLive() {
  if (app.mob && app.mob.status !== "draft" && !app.conn) connect();
}

function connect() {
  closeConnection();
  const mobId = app.mob.id;
  app.conn = new MobConnection({
    namespace: "/organizer",
    auth: { token: session.token },
    mob: mobId,
    joinEvent: "watch_mob",
    onSnapshot: (snap) => {
      if (app.mob?.id !== mobId) return;
      setMob({ ...app.mob, ...snap.mob });
      applyTimeline(snap.timeline, snap.phase);
      setCounters(snap.counters ?? {});
      if (snap.tasks) {
        app.tasks = snap.tasks;
        renderTasks();
      }
      setDensity(snap.density);
      for (const said of snap.announcements ?? []) addAnnouncement(said); // oldest first
      for (const missed of snap.missed ?? []) {
        if (missed.event === "announcement") addAnnouncement(missed.data);
      }
    },
    onEvent: (name, data) => {
      if (data?.mob && data.mob !== mobId) return;
      if (name === "stats") setCounters(data);
      else if (name === "density") setDensity(data);
      else if (name === "tasks") applyTasksPush(data.tasks);
      else if (name === "timeline") applyTimeline(data.timeline);
      else if (name === "phase") applyTimeline(null, data.phase);
      else if (name === "announcement") addAnnouncement(data);
    },
    onStatus: (status, detail) => {
      if (status === "refused" && ["token_invalid", "token_expired", "token_revoked", "auth_required"].includes(detail?.code)) {
        session.clear();
        showAuth("Your session expired: please log in again.");
      }
      document.body.dataset.conn = status;
    },
  });
  app.conn.connect();
}

function closeConnection() {
  app.conn?.close();
  app.conn = null;
}

function applyTimeline(timeline, phase) {
  if (!app.mob) return;
  const mob = { ...app.mob };
  if (timeline) {
    mob.timeline = timeline;
    mob.status = timeline.phase ?? mob.status;
    mob.rehearsal = timeline.rehearsal;
    mob.go_at = new Date(timeline.go_at_ms).toISOString();
    mob.gather_at = new Date(timeline.gather_at_ms).toISOString();
    mob.countdown_at = new Date(timeline.countdown_at_ms).toISOString();
    mob.end_at = new Date(timeline.end_at_ms).toISOString();
    mob.title = timeline.title ?? mob.title;
    mob.action = timeline.action ?? mob.action;
  }
  if (phase) {
    mob.status = phase;
    if (mob.timeline) mob.timeline = { ...mob.timeline, phase };
  }
  setMob(mob);
}

function setCounters(data) {
  const before = app.counters;
  const after = { ...before };
  for (const key of ["joined", "in_zone", "matched", "deeds_done", "deeds_flagged"]) {
    if (typeof data[key] === "number") after[key] = data[key];
  }
  app.counters = after;
  for (const [key, value] of Object.entries(after)) {
    const el = $(`rc-${key}`);
    if (!el) continue;
    el.textContent = value.toLocaleString();
    if (before[key] !== undefined && before[key] !== value) {
      el.parentElement.classList.remove("og-flash");
      void el.offsetWidth;
      el.parentElement.classList.add("og-flash");
    }
  }
  if (before.deeds_flagged !== undefined && before.deeds_flagged !== after.deeds_flagged) loadReview();
}

/** The tasks by state, pushed by the server (`tasks`, at most once a second) during a run. */
function applyTasksPush(collection) {
  if (!collection?.features || !app.mob || app.mob.status === "draft") return;
  // The organizer is moving or editing a spot: keep their view; the next push catches up.
  if (app.dragging || app.tasksGroup?.getLayers().some((marker) => marker.isPopupOpen?.())) return;
  app.tasks = collection;
  renderTasks();
}

function setDensity(density) {
  if (!app.densityGroup) return;
  app.densityGroup.clearLayers();
  if (density?.cells?.length) densityLayer(density.cells).eachLayer((l) => l.addTo(app.densityGroup));
}

/** The phase box of the run pane, redrawn 4× a second on the server-clock estimate. */
function updateRun() {
  const mob = app.mob;
  if (!mob || mob.status === "draft" || !mob.timeline) return;
  const now = app.conn?.clock.serverNow() ?? Date.now();
  const t = mob.timeline;
  const phase = phaseAt({ ...t, phase: mob.status }, now);
  $("run-phase").dataset.phase = phase;
  $("run-chip").dataset.phase = phase;
  $("run-chip").textContent = STATUS_WORDS[phase] ?? phase;
  $("run-rehearsal").hidden = !mob.rehearsal;
  let label = "GO in";
  let time = formatCountdown(t.go_at_ms - now);
  let sub = `GO ${formatClock(t.go_at_ms, now)} · ${zoneLabel(new Date(t.go_at_ms))}`;
  if (phase === "action") {
    label = "Ends in";
    time = formatCountdown(t.end_at_ms - now);
    sub = mob.action;
  } else if (phase === "finished") {
    const done = app.counters.deeds_done ?? 0;
    label = `good deed${done === 1 ? "" : "s"} done`;
    time = done.toLocaleString();
    sub = `Ended ${formatClock(t.end_at_ms, now)}`;
  } else if (phase === "cancelled") {
    label = "Called off";
    time = "—";
    sub = "Participants were told.";
  }
  $("run-label").textContent = label;
  $("run-time").textContent = time;
  $("run-sub").textContent = sub;
  const closed = CLOSED_STATUSES.includes(phase);
  const started = ["action", ...CLOSED_STATUSES].includes(phase);
  $("run-start").disabled = started;
  $("run-lead").disabled = started;
  $("run-cancel").disabled = closed;
  $("announce-send").disabled = closed;
  for (const b of $$(".org-postpone button")) b.disabled = started;
  // A closed run has nothing left to control: the controls and the share box give way to
  // the finished state and its summary link (the review queue stays: deeds can be judged).
  $("controls").hidden = closed;
  $("share-box").hidden = closed;
  $("run-finished").hidden = !closed;
  if (closed) {
    const text = phase === "finished"
      ? "This mob is over. Thank everyone with its summary: people, deeds and the map, no one's position."
      : "This mob was called off. Its summary keeps what happened until then.";
    if ($("run-finished-text").textContent !== text) $("run-finished-text").textContent = text;
  }
}

async function startNow() {
  await control("start-now", { lead_s: Number($("run-lead").value) }, "Starting: everyone sees the new GO");
}

async function postpone(bySeconds) {
  await control("postpone", { by_s: bySeconds }, `GO moved ${durationText(bySeconds)} later`);
}

async function cancelMob() {
  try {
    setMob(await call(`/api/mobs/${app.mob.id}/cancel`, { method: "POST" }));
    toast("Mob cancelled");
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function control(action, body, message) {
  try {
    setMob(await call(`/api/mobs/${app.mob.id}/${action}`, { body }));
    toast(message);
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function toggleRehearsal() {
  const on = $("run-rehearsal-toggle").checked;
  try {
    setMob(await call(`/api/mobs/${app.mob.id}`, { method: "PATCH", body: { rehearsal: on } }));
    toast(on ? "Rehearsal: no deed will count" : "Rehearsal off: deeds count");
  } catch (error) {
    $("run-rehearsal-toggle").checked = !on;
    toast(errorText(error), "error");
  }
}

async function announce(event) {
  event.preventDefault();
  const text = $("announce-text").value.trim();
  if (!text) return;
  await busy($("announce-send"), async () => {
    try {
      const sent = await call(`/api/mobs/${app.mob.id}/announcements`, { body: { text } });
      addAnnouncement(sent);
      $("announce-text").value = "";
      toast("Announced to everyone");
    } catch (error) {
      toast(errorText(error), "error");
    }
  });
}

function addAnnouncement(data) {
  if (!data?.text) return;
  if (data.seq !== undefined) {
    if (app.announcementSeqs.has(data.seq)) return;
    app.announcementSeqs.add(data.seq);
  }
  const li = document.createElement("li");
  const at = data.at_ms ? formatClock(data.at_ms) : "";
  li.innerHTML = `<span class="org-ann-time">${escapeHtml(at)}</span> ${escapeHtml(data.text)}`;
  $("announcements").prepend(li);
}

// --- review queue --------------------------------------------------------------------------------------

async function loadReview() {
  if (!app.mob || app.mob.status === "draft") return;
  try {
    const { deeds } = await call(`/api/mobs/${app.mob.id}/deeds?status=flagged`);
    renderReview(deeds);
  } catch {
    // shown again on the next counter change
  }
}

const REASONS = {
  far_from_task: "far from the spot",
  poor_accuracy: "poor location fix",
  implausible_speed: "impossible speed",
};

/** The tasks of the deeds waiting for review (a deed's spot is its task's: it has no other). */
function reviewTaskIds() {
  return new Set(app.reviewDeeds.map((deed) => deed.task));
}

/** Centres the map on a task's spot and opens its tooltip. */
function showTaskOnMap(taskId) {
  const feature = app.tasks.features.find((f) => f.id === taskId);
  if (!feature || !app.map) {
    toast("This spot is not on the map any more.", "error");
    return;
  }
  const [lon, lat] = feature.geometry.coordinates;
  app.map.setView([lat, lon], Math.max(app.map.getZoom(), 18));
  app.tasksGroup.eachLayer((marker) => {
    if (marker.feature?.id === taskId) marker.openTooltip();
  });
}

/** "N to review" → the review list (scrolled into view, focused) and the first deed's spot. */
function jumpToReview() {
  const section = $("review-section");
  section.scrollIntoView({ block: "start", behavior: "smooth" });
  section.focus({ preventScroll: true });
  if (app.reviewDeeds.length) showTaskOnMap(app.reviewDeeds[0].task);
}

function renderReview(deeds) {
  const list = $("review-list");
  list.innerHTML = "";
  app.reviewDeeds = deeds;
  $("review-count").textContent = String(deeds.length);
  $("review-empty").hidden = deeds.length > 0;
  renderTasks();
  const labels = new Map(app.tasks.features.map((f) => [f.id, f.properties.label]));
  for (const deed of deeds) {
    const li = document.createElement("li");
    li.className = "org-review-item";
    const distance = Number.isFinite(deed.distance_m) ? `${Math.round(deed.distance_m)} m from the spot` : "";
    const accuracy = Number.isFinite(deed.accuracy_m) ? `fix ±${Math.round(deed.accuracy_m)} m` : "";
    let reason = REASONS[deed.reason] ?? (deed.reason ?? "").replaceAll("_", " ");
    if (deed.reason === "far_from_task" && distance) reason = "";
    li.innerHTML = `
      <div class="org-review-main">
        <strong>${escapeHtml(labels.get(deed.task) ?? `Task ${deed.task}`)}</strong>
        <span>${escapeHtml([reason, distance, accuracy].filter(Boolean).join(" · "))}</span>
        <small>${escapeHtml(deed.created_at ? formatClock(new Date(deed.created_at).getTime()) : "")}</small>
      </div>
      <div class="org-review-actions">
        <button type="button" class="btn btn-small btn-ghost org-review-show" data-act="show">Show on map</button>
        <button type="button" class="btn btn-small btn-ghost" data-verdict="reject">Reject</button>
        <button type="button" class="btn btn-small btn-primary" data-verdict="approve">Approve</button>
      </div>`;
    for (const button of li.querySelectorAll("[data-verdict]")) {
      button.addEventListener("click", () => review(deed, button.dataset.verdict, li));
    }
    li.querySelector('[data-act="show"]').addEventListener("click", () => showTaskOnMap(deed.task));
    list.append(li);
  }
}

async function review(deed, verdict, li) {
  try {
    await call(`/api/mobs/${app.mob.id}/deeds/${deed.id}/review`, { body: { verdict } });
    li.remove();
    app.reviewDeeds = app.reviewDeeds.filter((d) => d.id !== deed.id);
    renderTasks();
    const left = $("review-list").children.length;
    $("review-count").textContent = String(left);
    $("review-empty").hidden = left > 0;
    toast(verdict === "approve" ? "Deed approved: it counts" : "Deed rejected");
    // The server pushes the new counters (stats) and tasks to every live page.
  } catch (error) {
    toast(errorText(error), "error");
  }
}

// --- share ------------------------------------------------------------------------------------------------

async function share() {
  const url = $("share-url").value;
  if (navigator.share) {
    try {
      await navigator.share({ title: app.mob?.title ?? "Good Mob", text: app.mob?.action ?? "", url });
      return;
    } catch (error) {
      if (error?.name === "AbortError") return;
    }
  }
  await copyLink();
}

async function copyLink() {
  const input = $("share-url");
  try {
    await navigator.clipboard.writeText(input.value);
    toast("Link copied");
  } catch {
    input.select();
    toast("Select and copy the link", "error");
  }
}

// --- wiring -------------------------------------------------------------------------------------------------

function wire() {
  $("auth-mode-login").addEventListener("click", () => setAuthMode("login"));
  $("auth-mode-signup").addEventListener("click", () => setAuthMode("signup"));
  $("auth-form").addEventListener("submit", submitAuth);
  $("logout").addEventListener("click", logout);

  for (const button of $$(".org-step")) {
    button.addEventListener("click", async () => {
      if (button.dataset.tab !== "zone" && app.tab === "zone" && app.zoneDirty && app.mob) {
        await saveZone();
        if (app.zoneDirty) return;
      }
      setTab(button.dataset.tab);
    });
  }
  $("details-form").addEventListener("submit", submitDetails);
  $("details-form").addEventListener("input", () => { app.detailsDirty = Boolean(app.mob); });
  $("f-go").addEventListener("change", () => {
    $("f-go-zone").textContent = `Your time: ${zoneLabel(new Date($("f-go").value || Date.now()))}`;
  });

  for (const id of ["tool-draw", "tool-rect", "tool-edit", "tool-cut"]) {
    $(id).addEventListener("click", () => useTool(id));
  }
  $("tool-clear").addEventListener("click", clearZone);
  $("draw-finish").addEventListener("click", finishDrawing);
  $("draw-undo").addEventListener("click", undoVertex);
  $("draw-cancel").addEventListener("click", stopZoneTools);
  $("zone-save").addEventListener("click", saveZone);
  $("zone-error-show").addEventListener("click", showZoneErrorOnMap);
  $("zone-error-fix").addEventListener("click", removeOutsideTasksAndSave);

  $("tasks-form").addEventListener("submit", generateTasks);
  $("t-spacing").addEventListener("input", () => { $("t-spacing-out").textContent = `${$("t-spacing").value} m`; });
  for (const button of $$("[data-grid]")) {
    button.addEventListener("click", () => {
      app.grid = button.dataset.grid;
      for (const b of $$("[data-grid]")) b.setAttribute("aria-checked", String(b === button));
    });
  }
  $("t-place").addEventListener("click", () => setPlaceMode(!app.placeMode));
  $("tasks-next").addEventListener("click", () => setTab(app.mob?.status === "draft" ? "publish" : "run"));

  $("checklist").addEventListener("click", (event) => {
    const tab = event.target.closest("[data-goto]")?.dataset.goto;
    if (tab) setTab(tab);
  });
  $("publish").addEventListener("click", publish);

  confirmButton($("run-start"), startNow);
  confirmButton($("run-cancel"), cancelMob);
  for (const button of $$(".org-postpone [data-by]")) {
    button.addEventListener("click", () => busy(button, () => postpone(Number(button.dataset.by))));
  }
  $("run-rehearsal-toggle").addEventListener("change", toggleRehearsal);
  $("announce-form").addEventListener("submit", announce);
  $("share-btn").addEventListener("click", share);
  $("copy-btn").addEventListener("click", copyLink);
  $("review-jump").addEventListener("click", jumpToReview);

  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", (event) => {
    if (app.zoneDirty && document.body.dataset.view === "mob") event.preventDefault();
  });
  setInterval(() => {
    if (app.tab === "run" && document.body.dataset.view === "mob") updateRun();
  }, 250);
}

wire();
session.load();
setAuthMode("login");
route();
registerServiceWorker();
