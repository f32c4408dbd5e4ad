// Tests for the participant page's DOM-free module, pwa/js/participant/model.js: the phase
// shown, the clock card, the deed's state, when to report, the patches of a join, a snapshot
// and an event; the guide card, the walk to the zone, the GO prompt without a spot, the zone
// line. Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";

import { icons } from "../../pwa/js/icons.js";
import {
  AT_SPOT_M, DEED_MARGIN_MS, WALK_MPS, actionOver, arrowHtml, chipsHtml, clockFace, countersHtml,
  currentPhase, doneState, eventPatch, formatSince, formatWalk, gatheringHint, guide, initialState,
  joinErrorText, joinPatch, locationAckPatch, noSpotStory, reportDue, sharePath, snapshotPatch,
  timeLeftText, walkToZone, zoneLine,
} from "../../pwa/js/participant/model.js";
import { createStore } from "../../pwa/js/store.js";

const GO = 1_000_000_000;
const TIMELINE = {
  version: 1, phase: "published", gather_at_ms: GO - 300_000, countdown_at_ms: GO - 60_000,
  go_at_ms: GO, end_at_ms: GO + 120_000,
};
const SESSION = { token: "t", participant: { id: 1, nickname: "Sam", ref_code: "abc" } };
const state = (extra = {}) => ({ ...initialState(), mob: { title: "M" }, timeline: TIMELINE, ...extra });
// 0.0001° of latitude is 11.1 m.
const FIX = { lat: 52.53, lon: 13.4, accuracy_m: 8 };
const north = (m) => ({ ...FIX, lat: FIX.lat + m / 111_195 });

test("the phase shown follows the schedule, and the action starts when GO fires here", () => {
  assert.equal(currentPhase(initialState(), GO), "loading");
  assert.equal(currentPhase({ ...initialState(), phase: "published" }, GO), "published");
  assert.equal(currentPhase(state(), GO - 200_000), "gathering");
  assert.equal(currentPhase(state(), GO - 1), "countdown");
  // Joined and past go_at without a GO here: still the countdown until the timer fires.
  assert.equal(currentPhase(state({ session: SESSION }), GO + 5), "countdown");
  assert.equal(currentPhase(state({ session: SESSION, go: { lateMs: 0, via: "clock" } }), GO + 5), "action");
  assert.equal(currentPhase(state({ session: SESSION, phase: "action" }), GO + 5), "action");
  assert.equal(currentPhase(state(), GO + 5), "action"); // not joined: the schedule decides
  // GO fired a few ms before the local schedule says so (clock estimates differ).
  assert.equal(currentPhase(state({ session: SESSION, go: { lateMs: 0, via: "event" } }), GO - 3), "action");
  assert.equal(currentPhase(state({ phase: "cancelled" }), GO + 5), "cancelled");
  assert.equal(currentPhase(state({ session: SESSION }), GO + 200_000), "finished");
});

test("the action is over when the server says so or its clock passed the end", () => {
  assert.equal(actionOver(state({ phase: "action" }), GO + 119_999), false);
  assert.equal(actionOver(state({ phase: "action" }), GO + 120_000), true);
  assert.equal(actionOver(state({ phase: "finished" }), GO), true);
  assert.equal(actionOver(state({ phase: "cancelled" }), 0), true);
  assert.equal(actionOver({ ...initialState(), phase: "action" }, GO), false); // no timeline yet
});

test("durations and the GO screen's time left", () => {
  assert.equal(formatSince(12_400), "12 s");
  assert.equal(formatSince(-5), "0 s");
  assert.equal(formatSince(120_000), "2 min");
  assert.equal(formatSince(125_000), "2 min 5 s");
  assert.equal(formatSince(3_840_000), "1 h 4 min");
  assert.equal(timeLeftText(state({ go: { lateMs: 20 } }), GO + 8_000), "1:52 left");
  assert.equal(timeLeftText(state({ go: { lateMs: 5_000 } }), GO + 8_000), "started 8 s ago · 1:52 left");
});

