/**
 * The public after-action summary page, /s/<mob id>: counts, the funnel, deeds per minute,
 * the map of tasks done, pledge totals and the top sharers (chosen nicknames only). Everything
 * comes from GET /api/mobs/<id>/public-summary, which holds no one's position.
 *
 * @module summary
 */

import { api } from "/js/api.js";
import { createMap, fitTo, tasksLayer, zoneLayer } from "/js/mapstyle.js";

const $ = (id) => document.getElementById(id);

/** "1,234.50 EUR"-style text of a currency total (minor units → major, by the server). */
function money(total) {
  const value = Number(total.owed);
  const text = Number.isFinite(value) ? value.toLocaleString(undefined, { maximumFractionDigits: 4 }) : total.owed;
  return `${text} ${total.currency}`;
}

function renderHead(mob) {
  $("sum-title").textContent = mob.title;
  document.title = `${mob.title} · Good Mob`;
  const when = new Date(mob.go_at_ms).toLocaleString(undefined, { dateStyle: "full", timeStyle: "short" });
  const local = mob.go_local?.time_zone ? ` (${mob.go_local.local_time} ${mob.go_local.zone_abbreviation} local)` : "";
  const state = mob.final ? (mob.status === "cancelled" ? "Cancelled" : "Finished") : "So far";
  const rehearsal = mob.rehearsal ? " · rehearsal: deeds are not counted" : "";
  $("sum-when").textContent = `${state} · GO ${when}${local} · by ${mob.organizer.name}${rehearsal}`;
}

function renderCounters(body) {
  for (const key of ["joined", "in_zone", "deeds_done"]) $(`c-${key}`).textContent = String(body.counters[key]);
  const totals = body.pledges?.totals ?? [];
  $("c-pledged").textContent = totals.length ? totals.map(money).join(" + ") : "—";
}

function renderFunnel(funnel) {
  const steps = [["viewed", "viewed"], ["joined", "joined"], ["in_zone", "in the zone"], ["matched", "on a task"], ["done", "did a deed"]];
  const top = Math.max(1, ...steps.map(([key]) => funnel[key] ?? 0));
  const box = $("sum-funnel");
  box.replaceChildren();
  for (const [key, label] of steps) {
    const row = document.createElement("div");
    row.className = "sum-step";
    const name = document.createElement("span");
    name.textContent = label;
    const count = document.createElement("b");
    count.textContent = String(funnel[key] ?? 0);
    const bar = document.createElement("span");
    bar.className = "sum-bar";
    const fill = document.createElement("i");
    fill.style.width = `${(100 * (funnel[key] ?? 0)) / top}%`;
    bar.append(fill);
    row.append(name, count, bar);
    box.append(row);
  }
}

function renderChart(perMinute) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const n = Math.max(1, perMinute.length);
  const top = Math.max(1, ...perMinute.map((m) => m.done));
  svg.setAttribute("viewBox", `0 0 ${n * 10} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", perMinute.map((m) => `minute ${m.minute + 1}: ${m.done}`).join(", "));
  perMinute.forEach((m, i) => {
    const rect = document.createElementNS(ns, "rect");
    const h = (96 * m.done) / top;
    rect.setAttribute("x", String(i * 10 + 1));
    rect.setAttribute("width", "8");
    rect.setAttribute("y", String(100 - h));
    rect.setAttribute("height", String(h));
    svg.append(rect);
  });
  $("sum-chart").replaceChildren(svg);
}

function renderCascade(cascade) {
  $("sum-cascade-text").textContent =
    `${cascade.referred} of ${cascade.joined} came through a shared link; ` +
    `the longest chain of shares is ${cascade.depth} long.`;
  const list = $("sum-sharers");
  list.replaceChildren();
  for (const s of cascade.sharers) {
    const item = document.createElement("li");
    item.textContent = `${s.name}: brought ${s.brought}, whose shares led to ${s.deeds_led_to} deed${s.deeds_led_to === 1 ? "" : "s"}`;
    list.append(item);
  }
}

function renderMap(body) {
  const map = createMap($("sum-map"), { zoomControl: true });
  const zone = zoneLayer(body.zone).addTo(map);
  tasksLayer(body.tasks, { size: 18 }).addTo(map);
  fitTo(map, zone);
}

async function main() {
  const mobId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() ?? "");
  try {
    const body = await api(`/api/mobs/${encodeURIComponent(mobId)}/public-summary`);
    renderHead(body.mob);
    renderCounters(body);
    renderFunnel(body.funnel);
    renderChart(body.per_minute);
    renderCascade(body.cascade);
    renderMap(body);
  } catch (error) {
    $("sum-title").textContent = "Summary unavailable";
    const box = $("sum-error");
    box.textContent = error.status === 404 ? "There is no such mob." : error.message;
    box.hidden = false;
  }
}

main();
