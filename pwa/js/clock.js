/**
 * Client clock synchronization: estimate the server's clock NTP-style and fire callbacks at
 * an absolute server time, timed with the monotonic clock.
 *
 * This is the heart of the synchronized moment (docs: DESIGN.md, "The synchronized moment"):
 * every phone fires GO locally at `go_at` on its own estimate of the server clock, so the
 * skew between phones is bounded by the estimation error, not by push latency.
 *
 * How the estimate is made (docs/ARCHITECTURE.md, "The clock"):
 *
 * - a **burst** of `burstSamples` round trips back to back on start, on every reconnect and
 *   when the page becomes visible again, so a phone has an estimate within a second;
 * - then **single round trips spread over the wait**: one every `intervalMs` while a fireAt
 *   target (GO) is pending, one every `finalIntervalMs` in its last `finalWindowMs`, none in
 *   its last `quietMs`, one every `idleIntervalMs` with nothing pending; each wait is
 *   randomized by ±`jitter` so a crowd's requests spread out; nothing while the page is hidden;
 * - every sample of the last `windowMs` is kept (at most `maxSamples`, the highest-delay ones
 *   go first). Each round trip bounds the true offset: it lies between offset − delay/2 and
 *   offset + delay/2 (at the round trip's midpoint). The estimate is the middle of what every
 *   kept sample allows at once, with the phone's clock rate allowed to differ from the
 *   server's by up to `maxDriftPpm` (`estimateOffset`: the offset and the drift rate are
 *   fitted together, so a window of minutes gains precision instead of accumulating drift).
 *   Its half-width is a bound on the error, `uncertaintyMs`; samples that contradict newer
 *   ones (a clock stepped, a phone that slept) are dropped, oldest first;
 * - every improvement of the estimate re-arms pending fireAt timers.
 *
 * `CLOCK_CONFIG` is the one configuration: the PWA (socket.js), the demo crowd and every
 * benchmark phone (bench/sim/) run it as it is. A benchmark of anything else is a named
 * experiment (bench/sync.py --experiment).
 *
 * The module has no DOM or Socket.IO dependency: it talks to the server only through an
 * injected `request` function and reads time only through injected clocks, so the same file
 * runs in the browser, in Node (benchmark clients) and under fake clocks in tests.
 *
 * Usage in the app:
 *
 *     import { ClockSync } from "./clock.js";
 *     const clock = new ClockSync({
 *       request: (p) => socket.timeout(5000).emitWithAck("time_sync", p),
 *     });
 *     socket.on("connect", () => clock.resync()); // "connect" also fires on every reconnect
 *     clock.attachToDocument(document);           // pause when hidden, burst when shown again
 *     clock.start();                              // burst now, then single round trips
 *     const go = clock.fireAt(timeline.go_at, ({ lateMs }) => showGo(lateMs));
 *     // go.cancel() when the timeline changes (a new fireAt for the new go_at).
 *     if (clock.isUnsure) showUnsure(clock.uncertaintyMs);
 *
 * Times are epoch milliseconds unless named otherwise; `monotonic` values are milliseconds on
 * an arbitrary origin (performance.now()).
 *
 * @module clock
 */

/**
 * The clock configuration every phone runs (the PWA, the demo crowd, the benchmarks).
 *
 * Round trips per phone: 1 per `intervalMs` while GO is pending, 1 per `finalIntervalMs` in
 * its last minute, 1 per `idleIntervalMs` otherwise; plus a burst of `burstSamples` on
 * connect and when the page is shown again. At 5,000 phones on one server process that is
 * 5,000 / 6 s = 833 `time_sync`/s in the last minute before GO, 250/s before it, 83/s with
 * no GO pending (docs/BENCHMARKS.md, `timesync`: what that rate costs the server). Denser
 * sampling would buy little: the estimate's error p99 is ~11–12 ms with these settings under
 * 0–80 ms random delays each way and ±100 ppm drift (tests/js/clock.test.mjs).
 */
