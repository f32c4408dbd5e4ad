/**
 * Drawing the page from the store: the views (loading, error, join, main), the top bar, the
 * guide card and the zone line, the counters, the pledge lines, and the GO screen (the
 * action prompt while it runs, then a closing screen). While the GO screen is up, what is
 * behind it is `inert` (no Tab, no screen reader) and the map moves onto it. `render()`
 * runs after every change of the store (state.js) and on the countdown's tick.
 *
 * - The clock display: the clock cards (`[data-clock]`, with a quiet "timing ±N ms" while
 *   this phone's clock is unsure: ../clock.js clockNote), the GO screen's time-left pill, and
 *   the tick that redraws them on every second boundary of the countdown, beeps the final
 *   three seconds, and redraws the page when the phase turns.
 * - The map: the zone, you (with your accuracy) and your spot, with a dashed line between;
 *   kept in view unless the user is looking around (touch, mouse or wheel pause the framing).
 *
 * @module participant/view
 */

import { clockNote } from "../clock.js";
import { pledgeSummary } from "../growth.js";
import { icons } from "../icons.js";
import { createMap, taskMarker, youMarker, zoneLayer } from "../map.js";
import { escapeHtml, formatClock } from "../util.js";
import { beep, fireGo, focusGo, keepAwake, vibrate } from "./go.js";
import {
  chipsHtml, clockFace, countersHtml, doneState, guide, noSpotStory, timeLeftText, zoneLine,
} from "./model.js";
import {
  $, actionOver, currentPhase, mobId, referralCode, render as redraw, serverNow, store,
} from "./state.js";

const L = globalThis.L;

function show(view) {
  for (const name of ["loading", "error", "join", "main"]) $(`view-${name}`).hidden = name !== view;
}

export function render() {
  const state = store.get();
  if (state.fatal) {
    show("error");
    $("error-text").innerHTML = `${icons.alert}<span>${escapeHtml(state.fatal)}</span>`;
    renderTop("error");
    return;
  }
  if (!state.mob) {
    show("loading");
    return;
  }
  if (state.session && !state.go && state.phase === "action" && state.timeline && !actionOver()) {
    // The server says the action is on and no local timer fired (a late joiner before the
    // clock sync, a lost timeline, a phase that jumped): flip now, telling how late.
    fireGo({ lateMs: Math.max(0, serverNow() - state.timeline.go_at_ms), via: "server" });
    return;
  }
  const phase = currentPhase();
  renderTop(phase);
  if (state.session) {
    show("main");
    renderMain(phase);
  } else {
    show("join");
    renderJoin(phase);
  }
  renderClock(phase);
  renderPledges();
  renderGo(phase);
  renderMap();
}

function renderTop(phase) {
  const state = store.get();
  $("top-title").textContent = state.mob?.title ?? "Good Mob";
  document.title = state.mob ? `${state.mob.title} — Good Mob` : "Good Mob";
  const joined = Boolean(state.session);
  $("share-btn").hidden = !joined || phase === "cancelled";
  const labels = {
    offline: "● offline", disconnected: "● reconnecting…", connecting: "● connecting…", refused: "",
  };
  $("conn").textContent = joined ? labels[state.connStatus] ?? "" : "";
  document.body.dataset.phase = phase;
  const dark = phase === "countdown" && joined;
  if (document.body.classList.contains("phase-countdown") !== dark) {
    document.body.classList.toggle("phase-countdown", dark);
    mapResized(); // the map's height changed
  }
  keepAwake(joined && ["countdown", "action"].includes(phase));
}

