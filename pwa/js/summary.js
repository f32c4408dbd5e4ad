/**
 * The public after-action summary page, /s/<mob id>: counts, the funnel, deeds per minute,
 * the map of tasks done, pledge totals and the top sharers (chosen nicknames only). Everything
 * comes from GET /api/mobs/<id>/public-summary, which holds no one's position.
 *
 * @module summary
 */

import { api } from "./api.js";
import { createMap, fitTo, tasksLayer, zoneLayer } from "./mapstyle.js";

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

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (and text). */
function svgEl(name, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== null) el.textContent = text;
  return el;
}

/**
 * Round tick values from 0 to at least `top`: steps of 1, 2 or 5 × 10ⁿ, at most `most` + 1.
 * `niceTicks(0)` → [0, 1]; `niceTicks(7)` → [0, 2, 4, 6, 8]; `niceTicks(130)` → [0, 50, 100, 150].
 */
export function niceTicks(top, most = 5) {
  const max = Math.max(1, top);
  const raw = max / most;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw));
  const ticks = [];
  for (let v = 0; v < max + step; v += step) {
    ticks.push(v);
    if (v >= max) break;
  }
  return ticks;
}

/**
 * Deeds per minute after GO as a bar chart in inline SVG: a y axis of deeds with round ticks
 * and grid lines, an x axis of minutes (1 = the first minute after GO), each bar's count above
 * it. The drawing keeps its aspect ratio (no stretched text), at the card's width.
 */
function renderChart(perMinute) {
  // Drawn at the card's own width (1 unit = 1 CSS pixel), so labels keep their size on phones.
  const W = Math.round(Math.max(280, Math.min(900, $("sum-chart").clientWidth || 640)));
  const H = W < 480 ? 200 : 240;
  const pad = { left: 48, right: 10, top: 16, bottom: 46 };
  const plotW = W - pad.left - pad.right;
  const plotH = H - pad.top - pad.bottom;
  const minutes = perMinute.length ? perMinute : [{ minute: 0, done: 0 }];
  const ticks = niceTicks(Math.max(0, ...minutes.map((m) => m.done)));
  const top = ticks.at(-1);
  const y = (v) => pad.top + plotH - (plotH * v) / top;
  const slot = plotW / minutes.length;
  const barW = Math.max(2, Math.min(56, slot * 0.7));
  const every = Math.ceil(minutes.length / Math.max(4, Math.floor(plotW / 40))); // labels ≥ 40 px apart

  const svg = svgEl("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    class: "sum-chart-svg",
    "aria-label": `Deeds per minute after GO: ${minutes.map((m) => `minute ${m.minute + 1}: ${m.done}`).join(", ")}`,
  });
  const yTicks = svgEl("g", { class: "sum-ticks-y" });
  for (const v of ticks) {
    const tick = svgEl("g", { class: "sum-tick-y" });
    tick.append(
      svgEl("line", { class: "sum-grid", x1: pad.left, x2: W - pad.right, y1: y(v), y2: y(v) }),
      svgEl("text", { x: pad.left - 8, y: y(v), "text-anchor": "end", "dominant-baseline": "middle" }, v.toLocaleString()),
    );
    yTicks.append(tick);
  }
  svg.append(yTicks);

  const bars = svgEl("g", { class: "sum-bars" });
  const xTicks = svgEl("g", { class: "sum-ticks-x" });
  minutes.forEach((m, i) => {
    const cx = pad.left + slot * (i + 0.5);
    const h = (plotH * m.done) / top;
    const bar = svgEl("rect", { class: "sum-bar-rect", x: cx - barW / 2, width: barW, y: pad.top + plotH - h, height: h });
    bar.append(svgEl("title", {}, `minute ${m.minute + 1}: ${m.done} deed${m.done === 1 ? "" : "s"}`));
    bars.append(bar);
    if (m.done > 0 && barW >= 14) {
      bars.append(svgEl("text", { class: "sum-bar-value", x: cx, y: pad.top + plotH - h - 4, "text-anchor": "middle" }, m.done.toLocaleString()));
    }
    if (i % every === 0) {
      const tick = svgEl("g", { class: "sum-tick-x" });
      tick.append(
        svgEl("line", { x1: cx, x2: cx, y1: pad.top + plotH, y2: pad.top + plotH + 5 }),
        svgEl("text", { x: cx, y: pad.top + plotH + 18, "text-anchor": "middle" }, String(m.minute + 1)),
      );
      xTicks.append(tick);
    }
  });
  svg.append(bars, xTicks);
  svg.append(
    svgEl("line", { class: "sum-axis-x", x1: pad.left, x2: W - pad.right, y1: pad.top + plotH, y2: pad.top + plotH }),
    svgEl("line", { class: "sum-axis-y", x1: pad.left, x2: pad.left, y1: pad.top, y2: pad.top + plotH }),
    svgEl("text", { class: "sum-axis-title", x: pad.left + plotW / 2, y: H - 8, "text-anchor": "middle" }, "minute after GO"),
    svgEl("text", {
      class: "sum-axis-title", x: 14, y: pad.top + plotH / 2, "text-anchor": "middle",
      transform: `rotate(-90 14 ${pad.top + plotH / 2})`,
    }, "deeds"),
  );
  $("sum-chart").replaceChildren(svg);
}

/** The cascade in one true sentence (no "chain of 0" when nobody came through a share). */
export function cascadeSentence(cascade) {
  const { referred = 0, joined = 0, depth = 0 } = cascade ?? {};
  if (!joined) return "No one has joined yet.";
  if (!referred) return `None of the ${joined.toLocaleString()} who joined came through a shared link.`;
  const came = `${referred.toLocaleString()} of ${joined.toLocaleString()} came through a shared link`;
  if (depth <= 1) return `${came}, each straight from the person who shared it.`;
  return `${came}; the longest chain of shares went ${depth} people deep (a friend of a friend${depth > 2 ? " of a friend…" : ""}).`;
}

function renderCascade(cascade) {
  $("sum-cascade-text").textContent = cascadeSentence(cascade);
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
