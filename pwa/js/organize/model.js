/**
 * The organizer page's rules and words that need no DOM (tests/js/organize.test.mjs):
 * - the zone: its area as the server computes it, corners, holes and parts, where a zone
 *   error points, the drawing bar's words and what to do about each zone error;
 * - the schedule: `datetime-local` values in this browser's zone, durations, the details
 *   form's checks and changes, and what the run pane's phase box shows at a moment.
 *
 * @module organize/model
 */

import { formatClock, formatCountdown, phaseAt } from "../util.js";
import { CLOSED_STATUSES, STATUS_WORDS, isLive } from "./state.js";

// --- the zone --------------------------------------------------------------------------------

const EARTH_RADIUS_M = 6371008.8;

/** Unsigned spherical area (m²) of a closed [lon, lat] ring (as the server computes it). */
export function ringAreaM2(ring) {
  const pts = ring.length > 1 && ring[0][0] === ring.at(-1)[0] && ring[0][1] === ring.at(-1)[1]
    ? ring.slice(0, -1) : ring;
  const n = pts.length;
  if (n < 3) return 0;
  const rad = Math.PI / 180;
  const lam = pts.map((p) => (p[0] - pts[0][0]) * rad);
  const sin = pts.map((p) => Math.sin(p[1] * rad));
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += (lam[(i + 1) % n] - lam[(i - 1 + n) % n]) * (sin[i] - sin[0]);
  }
  return (Math.abs(total) * EARTH_RADIUS_M ** 2) / 2;
}

/** Area (m²), corners and holes of a Polygon/MultiPolygon geometry. */
export function zoneStats(geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  let area = 0;
  let corners = 0;
  let holes = 0;
  for (const rings of polygons) {
    rings.forEach((ring, i) => {
      area += (i === 0 ? 1 : -1) * ringAreaM2(ring);
      corners += Math.max(0, ring.length - 1);
      if (i > 0) holes += 1;
    });
  }
  return { areaM2: Math.max(0, area), corners, holes, parts: polygons.length };
}

/** "850 m²", "1.2 ha", "0.35 km²". */
export function formatArea(m2) {
  if (m2 < 10_000) return `${Math.round(m2).toLocaleString()} m²`;
  if (m2 < 1_000_000) return `${(m2 / 10_000).toFixed(1)} ha`;
  return `${(m2 / 1_000_000).toFixed(2)} km²`;
}

/** The parts of the zone line under the map: "1.2 ha · 5 corners · 1 hole · 2 parts". */
export function zoneStatsParts(geometry) {
  const s = zoneStats(geometry);
  const parts = s.areaM2 >= 1 ? [formatArea(s.areaM2), `${s.corners} corners`] : [`${s.corners} corners`];
  if (s.holes) parts.push(`${s.holes} hole${s.holes === 1 ? "" : "s"}`);
  if (s.parts > 1) parts.push(`${s.parts} parts`);
  return parts;
}

/** The zone in the publish checklist: "Zone of 1.2 ha with 1 hole". */
export function zoneSummary(zone) {
  if (!zone) return "No zone yet";
  const s = zoneStats(zone);
  return `Zone of ${formatArea(s.areaM2)}${s.holes ? ` with ${s.holes} hole${s.holes === 1 ? "" : "s"}` : ""}`;
}

/**
 * Where a zone error is: `where` = {lon, lat} as given, or a JSON path
 * ("coordinates[0][3][1]") resolved in the geometry that was sent (a ring → its first corner).
 * @returns {{lat: number, lon: number} | null}
 */
export function locateWhere(where, geometry) {
  if (!where) return null;
  if (Number.isFinite(where.lat) && Number.isFinite(where.lon)) return { lat: where.lat, lon: where.lon };
  if (typeof where.path !== "string" || !geometry) return null;
  let node = geometry.coordinates;
  for (const [, index] of where.path.matchAll(/\[(\d+)\]/g)) {
    if (!Array.isArray(node) || !Array.isArray(node[Number(index)])) break;
    node = node[Number(index)];
  }
  while (Array.isArray(node) && Array.isArray(node[0])) node = node[0];
  if (Array.isArray(node) && Number.isFinite(node[0]) && Number.isFinite(node[1])) {
    return { lon: node[0], lat: node[1] };
  }
  return null;
}

/** What the drawing bar says while drawing `shape` with `vertices` corners placed. */
export function drawbarText(shape, vertices, hasParts) {
  if (shape === "Rectangle") return "Tap one corner of the box, then the opposite corner.";
  if (shape === "Cut") return vertices < 3 ? "Tap the corners of the hole inside the zone." : "Tap the first corner or Finish to cut the hole.";
  if (vertices === 0) return hasParts ? "Tap the map to start another part of the zone." : "Tap the map at the first corner of the zone.";
  if (vertices < 3) return `${vertices} corner${vertices === 1 ? "" : "s"}: keep tapping around the area.`;
  return `${vertices} corners: tap the first corner or Finish to close the zone.`;
}

