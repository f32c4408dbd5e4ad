// Tests for the DOM-free modules of the organizer page (pwa/js/organize/): the state, its
// rules and the kept session (state.js); the zone's numbers and words, dates, the details'
// checks and the run pane's phase box (model.js).
// Run: node --test tests/js/
process.env.TZ = "Europe/Berlin"; // before any date is made: the local-time tests assume it

import { test } from "node:test";
import assert from "node:assert/strict";

import {
  defaultGo, detailChanges, detailProblems, drawbarText, durationText, formatArea, localInputToIso,
  locateWhere, ringAreaM2, runView, toLocalInput, zoneLabel, zoneStats, zoneStatsParts, zoneSummary,
} from "../../pwa/js/organize/model.js";
import {
  createSession, deedSummary, defaultTab, emptyMobState, mergeCounters, mobWithTimeline,
  parseRoute, reviewTaskIds, setCounters, setMob, store, tabAvailable, zoneLocked,
} from "../../pwa/js/organize/state.js";

// A 0.001° square at the equator: 111.195 m a side on the server's sphere.
const SIDE_M = (6371008.8 * Math.PI) / 180 / 1000;
const square = (lon, lat, d = 0.001) => [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]];

// --- state.js: the store and its rules -------------------------------------------------------

test("the steps a mob can show, and the one it opens on", () => {
  const draft = { status: "draft" };
  const live = { status: "action" };
  assert.deepEqual(["details", "zone", "tasks", "publish", "run"].map((t) => tabAvailable(t, null)),
    [true, true, false, false, false]);
  assert.deepEqual(["tasks", "publish", "run"].map((t) => tabAvailable(t, draft)), [true, true, false]);
  assert.deepEqual(["tasks", "publish", "run"].map((t) => tabAvailable(t, live)), [true, false, true]);
  assert.equal(tabAvailable("nonsense", draft), false);
  assert.equal(defaultTab(null, 0), "details");
  assert.equal(defaultTab(draft, 0), "tasks");
  assert.equal(defaultTab(draft, 3), "publish");
  assert.equal(defaultTab({ status: "published" }, 0), "run");
});

test("routes in the hash", () => {
  assert.deepEqual(parseRoute(""), { view: "list" });
  assert.deepEqual(parseRoute("#/"), { view: "list" });
  assert.deepEqual(parseRoute("#/new"), { view: "new" });
  assert.deepEqual(parseRoute("#/mob/Ab_9-x"), { view: "mob", id: "Ab_9-x", tab: undefined });
  assert.deepEqual(parseRoute("#/mob/Ab_9-x/run"), { view: "mob", id: "Ab_9-x", tab: "run" });
  assert.deepEqual(parseRoute("#/mob/a b"), { view: "list" });
});

test("the zone of a live or closed mob is locked", () => {
  assert.deepEqual(["draft", "published", "gathering", "countdown", "action", "finished", "cancelled"]
    .map((status) => zoneLocked({ status })), [false, false, true, true, true, true, true]);
  assert.equal(zoneLocked(null), false);
});

test("counters: only numbers of the known keys replace what is known", () => {
  const before = { joined: 3, deeds_done: 1 };
  const after = mergeCounters(before, { joined: 4, in_zone: 2, deeds_done: null, other: 9 });
  assert.deepEqual(after, { joined: 4, deeds_done: 1, in_zone: 2 });
  assert.deepEqual(before, { joined: 3, deeds_done: 1 }); // not changed in place
});

test("a timeline push rewrites the mob's schedule; a phase push its status", () => {
  const mob = { id: "m", status: "published", title: "Old", action: "Wave", rehearsal: false };
  const timeline = {
    phase: "gathering", rehearsal: true, title: "New",
    gather_at_ms: Date.UTC(2025, 5, 14, 15), countdown_at_ms: Date.UTC(2025, 5, 14, 15, 59),
    go_at_ms: Date.UTC(2025, 5, 14, 16), end_at_ms: Date.UTC(2025, 5, 14, 16, 1),
  };
  const next = mobWithTimeline(mob, timeline);
  assert.equal(next.status, "gathering");
  assert.equal(next.go_at, "2025-06-14T16:00:00.000Z");
  assert.equal(next.end_at, "2025-06-14T16:01:00.000Z");
  assert.equal(next.title, "New");
  assert.equal(next.action, "Wave"); // not in the timeline: kept
  assert.equal(next.rehearsal, true);
  assert.equal(mob.status, "published"); // a new object
  const going = mobWithTimeline(next, null, "action");
  assert.equal(going.status, "action");
  assert.equal(going.timeline.phase, "action");
  assert.equal(next.timeline.phase, "gathering");
  assert.equal(mobWithTimeline({ status: "published" }, null, "countdown").timeline, undefined);
});

