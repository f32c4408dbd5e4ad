/**
 * The participant's page (/m/<id>[?ref=CODE]): join with an optional nickname, then the zone,
 * your position and accuracy, your task with distance and an arrow, the phase and a big
 * countdown; at GO the whole screen flips to the action prompt at the instant the server's
 * clock reaches go_at (clock.js fireAt, the same instant on every phone), with a colour
 * flash, a vibration and a short beep; then a big "Done" that goes through the IndexedDB
 * outbox (deedqueue.js) so a deed tapped offline is delivered later, exactly once.
 *
 * - Phases may jump (a scheduler that was down moves a mob straight to its current phase
 *   with one event): a late joiner or a phone told "action" late gets the action prompt with
 *   how long ago it started and how long is left; a phone that slept through the whole action
 *   gets no GO flash on waking, but the closing screen ("you missed the action").
 * - One story (issue 17): a spot is claimed only from inside the zone (the server's rule), so
 *   a phone outside or at the edge is told to step in, and whether the walk (WALK_MPS) still
 *   fits before the end; at GO a phone without a spot is told how far it is, whether it can
 *   still make it, or to watch live, never "around your spot". The GO screen shows the time
 *   left, the map and the way back, takes focus (Done) and makes the page behind it `inert`.
 *   A cancel stops the guiding and the location watch; a blocked location says so (icon,
 *   warning, "Try again"); a flagged deed's verdict comes as `deed_reviewed` or in the
 *   snapshot's `deeds`; the snapshot's `announcements` show what was said before.
 * - The participant token lives in localStorage under `goodmob:mob:<id>` (never in a URL);
 *   the referral code of a shared link (?ref=) is kept until the join; the share buttons
 *   send the participant's own link (with their referral code).
 * - Each page load counts one view (POST …/views with a random id kept for the day); the
 *   pledge totals come from GET …/pledges/totals, then from every `stats` event.
 * - `window.__goodmob` records the GO instant on the true clock for tests:
 *   `{firedAtMs: performance.timeOrigin + performance.now(), lateMs, via, offsetMs}`;
 *   `window.__goodmobClock` the local timer's own `{firedAtMs, lateMs}`, also when the
 *   server's `phase: action` push got there first and showed GO (`via: "event"`);
 *   `window.__goodmobState()` returns a read-only summary of the page's state (no token).
 *
 * @module participant
 */

import { clockNote } from "./clock.js";
import { api, serverNowEstimate } from "./api.js";
import { DeedQueue } from "./deedqueue.js";
import { pledgeSummary, viewClientId } from "./growth.js";
import { icons } from "./icons.js";
import { createMap, taskMarker, youMarker, zoneLayer } from "./map.js";
import { registerServiceWorker } from "./pwa.js";
import { MobConnection } from "./socket.js";
import {
  bearingDeg, compassPoint, distanceM, escapeHtml, formatClock, formatCountdown, formatDistance,
  phaseAt,
} from "./util.js";

const L = globalThis.L;
const $ = (id) => document.getElementById(id);
const mobId = decodeURIComponent(location.pathname.split("/")[2] ?? "");
const AT_SPOT_M = 12; // closer than this (plus accuracy, capped) counts as "at your spot"
const REPORT_MIN_MOVE_M = 3;
const REPORT_MAX_QUIET_MS = 15000;
const WALK_MPS = 1.3; // a brisk walk: how long the way to the zone takes
const DEED_MARGIN_MS = 20000; // time to find a spot and do the deed once in the zone

// --- saved state (localStorage) ------------------------------------------------------------

const saved = {
  key: `goodmob:mob:${mobId}`,
  refKey: `goodmob:ref:${mobId}`,
  load() {
    try { return JSON.parse(localStorage.getItem(this.key)) ?? null; } catch { return null; }
  },
  save(value) {
    try { localStorage.setItem(this.key, JSON.stringify(value)); } catch { /* private mode */ }
  },
  clear() {
    try { localStorage.removeItem(this.key); } catch { /* ignore */ }
  },
};

function referralCode() {
  const fromUrl = new URLSearchParams(location.search).get("ref");
  try {
    if (fromUrl) sessionStorage.setItem(saved.refKey, fromUrl);
    return fromUrl || sessionStorage.getItem(saved.refKey);
  } catch {
    return fromUrl;
  }
}

// --- state -----------------------------------------------------------------------------------

const state = {
  mob: null,
  timeline: null,
  phase: null,
  session: saved.load(), // {token, participant: {id, nickname, ref_code}, share_url, snapshot?}
  me: null,
  task: null,
  counters: null,
  fix: null, // {lat, lon, accuracy_m, at}
  geoError: null,
  zone: null, // {state, distance_m, bearing_deg, problem}
  conn: null,
  connStatus: "idle",
  goHandle: null,
  goVersion: null,
  go: null, // {lateMs, via} once fired
  deed: null, // this mob's latest outbox record
  announcement: null,
  announcementSeq: 0,
  heading: null,
  pledges: null, // live pledge totals (GET …/pledges/totals, then every stats event)
};

const ui = {
  map: null, zone: null, you: null, task: null, line: null, fitted: "", userMovedAt: 0,
};
const USER_MAP_PAUSE_MS = 20000; // after the user moved the map, leave it alone this long

// --- helpers ---------------------------------------------------------------------------------

