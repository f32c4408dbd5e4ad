/**
 * DOM-free helpers for what the pages show beyond the counters (issue 6): pledge totals as
 * money, the page-view beacon's client id, the funnel and the cascade's sharers. Runs under
 * Node too (tests/js/growth.test.mjs).
 *
 * Pledge totals come from `GET /api/mobs/<id>/pledges/totals` (and the `pledges` of every
 * `stats` event): `{deeds_counted, totals: [{currency, owed_minor, owed, per_deed_minor,
 * pledges, waiting_for_threshold}], campaign: {id, deeds_counted, totals} | null}`.
 *
 * @module growth
 */

/** Fraction digits of a currency (ISO 4217 through Intl; 2 when Intl does not know it). */
export function currencyDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** An amount in a currency's major unit as money: formatMoney(12.5, "EUR", "en-GB") → "€12.50". */
export function formatMoney(amount, currency, locale = undefined) {
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

/** A currency total of the API as money (from its exact `owed_minor`). */
export function totalMoney(total, locale = undefined) {
  const digits = currencyDigits(total.currency);
  const amount = Number.isFinite(total.owed_minor) ? total.owed_minor / 10 ** digits : Number(total.owed);
  return formatMoney(amount, total.currency, locale);
}

/**
 * The pledge totals in words, or null when no one pledged anything:
 * `{text: "€12.50 pledged so far", sub: "each deed adds €0.50 · €40.00 across the campaign"}`.
 */
export function pledgeSummary(pledges, locale = undefined) {
  const own = (pledges?.totals ?? []).filter((t) => t.pledges > 0);
  const campaign = (pledges?.campaign?.totals ?? []).filter((t) => t.pledges > 0);
  if (!own.length && !campaign.length) return null;
  const join = (totals) => totals.map((t) => totalMoney(t, locale)).join(" + ");
  const sub = [];
  let text;
  if (own.length) {
    const next = own.filter((t) => t.per_deed_minor > 0);
    const each = next.map((t) => formatMoney(t.per_deed_minor / 10 ** currencyDigits(t.currency), t.currency, locale));
    if (own.some((t) => t.owed_minor > 0)) {
      text = `${join(own)} pledged so far`;
      if (each.length) sub.push(`each deed adds ${each.join(" + ")}`);
    } else {
      // Nothing owed yet (no deed, or thresholds not reached): say what a deed is worth.
      text = each.length ? `Sponsors give ${each.join(" + ")} per good deed` : `${join(own)} pledged so far`;
    }
    if (campaign.length) sub.push(`${join(campaign)} across the campaign`);
  } else {
    text = `${join(campaign)} pledged across the campaign`;
  }
  const waiting = own.reduce((n, t) => n + (t.waiting_for_threshold ?? 0), 0);
  if (waiting) sub.push(`${waiting} pledge${waiting === 1 ? "" : "s"} start${waiting === 1 ? "s" : ""} after more deeds`);
  return { text, sub: sub.join(" · ") };
}

/** UTC day of an epoch ms: "2026-05-01". */
function utcDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** A random id of 20 URL-safe characters (120 bits). */
export function randomId() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return [...globalThis.crypto.getRandomValues(new Uint8Array(20))].map((b) => alphabet[b & 63]).join("");
}

/**
 * The page-view beacon's client id: random, kept in `storage` for the UTC day (then a new
 * one), never tied to a person. Without storage a new id each time.
 */
export function viewClientId(storage, now = Date.now()) {
  const key = "goodmob:view-client";
  const day = utcDay(now);
  try {
    const saved = JSON.parse(storage?.getItem(key) ?? "null");
    if (saved?.day === day && /^[A-Za-z0-9_-]{8,64}$/.test(saved.id ?? "")) return saved.id;
  } catch {
    // unreadable: make a new one
  }
  const id = randomId();
  try {
    storage?.setItem(key, JSON.stringify({ id, day }));
  } catch {
    // private mode: the id lives for this page only
  }
  return id;
}

/**
 * The funnel's steps, attention to action: [{key, label, value, share}] with `share` the
 * fraction of the widest step (for the bars). Live counters win over the funnel's numbers
 * (they are newer); `viewed` and `done` come from the funnel only.
 */
export function funnelSteps(counters = {}, funnel = {}) {
  const pick = (key, fallback) => (Number.isFinite(counters[key]) ? counters[key] : funnel[fallback ?? key]);
  const steps = [
    ["viewed", "viewed", funnel.viewed],
    ["joined", "joined", pick("joined")],
    ["in_zone", "in the zone", pick("in_zone")],
    ["matched", "on a task", pick("matched")],
    ["deeds_done", "deeds done", pick("deeds_done")],
  ].map(([key, label, value]) => ({ key, label, value: Number.isFinite(value) ? value : 0 }));
  // Views are counted once a day per phone, joins always: never show fewer views than joins.
  steps[0].value = Math.max(steps[0].value, steps[1].value);
  const top = Math.max(1, ...steps.map((s) => s.value));
  return steps.map((s) => ({ ...s, share: Math.min(1, s.value / top) }));
}

/** The name a sharer is shown with: their chosen nickname, or "Someone" (server: "anonymous"). */
export function sharerName(sharer) {
  if (sharer.kind === "organizer") return `${sharer.name} (organizer)`;
  return sharer.name && sharer.name !== "anonymous" ? sharer.name : "Someone";
}

/** One line about the cascade: "5 of 12 came through a shared link · chains 3 deep". */
export function cascadeLine(cascade) {
  if (!cascade || !cascade.joined) return "";
  const parts = [`${cascade.referred} of ${cascade.joined} came through a shared link`];
  if (cascade.depth > 1) parts.push(`chains ${cascade.depth} deep`);
  if (cascade.deeds_via_shares) {
    parts.push(`${cascade.deeds_via_shares} deed${cascade.deeds_via_shares === 1 ? "" : "s"} thanks to shares`);
  }
  return parts.join(" · ");
}
