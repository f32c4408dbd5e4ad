/**
 * One simulated phone: joins a mob over REST, connects to /participant with the Socket.IO
 * client, keeps its clock in sync with the very same `pwa/js/clock.js` the PWA uses, arms
 * GO at `timeline.go_at_ms` and records on the machine's true clock when it fired locally
 * and when the server's `phase: action` push reached it (fire-on-receipt).
 *
 * The phone's own wall clock is the true clock plus a fixed offset (`offsetMs`, e.g. a random
 * ±10 min); every message pays the NetworkModel's delays (see net.mjs). The "true clock" is
 * `Date.now()` without the offset: the same system clock the server stamps times with.
 *
 * @module phone
 */

import { ClockSync } from "../../pwa/js/clock.js";
import { DelayedSocket } from "./net.mjs";

/** The machine's true clock (epoch ms): the server's clock source on the same machine. */
export const trueNow = () => Date.now();

const REST_RETRIES = 6;

/** Sleep `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @typedef {object} PhoneOptions
 * @property {number} index the phone's number (unique in a run; used in its nickname).
 * @property {string} restUrl server base URL for REST, e.g. http://127.0.0.1:5000
 * @property {string} socketUrl server base URL for Socket.IO (one of the server processes).
 * @property {string} mobId
 * @property {Function} io the socket.io-client `io` function.
 * @property {import("./net.mjs").NetworkModel} net this phone's network delays.
 * @property {number} offsetMs the phone's wall clock minus the true clock.
 * @property {object} [clock] overrides of CLOCK_CONFIG, for a named experiment only (every
 *   headline benchmark and the demo run the PWA's CLOCK_CONFIG as it is).
 * @property {(phone: Phone, kind: string, detail?: any) => void} [onEvent] hook for the runner
 *   ("fired", "go", "timeline", "task", "announcement", "synced", "disconnect").
 */

export class Phone {
  token = null;
  participant = null;
  socket = null;
  /** @type {DelayedSocket | null} */
  ds = null;
  /** @type {ClockSync | null} */
  clock = null;
  snapshot = null;
  timeline = null;
  phase = null;
  seq = 0;
  task = null;
  /** Local firing: {at (true ms), lateMs, target, estErrMs (estimate − truth at fire)}. */
  fired = null;
  /** Fire-on-receipt: {at (true ms, after the simulated delay), arrivedAt, atMs, seq}. */
  goReceived = null;
  /** Announcements: seq → true ms of receipt (after the simulated delay). */
  announcements = new Map();
  syncs = 0;
  syncFailures = 0;
  reconnects = 0;
  disconnects = 0;
  restAttempts = 0;
  error = null;
  timings = {};
  #fireHandle = null;
  #connected = false;

  /** @param {PhoneOptions} options */
  constructor(options) {
    this.options = { clock: {}, onEvent: () => {}, ...options };
    this.index = options.index;
  }

