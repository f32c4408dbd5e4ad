/**
 * The live map of a mob (/live/<id>): zone, tasks by state, crowd density cells, counters and
 * the countdown, for spectators anywhere and for a projector (big-screen mode: the ⛶ toggle
 * or `?big=1`).
 *
 * Talks to the server over the `/live` Socket.IO namespace (no account) through
 * MobConnection (socket.js): `watch_mob` gives a snapshot (again with `last_seq` after a
 * reconnect); `timeline`, `phase`, `announcement`, `stats` (with the pledge totals),
 * `density` and `tasks` (the tasks by state, pushed at most once a second) keep it current.
 * The countdown runs on the server clock estimated by ClockSync (clock.js). No individual
 * position is ever received or drawn: crowds arrive as H3 cells with counts (small counts
 * are suppressed by the server).
 *
 * Beyond the counters, GET /api/mobs/<id>/growth is read every GROWTH_REFRESH_MS: the views
 * at the top of the funnel (viewed → joined → in the zone → on a task → deeds done), the
 * cascade (top sharers by the deeds their shares led to, chosen nicknames only) and the
 * campaign the mob belongs to.
 *
 * @module live
 */

import { registerServiceWorker } from "./pwa.js";
import { MobConnection } from "./socket.js";
import {
  createMap, densityLayer, fitTo, pinSize, taskState, tasksLayer, zoneLayer,
} from "./mapstyle.js";
import { cascadeLine, funnelSteps, pledgeSummary, sharerName } from "./growth.js";
import { escapeHtml, formatClock, formatCountdown, phaseAt } from "./util.js";

