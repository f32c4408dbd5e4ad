/**
 * The live map of a mob (/live/<id>): zone, tasks by state, crowd density cells, counters and
 * the countdown, for spectators anywhere and for a projector (big-screen mode: the ⛶ toggle
 * or `?big=1`).
 *
 * Talks to the server over the `/live` Socket.IO namespace (no account) through
 * MobConnection (socket.js): `watch_mob` gives a snapshot (again with `last_seq` after a
 * reconnect); `timeline`, `phase`, `announcement`, `stats` and `density` keep it current. The
 * countdown runs on the server clock estimated by ClockSync (clock.js). No individual
 * position is ever received or drawn: crowds arrive as H3 cells with counts (small counts
 * are suppressed by the server).
 *
 * @module live
 */

import { registerServiceWorker } from "/js/pwa.js";
import { MobConnection } from "/js/socket.js";
import {
  createMap, densityLayer, fitTo, pinSize, taskState, tasksLayer, zoneLayer,
} from "/js/mapstyle.js";
import { escapeHtml, formatClock, formatCountdown, phaseAt } from "/js/util.js";

const COUNTERS = ["joined", "in_zone", "matched", "deeds_done"];
/** Tasks are re-read at most this often when the counters say they changed. */
const TASK_REFRESH_MS = 2000;
const PHASE_WORDS = {
  draft: "Draft",
  published: "Upcoming",
  gathering: "Gathering",
  countdown: "Countdown",
  action: "GO!",
  finished: "Finished",
  cancelled: "Cancelled",
};

const $ = (id) => document.getElementById(id);

/** The mob id of /live/<id>. */
export function mobIdFromPath(pathname) {
  const match = pathname.match(/^\/live\/([A-Za-z0-9_-]+)\/?$/);
  return match ? match[1] : null;
}

/** [label, big time, sub line] of the countdown box in a phase. */
export function countdownText(phase, t, now, counters = {}) {
  const done = counters.deeds_done ?? 0;
  switch (phase) {
    case "published":
      return ["GO in", formatCountdown(t.go_at_ms - now), `GO ${formatClock(t.go_at_ms, now)} · gathering from ${formatClock(t.gather_at_ms, now)}`];
    case "gathering":
      return ["GO in", formatCountdown(t.go_at_ms - now), `Gathering: people walk to their spots · GO ${formatClock(t.go_at_ms, now)}`];
    case "countdown":
      return ["GO in", formatCountdown(t.go_at_ms - now), "Get ready…"];
    case "action":
      return ["Ends in", formatCountdown(t.end_at_ms - now), `Everyone acts until ${formatClock(t.end_at_ms, now)}`];
    case "finished":
      return ["Finished", done.toLocaleString(), `good deed${done === 1 ? "" : "s"} done · thank you!`];
    case "cancelled":
      return ["Cancelled", "—", "The organizer called this mob off."];
    default:
      return ["", "–:––", ""];
  }
}

class LivePage {
  constructor(mobId) {
    this.mobId = mobId;
    this.state = { mob: null, timeline: null, phase: null, counters: {}, tasks: null };
    this.layers = { zone: null, tasks: null, density: null };
    this.fitted = false;
    this.taskRefreshTimer = null;
    this.lastTaskRefresh = 0;
    this.big = new URLSearchParams(location.search).get("big") === "1";
  }

  start() {
    this.applyBig(this.big);
    $("big-toggle").addEventListener("click", () => this.toggleBig());
    this.map = createMap($("live-map"), { zoomSnap: 0.25 });
    this.map.on("zoomend", () => this.state.tasks && this.setTasks(this.state.tasks));
    const link = new URL(`/m/${this.mobId}`, location.origin);
    $("live-join-link").href = link.href;
    $("live-join-link").textContent = `${link.host}${link.pathname}`;
    this.conn = new MobConnection({
      namespace: "/live",
      mob: this.mobId,
      joinEvent: "watch_mob",
      onSnapshot: (snap) => this.applySnapshot(snap),
      onEvent: (name, data) => this.onEvent(name, data),
      onStatus: (status, detail) => this.onStatus(status, detail),
    });
    this.conn.connect();
    setInterval(() => this.tick(), 250);
    this.tick();
  }

