/**
 * The discover page (/): explains why it wants the location, asks for it, and shows the
 * published and live mobs nearby on a map and as a list (distance, time to GO), nearest
 * first, from `GET /api/mobs?lat=&lon=&radius_m=`. Without location the map can be browsed
 * and searched ("Search this area"). "Tell me about mobs near here" follows the place at the
 * place searched (your position, or "Search this area") with a radius (follow.js; notification permission is asked on that tap only).
 *
 * @module discover
 */

import { api, serverNowEstimate } from "./api.js";
import { askPermission, follow, followNote, followText, placeTarget, subscribePush } from "./follow.js";
import { icons } from "./icons.js";
import { createMap, youMarker, zoneCenter, zoneLayer } from "./map.js";
import { escapeHtml, formatClock, formatDistance } from "./util.js";
import { registerServiceWorker } from "./pwa.js";

const L = globalThis.L;
const SEARCH_RADIUS_M = 20000;
const MAX_RADIUS_M = 50000;

const $ = (id) => document.getElementById(id);
const state = { mobs: [], map: null, layers: null, me: null, center: null, userMoved: false };

function setLocateButton(busy) {
  const btn = $("locate-btn");
  btn.disabled = busy;
  btn.innerHTML = busy
    ? '<div class="spinner" style="width:22px;height:22px;border-width:3px"></div> Finding you…'
    : `${icons.locate} Use my location`;
}

function showLocateError(message) {
  const el = $("locate-error");
  el.textContent = message;
  el.hidden = !message;
}

function locate() {
  if (!("geolocation" in navigator)) {
    showLocateError("This browser cannot share a location. Browse the map instead.");
    return;
  }
  setLocateButton(true);
  showLocateError("");
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      setLocateButton(false);
      const { latitude: lat, longitude: lon, accuracy } = pos.coords;
      $("locate").hidden = true;
      showResults();
      state.me ??= youMarker(state.map);
      state.me.update(lat, lon, accuracy);
      search(lat, lon, SEARCH_RADIUS_M, true);
    },
    (error) => {
      setLocateButton(false);
      showLocateError(error.code === error.PERMISSION_DENIED
        ? "Location is blocked for this site. Allow it in your browser's settings, or browse the map instead."
        : "We couldn't find your position. Try again (outdoors works best), or browse the map.");
    },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
  );
}

function showResults() {
  $("results").hidden = false;
  document.body.classList.add("located");
  if (state.map) return;
  state.map = createMap($("discover-map"), { center: [30, 10], zoom: 2 });
  state.layers = L.layerGroup().addTo(state.map);
  // Offer "Search this area" once the user moved the map (not after our own fitBounds).
  const moved = () => { state.userMoved = true; };
  state.map.on("dragstart", moved);
  state.map.getContainer().addEventListener("wheel", moved, { passive: true });
  state.map.getContainer().addEventListener("touchstart", (e) => { if (e.touches.length > 1) moved(); }, { passive: true });
  state.map.zoomControl?.getContainer().addEventListener("click", moved);
  state.map.on("moveend", () => {
    if (state.userMoved && state.center) $("search-here").hidden = false;
  });
}

function browse() {
  $("locate").hidden = true;
  showResults();
  state.center = [30, 10];
  $("results-title").textContent = "Find a mob";
  $("results-count").textContent = "Zoom in to a place and search";
  $("search-here").hidden = false;
  setTimeout(() => state.map.invalidateSize(), 0);
}

function searchHere() {
  const map = state.map;
  const c = map.getCenter();
  const b = map.getBounds();
  const radius = Math.min(MAX_RADIUS_M, Math.max(500, map.distance(c, b.getNorthEast())));
  if (map.distance(c, b.getNorthEast()) > MAX_RADIUS_M * 1.5) {
    $("results-count").textContent = "Zoom in closer to search";
    return;
  }
  $("search-here").hidden = true;
  state.userMoved = false;
  $("results-title").textContent = "In this area";
  search(c.lat, c.lng, radius, false);
}

async function search(lat, lon, radiusM, fit) {
  state.center = [lat, lon];
  $("follow-place").hidden = false; // "here" is now where this search looked
  $("status").hidden = false;
  $("empty").hidden = true;
  try {
    const body = await api(`/api/mobs?lat=${lat.toFixed(6)}&lon=${lon.toFixed(6)}&radius_m=${Math.round(radiusM)}&limit=50`);
    state.mobs = body.mobs;
    render(fit);
  } catch (error) {
    $("mob-list").innerHTML = `<div class="banner banner-danger">${icons.offline}<span>${escapeHtml(
      error.status === 0 ? "You seem to be offline. Mobs will show up when you're back online." : error.message,
    )}</span></div>`;
  } finally {
    $("status").hidden = true;
  }
}

/** The "GO in" box of a card: {label, value, unit, live}. */
function whenBox(mob, nowMs) {
  const t = mob.timeline;
  const left = t.go_at_ms - nowMs;
  if (mob.status === "action" || (left <= 0 && nowMs < t.end_at_ms)) {
    return { label: "Happening", value: "NOW", unit: "join in", live: true };
  }
  if (mob.status === "countdown" || left < 60_000) {
    const s = Math.max(0, Math.ceil(left / 1000));
    return { label: "GO in", value: `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`, unit: "min", live: true };
  }
  if (left < 3_600_000) return { label: "GO in", value: String(Math.ceil(left / 60_000)), unit: "min", live: false };
  if (left < 86_400_000) {
    const h = Math.floor(left / 3_600_000);
    const m = Math.floor((left % 3_600_000) / 60_000);
    return { label: "GO in", value: `${h} h`, unit: m ? `${m} min` : "", live: false };
  }
  const d = Math.round(left / 86_400_000);
  return { label: "GO in", value: String(d), unit: d === 1 ? "day" : "days", live: false };
}

