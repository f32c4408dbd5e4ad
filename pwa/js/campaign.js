/**
 * A campaign's world live map (/live/c/<campaign id>): the zones of its mobs in several
 * cities on one map, the one GO instant in each city's local time, each mob's counters and
 * the global ones, and the campaign's pledge totals.
 *
 * Everything comes from GET /api/campaigns/<id>, read again every REFRESH_MS (and when the
 * page becomes visible): `{title, go_at_ms, in_sync, mobs: [{id, title, status, live_url,
 * go_local, timeline, counters, center}], counters, pledges, map}`. It holds no one's
 * position: zones, one representative point per zone, and counts. The countdown runs on
 * the server clock estimated from the responses' Date headers (api.js, ±1 s).
 *
 * @module campaign
 */

import { api, serverNowEstimate } from "./api.js";
import { pledgeSummary } from "./growth.js";
import { createMap, fitTo } from "./mapstyle.js";
import { registerServiceWorker } from "./pwa.js";
import { escapeHtml, formatCountdown, phaseAt } from "./util.js";

const L = globalThis.L;
const REFRESH_MS = 5000;
const COUNTERS = ["joined", "in_zone", "matched", "deeds_done"];
const ORDER = ["draft", "published", "gathering", "countdown", "action", "finished"];
const PHASE_WORDS = {
  draft: "Draft", published: "Upcoming", gathering: "Gathering", countdown: "Countdown",
  action: "GO!", finished: "Finished", cancelled: "Cancelled",
};
const CHIP_CLASS = {
  published: "", gathering: "chip-soon", countdown: "chip-live", action: "chip-live",
  finished: "chip-done", cancelled: "chip-danger", draft: "chip-warn",
};

const $ = (id) => document.getElementById(id);

/** The campaign id of /live/c/<id>. */
export function campaignIdFromPath(pathname) {
  const match = pathname.match(/^\/live\/c\/([A-Za-z0-9_-]+)\/?$/);
  return match ? match[1] : null;
}

/** "Europe/Berlin" → "Berlin", "America/New_York" → "New York", none → "UTC". */
export function cityOf(timeZone) {
  if (!timeZone) return "UTC";
  return timeZone.split("/").pop().replaceAll("_", " ");
}

/** The campaign's phase at `now`: the furthest of its mobs' (finished once all are). */
export function campaignPhase(mobs, now) {
  const live = mobs.filter((m) => m.status !== "cancelled");
  if (!live.length) return mobs.length ? "cancelled" : "published";
  const phases = live.map((m) => (m.timeline ? phaseAt(m.timeline, now) : m.status));
  if (phases.every((p) => p === "finished")) return "finished";
  if (phases.includes("action")) return "action";
  return phases.filter((p) => p !== "finished").reduce((a, b) => (ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a));
}

function localLine(mob) {
  const local = mob.go_local ?? {};
  const zone = local.zone_abbreviation && !/^[+-]/.test(local.zone_abbreviation) ? ` ${local.zone_abbreviation}` : "";
  return `${local.local_time ?? "–:––"}${zone} in ${cityOf(local.time_zone)}`;
}

class CampaignPage {
  constructor(campaignId) {
    this.id = campaignId;
    this.body = null;
    this.map = null;
    this.zones = null;
    this.pins = new Map();
    this.fitted = false;
    this.timer = null;
  }