test("setMob keeps the mob and merges the counters it brings; listeners hear both at once", () => {
  store.set(emptyMobState());
  setCounters({ joined: 2 });
  const heard = [];
  const off = store.subscribe((s, changed) => heard.push(changed), ["mob", "counters"]);
  setMob({ id: "m", status: "draft", counters: { deeds_done: 5 } });
  setMob({ id: "m", status: "published" });
  off();
  assert.deepEqual(heard, [["mob", "counters"], ["mob"]]);
  assert.deepEqual(store.get().counters, { joined: 2, deeds_done: 5 });
  assert.equal(store.get().mob.status, "published");
  store.set(emptyMobState());
  assert.equal(store.get().mob, null);
  assert.deepEqual(store.get().tasks, { type: "FeatureCollection", features: [] });
});

test("the review queue: which tasks have a deed waiting, and why in one line", () => {
  assert.deepEqual([...reviewTaskIds([{ task: 3 }, { task: 5 }, { task: 3 }])], [3, 5]);
  assert.equal(deedSummary({ reason: "far_from_task", distance_m: 41.6, accuracy_m: 8.2 }),
    "42 m from the spot · fix ±8 m");
  assert.equal(deedSummary({ reason: "far_from_task" }), "far from the spot");
  assert.equal(deedSummary({ reason: "poor_accuracy", accuracy_m: 85 }), "poor location fix · fix ±85 m");
  assert.equal(deedSummary({ reason: "some_new_reason" }), "some new reason");
  assert.equal(deedSummary({}), "");
});

// --- model.js: the zone ----------------------------------------------------------------------

test("the area of a ring, closed or not, either way round", () => {
  const ring = square(13.4, 0);
  assert.ok(Math.abs(ringAreaM2(ring) - SIDE_M ** 2) / SIDE_M ** 2 < 1e-3, ringAreaM2(ring));
  assert.equal(ringAreaM2(ring.slice(0, -1)), ringAreaM2(ring));
  assert.equal(ringAreaM2([...ring].reverse()), ringAreaM2(ring));
  assert.equal(ringAreaM2([[0, 0], [1, 1]]), 0);
});

test("zone stats: holes are taken off, parts counted", () => {
  const outer = square(13.4, 0, 0.002);
  const hole = square(13.4005, 0.0005, 0.001);
  const withHole = zoneStats({ type: "Polygon", coordinates: [outer, hole] });
  assert.equal(withHole.holes, 1);
  assert.equal(withHole.corners, 8);
  assert.equal(withHole.parts, 1);
  assert.ok(Math.abs(withHole.areaM2 - 3 * SIDE_M ** 2) / SIDE_M ** 2 < 1e-2, withHole.areaM2);
  const two = zoneStats({ type: "MultiPolygon", coordinates: [[square(13.4, 0)], [square(13.5, 0)]] });
  assert.equal(two.parts, 2);
  assert.ok(Math.abs(two.areaM2 - 2 * SIDE_M ** 2) / SIDE_M ** 2 < 1e-2);
  assert.deepEqual(zoneStatsParts({ type: "Polygon", coordinates: [outer, hole] }),
    [formatArea(withHole.areaM2), "8 corners", "1 hole"]);
  assert.deepEqual(zoneStatsParts({ type: "MultiPolygon", coordinates: [[square(13.4, 0)], [square(13.5, 0)]] }).slice(1),
    ["8 corners", "2 parts"]);
  assert.deepEqual(zoneStatsParts({ type: "Polygon", coordinates: [[[0, 0], [0, 0], [0, 0], [0, 0]]] }), ["3 corners"]);
});

