/**
 * One Socket.IO connection to a mob, shared by the pages (participant, live, organizer):
 *
 * - WebSocket transport only (`transports: ["websocket"]`: several server processes behind
 *   a proxy need no sticky long-polling), the token in the `auth` payload, never in a URL;
 * - the mob's numbered events (`timeline`, `phase`, `announcement`) tracked by `seq`
 *   (sequence.js): duplicates are dropped, a gap triggers a re-join, and every (re)connect
 *   joins with `last_seq` so the server replays what was missed (or sends a fresh snapshot);
 *   the `seq` of `stats` (and `density`, `tasks`) reveals a numbered event that never came;
 *   counters carried on an ack (`ack.stats`, on location reports) are passed on as `stats`,
 *   and the mob's latest `seq` on an ack (location reports, deeds) reveals a missed event too;
 * - a ClockSync (clock.js, CLOCK_CONFIG as it is) on the same socket: a burst of round trips
 *   on every connect and when the page becomes visible again, single round trips spread over
 *   the wait for GO (denser in its last minute), none while the page is hidden;
 * - the browser's online/offline state followed: offline closes the socket at once (a phone
 *   reporting offline has no working socket, whatever the socket thinks), online reconnects.
 *
 *     import { MobConnection } from "./socket.js";
 *     const conn = new MobConnection({
 *       namespace: "/participant", auth: { token }, mob: id,        // join with join_mob
 *       onSnapshot: (snap) => render(snap),                         // after every (re)join
 *       onEvent: (name, data) => apply(name, data),                 // phase, stats, …
 *       onStatus: (status, detail) => showConnection(status, detail),
 *     });
 *     conn.connect();
 *     const ack = await conn.call("report_location", fix);         // rejects when offline
 *     conn.clock.fireAt(goAtMs, ({ lateMs }) => showGo(lateMs));
 *
 * Spectator pages pass `namespace: "/live"` (or "/organizer" with the organizer token) and
 * `joinEvent: "watch_mob"`.
 *
 * Statuses given to onStatus: "connecting", "connected", "joined", "disconnected",
 * "offline", "refused" (the server refused the token: detail {code, message}), "join_error"
 * (detail {code, message}).
 *
 * @module socket
 */

import { io } from "../vendor/socket.io/socket.io.esm.min.js";
import { ClockSync } from "./clock.js";
import { EventSequence } from "./sequence.js";

/** Server → client events that carry the mob's sequence number. */
export const NUMBERED_EVENTS = ["timeline", "phase", "announcement"];
/** Other events passed on as they come (stats carry the latest seq but are not numbered;
 * `task_assigned` and `deed_reviewed` are personal: no seq, the snapshot carries their state). */
export const PLAIN_EVENTS = ["stats", "task_assigned", "deed_reviewed", "density", "tasks"];

export class MobConnection {
  /** The last snapshot (join_mob / watch_mob acknowledgement). */
  snapshot = null;

  #opts;
  #sequence;
  #clockStarted = false;
  #closed = false;
  #offlinePaused = false;
  #detach = [];