/** The server's clock: ClockSync once synced, else the HTTP Date estimate (±1 s). */
function serverNow() {
  return state.conn?.clock.isSynced ? state.conn.clock.serverNow() : serverNowEstimate();
}

function currentPhase() {
  if (!state.timeline) return state.phase ?? "loading";
  const timeline = { ...state.timeline, phase: state.phase ?? state.timeline.phase };
  let phase = phaseAt(timeline, serverNow());
  // For a participant the action starts exactly when GO fires here (the local timer, or the
  // server's word), not when a render tick happens to notice the time.
  if (phase === "action" && !state.go && state.session && state.phase !== "action") phase = "countdown";
  if (state.go && ["published", "gathering", "countdown"].includes(phase)) phase = "action";
  return phase;
}

let toastTimer = null;
function toast(message) {
  const el = $("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 2600);
}

function shareUrl() {
  const code = state.session?.participant?.ref_code ?? state.me?.ref_code;
  const path = state.session?.share_url ?? `/m/${encodeURIComponent(mobId)}${code ? `?ref=${encodeURIComponent(code)}` : ""}`;
  return new URL(path, location.origin).href;
}

async function share() {
  const url = shareUrl();
  const title = state.mob?.title ?? "Good Mob";
  const text = `Join me at "${title}" — one minute of good deeds, all at the same second.`;
  if (navigator.share) {
    try {
      await navigator.share({ title, text, url });
      return;
    } catch (error) {
      if (error?.name === "AbortError") return;
    }
  }
  try {
    await navigator.clipboard.writeText(url);
    toast("Link copied — send it to a friend");
  } catch {
    window.prompt("Copy this link and send it to a friend:", url);
  }
}

// --- audio, vibration, wake lock -----------------------------------------------------------

const sound = { ctx: null };

function unlockAudio() {
  const Ctx = window.AudioContext ?? window.webkitAudioContext;
  if (!Ctx) return;
  try {
    sound.ctx ??= new Ctx();
    if (sound.ctx.state === "suspended") sound.ctx.resume();
  } catch {
    sound.ctx = null;
  }
}

function beep(frequency = 880, seconds = 0.18, volume = 0.35) {
  const ctx = sound.ctx;
  if (!ctx || ctx.state !== "running") return;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = "square";
  osc.frequency.value = frequency;
  const t = ctx.currentTime;
  gain.gain.setValueAtTime(0.0001, t);
  gain.gain.exponentialRampToValueAtTime(volume, t + 0.01);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + seconds);
  osc.connect(gain).connect(ctx.destination);
  osc.start(t);
  osc.stop(t + seconds + 0.02);
}

function vibrate(pattern) {
  try { navigator.vibrate?.(pattern); } catch { /* not allowed */ }
}

const wake = { lock: null, pending: false };

async function keepAwake(wanted) {
  if (!("wakeLock" in navigator)) return;
  if (!wanted) {
    const lock = wake.lock;
    wake.lock = null;
    lock?.release().catch(() => {});
    return;
  }
  if (wake.lock || wake.pending || document.visibilityState !== "visible") return;
  wake.pending = true;
  try {
    wake.lock = await navigator.wakeLock.request("screen");
    wake.lock.addEventListener("release", () => { wake.lock = null; });
  } catch {
    wake.lock = null; // refused (battery saver, no gesture yet): the screen may dim
  } finally {
    wake.pending = false;
  }
}

// --- GO ----------------------------------------------------------------------------------------

/**
 * Whether the action is already over: the server says so, or its clock passed the end (a
 * phone that slept through the action must not flash GO when it wakes up).
 */
function actionOver() {
  if (["finished", "cancelled"].includes(state.phase)) return true;
  const end = state.timeline?.end_at_ms;
  return Number.isFinite(end) && serverNow() >= end;
}

/** Flips the screen to the action prompt, now. Runs once per mob; false if it did not. */
function fireGo({ lateMs, via }) {
  if (state.go || actionOver()) return false;
  // Record the instant first (true clock): the tests compare phones on it.
  window.__goodmob = {
    firedAtMs: performance.timeOrigin + performance.now(),
    lateMs,
    via,
    offsetMs: state.conn?.clock.offsetMs ?? null,
  };
  state.go = { lateMs, via };
  document.body.dataset.phase = "action";
  const screen = $("go-screen");
  screen.hidden = false;
  screen.classList.remove("ended");
  screen.classList.add("flash");
  vibrate([400, 120, 400]);
  beep(1175, 0.45, 0.45);
  keepAwake(true);
  render();
  focusGo();
  return true;
}

/** Moves focus onto the GO screen: Done when there is one, else the GO word. */
function focusGo() {
  const done = $("done-btn");
  const target = !done.hidden && !done.disabled ? done : $("go-word");
  target.focus({ preventScroll: true });
}

/** Arms the local GO timer on the synced clock for the current timeline version. */
function armGo() {
  const t = state.timeline;
  const conn = state.conn;
  if (!t || !conn || state.go) return;
  const phase = state.phase ?? t.phase;
  if (["cancelled", "finished", "draft"].includes(phase)) {
    state.goHandle?.cancel();
    state.goHandle = null;
    return;
  }
  // Before the first sync the wall clock may be minutes off: wait for the estimate.
  if (!conn.clock.isSynced) return;
  const key = `${t.version}:${t.go_at_ms}`;
  if (state.goHandle && state.goVersion === key) return;
  state.goHandle?.cancel();
  state.goVersion = key;
  state.goHandle = conn.clock.fireAt(t.go_at_ms, ({ lateMs }) => {
    window.__goodmobClock = { firedAtMs: performance.timeOrigin + performance.now(), lateMs };
    if (!fireGo({ lateMs, via: "clock" })) render(); // woke up after the end: show the end
  });
}

