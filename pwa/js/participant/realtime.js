/**
 * The mob's socket (../socket.js MobConnection on `/participant`, joined with the token):
 * the snapshot after every (re)join, the mob's events, and the connection's status. A
 * refused token ends the session (join again); a deed pending in the outbox is sent on every
 * join. The snapshot's `announcements` show what was said before; its `deeds` bring the
 * verdicts of flagged deeds.
 *
 * @module participant/realtime
 */

import { MobConnection } from "../socket.js";
import { queue } from "./deeds.js";
import { beep, toast, vibrate } from "./feedback.js";
import { armGo, fireGo } from "./go.js";
import { reportLocation, stopLocation, watchLocation } from "./location.js";
import { eventPatch, snapshotPatch } from "./model.js";
import { mobId, saved, scheduleRender, serverNow, store } from "./state.js";

function applySnapshot(snap) {
  const patch = snapshotPatch(store.get(), snap);
  store.set(patch);
  for (const deed of snap.deeds ?? []) {
    if (["approved", "rejected"].includes(deed.status)) queue.review(deed.deed_id, deed);
  }
  if (patch.session) saved.save(patch.session);
  if (patch.phase === "cancelled") stopLocation();
  armGo();
  reportLocation(true);
  queue.flush(mobId);
  scheduleRender();
}

function onEvent(name, data) {
  if (data?.mob && data.mob !== mobId && name !== "task_assigned") return;
  store.set(eventPatch(store.get(), name, data));
  if (name === "timeline" && data.timeline) {
    armGo();
  } else if (name === "phase") {
    if (data.phase === "action" && !store.get().go) {
      // The local timer should have fired already; this covers a lost timeline or a sleep.
      const goAt = data.at_ms ?? store.get().timeline?.go_at_ms ?? serverNow();
      fireGo({ lateMs: Math.max(0, serverNow() - goAt), via: "event" });
    }
    if (data.phase === "cancelled") {
      armGo();
      stopLocation();
    }
  } else if (name === "task_assigned") {
    toast(data.task ? "You have a new spot" : "Your spot was removed — looking for another");
  } else if (name === "deed_reviewed") {
    queue.review(data.deed_id, data).then((record) => {
      if (record) toast(data.accepted ? "The organizer approved your deed" : "The organizer reviewed your deed");
    });
  } else if (name === "announcement") {
    vibrate([80, 60, 80]);
    beep(660, 0.12, 0.25);
  }
  scheduleRender();
}

function onStatus(status, detail) {
  store.set({ connStatus: status });
  if (status === "refused") {
    // The token expired or is unknown here: join again.
    store.get().conn?.close();
    store.set({ conn: null, session: null, joinMessage: "Your place in this mob expired. Join again to take part." });
    saved.clear();
  } else if (status === "join_error") {
    store.set({ fatal: detail?.message ?? "This mob cannot be joined." });
  } else if (status === "joined") {
    queue.flush(mobId);
  }
  scheduleRender();
}

/** Opens the mob's socket with the saved token (once), and starts the location watch. */
export function connect() {
  const { conn: open, session } = store.get();
  if (open || !session?.token) return;
  const conn = new MobConnection({
    namespace: "/participant",
    auth: { token: session.token },
    mob: mobId,
    onSnapshot: applySnapshot,
    onEvent,
    onStatus,
    onClockChange: () => { armGo(); scheduleRender(); },
  });
  store.set({ conn });
  conn.connect();
  watchLocation();
}
