/**
 * Client clock synchronization: estimate the server's clock NTP-style and fire callbacks at
 * an absolute server time, timed with the monotonic clock.
 *
 * This is the heart of the synchronized moment (docs: DESIGN.md, "The synchronized moment"):
 * every phone fires GO locally at `go_at` on its own estimate of the server clock, so the
 * skew between phones is bounded by the estimation error, not by push latency.
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
 *     clock.attachToDocument(document);           // re-sync when the page becomes visible
 *     clock.start();                              // sync now, then every minute
 *     const go = clock.fireAt(timeline.go_at, ({ lateMs }) => showGo(lateMs));
 *     // go.cancel() when the timeline changes (a new fireAt for the new go_at).
 *
 * Times are epoch milliseconds unless named otherwise; `monotonic` values are milliseconds on
 * an arbitrary origin (performance.now()).
 *
 * @module clock
 */

/** Below this many ms before the target, fireAt re-arms with short timers only. */
const FINAL_APPROACH_MS = 20;
/** fireAt wakes up this many ms early from a long wait, to absorb late timers. */
const EARLY_WAKE_MS = 10;
/** Longest single timer fireAt sets; it re-checks the clock at least this often. */
const MAX_WAIT_MS = 1000;

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

/** Median of a non-empty array of numbers (mean of the two middle values for even sizes). */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * @typedef {object} ClockSyncOptions
 * @property {(payload: {t0: number}) => Promise<{t0: number, t1: number, t2: number}>} request
 *   sends `time_sync {t0}` and resolves to the server's acknowledgement; a rejection skips
 *   the sample.
 * @property {() => number} [now] the client's wall clock, epoch ms (default Date.now).
 * @property {() => number} [monotonic] a monotonic clock, ms (default performance.now).
 * @property {number} [samples] round trips per sync (default 8).
 * @property {number} [keep] samples with the smallest delay that are kept (default 3).
 * @property {number} [intervalMs] periodic re-sync interval after start() (default 60 000).
 * @property {number} [retryMs] re-sync delay after a failed periodic sync (default
 *   min(5000, intervalMs)).
 * @property {number} [requestTimeoutMs] a request still pending after this long is skipped
 *   (default 5000), so a lost acknowledgement cannot stall a sync.
 * @property {Function} [setTimeout] timer function (default globalThis.setTimeout).
 * @property {Function} [clearTimeout] (default globalThis.clearTimeout).
 * @property {(change: {offsetMs: number, delayMs: number, shiftMs: number}) => void} [onChange]
 *   called after every successful sync; shiftMs is how far the server-time estimate moved.
 */

/**
 * Estimates the server clock and schedules callbacks on it.
 *
 * After a sync the estimate is anchored on the monotonic clock:
 * serverNow() = serverTimeAtAnchor + (monotonic() − monotonicAtAnchor), so a later jump of the
 * phone's wall clock does not move it (nor any pending fireAt).
 */
export class ClockSync {
  /** Server − client wall-clock offset of the last successful sync (ms), or null. */
  offsetMs = null;
  /** Smallest round-trip delay seen in the last successful sync (ms), or null. */
  delayMs = null;
  /** Client wall-clock time (epoch ms) of the last successful sync, or null. */
  syncedAt = null;
  /** Number of samples that succeeded in the last successful sync. */
  sampleCount = 0;
  /** The samples kept by the last successful sync: [{offset, delay}], smallest delay first. */
  keptSamples = [];
  /** The error of the last failed sync (cleared by a successful one). */
  lastError = null;

  #request; #now; #monotonic; #setTimeout; #clearTimeout; #onChange;
  #samples; #keep; #intervalMs; #retryMs; #requestTimeoutMs;
  /** Server time (epoch ms) at monotonic time #anchorMono; null before the first sync. */
  #anchorServer = null;
  #anchorMono = null;
  #inflight = null;   // the running sync's promise, shared by concurrent callers
  #running = false;   // start() called and not stopped
  #periodicTimer = null;
  #pending = new Set(); // fireAt entries not yet fired or cancelled

  /** @param {ClockSyncOptions} options */
  constructor({
    request,
    now = () => Date.now(),
    monotonic = () => performance.now(),
    samples = 8,
    keep = 3,
    intervalMs = 60000,
    retryMs = Math.min(5000, intervalMs),
    requestTimeoutMs = 5000,
    setTimeout = globalThis.setTimeout,
    clearTimeout = globalThis.clearTimeout,
    onChange,
  }) {
    if (typeof request !== "function") throw new TypeError("ClockSync needs a request function");
    // Call the injected functions unbound: browsers throw "Illegal invocation" when
    // setTimeout or performance.now are called with another `this`.
    this.#request = (payload) => request(payload);
    this.#now = () => now();
    this.#monotonic = () => monotonic();
    this.#setTimeout = (fn, ms) => setTimeout(fn, ms);
    this.#clearTimeout = (id) => clearTimeout(id);
    this.#onChange = onChange;
    this.#samples = Math.max(1, samples);
    this.#keep = Math.max(1, keep);
    this.#intervalMs = intervalMs;
    this.#retryMs = retryMs;
    this.#requestTimeoutMs = requestTimeoutMs;
  }

  /** True once a sync has succeeded. */
  get isSynced() {
    return this.#anchorServer !== null;
  }