/** What to do about a zone error, in the organizer's words (the server's message follows). */
export const ZONE_HINTS = {
  zone_self_intersects: "The zone's edges cross at the red mark. Use Corners to drag a corner so no two edges cross.",
  zone_hole_outside_shell: "A hole lies outside the zone. Clear it and cut the hole inside the zone.",
  zone_nested_rings: "Two parts of the zone lie inside each other. Remove one of them.",
  zone_interior_disconnected: "The holes cut the zone into pieces. Make the holes smaller or apart.",
  zone_duplicate_rings: "The same shape was drawn twice. Remove one copy.",
  zone_too_large: "The zone is too large. Draw a smaller area.",
  zone_too_small: "The zone is too small for a mob. Draw a larger area.",
  zone_too_many_vertices: "The zone has too many corners. Draw it with fewer.",
  zone_crosses_antimeridian: "The zone crosses the 180° meridian. Draw one part on each side.",
  tasks_outside_zone: "Some task spots (in red) would lie outside the new zone.",
};

// --- the schedule ----------------------------------------------------------------------------

/** The details form's fields, as the API names them. */
export const DETAIL_FIELDS = ["title", "action", "description", "go_at", "duration_s", "rehearsal"];

/**
 * A `datetime-local` value ("2025-06-14T18:00") as ISO 8601 with this browser's offset
 * ("2025-06-14T18:00:00+02:00"), the offset being the one in force at that local time.
 */
export function localInputToIso(value) {
  if (!value) return null;
  const base = value.length === 16 ? `${value}:00` : value.slice(0, 19);
  const date = new Date(base);
  if (Number.isNaN(date.getTime())) return null;
  const minutes = -date.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  const pad = (n) => String(n).padStart(2, "0");
  return `${base}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** An instant (ISO string or epoch ms) as a `datetime-local` value in this browser's zone. */
export function toLocalInput(when) {
  const d = new Date(when);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** This browser's time zone as "Europe/Berlin (UTC+02:00)" at the given instant. */
export function zoneLabel(at = new Date()) {
  const minutes = -at.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "−";
  const abs = Math.abs(minutes);
  const offset = `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return name ? `${name} (${offset})` : offset;
}

/** A default GO for a new mob: the day after `now` at 18:00 local time. */
export function defaultGo(now = new Date()) {
  const d = new Date(now);
  d.setDate(d.getDate() + 1);
  d.setHours(18, 0, 0, 0);
  return d;
}

/** "45 s", "5 min", "1.5 h". */
export function durationText(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(s % 3600 ? 1 : 0)} h`;
}

/** What is wrong with the details form before it is sent: [[field, message]], empty if fine. */
export function detailProblems(details, mob, now = Date.now()) {
  const problems = [];
  if (!details.title) problems.push(["title", "Give the mob a title."]);
  if (!details.action) problems.push(["action", "Say what everyone does at GO."]);
  if (!details.go_at) problems.push(["go_at", "Pick the day and time of GO."]);
  else if (new Date(details.go_at).getTime() <= now && (!mob || mob.status === "draft")) {
    problems.push(["go_at", "GO must be in the future."]);
  }
  return problems;
}

/**
 * The fields of the form that differ from the mob (GO compared as an instant; an empty
 * description equals none). A live mob's schedule and rehearsal flag are not sent.
 */
export function detailChanges(mob, details) {
  const changes = {};
  for (const key of DETAIL_FIELDS) {
    const before = key === "go_at" ? new Date(mob.go_at).getTime() : mob[key];
    const after = key === "go_at" ? new Date(details.go_at).getTime() : details[key];
    if (before !== after && !(key === "description" && !before && !after)) changes[key] = details[key];
  }
  if (isLive(mob)) {
    delete changes.go_at;
    delete changes.duration_s;
    delete changes.rehearsal;
  }
  return changes;
}

/**
 * The run pane's phase box for a published mob (with its `timeline`) at `now` (server
 * clock): the phase, its word, the big label and time, the line under them, whether the run
 * started or is closed, and the closing words.
 */
export function runView(mob, counters, now) {
  const t = mob.timeline;
  const phase = phaseAt({ ...t, phase: mob.status }, now);
  let label = "GO in";
  let time = formatCountdown(t.go_at_ms - now);
  let sub = `GO ${formatClock(t.go_at_ms, now)} · ${zoneLabel(new Date(t.go_at_ms))}`;
  if (phase === "action") {
    label = "Ends in";
    time = formatCountdown(t.end_at_ms - now);
    sub = mob.action;
  } else if (phase === "finished") {
    const done = counters.deeds_done ?? 0;
    label = `good deed${done === 1 ? "" : "s"} done`;
    time = done.toLocaleString();
    sub = `Ended ${formatClock(t.end_at_ms, now)}`;
  } else if (phase === "cancelled") {
    label = "Called off";
    time = "—";
    sub = "Participants were told.";
  }
  const closed = CLOSED_STATUSES.includes(phase);
  let closing = "";
  if (closed) {
    closing = phase === "finished"
      ? "This mob is over. Thank everyone with its summary: people, deeds and the map, no one's position."
      : "This mob was called off. Its summary keeps what happened until then.";
  }
  return {
    phase,
    word: STATUS_WORDS[phase] ?? phase,
    label,
    time,
    sub,
    closed,
    started: ["action", ...CLOSED_STATUSES].includes(phase),
    closing,
  };
}