test("the clock card: what it says in each phase, the final seconds, rehearsal and doubt", () => {
  const published = clockFace(state(), "published", GO - 3_600_000, "timing ±80 ms");
  assert.equal(published.label, "GO in");
  assert.equal(published.value, "1:00:00");
  assert.match(published.sub, /^at .+ · gather from .+ · timing ±80 ms$/);
  assert.equal(published.final, false);
  const gathering = clockFace(state({ session: SESSION, task: { id: 3 } }), "gathering", GO - 200_000);
  assert.match(gathering.sub, / · walk to your spot now$/);
  const countdown = clockFace(state(), "countdown", GO - 9_000, "");
  assert.deepEqual(countdown, { label: "Get ready", value: "0:09", sub: "Everyone goes at the same second", final: true });
  assert.equal(clockFace(state(), "countdown", GO - 11_000).final, false);
  const action = clockFace(state(), "action", GO + 1, "timing ±80 ms"); // no doubt after GO
  assert.equal(action.value, "GO");
  assert.match(action.sub, /^until [^·]+$/);
  assert.deepEqual(clockFace(state(), "cancelled", GO), {
    label: "Cancelled", value: "—", sub: "This mob was called off", final: false,
  });
  const rehearsal = state({ timeline: { ...TIMELINE, rehearsal: true } });
  assert.match(clockFace(rehearsal, "countdown", GO - 20_000).sub, / · rehearsal, nothing counts$/);
  assert.equal(clockFace(rehearsal, "finished", GO + 200_000).label, "It's over");
  assert.doesNotMatch(clockFace(rehearsal, "finished", GO + 200_000).sub, /rehearsal/);
});

test("while the mob gathers, only a phone with a spot is sent to it", () => {
  assert.equal(gatheringHint(state()), "gathering now: join to get a spot");
  assert.equal(gatheringHint(state({ session: SESSION, task: { id: 1 } })), "walk to your spot now");
  assert.equal(gatheringHint(state({ session: SESSION, zone: { state: "outside" } })), "walk into the zone now");
  assert.equal(gatheringHint(state({ session: SESSION, zone: { state: "uncertain" } })), "walk into the zone now");
  assert.equal(gatheringHint(state({ session: SESSION, zone: { state: "inside" } })), "gathering now");
});