  /**
   * Estimated server time, epoch ms. Before the first sync this is the client's wall clock.
   * @returns {number}
   */
  serverNow() {
    if (this.#anchorServer === null) return this.#now();
    return this.#anchorServer + (this.#monotonic() - this.#anchorMono);
  }

  /**
   * Takes `samples` round trips one after another, keeps the `keep` with the smallest delay
   * and sets the offset to the median of their offsets. Concurrent calls share one run.
   *
   * @returns {Promise<{offsetMs: number, delayMs: number}>}
   * @throws {Error} when every sample failed (the previous estimate is kept).
   */
  sync() {
    if (!this.#inflight) {
      this.#inflight = this.#takeSamples().finally(() => { this.#inflight = null; });
    }
    return this.#inflight;
  }

  async #takeSamples() {
    const samples = [];
    let lastError = null;
    for (let i = 0; i < this.#samples; i++) {
      try {
        samples.push(await this.#sampleOnce());
      } catch (err) {
        lastError = err; // a lost or malformed round trip is skipped
      }
    }
    if (samples.length === 0) {
      const err = new Error(`clock sync failed: all ${this.#samples} time_sync requests failed`);
      err.cause = lastError;
      this.lastError = err;
      throw err;
    }
    const kept = samples.sort((a, b) => a.delay - b.delay).slice(0, this.#keep);
    // Each sample also gives "server − monotonic", which does not involve the wall clock
    // at all; the anchor uses it, so a wall-clock jump during the sync cannot skew it.
    const monoOffset = median(kept.map((s) => s.monoOffset));
    const before = this.serverNow();
    const anchorMono = this.#monotonic();
    this.#anchorMono = anchorMono;
    this.#anchorServer = anchorMono + monoOffset;
    this.offsetMs = median(kept.map((s) => s.offset));
    this.delayMs = kept[0].delay;
    this.syncedAt = this.#now();
    this.sampleCount = samples.length;
    this.keptSamples = kept.map(({ offset, delay }) => ({ offset, delay }));
    this.lastError = null;
    const result = { offsetMs: this.offsetMs, delayMs: this.delayMs };
    this.#rearmAll(); // pending fireAt timers follow the new estimate
    try {
      this.#onChange?.({ ...result, shiftMs: this.serverNow() - before });
    } catch (err) {
      // A listener's bug must not fail the sync: report it (browsers log it) and go on.
      (globalThis.reportError ?? console.error)(err);
    }
    return result;
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
    // t3 from the monotonic round trip, not the wall clock, which may have jumped meanwhile.
    const { offset, delay } = computeSample(t0, t1, t2, t0 + (m3 - m0));
    return { offset, delay, monoOffset: (t1 + t2) / 2 - (m0 + m3) / 2 };
  }

  #withTimeout(promise) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = this.#setTimeout(() => reject(new Error("time_sync timed out")), this.#requestTimeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => this.#clearTimeout(timer));
  }

  /**
   * Re-syncs now and never rejects (for event handlers: socket reconnect, visibilitychange).
   * When started, the next periodic sync is counted from this one.
   * @returns {Promise<{offsetMs: number, delayMs: number} | null>} null when the sync failed.
   */
  resync() {
    return this.sync().then(
      (result) => { this.#schedulePeriodic(this.#intervalMs); return result; },
      () => { this.#schedulePeriodic(this.#retryMs); return null; },
    );
  }

  /**
   * Syncs now, then every `intervalMs` (after a failure, again after `retryMs`).
   * @returns {Promise<{offsetMs: number, delayMs: number} | null>} the first sync's result.
   */
  start() {
    this.#running = true;
    return this.resync();
  }

  /** Stops the periodic re-sync (pending fireAt handles stay armed). */
  stop() {
    this.#running = false;
    if (this.#periodicTimer !== null) this.#clearTimeout(this.#periodicTimer);
    this.#periodicTimer = null;
  }

  #schedulePeriodic(delayMs) {
    if (this.#periodicTimer !== null) this.#clearTimeout(this.#periodicTimer);
    this.#periodicTimer = null;
    if (!this.#running) return;
    this.#periodicTimer = this.#setTimeout(() => {
      this.#periodicTimer = null;
      this.resync();
    }, delayMs);
  }

  /**
   * Re-syncs whenever the page becomes visible again (phones throttle or freeze hidden tabs,
   * and the clock may have drifted or jumped meanwhile). Touches only the given document.
   *
   * @param {{addEventListener: Function, removeEventListener: Function,
   *          visibilityState?: string}} doc the page's `document`.
   * @returns {() => void} detaches the listener.
   */
  attachToDocument(doc) {
    if (!doc) return () => {};
    const onVisibility = () => {
      if (doc.visibilityState === "visible") this.resync();
    };
    doc.addEventListener("visibilitychange", onVisibility);
    return () => doc.removeEventListener("visibilitychange", onVisibility);
  }

  /**
   * Calls `callback` once, when the estimated server clock reaches `serverTimeMs`.
   *
   * Waits are measured on the monotonic clock and re-checked on every wake-up (timers fire
   * early or late); the last ~20 ms are covered by short re-arms, so the callback is late by a
   * timer's granularity at most. A resync re-arms pending handles on the new estimate. A target
   * already in the past fires at once (on the next tick) with the lateness, e.g. for a phone
   * that joins after GO. The callback always runs asynchronously, after fireAt returned.
   *
   * @param {number} serverTimeMs target, server epoch ms.
   * @param {(info: {lateMs: number}) => void} callback lateMs = serverNow() − serverTimeMs ≥ 0.
   * @returns {{cancel: () => void, readonly fired: boolean}} the handle.
   */
  fireAt(serverTimeMs, callback) {
    const entry = { target: serverTimeMs, callback, timer: null, fired: false };
    this.#pending.add(entry);
    this.#arm(entry);
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