const COUNTERS = ["joined", "in_zone", "matched", "deeds_done"];
/** The funnel's views, the cascade and the campaign are re-read this often. */
const GROWTH_REFRESH_MS = 10_000;
/** Sharers listed in the cascade panel. */
const TOP_SHARERS = 5;
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
    this.state = { mob: null, timeline: null, phase: null, counters: {}, tasks: null, funnel: {} };
    this.layers = { zone: null, tasks: null, density: null };
    this.fitted = false;
    this.growthTimer = null;
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
    this.ticker = setInterval(() => this.tick(), 250);
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
    const latest = snap.announcements?.at(-1); // said before this page opened
    if (latest) this.showAnnouncement(latest.text, { quiet: true });
    $("live-error").hidden = true;
    this.loadGrowth();
  }

  /** Views, cascade, pledges and campaign from the API; again every GROWTH_REFRESH_MS. */
  async loadGrowth() {
    clearTimeout(this.growthTimer);
    try {
      const response = await fetch(`/api/mobs/${encodeURIComponent(this.mobId)}/growth`, { cache: "no-store" });
      if (response.ok) {
        const growth = await response.json();
        this.state.funnel = growth.funnel ?? {};
        this.renderFunnel();
        this.setPledges(growth.pledges);
        this.setCascade(growth.cascade);
        this.setCampaign(growth.campaign);
      }
    } catch {
      // offline for a moment: the next round tries again
    }
    this.growthTimer = setTimeout(() => this.loadGrowth(), GROWTH_REFRESH_MS);
  }

  onEvent(name, data) {
    if (data?.mob && data.mob !== this.mobId) return;
    if (name === "timeline") this.setTimeline(data.timeline);
    else if (name === "phase") this.setPhase(data.phase);
    else if (name === "announcement") this.showAnnouncement(data.text);
    else if (name === "stats") {
      this.setCounters(data);
      if (data.pledges) this.setPledges(data.pledges);
    } else if (name === "density") this.setDensity(data);
    else if (name === "tasks") this.setTasks(data.tasks);
  }

  onStatus(status, detail) {
    if (this.failed) return; // not watching any more: no "Reconnecting…" behind the error
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
    this.state.phase = phase;
    this.tick();
  }

  setCounters(data) {
    const before = this.state.counters;
    const after = { ...before };
    for (const key of [...COUNTERS, "deeds_flagged"]) {
      if (typeof data[key] === "number") after[key] = data[key];
    }
    this.state.counters = after;
    this.renderFunnel(before);
  }

  /** The funnel, attention to action: live counters, views from the growth API. */
  renderFunnel(before = this.state.counters) {
    for (const step of funnelSteps(this.state.counters, this.state.funnel)) {
      const box = document.querySelector(`.funnel-step[data-key="${step.key}"]`);
      const num = $(`c-${step.key}`);
      const text = step.value.toLocaleString();
      box.querySelector(".funnel-bar i").style.width = `${Math.round(step.share * 1000) / 10}%`;
      if (num.textContent === text) continue;
      num.textContent = text;
      if (COUNTERS.includes(step.key) && before[step.key] !== undefined) flash(box);
    }
  }

  setPledges(pledges) {
    const summary = pledgeSummary(pledges);
    const box = $("live-pledges");
    box.hidden = !summary;
    if (!summary) return;
    const changed = $("live-pledges-text").textContent !== summary.text;
    $("live-pledges-text").textContent = summary.text;
    $("live-pledges-sub").textContent = summary.sub;
    if (changed) flash(box);
  }

  /** Top sharers and how far the shares went; no one who chose no nickname is named. */
  setCascade(cascade) {
    const box = $("live-cascade");
    const sharers = cascade?.sharers ?? [];
    box.hidden = !cascade || (!cascade.referred && !sharers.length);
    if (box.hidden) return;
    $("live-cascade-text").textContent = cascadeLine(cascade);
    const list = $("live-sharers");
    list.replaceChildren();
    for (const sharer of sharers.slice(0, TOP_SHARERS)) {
      const item = document.createElement("li");
      item.className = "live-sharer";
      const name = document.createElement("span");
      name.className = "live-sharer-name";
      name.textContent = sharerName(sharer);
      if (sharerName(sharer) === "Someone") name.classList.add("live-sharer-name--anon");
      const what = document.createElement("span");
      what.className = "live-sharer-what";
      const deeds = sharer.deeds_led_to;
      const further = sharer.reach - sharer.brought;
      what.textContent = `brought ${sharer.brought}${further > 0 ? ` (+${further} through them)` : ""} · ` +
        `${deeds} deed${deeds === 1 ? "" : "s"}`;
      item.append(name, what);
      list.append(item);
    }
  }

  setCampaign(campaign) {
    const link = $("live-campaign");
    link.hidden = !campaign;
    if (!campaign) return;
    link.href = `/live/c/${encodeURIComponent(campaign.id)}`;
    $("live-campaign-title").textContent = campaign.title;
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
      ? `${total} task spot${total === 1 ? "" : "s"}: ${counts.done} done · ${counts.full} closed · ${counts.open} open`
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

  showAnnouncement(text, { quiet = false } = {}) {
    if (!text) return;
    $("live-announcement-text").textContent = text;
    $("live-announcement").hidden = false;
    if (!quiet) flash($("live-announcement"));
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

  /** The mob cannot be watched: only the error shows (no map, counters nor connection). */
  fail(error) {
    this.failed = true;
    const box = $("live-error");
    const notFound = error.code === "mob_not_found" || error.code === "not_found";
    box.innerHTML = notFound
      ? '<strong>No such mob.</strong> The link may be mistyped, or the mob is not published yet. <a href="/">Find mobs near you</a>'
      : `<strong>Could not load this mob.</strong> ${escapeHtml(error.message ?? "")}`;
    box.hidden = false;
    $("live-title").textContent = notFound ? "Mob not found" : "Live map";
    document.title = `${notFound ? "Mob not found" : "Live map"} · Good Mob`;
    this.conn?.close();
    clearInterval(this.ticker);
    clearTimeout(this.growthTimer);
    showOnlyError();
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

/** Hides everything that belongs to a watched mob; the error box (#live-error) stays. */
function showOnlyError() {
  document.body.classList.add("live--error");
  for (const el of document.querySelectorAll(".live-main, #live-conn, #big-toggle")) el.hidden = true;
}

registerServiceWorker();
const mobId = mobIdFromPath(location.pathname);
if (mobId) {
  new LivePage(mobId).start();
} else {
  const box = $("live-error");
  box.innerHTML = '<strong>Which mob?</strong> Open a live map from a mob\'s link. <a href="/">Find mobs near you</a>';
  box.hidden = false;
  showOnlyError();
}