test("chips and counters", () => {
  assert.equal(chipsHtml(state(), "action"), '<span class="chip chip-live">Live</span>');
  assert.equal(chipsHtml(state({ timeline: { ...TIMELINE, rehearsal: true } }), "loading"),
    '<span class="chip chip-warn">Rehearsal</span>');
  const html = countersHtml(state({ counters: { joined: 4, in_zone: 2, deeds_done: 1 } }));
  assert.match(html, /data-counter="joined"><span class="counter-value">4</);
  assert.match(html, /data-counter="deeds_done"><span class="counter-value">1<\/span><span class="counter-label">deeds done/);
  const rehearsal = countersHtml(state({
    timeline: { ...TIMELINE, rehearsal: true }, counters: { deeds_done: 0, rehearsal_deeds: 3 },
  }));
  assert.match(rehearsal, /counter-value">3<\/span><span class="counter-label">tries/);
  assert.match(countersHtml(state()), /counter-value">–</); // nothing known yet
});

test("the deed's state: pending (online or saved offline), counted, flagged, reviewed, refused", () => {
  assert.equal(doneState(state()), null);
  const online = { connected: true };
  const pending = { deed_id: "d", state: "pending" };
  assert.match(doneState(state({ deed: pending, conn: online })).html, /Sending your deed/);
  const offline = doneState(state({ deed: pending }));
  assert.equal(offline.cls, "pending");
  assert.ok(offline.html.startsWith(icons.offline));
  assert.match(offline.html, /Saved on your phone/);
  const me = { nickname: "<b>Sam</b>" };
  const counted = doneState(state({ me, deed: { state: "done", answer: { accepted: true } } }));
  assert.deepEqual(counted, { cls: "", html: `${icons.check}<span>Counted! Thank you, &lt;b&gt;Sam&lt;/b&gt;.</span>` });
  const approved = doneState(state({ deed: { state: "done", answer: { status: "approved" } } }));
  assert.match(approved.html, /approved your deed: it counts! Thank you\.</);
  assert.equal(doneState(state({ deed: { state: "done", answer: { status: "rejected" } } })).cls, "pending");
  const flagged = doneState(state({ deed: { state: "done", answer: { status: "flagged", reason: "far_from_task" } } }));
  assert.match(flagged.html, /will check this one \(you seemed far from your spot\)\./);
  const late = doneState(state({ deed: { state: "done", answer: { accepted: false, reason: "not_action_phase" } } }));
  assert.match(late.html, /outside the action time/);
  const error = doneState(state({ deed: { state: "done", answer: { error: { message: "a<b" } } } }));
  assert.match(error.html, /a&lt;b/);
});

test("a fix is reported when it is the first, moved, changed accuracy, after 15 s, or was doubted", () => {
  const last = { ...FIX, sentAt: 1000 };
  assert.equal(reportDue(null, FIX, null, 1000), true);
  assert.ok(!reportDue(last, north(1), null, 2000));
  assert.equal(reportDue(last, north(3.5), null, 2000), true);
  assert.equal(reportDue(last, { ...FIX, accuracy_m: 13 }, null, 2000), true);
  assert.ok(!reportDue(last, FIX, null, 15_999));
  assert.equal(reportDue(last, FIX, null, 16_000), true);
  assert.ok(reportDue(last, FIX, { state: "inside", problem: "poor_accuracy" }, 2000));
});

test("a location ack gives the zone (a doubted fix says why) and a task only when it has one", () => {
  assert.deepEqual(locationAckPatch({ zone: "inside", distance_m: 0, bearing_deg: null, counted: true }), {
    zone: { state: "inside", distance_m: 0, bearing_deg: null, problem: null },
  });
  assert.equal(locationAckPatch({ zone: "outside", counted: false }).zone.problem, "uncertain");
  assert.equal(locationAckPatch({ zone: "outside", counted: false, reason: "poor_accuracy" }).zone.problem, "poor_accuracy");
  assert.deepEqual(locationAckPatch({ zone: "inside", task: null }).task, null);
  assert.deepEqual(locationAckPatch({ zone: "inside", task: { id: 7 } }).task, { id: 7 });
});

test("a snapshot replaces what it carries, keeps the rest, and is saved with the session", () => {
  const before = state({ phase: "published", counters: { joined: 1 }, zone: null, announcementSeq: 4 });
  const snap = {
    mob: { title: "M2", timeline: { ...TIMELINE, version: 2, phase: "gathering" } },
    me: { nickname: "Sam", zone: "outside" },
    announcements: [{ seq: 3, text: "old" }, { seq: 5, text: "Bring gloves" }],
  };
  const patch = snapshotPatch(before, snap);
  assert.equal(patch.timeline.version, 2); // the mob's timeline when the snapshot has none
  assert.equal(patch.phase, "gathering");
  assert.equal(patch.task, null);
  assert.deepEqual(patch.counters, { joined: 1 });
  assert.deepEqual(patch.zone, { state: "outside" });
  assert.equal(patch.announcement, "Bring gloves");
  assert.equal(patch.announcementSeq, 5);
  assert.equal(patch.session, undefined); // not joined: nothing to save
  // Joined: the session keeps its token and gains the snapshot; a zone known already stays.
  const joined = snapshotPatch(state({ session: SESSION, zone: { state: "inside" }, announcementSeq: 5 }), {
    ...snap, phase: "countdown", task: { id: 2 },
  });
  assert.equal(joined.zone, undefined);
  assert.equal(joined.announcement, undefined); // said already
  assert.equal(joined.session.token, "t");
  assert.deepEqual(joined.session.snapshot, {
    mob: snap.mob, timeline: joined.timeline, phase: "countdown", me: snap.me, task: { id: 2 }, counters: null,
  });
});

test("events: timeline, phase, stats (without mob and seq), a task, an announcement", () => {
  const s = state({ phase: "published", counters: { joined: 1, in_zone: 1 }, announcementSeq: 9 });
  const timeline = { ...TIMELINE, version: 3, phase: "gathering" };
  assert.deepEqual(eventPatch(s, "timeline", { timeline }), { timeline, phase: "gathering" });
  assert.deepEqual(eventPatch(s, "timeline", {}), {});
  assert.deepEqual(eventPatch(s, "phase", { phase: "action", at_ms: GO }), { phase: "action" });
  assert.deepEqual(eventPatch(s, "stats", { mob: "m", seq: 4, joined: 5, pledges: { total: 1 } }), {
    counters: { joined: 5, in_zone: 1 }, pledges: { total: 1 },
  });
  assert.deepEqual(eventPatch(s, "stats", { joined: 5 }), { counters: { joined: 5, in_zone: 1 } });
  assert.deepEqual(eventPatch(s, "task_assigned", { task: null }), { task: null });
  assert.deepEqual(eventPatch(s, "announcement", { text: "Hi", seq: 7 }), { announcement: "Hi", announcementSeq: 9 });
  assert.deepEqual(eventPatch(s, "deed_reviewed", { deed_id: "d" }), {});
});

test("a join's patch, its error messages, and the link to share", () => {
  const result = {
    token: "tok", participant: { id: 2, nickname: "Brave Otter", ref_code: "r1" }, share_url: "/m/x?ref=r1",
    expires_in_s: 60, mob: { title: "M", timeline: TIMELINE },
  };
  const patch = joinPatch(state({ joinMessage: "expired" }), result, 1000);
  assert.deepEqual(patch.session, {
    token: "tok", participant: result.participant, share_url: "/m/x?ref=r1", expires_at: 61_000,
  });
  assert.deepEqual(patch.me, { nickname: "Brave Otter", ref_code: "r1", zone: null });
  assert.equal(patch.timeline, TIMELINE);
  assert.equal(patch.joinMessage, null);
  assert.equal(joinErrorText({ status: 0 }), "You're offline. Join when you have a connection again.");
  assert.equal(joinErrorText({ status: 409, code: "mob_full" }), "Every spot of this mob is taken. Bring your energy to the next one!");
  assert.equal(joinErrorText({ status: 400, code: "other", message: "No." }), "No.");
  assert.equal(sharePath(state(), "a b"), "/m/a%20b");
  assert.equal(sharePath(state({ me: { ref_code: "x&y" } }), "m1"), "/m/m1?ref=x%26y");
  assert.equal(sharePath(state({ session: { ...SESSION, share_url: "/m/m1?ref=abc" } }), "m1"), "/m/m1?ref=abc");
});

test("the page's state in one store: a snapshot's patch is one change", () => {
  const store = createStore(state({ session: SESSION }));
  const heard = [];
  store.subscribe((_s, changed) => heard.push(changed));
  store.set(snapshotPatch(store.get(), { phase: "countdown", counters: { joined: 3 } }));
  assert.equal(heard.length, 1);
  assert.deepEqual(heard[0].sort(), ["counters", "phase", "session"]);
  assert.equal(store.get().session.snapshot.phase, "countdown");
  assert.equal(SESSION.snapshot, undefined); // the old session object is left as it was
});

test("the guide: finding you, your spot (distance, arrow, at it), the zone's edge", () => {
  assert.equal(guide(state(), GO).main, "Finding you…");
  assert.equal(guide(state({ geoError: "denied" }), GO).main, "Location is off");
  const task = { id: 4, kind: "litter", lat: FIX.lat, lon: FIX.lon };
  const far = guide(state({ fix: north(-100), task, heading: 30 }), GO);
  assert.equal(far.main, "100 m");
  assert.equal(far.sub, "N to your spot · Litter spot #4");
  assert.equal(Math.round(far.bearing), 0);
  assert.equal(far.arrow, arrowHtml(far.bearing, 30));
  assert.match(far.arrow, /rotate\(-30deg\)/);
  // Within AT_SPOT_M plus the accuracy (capped at 15 m).
  const near = state({ fix: { ...north(-(AT_SPOT_M + 7)), accuracy_m: 8 }, task: { ...task, label: "Bench" } });
  assert.deepEqual(guide(near, GO), { cls: "here", arrow: icons.check, main: "You're at your spot", sub: "Bench" });
  assert.equal(guide({ ...near, zone: { state: "outside" } }, GO).main, "Step back into the zone");
  assert.equal(guide(state({ fix: FIX, zone: { state: "inside", problem: "implausible_speed" } }), GO).main, "Hold on…");
  assert.equal(guide(state({ fix: FIX, zone: { state: "uncertain" } }), GO).main, "At the edge of the zone");
  assert.equal(guide(state({ fix: FIX, zone: { state: "inside" } }), GO).sub, "Waiting for a free spot…");
  assert.equal(guide(state({ fix: FIX }), GO).main, "Checking your position…");
});

test("outside the zone: how far, which way, and whether the walk still fits before the end", () => {
  assert.equal(WALK_MPS, 1.3);
  const outside = (distance) => state({ fix: FIX, zone: { state: "outside", distance_m: distance, bearing_deg: 90 } });
  const soon = guide(outside(130), GO - 200_000);
  assert.equal(soon.main, "130 m");
  assert.equal(soon.sub, "E to the zone, about 2 min on foot: step in to get your spot");
  assert.equal(guide(outside(30), GO).sub, "E to the zone, under a minute on foot: step in to get your spot");
  // 130 m is 100 s on foot; with DEED_MARGIN_MS it fits only until 120 s before the end.
  const end = TIMELINE.end_at_ms;
  assert.equal(walkToZone(outside(130), 130, end - 100_000 - DEED_MARGIN_MS).canMake, true);
  assert.equal(walkToZone(outside(130), 130, end - 100_000 - DEED_MARGIN_MS + 1).canMake, false);
  assert.equal(walkToZone(state({ timeline: null }), 10_000, GO).canMake, true); // no timeline yet
  assert.match(guide(outside(130), end - 60_000).sub, /too far to make it before the end$/);
  const noBearing = state({ fix: FIX, zone: { state: "outside", distance_m: 40, bearing_deg: null } });
  assert.equal(guide(noBearing, GO).arrow, icons.pin);
  assert.equal(formatWalk(29_000), "under a minute on foot");
  assert.equal(formatWalk(150_000), "about 3 min on foot");
});

test("at GO without a spot: the truth, and whether to watch live instead", () => {
  assert.deepEqual(noSpotStory(state({ geoError: "denied" }), GO).watch, true);
  assert.match(noSpotStory(state(), GO).text, /still finding you/);
  const outside = (distance) => state({ fix: FIX, zone: { state: "outside", distance_m: distance } });
  assert.deepEqual(noSpotStory(outside(25), GO + 1000), {
    text: "You're 25 m from the zone (under a minute on foot): you can still make it. Step into the zone to get your spot.",
    watch: false,
  });
  assert.deepEqual(noSpotStory(outside(500), GO + 60_000), {
    text: "You're 500 m from the zone (about 6 min on foot) and it ends in 1 min: too far to make it this time. Watch it live instead.",
    watch: true,
  });
  assert.deepEqual(noSpotStory(state({ fix: FIX, zone: { state: "inside" } }), GO).watch, true);
  assert.deepEqual(noSpotStory(state({ fix: FIX, zone: { state: "uncertain" } }), GO), {
    text: "Step into the zone to get your spot.", watch: false,
  });
});

test("the zone line says where you are, with the accuracy", () => {
  assert.deepEqual(zoneLine(state({ geoError: "denied" })), ["bad", "Location blocked — you can't be counted"]);
  assert.deepEqual(zoneLine(state()), ["", "Waiting for your location"]);
  const at = (zone) => zoneLine(state({ fix: { ...FIX, accuracy_m: 7.6 }, zone }));
  assert.deepEqual(at({ state: "inside" }), ["ok", "You're in the zone (±8 m)"]);
  assert.deepEqual(at({ state: "uncertain" }), ["warn", "Right at the edge of the zone (±8 m)"]);
  assert.deepEqual(at({ state: "outside" }), ["warn", "Outside the zone (±8 m)"]);
  assert.deepEqual(at({ state: "outside", problem: "poor_accuracy" }), ["warn", "GPS too imprecise (±8 m) — try under open sky"]);
  assert.deepEqual(at({ problem: "implausible_speed" }), ["warn", "Your position jumped — waiting for a steady fix"]);
  assert.deepEqual(at(null), ["", "Located (±8 m)"]);
});
