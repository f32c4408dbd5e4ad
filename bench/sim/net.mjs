/**
 * The simulated network between a phone and the server: seeded randomness, per-message
 * delays each way, and a Socket.IO socket wrapped so that every message pays them.
 *
 * A phone's emit leaves after an "uplink" delay; an acknowledgement or a server event is
 * handled after a "downlink" delay. Each message draws its own delays, independently per
 * direction (so a round trip is asymmetric), uniform in [min, max] ms. This is the network
 * model of the synchronized-moment benchmark (issue 4: "0–80 ms each way, per message").
 *
 * No DOM, no Socket.IO import: the socket is injected, so tests can use a fake one.
 *
 * @module net
 */

/**
 * Seeded PRNG (mulberry32): uniform floats in [0, 1).
 * @param {number} seed
 * @returns {() => number}
 */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform float in [lo, hi] from `rng`. */
export function uniform(rng, lo, hi) {
  return lo + (hi - lo) * rng();
}

/**
 * Per-message network delays of one phone.
 *
 * @param {object} options
 * @param {() => number} options.rng uniform [0, 1) source (seed it per phone).
 * @param {number} [options.minUpMs] shortest phone→server delay (default 0).
 * @param {number} [options.maxUpMs] longest phone→server delay (default 80).
 * @param {number} [options.minDownMs] shortest server→phone delay (default 0).
 * @param {number} [options.maxDownMs] longest server→phone delay (default 80).
 */
export class NetworkModel {
  constructor({ rng, minUpMs = 0, maxUpMs = 80, minDownMs = 0, maxDownMs = 80 }) {
    if (typeof rng !== "function") throw new TypeError("NetworkModel needs an rng");
    if (!(maxUpMs >= minUpMs && minUpMs >= 0 && maxDownMs >= minDownMs && minDownMs >= 0)) {
      throw new RangeError("delays must satisfy 0 ≤ min ≤ max");
    }
    Object.assign(this, { rng, minUpMs, maxUpMs, minDownMs, maxDownMs });
  }

  /** A fresh phone→server delay, ms. */
  up() {
    return uniform(this.rng, this.minUpMs, this.maxUpMs);
  }

  /** A fresh server→phone delay, ms. */
  down() {
    return uniform(this.rng, this.minDownMs, this.maxDownMs);
  }

  /** True when both directions are instantaneous (no timers are used at all then). */
  get isZero() {
    return this.maxUpMs === 0 && this.maxDownMs === 0;
  }
}

/**
 * A Socket.IO client socket whose messages pay the delays of a NetworkModel.
 *
 * Only the calls the simulator needs: `request` (emit with an acknowledgement), `send`
 * (emit without one) and `on` (server events). A zero delay runs the step synchronously.
 */
export class DelayedSocket {
  #socket; #net; #setTimeout; #clock;

  /**
   * @param {object} socket a Socket.IO client socket (or a fake with `emit`, `on`, `timeout`).
   * @param {NetworkModel} net
   * @param {object} [options]
   * @param {Function} [options.setTimeout] timer function (default globalThis.setTimeout).
   * @param {() => number} [options.clock] the machine's true clock for arrival stamps
   *   (default Date.now).
   */
  constructor(socket, net, { setTimeout = globalThis.setTimeout, clock = () => Date.now() } = {}) {
    this.#socket = socket;
    this.#net = net;
    this.#setTimeout = (fn, ms) => setTimeout(fn, ms);
    this.#clock = clock;
  }

  /** The wrapped socket. */
  get socket() {
    return this.#socket;
  }

  #later(ms, fn) {
    if (ms <= 0) fn();
    else this.#setTimeout(fn, ms);
  }

  /**
   * Emits `event` after an uplink delay and resolves with the acknowledgement after a
   * downlink delay; rejects when no acknowledgement came within `timeoutMs` of the emit.
   *
   * @param {string} event
   * @param {object} payload
   * @param {number} [timeoutMs] (default 10 000)
   * @returns {Promise<any>}
   */
  request(event, payload, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      this.#later(this.#net.up(), () => {
        this.#socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
          this.#later(this.#net.down(), () => (err ? reject(err) : resolve(ack)));
        });
      });
    });
  }

  /** Emits `event` (no acknowledgement) after an uplink delay. */
  send(event, payload) {
    this.#later(this.#net.up(), () => this.#socket.emit(event, payload));
  }

  /**
   * Handles server event `event` after a downlink delay.
   * @param {string} event
   * @param {(data: any, meta: {arrivedAt: number}) => void} handler arrivedAt = when the
   *   frame reached this process (true clock), before the simulated delay.
   */
  on(event, handler) {
    this.#socket.on(event, (data) => {
      const arrivedAt = this.#clock();
      this.#later(this.#net.down(), () => handler(data, { arrivedAt }));
    });
  }
}
