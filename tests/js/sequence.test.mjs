// Tests for pwa/js/sequence.js: the order of a mob's events on one connection (duplicates
// dropped, gaps in numbered events and gaps revealed by the seq of stats re-joined).
// Run: node --test tests/js/
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { EventSequence } from "../../pwa/js/sequence.js";

/** A fake scheduler: timers run when `advance` moves the fake clock past them. */
class FakeTimers {
  now = 0;
  #timers = [];
  #next = 1;
  setTimeout = (fn, ms) => {
    const id = this.#next++;
    this.#timers.push({ id, at: this.now + Math.max(0, ms), fn });
    return id;
  };
  clearTimeout = (id) => {
    this.#timers = this.#timers.filter((t) => t.id !== id);
  };
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.now = next.at;
      next.fn();
    }
    this.now = end;
  }
  get pending() {
    return this.#timers.length;
  }
}

/** An EventSequence whose deliveries and re-joins are recorded. */
function harness({ graceMs = 1500 } = {}) {
  const timers = new FakeTimers();
  const delivered = [];
  let rejoins = 0;
  const seq = new EventSequence({
    deliver: (name, data) => delivered.push(`${name}:${data?.seq ?? "-"}`),
    rejoin: () => { rejoins += 1; },
    graceMs,
    timers,
  });
  return { seq, timers, delivered, rejoins: () => rejoins };
}

/** Joins with a snapshot at `seq` (and `missed` events). */
function join(seq, ack) {
  const payload = seq.beginJoin();
  seq.joined(ack);
  seq.flush();
  return payload;
}

describe("numbered events", () => {
  test("in order they are delivered; a repeat is dropped", () => {
    const h = harness();
    join(h.seq, { seq: 3, missed: null });
    h.seq.numbered("phase", { seq: 4 });
    h.seq.numbered("phase", { seq: 4 });
    h.seq.numbered("announcement", { seq: 5 });
    h.seq.numbered("timeline", { seq: 2 });
    assert.deepEqual(h.delivered, ["phase:4", "announcement:5"]);
    assert.equal(h.seq.lastSeq, 5);
    assert.equal(h.rejoins(), 0);
  });

  test("a skipped number asks for a re-join at once; the re-join replays the missed ones", () => {
    const h = harness();
    join(h.seq, { seq: 3 });
    h.seq.numbered("phase", { seq: 5 });
    assert.equal(h.rejoins(), 1);
    assert.deepEqual(h.delivered, []);
    const payload = h.seq.beginJoin();
    assert.deepEqual(payload, { last_seq: 3 });
    h.seq.numbered("announcement", { seq: 6 }); // arrives while joining: buffered
    h.seq.joined({
      seq: 5,
      missed: [
        { event: "timeline", data: { seq: 4 } },
        { event: "phase", data: { seq: 5 } },
      ],
    });
    assert.deepEqual(h.delivered, ["timeline:4", "phase:5"]);
    h.seq.flush();
    assert.deepEqual(h.delivered, ["timeline:4", "phase:5", "announcement:6"]);
    assert.equal(h.seq.lastSeq, 6);
  });

  test("the first join sends no last_seq; events before it are passed on", () => {
    const h = harness();
    h.seq.numbered("phase", { seq: 9 });
    assert.deepEqual(h.delivered, ["phase:9"]);
    assert.deepEqual(h.seq.beginJoin(), {});
  });

  test("a join that failed lets events flow again", () => {
    const h = harness();
    join(h.seq, { seq: 1 });
    h.seq.beginJoin();
    assert.equal(h.seq.joining, true);
    h.seq.joinFailed();
    h.seq.numbered("phase", { seq: 2 });
    assert.deepEqual(h.delivered, ["phase:2"]);
  });
});

