/**
 * Task and navigation, without the DOM: the guide card (distance and arrow to your spot, or
 * to the zone), the zone line, and the GO prompt of a phone without a spot. One story
 * (issue 17): a spot is claimed only from inside the zone (the server's rule), so a phone
 * outside or at the edge is told to step in, and whether the walk (WALK_MPS) still fits
 * before the end. Every function takes the page's state (and the server's time), so it
 * runs under `node --test`.
 *
 * @module participant/guide
 */

import { icons } from "../icons.js";
import { bearingDeg, compassPoint, distanceM, formatDistance } from "../util.js";
import { formatSince } from "./model.js";

export const AT_SPOT_M = 12; // closer than this (plus accuracy, capped) counts as "at your spot"
export const WALK_MPS = 1.3; // a brisk walk: how long the way to the zone takes
export const DEED_MARGIN_MS = 20000; // time to find a spot and do the deed once in the zone

/** The arrow icon turned toward `bearing`, relative to the phone's compass `heading`. */
export function arrowHtml(bearing, heading) {
  return icons.arrow.replace("<svg", `<svg style="transform:rotate(${Math.round(bearing - (heading ?? 0))}deg)"`);
}

/**
 * Walking `distance` metres to the zone: how long (ms, at WALK_MPS) and whether one arrives
 * with time for the deed before the action ends (always, before the timeline is known).
 */
export function walkToZone(state, distance, now) {
  const ms = (distance / WALK_MPS) * 1000;
  const end = state.timeline?.end_at_ms;
  return { ms, canMake: !Number.isFinite(end) || now + ms + DEED_MARGIN_MS <= end };
}

export function formatWalk(ms) {
  const min = Math.round(ms / 60000);
  return min < 1 ? "under a minute on foot" : `about ${min} min on foot`;
}

/** `{cls, arrow, main, sub}` for the guide card. */
export function guide(state, now) {
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
        return { cls: "", arrow: arrowHtml(b, state.heading), main: "Step back into the zone", sub: `${label} is right at its edge` };
      }
      return { cls: "here", arrow: icons.check, main: "You're at your spot", sub: label };
    }
    return { cls: "", arrow: arrowHtml(b, state.heading), main: formatDistance(d), sub: `${compassPoint(b)} to your spot · ${label}`, bearing: b };
  }
  if (z?.problem) {
    return { cls: "off", arrow: icons.locate, main: "Hold on…", sub: "Waiting for a steady GPS fix" };
  }
  if (z?.state === "outside" && Number.isFinite(z.distance_m)) {
    // A spot is claimed only from inside the zone (the server's rule): say so, and whether
    // the walk there still fits before the end.
    const b = z.bearing_deg;
    const toward = Number.isFinite(b) ? `${compassPoint(b)} ` : "";
    const walk = walkToZone(state, z.distance_m, now);
    return { cls: "", arrow: Number.isFinite(b) ? arrowHtml(b, state.heading) : icons.pin, main: formatDistance(z.distance_m),
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

/**
 * The GO prompt of a phone without a spot: `{text, watch}`, what is true, and whether to
 * watch live instead (never "around your spot").
 */
export function noSpotStory(state, now) {
  const z = state.zone;
  if (!state.fix) {
    return state.geoError === "denied"
      ? { text: "Your location is off, so you have no spot and your deed can't be counted. You can still watch it live.", watch: true }
      : { text: "We're still finding you, so you have no spot yet.", watch: true };
  }
  if (z?.state === "outside" && Number.isFinite(z.distance_m)) {
    const walk = walkToZone(state, z.distance_m, now);
    const far = `You're ${formatDistance(z.distance_m)} from the zone (${formatWalk(walk.ms)})`;
    if (walk.canMake) return { text: `${far}: you can still make it. Step into the zone to get your spot.`, watch: false };
    const left = state.timeline ? formatSince(state.timeline.end_at_ms - now) : "";
    return { text: `${far} and it ends in ${left}: too far to make it this time. Watch it live instead.`, watch: true };
  }
  if (z?.state === "inside") return { text: "You're in the zone, but no spot is free near you.", watch: true };
  return { text: "Step into the zone to get your spot.", watch: false };
}

/** `[dot class, text]` of the zone line under the guide card. */
export function zoneLine(state) {
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