// --- deeds -------------------------------------------------------------------------------------

const queue = new DeedQueue({
  send: (record) => {
    if (!state.conn?.connected) return Promise.reject(new Error("offline"));
    return state.conn.call("confirm_deed", {
      deed_id: record.deed_id,
      task: record.task,
      lat: record.lat,
      lon: record.lon,
      accuracy_m: record.accuracy_m,
    });
  },
  onChange: (record) => {
    if (record.mob !== mobId) return;
    state.deed = record;
    if (record.answer?.totals) state.counters = { ...state.counters, ...record.answer.totals };
    render();
  },
});

async function tapDone() {
  unlockAudio();
  if (state.deed || !state.task) return;
  const fix = state.fix;
  if (!fix) {
    toast("Waiting for your location…");
    return;
  }
  $("done-btn").disabled = true;
  vibrate(60);
  state.deed = await queue.add({
    mob: mobId, task: state.task.id, lat: fix.lat, lon: fix.lon, accuracy_m: fix.accuracy_m,
  });
  render();
}

// --- location ---------------------------------------------------------------------------------

const reporting = { inflight: false, dirty: false, last: null, retryTimer: null };

function onPosition(position) {
  const { latitude: lat, longitude: lon, accuracy } = position.coords;
  state.fix = { lat, lon, accuracy_m: Math.round(accuracy * 10) / 10, at: position.timestamp };
  state.geoError = null;
  reportLocation();
  render();
}

function onPositionError(error) {
  state.geoError = error.code === error.PERMISSION_DENIED ? "denied" : "unavailable";
  render();
}

/** "Try again" after the location was blocked: ask the browser again. */
function retryLocation() {
  if (state.watchId !== undefined) navigator.geolocation.clearWatch(state.watchId);
  state.watchId = undefined;
  state.geoError = null;
  render();
  watchLocation();
}

function stopLocation() {
  if (state.watchId !== undefined) navigator.geolocation?.clearWatch(state.watchId);
  state.watchId = null; // never again for this page: the mob is over
}

function watchLocation() {
  if (state.watchId !== undefined || !("geolocation" in navigator)) return;
  state.watchId = navigator.geolocation.watchPosition(onPosition, onPositionError, {
    enableHighAccuracy: true, maximumAge: 5000, timeout: 30000,
  });
}

function reportDue(fix) {
  const last = reporting.last;
  if (!last) return true;
  return distanceM(last.lat, last.lon, fix.lat, fix.lon) >= REPORT_MIN_MOVE_M ||
    Math.abs(last.accuracy_m - fix.accuracy_m) >= 5 ||
    Date.now() - last.sentAt >= REPORT_MAX_QUIET_MS || state.zone?.problem;
}

/** Sends the latest fix (one report in flight at a time; the newest wins). */
async function reportLocation(force = false) {
  const fix = state.fix;
  if (!fix || !state.conn?.connected || !state.me) return;
  if (reporting.inflight) {
    reporting.dirty = true;
    return;
  }
  if (!force && !reportDue(fix)) return;
  reporting.inflight = true;
  reporting.dirty = false;
  let ack = null;
  try {
    ack = await state.conn.call("report_location", {
      lat: fix.lat, lon: fix.lon, accuracy_m: fix.accuracy_m, at: Math.round(fix.at ?? Date.now()),
    });
  } catch {
    ack = null; // offline: the next fix or the reconnect sends again
  }
  reporting.inflight = false;
  if (ack && !ack.error) {
    reporting.last = { ...fix, sentAt: Date.now() };
    applyLocationAck(ack);
  }
  if (reporting.dirty) reportLocation();
}

function applyLocationAck(ack) {
  state.zone = {
    state: ack.zone,
    distance_m: ack.distance_m,
    bearing_deg: ack.bearing_deg,
    problem: ack.counted === false ? ack.reason ?? "uncertain" : null,
  };
  if (ack.task !== undefined) setTask(ack.task);
  clearTimeout(reporting.retryTimer);
  if (state.zone.problem === "implausible_speed") {
    // A jump (or a quick walk between fixes): the same fix again in a moment is plausible.
    reporting.retryTimer = setTimeout(() => reportLocation(true), 3000);
  }
  render();
}

function setTask(task) {
  const changed = (state.task?.id ?? null) !== (task?.id ?? null);
  state.task = task ?? null;
  if (changed) ui.fitted = "";
}

// --- realtime ---------------------------------------------------------------------------------