describe("the seq of plain events", () => {
  test("stats one ahead: the numbered event that comes within the grace period settles it", () => {
    const h = harness();
    join(h.seq, { seq: 7 });
    h.seq.plain("stats", { seq: 8 });
    assert.deepEqual(h.delivered, ["stats:8"], "stats are delivered at once");
    h.timers.advance(300);
    h.seq.numbered("phase", { seq: 8 }); // the phase event was sent just after the counters
    h.timers.advance(5000);
    assert.equal(h.rejoins(), 0);
    assert.equal(h.timers.pending, 0);
  });

  test("stats ahead and the numbered event never comes: a re-join after the grace period", () => {
    const h = harness({ graceMs: 1000 });
    join(h.seq, { seq: 7 });
    h.seq.plain("stats", { seq: 9 });
    h.seq.plain("density", { seq: 9 });
    h.seq.plain("stats", { seq: 9 });
    h.timers.advance(999);
    assert.equal(h.rejoins(), 0);
    h.timers.advance(1);
    assert.equal(h.rejoins(), 1, "one re-join for the gap, however many plain events showed it");
    assert.deepEqual(h.seq.beginJoin(), { last_seq: 7 });
    h.seq.joined({ seq: 9, missed: [{ event: "phase", data: { seq: 8 } }, { event: "phase", data: { seq: 9 } }] });
    h.seq.flush();
    assert.deepEqual(h.delivered.filter((d) => d.startsWith("phase")), ["phase:8", "phase:9"]);
    h.timers.advance(10_000);
    assert.equal(h.rejoins(), 1);
  });

  test("stats at or behind the last number change nothing", () => {
    const h = harness();
    join(h.seq, { seq: 4 });
    h.seq.plain("stats", { seq: 4 });
    h.seq.plain("stats", { seq: 3 });
    h.seq.plain("task_assigned", { task: null });
    h.timers.advance(10_000);
    assert.equal(h.rejoins(), 0);
    assert.equal(h.timers.pending, 0);
  });

  test("a missed phase jump (countdown straight to finished) is recovered from stats alone", () => {
    // The phone slept through the one `phase` event; the next stats show the mob moved on.
    const h = harness({ graceMs: 500 });
    join(h.seq, { seq: 2 });
    h.seq.plain("stats", { seq: 3, deeds_done: 4 });
    h.timers.advance(500);
    assert.equal(h.rejoins(), 1);
    h.seq.beginJoin();
    // The server could not replay (missed: null): the snapshot alone is the truth.
    h.seq.joined({ seq: 3, phase: "finished", missed: null });
    h.seq.flush();
    assert.equal(h.seq.lastSeq, 3);
    h.seq.plain("stats", { seq: 3 });
    h.timers.advance(5000);
    assert.equal(h.rejoins(), 1);
  });

  test("stop() cancels a pending gap check", () => {
    const h = harness();
    join(h.seq, { seq: 1 });
    h.seq.plain("stats", { seq: 2 });
    h.seq.stop();
    h.timers.advance(10_000);
    assert.equal(h.rejoins(), 0);
  });
});

describe("the seq on acknowledgements (issue 15, finding 8)", () => {
  test("a report's ack ahead of the last event: the missed phase is fetched by a re-join", () => {
    // The phone's process dropped `phase: action` (published before it was subscribed); the
    // phone learns of it from its next location ack, not from an event that may never come.
    const h = harness({ graceMs: 1000 });
    join(h.seq, { seq: 5 });
    h.seq.latest(6); // ack of report_location: {zone, task, seq: 6}
    assert.deepEqual(h.delivered, [], "an ack's seq delivers nothing itself");
    h.timers.advance(1000);
    assert.equal(h.rejoins(), 1);
    assert.deepEqual(h.seq.beginJoin(), { last_seq: 5 });
    h.seq.joined({ seq: 6, missed: [{ event: "phase", data: { seq: 6, phase: "action" } }] });
    h.seq.flush();
    assert.deepEqual(h.delivered, ["phase:6"]);
    h.seq.latest(6); // the next acks: nothing more to fetch
    h.timers.advance(10_000);
    assert.equal(h.rejoins(), 1);
  });

  test("an ack that overtakes the live event: no re-join when the event comes in the grace", () => {
    const h = harness({ graceMs: 1500 });
    join(h.seq, { seq: 2 });
    h.seq.latest(3); // the deed's ack read seq 3 while the phase event was still on its way
    h.timers.advance(200);
    h.seq.numbered("phase", { seq: 3 });
    h.timers.advance(10_000);
    assert.equal(h.rejoins(), 0);
    assert.deepEqual(h.delivered, ["phase:3"]);
  });

  test("acks at or behind the last number, without seq, or before the first snapshot: nothing", () => {
    const before = harness();
    before.seq.latest(9); // not joined yet: the snapshot will be the truth
    before.timers.advance(10_000);
    assert.equal(before.rejoins(), 0);
    const h = harness();
    join(h.seq, { seq: 4 });
    for (const seq of [4, 3, undefined, null, "5", 4.5]) h.seq.latest(seq);
    h.timers.advance(10_000);
    assert.equal(h.rejoins(), 0);
    assert.equal(h.timers.pending, 0);
  });
});
