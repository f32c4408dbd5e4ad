/**
 * The participant page's one state store (../store.js) and what every part of the page
 * shares: the mob id from the URL, the saved session, the server's clock, the redraw, and
 * `$` and the toast.
 *
 * - The store changes only through `store.set(patch)`; every change redraws the page once,
 *   after the code that made it has run (a microtask: before the browser paints). A change
 *   of `heading` alone does not (the compass redraws itself when it turned enough); code
 *   that needs the DOM current at once (GO) calls `render()`.
 * - The participant token lives in localStorage under `goodmob:mob:<id>` (never in a URL);
 *   the referral code of a shared link (?ref=) is kept in sessionStorage until the join.
 *
 * @module participant/state
 */

import { serverNowEstimate } from "../api.js";
import { createStore } from "../store.js";
import { actionOver as actionOverAt, currentPhase as phaseAt, initialState } from "./model.js";

export const mobId = decodeURIComponent(location.pathname.split("/")[2] ?? "");

export const saved = {
  key: `goodmob:mob:${mobId}`,
  refKey: `goodmob:ref:${mobId}`,
  load() {
    try { return JSON.parse(localStorage.getItem(this.key)) ?? null; } catch { return null; }
  },
  save(value) {
    try { localStorage.setItem(this.key, JSON.stringify(value)); } catch { /* private mode */ }
  },
  clear() {
    try { localStorage.removeItem(this.key); } catch { /* ignore */ }
  },
};

/** The referral code of the link that opened the page (kept for the session), or null. */
export function referralCode() {
  const fromUrl = new URLSearchParams(location.search).get("ref");
  try {
    if (fromUrl) sessionStorage.setItem(saved.refKey, fromUrl);
    return fromUrl || sessionStorage.getItem(saved.refKey);
  } catch {
    return fromUrl;
  }
}

export const store = createStore(initialState(saved.load()));

/** The server's clock: ClockSync once synced, else the HTTP Date estimate (±1 s). */
export function serverNow() {
  const conn = store.get().conn;
  return conn?.clock.isSynced ? conn.clock.serverNow() : serverNowEstimate();
}

export const currentPhase = () => phaseAt(store.get(), serverNow());
export const actionOver = () => actionOverAt(store.get(), serverNow());

// --- redraw ------------------------------------------------------------------------------------

let draw = () => {};
let pending = false;

/** Sets the function that draws the whole page (participant.js wires view.js's). */
export function setRenderer(fn) {
  draw = fn;
}

/** Draws the page now. */
export function render() {
  pending = false;
  draw();
}

/** Draws the page once the current code has run (several changes, one redraw). */
export function scheduleRender() {
  if (pending) return;
  pending = true;
  queueMicrotask(() => {
    if (pending) render();
  });
}

store.subscribe((_state, changed) => {
  if (changed.some((key) => key !== "heading")) scheduleRender();
});

// --- DOM helpers -------------------------------------------------------------------------------

export const $ = (id) => document.getElementById(id);

let toastTimer = null;

export function toast(message) {
  const el = $("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 2600);
}