  #emit(kind, detail) {
    try {
      this.options.onEvent(this, kind, detail);
    } catch (err) {
      console.error(err);
    }
  }

  /** POST /api/mobs/{id}/participants (retried on network errors, 5xx and 429); sets the token. */
  async joinRest({ nickname, ref } = {}) {
    const { restUrl, mobId } = this.options;
    const body = {};
    if (nickname) body.nickname = nickname;
    if (ref) body.ref = ref;
    this.timings.restStart = trueNow();
    let lastError;
    let limitedWaits = 0;
    for (let attempt = 0; attempt < REST_RETRIES; attempt++) {
      this.restAttempts++;
      try {
        const res = await fetch(`${restUrl}/api/mobs/${mobId}/participants`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        const data = await res.json().catch(() => null);
        if (res.status === 201) {
          this.token = data.token;
          this.participant = data.participant;
          this.timings.restEnd = trueNow();
          return data;
        }
        lastError = new Error(`join ${res.status}: ${JSON.stringify(data?.error ?? data)}`);
        if (res.status === 429 && limitedWaits++ < 20) {
          // Rate limited per address (every simulated phone shares 127.0.0.1): wait and retry.
          const retryS = Number(res.headers.get("retry-after")) || data?.error?.retry_after_s || 5;
          await sleep(retryS * 1000 * (1 + Math.random() * 0.5));
          attempt--;
          continue;
        }
        if (res.status < 500) break; // refused: retrying will not help
      } catch (err) {
        lastError = err;
      }
      await sleep(200 * 2 ** attempt);
    }
    this.error = `rest: ${lastError?.message ?? lastError}`;
    throw lastError;
  }

  /**
   * Connects /participant with auth {token} over WebSocket; resolves on the first connect.
   * Later reconnects re-join with the last seq seen and re-sync the clock.
   */
  connect({ timeoutMs = 60_000 } = {}) {
    const { io, socketUrl, net } = this.options;
    this.timings.connectStart = trueNow();
    const socket = io(`${socketUrl}/participant`, {
      transports: ["websocket"],
      auth: { token: this.token },
      forceNew: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      timeout: 20_000,
    });
    this.socket = socket;
    this.ds = new DelayedSocket(socket, net, { clock: trueNow });
    this.#listen();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("connect timed out")), timeoutMs);
      socket.on("connect", () => {
        if (!this.#connected) {
          this.#connected = true;
          this.timings.connected = trueNow();
          clearTimeout(timer);
          resolve();
          return;
        }
        this.reconnects++;
        this.joinMob().catch(() => {});
        this.clock?.resync();
      });
      socket.on("connect_error", (err) => {
        if (!this.#connected && !socket.active) {
          clearTimeout(timer); // refused by the server: no automatic retry
          this.error = `connect: ${err.message} ${JSON.stringify(err.data ?? "")}`;
          reject(err);
        }
      });
    });
  }

  #listen() {
    const { ds, socket } = this;
    socket.on("disconnect", (reason) => {
      this.disconnects++;
      this.#emit("disconnect", reason);
    });
    ds.on("timeline", (data) => {
      this.#seen(data.seq);
      this.setTimeline(data.timeline);
    });
    ds.on("phase", (data, meta) => this.#onPhase(data, meta));
    ds.on("announcement", (data) => {
      this.#seen(data.seq);
      if (!this.announcements.has(data.seq)) this.announcements.set(data.seq, trueNow());
      this.#emit("announcement", data);
    });
    ds.on("task_assigned", (data) => {
      this.task = data.task;
      this.#emit("task", data.task);
    });
  }

  #seen(seq) {
    if (Number.isInteger(seq) && seq > this.seq) this.seq = seq;
  }

  #onPhase(data, meta) {
    this.#seen(data.seq);
    this.phase = data.phase;
    if (data.phase === "action" && !this.goReceived) {
      this.goReceived = { at: trueNow(), arrivedAt: meta?.arrivedAt ?? null, atMs: data.at_ms, seq: data.seq };
      this.#emit("go", this.goReceived);
    }
    if (data.phase === "cancelled") this.#disarm();
  }

  /** join_mob {mob, last_seq?}: the snapshot; replays missed events when the server sends them. */
  async joinMob({ timeoutMs = 30_000 } = {}) {
    const payload = { mob: this.options.mobId };
    if (this.seq > 0) payload.last_seq = this.seq;
    const ack = await this.ds.request("join_mob", payload, timeoutMs);
    if (!ack || ack.error) {
      const err = new Error(`join_mob: ${JSON.stringify(ack?.error ?? ack)}`);
      this.error = err.message;
      throw err;
    }
    this.timings.joined ??= trueNow();
    if (Array.isArray(ack.missed)) {
      for (const { event, data } of ack.missed) {
        if (event === "timeline") this.setTimeline(data.timeline);
        else if (event === "phase") this.#onPhase(data, null);
        this.#seen(data.seq);
      }
    } else {
      this.snapshot = ack;
      this.phase = ack.phase;
      this.task = ack.task ?? this.task;
      this.setTimeline(ack.timeline, { force: true });
    }
    this.#seen(ack.seq);
    return ack;
  }

  /** Starts ClockSync as the PWA does (a burst now, then single round trips on the
   * CLOCK_CONFIG schedule). Resolves after the first burst. */
  startClock() {
    const { clock = {}, offsetMs } = this.options;
    this.clock = new ClockSync({
      request: (payload) => this.ds.request("time_sync", payload, 5000),
      now: () => Date.now() + offsetMs,
      ...clock,
      onChange: () => {
        this.syncs++;
        if (this.syncs === 1) this.#armFire(); // later syncs re-arm pending fires themselves
        this.#emit("synced");
      },
    });
    this.timings.clockStart = trueNow();
    return this.clock.start().then((result) => {
      if (result === null) this.syncFailures++;
      return result;
    });
  }

  /** Adopts a timeline (newer versions only, unless forced) and re-arms GO on it. */
  setTimeline(timeline, { force = false } = {}) {
    if (!timeline) return;
    if (!force && this.timeline && timeline.version < this.timeline.version) return;
    const moved = this.timeline?.go_at_ms !== timeline.go_at_ms;
    this.timeline = timeline;
    if (timeline.phase === "cancelled") {
      this.#disarm();
      return;
    }
    if (moved) this.#armFire();
    this.#emit("timeline", timeline);
  }

  #disarm() {
    this.#fireHandle?.cancel();
    this.#fireHandle = null;
  }

  /** Arms GO on the current timeline; only once synced (the phone's own clock may be minutes off). */
  #armFire() {
    if (!this.clock?.isSynced || !this.timeline || this.fired) return;
    this.#disarm();
    const target = this.timeline.go_at_ms;
    this.#fireHandle = this.clock.fireAt(target, ({ lateMs }) => {
      const at = trueNow();
      this.fired = {
        at, lateMs, target, estErrMs: this.clock.serverNow() - at,
        boundMs: this.clock.uncertaintyMs, samples: this.clock.sampleCount,
      };
      this.#emit("fired", this.fired);
    });
  }

  /** report_location through the delayed socket; resolves to the ack. */
  reportLocation(fix) {
    return this.ds.request("report_location", fix, 15_000);
  }

  /** confirm_deed through the delayed socket; resolves to the ack. */
  confirmDeed(deed) {
    return this.ds.request("confirm_deed", deed, 15_000);
  }

  /** Stops the clock and closes the socket. */
  close() {
    this.clock?.stop();
    this.#disarm();
    this.socket?.close();
  }

  /** A compact record of this phone for the benchmark (numbers are true-clock epoch ms). */
  result() {
    const c = this.clock;
    return {
      i: this.index,
      off: Math.round(this.options.offsetMs),
      go: this.timeline?.go_at_ms ?? null,
      fire: this.fired?.at ?? null,
      fireTarget: this.fired?.target ?? null,
      late: this.fired ? Math.round(this.fired.lateMs * 100) / 100 : null,
      est: this.fired ? Math.round(this.fired.estErrMs * 100) / 100 : null,
      bound: this.fired ? Math.round(this.fired.boundMs * 100) / 100 : null,
      kept: this.fired?.samples ?? null,
      reqs: c?.requestCount ?? 0,
      joinedAt: this.timings.clockStart ?? null,
      recv: this.goReceived?.at ?? null,
      arr: this.goReceived?.arrivedAt ?? null,
      syncs: this.syncs,
      syncFail: this.syncFailures,
      delay: c?.delayMs != null ? Math.round(c.delayMs * 10) / 10 : null,
      ann: Object.fromEntries(this.announcements),
      rc: this.reconnects,
      dc: this.disconnects,
      t: this.timings,
      err: this.error,
    };
  }
}
