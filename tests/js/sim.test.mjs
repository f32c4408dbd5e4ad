// Tests for the phone simulator's plumbing (bench/sim/): the per-message network delays and
// the walking geometry. The simulator runs against real servers only in bench/sync.py and the
// demo; here a fake socket and a fake scheduler check that every message pays its delays.
// Run: node --test tests/js/
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { ClockSync } from "../../pwa/js/clock.js";
import { DelayedSocket, mulberry32, NetworkModel } from "../../bench/sim/net.mjs";
import {
  centre, distanceM, offsetPoint, radiusM, startOutside, stepToward,
} from "../../bench/sim/walk.mjs";

/** Lets every pending promise callback run (a macrotask boundary). */
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A fake scheduler: timers run when `advance` moves the fake clock past them. */
class FakeTimers {
  now = 0;
  #timers = [];
  setTimeout = (fn, ms) => {
    this.#timers.push({ at: this.now + Math.max(0, ms), fn });
  };
  /** Runs every timer due within `ms`, in time order (timers may add timers). */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.now = next.at;
      next.fn();
      await flush();
    }
    this.now = end;
    await flush();
  }
  get pending() {
    return this.#timers.length;
  }
}

/** A fake Socket.IO socket whose server acknowledges at once, recording the fake time. */
function fakeSocket(timers) {
  const handlers = new Map();
  const sent = [];
  const socket = {
    sent,
    timeout: () => socket,
    emit(event, payload, ack) {
      sent.push({ event, payload, at: timers.now });
      ack?.(null, { echo: payload, serverAt: timers.now });
    },
    on(event, fn) {
      handlers.set(event, fn);
    },
    push(event, data) {
      handlers.get(event)(data);
    },
  };
  return socket;
}

/** A NetworkModel whose next delays come from the given lists (ms), in order. */
function scriptedNet(ups, downs) {
  const net = new NetworkModel({ rng: () => 0 });
  net.up = () => ups.shift();
  net.down = () => downs.shift();
  return net;
}

describe("NetworkModel", () => {
  test("draws each direction's delay uniformly within its own bounds", () => {
    const net = new NetworkModel({ rng: mulberry32(7), maxUpMs: 80, minDownMs: 10, maxDownMs: 30 });
    const ups = Array.from({ length: 5000 }, () => net.up());
    const downs = Array.from({ length: 5000 }, () => net.down());
    assert.ok(Math.min(...ups) >= 0 && Math.max(...ups) <= 80);
    assert.ok(Math.min(...downs) >= 10 && Math.max(...downs) <= 30);
    const mean = (a) => a.reduce((s, x) => s + x, 0) / a.length;
    assert.ok(Math.abs(mean(ups) - 40) < 2, `mean up ${mean(ups)}`);
    assert.ok(Math.abs(mean(downs) - 20) < 1, `mean down ${mean(downs)}`);
  });

  test("is reproducible from its seed and differs between seeds", () => {
    const draw = (seed) => {
      const net = new NetworkModel({ rng: mulberry32(seed) });
      return [net.up(), net.down(), net.up()];
    };
    assert.deepEqual(draw(3), draw(3));
    assert.notDeepEqual(draw(3), draw(4));
  });

  test("refuses negative or inverted bounds", () => {
    assert.throws(() => new NetworkModel({ rng: Math.random, minUpMs: -1 }), RangeError);
    assert.throws(() => new NetworkModel({ rng: Math.random, minDownMs: 50, maxDownMs: 10 }), RangeError);
    assert.throws(() => new NetworkModel({}), TypeError);
  });
});

