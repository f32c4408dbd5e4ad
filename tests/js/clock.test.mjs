// Tests for pwa/js/clock.js: NTP-style offset estimation and fireAt, with fake clocks, a fake
// scheduler and a simulated server; plus one short test on the real clock.
// Run: node --test tests/js/
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { CLOCK_CONFIG, ClockSync, clockNote, computeSample, estimateOffset } from "../../pwa/js/clock.js";

// ---------------------------------------------------------------------------------------------
// Test doubles
// ---------------------------------------------------------------------------------------------

/** Seeded PRNG (mulberry32): uniform floats in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lets every queued promise continuation run (microtasks drain before setImmediate). */
const flush = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Simulated time for one phone and its server. "True" time is the monotonic clock `mono`
 * (ms); the phone's wall clock is mono + wallBase (jumps change wallBase), the server's clock
 * is mono + serverBase. Client timers (the ones ClockSync sets) fire `lateness()` ms after
 * their due time (negative: early); simulated network events (`at`) are exact.
 */
class FakeTime {
  constructor({ lateness = () => 0 } = {}) {
    this.mono = 5000;
    this.wallBase = 1_700_000_000_000;
    this.lateness = lateness;
    this.timers = [];
    this.nextId = 1;
  }

  now = () => this.mono + this.wallBase;
  monotonic = () => this.mono;

  setTimeout = (fn, ms) => {
    const at = Math.max(this.mono, this.mono + Math.max(0, ms || 0) + this.lateness());
    return this.#add(at, fn, true);
  };

  clearTimeout = (id) => {
    this.timers = this.timers.filter((t) => t.id !== id);
  };

  /** Schedules a simulated (exact) event `ms` from now. */
  at(ms, fn) {
    this.#add(this.mono + ms, fn, false);
  }

  #add(at, fn, client) {
    const id = this.nextId++;
    this.timers.push({ id, at, fn, client });
    return id;
  }

  /** Client timers pending (ClockSync's), sorted by due time. */
  clientTimers() {
    return this.timers.filter((t) => t.client).sort((a, b) => a.at - b.at);
  }

  /** Runs the earliest timer; false when none is left or it is beyond `limit`. */
  async step(limit = Infinity) {
    await flush();
    if (this.timers.length === 0) return false;
    const next = this.timers.reduce((a, b) => (b.at < a.at || (b.at === a.at && b.id < a.id) ? b : a));
    if (next.at > limit) return false;
    this.timers = this.timers.filter((t) => t !== next);
    this.mono = Math.max(this.mono, next.at);
    next.fn();
    await flush();
    return true;
  }

  /** Advances time by `ms`, running every timer due meanwhile. */
  async advance(ms) {
    const end = this.mono + ms;
    while (await this.step(end));
    this.mono = end;
    await flush();
  }

  /** Runs timers until `promise` settles; returns its value or throws its error. */
  async settle(promise, maxSteps = 100000) {
    let state = "pending";
    let value;
    promise.then((v) => { state = "ok"; value = v; }, (e) => { state = "err"; value = e; });
    for (let i = 0; i < maxSteps; i++) {
      await flush();
      if (state !== "pending") break;
      if (!(await this.step())) break;
    }
    if (state === "pending") throw new Error("promise never settled");
    if (state === "err") throw value;
    return value;
  }
}

/**
 * A fake `time_sync` server. Each request's uplink and downlink delays are drawn
 * independently, uniform in [minUpMs, maxUpMs] and [minDownMs, maxDownMs]; its clock may run
 * `driftPpm` faster than the phone's monotonic clock; the server spends 0..2 ms between
 * t1 and t2. `fail(n)` (n = 1-based request number) may return "reject", "hang" or
 * "malformed" to simulate failures.
 */
function fakeServer(time, {
  offsetMs, seed = 1, minUpMs = 0, maxUpMs = 80, minDownMs = 0, maxDownMs = 80, driftPpm = 0,
  fail = () => null,
}) {
  const rng = mulberry32(seed);
  const startMono = time.mono;
  const server = {
    requests: 0,
    serverBase: time.wallBase + offsetMs,
    /** The server's true clock right now (its rate differs from the phone's by driftPpm). */
    clock: () => time.mono + server.serverBase + (time.mono - startMono) * driftPpm * 1e-6,
    request: (payload) => {
      const n = ++server.requests;
      const up = minUpMs + rng() * (maxUpMs - minUpMs);
      const down = minDownMs + rng() * (maxDownMs - minDownMs);
      const processing = rng() * 2;
      const failure = fail(n);
      return new Promise((resolve, reject) => {
        if (failure === "hang") return;
        time.at(up, () => {
          const t1 = server.clock();
          time.at(processing, () => {
            const t2 = server.clock();
            time.at(down, () => {
              if (failure === "reject") reject(new Error("ack timeout"));
              else if (failure === "malformed") resolve({ t0: payload.t0, t1: "x" });
              else resolve({ t0: payload.t0, t1, t2 });
            });
          });
        });
      });
    },
  };
  return server;
}

