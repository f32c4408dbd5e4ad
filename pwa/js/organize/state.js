/**
 * The organizer page's state: one store (../store.js), the rules read from it, and the kept
 * session. No DOM here, so it runs under `node --test` (tests/js/organize.test.mjs).
 *
 * Keys of the store (what more than one concern reads or writes; a concern's private working
 * state, such as the socket or the tool pressed, stays in its module):
 * - `mob`: the mob as the server last sent it (null: none open, or a new one not saved yet);
 *   `pendingDetails`: a new mob's details, kept until its zone is saved.
 * - `tab` ("details", "zone", "tasks", "publish", "run") and `tabTurn`, counted up by every
 *   `setTab` (page.js), also for the tab already shown: the concerns redraw on it.
 * - `tasks` (a FeatureCollection), `counters` (joined, in_zone, matched, deeds_done,
 *   deeds_flagged), `reviewDeeds` (the flagged deeds waiting for a verdict), `dragging` (a
 *   task pin is being moved: the server's task pushes wait).
 * - `zoneDirty`, `detailsDirty` (unsaved edits), `lastSentZone` (the zone of the last save,
 *   where a zone error points into), `afterLogin` (the route to return to after logging in).
 *
 * Values are replaced, never changed in place: a module that holds `store.get()` keeps a
 * snapshot.
 *
 @module organize/state
 */

import { createStore } from "../store.js";

const SESSION_KEY = "goodmob.organizer";

export const LIVE_STATUSES = ["gathering", "countdown", "action"];
export const CLOSED_STATUSES = ["finished", "cancelled"];
export const STATUS_WORDS = {
  draft: "Draft", published: "Published", gathering: "Gathering", countdown: "Countdown",
  action: "GO!", finished: "Finished", cancelled: "Cancelled",
};
export const COUNTER_KEYS = ["joined", "in_zone", "matched", "deeds_done", "deeds_flagged"];

/** A mob's state when none is open (also what opening another mob starts from). */
export function emptyMobState() {
  return {
    mob: null,
    pendingDetails: null,
    tasks: { type: "FeatureCollection", features: [] },
    counters: {},
    reviewDeeds: [],
    zoneDirty: false,
    detailsDirty: false,
    lastSentZone: null,
  };
}

export const store = createStore({
  ...emptyMobState(), tab: "details", tabTurn: 0, afterLogin: null, dragging: false,
});

export function isLive(mob) {
  return Boolean(mob) && LIVE_STATUSES.includes(mob.status);
}

export function isClosed(mob) {
  return Boolean(mob) && CLOSED_STATUSES.includes(mob.status);
}

/** The zone of a live or closed mob no longer changes. */
export function zoneLocked(mob) {
  return isLive(mob) || isClosed(mob);
}

/** Which steps a mob (null: a new one) can show. */
export function tabAvailable(tab, mob) {
  if (tab === "details" || tab === "zone") return true;
  if (tab === "tasks") return Boolean(mob);
  if (tab === "publish") return Boolean(mob) && mob.status === "draft";
  if (tab === "run") return Boolean(mob) && mob.status !== "draft";
  return false;
}

/** The step a mob opens on: run once published, else the first thing missing. */
export function defaultTab(mob, taskCount) {
  if (!mob) return "details";
  if (mob.status !== "draft") return "run";
  if (!taskCount) return "tasks";
  return "publish";
}

/** The hash route: `#/` my mobs, `#/new`, `#/mob/<id>[/<tab>]`. */
export function parseRoute(hash) {
  const path = hash.replace(/^#/, "") || "/";
  if (path === "/new") return { view: "new" };
  const mobMatch = path.match(/^\/mob\/([A-Za-z0-9_-]+)(?:\/(\w+))?$/);
  if (mobMatch) return { view: "mob", id: mobMatch[1], tab: mobMatch[2] };
  return { view: "list" };
}

/** The counters after a push: only numbers replace what is known. */
export function mergeCounters(before, data) {
  const after = { ...before };
  for (const key of COUNTER_KEYS) {
    if (typeof data[key] === "number") after[key] = data[key];
  }
  return after;
}

/** The mob after a `timeline` (the whole schedule) and/or a `phase` push. */
export function mobWithTimeline(mob, timeline, phase) {
  const next = { ...mob };
  if (timeline) {
    next.timeline = timeline;
    next.status = timeline.phase ?? next.status;
    next.rehearsal = timeline.rehearsal;
    next.go_at = new Date(timeline.go_at_ms).toISOString();
    next.gather_at = new Date(timeline.gather_at_ms).toISOString();
    next.countdown_at = new Date(timeline.countdown_at_ms).toISOString();
    next.end_at = new Date(timeline.end_at_ms).toISOString();
    next.title = timeline.title ?? next.title;
    next.action = timeline.action ?? next.action;
  }
  if (phase) {
    next.status = phase;
    if (next.timeline) next.timeline = { ...next.timeline, phase };
  }
  return next;
}

/** The tasks of the deeds waiting for review (a deed's spot is its task's: it has no other). */
export function reviewTaskIds(deeds) {
  return new Set(deeds.map((deed) => deed.task));
}

const REASONS = {
  far_from_task: "far from the spot",
  poor_accuracy: "poor location fix",
  implausible_speed: "impossible speed",
};

/** Why a deed waits for review, in one line: "poor location fix · 40 m from the spot · fix ±85 m". */
export function deedSummary(deed) {
  const distance = Number.isFinite(deed.distance_m) ? `${Math.round(deed.distance_m)} m from the spot` : "";
  const accuracy = Number.isFinite(deed.accuracy_m) ? `fix ±${Math.round(deed.accuracy_m)} m` : "";
  let reason = REASONS[deed.reason] ?? (deed.reason ?? "").replaceAll("_", " ");
  if (deed.reason === "far_from_task" && distance) reason = "";
  return [reason, distance, accuracy].filter(Boolean).join(" · ");
}

/** Keep the server's copy of the mob (and its counters, when it brings them). */
export function setMob(mob) {
  const patch = { mob };
  if (mob.counters) patch.counters = mergeCounters(store.get().counters, mob.counters);
  store.set(patch);
}

export function setCounters(data) {
  store.set({ counters: mergeCounters(store.get().counters, data) });
}

// --- the kept session ------------------------------------------------------------------------

/**
 * The session kept in `storage()` (localStorage by default): `load()` reads it (forgetting an
 * expired one), `save(body)` keeps a sign-in's answer, `clear()` forgets it.
 */
export function createSession(storage = () => globalThis.localStorage, now = () => Date.now()) {
  return {
    data: null,
    load() {
      try {
        this.data = JSON.parse(storage().getItem(SESSION_KEY) || "null");
      } catch {
        this.data = null;
      }
      if (this.data && this.data.expires_at && now() > this.data.expires_at) this.clear();
      return this.data;
    },
    save(body) {
      this.data = {
        token: body.token,
        organizer: body.organizer,
        expires_at: now() + (body.expires_in_s ?? 0) * 1000,
      };
      storage().setItem(SESSION_KEY, JSON.stringify(this.data));
    },
    clear() {
      this.data = null;
      storage().removeItem(SESSION_KEY);
    },
    get token() {
      return this.data?.token ?? null;
    },
  };
}