export const CLOCK_CONFIG = Object.freeze({
  /** Round trips back to back on start, reconnect and page shown again. */
  burstSamples: 8,
  /** While a fireAt target is pending: one round trip this often (ms)... */
  intervalMs: 20_000,
  /** ...and in its last `finalWindowMs`, one this often (ms)... */
  finalWindowMs: 60_000,
  finalIntervalMs: 6_000,
  /** ...and none in its last `quietMs` (the estimate is settled; the server sends GO). */
  quietMs: 3_000,
  /** With nothing pending: one round trip this often (ms). */
  idleIntervalMs: 60_000,
  /** Each wait is drawn uniformly within ±jitter of its nominal length. */
  jitter: 0.2,
  /** Samples older than this are dropped (ms)... */
  windowMs: 10 * 60_000,
  /** ...and beyond this many, the highest-delay one. */
  maxSamples: 48,
  /** Largest rate difference between the phone's and the server's clock assumed (ppm). */
  maxDriftPpm: 150,
  /** Timestamp granularity added to each sample's bound (ms). */
  resolutionMs: 1,
  /** An error bound above this (ms) makes the phone say it is unsure (`isUnsure`). */
  unsureMs: 50,
  /** A round trip without an answer after this long is skipped (ms). */
  requestTimeoutMs: 5000,
  /** After a failed burst, the next round trip comes this soon (ms). */
  retryMs: 5000,
});

/** Below this many ms before the target, fireAt re-arms with short timers only. */
const FINAL_APPROACH_MS = 20;
/** fireAt wakes up this many ms early from a long wait, to absorb late timers. */
const EARLY_WAKE_MS = 10;
/** Longest single timer fireAt sets; it re-checks the clock at least this often. */
const MAX_WAIT_MS = 1000;
/** Steps of the searches in estimateOffset (each shrinks the range to 2/3). */
const SEARCH_STEPS = 48;

/**
 * One NTP-style sample from the four timestamps of a round trip.
 *
 * @param {number} t0 client send time (client clock, ms)
 * @param {number} t1 server receive time (server clock, ms)
 * @param {number} t2 server send time (server clock, ms)
 * @param {number} t3 client receive time (client clock, ms)
 * @returns {{offset: number, delay: number}} offset = server − client clock (ms); delay =
 *   round trip minus server processing (ms). The true offset lies within offset ± delay/2.
 * @example
 * computeSample(1000, 1510, 1512, 1022) // → { offset: 500, delay: 20 }
 */
export function computeSample(t0, t1, t2, t3) {
  return { offset: ((t1 - t0) + (t2 - t3)) / 2, delay: (t3 - t0) - (t2 - t1) };
}

/** The maximum of a concave function on [lo, hi] (ternary search): [x, f(x)]. */
function maximize(f, lo, hi) {
  for (let i = 0; i < SEARCH_STEPS && hi - lo > 1e-12; i++) {
    const a = lo + (hi - lo) / 3;
    const b = hi - (hi - lo) / 3;
    if (f(a) < f(b)) lo = a;
    else hi = b;
  }
  const x = (lo + hi) / 2;
  return [x, f(x)];
}