test("areas in m², ha and km²; the zone in the checklist", () => {
  assert.equal(formatArea(850.4), `${(850).toLocaleString()} m²`);
  assert.equal(formatArea(12_000), "1.2 ha");
  assert.equal(formatArea(350_000), "35.0 ha");
  assert.equal(formatArea(1_234_567), "1.23 km²");
  assert.equal(zoneSummary(null), "No zone yet");
  assert.match(zoneSummary({ type: "Polygon", coordinates: [square(13.4, 0)] }), /^Zone of 1\.2 ha$/);
  assert.match(zoneSummary({ type: "Polygon", coordinates: [square(13.4, 0, 0.002), square(13.4005, 0.0005)] }),
    /^Zone of [\d.]+ ha with 1 hole$/);
});

test("where a zone error is: given as lon/lat, or a path into the zone sent", () => {
  const geometry = { type: "Polygon", coordinates: [square(13.4, 52.5), square(13.4002, 52.5002, 0.0001)] };
  assert.deepEqual(locateWhere({ lon: 1, lat: 2 }, null), { lat: 2, lon: 1 });
  assert.deepEqual(locateWhere({ path: "coordinates[0][2]" }, geometry), { lon: 13.401, lat: 52.501 });
  assert.deepEqual(locateWhere({ path: "coordinates[0][2][1]" }, geometry), { lon: 13.401, lat: 52.501 });
  assert.deepEqual(locateWhere({ path: "coordinates[1]" }, geometry), { lon: 13.4002, lat: 52.5002 });
  assert.deepEqual(locateWhere({ path: "coordinates[7][0]" }, geometry), { lon: 13.4, lat: 52.5 }); // stops at the last index found
  assert.equal(locateWhere({ path: "coordinates[0]" }, null), null);
  assert.equal(locateWhere({ field: "zone" }, geometry), null);
  assert.equal(locateWhere(null, geometry), null);
});

test("what the drawing bar says", () => {
  assert.equal(drawbarText("Rectangle", 0, false), "Tap one corner of the box, then the opposite corner.");
  assert.equal(drawbarText("Polygon", 0, false), "Tap the map at the first corner of the zone.");
  assert.equal(drawbarText("Polygon", 0, true), "Tap the map to start another part of the zone.");
  assert.equal(drawbarText("Polygon", 1, false), "1 corner: keep tapping around the area.");
  assert.equal(drawbarText("Polygon", 2, false), "2 corners: keep tapping around the area.");
  assert.equal(drawbarText("Polygon", 4, false), "4 corners: tap the first corner or Finish to close the zone.");
  assert.equal(drawbarText("Cut", 2, true), "Tap the corners of the hole inside the zone.");
  assert.equal(drawbarText("Cut", 3, true), "Tap the first corner or Finish to cut the hole.");
});

// --- model.js: the schedule ------------------------------------------------------------------

test("datetime-local values and this browser's zone (Europe/Berlin here)", () => {
  assert.equal(localInputToIso("2025-06-14T18:00"), "2025-06-14T18:00:00+02:00");
  assert.equal(localInputToIso("2025-01-14T18:00:30.5"), "2025-01-14T18:00:30+01:00");
  assert.equal(localInputToIso(""), null);
  assert.equal(localInputToIso("not a date"), null);
  assert.equal(toLocalInput("2025-06-14T16:00:00Z"), "2025-06-14T18:00");
  assert.equal(toLocalInput(Date.UTC(2025, 0, 14, 17, 5)), "2025-01-14T18:05");
  assert.equal(zoneLabel(new Date("2025-06-14T12:00:00Z")), "Europe/Berlin (UTC+02:00)");
  assert.equal(zoneLabel(new Date("2025-01-14T12:00:00Z")), "Europe/Berlin (UTC+01:00)");
  const go = defaultGo(new Date("2025-06-14T23:30:00+02:00"));
  assert.equal(toLocalInput(go), "2025-06-15T18:00");
});

test("durations", () => {
  assert.deepEqual([45, 60, 300, 3600, 5400].map(durationText), ["45 s", "1 min", "5 min", "1 h", "1.5 h"]);
});

test("the details' checks before sending", () => {
  const now = Date.parse("2025-06-14T12:00:00Z");
  const ok = { title: "Clean", action: "Pick up", go_at: "2025-06-14T18:00:00+02:00" };
  assert.deepEqual(detailProblems(ok, null, now), []);
  assert.deepEqual(detailProblems({ title: "", action: "", go_at: null }, null, now).map(([f]) => f),
    ["title", "action", "go_at"]);
  const past = { ...ok, go_at: "2025-06-14T13:00:00+02:00" };
  assert.deepEqual(detailProblems(past, null, now), [["go_at", "GO must be in the future."]]);
  assert.deepEqual(detailProblems(past, { status: "draft" }, now).length, 1);
  assert.deepEqual(detailProblems(past, { status: "action" }, now), []); // a live mob's GO is past
});