  /**
   * @param {object} options
   * @param {string} options.namespace "/participant", "/live" or "/organizer"
   * @param {object} [options.auth] e.g. {token}
   * @param {string} options.mob the mob id
   * @param {string} [options.joinEvent] "join_mob" (default) or "watch_mob"
   * @param {(snapshot: object) => void} [options.onSnapshot]
   * @param {(name: string, data: object) => void} [options.onEvent]
   * @param {(status: string, detail?: any) => void} [options.onStatus]
   * @param {(change: object) => void} [options.onClockChange] ClockSync's onChange
   * @param {string} [options.url] server origin (default: this page's)
   * @param {boolean} [options.followOnlineState] default true
   */
  constructor(options) {
    this.#opts = { joinEvent: "join_mob", followOnlineState: true, ...options };
    this.#sequence = new EventSequence({
      deliver: (name, data) => this.#deliver(name, data),
      rejoin: () => {
        if (this.socket.connected) this.#join(); // else the reconnect joins with last_seq
      },
    });
    const { namespace, auth, url } = this.#opts;
    this.socket = io(url ? url + namespace : namespace, {
      transports: ["websocket"],
      auth,
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      timeout: 10000,
    });
    this.clock = new ClockSync({
      request: (payload) => this.socket.timeout(4000).emitWithAck("time_sync", payload),
      onChange: this.#opts.onClockChange,
    });
    this.#wire();
  }

  #status(status, detail) {
    try {
      this.#opts.onStatus?.(status, detail);
    } catch (error) {
      (globalThis.reportError ?? console.error)(error);
    }
  }

  #deliver(name, data) {
    try {
      this.#opts.onEvent?.(name, data);
    } catch (error) {
      (globalThis.reportError ?? console.error)(error);
    }
  }

  #wire() {
    const s = this.socket;
    s.on("connect", () => {
      this.#status("connected");
      if (!this.#clockStarted) {
        this.#clockStarted = true;
        this.clock.start();
      } else {
        this.clock.resync();
      }
      this.#join();
    });
    s.on("disconnect", (reason) => {
      this.#status(this.#offlinePaused ? "offline" : "disconnected", reason);
      // The server closed it on purpose (e.g. a restart): reconnect ourselves.
      if (reason === "io server disconnect" && !this.#closed) setTimeout(() => this.#reconnect(), 1000);
    });
    s.on("connect_error", (error) => {
      if (error?.data?.code) this.#status("refused", error.data); // the token was refused
      else this.#status("disconnected", error?.message);
    });
    for (const name of NUMBERED_EVENTS) s.on(name, (data) => this.#sequence.numbered(name, data));
    for (const name of PLAIN_EVENTS) s.on(name, (data) => this.#sequence.plain(name, data));
    if (typeof document !== "undefined") this.#detach.push(this.clock.attachToDocument(document));
    if (this.#opts.followOnlineState && typeof window !== "undefined") {
      const offline = () => {
        this.#offlinePaused = true;
        this.socket.disconnect();
        this.#status("offline");
      };
      const online = () => {
        if (!this.#offlinePaused) return;
        this.#offlinePaused = false;
        this.#reconnect();
      };
      window.addEventListener("offline", offline);
      window.addEventListener("online", online);
      this.#detach.push(() => {
        window.removeEventListener("offline", offline);
        window.removeEventListener("online", online);
      });
    }
  }

  /** Opens the connection (it then reconnects by itself until close()). */
  connect() {
    this.#closed = false;
    if (typeof navigator !== "undefined" && navigator.onLine === false && this.#opts.followOnlineState) {
      this.#offlinePaused = true;
      this.#status("offline");
      return this;
    }
    this.#status("connecting");
    this.socket.connect();
    return this;
  }

  #reconnect() {
    if (this.#closed || this.socket.connected) return;
    this.#status("connecting");
    this.socket.connect();
  }

  /** Closes the connection and stops the clock's periodic sync. */
  close() {
    this.#closed = true;
    this.clock.stop();
    this.#sequence.stop();
    for (const detach of this.#detach.splice(0)) detach();
    this.socket.disconnect();
  }

  get connected() {
    return this.socket.connected;
  }

  /** Highest sequence number seen (null before the first snapshot). */
  get lastSeq() {
    return this.#sequence.lastSeq;
  }

  /**
   * Sends an event and resolves to its acknowledgement (which may be `{error}`); rejects
   * when not connected or when no acknowledgement came within `timeoutMs`.
   */
  async call(event, payload, timeoutMs = 8000) {
    if (!this.socket.connected) throw new Error("not connected");
    const ack = await this.socket.timeout(timeoutMs).emitWithAck(event, payload);
    // The mob's counters ride on location acks when they changed: the same as a `stats` event.
    if (ack?.stats) this.#sequence.plain("stats", ack.stats);
    // The mob's latest seq rides on report and deed acks: one above ours means a missed
    // event, fetched by a re-join (with last_seq) unless it arrives meanwhile.
    this.#sequence.latest(ack?.seq);
    return ack;
  }

  async #join() {
    if (this.#sequence.joining || this.#closed) return;
    const { mob, joinEvent } = this.#opts;
    const payload = { mob, ...this.#sequence.beginJoin() };
    let ack;
    try {
      ack = await this.socket.timeout(10000).emitWithAck(joinEvent, payload);
    } catch {
      this.#sequence.joinFailed();
      if (this.socket.connected) setTimeout(() => this.#join(), 1000); // no answer: again
      return;
    }
    if (ack?.error) {
      this.#sequence.joinFailed();
      this.#status("join_error", ack.error);
      return;
    }
    this.#sequence.joined(ack);
    this.snapshot = ack;
    try {
      this.#opts.onSnapshot?.(ack);
    } catch (error) {
      (globalThis.reportError ?? console.error)(error);
    }
    this.#status("joined", ack);
    this.#sequence.flush();
  }
}
