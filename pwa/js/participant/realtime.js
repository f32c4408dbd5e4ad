/**
 * What goes over the mob's socket, and waits while offline:
 *
 * - the socket (../socket.js MobConnection on `/participant`, joined with the token): the
 *   snapshot after every (re)join, the mob's events, the connection's status; a refused
 *   token ends the session (join again); the snapshot's `announcements` show what was said
 *   before, its `deeds` the verdicts of flagged deeds;
 * - location: the browser's position watch (high accuracy), reported with `report_location`
 *   (one report in flight, the newest fix wins, only when due: model.js reportDue); the ack
 *   says where the phone is against the zone and may bring a task; "Try again" after a
 *   blocked location asks again; a cancel stops the watch for good; the compass heading;
 * - the deed: "Done" goes through the IndexedDB outbox (../deedqueue.js), so a deed tapped
 *   offline is delivered later, exactly once (`confirm_deed` with the same `deed_id`); a
 *   pending deed is sent on every join and tried again every 10 s.
 *
 * @module participant/realtime
 */

import { DeedQueue } from "../deedqueue.js";
import { MobConnection } from "../socket.js";
import { armGo, beep, fireGo, unlockAudio, vibrate } from "./go.js";
import { eventPatch, locationAckPatch, reportDue, snapshotPatch } from "./model.js";
import { $, mobId, saved, scheduleRender, serverNow, store, toast } from "./state.js";

// --- the socket ------------------------------------------------------------------------------

function applySnapshot(snap) {
  const patch = snapshotPatch(store.get(), snap);
  store.set(patch);
  for (const deed of snap.deeds ?? []) {
    if (["approved", "rejected"].includes(deed.status)) queue.review(deed.deed_id, deed);
  }
  if (patch.session) saved.save(patch.session);
  if (patch.phase === "cancelled") stopLocation();
  armGo();
  reportLocation(true);
  queue.flush(mobId);
  scheduleRender();
}

function onEvent(name, data) {
  if (data?.mob && data.mob !== mobId && name !== "task_assigned") return;
  store.set(eventPatch(store.get(), name, data));
  if (name === "timeline" && data.timeline) {
    armGo();
  } else if (name === "phase") {
    if (data.phase === "action" && !store.get().go) {
      // The local timer should have fired already; this covers a lost timeline or a sleep.
      const goAt = data.at_ms ?? store.get().timeline?.go_at_ms ?? serverNow();
      fireGo({ lateMs: Math.max(0, serverNow() - goAt), via: "event" });
    }
    if (data.phase === "cancelled") {
      armGo();
      stopLocation();
    }
  } else if (name === "task_assigned") {
    toast(data.task ? "You have a new spot" : "Your spot was removed — looking for another");
  } else if (name === "deed_reviewed") {
    queue.review(data.deed_id, data).then((record) => {
      if (record) toast(data.accepted ? "The organizer approved your deed" : "The organizer reviewed your deed");
    });
  } else if (name === "announcement") {
    vibrate([80, 60, 80]);
    beep(660, 0.12, 0.25);
  }
  scheduleRender();
}

function onStatus(status, detail) {
  store.set({ connStatus: status });
  if (status === "refused") {
    // The token expired or is unknown here: join again.
    store.get().conn?.close();
    store.set({ conn: null, session: null, joinMessage: "Your place in this mob expired. Join again to take part." });
    saved.clear();
  } else if (status === "join_error") {
    store.set({ fatal: detail?.message ?? "This mob cannot be joined." });
  } else if (status === "joined") {
    queue.flush(mobId);
  }
  scheduleRender();
}

/** Opens the mob's socket with the saved token (once), and starts the location watch. */
export function connect() {
  const { conn: open, session } = store.get();
  if (open || !session?.token) return;
  const conn = new MobConnection({
    namespace: "/participant",
    auth: { token: session.token },
    mob: mobId,
    onSnapshot: applySnapshot,
    onEvent,
    onStatus,
    onClockChange: () => { armGo(); scheduleRender(); },
  });
  store.set({ conn });
  conn.connect();
  watchLocation();
}

// --- location --------------------------------------------------------------------------------