test("the details' changes: GO as an instant, no description equals an empty one, a live mob's schedule stays", () => {
  const mob = {
    status: "draft", title: "Clean", action: "Pick up", description: null,
    go_at: "2025-06-14T16:00:00Z", duration_s: 60, rehearsal: false,
  };
  const same = { title: "Clean", action: "Pick up", description: "", go_at: "2025-06-14T18:00:00+02:00", duration_s: 60, rehearsal: false };
  assert.deepEqual(detailChanges(mob, same), {});
  const changed = { ...same, title: "Tidy", go_at: "2025-06-14T19:00:00+02:00", duration_s: 120, rehearsal: true };
  assert.deepEqual(detailChanges(mob, changed),
    { title: "Tidy", go_at: "2025-06-14T19:00:00+02:00", duration_s: 120, rehearsal: true });
  assert.deepEqual(detailChanges({ ...mob, status: "countdown" }, changed), { title: "Tidy" });
});

test("the run pane's phase box through a mob's life", () => {
  const go = Date.parse("2025-06-14T16:00:00Z");
  const timeline = {
    gather_at_ms: go - 3_600_000, countdown_at_ms: go - 60_000, go_at_ms: go, end_at_ms: go + 60_000,
  };
  const mob = { status: "published", action: "Wave", timeline };
  const before = runView(mob, {}, go - 90_000);
  assert.equal(before.phase, "gathering"); // the schedule moves on without an event
  assert.equal(before.word, "Gathering");
  assert.equal(before.label, "GO in");
  assert.equal(before.time, "1:30");
  assert.match(before.sub, /^GO .+ · Europe\/Berlin \(UTC\+02:00\)$/);
  assert.equal(before.started || before.closed, false);

  const action = runView({ ...mob, status: "action" }, {}, go + 15_000);
  assert.deepEqual([action.phase, action.word, action.label, action.time, action.sub, action.started, action.closed],
    ["action", "GO!", "Ends in", "0:45", "Wave", true, false]);

  const finished = runView(mob, { deeds_done: 1 }, go + 61_000);
  assert.deepEqual([finished.phase, finished.label, finished.time, finished.closed], ["finished", "good deed done", "1", true]);
  assert.match(finished.sub, /^Ended /);
  assert.match(finished.closing, /^This mob is over\./);
  assert.equal(runView(mob, {}, go + 61_000).label, "good deeds done");

  const cancelled = runView({ ...mob, status: "cancelled" }, {}, go - 90_000);
  assert.deepEqual([cancelled.label, cancelled.time, cancelled.sub, cancelled.started], ["Called off", "—", "Participants were told.", true]);
  assert.match(cancelled.closing, /^This mob was called off\./);
});

// --- state.js: the kept session --------------------------------------------------------------

function memoryStorage() {
  const items = new Map();
  return {
    getItem: (k) => (items.has(k) ? items.get(k) : null),
    setItem: (k, v) => items.set(k, String(v)),
    removeItem: (k) => items.delete(k),
    items,
  };
}

test("the session is kept, read back, forgotten when expired or cleared", () => {
  const storage = memoryStorage();
  let now = 1_000_000;
  const session = createSession(() => storage, () => now);
  assert.equal(session.load(), null);
  assert.equal(session.token, null);
  session.save({ token: "t1", organizer: { name: "Ada" }, expires_in_s: 60 });
  assert.equal(session.token, "t1");
  assert.deepEqual(JSON.parse(storage.items.get("goodmob.organizer")),
    { token: "t1", organizer: { name: "Ada" }, expires_at: 1_060_000 });

  const again = createSession(() => storage, () => now);
  assert.equal(again.load().organizer.name, "Ada");
  now = 1_060_001;
  assert.equal(again.load(), null); // expired: forgotten
  assert.equal(storage.items.has("goodmob.organizer"), false);

  storage.setItem("goodmob.organizer", "{not json");
  assert.equal(again.load(), null);
  session.save({ token: "t2", organizer: {} });
  session.clear();
  assert.equal(session.token, null);
  assert.equal(storage.items.size, 0);
});
