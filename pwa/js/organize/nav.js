/**
 * Getting around the organizer page:
 * - the account: signing up (then logging in) and in and out;
 * - routes in the hash: `#/` (my mobs), `#/new`, `#/mob/<id>[/<tab>]`; without a session the
 *   login form, which remembers the route to return to (the store's `afterLogin`);
 * - my mobs, as cards;
 * - opening a new mob or a saved one (loaded afresh unless it is the one shown), the map
 *   made on first use, and what follows the mob's status (which steps exist, the zone lock).
 *
 * @module organize/nav
 */

import { ApiError, api, signUpAndLogIn } from "../api.js";
import { escapeHtml, formatClock } from "../util.js";
import {
  clearFieldErrors, fillDetails, hideZoneError, loadTasks, loadZone, setPlaceMode, setupGeoman,
  setupTaskMap, stopZoneTools, updateZoneStats,
} from "./edit.js";
import {
  $, $$, addLocateControl, busy, call, createMapView, errorText, locateMe, session, setTab,
  setView, showAlert, view,
} from "./page.js";
import { closeConnection, connect, resetLive, resetReview } from "./run.js";
import {
  STATUS_WORDS, defaultTab, emptyMobState, isClosed, isLive, parseRoute, setMob, store,
} from "./state.js";

// --- the account -----------------------------------------------------------------------------

let authMode = "login";

export function setAuthMode(mode) {
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
      const { afterLogin } = store.get();
      const next = afterLogin && afterLogin !== "#" ? afterLogin : "#/";
      store.set({ afterLogin: null });
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
  store.set({ mob: null });
  history.replaceState(null, "", "#/");
  showAuth();
}

export function initAccount() {
  $("auth-mode-login").addEventListener("click", () => setAuthMode("login"));
  $("auth-mode-signup").addEventListener("click", () => setAuthMode("signup"));
  $("auth-form").addEventListener("submit", submitAuth);
  $("logout").addEventListener("click", logout);
}

// --- routes ----------------------------------------------------------------------------------

export function showAuth(message = "") {
  store.set({ afterLogin: location.hash || "#/" });
  closeConnection();
  setView("auth");
  showAlert($("auth-error"), message);
}

export async function route() {
  if (!session.token) return showAuth();
  const where = parseRoute(location.hash);
  if (where.view === "new") return openNew();
  if (where.view === "mob") return openMob(where.id, where.tab);
  return showList();
}

export function go(hash, { replace = false } = {}) {
  if (location.hash === hash) return route();
  if (replace) {
    history.replaceState(null, "", hash);
    return route();
  }
  location.hash = hash;
  return undefined;
}

// --- my mobs ---------------------------------------------------------------------------------

export async function showList() {
  closeConnection();
  store.set({ mob: null }); // reopening a mob loads it afresh
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

// --- opening a mob ---------------------------------------------------------------------------

function ensureMap() {
  if (!createMapView()) return;
  setupGeoman(view.map);
  addLocateControl(view.map);
  setupTaskMap(view.map);
}

function resetMobState() {
  closeConnection();
  store.set(emptyMobState());
  resetReview();
  resetLive();
  showAlert($("mob-error"), "");
  hideZoneError();
  clearFieldErrors();
  setPlaceMode(false);
}

function clearMap() {
  view.zoneGroup.clearLayers();
  view.tasksGroup.clearLayers();
  view.densityGroup.clearLayers();
}

export function openNew() {
  setView("mob");
  ensureMap();
  resetMobState();
  stopZoneTools();
  clearMap();
  fillDetails(null);
  updateZoneStats();
  locateMe(false);
  setTab("details");
}

export async function openMob(id, tab) {
  setView("mob");
  ensureMap();
  const shown = store.get();
  if (shown.mob?.id === id) {
    setTab(tab || shown.tab || defaultTab(shown.mob, shown.tasks.features.length));
    return;
  }
  resetMobState();
  stopZoneTools();
  for (const pane of $$(".org-pane")) pane.hidden = true; // until the mob is loaded
  clearMap();
  try {
    const mob = await call(`/api/mobs/${encodeURIComponent(id)}`);
    setMob(mob);
    loadZone(mob.zone, { fit: true });
    await loadTasks();
    setTab(tab || defaultTab(mob, store.get().tasks.features.length));
    if (mob.status !== "draft") connect();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    showAlert($("mob-error"), errorText(error));
  }
}

export function initMob() {
  store.subscribe(({ mob }) => {
    if (!mob) return;
    const draft = mob.status === "draft";
    $("step-publish").hidden = !draft;
    $("step-run").hidden = draft;
    $("view-mob").dataset.status = mob.status;
    const closed = isClosed(mob);
    $("zone-locked").hidden = !(isLive(mob) || closed);
    $("zone-locked").textContent = closed
      ? `The mob is ${mob.status}: its zone no longer changes.`
      : "The mob is live: its zone can no longer change.";
  }, ["mob"]);
}