  start() {
    this.map = createMap($("camp-map"), { lat: 20, lon: 0, zoom: 1, zoomSnap: 0.25 });
    this.load();
    setInterval(() => this.tick(), 250);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.load();
    });
  }

  async load() {
    clearTimeout(this.timer);
    try {
      const body = await api(`/api/campaigns/${encodeURIComponent(this.id)}`);
      this.render(body);
      this.setConn("live", "Live");
    } catch (error) {
      if (error.status === 404) {
        this.fail("<strong>No such campaign.</strong> The link may be mistyped. <a href=\"/\">Find mobs near you</a>");
        return;
      }
      this.setConn("offline", "Reconnecting…");
    }
    this.timer = setTimeout(() => this.load(), REFRESH_MS);
  }

  render(body) {
    this.body = body;
    $("camp-title").textContent = body.title;
    document.title = `${body.title} · Campaign live · Good Mob`;
    const description = $("camp-description");
    description.textContent = body.description ?? "";
    description.hidden = !body.description;
    const n = body.mobs.length;
    const cities = new Set(body.mobs.map((m) => cityOf(m.go_local?.time_zone))).size;
    $("camp-count").textContent = `${n} mob${n === 1 ? "" : "s"} · ${cities} ${cities === 1 ? "city" : "cities"}`;
    const sync = $("camp-sync");
    sync.hidden = body.in_sync !== false;
    sync.textContent = "Not every mob is on the campaign's GO right now.";
    this.renderCounters(body.counters ?? {});
    this.renderPledges(body.pledges);
    this.renderMobs(body.mobs);
    this.renderMap(body);
    this.tick();
  }

  renderCounters(counters) {
    this.countersShown ??= false;
    const top = Math.max(1, counters.joined ?? 0);
    for (const key of COUNTERS) {
      const value = counters[key] ?? 0;
      const num = $(`g-${key}`);
      const text = value.toLocaleString();
      const step = num.closest(".funnel-step");
      step.querySelector(".funnel-bar i").style.width = `${Math.min(100, (100 * value) / top)}%`;
      if (num.textContent !== text) {
        if (this.countersShown) flash(step);
        num.textContent = text;
      }
    }
    this.countersShown = true;
  }

  renderPledges(pledges) {
    const summary = pledgeSummary({ totals: pledges?.totals ?? [] });
    $("camp-pledges").hidden = !summary;
    if (!summary) return;
    $("camp-pledges-text").textContent = summary.text;
    $("camp-pledges-sub").textContent = summary.sub;
  }

  renderMobs(mobs) {
    const list = $("camp-mobs");
    const now = serverNowEstimate();
    const items = mobs.map((mob) => {
      const phase = mob.status === "cancelled" ? "cancelled" : phaseAt(mob.timeline, now);
      const item = document.createElement("li");
      item.className = "camp-mob";
      item.dataset.mob = mob.id;
      const head = document.createElement("div");
      head.className = "camp-mob-head";
      const link = document.createElement("a");
      link.className = "camp-mob-title";
      link.href = mob.live_url ?? `/live/${encodeURIComponent(mob.id)}`;
      link.textContent = mob.title;
      const chip = document.createElement("span");
      chip.className = `chip ${CHIP_CLASS[phase] ?? ""}`;
      chip.textContent = PHASE_WORDS[phase] ?? phase;
      head.append(link, chip);
      const time = document.createElement("div");
      time.className = "camp-mob-time";
      const offset = mob.go_local?.utc_offset ? ` (UTC${mob.go_local.utc_offset})` : "";
      time.textContent = `GO ${localLine(mob)}${offset}`;
      const counts = document.createElement("div");
      counts.className = "camp-mob-counts";
      const c = mob.counters ?? {};
      counts.innerHTML = [
        [c.joined, "joined"], [c.in_zone, "in the zone"], [c.deeds_done, (c.deeds_done === 1 ? "deed" : "deeds")],
      ].map(([value, label]) => `<span><b>${Number(value ?? 0).toLocaleString()}</b> ${label}</span>`).join("");
      item.append(head, time, counts);
      return item;
    });
    list.replaceChildren(...items);
  }

  renderMap(body) {
    const features = body.map?.features ?? [];
    const key = features.map((f) => f.id).join(",");
    if (this.zonesKey !== key) {
      this.zonesKey = key;
      if (this.zones) this.map.removeLayer(this.zones);
      this.zones = L.geoJSON(body.map, {
        pmIgnore: true,
        interactive: false,
        style: () => ({ color: "#0b6e4f", weight: 3, fillColor: "#0b6e4f", fillOpacity: 0.2 }),
      }).addTo(this.map);
    }
    const seen = new Set();
    for (const mob of body.mobs) {
      if (!mob.center) continue;
      seen.add(mob.id);
      const c = mob.counters ?? {};
      const label = `${(c.deeds_done ?? 0).toLocaleString()}`;
      const href = mob.live_url ?? `/live/${encodeURIComponent(mob.id)}`;
      const html = `<a class="camp-pin" href="${escapeHtml(href)}" title="${escapeHtml(mob.title)}">` +
        `<b>${label}</b><span>${escapeHtml(cityOf(mob.go_local?.time_zone))}</span></a>`;
      let pin = this.pins.get(mob.id);
      if (!pin) {
        pin = L.marker([mob.center.lat, mob.center.lon], { keyboard: false, pmIgnore: true });
        pin.addTo(this.map);
        this.pins.set(mob.id, pin);
      }
      pin.setLatLng([mob.center.lat, mob.center.lon]);
      if (pin.options.icon?.options?.html !== html) {
        pin.setIcon(L.divIcon({ className: "camp-pin-icon", html, iconSize: null, iconAnchor: [0, 0] }));
      }
    }
    for (const [id, pin] of this.pins) {
      if (!seen.has(id)) {
        pin.remove();
        this.pins.delete(id);
      }
    }
    if (!this.fitted && this.pins.size) {
      const bounds = L.latLngBounds([...this.pins.values()].map((p) => p.getLatLng()));
      if (this.zones) bounds.extend(this.zones.getBounds());
      this.fitted = fitTo(this.map, { getBounds: () => bounds.pad(this.pins.size > 1 ? 0.25 : 0) }, {
        maxZoom: 15, padding: 36,
      });
    }
  }

  /** The countdown and phase, on the server clock estimate. */
  tick() {
    const body = this.body;
    if (!body) return;
    const now = serverNowEstimate();
    const phase = campaignPhase(body.mobs, now);
    const chip = $("camp-phase");
    chip.dataset.phase = phase;
    chip.textContent = PHASE_WORDS[phase] ?? "…";
    $("camp-countdown").dataset.phase = phase;
    document.body.dataset.phase = phase;
    const live = body.mobs.filter((m) => m.status !== "cancelled" && m.timeline);
    const goAt = body.go_at_ms;
    const endAt = Math.max(goAt, ...live.map((m) => m.timeline.end_at_ms));
    const done = body.counters?.deeds_done ?? 0;
    const places = live.map(localLine).join(" · ");
    let text;
    if (phase === "action") {
      text = ["Ends in", formatCountdown(endAt - now), "Everyone acts now, all over the world"];
    } else if (phase === "finished") {
      text = ["Finished", done.toLocaleString(), `good deed${done === 1 ? "" : "s"} done in ${live.length} ${live.length === 1 ? "place" : "places"} · thank you!`];
    } else if (phase === "cancelled") {
      text = ["Cancelled", "—", "The organizer called this campaign off."];
    } else {
      text = ["GO everywhere in", formatCountdown(goAt - now), places ? `One instant: ${places}` : ""];
    }
    [$("camp-cd-label").textContent, $("camp-cd-time").textContent, $("camp-cd-sub").textContent] = text;
  }

  setConn(state, text) {
    const el = $("camp-conn");
    el.dataset.state = state;
    el.querySelector(".live-conn-text").textContent = text;
  }

  fail(html) {
    clearTimeout(this.timer);
    const box = $("camp-error");
    box.innerHTML = html;
    box.hidden = false;
    $("camp-title").textContent = "Campaign not found";
    this.setConn("offline", "Not watching");
  }
}

function flash(el) {
  el.classList.remove("og-flash");
  void el.offsetWidth; // restart the animation
  el.classList.add("og-flash");
}

registerServiceWorker();
const campaignId = campaignIdFromPath(location.pathname) ?? new URLSearchParams(location.search).get("campaign");
if (campaignId) {
  new CampaignPage(campaignId).start();
} else {
  const box = $("camp-error");
  box.innerHTML = "<strong>Which campaign?</strong> Open a campaign's live map from its link. <a href=\"/\">Find mobs near you</a>";
  box.hidden = false;
}