/** A ClockSync on the fake time and server. */
function makeClock(time, server, options = {}) {
  return new ClockSync({
    request: server.request,
    random: mulberry32(4242),
    now: time.now,
    monotonic: time.monotonic,
    setTimeout: time.setTimeout,
    clearTimeout: time.clearTimeout,
    ...options,
  });
}

const TRUE_OFFSET = 123456;

/** Error of the server-time estimate right now (estimate − truth). */
const serverError = (clock, server) => clock.serverNow() - server.clock();

/** The error bound that follows from the math: one sample errs by at most delay / 2. */
const maxKeptDelay = (clock) => Math.max(...clock.keptSamples.map((s) => s.delay));

// ---------------------------------------------------------------------------------------------
// computeSample
// ---------------------------------------------------------------------------------------------

describe("computeSample", () => {
  test("offset and delay from the four timestamps", () => {
    // Sent at 1000 (client), received 1510, answered 1512 (server), back at 1022 (client).
    assert.deepEqual(computeSample(1000, 1510, 1512, 1022), { offset: 500, delay: 20 });
  });

  test("negative offset (client ahead) and asymmetric paths", () => {
    // Server is 300 ms behind; uplink 30 ms, server 5 ms, downlink 10 ms.
    // t1 = 1000 + 30 - 300 = 730, t2 = 735, t3 = 1000 + 45 = 1045.
    const { offset, delay } = computeSample(1000, 730, 735, 1045);
    assert.equal(delay, 40);
    assert.equal(offset, -290); // error 10 ms = (30 - 10) / 2, within delay / 2
  });

  test("symmetric paths give the exact offset", () => {
    assert.deepEqual(computeSample(0, 10_025, 10_025, 50), { offset: 10_000, delay: 50 });
  });
});

// ---------------------------------------------------------------------------------------------
// sync()
// ---------------------------------------------------------------------------------------------

