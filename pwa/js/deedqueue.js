/**
 * The outbox of deeds: a "Done" tap is written to IndexedDB first, then sent; one that could
 * not be sent (offline, no acknowledgement) stays pending and is sent again when the
 * connection returns — until the server answers. It counts exactly once: the client-made
 * `deed_id` (a UUID made at the tap) is the key here and the server's idempotency key, so a
 * re-send of a deed whose first answer was lost returns that first answer.
 *
 * States of a record: `pending` (not answered yet) → `settled` (the server answered: the
 * answer is kept in `answer`; accepted or not, it is never sent again).
 *
 *     const queue = new DeedQueue({ send: (deed) => socketCall("confirm_deed", payload(deed)) });
 *     await queue.add({ mob, task, lat, lon, accuracy_m });   // stored, then flushed
 *     window.addEventListener("online", () => queue.flush(mob));
 *
 * DOM-free apart from the optional IndexedDB store: tests/js/deedqueue.test.mjs runs it
 * under Node with `memoryStore()`.
 *
 * @module deedqueue
 */

import { uuid } from "./util.js";

/** Error codes in an acknowledgement after which the same deed is worth sending again. */
const RETRY_CODES = new Set(["internal_error", "participant_gone", "timeout"]);
/** Settled records older than this are deleted (they only serve the "Done" screen). */
const KEEP_SETTLED_MS = 3 * 86_400_000;

/** A store in memory (Node, tests, or a browser without IndexedDB such as private modes). */
export function memoryStore() {
  const rows = new Map();
  return {
    async put(record) { rows.set(record.deed_id, structuredClone(record)); },
    async get(id) { return rows.has(id) ? structuredClone(rows.get(id)) : undefined; },
    async all() { return [...rows.values()].map((r) => structuredClone(r)); },
    async delete(id) { rows.delete(id); },
  };
}

function promisify(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * A store in IndexedDB (database `goodmob`, object store `deeds`, key `deed_id`), or null
 * when IndexedDB cannot be opened.
 * @returns {Promise<object|null>}
 */
export async function indexedDbStore(name = "goodmob") {
  if (!globalThis.indexedDB) return null;
  let db;
  try {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => {
      if (!open.result.objectStoreNames.contains("deeds")) {
        open.result.createObjectStore("deeds", { keyPath: "deed_id" });
      }
    };
    db = await promisify(open);
  } catch {
    return null;
  }
  const run = (mode, fn) => {
    const tx = db.transaction("deeds", mode);
    const result = promisify(fn(tx.objectStore("deeds")));
    // Resolve when the transaction is durable, not merely when the request succeeded.
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    return Promise.all([result, done]).then(([value]) => value);
  };
  return {
    put: (record) => run("readwrite", (s) => s.put(record)),
    get: (id) => run("readonly", (s) => s.get(id)),
    all: () => run("readonly", (s) => s.getAll()),
    delete: (id) => run("readwrite", (s) => s.delete(id)),
  };
}

/**
 * The outbox.
 *
 * @param {object} options
 * @param {(record: object) => Promise<object>} options.send sends one deed; resolves to the
 *   server's acknowledgement (`{accepted, status, reason, totals}` or `{error}`), rejects when
 *   there was no answer (offline, timeout): the deed then stays pending.
 * @param {object|Promise<object>} [options.store] default: IndexedDB, else memory.
 * @param {(record: object) => void} [options.onChange] after every change of a record.
 * @param {() => number} [options.now] epoch ms (default Date.now).
 */
export class DeedQueue {
  #store; #send; #onChange; #now;
  #flushing = null;
  #again = false;

  constructor({ send, store, onChange, now = () => Date.now() }) {
    this.#send = send;
    this.#onChange = onChange ?? (() => {});
    this.#now = now;
    this.#store = Promise.resolve(store ?? indexedDbStore()).then((s) => s ?? memoryStore());
  }

  /**
   * Stores a new deed (a fresh `deed_id` unless one is given) and starts sending it.
   * Resolves once it is stored, with the record; the send goes on in the background.
   */
  async add({ mob, task, lat, lon, accuracy_m, deed_id = uuid() }) {
    const record = {
      deed_id, mob, task, lat, lon, accuracy_m,
      created_at: this.#now(), state: "pending", attempts: 0, answer: null,
    };
    const store = await this.#store;
    await store.put(record);
    this.#onChange({ ...record });
    this.flush(mob);
    return record;
  }

  /**
   * Records the organizer's verdict on a flagged deed (`deed_reviewed`, or the snapshot's
   * `deeds`): its answer takes the new `status` and `accepted`. Resolves to the record, or
   * null when this phone has no settled deed of that id; unchanged when already known.
   */
  async review(deedId, { status, accepted }) {
    const store = await this.#store;
    const record = await store.get(deedId);
    if (!record || record.state !== "settled") return null;
    if (record.answer?.status === status) return record;
    record.answer = { ...record.answer, status, accepted: Boolean(accepted), reviewed: true };
    await store.put(record);
    this.#onChange({ ...record });
    return record;
  }

  /** The records of a mob (all mobs when omitted), oldest first. */
  async list(mob = undefined) {
    const store = await this.#store;
    const rows = await store.all();
    return rows.filter((r) => mob === undefined || r.mob === mob)
      .sort((a, b) => a.created_at - b.created_at);
  }

  /** The pending records of a mob (all mobs when omitted), oldest first. */
  async pending(mob = undefined) {
    return (await this.list(mob)).filter((r) => r.state === "pending");
  }

  /**
   * Sends the pending deeds of `mob`, oldest first, stopping at the first one without an
   * answer. Concurrent calls share one run (and one more run follows if asked meanwhile).
   * @returns {Promise<number>} how many are still pending.
   */
  flush(mob = undefined) {
    if (this.#flushing) {
      this.#again = true;
      return this.#flushing;
    }
    this.#flushing = (async () => {
      let left;
      do {
        this.#again = false;
        left = await this.#flushOnce(mob);
      } while (this.#again);
      return left;
    })().finally(() => { this.#flushing = null; });
    return this.#flushing;
  }

  async #flushOnce(mob) {
    const store = await this.#store;
    await this.#forgetOld(store);
    const queue = await this.pending(mob);
    for (let i = 0; i < queue.length; i++) {
      const record = queue[i];
      let ack;
      try {
        ack = await this.#send(record);
      } catch {
        return queue.length - i; // no answer: keep it (and the ones after it) for later
      }
      record.attempts += 1;
      if (ack?.error && RETRY_CODES.has(ack.error.code)) {
        await store.put(record);
        this.#onChange({ ...record });
        return queue.length - i;
      }
      record.state = "settled";
      record.answer = ack ?? null;
      record.settled_at = this.#now();
      await store.put(record);
      this.#onChange({ ...record });
    }
    return 0;
  }

  async #forgetOld(store) {
    const old = this.#now() - KEEP_SETTLED_MS;
    for (const record of await store.all()) {
      if (record.state === "settled" && (record.settled_at ?? 0) < old) await store.delete(record.deed_id);
    }
  }
}
