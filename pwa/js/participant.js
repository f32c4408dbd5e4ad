/**
 * The participant's page (/m/<id>[?ref=CODE]): join, be guided to your spot, count down, GO
 * at the server's instant on every phone, "Done" through the offline outbox. This module
 * wires the page; each concern is a module of participant/ (state, model, join, realtime,
 * go, view: docs/ARCHITECTURE.md, "The participant page") around one state store.
 * `window.__goodmobState()` returns a read-only summary of the page's state (no token);
 * `window.__goodmob` and `window.__goodmobClock` record the GO instant for tests (go.js).
 *
 * @module participant
 */

import { icons } from "./icons.js";
import { registerServiceWorker } from "./pwa.js";
// Named here too, so the Socket.IO client it imports is fetched one round trip earlier.
import "./socket.js";
import { unlockAudio } from "./participant/go.js";
import { join, loadMob, share, shareUrl } from "./participant/join.js";
import {
  connect, keepSending, onOrientation, restoreDeed, retryLocation, tapDone, watchLocation,
} from "./participant/realtime.js";
import { $, currentPhase, mobId, referralCode, render, setRenderer, store } from "./participant/state.js";
import { render as draw, tick } from "./participant/view.js";

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
  tick();
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