describe("sync", () => {
  test("estimates a +123456 ms offset within its stated bound (every sample's bound at once)", async () => {
    const errors = [];
    for (let seed = 1; seed <= 50; seed++) {
      const time = new FakeTime();
      const server = fakeServer(time, { offsetMs: TRUE_OFFSET, seed });
      const clock = makeClock(time, server);
      assert.equal(clock.isSynced, false);

      const result = await time.settle(clock.sync());

      assert.equal(clock.isSynced, true);
      assert.equal(server.requests, 8);
      assert.equal(clock.sampleCount, 8);
      assert.equal(clock.keptSamples.length, 8);
      assert.deepEqual(result, { offsetMs: clock.offsetMs, delayMs: clock.delayMs });
      assert.equal(clock.delayMs, clock.keptSamples[0].delay, "delayMs is the best delay");
      assert.equal(clock.syncedAt, time.now());

      const bound = Math.min(clock.keptSamples[0].delay / 2 + 1, clock.uncertaintyMs) + 1e-9;
      const offsetErr = clock.offsetMs - TRUE_OFFSET;
      const nowErr = serverError(clock, server);
      assert.ok(Math.abs(offsetErr) <= bound, `seed ${seed}: offset error ${offsetErr} > ${bound}`);
      assert.ok(Math.abs(nowErr) <= bound, `seed ${seed}: serverNow error ${nowErr} > ${bound}`);
      assert.ok(Math.abs(offsetErr) <= 40, `seed ${seed}: offset error ${offsetErr}`);
      errors.push(Math.abs(nowErr));
    }
    // Keeping the lowest-delay samples makes the typical error far smaller than the 40 ms
    // worst case of one 0..80 ms round trip each way.
    const meanErr = errors.reduce((a, b) => a + b, 0) / errors.length;
    assert.ok(meanErr < 15, `mean |error| ${meanErr}`);
  });

  test("samples are taken one after another", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    let inFlight = 0;
    let maxInFlight = 0;
    const clock = makeClock(time, server, {
      request: (p) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        return server.request(p).finally(() => { inFlight--; });
      },
    });
    await time.settle(clock.sync());
    assert.equal(maxInFlight, 1);
  });

  test("concurrent sync() calls share one run", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const clock = makeClock(time, server);
    const a = clock.sync();
    const b = clock.sync();
    assert.equal(a, b);
    await time.settle(a);
    assert.equal(server.requests, 8);
  });

  test("rejected, hanging and malformed requests are skipped", async () => {
    const time = new FakeTime();
    const failures = { 1: "reject", 3: "hang", 4: "malformed", 6: "reject" };
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET, seed: 7, fail: (n) => failures[n] });
    const clock = makeClock(time, server, { requestTimeoutMs: 3000 });
    const started = time.mono;

    await time.settle(clock.sync());

    assert.equal(server.requests, 8);
    assert.equal(clock.sampleCount, 4);
    assert.ok(time.mono - started >= 3000, "waited for the hanging request's timeout");
    assert.ok(Math.abs(serverError(clock, server)) <= maxKeptDelay(clock) / 2 + 1e-9);
    assert.equal(time.clientTimers().length, 0, "no timeout timer left behind");
  });

  test("a request that throws synchronously is skipped too", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    let n = 0;
    const clock = makeClock(time, server, {
      request: (p) => {
        if (++n === 2) throw new Error("socket closed");
        return server.request(p);
      },
    });
    await time.settle(clock.sync());
    assert.equal(clock.sampleCount, 7);
  });

  test("all samples failing throws and keeps the previous estimate", async () => {
    const time = new FakeTime();
    let failing = false;
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET, fail: () => (failing ? "reject" : null) });
    const fresh = makeClock(time, fakeServer(time, { offsetMs: 0, fail: () => "reject" }));
    await assert.rejects(time.settle(fresh.sync()), /all 8 time_sync requests failed/);
    assert.equal(fresh.isSynced, false);
    assert.equal(fresh.serverNow(), time.now());

    const clock = makeClock(time, server);
    await time.settle(clock.sync());
    const before = { offsetMs: clock.offsetMs, err: serverError(clock, server) };
    failing = true;
    await assert.rejects(time.settle(clock.sync()), /failed/);
    assert.ok(clock.lastError instanceof Error);
    assert.equal(clock.isSynced, true);
    assert.equal(clock.offsetMs, before.offsetMs);
    assert.equal(serverError(clock, server), before.err);
  });

  test("a wall-clock jump in the middle of a sync does not skew the estimate", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET, seed: 3 });
    const clock = makeClock(time, server, {
      request: (p) => {
        // The phone's clock is set 1 h ahead while the 5th round trip is in flight.
        if (server.requests === 4) time.at(1, () => { time.wallBase += 3_600_000; });
        return server.request(p);
      },
    });
    await time.settle(clock.sync());
    // Round trips are measured on the monotonic clock, so no sample saw a 1 h "delay"...
    assert.ok(maxKeptDelay(clock) <= 2 * 80, `max delay ${maxKeptDelay(clock)}`);
    // ...and the server-time estimate does not involve the wall clock at all.
    assert.ok(Math.abs(serverError(clock, server)) <= maxKeptDelay(clock) / 2 + 1e-9);
  });

  test("onChange reports the new offset and how far the estimate moved", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET, maxUpMs: 0, maxDownMs: 0 });
    const changes = [];
    const clock = makeClock(time, server, { onChange: (c) => changes.push(c) });
    await time.settle(clock.sync());
    server.serverBase += 250; // the server's clock is stepped 250 ms forward
    await time.settle(clock.sync());
    assert.equal(changes.length, 2);
    assert.ok(Math.abs(changes[0].shiftMs - TRUE_OFFSET) <= 1); // from the wall clock
    assert.ok(Math.abs(changes[1].shiftMs - 250) <= 1);
    assert.ok(Math.abs(changes[1].offsetMs - (TRUE_OFFSET + 250)) <= 1);
  });
});

// ---------------------------------------------------------------------------------------------
// serverNow()
// ---------------------------------------------------------------------------------------------

describe("serverNow", () => {
  test("is the wall clock before the first sync", () => {
    const time = new FakeTime();
    const clock = makeClock(time, fakeServer(time, { offsetMs: TRUE_OFFSET }));
    assert.equal(clock.serverNow(), time.now());
  });

  test("runs on the monotonic clock: a wall-clock jump after sync does not move it", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const clock = makeClock(time, server);
    await time.settle(clock.sync());

    const before = clock.serverNow();
    time.wallBase += 3_600_000; // +1 hour
    assert.equal(clock.serverNow(), before);
    time.wallBase -= 7_200_000; // and 1 hour behind
    assert.equal(clock.serverNow(), before);

    await time.advance(1234);
    assert.equal(clock.serverNow(), before + 1234);
  });
});

// ---------------------------------------------------------------------------------------------
// fireAt()
// ---------------------------------------------------------------------------------------------

