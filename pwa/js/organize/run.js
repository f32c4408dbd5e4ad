/**
 * Running a published mob (the run step):
 * - the organizer's Socket.IO connection (`/organizer`, `watch_mob`, token in the auth
 *   payload) and what its snapshot and events change in the store (the mob and its
 *   timeline, counters, tasks), the crowd density on the map, the counters, announcements;
 * - the phase box on the server clock (4× a second and on every change of the mob) and the
 *   controls: start now, postpone, cancel, rehearsal, announce; a closed run shows its
 *   ending and the summary link instead;
 * - the review queue of flagged deeds (the store's `reviewDeeds`), reloaded with the run
 *   step and when the flagged counter changes;
 * - sharing the mob's link, and the links to its live map and summary.
 *
 * @module organize/run
 */

import { densityLayer } from "../mapstyle.js";
import { MobConnection } from "../socket.js";
import { escapeHtml, formatClock } from "../util.js";
import { durationText, runView } from "./model.js";
import {
  $, $$, busy, call, confirmButton, endSession, errorText, session, toast, view,
} from "./page.js";
import {
  deedSummary, isClosed, isLive, mobWithTimeline, setCounters, setMob, store,
} from "./state.js";

// --- the connection --------------------------------------------------------------------------

const REFUSED_TOKEN = ["token_invalid", "token_expired", "token_revoked", "auth_required"];

let conn = null;
let announcementSeqs = new Set();

/** The server clock as this connection estimates it (the browser's before any sync). */
export function serverNow() {
  return conn?.clock.serverNow() ?? Date.now();
}

export function connectIfLive() {
  const { mob } = store.get();
  if (mob && mob.status !== "draft" && !conn) connect();
}

export function connect() {
  closeConnection();
  const mobId = store.get().mob.id;
  conn = new MobConnection({
    namespace: "/organizer",
    auth: { token: session.token },
    mob: mobId,
    joinEvent: "watch_mob",
    onSnapshot: (snap) => {
      const { mob } = store.get();
      if (mob?.id !== mobId) return;
      setMob({ ...mob, ...snap.mob });
      applyTimeline(snap.timeline, snap.phase);
      setCounters(snap.counters ?? {});
      if (snap.tasks) store.set({ tasks: snap.tasks });
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
      if (status === "refused" && REFUSED_TOKEN.includes(detail?.code)) {
        endSession("Your session expired: please log in again.");
      }
      document.body.dataset.conn = status;
    },
  });
  conn.connect();
}

export function closeConnection() {
  conn?.close();
  conn = null;
}

function applyTimeline(timeline, phase) {
  const { mob } = store.get();
  if (!mob) return;
  setMob(mobWithTimeline(mob, timeline, phase));
}

/** The tasks by state, pushed by the server (`tasks`, at most once a second) during a run. */
export function applyTasksPush(collection) {
  const { mob } = store.get();
  if (!collection?.features || !mob || mob.status === "draft") return;
  // The organizer is moving or editing a spot: keep their view; the next push catches up.
  if (store.get().dragging || view.tasksGroup?.getLayers().some((marker) => marker.isPopupOpen?.())) return;
  store.set({ tasks: collection });
}

function setDensity(density) {
  if (!view.densityGroup) return;
  view.densityGroup.clearLayers();
  if (density?.cells?.length) densityLayer(density.cells).eachLayer((l) => l.addTo(view.densityGroup));
}

/** The run pane's counters; a changed one flashes. */
function showCounters(after, before) {
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
}

/** Adds an announcement to the list (newest first), once per number. */
export function addAnnouncement(data) {
  if (!data?.text) return;
  if (data.seq !== undefined) {
    if (announcementSeqs.has(data.seq)) return;
    announcementSeqs.add(data.seq);
  }
  const li = document.createElement("li");
  const at = data.at_ms ? formatClock(data.at_ms) : "";
  li.innerHTML = `<span class="org-ann-time">${escapeHtml(at)}</span> ${escapeHtml(data.text)}`;
  $("announcements").prepend(li);
}

/** Another mob opens: no announcements heard yet. */
export function resetLive() {
  announcementSeqs = new Set();
  $("announcements").innerHTML = "";
}

export function initLive() {
  let shown = store.get().counters;
  store.subscribe(({ counters }) => {
    const before = shown;
    shown = counters;
    showCounters(counters, before);
  }, ["counters"]);
  store.subscribe(({ tab }) => {
    if (tab === "run") view.densityGroup.addTo(view.map);
    else view.densityGroup.remove();
  }, ["tabTurn"]);
}

// --- the phase box and controls --------------------------------------------------------------

