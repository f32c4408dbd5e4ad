/**
 * The organizer page (/organize): sign up or log in, list my mobs, create a mob step by step
 * (details → zone → tasks → publish) and run it (start now, postpone, cancel, announce,
 * rehearsal, live counters, the flagged-deeds review queue).
 *
 * This file only wires the page; the concerns are modules of ./organize/, built around one
 * store (./organize/state.js, on ../store.js): a module reads the store, changes it with
 * `set`, and subscribes to the keys it shows. Imported one way, without a circle:
 *
 * - state.js (store, rules, the kept session) and model.js (the zone's numbers, the
 *   schedule, the details' checks, the phase box): no DOM, tested under Node
 *   (tests/js/organize.test.mjs);
 * - page.js: DOM helpers, the session's API calls, the map and its layers, the steps;
 * - edit.js: details, zone drawing (Leaflet-Geoman; zone errors pinned on the map), task
 *   spots, publish;
 * - run.js: the Socket.IO connection, the phase box and controls, the review queue, sharing;
 * - nav.js: sign up, log in and out, the hash routes (`#/`, `#/new`,
 *   `#/mob/<id>[/<tab>]`), my mobs, opening a mob.
 *
 * Few modules, not one per concern: without a build step each is a response of its own
 * (twice on a first visit: the page's request and the worker's precache), ~1 KB of headers
 * each. The modules that import others are named here too, so that they are fetched in
 * the second wave rather than the third.
 *
 * @module organize
 */

import "./mapstyle.js";
import "./socket.js";
import { registerServiceWorker } from "./pwa.js";
import { initMob, initAccount, route, setAuthMode, showAuth } from "./organize/nav.js";
import { initDetails, initPublish, initTasks, initZone, saveZone } from "./organize/edit.js";
import { $$, onSessionExpired, session, setTab, view } from "./organize/page.js";
import { initLive, initReview, initRun, initShare } from "./organize/run.js";
import { store } from "./organize/state.js";

// For tests and debugging (no secrets: the token is not here): the map and its layers, the
// store, and each of the store's values by name (`goodmobOrganize.mob`).
const debug = { store };
for (const key of Object.keys(view)) {
  Object.defineProperty(debug, key, { get: () => view[key], enumerable: true });
}
for (const key of Object.keys(store.get())) {
  Object.defineProperty(debug, key, { get: () => store.get()[key], enumerable: true });
}
window.goodmobOrganize = debug;

function wire() {
  // The order of the modules is the order in which they hear a change of the store.
  initAccount();
  initMob();
  initDetails();
  initShare();
  initRun();
  initZone();
  initTasks();
  initPublish();
  initReview();
  initLive();

  for (const button of $$(".org-step")) {
    button.addEventListener("click", async () => {
      const { tab, zoneDirty, mob } = store.get();
      // Leaving the zone step saves the zone first; a refused zone keeps the step.
      if (button.dataset.tab !== "zone" && tab === "zone" && zoneDirty && mob) {
        await saveZone();
        if (store.get().zoneDirty) return;
      }
      setTab(button.dataset.tab);
    });
  }
  onSessionExpired(showAuth);
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", (event) => {
    if (store.get().zoneDirty && document.body.dataset.view === "mob") event.preventDefault();
  });
}

wire();
session.load();
setAuthMode("login");
route();
registerServiceWorker();