  applySnapshot(snap) {
    this.state.mob = snap.mob;
    $("live-title").textContent = snap.mob.title;
    document.title = `${snap.mob.title} · Live · Good Mob`;
    this.drawZone(snap.mob.zone);
    this.setTimeline(snap.timeline);
    this.setPhase(snap.phase);
    this.setCounters(snap.counters ?? {});
    this.setTasks(snap.tasks);
    this.setDensity(snap.density);
    $("live-error").hidden = true;
  }

  onEvent(name, data) {
    if (data?.mob && data.mob !== this.mobId) return;
    if (name === "timeline") this.setTimeline(data.timeline);
    else if (name === "phase") this.setPhase(data.phase);
    else if (name === "announcement") this.showAnnouncement(data.text);
    else if (name === "stats") this.setCounters(data);
    else if (name === "density") this.setDensity(data);
  }

  onStatus(status, detail) {
    if (status === "joined") this.setConn("live", "Live");
    else if (status === "join_error") this.fail(detail ?? {});
    else if (status === "connecting" || status === "connected") this.setConn("connecting", "Connecting");
    else this.setConn("offline", "Reconnecting…");
  }

  setTimeline(timeline) {
    if (!timeline) return;
    this.state.timeline = timeline;
    if (timeline.phase) this.state.phase = timeline.phase;
    $("live-rehearsal").hidden = !timeline.rehearsal;
    $("live-action-text").textContent = timeline.action ?? "";
    this.tick();
  }

  setPhase(phase) {
    if (!phase) return;
    const changed = phase !== this.state.phase;
    this.state.phase = phase;
    this.tick();
    if (changed) this.scheduleTaskRefresh();
  }

  setCounters(data) {
    const before = this.state.counters;
    const after = { ...before };
    for (const key of [...COUNTERS, "deeds_flagged"]) {
      if (typeof data[key] === "number") after[key] = data[key];
    }
    this.state.counters = after;
    const top = Math.max(1, after.joined ?? 0);
    for (const key of COUNTERS) {
      const value = after[key] ?? 0;
      $(`c-${key}`).textContent = value.toLocaleString();
      const step = document.querySelector(`.funnel-step[data-key="${key}"]`);
      step.querySelector(".funnel-bar i").style.width = `${Math.min(100, (100 * value) / top)}%`;
      if (before[key] !== undefined && before[key] !== value) flash(step);
    }
    if (before.matched !== after.matched || before.deeds_done !== after.deeds_done) {
      this.scheduleTaskRefresh();
    }
  }

  setTasks(collection) {
    if (!collection) return;
    this.state.tasks = collection;
    if (this.layers.tasks) this.map.removeLayer(this.layers.tasks);
    const size = pinSize(this.map, collection.features, { max: this.big ? 30 : 22 });
    this.layers.tasks = tasksLayer(collection, { size }).addTo(this.map);
    const counts = { open: 0, full: 0, done: 0 };
    for (const f of collection.features) counts[taskState(f.properties ?? {})] += 1;
    const total = collection.features.length;
    $("live-tasks-summary").textContent = total
      ? `${total} task spot${total === 1 ? "" : "s"}: ${counts.done} done · ${counts.full} taken · ${counts.open} open`
      : "";
  }

  setDensity(density) {
    if (!density) return;
    if (this.layers.density) this.map.removeLayer(this.layers.density);
    this.layers.density = densityLayer(density.cells).addTo(this.map);
  }

  drawZone(zone) {
    if (this.layers.zone) this.map.removeLayer(this.layers.zone);
    this.layers.zone = zoneLayer(zone).addTo(this.map);
    this.layers.zone.bringToBack();
    if (!this.fitted) {
      fitTo(this.map, this.layers.zone, { padding: this.big ? 48 : 20 });
      this.fitted = true;
    }
  }