/** The root of an increasing function on [lo, hi] with f(lo) < 0 ≤ f(hi) (bisection). */
function root(f, lo, hi) {
  for (let i = 0; i < SEARCH_STEPS && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < 0) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * What a set of round trips says about the server − monotonic offset at monotonic time `at`,
 * when that offset may change linearly at up to `maxDrift` ms per ms.
 *
 * Sample i, taken at monotonic time m_i, says the offset then was within [lo_i, hi_i]
 * (offset ± delay/2, widened by the timestamp resolution). An offset θ at `at` with rate r is
 * possible when lo_i ≤ θ − r·(at − m_i) ≤ hi_i for every i and |r| ≤ maxDrift. Returns the
 * middle of the range of possible θ, its half-width (a bound on the error) and the range of
 * possible rates; null when no θ and r satisfy every sample.
 *
 * @param {{mono: number, lo: number, hi: number}[]} samples
 * @param {number} at monotonic time of the estimate (ms)
 * @param {number} maxDrift largest |rate| (ms per ms, e.g. 200e-6)
 * @returns {{offset: number, halfWidth: number, rate: number, rateLo: number,
 *   rateHi: number} | null}
 * @example
 * // Two round trips a minute apart, each ±10 ms: the estimate is within ±10 ms plus drift.
 * estimateOffset([{mono: 0, lo: 90, hi: 110}, {mono: 60000, lo: 95, hi: 115}], 60000, 0)
 * // → { offset: 102.5, halfWidth: 7.5, rate: 0, rateLo: 0, rateHi: 0 }
 */
export function estimateOffset(samples, at, maxDrift) {
  const n = samples.length;
  if (n === 0) return null;
  const ages = new Float64Array(n);
  for (let i = 0; i < n; i++) ages[i] = at - samples[i].mono;
  const upper = (r) => { // the lowest upper bound on θ for rate r (concave in r)
    let u = Infinity;
    for (let i = 0; i < n; i++) u = Math.min(u, samples[i].hi + r * ages[i]);
    return u;
  };
  const lower = (r) => { // the highest lower bound on θ for rate r (convex in r)
    let l = -Infinity;
    for (let i = 0; i < n; i++) l = Math.max(l, samples[i].lo + r * ages[i]);
    return l;
  };
  const gap = (r) => upper(r) - lower(r); // concave: the possible rates form one interval
  const [rBest, widest] = maximize(gap, -maxDrift, maxDrift);
  if (!(widest >= -1e-9)) return null;
  const rateLo = gap(-maxDrift) >= 0 ? -maxDrift : root(gap, -maxDrift, rBest);
  const rateHi = gap(maxDrift) >= 0 ? maxDrift : root((r) => -gap(r), rBest, maxDrift);
  const [, top] = maximize(upper, rateLo, rateHi);
  const [, negBottom] = maximize((r) => -lower(r), rateLo, rateHi);
  const bottom = -negBottom;
  return {
    offset: (top + bottom) / 2,
    halfWidth: Math.max(0, (top - bottom) / 2),
    rate: (rateLo + rateHi) / 2,
    rateLo,
    rateHi,
  };
}

/**
 * A quiet note for the countdown about how sure the phone's clock is: "" when the estimate is
 * known to within ±`unsureMs` (CLOCK_CONFIG: 50 ms), else what to show next to it.
 *
 * @param {{isSynced: boolean, isUnsure: boolean, uncertaintyMs: number}} clock a ClockSync
 * @returns {string}
 * @example
 * clockNote({ isSynced: true, isUnsure: true, uncertaintyMs: 120.4 }) // → "timing ±120 ms"
 */
export function clockNote(clock) {
  if (!clock?.isSynced) return "setting the clock…";
  if (!clock.isUnsure) return "";
  const ms = clock.uncertaintyMs;
  return ms < 1000 ? `timing ±${Math.round(ms)} ms` : `timing ±${(ms / 1000).toFixed(1)} s`;
}

/**
 * @typedef {object} ClockSyncOptions
 * @property {(payload: {t0: number}) => Promise<{t0: number, t1: number, t2: number}>} request
 *   sends `time_sync {t0}` and resolves to the server's acknowledgement; a rejection skips
 *   the sample.
 * @property {() => number} [now] the client's wall clock, epoch ms (default Date.now).
 * @property {() => number} [monotonic] a monotonic clock, ms (default performance.now).
 * @property {() => number} [random] uniform [0, 1) for the jitter (default Math.random).
 * @property {Function} [setTimeout] timer function (default globalThis.setTimeout).
 * @property {Function} [clearTimeout] (default globalThis.clearTimeout).
 * @property {(change: {offsetMs: number, delayMs: number, shiftMs: number,
 *   uncertaintyMs: number}) => void} [onChange] called after every new estimate; shiftMs is
 *   how far the server-time estimate moved.
 * Every key of CLOCK_CONFIG may be given too (tests and named experiments only: the app and
 * the benchmarks run CLOCK_CONFIG as it is).
 */

/**
 * Estimates the server clock and schedules callbacks on it.
 *
 * The estimate is anchored on the monotonic clock: serverNow() = serverTimeAtAnchor +
 * (monotonic() − monotonicAtAnchor) × (1 + rate), so a later jump of the phone's wall clock
 * does not move it (nor any pending fireAt).
 */
export class ClockSync {
  /** Server − client wall-clock offset of the current estimate (ms), or null. */
  offsetMs = null;
  /** Smallest round-trip delay among the kept samples (ms), or null. */
  delayMs = null;
  /** Client wall-clock time (epoch ms) of the latest estimate, or null. */
  syncedAt = null;
  /** Number of samples the current estimate rests on. */
  sampleCount = 0;
  /** Round trips answered since start (each a `time_sync` request). */
  requestCount = 0;
  /** The error of the last failed burst or round trip (cleared by a successful one). */
  lastError = null;

  #request; #now; #monotonic; #random; #setTimeout; #clearTimeout; #onChange;
  #cfg;
  /** Kept samples: {mono (midpoint), lo, hi (bounds of server − monotonic), delay, offset}. */
  #samples = [];
  /** Server time (epoch ms) at monotonic time #anchorMono; null before the first estimate. */
  #anchorServer = null;
  #anchorMono = null;
  #rate = 0;
  #halfWidth = Infinity;
  #rateSpread = 0;
  #burst = null;   // the running burst's promise, shared by concurrent callers
  #single = null;  // the running single round trip
  #running = false; // start() called and not stopped
  #paused = false;  // the page is hidden
  #sampleTimer = null;
  #sampleDue = null; // monotonic time the sample timer is due
  #pending = new Set(); // fireAt entries not yet fired or cancelled

  /** @param {ClockSyncOptions} options */
  constructor({
    request,
    now = () => Date.now(),
    monotonic = () => performance.now(),
    random = Math.random,
    setTimeout = globalThis.setTimeout,
    clearTimeout = globalThis.clearTimeout,
    onChange,
    ...overrides
  }) {
    if (typeof request !== "function") throw new TypeError("ClockSync needs a request function");
    for (const key of Object.keys(overrides)) {
      if (!(key in CLOCK_CONFIG)) throw new TypeError(`ClockSync: unknown option ${key}`);
    }
    // Call the injected functions unbound: browsers throw "Illegal invocation" when
    // setTimeout or performance.now are called with another `this`.
    this.#request = (payload) => request(payload);
    this.#now = () => now();
    this.#monotonic = () => monotonic();
    this.#random = () => random();
    this.#setTimeout = (fn, ms) => setTimeout(fn, ms);
    this.#clearTimeout = (id) => clearTimeout(id);
    this.#onChange = onChange;
    this.#cfg = { ...CLOCK_CONFIG, ...overrides };
    this.#cfg.burstSamples = Math.max(1, this.#cfg.burstSamples);
  }

  /** The configuration this clock runs (CLOCK_CONFIG unless overridden). */
  get config() {
    return { ...this.#cfg };
  }

  /** True once a sync has succeeded. */
  get isSynced() {
    return this.#anchorServer !== null;
  }

  /**
   * A bound on the error of serverNow() right now (ms): the half-width of what the kept
   * samples allow, growing with the drift allowed since; Infinity before the first sync.
   */
  get uncertaintyMs() {
    if (this.#anchorServer === null) return Infinity;
    return this.#halfWidth + this.#rateSpread * Math.abs(this.#monotonic() - this.#anchorMono);
  }

  /** True when the estimate is not known to within ±`unsureMs` (the phone should say so). */
  get isUnsure() {
    return this.uncertaintyMs > this.#cfg.unsureMs;
  }

  /** The kept samples, smallest delay first: [{offset (server − wall, ms), delay}]. */
  get keptSamples() {
    return this.#samples
      .map(({ offset, delay }) => ({ offset, delay }))
      .sort((a, b) => a.delay - b.delay);
  }

  /**
   * Estimated server time, epoch ms. Before the first sync this is the client's wall clock.
   * @returns {number}
   */
  serverNow() {
    if (this.#anchorServer === null) return this.#now();
    return this.#anchorServer + (this.#monotonic() - this.#anchorMono) * (1 + this.#rate);
  }

  /**
   * Takes `burstSamples` round trips one after another and updates the estimate with them
   * (on top of the kept ones). Concurrent calls share one burst.
   *
   * @returns {Promise<{offsetMs: number, delayMs: number}>}
   * @throws {Error} when every round trip failed (the previous estimate is kept).
   */
  sync() {
    if (!this.#burst) {
      // After a single round trip still in flight, else at once (the first request goes out
      // before sync() returns).
      const burst = this.#single
        ? this.#single.then(() => this.#takeBurst(), () => this.#takeBurst())
        : this.#takeBurst();
      this.#burst = burst.finally(() => { this.#burst = null; });
    }
    return this.#burst;
  }

  async #takeBurst() {
    const n = this.#cfg.burstSamples;
    let ok = 0;
    let lastError = null;
    for (let i = 0; i < n; i++) {
      try {
        this.#add(await this.#sampleOnce());
        ok++;
      } catch (err) {
        lastError = err; // a lost or malformed round trip is skipped
      }
    }
    if (ok === 0) {
      const err = new Error(`clock sync failed: all ${n} time_sync requests failed`);
      err.cause = lastError;
      this.lastError = err;
      throw err;
    }
    this.lastError = null;
    this.#estimate();
    return { offsetMs: this.offsetMs, delayMs: this.delayMs };
  }

  /** One round trip; rejects on a failed, timed-out or malformed acknowledgement. */
  async #sampleOnce() {
    const t0 = this.#now();
    const m0 = this.#monotonic();
    const ack = await this.#withTimeout(this.#request({ t0 }));
    const m3 = this.#monotonic();
    const { t1, t2 } = ack ?? {};
    if (!Number.isFinite(t1) || !Number.isFinite(t2) || (typeof ack.t0 === "number" && ack.t0 !== t0)) {
      throw new Error("malformed time_sync acknowledgement");
    }
    this.requestCount++;
    // t3 from the monotonic round trip, not the wall clock, which may have jumped meanwhile.
    const { offset, delay } = computeSample(t0, t1, t2, t0 + (m3 - m0));
    // The same round trip as "server − monotonic", which does not involve the wall clock.
    const monoOffset = (t1 + t2) / 2 - (m0 + m3) / 2;
    const half = delay / 2 + this.#cfg.resolutionMs;
    return { mono: (m0 + m3) / 2, lo: monoOffset - half, hi: monoOffset + half, delay, offset };
  }

  #withTimeout(promise) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = this.#setTimeout(() => reject(new Error("time_sync timed out")), this.#cfg.requestTimeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => this.#clearTimeout(timer));
  }

  /** Keeps a sample: drops those past the window, then the highest-delay one beyond the cap. */
  #add(sample) {
    const samples = this.#samples;
    samples.push(sample);
    const oldest = sample.mono - this.#cfg.windowMs;
    while (samples.length && samples[0].mono < oldest) samples.shift();
    while (samples.length > this.#cfg.maxSamples) {
      let worst = 0;
      for (let i = 1; i < samples.length - 1; i++) if (samples[i].delay > samples[worst].delay) worst = i;
      samples.splice(worst, 1); // never the newest
    }
  }

  /** A new estimate from the kept samples; re-arms pending fires; tells onChange. */
  #estimate() {
    const at = this.#monotonic();
    const maxDrift = this.#cfg.maxDriftPpm * 1e-6;
    let fit = estimateOffset(this.#samples, at, maxDrift);
    // No offset agrees with every sample: a clock was stepped, the phone slept, or a clock
    // runs faster than allowed. The newer samples describe the present: drop the oldest.
    while (fit === null && this.#samples.length > 1) {
      this.#samples.shift();
      fit = estimateOffset(this.#samples, at, maxDrift);
    }
    if (fit === null) return;
    const before = this.serverNow();
    this.#anchorMono = at;
    this.#anchorServer = at + fit.offset;
    this.#rate = fit.rate;
    this.#halfWidth = fit.halfWidth;
    this.#rateSpread = (fit.rateHi - fit.rateLo) / 2;
    this.offsetMs = this.#anchorServer - this.#now();
    this.delayMs = Math.min(...this.#samples.map((s) => s.delay));
    this.syncedAt = this.#now();
    this.sampleCount = this.#samples.length;
    this.#rearmAll(); // pending fireAt timers follow the new estimate
    try {
      this.#onChange?.({
        offsetMs: this.offsetMs,
        delayMs: this.delayMs,
        shiftMs: this.serverNow() - before,
        uncertaintyMs: this.#halfWidth,
      });
    } catch (err) {
      // A listener's bug must not fail the sync: report it (browsers log it) and go on.
      (globalThis.reportError ?? console.error)(err);
    }
  }

  /**
   * A burst now, never rejecting (for event handlers: socket reconnect, page shown again);
   * when started, single round trips follow on the schedule.
   * @returns {Promise<{offsetMs: number, delayMs: number} | null>} null when the burst failed.
   */
  resync() {
    return this.sync().then(
      (result) => { this.#scheduleSample(); return result; },
      () => { this.#scheduleSample(this.#cfg.retryMs); return null; },
    );
  }

  /**
   * A burst now, then single round trips on the schedule (see CLOCK_CONFIG).
   * @returns {Promise<{offsetMs: number, delayMs: number} | null>} the burst's result.
   */
  start() {
    this.#running = true;
    return this.resync();
  }

  /** Stops sampling (pending fireAt handles stay armed). */
  stop() {
    this.#running = false;
    this.#clearSampleTimer();
  }

  /** Pauses sampling (the page is hidden); pending fireAt handles stay armed. */
  pause() {
    this.#paused = true;
    this.#clearSampleTimer();
  }

  /** Ends a pause with a burst (the clock may have drifted or jumped meanwhile). */
  resume() {
    if (!this.#paused) return Promise.resolve(null);
    this.#paused = false;
    return this.resync();
  }

  #clearSampleTimer() {
    if (this.#sampleTimer !== null) this.#clearTimeout(this.#sampleTimer);
    this.#sampleTimer = null;
    this.#sampleDue = null;
  }

  /** How long until the next single round trip (ms), from the nearest pending target. */
  #nextWaitMs() {
    const cfg = this.#cfg;
    const jittered = (ms) => ms * (1 + cfg.jitter * (2 * this.#random() - 1));
    let nearest = Infinity;
    if (this.#anchorServer !== null) {
      const now = this.serverNow();
      for (const entry of this.#pending) nearest = Math.min(nearest, entry.target - now);
    }
    if (!Number.isFinite(nearest)) return jittered(cfg.idleIntervalMs);
    if (nearest <= cfg.quietMs) return Math.max(0, nearest) + cfg.quietMs; // after the target
    const nominal = nearest <= cfg.finalWindowMs ? cfg.finalIntervalMs : cfg.intervalMs;
    return Math.max(0, Math.min(jittered(nominal), nearest - cfg.quietMs - 50));
  }

  /** (Re)schedules the next single round trip: after `waitMs`, or on the schedule. */
  #scheduleSample(waitMs) {
    if (!this.#running || this.#paused) return;
    const wait = waitMs ?? this.#nextWaitMs();
    const due = this.#monotonic() + wait;
    if (this.#sampleTimer !== null && waitMs === undefined && this.#sampleDue <= due) return;
    this.#clearSampleTimer();
    this.#sampleDue = due;
    this.#sampleTimer = this.#setTimeout(() => {
      this.#sampleTimer = null;
      this.#sampleDue = null;
      this.#sampleTick();
    }, wait);
  }

  async #sampleTick() {
    if (!this.#running || this.#paused) return;
    if (this.#burst) { // a burst is under way: carry on when it ends
      this.#burst.then(() => this.#scheduleSample(), () => this.#scheduleSample(this.#cfg.retryMs));
      return;
    }
    if (!this.isSynced) {
      this.resync();
      return;
    }
    const cfg = this.#cfg;
    let nearest = Infinity;
    const now = this.serverNow();
    for (const entry of this.#pending) nearest = Math.min(nearest, entry.target - now);
    if (nearest > cfg.quietMs || nearest < 0) {
      this.#single = this.#sampleOnce();
      try {
        this.#add(await this.#single);
        this.lastError = null;
        this.#estimate();
      } catch (err) {
        this.lastError = err; // skipped; the next one comes on schedule
      } finally {
        this.#single = null;
      }
    }
    if (!this.#burst) this.#scheduleSample();
  }

  /**
   * Pauses sampling while the page is hidden (phones throttle or freeze hidden tabs) and
   * resumes with a burst when it becomes visible again (the clock may have drifted or jumped
   * meanwhile). Touches only the given document.
   *
   * @param {{addEventListener: Function, removeEventListener: Function,
   *          visibilityState?: string}} doc the page's `document`.
   * @returns {() => void} detaches the listener.
   */
  attachToDocument(doc) {
    if (!doc) return () => {};
    const onVisibility = () => {
      if (doc.visibilityState === "hidden") this.pause();
      else if (doc.visibilityState === "visible") {
        if (this.#paused) this.resume();
        else this.resync();
      }
    };
    doc.addEventListener("visibilitychange", onVisibility);
    if (doc.visibilityState === "hidden") this.pause();
    return () => doc.removeEventListener("visibilitychange", onVisibility);
  }

  /**
   * Calls `callback` once, when the estimated server clock reaches `serverTimeMs`.
   *
   * Waits are measured on the monotonic clock and re-checked on every wake-up (timers fire
   * early or late); the last ~20 ms are covered by short re-arms, so the callback is late by a
   * timer's granularity at most. Every new estimate re-arms pending handles; while one is
   * pending, round trips come more often as it nears (CLOCK_CONFIG). A target already in the
   * past fires at once (on the next tick) with the lateness, e.g. for a phone that joins
   * after GO. The callback always runs asynchronously, after fireAt returned.
   *
   * @param {number} serverTimeMs target, server epoch ms.
   * @param {(info: {lateMs: number}) => void} callback lateMs = serverNow() − serverTimeMs ≥ 0.
   * @returns {{cancel: () => void, readonly fired: boolean}} the handle.
   */
  fireAt(serverTimeMs, callback) {
    const entry = { target: serverTimeMs, callback, timer: null, fired: false };
    this.#pending.add(entry);
    this.#arm(entry);
    this.#scheduleSample(); // sooner, if the new target asks for it
    return {
      cancel: () => this.#disarm(entry),
      get fired() { return entry.fired; },
    };
  }

  #arm(entry) {
    if (entry.timer !== null) this.#clearTimeout(entry.timer);
    const remaining = entry.target - this.serverNow();
    let wait;
    if (remaining <= 0) wait = 0;                              // due: fire on the next tick
    else if (remaining <= FINAL_APPROACH_MS) wait = remaining; // final approach: short re-arms
    else wait = Math.min(remaining - EARLY_WAKE_MS, MAX_WAIT_MS);
    entry.timer = this.#setTimeout(() => this.#check(entry), wait);
  }

  #check(entry) {
    entry.timer = null;
    if (!this.#pending.has(entry)) return;
    const lateMs = this.serverNow() - entry.target;
    if (lateMs < 0) return this.#arm(entry); // woke early: wait for the remainder
    this.#pending.delete(entry);
    entry.fired = true;
    entry.callback({ lateMs });
  }

  #disarm(entry) {
    this.#pending.delete(entry);
    if (entry.timer !== null) this.#clearTimeout(entry.timer);
    entry.timer = null;
  }

  #rearmAll() {
    for (const entry of this.#pending) this.#arm(entry);
  }
}