function renderJoin(phase) {
  const state = store.get();
  const mob = state.mob;
  $("join-chips").innerHTML = chipsHtml(state, phase);
  $("join-title").textContent = mob.title;
  $("join-organizer").textContent = mob.organizer?.name ? `Organized by ${mob.organizer.name}` : "";
  $("join-action").textContent = mob.action;
  $("join-description").textContent = mob.description ?? "";
  $("join-description").hidden = !mob.description;
  const ref = referralCode();
  $("invited").hidden = !ref;
  $("invited").innerHTML = `${icons.heart}<span>A friend invited you. Join and you'll count as their guest.</span>`;
  const closed = ["finished", "cancelled"].includes(phase);
  $("join-form").hidden = closed;
  $("join-cta").hidden = closed;
  $("join-closed").hidden = !closed;
  if (closed) {
    $("join-closed").textContent = phase === "cancelled"
      ? "This mob was cancelled by its organizer."
      : "This mob is over. Thank you to everyone who came!";
  }
  if (state.joinMessage) {
    $("join-error").textContent = state.joinMessage;
    $("join-error").hidden = false;
  }
  const geo = $("join-geo");
  geo.hidden = state.geoError !== "denied" && state.geoPermission !== "denied";
  if (!geo.hidden) {
    geo.innerHTML = `${icons.locationOff}<span>Location is blocked for this site. You can join, but you can't be guided to a spot or counted until you allow it.</span>`;
  }
  const where = $("join-where");
  if (state.fix && mob.zone) {
    where.hidden = false;
    const inside = L.geoJSON(mob.zone).getBounds().contains([state.fix.lat, state.fix.lon]);
    where.querySelector(".dot").className = `dot ${inside ? "ok" : "warn"}`;
    where.lastElementChild.textContent = inside ? "You're right at the zone" : "We'll guide you to the zone";
  }
}

function updateCounters(container) {
  const html = countersHtml(store.get());
  if (container.dataset.html === html) return;
  const before = Object.fromEntries([...container.querySelectorAll(".counter")].map((el) => [el.dataset.counter, el.querySelector(".counter-value").textContent]));
  container.innerHTML = html;
  container.dataset.html = html;
  for (const el of container.querySelectorAll(".counter")) {
    const old = before[el.dataset.counter];
    if (old !== undefined && old !== el.querySelector(".counter-value").textContent) el.classList.add("bump");
  }
}

function renderMain(phase) {
  const state = store.get();
  const cancelled = phase === "cancelled";
  $("cancelled").hidden = !cancelled;
  $("guide").hidden = cancelled; // nothing to walk to any more
  $("zone-row").hidden = cancelled;
  $("sheet-actions").hidden = cancelled; // no "Bring a friend" to a called-off mob
  if (cancelled) {
    $("cancelled").firstElementChild.innerHTML = `${icons.alert}<span>This mob was cancelled by its organizer. Thank you for coming — there is nothing more to do here.</span>`;
  }
  const blocked = state.geoError === "denied" && !state.fix && !cancelled;
  $("geo-warning").hidden = !blocked;
  if (blocked) {
    $("geo-warning").querySelector("span").textContent = "Location is blocked: you can't be guided to a spot and your deed can't be counted. Allow location for this site in your browser's settings, then:";
  }
  const announcement = $("announcement");
  announcement.hidden = !state.announcement;
  if (state.announcement) announcement.innerHTML = `${icons.info}<span><b>From the organizer:</b> ${escapeHtml(state.announcement)}</span>`;
  const g = guide(state, serverNow());
  const arrow = $("guide-arrow");
  arrow.className = `arrow ${g.cls}`;
  if (arrow.dataset.html !== g.arrow) {
    arrow.innerHTML = g.arrow;
    arrow.dataset.html = g.arrow;
  }
  $("guide-main").textContent = g.main;
  $("guide-sub").textContent = g.sub;
  const [dot, text] = zoneLine(state);
  $("zone-dot").className = `dot ${dot}`;
  const nick = state.me?.nickname ?? state.session?.participant?.nickname;
  $("zone-text").textContent = nick ? `${text} · you're ${nick}` : text;
  updateCounters($("counters"));
}

function renderPledges() {
  const summary = pledgeSummary(store.get().pledges);
  const html = summary
    ? `${icons.heart}<span><b>${escapeHtml(summary.text)}</b>${summary.sub ? `<small>${escapeHtml(summary.sub)}</small>` : ""}</span>`
    : "";
  for (const id of ["join-pledges", "pledges", "go-pledges"]) {
    const el = $(id);
    el.hidden = !summary;
    if (el.dataset.html !== html) {
      el.innerHTML = html;
      el.dataset.html = html;
    }
  }
}