/** The phase box of the run pane, on the server-clock estimate. */
export function updateRun() {
  const { mob, counters } = store.get();
  if (!mob || mob.status === "draft" || !mob.timeline) return;
  const run = runView(mob, counters, serverNow());
  $("run-phase").dataset.phase = run.phase;
  $("run-chip").dataset.phase = run.phase;
  $("run-chip").textContent = run.word;
  $("run-rehearsal").hidden = !mob.rehearsal;
  $("run-label").textContent = run.label;
  $("run-time").textContent = run.time;
  $("run-sub").textContent = run.sub;
  $("run-start").disabled = run.started;
  $("run-lead").disabled = run.started;
  $("run-cancel").disabled = run.closed;
  $("announce-send").disabled = run.closed;
  for (const b of $$(".org-postpone button")) b.disabled = run.started;
  // A closed run has nothing left to control: the controls and the share box give way to
  // the finished state and its summary link (the review queue stays: deeds can be judged).
  $("controls").hidden = run.closed;
  $("share-box").hidden = run.closed;
  $("run-finished").hidden = !run.closed;
  if (run.closed && $("run-finished-text").textContent !== run.closing) {
    $("run-finished-text").textContent = run.closing;
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
    setMob(await call(`/api/mobs/${store.get().mob.id}/cancel`, { method: "POST" }));
    toast("Mob cancelled");
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function control(action, body, message) {
  try {
    setMob(await call(`/api/mobs/${store.get().mob.id}/${action}`, { body }));
    toast(message);
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function toggleRehearsal() {
  const on = $("run-rehearsal-toggle").checked;
  try {
    setMob(await call(`/api/mobs/${store.get().mob.id}`, { method: "PATCH", body: { rehearsal: on } }));
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
      const sent = await call(`/api/mobs/${store.get().mob.id}/announcements`, { body: { text } });
      addAnnouncement(sent);
      $("announce-text").value = "";
      toast("Announced to everyone");
    } catch (error) {
      toast(errorText(error), "error");
    }
  });
}

export function initRun() {
  confirmButton($("run-start"), startNow);
  confirmButton($("run-cancel"), cancelMob);
  for (const button of $$(".org-postpone [data-by]")) {
    button.addEventListener("click", () => busy(button, () => postpone(Number(button.dataset.by))));
  }
  $("run-rehearsal-toggle").addEventListener("change", toggleRehearsal);
  $("announce-form").addEventListener("submit", announce);

  store.subscribe(({ mob }) => {
    if (!mob) return;
    const fixed = isLive(mob) || isClosed(mob);
    $("run-rehearsal-toggle").checked = Boolean(mob.rehearsal);
    $("run-rehearsal-toggle").disabled = fixed;
    updateRun();
  }, ["mob"]);
  store.subscribe(({ tab }) => {
    if (tab === "run") updateRun();
  }, ["tabTurn"]);
  setInterval(() => {
    if (store.get().tab === "run" && document.body.dataset.view === "mob") updateRun();
  }, 250);
}

// --- the review queue ------------------------------------------------------------------------

export async function loadReview() {
  const { mob } = store.get();
  if (!mob || mob.status === "draft") return;
  try {
    const { deeds } = await call(`/api/mobs/${mob.id}/deeds?status=flagged`);
    renderReview(deeds);
  } catch {
    // shown again on the next counter change
  }
}

/** Centres the map on a task's spot and opens its tooltip. */
function showTaskOnMap(taskId) {
  const feature = store.get().tasks.features.find((f) => f.id === taskId);
  if (!feature || !view.map) {
    toast("This spot is not on the map any more.", "error");
    return;
  }
  const [lon, lat] = feature.geometry.coordinates;
  view.map.setView([lat, lon], Math.max(view.map.getZoom(), 18));
  view.tasksGroup.eachLayer((marker) => {
    if (marker.feature?.id === taskId) marker.openTooltip();
  });
}

/** "N to review" → the review list (scrolled into view, focused) and the first deed's spot. */
function jumpToReview() {
  const section = $("review-section");
  section.scrollIntoView({ block: "start", behavior: "smooth" });
  section.focus({ preventScroll: true });
  const { reviewDeeds } = store.get();
  if (reviewDeeds.length) showTaskOnMap(reviewDeeds[0].task);
}

function renderReview(deeds) {
  const list = $("review-list");
  list.innerHTML = "";
  store.set({ reviewDeeds: deeds }); // the pins with "!" are redrawn
  $("review-count").textContent = String(deeds.length);
  $("review-empty").hidden = deeds.length > 0;
  const labels = new Map(store.get().tasks.features.map((f) => [f.id, f.properties.label]));
  for (const deed of deeds) {
    const li = document.createElement("li");
    li.className = "org-review-item";
    li.innerHTML = `
      <div class="org-review-main">
        <strong>${escapeHtml(labels.get(deed.task) ?? `Task ${deed.task}`)}</strong>
        <span>${escapeHtml(deedSummary(deed))}</span>
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
    await call(`/api/mobs/${store.get().mob.id}/deeds/${deed.id}/review`, { body: { verdict } });
    li.remove();
    store.set({ reviewDeeds: store.get().reviewDeeds.filter((d) => d.id !== deed.id) });
    const left = $("review-list").children.length;
    $("review-count").textContent = String(left);
    $("review-empty").hidden = left > 0;
    toast(verdict === "approve" ? "Deed approved: it counts" : "Deed rejected");
    // The server pushes the new counters (stats) and tasks to every live page.
  } catch (error) {
    toast(errorText(error), "error");
  }
}

/** Another mob opens: its queue is loaded with its run step. */
export function resetReview() {
  $("review-list").innerHTML = "";
}

export function initReview() {
  $("review-jump").addEventListener("click", jumpToReview);
  let flagged = store.get().counters.deeds_flagged;
  store.subscribe(({ counters }) => {
    const before = flagged;
    flagged = counters.deeds_flagged;
    if (before !== undefined && before !== flagged) loadReview();
  }, ["counters"]);
  store.subscribe(({ tab }) => {
    if (tab === "run") loadReview();
  }, ["tabTurn"]);
}

// --- sharing ---------------------------------------------------------------------------------

async function share() {
  const url = $("share-url").value;
  const { mob } = store.get();
  if (navigator.share) {
    try {
      await navigator.share({ title: mob?.title ?? "Good Mob", text: mob?.action ?? "", url });
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

export function initShare() {
  $("share-btn").addEventListener("click", share);
  $("copy-btn").addEventListener("click", copyLink);
  store.subscribe(({ mob }) => {
    if (!mob) return;
    $("share-url").value = new URL(mob.url ?? `/m/${mob.id}`, location.origin).href;
    $("live-link").href = `/live/${encodeURIComponent(mob.id)}`;
    $("summary-link").href = `/s/${encodeURIComponent(mob.id)}`;
  }, ["mob"]);
}
