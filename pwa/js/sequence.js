/**
 * The order of a mob's events on one connection, without the socket (so Node can test it:
 * tests/js/sequence.test.mjs). MobConnection (socket.js) feeds it what arrives and does the
 * joining; this decides what is delivered and when a re-join is needed.
 *
 * - Numbered events (`timeline`, `phase`, `announcement`) carry the mob's `seq`: one already
 *   seen is dropped, the next one is delivered, a skipped number triggers a re-join (which
 *   replays what was missed with `last_seq`, or gives a fresh snapshot).
 * - Plain events (`stats`, `density`, `tasks`) are delivered as they come; the `seq` they
 *   carry is the mob's latest number when they were sent. One above the last number seen
 *   means a numbered event was missed; as that event may still be on its way (it is sent by
 *   another process, or just after the counters), the re-join waits `graceMs` for it first.
 * - Acknowledgements of location reports and deeds carry the same latest `seq` (`latest()`):
 *   a phone that missed an event (e.g. published while its process was not yet subscribed)
 *   notices on its next report, without waiting for the next event.
 * - While a join is in flight, numbered events are buffered and handled after the snapshot.
 *
 * @module sequence
 */

export class EventSequence {
  /** Highest sequence number seen (null before the first snapshot). */
  lastSeq = null;

  #deliver;
  #rejoin;
  #graceMs;
  #timers;
  #joining = false;
  #buffer = [];
  #gapTimer = null;
  #wanted = null;

  /**
   * @param {object} options
   * @param {(name: string, data: object) => void} options.deliver hands an event to the page
   * @param {() => void} options.rejoin asks for a re-join (with `joinPayload()`)
   * @param {number} [options.graceMs] how long a gap revealed by a plain event may last
   * @param {{setTimeout: Function, clearTimeout: Function}} [options.timers]
   */
  constructor({ deliver, rejoin, graceMs = 1500, timers = globalThis }) {
    this.#deliver = deliver;
    this.#rejoin = rejoin;
    this.#graceMs = graceMs;
    this.#timers = timers;
  }

  get joining() {
    return this.#joining;
  }

  /** A numbered event arrived. */
  numbered(name, data) {
    if (this.#joining) {
      this.#buffer.push([name, data]);
      return;
    }
    const seq = data?.seq;
    if (!Number.isInteger(seq) || this.lastSeq === null) {
      this.#deliver(name, data);
      return;
    }
    if (seq <= this.lastSeq) return; // already seen (a replay raced the live event)
    if (seq > this.lastSeq + 1) {
      this.#rejoin(); // a gap: the re-join replays what is missing, this one included
      return;
    }
    this.lastSeq = seq;
    this.#deliver(name, data);
    this.#settleGap();
  }

  /** A plain event arrived: delivered at once; its `seq` may reveal a missed numbered one. */
  plain(name, data) {
    this.#deliver(name, data);
    this.latest(data?.seq);
  }

  /**
   * The mob's latest number as the server read it (the `seq` of a plain event, or of an
   * acknowledgement: location reports and deeds carry it). Above the last number seen, a
   * numbered event was missed: unless it arrives within `graceMs` (it may still be on its
   * way), a re-join fetches it.
   */
  latest(seq) {
    if (!Number.isInteger(seq) || this.lastSeq === null || seq <= this.lastSeq) return;
    this.#wanted = Math.max(this.#wanted ?? 0, seq);
    if (this.#gapTimer !== null || this.#joining) return;
    this.#gapTimer = this.#timers.setTimeout(() => {
      this.#gapTimer = null;
      if (this.#joining || this.#wanted === null) return;
      if (this.lastSeq === null || this.lastSeq < this.#wanted) this.#rejoin();
      else this.#wanted = null;
    }, this.#graceMs);
  }

  /** A join starts: what to send with it (`{last_seq}` once something was seen). */
  beginJoin() {
    this.#joining = true;
    this.#buffer = [];
    return this.lastSeq === null ? {} : { last_seq: this.lastSeq };
  }

  /** The join got no answer or an error: events flow again (the next join replays). */
  joinFailed() {
    this.#joining = false;
  }

  /**
   * The join's answer (a snapshot): replays its `missed` events in order, then takes its
   * `seq`. Call `flush()` after the page applied the snapshot.
   */
  joined(ack) {
    this.#joining = false;
    if (Array.isArray(ack?.missed) && this.lastSeq !== null) {
      for (const { event, data } of ack.missed) {
        if (Number.isInteger(data?.seq) && data.seq <= this.lastSeq) continue;
        this.lastSeq = data?.seq ?? this.lastSeq;
        this.#deliver(event, data);
      }
    }
    if (Number.isInteger(ack?.seq)) this.lastSeq = Math.max(this.lastSeq ?? 0, ack.seq);
    this.stop(); // the snapshot is the truth as of now
  }

  /** Handles the numbered events that arrived during the join. */
  flush() {
    for (const [name, data] of this.#buffer.splice(0)) this.numbered(name, data);
  }

  /** Stops the pending gap check (the connection closes). */
  stop() {
    if (this.#gapTimer !== null) this.#timers.clearTimeout(this.#gapTimer);
    this.#gapTimer = null;
    this.#wanted = null;
  }

  #settleGap() {
    if (this.#wanted === null || this.lastSeq === null || this.lastSeq < this.#wanted) return;
    this.stop();
  }
}
