/**
 * The deed: a big "Done" that goes through the IndexedDB outbox (../deedqueue.js), so a deed
 * tapped offline is delivered later, exactly once (`confirm_deed` with the same `deed_id`).
 * The store's `deed` is this mob's latest outbox record; its answer's totals update the
 * counters. A flagged deed's verdict comes as `deed_reviewed` or in the snapshot's `deeds`
 * (realtime.js).
 *
 * @module participant/deeds
 */

import { DeedQueue } from "../deedqueue.js";
import { $, toast, unlockAudio, vibrate } from "./feedback.js";
import { mobId, store } from "./state.js";

export const queue = new DeedQueue({
  send: (record) => {
    const conn = store.get().conn;
    if (!conn?.connected) return Promise.reject(new Error("offline"));
    return conn.call("confirm_deed", {
      deed_id: record.deed_id,
      task: record.task,
      lat: record.lat,
      lon: record.lon,
      accuracy_m: record.accuracy_m,
    });
  },
  onChange: (record) => {
    if (record.mob !== mobId) return;
    const patch = { deed: record };
    if (record.answer?.totals) patch.counters = { ...store.get().counters, ...record.answer.totals };
    store.set(patch);
  },
});

/** "Done!": the deed, at this fix, into the outbox (sent at once when online). */
export async function tapDone() {
  unlockAudio();
  const { deed, task, fix } = store.get();
  if (deed || !task) return;
  if (!fix) {
    toast("Waiting for your location…");
    return;
  }
  $("done-btn").disabled = true;
  vibrate(60);
  const record = await queue.add({
    mob: mobId, task: task.id, lat: fix.lat, lon: fix.lon, accuracy_m: fix.accuracy_m,
  });
  store.set({ deed: record });
}

/** The deed tapped here before (a reload, a phone that went offline). */
export async function restoreDeed() {
  store.set({ deed: (await queue.list(mobId)).at(-1) ?? null });
}

/** Every 10 s, a pending deed is tried again. */
export function keepSending() {
  setInterval(() => { if (store.get().deed?.state === "pending") queue.flush(mobId); }, 10000);
}