/** A synced clock whose timers fire up to 3 ms early or late. */
async function syncedClock(seed = 11, options = {}) {
  const rng = mulberry32(seed * 7919);
  const time = new FakeTime({ lateness: () => rng() * 6 - 3 });
  const server = fakeServer(time, { offsetMs: TRUE_OFFSET, seed });
  const clock = makeClock(time, server, options);
  await time.settle(clock.sync());
  return { time, server, clock };
}

describe("fireAt", () => {
  test("fires once when the estimated server time reaches the target", async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const { time, server, clock } = await syncedClock(seed);
      const bound = maxKeptDelay(clock) / 2 + 1e-9;
      for (const aheadMs of [1, 15, 25, 1000, 5000, 61_000]) {
        const target = clock.serverNow() + aheadMs;
        const fires = [];
        clock.fireAt(target, (info) => fires.push({ ...info, estimate: clock.serverNow(), truth: server.clock() }));
        await time.advance(aheadMs + 100);
        assert.equal(fires.length, 1, `seed ${seed}, +${aheadMs} ms`);
        const { lateMs, estimate, truth } = fires[0];
        assert.equal(lateMs, estimate - target);
        assert.ok(lateMs >= 0 && lateMs <= 4, `lateMs ${lateMs} (timers ±3 ms)`);
        // On the true server clock, the error is the estimate's error plus the lateness.
        assert.ok(Math.abs(truth - target) <= bound + 4, `true error ${truth - target}`);
      }
    }
  });

  test("a target in the past fires on the next tick with its lateness", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const clock = makeClock(time, server);
    await time.settle(clock.sync());

    const fires = [];
    const handle = clock.fireAt(clock.serverNow() - 3000, (info) => fires.push(info));
    assert.equal(fires.length, 0, "never calls back synchronously");
    assert.equal(handle.fired, false);
    await time.advance(0);
    assert.deepEqual(fires, [{ lateMs: 3000 }]);
    assert.equal(handle.fired, true);
  });

  test("cancel() prevents firing and leaves no timer behind", async () => {
    const { time, clock } = await syncedClock();
    const fires = [];
    const handle = clock.fireAt(clock.serverNow() + 2000, () => fires.push(1));
    await time.advance(1500);
    handle.cancel();
    assert.equal(time.clientTimers().length, 0);
    await time.advance(5000);
    assert.equal(fires.length, 0);
    handle.cancel(); // harmless twice
  });

  test("each handle fires at most once, even when resyncs re-arm it", async () => {
    const { time, clock } = await syncedClock();
    const fires = [];
    const handle = clock.fireAt(clock.serverNow() + 500, () => fires.push(1));
    await time.advance(1000);
    await time.settle(clock.sync());
    await time.advance(2000);
    assert.equal(fires.length, 1);
    handle.cancel();
  });

  for (const shiftMs of [+500, -500]) {
    test(`a resync that moves the estimate by ${shiftMs} ms re-targets a pending fire`, async () => {
      const { time, server, clock } = await syncedClock(5);
      const target = clock.serverNow() + 10_000;
      let firedAt = null;
      clock.fireAt(target, () => { firedAt = { truth: server.clock(), estimate: clock.serverNow() }; });

      await time.advance(2000);
      server.serverBase += shiftMs; // the server's clock is stepped
      await time.settle(clock.sync());
      const bound = maxKeptDelay(clock) / 2 + 1e-9;

      await time.advance(10_000);
      assert.ok(firedAt, "fired");
      assert.ok(firedAt.estimate - target >= 0 && firedAt.estimate - target <= 4);
      assert.ok(Math.abs(firedAt.truth - target) <= bound + 4, `true error ${firedAt.truth - target}`);
    });
  }

  test("a resync that moves the target into the past fires it at once", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET, maxUpMs: 0, maxDownMs: 0 });
    const clock = makeClock(time, server);
    await time.settle(clock.sync());
    const fires = [];
    const target = clock.serverNow() + 1000;
    clock.fireAt(target, (info) => fires.push({ ...info, truth: server.clock() }));
    server.serverBase += 5000;
    const syncStart = time.mono;
    await time.settle(clock.sync());
    await time.advance(0);
    assert.equal(fires.length, 1);
    assert.equal(time.mono - syncStart < 1000, true, "fired right after the sync");
    // No network delay: the estimate is exact to the timestamps' resolution and the few ms
    // of drift the burst allows, so lateMs is the true lateness (4 s and the burst's time).
    assert.ok(fires[0].lateMs >= 4000, `lateMs ${fires[0].lateMs}`);
    assert.ok(Math.abs(fires[0].lateMs - (fires[0].truth - target)) <= clock.uncertaintyMs);
    assert.ok(clock.uncertaintyMs <= 1.1, `uncertainty ${clock.uncertaintyMs}`);
  });

  test("a fire armed before the first sync uses the synced estimate", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET, seed: 9 });
    const clock = makeClock(time, server);
    const target = server.clock() + 3000; // 123 s ahead on the unsynced (wall) clock
    let truth = null;
    clock.fireAt(target, () => { truth = server.clock(); });
    await time.settle(clock.sync());
    assert.equal(truth, null);
    await time.advance(5000);
    assert.ok(truth !== null && Math.abs(truth - target) <= maxKeptDelay(clock) / 2 + 1e-9);
  });

  test("a wall-clock jump while a fire is pending does not move it", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const clock = makeClock(time, server);
    await time.settle(clock.sync());
    const target = clock.serverNow() + 10_000;
    let estimate = null;
    clock.fireAt(target, () => { estimate = clock.serverNow(); });
    await time.advance(3000);
    time.wallBase -= 3_600_000;
    await time.advance(6999);
    assert.equal(estimate, null);
    await time.advance(2);
    assert.ok(estimate !== null && estimate - target >= 0 && estimate - target <= 1);
  });
});