describe("DelayedSocket", () => {
  test("request: the emit leaves after the uplink delay, the ack lands after the downlink delay", async () => {
    const timers = new FakeTimers();
    const socket = fakeSocket(timers);
    const ds = new DelayedSocket(socket, scriptedNet([30], [50]), {
      setTimeout: timers.setTimeout, clock: () => timers.now,
    });
    let ack = null;
    ds.request("time_sync", { t0: 1 }).then((a) => { ack = { ...a, at: timers.now }; });
    assert.equal(socket.sent.length, 0, "nothing leaves before the uplink delay");
    await timers.advance(29);
    assert.equal(socket.sent.length, 0);
    await timers.advance(1);
    assert.deepEqual(socket.sent, [{ event: "time_sync", payload: { t0: 1 }, at: 30 }]);
    await timers.advance(49);
    assert.equal(ack, null, "the ack is still on its way");
    await timers.advance(1);
    assert.deepEqual(ack, { echo: { t0: 1 }, serverAt: 30, at: 80 });
  });

  test("each message draws its own delays, so round trips are asymmetric", async () => {
    const timers = new FakeTimers();
    const socket = fakeSocket(timers);
    const ds = new DelayedSocket(socket, scriptedNet([5, 70], [60, 2]), {
      setTimeout: timers.setTimeout, clock: () => timers.now,
    });
    const done = [];
    ds.request("a", {}).then(() => done.push({ name: "a", at: timers.now }));
    ds.request("b", {}).then(() => done.push({ name: "b", at: timers.now }));
    await timers.advance(200);
    assert.deepEqual(socket.sent.map((m) => [m.event, m.at]), [["a", 5], ["b", 70]]);
    assert.deepEqual(done, [{ name: "a", at: 65 }, { name: "b", at: 72 }]);
  });

  test("a failed acknowledgement rejects after the downlink delay", async () => {
    const timers = new FakeTimers();
    const socket = {
      timeout: () => socket,
      emit: (_e, _p, ack) => ack(new Error("operation has timed out")),
      on() {},
    };
    const ds = new DelayedSocket(socket, scriptedNet([10], [20]), { setTimeout: timers.setTimeout });
    let error = null;
    ds.request("x", {}).catch((err) => { error = { message: err.message, at: timers.now }; });
    await timers.advance(100);
    assert.deepEqual(error, { message: "operation has timed out", at: 30 });
  });

  test("server events are handled after the downlink delay, stamped with their arrival", async () => {
    const timers = new FakeTimers();
    const socket = fakeSocket(timers);
    const ds = new DelayedSocket(socket, scriptedNet([], [40, 10]), {
      setTimeout: timers.setTimeout, clock: () => timers.now,
    });
    const seen = [];
    ds.on("phase", (data, meta) => seen.push({ data, ...meta, handledAt: timers.now }));
    await timers.advance(100);
    socket.push("phase", { phase: "action" });
    await timers.advance(5);
    socket.push("phase", { phase: "finished" });
    await timers.advance(100);
    assert.deepEqual(seen, [
      { data: { phase: "finished" }, arrivedAt: 105, handledAt: 115 },
      { data: { phase: "action" }, arrivedAt: 100, handledAt: 140 },
    ], "independent per-message delays may reorder events, as the model says");
  });

  test("zero delays run synchronously and set no timers", async () => {
    const timers = new FakeTimers();
    const socket = fakeSocket(timers);
    const net = new NetworkModel({ rng: Math.random, maxUpMs: 0, maxDownMs: 0 });
    assert.equal(net.isZero, true);
    const ds = new DelayedSocket(socket, net, { setTimeout: timers.setTimeout, clock: () => 7 });
    const seen = [];
    ds.on("announcement", (d, meta) => seen.push([d, meta.arrivedAt]));
    socket.push("announcement", "hi");
    ds.send("report_location", { lat: 1 });
    const ack = await ds.request("time_sync", { t0: 0 });
    assert.deepEqual(seen, [["hi", 7]]);
    assert.equal(socket.sent.length, 2);
    assert.deepEqual(ack.echo, { t0: 0 });
    assert.equal(timers.pending, 0);
  });
});

test("ClockSync through a DelayedSocket recovers a phone's clock offset within its bound", async () => {
  // The simulator's wiring: the phone's wall clock = true clock + offset, time_sync pays
  // 0–80 ms each way; the server's clock is the true clock.
  for (const seed of [1, 2, 3, 4, 5]) {
    const timers = new FakeTimers();
    const offsetMs = (mulberry32(seed)() * 2 - 1) * 600_000;
    const socket = fakeSocket(timers);
    socket.emit = (event, payload, ack) => {
      const t = 1_700_000_000_000 + timers.now; // the server stamps its true clock
      ack(null, { t0: payload.t0, t1: t, t2: t + 0.1 });
    };
    const ds = new DelayedSocket(socket, new NetworkModel({ rng: mulberry32(seed * 31) }), {
      setTimeout: timers.setTimeout,
    });
    const clock = new ClockSync({
      request: (p) => ds.request("time_sync", p),
      now: () => 1_700_000_000_000 + timers.now + offsetMs,
      monotonic: () => timers.now,
      setTimeout: timers.setTimeout,
      clearTimeout: () => {},
    });
    const done = clock.sync(); // the burst of CLOCK_CONFIG
    await timers.advance(8 * 200);
    await done;
    const truth = 1_700_000_000_000 + timers.now;
    const bound = clock.uncertaintyMs + 1e-6;
    assert.ok(Math.abs(clock.offsetMs + offsetMs) <= bound, `seed ${seed}: offset error`);
    assert.ok(Math.abs(clock.serverNow() - truth) <= bound, `seed ${seed}: serverNow error`);
    assert.ok(clock.uncertaintyMs <= clock.delayMs / 2 + 1.01, "no worse than the best sample");
  }
});

describe("walk", () => {
  const ZONE = {
    type: "Polygon",
    coordinates: [[[13.398, 52.531], [13.402, 52.531], [13.402, 52.533], [13.398, 52.533], [13.398, 52.531]]],
  };

  test("offsetPoint and distanceM agree to well under a metre", () => {
    const p = [13.4, 52.53];
    for (const [d, b] of [[100, 0], [250, Math.PI / 2], [37.5, 4]]) {
      assert.ok(Math.abs(distanceM(p, offsetPoint(p, d, b)) - d) < 0.5);
    }
  });

  test("a start point lies outside the zone's radius by the extra distance", () => {
    const rng = mulberry32(5);
    const c = centre(ZONE);
    for (let i = 0; i < 20; i++) {
      const extra = 40 + i * 5;
      const d = distanceM(c, startOutside(ZONE, rng, extra));
      assert.ok(Math.abs(d - (radiusM(ZONE) + extra)) < 0.5, `distance ${d}`);
    }
  });

  test("stepToward moves by the step and stops at the target", () => {
    const a = [13.4, 52.53];
    const b = offsetPoint(a, 50, 1);
    const mid = stepToward(a, b, 20);
    assert.ok(Math.abs(distanceM(a, mid) - 20) < 0.1);
    assert.ok(Math.abs(distanceM(mid, b) - 30) < 0.1);
    assert.deepEqual(stepToward(mid, b, 100), b);
  });
});
