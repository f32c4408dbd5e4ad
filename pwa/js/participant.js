/**
 * The participant's page (/m/<id>[?ref=CODE]): join with an optional nickname, then the zone,
 * your position and accuracy, your task with distance and an arrow, the phase and a big
 * countdown; at GO the whole screen flips to the action prompt at the instant the server's
 * clock reaches go_at (clock.js fireAt, the same instant on every phone), with a colour
 * flash, a vibration and a short beep; then a big "Done" that goes through the IndexedDB
 * outbox (deedqueue.js) so a deed tapped offline is delivered later, exactly once.
 *
 * This module wires the page; each concern is a module of participant/ (state, model, guide,
 * join, realtime, location, go, deeds, countdown, view, mapview, feedback, share: see
 * docs/ARCHITECTURE.md, "The participant page"), around one state store (participant/state.js).
 *
 * - Phases may jump (a scheduler that was down moves a mob straight to its current phase
 *   with one event): a late joiner or a phone told "action" late gets the action prompt with
 *   how long ago it started and how long is left; a phone that slept through the whole action
 *   gets no GO flash on waking, but the closing screen ("you missed the action").
 * - One story (issue 17): a spot is claimed only from inside the zone (the server's rule), so
 *   a phone outside or at the edge is told to step in, and whether the walk still fits
 *   before the end; at GO a phone without a spot is told how far it is, whether it can still
 *   make it, or to watch live, never "around your spot". The GO screen shows the time left,
 *   the map and the way back, takes focus (Done) and makes the page behind it `inert`. A
 *   cancel stops the guiding and the location watch; a blocked location says so (icon,
 *   warning, "Try again").
 * - `window.__goodmob` and `window.__goodmobClock` record the GO instant for tests (go.js);
 *   `window.__goodmobState()` returns a read-only summary of the page's state (no token).
 *
 * @module participant
 */

import { icons } from "./icons.js";
import { registerServiceWorker } from "./pwa.js";
// Named here, not only by participant/realtime.js, so the browser fetches it with the first
// wave of modules and the Socket.IO client it imports with the second (a first visit waits
// no extra round trip for the deeper module graph).
import "./socket.js";
import { tick } from "./participant/countdown.js";
import { keepSending, restoreDeed, tapDone } from "./participant/deeds.js";
import { $, unlockAudio } from "./participant/feedback.js";
import { join, loadMob } from "./participant/join.js";
import { onOrientation, retryLocation, watchLocation } from "./participant/location.js";
import { connect } from "./participant/realtime.js";
import { share, shareUrl } from "./participant/share.js";
import { currentPhase, mobId, referralCode, render, setRenderer, store } from "./participant/state.js";
import { render as draw, renderTop } from "./participant/view.js";

setRenderer(draw);

async function init() {
  $("back-link").innerHTML = icons.back;
  $("go-back").innerHTML = icons.back;
  $("geo-warning").insertAdjacentHTML("afterbegin", icons.locationOff);
  $("geo-retry").addEventListener("click", retryLocation);
  $("share-btn").innerHTML = `${icons.share}<span>Share</span>`;
  $("share-big").innerHTML = `${icons.share} Bring a friend`;
  $("go-share").innerHTML = `${icons.share} Share the moment`;
  for (const id of ["share-btn", "share-big", "go-share"]) $(id).addEventListener("click", share);
  $("join-form").addEventListener("submit", join);
  $("done-btn").addEventListener("click", tapDone);
  document.addEventListener("pointerdown", unlockAudio, { passive: true });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") render();
  });
  $("go-screen").addEventListener("animationend", () => $("go-screen").classList.remove("flash"));
  window.addEventListener("deviceorientationabsolute", onOrientation);
  window.addEventListener("deviceorientation", onOrientation);
  if (!mobId) {
    store.set({ fatal: "This link is missing the mob's id." });
    render();
    return;
  }
  referralCode();
  await restoreDeed();
  const loading = loadMob();
  if (store.get().session?.token) connect();
  else {
    try {
      const permission = await navigator.permissions?.query({ name: "geolocation" });
      store.set({ geoPermission: permission?.state ?? null });
      if (permission?.state === "granted") watchLocation(); // show the way to the zone already
    } catch { /* ask after joining */ }
  }
  await loading;
  keepSending();
  tick(renderTop);
  registerServiceWorker();
}

/**
 * A read-only view of the page's state for tests and debugging (no token in it).
 * @returns {object}
 */
window.__goodmobState = () => {
  const state = store.get();
  return {
    mob: mobId,
    phase: state.mob ? currentPhase() : "loading",
    serverPhase: state.phase,
    joined: Boolean(state.session),
    nickname: state.me?.nickname ?? state.session?.participant?.nickname ?? null,
    refCode: state.me?.ref_code ?? state.session?.participant?.ref_code ?? null,
    shareUrl: state.session ? shareUrl() : null,
    task: state.task,
    zone: state.zone,
    fix: state.fix,
    geoError: state.geoError,
    counters: state.counters,
    deed: state.deed && { deed_id: state.deed.deed_id, state: state.deed.state, answer: state.deed.answer },
    connection: state.connStatus,
    clock: state.conn ? { synced: state.conn.clock.isSynced, offsetMs: state.conn.clock.offsetMs } : null,
    go: state.go,
    pledges: state.pledges,
  };
};

init();