// ---------------------------------------------------------------------------------------------
// start(), stop(), resync(), attachToDocument()
// ---------------------------------------------------------------------------------------------

describe("sampling while waiting (CLOCK_CONFIG)", () => {
  const cfg = CLOCK_CONFIG;

  /** Request counts per window [from, to) of ms relative to GO, for one phone. */
  function countRequests(log, goMono, windows) {
    return windows.map(([from, to]) => log.filter((m) => m - goMono >= from && m - goMono < to).length);
  }

  /** A started clock whose requests are logged (monotonic send times). */
  function loggedClock(time, server, options = {}) {
    const log = [];
    const clock = makeClock(time, server, {
      request: (p) => { log.push(time.mono); return server.request(p); },
      ...options,
    });
    return { clock, log };
  }

  test("the configuration is one frozen object with the documented rates", () => {
    assert.ok(Object.isFrozen(CLOCK_CONFIG));
    assert.equal(new ClockSync({ request: () => null }).config.finalIntervalMs, cfg.finalIntervalMs);
    assert.throws(() => new ClockSync({ request: () => null, samples: 48 }), /unknown option samples/);
    // Fewer round trips when far from GO than near it; none faster than one a second.
    assert.ok(cfg.idleIntervalMs > cfg.intervalMs && cfg.intervalMs > cfg.finalIntervalMs);
    assert.ok(cfg.finalIntervalMs * (1 - cfg.jitter) >= 1000);
  });

  test("a burst, then single round trips: sparse while GO is far, denser in its last minute, none in its last seconds", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const { clock, log } = loggedClock(time, server);
    await time.settle(clock.start());
    assert.equal(server.requests, cfg.burstSamples, "the burst");
    const goMono = time.mono + 5 * 60_000;
    let fired = null;
    clock.fireAt(clock.serverNow() + 5 * 60_000, () => { fired = server.clock(); });
    await time.advance(5 * 60_000 + 30_000);
    assert.ok(fired !== null);
    const [far, final, quiet, after] = countRequests(log, goMono, [
      [-4 * 60_000, -cfg.finalWindowMs], [-cfg.finalWindowMs + 2 * cfg.finalIntervalMs, -cfg.quietMs],
      [-cfg.quietMs, 0], [cfg.quietMs + 1000, 30_000],
    ]);
    const expectFar = (3 * 60_000) / cfg.intervalMs;
    const expectFinal = (cfg.finalWindowMs - 2 * cfg.finalIntervalMs - cfg.quietMs) / cfg.finalIntervalMs;
    assert.ok(Math.abs(far - expectFar) <= 3, `${far} round trips in the 3 far minutes, ~${expectFar}`);
    assert.ok(Math.abs(final - expectFinal) <= 4, `${final} in the last minute, ~${expectFinal}`);
    assert.equal(quiet, 0, "none in the quiet seconds before GO");
    assert.ok(after <= 1, `${after} after GO (idle: one a minute)`);
    clock.stop();
    assert.equal(time.clientTimers().length, 0, "stop() leaves no timer");
    const n = server.requests;
    await time.advance(10 * 60_000);
    assert.equal(server.requests, n);
  });

  test("with nothing pending, one round trip a minute; a new target brings the next one forward", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const { clock, log } = loggedClock(time, server);
    await time.settle(clock.start());
    const t0 = time.mono;
    await time.advance(10 * 60_000);
    const idle = log.filter((m) => m > t0).length;
    assert.ok(idle >= 8 && idle <= 12, `${idle} round trips in 10 idle minutes`);
    const before = log.length;
    clock.fireAt(clock.serverNow() + 30_000, () => {});
    await time.advance(cfg.finalIntervalMs * (1 + cfg.jitter) + 200);
    assert.ok(log.length > before, "sampled soon after a near target appeared");
    clock.stop();
  });

  test("resync() during the wait is a burst and keeps one sample timer", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const clock = makeClock(time, server);
    await time.settle(clock.start());
    await time.advance(30_000);
    const n = server.requests;
    await time.settle(clock.resync());
    assert.equal(server.requests, n + cfg.burstSamples);
    assert.equal(time.clientTimers().length, 1);
    clock.stop();
  });

  test("a failed burst is retried after retryMs; resync() never rejects", async () => {
    const time = new FakeTime();
    let down = true;
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET, fail: () => (down ? "reject" : null) });
    const clock = makeClock(time, server);
    assert.equal(await time.settle(clock.start()), null);
    assert.equal(clock.isSynced, false);
    assert.equal(time.clientTimers()[0].at, time.mono + cfg.retryMs);
    down = false;
    await time.advance(cfg.retryMs);
    await time.advance(2000);
    assert.equal(clock.isSynced, true);
    clock.stop();
  });

  test("resync() without start() does not schedule anything", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const clock = makeClock(time, server);
    await time.settle(clock.resync());
    assert.equal(time.clientTimers().length, 0);
  });

  test("a hidden page pauses sampling; shown again, a burst", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET });
    const clock = makeClock(time, server);
    const doc = new EventTarget();
    doc.visibilityState = "visible";
    const detach = clock.attachToDocument(doc);
    await time.settle(clock.start());
    clock.fireAt(clock.serverNow() + 20 * 60_000, () => {});

    doc.visibilityState = "hidden";
    doc.dispatchEvent(new Event("visibilitychange"));
    const n = server.requests;
    await time.advance(5 * 60_000);
    assert.equal(server.requests, n, "nothing while hidden");
    assert.equal(clock.isUnsure, true, "5 min without samples: the drift allowed makes it unsure");

    doc.visibilityState = "visible";
    doc.dispatchEvent(new Event("visibilitychange"));
    await time.advance(2000);
    assert.equal(server.requests, n + cfg.burstSamples);
    assert.equal(clock.isUnsure, false);
    await time.advance(30_000);
    assert.ok(server.requests > n + cfg.burstSamples, "single round trips resumed");

    detach();
    clock.stop();
    assert.equal(typeof clock.attachToDocument(undefined), "function"); // no document: no-op
  });
});