function applySnapshot(snap) {
  state.mob = snap.mob ?? state.mob;
  state.timeline = snap.timeline ?? snap.mob?.timeline ?? state.timeline;
  state.phase = snap.phase ?? state.timeline?.phase ?? state.phase;
  state.me = snap.me ?? state.me;
  setTask(snap.task ?? null);
  state.counters = snap.counters ?? state.counters;
  if (snap.me?.zone && !state.zone) state.zone = { state: snap.me.zone };
  const said = snap.announcements?.at(-1); // said before this page opened (or while away)
  if (said && (said.seq ?? 0) > state.announcementSeq) {
    state.announcement = said.text;
    state.announcementSeq = said.seq ?? 0;
  }
  for (const deed of snap.deeds ?? []) {
    if (["approved", "rejected"].includes(deed.status)) queue.review(deed.deed_id, deed);
  }
  if (state.session) {
    state.session.snapshot = {
      mob: state.mob, timeline: state.timeline, phase: state.phase, me: state.me,
      task: state.task, counters: state.counters,
    };
    saved.save(state.session);
  }
  if (state.phase === "cancelled") stopLocation();
  armGo();
  reportLocation(true);
  queue.flush(mobId);
  render();
}

function onEvent(name, data) {
  if (data?.mob && data.mob !== mobId && name !== "task_assigned") return;
  if (name === "timeline" && data.timeline) {
    state.timeline = data.timeline;
    state.phase = data.timeline.phase ?? state.phase;
    armGo();
  } else if (name === "phase") {
    state.phase = data.phase;
    if (data.phase === "action" && !state.go) {
      // The local timer should have fired already; this covers a lost timeline or a sleep.
      fireGo({ lateMs: Math.max(0, serverNow() - (data.at_ms ?? state.timeline?.go_at_ms ?? serverNow())), via: "event" });
    }
    if (data.phase === "cancelled") {
      armGo();
      stopLocation();
    }
  } else if (name === "stats") {
    const { mob: _m, seq: _s, pledges, ...counters } = data;
    state.counters = { ...state.counters, ...counters };
    if (pledges) state.pledges = pledges;
  } else if (name === "task_assigned") {
    setTask(data.task);
    toast(data.task ? "You have a new spot" : "Your spot was removed — looking for another");
  } else if (name === "deed_reviewed") {
    queue.review(data.deed_id, data).then((record) => {
      if (record) toast(data.accepted ? "The organizer approved your deed" : "The organizer reviewed your deed");
    });
  } else if (name === "announcement") {
    state.announcement = data.text;
    state.announcementSeq = Math.max(state.announcementSeq, data.seq ?? 0);
    vibrate([80, 60, 80]);
    beep(660, 0.12, 0.25);
  }
  render();
}

function onStatus(status, detail) {
  state.connStatus = status;
  if (status === "refused") {
    // The token expired or is unknown here: join again.
    state.conn?.close();
    state.conn = null;
    state.session = null;
    saved.clear();
    state.joinMessage = "Your place in this mob expired. Join again to take part.";
  } else if (status === "join_error") {
    state.fatal = detail?.message ?? "This mob cannot be joined.";
  } else if (status === "joined") {
    queue.flush(mobId);
  }
  render();
}

function connect() {
  if (state.conn || !state.session?.token) return;
  state.conn = new MobConnection({
    namespace: "/participant",
    auth: { token: state.session.token },
    mob: mobId,
    onSnapshot: applySnapshot,
    onEvent,
    onStatus,
    onClockChange: () => { armGo(); render(); },
  });
  state.conn.connect();
  watchLocation();
}

// --- join ----------------------------------------------------------------------------------------

async function join(event) {
  event.preventDefault();
  unlockAudio();
  const btn = $("join-btn");
  const nickname = $("nickname").value.trim();
  btn.disabled = true;
  btn.textContent = "Joining…";
  $("join-error").hidden = true;
  const body = {};
  if (nickname) body.nickname = nickname;
  const ref = referralCode();
  if (ref) body.ref = ref;
  try {
    let result;
    try {
      result = await api(`/api/mobs/${encodeURIComponent(mobId)}/participants`, { method: "POST", body });
    } catch (error) {
      if (error.code !== "ref_unknown") throw error;
      delete body.ref; // a stale or mistyped invitation must not keep anyone out
      result = await api(`/api/mobs/${encodeURIComponent(mobId)}/participants`, { method: "POST", body });
    }
    state.session = {
      token: result.token,
      participant: result.participant,
      share_url: result.share_url,
      expires_at: Date.now() + (result.expires_in_s ?? 0) * 1000,
    };
    state.me = { nickname: result.participant.nickname, ref_code: result.participant.ref_code, zone: null };
    state.mob = result.mob ?? state.mob;
    state.timeline = state.mob?.timeline ?? state.timeline;
    saved.save(state.session);
    state.joinMessage = null;
    connect();
    toast(`You're in, ${result.participant.nickname}!`);
  } catch (error) {
    const messages = {
      nickname_refused: "Please pick another nickname.",
      nickname_invalid: "That nickname can't be used — letters, numbers and spaces work best.",
      mob_full: "Every spot of this mob is taken. Bring your energy to the next one!",
      mob_closed: "This mob is over — it can't be joined any more.",
    };
    const el = $("join-error");
    el.textContent = error.status === 0
      ? "You're offline. Join when you have a connection again."
      : messages[error.code] ?? error.message;
    el.hidden = false;
  } finally {
    btn.disabled = false;
    btn.textContent = "Join this mob";
  }
  render();
}

// --- rendering -----------------------------------------------------------------------------------

function show(view) {
  for (const name of ["loading", "error", "join", "main"]) $(`view-${name}`).hidden = name !== view;
}

