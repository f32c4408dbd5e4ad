/**
 * Drawing the page from the store: the views (loading, error, join, main), the top bar, the
 * guide card and the zone line, the counters, the pledge lines, and the GO screen (the
 * action prompt while it runs, then a closing screen). While the GO screen is up, what is
 * behind it is `inert` (no Tab, no screen reader) and the map moves onto it. `render()`
 * runs after every change of the store (state.js) and on the countdown's tick.
 *
 * @module participant/view
 */

import { pledgeSummary } from "../growth.js";
import { icons } from "../icons.js";
import { escapeHtml, formatClock } from "../util.js";
import { renderClock, renderLate } from "./countdown.js";
import { $, keepAwake } from "./feedback.js";
import { fireGo, focusGo } from "./go.js";
import { guide, noSpotStory, zoneLine } from "./guide.js";
import { mapResized, placeMap, renderMap } from "./mapview.js";
import { chipsHtml, countersHtml, doneState } from "./model.js";
import { actionOver, currentPhase, mobId, referralCode, serverNow, store } from "./state.js";

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

export function renderTop(phase) {
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
