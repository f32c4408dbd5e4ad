// Tests for pwa/js/util.js: distances, bearings, human-readable times, the phase of a timeline.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  bearingDeg, compassPoint, distanceM, escapeHtml, formatCountdown, formatDistance,
  formatRelative, phaseAt, uuid,
} from "../../pwa/js/util.js";

test("distance and bearing on the sphere", () => {
  // 0.001° of latitude is 111.2 m everywhere.
  assert.ok(Math.abs(distanceM(52.53, 13.4, 52.531, 13.4) - 111.2) < 0.5);
  assert.equal(Math.round(bearingDeg(52.53, 13.4, 52.54, 13.4)), 0);
  assert.equal(Math.round(bearingDeg(52.53, 13.4, 52.53, 13.41)), 90);
  assert.equal(Math.round(bearingDeg(52.53, 13.4, 52.52, 13.4)), 180);
  assert.equal(compassPoint(44), "NE");
  assert.equal(compassPoint(359), "N");
  assert.equal(compassPoint(-90), "W");
});

test("distances and countdowns read well", () => {
  assert.equal(formatDistance(8.4), "8 m");
  assert.equal(formatDistance(994), "994 m");
  assert.equal(formatDistance(1234), "1.2 km");
  assert.equal(formatDistance(12_345), "12 km");
  assert.equal(formatCountdown(0), "0:00");
  assert.equal(formatCountdown(1), "0:01"); // rounds up: 0:00 only at the moment
  assert.equal(formatCountdown(61_000), "1:01");
  assert.equal(formatCountdown(3_723_000), "1:02:03");
  assert.equal(formatCountdown(2 * 86_400_000 + 4 * 3_600_000), "2 d 04 h");
  assert.equal(formatRelative(12 * 60_000), "in 12 min");
  assert.equal(formatRelative(-5 * 60_000), "5 min ago");
  assert.equal(formatRelative(3 * 86_400_000), "in 3 days");
});

test("the phase follows the schedule, never goes back, and cancelled stays", () => {
  const t = { phase: "published", gather_at_ms: 100, countdown_at_ms: 200, go_at_ms: 300, end_at_ms: 400 };
  assert.equal(phaseAt(t, 50), "published");
  assert.equal(phaseAt(t, 150), "gathering");
  assert.equal(phaseAt(t, 250), "countdown");
  assert.equal(phaseAt(t, 300), "action");
  assert.equal(phaseAt(t, 400), "finished");
  assert.equal(phaseAt({ ...t, phase: "action" }, 250), "action"); // the server is ahead
  assert.equal(phaseAt({ ...t, phase: "cancelled" }, 350), "cancelled");
});

test("uuid and escaping", () => {
  assert.match(uuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(escapeHtml(`<a href="x">'&`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
});