function renderClock(phase) {
  const t = state.timeline;
  if (!t) return;
  const now = serverNow();
  const left = t.go_at_ms - now;
  let label = "GO in";
  let value = formatCountdown(left);
  let sub = `at ${formatClock(t.go_at_ms, now)}`;
  if (phase === "gathering") sub += ` · ${gatheringHint()}`;
  else if (phase === "published") sub += ` · gather from ${formatClock(t.gather_at_ms, now)}`;
  if (phase === "countdown") {
    label = "Get ready";
    sub = "Everyone goes at the same second";
  } else if (phase === "action") {
    label = "Happening now";
    value = "GO";
    sub = `until ${formatClock(t.end_at_ms, now)}`;
  } else if (phase === "finished") {
    label = "It's over";
    value = "Done";
    sub = `ended ${formatClock(t.end_at_ms, now)}`;
  } else if (phase === "cancelled") {
    label = "Cancelled";
    value = "—";
    sub = "This mob was called off";
  }
  for (const el of document.querySelectorAll("[data-clock=label]")) el.textContent = label;
  for (const el of document.querySelectorAll("[data-clock=value]")) {
    el.textContent = value;
    el.classList.toggle("final", phase === "countdown" && left <= 10_000);
  }
  if (t.rehearsal && !["finished", "cancelled"].includes(phase)) sub += " · rehearsal, nothing counts";
  sub += clockDoubt(phase);
  for (const el of document.querySelectorAll("[data-clock=sub]")) el.textContent = sub;
}

/** What to do while the mob gathers: only a phone with a spot is sent to it. */
function gatheringHint() {
  if (!state.session) return "gathering now: join to get a spot";
  if (state.task) return "walk to your spot now";
  if (state.zone?.state === "outside" || state.zone?.state === "uncertain") return "walk into the zone now";
  return "gathering now";
}

/**
 * Before GO, a quiet " · timing ±N ms" when this phone's clock is not known to within ±50 ms
 * (too few good round trips, e.g. on a congested network: clock.js clockNote); else "".
 */
function clockDoubt(phase) {
  if (!state.conn || !["published", "gathering", "countdown"].includes(phase)) return "";
  const note = clockNote(state.conn.clock);
  return note ? ` · ${note}` : "";
}

function chipsHtml(phase) {
  const chips = [];
  const names = {
    published: ["Upcoming", ""], gathering: ["Gathering", "chip-soon"], countdown: ["Countdown", "chip-live"],
    action: ["Live", "chip-live"], finished: ["Finished", "chip-done"], cancelled: ["Cancelled", "chip-danger"],
  };
  const [text, cls] = names[phase] ?? ["", ""];
  if (text) chips.push(`<span class="chip ${cls}">${text}</span>`);
  if (state.timeline?.rehearsal) chips.push('<span class="chip chip-warn">Rehearsal</span>');
  return chips.join("");
}