const reporting = { inflight: false, dirty: false, last: null, retryTimer: null };
let watchId; // undefined: not watching yet; null: never again (the mob is over)

function onPosition(position) {
  const { latitude: lat, longitude: lon, accuracy } = position.coords;
  store.set({
    fix: { lat, lon, accuracy_m: Math.round(accuracy * 10) / 10, at: position.timestamp },
    geoError: null,
  });
  reportLocation();
}

function onPositionError(error) {
  store.set({ geoError: error.code === error.PERMISSION_DENIED ? "denied" : "unavailable" });
}

export function watchLocation() {
  if (watchId !== undefined || !("geolocation" in navigator)) return;
  watchId = navigator.geolocation.watchPosition(onPosition, onPositionError, {
    enableHighAccuracy: true, maximumAge: 5000, timeout: 30000,
  });
}

/** "Try again" after the location was blocked: ask the browser again. */
export function retryLocation() {
  if (watchId !== undefined) navigator.geolocation.clearWatch(watchId);
  watchId = undefined;
  store.set({ geoError: null });
  scheduleRender();
  watchLocation();
}

export function stopLocation() {
  if (watchId !== undefined) navigator.geolocation?.clearWatch(watchId);
  watchId = null; // never again for this page: the mob is over
}

/** Sends the latest fix (one report in flight at a time; the newest wins). */
export async function reportLocation(force = false) {
  const { fix, conn, me, zone } = store.get();
  if (!fix || !conn?.connected || !me) return;
  if (reporting.inflight) {
    reporting.dirty = true;
    return;
  }
  if (!force && !reportDue(reporting.last, fix, zone, Date.now())) return;
  reporting.inflight = true;
  reporting.dirty = false;
  let ack = null;
  try {
    ack = await conn.call("report_location", {
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
  store.set(locationAckPatch(ack));
  clearTimeout(reporting.retryTimer);
  if (store.get().zone.problem === "implausible_speed") {
    // A jump (or a quick walk between fixes): the same fix again in a moment is plausible.
    reporting.retryTimer = setTimeout(() => reportLocation(true), 3000);
  }
}

/** The compass: the arrow turns when the heading changed by more than 4°. */
export function onOrientation(event) {
  let heading = null;
  if (Number.isFinite(event.webkitCompassHeading)) heading = event.webkitCompassHeading;
  else if (event.absolute && Number.isFinite(event.alpha)) heading = (360 - event.alpha) % 360;
  if (heading === null) return;
  const previous = store.get().heading;
  store.set({ heading });
  if (previous === null || Math.abs(previous - heading) > 4) scheduleRender();
}

// --- the deed and its outbox ---------------------------------------------------------------------

export const queue = new DeedQueue({
  send: (record) => {
    const conn = store.get().conn;
    if (!conn?.connected) return Promise.reject(new Error("offline"));
    return conn.call("confirm_deed", {
      deed_id: record.deed_id,
      task: record.task,
      lat: record.lat,
      lon: record.lon,
      accuracy_m: record.accuracy_m,
    });
  },
  onChange: (record) => {
    if (record.mob !== mobId) return;
    const patch = { deed: record };
    if (record.answer?.totals) patch.counters = { ...store.get().counters, ...record.answer.totals };
    store.set(patch);
  },
});

/** "Done!": the deed, at this fix, into the outbox (sent at once when online). */
export async function tapDone() {
  unlockAudio();
  const { deed, task, fix } = store.get();
  if (deed || !task) return;
  if (!fix) {
    toast("Waiting for your location…");
    return;
  }
  $("done-btn").disabled = true;
  vibrate(60);
  const record = await queue.add({
    mob: mobId, task: task.id, lat: fix.lat, lon: fix.lon, accuracy_m: fix.accuracy_m,
  });
  store.set({ deed: record });
}

/** The deed tapped here before (a reload, a phone that went offline). */
export async function restoreDeed() {
  store.set({ deed: (await queue.list(mobId)).at(-1) ?? null });
}

/** Every 10 s, a pending deed is tried again. */
export function keepSending() {
  setInterval(() => { if (store.get().deed?.state === "pending") queue.flush(mobId); }, 10000);
}