// ---------------------------------------------------------------------------------------------
// The estimate over a window: drift, the window itself, late joiners, the uncertainty
// ---------------------------------------------------------------------------------------------

/**
 * One phone waiting `waitMs` for GO against a server whose clock runs `driftPpm` off (timers
 * exact): the true error at GO (server clock − target when the fire ran) and the clock.
 */
async function waitForGo({ seed, waitMs, driftPpm = 0, options = {}, server: serverOpts = {} }) {
  const time = new FakeTime();
  const server = fakeServer(time, { offsetMs: TRUE_OFFSET + seed * 1000, seed, driftPpm, ...serverOpts });
  const clock = makeClock(time, server, { random: mulberry32(seed), ...options });
  await time.settle(clock.start());
  const target = server.clock() + waitMs;
  let result = null;
  clock.fireAt(target, () => { result = { err: server.clock() - target, bound: clock.uncertaintyMs }; });
  await time.advance(waitMs + 1000);
  clock.stop();
  return { ...result, clock, server };
}

const p99 = (values) => [...values].sort((a, b) => a - b)[Math.floor(0.99 * (values.length - 1))];

describe("estimate over the window", () => {
  for (const driftPpm of [+100, -100]) {
    test(`a phone clock ${driftPpm} ppm off over a 10-minute wait: fires within its bound and ±12 ms`, async () => {
      const errors = [];
      for (let seed = 1; seed <= 40; seed++) {
        const { err, bound } = await waitForGo({ seed, waitMs: 10 * 60_000, driftPpm });
        assert.ok(Math.abs(err) <= bound + 1e-6, `seed ${seed}: error ${err} > bound ${bound}`);
        errors.push(Math.abs(err));
      }
      // Taking the lowest-delay samples of the window as they are would err by up to
      // 100 ppm × 10 min = 60 ms; fitting the rate keeps it at the network's few ms.
      assert.ok(Math.max(...errors) <= 12, `max |error| ${Math.max(...errors)}`);
    });
  }

  test("drift ignored (maxDriftPpm 0) with a 100 ppm clock contradicts itself and loses the window", async () => {
    const { clock } = await waitForGo({ seed: 3, waitMs: 10 * 60_000, driftPpm: 100, options: { maxDriftPpm: 0 } });
    // The old samples disagree with the new ones by more than their bounds: dropped.
    assert.ok(clock.sampleCount < 30, `${clock.sampleCount} samples kept`);
  });

  test("more samples over the wait tighten the estimate beyond one burst", async () => {
    const burst = [];
    const waited = [];
    for (let seed = 1; seed <= 40; seed++) {
      const time = new FakeTime();
      const server = fakeServer(time, { offsetMs: TRUE_OFFSET, seed });
      const clock = makeClock(time, server);
      await time.settle(clock.sync());
      burst.push(Math.abs(serverError(clock, server)));
      waited.push(Math.abs((await waitForGo({ seed, waitMs: 5 * 60_000 })).err));
    }
    const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
    assert.ok(mean(waited) < mean(burst) * 0.75, `mean |error| after the wait ${mean(waited)}, after a burst ${mean(burst)}`);
    assert.ok(p99(waited) < p99(burst), `p99 after the wait ${p99(waited)}, after a burst ${p99(burst)}`);
  });

  test("the window: old samples go, at most maxSamples stay", async () => {
    const { clock } = await waitForGo({ seed: 5, waitMs: 20 * 60_000 });
    assert.ok(clock.sampleCount <= CLOCK_CONFIG.maxSamples, `${clock.sampleCount}`);
    assert.ok(clock.sampleCount >= 20, `${clock.sampleCount}`);
  });

  test("a server clock stepped by 300 ms: contradicting old samples are dropped, the estimate follows", async () => {
    const time = new FakeTime();
    const server = fakeServer(time, { offsetMs: TRUE_OFFSET, seed: 8 });
    const clock = makeClock(time, server);
    await time.settle(clock.start());
    clock.fireAt(clock.serverNow() + 10 * 60_000, () => {});
    await time.advance(3 * 60_000);
    server.serverBase += 300;
    await time.advance(60_000);
    assert.ok(Math.abs(serverError(clock, server)) <= clock.uncertaintyMs, `error ${serverError(clock, server)}`);
    assert.ok(Math.abs(serverError(clock, server)) <= 40);
    clock.stop();
  });

  test("a late joiner (starts 30 s before GO, drift 100 ppm) fires within ±20 ms", async () => {
    const errors = [];
    for (let seed = 1; seed <= 40; seed++) {
      const { err, bound, server } = await waitForGo({ seed, waitMs: 30_000, driftPpm: 100 });
      assert.ok(Math.abs(err) <= bound + 1e-6, `seed ${seed}: error ${err} > bound ${bound}`);
      assert.ok(server.requests <= CLOCK_CONFIG.burstSamples + 14, `${server.requests} round trips`);
      errors.push(Math.abs(err));
    }
    assert.ok(Math.max(...errors) <= 20, `max |error| ${Math.max(...errors)}`);
  });
});

