/**
 * Location: the browser's position watch (high accuracy), reported to the server with
 * `report_location` (one report in flight at a time, the newest fix wins, only when due:
 * model.js reportDue); the ack says where the phone is against the zone and may bring a
 * task. A blocked location says so ("Try again" asks again); a cancel stops the watch for
 * good. The compass heading (deviceorientation) turns the guide's arrow.
 *
 * @module participant/location
 */

import { locationAckPatch, reportDue } from "./model.js";
import { scheduleRender, store } from "./state.js";

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
