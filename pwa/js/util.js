/**
 * Small DOM-free helpers of the pages: distances and bearings on the sphere, human-readable
 * distances and durations, the phase a timeline gives at a time. Runs under Node too
 * (tests/js/util.test.mjs).
 *
 * Coordinates are degrees (lat, lon spelled out), distances metres, times epoch ms.
 *
 * @module util
 */

const EARTH_RADIUS_M = 6371008.8;
const rad = (deg) => (deg * Math.PI) / 180;

/**
 * Great-circle distance in metres (haversine; within 0.5 % of the geodesic).
 * @example distanceM(52.5320, 13.4000, 52.5329, 13.4000) // ≈ 100
 */
export function distanceM(lat1, lon1, lat2, lon2) {
  const dLat = rad(lat2 - lat1);
  const dLon = rad(lon2 - lon1);
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/**
 * Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360).
 * @example Math.round(bearingDeg(52.53, 13.40, 52.54, 13.40)) // 0 (north)
 */
export function bearingDeg(lat1, lon1, lat2, lon2) {
  const y = Math.sin(rad(lon2 - lon1)) * Math.cos(rad(lat2));
  const x = Math.cos(rad(lat1)) * Math.sin(rad(lat2)) -
    Math.sin(rad(lat1)) * Math.cos(rad(lat2)) * Math.cos(rad(lon2 - lon1));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

const POINTS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];

/** The nearest of the eight compass points of a bearing: 44 → "NE". */
export function compassPoint(deg) {
  return POINTS[Math.round((((deg % 360) + 360) % 360) / 45) % 8];
}

/** "8 m", "350 m", "1.2 km", "12 km". */
export function formatDistance(m) {
  if (!Number.isFinite(m)) return "";
  if (m < 995) return `${Math.max(0, Math.round(m))} m`;
  if (m < 9950) return `${(m / 1000).toFixed(1)} km`;
  return `${Math.round(m / 1000)} km`;
}

/**
 * A countdown: "0:07", "12:05", "1:02:03"; ≥ 1 day "2 d 04 h". Rounds up to the second,
 * so it shows 0:00 exactly when the moment is reached.
 */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (days > 0) return `${days} d ${two(h)} h`;
  if (h > 0) return `${h}:${two(m)}:${two(s)}`;
  return `${m}:${two(s)}`;
}

/** "in 12 min", "in 2 h 5 min", "in 3 days", "now", "5 min ago" for a signed ms difference. */
export function formatRelative(ms) {
  const ago = ms < 0;
  const abs = Math.abs(ms);
  let text;
  if (abs < 45_000) return ago ? "just now" : "now";
  if (abs < 3_600_000) text = `${Math.round(abs / 60_000)} min`;
  else if (abs < 86_400_000) {
    const h = Math.floor(abs / 3_600_000);
    const m = Math.round((abs % 3_600_000) / 60_000);
    text = m && h < 10 ? `${h} h ${m} min` : `${h} h`;
  } else {
    const d = Math.round(abs / 86_400_000);
    text = d === 1 ? "1 day" : `${d} days`;
  }
  return ago ? `${text} ago` : `in ${text}`;
}

/**
 * A wall-clock time in the phone's time zone: "14:30", "Tue 14:30" within a week, else
 * "12 Mar, 14:30". `nowMs` decides what "today" is.
 */
export function formatClock(epochMs, nowMs = Date.now(), locale = undefined) {
  const when = new Date(epochMs);
  const time = when.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  const dayKey = (d) => d.toLocaleDateString(locale, { year: "numeric", month: "numeric", day: "numeric" });
  if (dayKey(when) === dayKey(new Date(nowMs))) return time;
  if (Math.abs(epochMs - nowMs) < 6 * 86_400_000) {
    return `${when.toLocaleDateString(locale, { weekday: "short" })} ${time}`;
  }
  return `${when.toLocaleDateString(locale, { day: "numeric", month: "short" })}, ${time}`;
}

const ORDER = ["draft", "published", "gathering", "countdown", "action", "finished"];

/**
 * The phase of a timeline at server time `nowMs`: the later of the server's phase and the
 * one its schedule gives (the schedule moves on at its times even if an event is late).
 * A cancelled timeline stays cancelled; a draft stays a draft.
 *
 * @param {{phase: string, gather_at_ms: number, countdown_at_ms: number, go_at_ms: number,
 *          end_at_ms: number}} timeline
 * @param {number} nowMs
 * @returns {string}
 */
export function phaseAt(timeline, nowMs) {
  const phase = timeline?.phase ?? "published";
  if (phase === "cancelled" || phase === "draft") return phase;
  let scheduled = "published";
  if (nowMs >= timeline.end_at_ms) scheduled = "finished";
  else if (nowMs >= timeline.go_at_ms) scheduled = "action";
  else if (nowMs >= timeline.countdown_at_ms) scheduled = "countdown";
  else if (nowMs >= timeline.gather_at_ms) scheduled = "gathering";
  return ORDER.indexOf(scheduled) > ORDER.indexOf(phase) ? scheduled : phase;
}

/** A random UUID (crypto.randomUUID, or RFC 4122 v4 from getRandomValues). */
export function uuid() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Escapes text for innerHTML. */
export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]
  ));
}