describe("how sure the phone is (isUnsure, ±unsureMs)", () => {
  test("unsure before the first sync", () => {
    const time = new FakeTime();
    const clock = makeClock(time, fakeServer(time, { offsetMs: 0 }));
    assert.equal(clock.uncertaintyMs, Infinity);
    assert.equal(clock.isUnsure, true);
  });

  for (const [oneWayMs, unsure] of [[40, false], [55, true]]) {
    test(`every round trip ${oneWayMs} ms each way: bound ${oneWayMs + 1} ms → ${unsure ? "unsure" : "sure"}`, async () => {
      const time = new FakeTime();
      const server = fakeServer(time, {
        offsetMs: TRUE_OFFSET, minUpMs: oneWayMs, maxUpMs: oneWayMs, minDownMs: oneWayMs, maxDownMs: oneWayMs,
      });
      const clock = makeClock(time, server);
      await time.settle(clock.sync());
      // Symmetric paths: the estimate is right, but nothing proves it closer than the delay.
      assert.ok(Math.abs(serverError(clock, server)) <= 1);
      assert.ok(Math.abs(clock.uncertaintyMs - (oneWayMs + 1)) < 0.5, `${clock.uncertaintyMs}`);
      assert.equal(clock.isUnsure, unsure);
    });
  }

  test("a congested network (0–1,000 ms each way): unsure after the burst, surer as samples come", async () => {
    let unsureAfterBurst = 0;
    const afterBurst = [];
    const atGo = [];
    for (let seed = 1; seed <= 20; seed++) {
      const time = new FakeTime();
      const server = fakeServer(time, { offsetMs: TRUE_OFFSET, seed, maxUpMs: 1000, maxDownMs: 1000 });
      const clock = makeClock(time, server);
      await time.settle(clock.start());
      unsureAfterBurst += clock.isUnsure;
      afterBurst.push(clock.uncertaintyMs);
      clock.fireAt(clock.serverNow() + 5 * 60_000, () => { atGo.push(clock.uncertaintyMs); });
      await time.advance(5 * 60_000 + 1000);
      clock.stop();
    }
    assert.ok(unsureAfterBurst >= 14, `${unsureAfterBurst} of 20 unsure after the burst`);
    const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
    assert.ok(median(atGo) < median(afterBurst) * 0.8, `median bound ${median(atGo)} at GO, ${median(afterBurst)} after the burst`);
  });
});