function renderGo(phase) {
  const state = store.get();
  const screen = $("go-screen");
  const ended = phase === "finished";
  // Joined: the action prompt while it runs; after the end, a closing screen (whether GO
  // fired here or the phone slept through it and the phase jumped straight to finished).
  const visible = Boolean(state.session) && (phase === "action" || ended);
  const appearing = visible && screen.hidden;
  screen.hidden = !visible;
  behindGo(visible);
  if (!visible) return;
  screen.classList.toggle("ended", ended);
  $("go-word").textContent = ended ? "That's a wrap!" : "GO!";
  renderLate(phase);
  const now = serverNow();
  const task = state.task;
  const story = task ? null : noSpotStory(state, now);
  const prompt = story?.text ?? (task.prompt || state.timeline?.action || state.mob?.action || "");
  const tookPart = Boolean(state.go || state.deed);
  const endedAt = state.timeline ? formatClock(state.timeline.end_at_ms, serverNow()) : "";
  $("go-action").textContent = !ended
    ? prompt
    : tookPart
      ? "Thank you for being part of it."
      : `It ended${endedAt ? ` at ${endedAt}` : ""}, so you missed the action this time. Thank you for joining!`;
  $("go-action").classList.toggle("go-action--small", (ended && !tookPart) || Boolean(story && !ended));
  const g = guide(state, serverNow());
  $("go-task").hidden = ended || Boolean(story?.watch); // no way to a spot worth showing
  $("go-arrow").innerHTML = g.arrow;
  $("go-guide-main").textContent = g.main;
  $("go-guide-sub").textContent = g.sub;
  updateCounters($("go-counters"));
  const done = doneState(state);
  $("done-state").hidden = !done;
  if (done) {
    $("done-state").className = `done-state ${done.cls}`;
    $("done-state").innerHTML = done.html;
  }
  const btn = $("done-btn");
  btn.hidden = ended || Boolean(state.deed) || !task;
  btn.innerHTML = `${icons.check} Done!`;
  const summary = $("go-summary");
  summary.hidden = !ended;
  summary.href = `/s/${encodeURIComponent(mobId)}`;
  const watch = $("go-watch");
  watch.hidden = ended || !story?.watch;
  watch.href = `/live/${encodeURIComponent(mobId)}`;
  if (appearing) focusGo();
}

/**
 * While the GO screen is up, what is behind it is `inert` (no Tab, no screen reader) and the
 * map moves onto the GO screen (zone, you and your spot stay in sight).
 */
function behindGo(onGo) {
  $("view-main").closest(".participant").inert = onGo;
  placeMap(onGo);
}

// --- the clock display -------------------------------------------------------------------------

function renderClock(phase) {
  const state = store.get();
  if (!state.timeline) return;
  const doubt = state.conn ? clockNote(state.conn.clock) : "";
  const face = clockFace(state, phase, serverNow(), doubt);
  for (const el of document.querySelectorAll("[data-clock=label]")) el.textContent = face.label;
  for (const el of document.querySelectorAll("[data-clock=value]")) {
    el.textContent = face.value;
    el.classList.toggle("final", face.final);
  }
  for (const el of document.querySelectorAll("[data-clock=sub]")) el.textContent = face.sub;
}

/** The time-left pill of the GO screen ("1:52 left"); a GO that fired late (a late joiner,
 * a woken phone) also says when it started. */
function renderLate(phase) {
  const el = $("go-late");
  const state = store.get();
  const show = phase === "action" && Boolean(state.timeline);
  el.hidden = !show;
  if (!show) return;
  el.textContent = timeLeftText(state, serverNow());
}

let lastBeep = null;
let lastPhase = null;

/** Re-renders on every second boundary of the countdown (and during the final seconds' beeps). */
export function tick() {
  const state = store.get();
  const t = state.timeline;
  const phase = state.mob ? currentPhase() : null;
  if (phase) {
    renderClock(phase);
    renderTop(phase);
    if (state.go && phase === "action") renderLate(phase);
    if (state.session && phase === "countdown" && t) {
      const left = Math.ceil((t.go_at_ms - serverNow()) / 1000);
      if (left !== lastBeep && left >= 1 && left <= 3) {
        lastBeep = left;
        beep(880, 0.09, 0.3);
        vibrate(50);
      }
    }
    if (phase !== lastPhase) {
      lastPhase = phase;
      redraw();
    }
  }
  const now = serverNow();
  const msToNextSecond = t ? ((t.go_at_ms - now) % 1000 + 1000) % 1000 : 1000;
  setTimeout(tick, Math.max(40, Math.min(1000, msToNextSecond + 15)));
}

// --- the map ----------------------------------------------------------------------------------

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

function renderMap() {
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
function placeMap(onGo) {
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
function mapResized() {
  setTimeout(() => ui.map?.invalidateSize(), 60);
}