function statusChip(mob) {
  return {
    action: '<span class="chip chip-live">Live</span>',
    countdown: '<span class="chip chip-live">Countdown</span>',
    gathering: '<span class="chip chip-soon">Gathering</span>',
  }[mob.status] ?? "";
}

function cardHtml(mob, nowMs, index) {
  const w = whenBox(mob, nowMs);
  const where = mob.distance_m === 0 ? "You're in the zone" : `${formatDistance(mob.distance_m)} away`;
  return `<a class="mob-card${w.live ? " live" : ""}" href="/m/${encodeURIComponent(mob.id)}" data-mob="${escapeHtml(mob.id)}" data-index="${index}">
    <div class="mob-when" aria-hidden="true"><span class="label">${w.label}</span><span class="value">${escapeHtml(w.value)}</span><span class="unit">${escapeHtml(w.unit)}</span></div>
    <div class="mob-body">
      <div class="row" style="gap:8px;justify-content:space-between"><h3>${escapeHtml(mob.title)}</h3>${statusChip(mob)}</div>
      <p class="action">${escapeHtml(mob.action)}</p>
      <div class="mob-meta">
        <span class="row" style="gap:4px">${icons.pin.replace("<svg", '<svg width="16" height="16"')}${escapeHtml(where)}</span>
        <span class="row" style="gap:4px">${icons.clock.replace("<svg", '<svg width="16" height="16"')}GO ${escapeHtml(formatClock(mob.timeline.go_at_ms, nowMs))}</span>
      </div>
      <span class="sr-only">Time to GO: ${escapeHtml(`${w.value} ${w.unit}`)}</span>
    </div>
  </a>`;
}

function render(fit) {
  const nowMs = serverNowEstimate();
  const mobs = state.mobs;
  $("results-count").textContent = mobs.length ? `${mobs.length} mob${mobs.length === 1 ? "" : "s"}` : "";
  $("mob-list").innerHTML = mobs.map((m, i) => cardHtml(m, nowMs, i)).join("");
  $("empty").hidden = mobs.length > 0;
  state.layers.clearLayers();
  const bounds = [];
  mobs.forEach((mob, i) => {
    const zone = zoneLayer(mob.zone).addTo(state.layers);
    bounds.push(zone.getBounds());
    const live = ["action", "countdown"].includes(mob.status);
    L.marker(zoneCenter(mob.zone), {
      icon: L.divIcon({ className: "", html: `<div class="mob-pin${live ? " live" : ""}">${i + 1}</div>`, iconSize: [34, 34], iconAnchor: [17, 17] }),
      title: mob.title,
    }).on("click", () => highlight(mob.id)).addTo(state.layers);
  });
  if (fit) {
    let box = L.latLngBounds([state.center, state.center]);
    for (const b of bounds.slice(0, 5)) box = box.extend(b);
    if (bounds.length) state.map.fitBounds(box.pad(0.15), { maxZoom: 16 });
    else state.map.setView(state.center, 13);
  }
}

function highlight(id) {
  const card = document.querySelector(`.mob-card[data-mob="${CSS.escape(id)}"]`);
  if (!card) return;
  card.scrollIntoView({ behavior: "smooth", block: "center" });
  card.style.borderColor = "var(--green)";
  setTimeout(() => { card.style.borderColor = ""; }, 1500);
}

async function followHere() {
  const permission = askPermission(globalThis.Notification); // in the tap, before any await
  const button = $("follow-place-btn");
  const note = $("follow-place-note");
  const [lat, lon] = state.center; // where the list's mobs were searched
  button.disabled = true;
  note.hidden = true;
  try {
    const made = await follow(api, localStorage, placeTarget(lat, lon, Number($("follow-radius").value)));
    const answer = await permission;
    const push = answer === "granted"
      ? await subscribePush({ api, storage: localStorage, serviceWorker: navigator.serviceWorker, register: registerServiceWorker })
      : "no-push";
    note.textContent = `Following: ${followText(made)}. ${followNote(answer, push)}`;
  } catch (error) {
    note.textContent = error.status === 0 ? "You seem to be offline: try again." : error.message;
  } finally {
    button.disabled = false;
    note.hidden = false;
  }
}

/** Keeps the "GO in" boxes current without re-fetching. */
function tick() {
  if (!state.mobs.length) return;
  const nowMs = serverNowEstimate();
  for (const card of document.querySelectorAll(".mob-card")) {
    const mob = state.mobs[Number(card.dataset.index)];
    const w = whenBox(mob, nowMs);
    card.querySelector(".mob-when .value").textContent = w.value;
    card.querySelector(".mob-when .unit").textContent = w.unit;
    card.classList.toggle("live", w.live);
  }
}

async function init() {
  $("locate-icon").innerHTML = icons.pin;
  $("empty-icon").innerHTML = icons.map;
  setLocateButton(false);
  $("locate-btn").addEventListener("click", locate);
  $("browse-btn").addEventListener("click", browse);
  $("search-here").addEventListener("click", searchHere);
  $("follow-place-btn").addEventListener("click", followHere);
  setInterval(tick, 1000);
  registerServiceWorker();
  try {
    const status = await navigator.permissions?.query({ name: "geolocation" });
    if (status?.state === "granted") locate(); // asked before: no need to explain again
  } catch {
    // Permissions API missing: wait for the tap.
  }
}

init();