describe("clockNote (the countdown's quiet note)", () => {
  test("nothing within ±50 ms, the bound beyond it, a word before the first sync", () => {
    assert.equal(clockNote({ isSynced: false, isUnsure: true, uncertaintyMs: Infinity }), "setting the clock…");
    assert.equal(clockNote({ isSynced: true, isUnsure: false, uncertaintyMs: 49 }), "");
    assert.equal(clockNote({ isSynced: true, isUnsure: true, uncertaintyMs: 120.4 }), "timing ±120 ms");
    assert.equal(clockNote({ isSynced: true, isUnsure: true, uncertaintyMs: 2500 }), "timing ±2.5 s");
  });

  test("on a real ClockSync: quiet at ±41 ms, shown at ±56 ms", async () => {
    for (const [oneWayMs, note] of [[40, ""], [55, "timing ±56 ms"]]) {
      const time = new FakeTime();
      const server = fakeServer(time, {
        offsetMs: TRUE_OFFSET, minUpMs: oneWayMs, maxUpMs: oneWayMs, minDownMs: oneWayMs, maxDownMs: oneWayMs,
      });
      const clock = makeClock(time, server);
      await time.settle(clock.sync());
      assert.equal(clockNote(clock), note);
    }
  });
});

describe("estimateOffset", () => {
  test("the intersection of every sample's bounds, without drift", () => {
    const fit = estimateOffset([{ mono: 0, lo: 90, hi: 110 }, { mono: 60_000, lo: 95, hi: 115 }], 60_000, 0);
    assert.deepEqual({ offset: fit.offset, halfWidth: fit.halfWidth }, { offset: 102.5, halfWidth: 7.5 });
  });

  test("with drift allowed, an old sample's bounds widen by rate × age", () => {
    const fit = estimateOffset([{ mono: 0, lo: 90, hi: 110 }, { mono: 60_000, lo: 95, hi: 115 }], 60_000, 200e-6);
    assert.deepEqual({ offset: fit.offset, halfWidth: fit.halfWidth }, { offset: 105, halfWidth: 10 });
  });

  test("a rate is fitted: samples on a 100 ppm line give it back", () => {
    const samples = [0, 100_000, 200_000, 300_000].map((m) => ({ mono: m, lo: 50 + m * 1e-4 - 1, hi: 50 + m * 1e-4 + 1 }));
    const fit = estimateOffset(samples, 300_000, 200e-6);
    assert.ok(Math.abs(fit.offset - 80) < 1e-6, `${fit.offset}`);
    assert.ok(fit.rateLo <= 1e-4 && fit.rateHi >= 1e-4 && fit.rateHi - fit.rateLo < 2e-5);
  });

  test("samples that cannot all be true: null", () => {
    assert.equal(estimateOffset([{ mono: 0, lo: 90, hi: 110 }, { mono: 60_000, lo: 145, hi: 155 }], 60_000, 200e-6), null);
    assert.equal(estimateOffset([], 0, 0), null);
  });
});

// ---------------------------------------------------------------------------------------------
// Real clock
// ---------------------------------------------------------------------------------------------

test("on the real clock, fireAt fires within ±30 ms of the server's target", async () => {
  const OFFSET = -987_654;
  const serverClock = () => performance.timeOrigin + performance.now() + OFFSET;
  const rng = mulberry32(42);
  const request = (payload) => new Promise((resolve) => {
    setTimeout(() => {
      const t1 = serverClock();
      setTimeout(() => resolve({ t0: payload.t0, t1, t2: t1 }), rng() * 20);
    }, rng() * 20);
  });
  const clock = new ClockSync({ request });
  await clock.sync();

  const targets = [50, 120, 200, 333, 400].map((ms) => clock.serverNow() + ms);
  const errors = await Promise.all(targets.map((target) => new Promise((resolve) => {
    clock.fireAt(target, () => resolve(serverClock() - target));
  })));
  for (const err of errors) {
    assert.ok(Math.abs(err) <= 30, `fired ${err.toFixed(1)} ms from the target (all: ${errors})`);
  }
});