  scheduleTaskRefresh() {
    if (this.taskRefreshTimer || !this.state.mob) return;
    const wait = Math.max(0, this.lastTaskRefresh + TASK_REFRESH_MS - Date.now());
    this.taskRefreshTimer = setTimeout(async () => {
      this.taskRefreshTimer = null;
      this.lastTaskRefresh = Date.now();
      try {
        const response = await fetch(`/api/mobs/${encodeURIComponent(this.mobId)}/tasks`);
        if (response.ok) this.setTasks(await response.json());
      } catch {
        // offline for a moment: the next counter change tries again
      }
    }, wait);
  }

  showAnnouncement(text) {
    if (!text) return;
    $("live-announcement-text").textContent = text;
    $("live-announcement").hidden = false;
    flash($("live-announcement"));
  }

  /** Redraws the phase chip and the countdown from the server-clock estimate. */
  tick() {
    const { timeline } = this.state;
    const now = this.conn?.clock.serverNow() ?? Date.now();
    const phase = timeline ? phaseAt({ ...timeline, phase: this.state.phase }, now) : this.state.phase;
    const chip = $("live-phase");
    chip.dataset.phase = phase ?? "";
    chip.textContent = PHASE_WORDS[phase] ?? "…";
    document.body.dataset.phase = phase ?? "";
    $("countdown").dataset.phase = phase ?? "";
    $("live-action").hidden = phase !== "action";
    if (!timeline) return;
    const [label, time, sub] = countdownText(phase, timeline, now, this.state.counters);
    $("cd-label").textContent = label;
    $("cd-time").textContent = time;
    $("cd-sub").textContent = sub;
  }

  setConn(state, text) {
    const el = $("live-conn");
    el.dataset.state = state;
    el.querySelector(".live-conn-text").textContent = text;
  }

  fail(error) {
    const box = $("live-error");
    const notFound = error.code === "mob_not_found" || error.code === "not_found";
    box.innerHTML = notFound
      ? '<strong>No such mob.</strong> The link may be mistyped, or the mob is not published yet. <a href="/">Find mobs near you</a>'
      : `<strong>Could not load this mob.</strong> ${escapeHtml(error.message ?? "")}`;
    box.hidden = false;
    $("live-title").textContent = notFound ? "Mob not found" : "Live map";
    this.setConn("offline", "Not watching");
    this.conn?.close();
  }

  toggleBig() {
    this.applyBig(!this.big);
    const url = new URL(location.href);
    if (this.big) url.searchParams.set("big", "1");
    else url.searchParams.delete("big");
    history.replaceState(null, "", url);
    if (this.big && document.fullscreenEnabled && !document.fullscreenElement) {
      document.documentElement.requestFullscreen?.().catch(() => {});
    } else if (!this.big && document.fullscreenElement) {
      document.exitFullscreen?.().catch(() => {});
    }
  }

  applyBig(big) {
    this.big = big;
    document.body.classList.toggle("live--big", big);
    const button = $("big-toggle");
    button.setAttribute("aria-pressed", String(big));
    button.title = big ? "Leave big-screen mode" : "Big-screen mode (projector)";
    if (!this.map) return;
    setTimeout(() => {
      this.map.invalidateSize();
      if (this.layers.zone) fitTo(this.map, this.layers.zone, { padding: big ? 48 : 20 });
      if (this.state.tasks) this.setTasks(this.state.tasks);
    }, 60);
  }
}

function flash(el) {
  el.classList.remove("og-flash");
  void el.offsetWidth; // restart the animation
  el.classList.add("og-flash");
}

registerServiceWorker();
const mobId = mobIdFromPath(location.pathname);
if (mobId) {
  new LivePage(mobId).start();
} else {
  const box = $("live-error");
  box.innerHTML = '<strong>Which mob?</strong> Open a live map from a mob\'s link. <a href="/">Find mobs near you</a>';
  box.hidden = false;
}