function renderJoin(phase) {
  const mob = state.mob;
  $("join-chips").innerHTML = chipsHtml(phase);
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

function arrowHtml(bearing) {
  const heading = state.heading ?? 0;
  return icons.arrow.replace("<svg", `<svg style="transform:rotate(${Math.round(bearing - heading)}deg)"`);
}

/**
 * Walking from here to the zone: how long (ms, at WALK_MPS) and whether one arrives with
 * time for the deed before the action ends (always, before the timeline is known).
 */
function walkToZone(distanceM) {
  const ms = (distanceM / WALK_MPS) * 1000;
  const end = state.timeline?.end_at_ms;
  return { ms, canMake: !Number.isFinite(end) || serverNow() + ms + DEED_MARGIN_MS <= end };
}

function formatWalk(ms) {
  const min = Math.round(ms / 60000);
  return min < 1 ? "under a minute on foot" : `about ${min} min on foot`;
}

/** {cls, arrow, main, sub} for the guide card. */
function guide() {
  const fix = state.fix;
  const task = state.task;
  const z = state.zone;
  const label = task ? (task.label || `${task.kind ? task.kind[0].toUpperCase() + task.kind.slice(1) : "Your"} spot #${task.id}`) : "";
  if (!fix) {
    if (state.geoError === "denied") {
      return { cls: "off", arrow: icons.locationOff, main: "Location is off",
        sub: "No spot and no counted deed without it" };
    }
    return { cls: "off", arrow: icons.locate, main: "Finding you…", sub: "Step outside for a better GPS fix." };
  }
  if (task) {
    const d = distanceM(fix.lat, fix.lon, task.lat, task.lon);
    const b = bearingDeg(fix.lat, fix.lon, task.lat, task.lon);
    if (d <= AT_SPOT_M + Math.min(fix.accuracy_m, 15)) {
      if (z?.state === "outside") {
        return { cls: "", arrow: arrowHtml(b), main: "Step back into the zone", sub: `${label} is right at its edge` };
      }
      return { cls: "here", arrow: icons.check, main: "You're at your spot", sub: label };
    }
    return { cls: "", arrow: arrowHtml(b), main: formatDistance(d), sub: `${compassPoint(b)} to your spot · ${label}`, bearing: b };
  }
  if (z?.problem) {
    return { cls: "off", arrow: icons.locate, main: "Hold on…", sub: "Waiting for a steady GPS fix" };
  }
  if (z?.state === "outside" && Number.isFinite(z.distance_m)) {
    // A spot is claimed only from inside the zone (the server's rule): say so, and whether
    // the walk there still fits before the end.
    const b = z.bearing_deg;
    const toward = Number.isFinite(b) ? `${compassPoint(b)} ` : "";
    const walk = walkToZone(z.distance_m);
    return { cls: "", arrow: Number.isFinite(b) ? arrowHtml(b) : icons.pin, main: formatDistance(z.distance_m),
      sub: walk.canMake
        ? `${toward}to the zone, ${formatWalk(walk.ms)}: step in to get your spot`
        : `${toward}to the zone, ${formatWalk(walk.ms)}: too far to make it before the end` };
  }
  if (z?.state === "uncertain") {
    return { cls: "", arrow: icons.locate, main: "At the edge of the zone", sub: "Step into the zone to get your spot" };
  }
  if (z?.state === "inside") {
    return { cls: "here", arrow: icons.check, main: "You're in the zone", sub: "Waiting for a free spot…" };
  }
  return { cls: "off", arrow: icons.locate, main: "Checking your position…", sub: "" };
}

/** The GO prompt of a phone without a spot: what is true, and whether to watch instead. */
function noSpotStory() {
  const z = state.zone;
  if (!state.fix) {
    return state.geoError === "denied"
      ? { text: "Your location is off, so you have no spot and your deed can't be counted. You can still watch it live.", watch: true }
      : { text: "We're still finding you, so you have no spot yet.", watch: true };
  }
  if (z?.state === "outside" && Number.isFinite(z.distance_m)) {
    const walk = walkToZone(z.distance_m);
    const far = `You're ${formatDistance(z.distance_m)} from the zone (${formatWalk(walk.ms)})`;
    if (walk.canMake) return { text: `${far}: you can still make it. Step into the zone to get your spot.`, watch: false };
    const left = state.timeline ? formatSince(state.timeline.end_at_ms - serverNow()) : "";
    return { text: `${far} and it ends in ${left}: too far to make it this time. Watch it live instead.`, watch: true };
  }
  if (z?.state === "inside") return { text: "You're in the zone, but no spot is free near you.", watch: true };
  return { text: "Step into the zone to get your spot.", watch: false };
}

function zoneLine() {
  const z = state.zone;
  const acc = state.fix ? ` (±${Math.round(state.fix.accuracy_m)} m)` : "";
  if (state.geoError === "denied" && !state.fix) return ["bad", "Location blocked — you can't be counted"];
  if (!state.fix) return ["", "Waiting for your location"];
  if (z?.problem === "poor_accuracy") return ["warn", `GPS too imprecise${acc} — try under open sky`];
  if (z?.problem === "implausible_speed") return ["warn", "Your position jumped — waiting for a steady fix"];
  if (z?.state === "inside") return ["ok", `You're in the zone${acc}`];
  if (z?.state === "uncertain") return ["warn", `Right at the edge of the zone${acc}`];
  if (z?.state === "outside") return ["warn", `Outside the zone${acc}`];
  return ["", `Located${acc}`];
}

function countersHtml() {
  const c = state.counters ?? {};
  const done = state.timeline?.rehearsal ? c.rehearsal_deeds ?? c.deeds_done : c.deeds_done;
  const cells = [
    ["joined", c.joined, "joined"],
    ["in_zone", c.in_zone, "in the zone"],
    ["deeds_done", done, state.timeline?.rehearsal ? "tries" : "deeds done"],
  ];
  return cells.map(([key, value, label]) =>
    `<div class="counter" data-counter="${key}"><span class="counter-value">${Number.isFinite(value) ? value : "–"}</span><span class="counter-label">${label}</span></div>`).join("");
}

function updateCounters(container) {
  const html = countersHtml();
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
  const g = guide();
  const arrow = $("guide-arrow");
  arrow.className = `arrow ${g.cls}`;
  if (arrow.dataset.html !== g.arrow) {
    arrow.innerHTML = g.arrow;
    arrow.dataset.html = g.arrow;
  }
  $("guide-main").textContent = g.main;
  $("guide-sub").textContent = g.sub;
  const [dot, text] = zoneLine();
  $("zone-dot").className = `dot ${dot}`;
  const nick = state.me?.nickname ?? state.session?.participant?.nickname;
  $("zone-text").textContent = nick ? `${text} · you're ${nick}` : text;
  updateCounters($("counters"));
}

function doneStateHtml() {
  const deed = state.deed;
  if (!deed) return null;
  if (deed.state === "pending") {
    const offline = !state.conn?.connected;
    return {
      cls: "pending",
      html: `${offline ? icons.offline : icons.clock}<span>${offline
        ? "Saved on your phone. It will be sent as soon as you're back online."
        : "Sending your deed…"}</span>`,
    };
  }
  const answer = deed.answer ?? {};
  if (answer.status === "approved") {
    return { cls: "", html: `${icons.check}<span>The organizer approved your deed: it counts! Thank you${state.me?.nickname ? `, ${escapeHtml(state.me.nickname)}` : ""}.</span>` };
  }
  if (answer.status === "rejected") {
    return { cls: "pending", html: `${icons.alert}<span>The organizer checked your deed and it wasn't counted this time. Thank you for taking part.</span>` };
  }
  if (answer.accepted) {
    return { cls: "", html: `${icons.check}<span>Counted! Thank you${state.me?.nickname ? `, ${escapeHtml(state.me.nickname)}` : ""}.</span>` };
  }
  if (answer.status === "flagged") {
    const far = answer.reason === "far_from_task" ? " (you seemed far from your spot)" : "";
    return { cls: "", html: `${icons.check}<span>Thanks! The organizer will check this one${far}.</span>` };
  }
  const reasons = {
    not_action_phase: "That tap came outside the action time, so it wasn't counted.",
    not_your_task: "That spot isn't yours any more, so it wasn't counted.",
  };
  return { cls: "pending", html: `${icons.alert}<span>${escapeHtml(reasons[answer.reason] ?? answer.error?.message ?? "It couldn't be counted.")}</span>` };
}

/** "12 s", "2 min 5 s", "1 h 4 min" for a duration in ms. */
function formatSince(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min${total % 60 ? ` ${total % 60} s` : ""}`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}

/** The time-left pill of the GO screen ("1:52 left"); a GO that fired late (a late joiner,
 * a woken phone) also says when it started. */
function renderLate(phase) {
  const el = $("go-late");
  const t = state.timeline;
  const show = phase === "action" && Boolean(t);
  el.hidden = !show;
  if (!show) return;
  const now = serverNow();
  const left = `${formatCountdown(t.end_at_ms - now)} left`;
  el.textContent = (state.go?.lateMs ?? 0) >= 1500 ? `started ${formatSince(now - t.go_at_ms)} ago · ${left}` : left;
}

function renderPledges() {
  const summary = pledgeSummary(state.pledges);
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
  const task = state.task;
  const story = task ? null : noSpotStory();
  const prompt = story?.text ?? (task.prompt || state.timeline?.action || state.mob?.action || "");
  const tookPart = Boolean(state.go || state.deed);
  const endedAt = state.timeline ? formatClock(state.timeline.end_at_ms, serverNow()) : "";
  $("go-action").textContent = !ended
    ? prompt
    : tookPart
      ? "Thank you for being part of it."
      : `It ended${endedAt ? ` at ${endedAt}` : ""}, so you missed the action this time. Thank you for joining!`;
  $("go-action").classList.toggle("go-action--small", (ended && !tookPart) || Boolean(story && !ended));
  const g = guide();
  $("go-task").hidden = ended || Boolean(story?.watch); // no way to a spot worth showing
  $("go-arrow").innerHTML = g.arrow;
  $("go-guide-main").textContent = g.main;
  $("go-guide-sub").textContent = g.sub;
  updateCounters($("go-counters"));
  const done = doneStateHtml();
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
  const map = $("map");
  const slot = $("go-map-slot");
  const there = map.parentElement === slot;
  if (onGo === there) return;
  if (onGo) slot.append(map);
  else $("sheet").before(map);
  ui.fitted = "";
  setTimeout(() => { ui.map?.invalidateSize(); if (ui.map) fitMap(); }, 60);
}

function renderTop(phase) {
  $("top-title").textContent = state.mob?.title ?? "Good Mob";
  document.title = state.mob ? `${state.mob.title} — Good Mob` : "Good Mob";
  const joined = Boolean(state.session);
  $("share-btn").hidden = !joined || phase === "cancelled";
  const labels = {
    offline: "● offline", disconnected: "● reconnecting…", connecting: "● connecting…", refused: "",
  };
  $("conn").textContent = joined ? labels[state.connStatus] ?? "" : "";
  document.body.dataset.phase = phase;
  const dark = phase === "countdown" && Boolean(state.session);
  if (document.body.classList.contains("phase-countdown") !== dark) {
    document.body.classList.toggle("phase-countdown", dark);
    setTimeout(() => ui.map?.invalidateSize(), 60); // the map's height changed
  }
  keepAwake(joined && ["countdown", "action"].includes(phase));
}

function render() {
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

// --- map ----------------------------------------------------------------------------------------

function renderMap() {
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
  const key = `${state.fix ? 1 : 0}:${state.task?.id ?? ""}`;
  const inner = ui.map.getBounds().pad(-0.12);
  const outOfView = [state.fix, state.task].some((p) => p && !inner.contains([p.lat, p.lon]));
  if (ui.fitted === key && !outOfView) return;
  ui.fitted = key;
  let bounds = ui.zone.getBounds();
  if (state.fix) bounds = bounds.extend([state.fix.lat, state.fix.lon]);
  if (state.task && state.fix) {
    bounds = L.latLngBounds([[state.fix.lat, state.fix.lon], [state.task.lat, state.task.lon]]).pad(0.6);
  }
  // Room at the top for the pin's head, at the bottom for the sheet's rounded edge.
  ui.map.fitBounds(bounds, { paddingTopLeft: [28, 52], paddingBottomRight: [28, 48], maxZoom: 18 });
}

// --- ticking --------------------------------------------------------------------------------------

/** Re-renders on every second boundary of the countdown (and during the final seconds' beeps). */
function tick() {
  const t = state.timeline;
  const phase = state.mob ? currentPhase() : null;
  if (phase) {
    renderClock(phase);
    renderTop(phase);
    if (state.go && phase === "action") renderLate(phase);
    if (state.session && phase === "countdown" && t) {
      const left = Math.ceil((t.go_at_ms - serverNow()) / 1000);
      if (left !== state.lastBeep && left >= 1 && left <= 3) {
        state.lastBeep = left;
        beep(880, 0.09, 0.3);
        vibrate(50);
      }
    }
    if (phase !== state.lastPhase) {
      state.lastPhase = phase;
      render();
    }
  }
  const now = serverNow();
  const msToNextSecond = t ? ((t.go_at_ms - now) % 1000 + 1000) % 1000 : 1000;
  setTimeout(tick, Math.max(40, Math.min(1000, msToNextSecond + 15)));
}

function onOrientation(event) {
  let heading = null;
  if (Number.isFinite(event.webkitCompassHeading)) heading = event.webkitCompassHeading;
  else if (event.absolute && Number.isFinite(event.alpha)) heading = (360 - event.alpha) % 360;
  if (heading === null) return;
  const previous = state.heading;
  state.heading = heading;
  if (previous === null || Math.abs(previous - heading) > 4) render();
}

// --- start ---------------------------------------------------------------------------------------

let viewCounted = false;

/** Counts this page load as one view of the mob (the funnel's first step); once per load. */
function countView() {
  if (viewCounted) return;
  viewCounted = true;
  let storage = null;
  try { storage = localStorage; } catch { /* blocked: a fresh id */ }
  api(`/api/mobs/${encodeURIComponent(mobId)}/views`, {
    method: "POST", body: { client_id: viewClientId(storage) },
  }).catch(() => { /* offline or refused: a view is not worth a retry */ });
}

/** The pledge totals so far (then every stats event brings them). */
async function loadPledges() {
  try {
    state.pledges ??= await api(`/api/mobs/${encodeURIComponent(mobId)}/pledges/totals`);
    render();
  } catch { /* offline: shown once stats arrive */ }
}

async function loadMob() {
  try {
    const mob = await api(`/api/mobs/${encodeURIComponent(mobId)}`);
    state.mob = mob;
    state.timeline ??= mob.timeline;
    state.phase ??= mob.status;
    state.counters ??= mob.counters;
    countView();
    loadPledges();
  } catch (error) {
    const cached = state.session?.snapshot;
    if (error.status === 0 && cached?.mob) {
      Object.assign(state, {
        mob: cached.mob, timeline: cached.timeline, phase: cached.phase, me: cached.me,
        counters: cached.counters,
      });
      setTask(cached.task);
    } else if (error.status === 404) {
      state.fatal = "We couldn't find this mob. The link may be mistyped, or the mob isn't published yet.";
    } else if (error.status === 0) {
      state.fatal = "You're offline and this mob isn't saved on this phone yet. Try again when you have a connection.";
    } else {
      state.fatal = error.message;
    }
  }
  render();
}

async function init() {
  $("back-link").innerHTML = icons.back;
  $("go-back").innerHTML = icons.back;
  $("geo-warning").insertAdjacentHTML("afterbegin", icons.locationOff);
  $("geo-retry").addEventListener("click", retryLocation);
  $("share-btn").innerHTML = `${icons.share}<span>Share</span>`;
  $("share-big").innerHTML = `${icons.share} Bring a friend`;
  $("go-share").innerHTML = `${icons.share} Share the moment`;
  for (const id of ["share-btn", "share-big", "go-share"]) $(id).addEventListener("click", share);
  $("join-form").addEventListener("submit", join);
  $("done-btn").addEventListener("click", tapDone);
  document.addEventListener("pointerdown", unlockAudio, { passive: true });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") render();
  });
  $("go-screen").addEventListener("animationend", () => $("go-screen").classList.remove("flash"));
  window.addEventListener("deviceorientationabsolute", onOrientation);
  window.addEventListener("deviceorientation", onOrientation);
  if (!mobId) {
    state.fatal = "This link is missing the mob's id.";
    render();
    return;
  }
  referralCode();
  state.deed = (await queue.list(mobId)).at(-1) ?? null;
  const loading = loadMob();
  if (state.session?.token) connect();
  else {
    try {
      const permission = await navigator.permissions?.query({ name: "geolocation" });
      state.geoPermission = permission?.state ?? null;
      if (permission?.state === "granted") watchLocation(); // show the way to the zone already
    } catch { /* ask after joining */ }
  }
  await loading;
  setInterval(() => { if (state.deed?.state === "pending") queue.flush(mobId); }, 10000);
  tick();
  registerServiceWorker();
}

/**
 * A read-only view of the page's state for tests and debugging (no token in it).
 * @returns {object}
 */
window.__goodmobState = () => ({
  mob: mobId,
  phase: state.mob ? currentPhase() : "loading",
  serverPhase: state.phase,
  joined: Boolean(state.session),
  nickname: state.me?.nickname ?? state.session?.participant?.nickname ?? null,
  refCode: state.me?.ref_code ?? state.session?.participant?.ref_code ?? null,
  shareUrl: state.session ? shareUrl() : null,
  task: state.task,
  zone: state.zone,
  fix: state.fix,
  geoError: state.geoError,
  counters: state.counters,
  deed: state.deed && { deed_id: state.deed.deed_id, state: state.deed.state, answer: state.deed.answer },
  connection: state.connStatus,
  clock: state.conn ? { synced: state.conn.clock.isSynced, offsetMs: state.conn.clock.offsetMs } : null,
  go: state.go,
  pledges: state.pledges,
});

init();
