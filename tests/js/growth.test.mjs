// Tests for pwa/js/growth.js: pledge totals as money, the view beacon's client id, the funnel
// and the cascade's wording.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  cascadeLine, currencyDigits, formatMoney, funnelSteps, pledgeSummary, sharerName, totalMoney,
  viewClientId,
} from "../../pwa/js/growth.js";

const total = (currency, owedMinor, extra = {}) => ({
  currency, owed_minor: owedMinor, owed: String(owedMinor / 100), per_deed_minor: 0, pledges: 1,
  waiting_for_threshold: 0, ...extra,
});

test("money in the currency's own digits", () => {
  assert.equal(currencyDigits("EUR"), 2);
  assert.equal(currencyDigits("JPY"), 0);
  assert.equal(formatMoney(12.5, "EUR", "en-GB"), "€12.50");
  assert.equal(totalMoney(total("EUR", 1250), "en-GB"), "€12.50");
  assert.match(totalMoney({ ...total("JPY", 500), owed: "500" }, "en-GB"), /¥500$/);
  assert.equal(formatMoney(3, "EURO", "en-GB"), "3 EURO", "a code Intl refuses is shown as it is");
});

test("no pledges: nothing to show", () => {
  assert.equal(pledgeSummary(null), null);
  assert.equal(pledgeSummary({ deeds_counted: 0, totals: [], campaign: null }), null);
});

test("pledges per currency, what the next deed adds, the campaign's share", () => {
  const summary = pledgeSummary({
    deeds_counted: 5,
    totals: [
      total("EUR", 1250, { per_deed_minor: 50, pledges: 2 }),
      total("USD", 300, { waiting_for_threshold: 1 }),
    ],
    campaign: { id: "c1", deeds_counted: 9, totals: [total("EUR", 4000)] },
  }, "en-GB");
  assert.equal(summary.text, "€12.50 + US$3.00 pledged so far");
  assert.equal(summary.sub, "each deed adds €0.50 · €40.00 across the campaign · 1 pledge starts after more deeds");
});

test("before the first deed: what a deed is worth", () => {
  const summary = pledgeSummary({ totals: [total("EUR", 0, { per_deed_minor: 50 })], campaign: null }, "en-GB");
  assert.equal(summary.text, "Sponsors give €0.50 per good deed");
  assert.equal(summary.sub, "");
});

test("only campaign pledges", () => {
  const summary = pledgeSummary({ totals: [], campaign: { totals: [total("EUR", 200)] } }, "en-GB");
  assert.equal(summary.text, "€2.00 pledged across the campaign");
  assert.equal(summary.sub, "");
});

test("the view client id is kept for the UTC day, then renewed", () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  const day1 = Date.UTC(2026, 4, 1, 10);
  const id = viewClientId(storage, day1);
  assert.match(id, /^[A-Za-z0-9_-]{8,64}$/);
  assert.equal(viewClientId(storage, day1 + 3_600_000), id);
  assert.notEqual(viewClientId(storage, day1 + 86_400_000), id);
  assert.match(viewClientId(null, day1), /^[A-Za-z0-9_-]{8,64}$/, "without storage still an id");
  const broken = { getItem: () => "{not json", setItem: () => { throw new Error("full"); } };
  assert.match(viewClientId(broken, day1), /^[A-Za-z0-9_-]{8,64}$/);
});

test("the funnel: live counters win, views never below joins, bars relative to the widest", () => {
  const steps = funnelSteps({ joined: 10, in_zone: 8, matched: 6, deeds_done: 3 }, { viewed: 40, joined: 9, done: 2 });
  assert.deepEqual(steps.map((s) => [s.key, s.value]), [
    ["viewed", 40], ["joined", 10], ["in_zone", 8], ["matched", 6], ["deeds_done", 3],
  ]);
  assert.equal(steps[0].share, 1);
  assert.equal(steps[1].share, 0.25);
  const early = funnelSteps({ joined: 3 }, {});
  assert.equal(early[0].value, 3, "views counted once a day per phone: at least the joins");
  assert.equal(early[4].value, 0);
});

test("sharers are named only by a chosen nickname", () => {
  assert.equal(sharerName({ name: "Kim", kind: "participant" }), "Kim");
  assert.equal(sharerName({ name: "anonymous", kind: "participant" }), "Someone");
  assert.equal(sharerName({ name: "Ada", kind: "organizer" }), "Ada (organizer)");
  assert.equal(cascadeLine({ joined: 0 }), "");
  assert.equal(
    cascadeLine({ joined: 12, referred: 5, depth: 3, deeds_via_shares: 4 }),
    "5 of 12 came through a shared link · chains 3 deep · 4 deeds thanks to shares",
  );
  assert.equal(cascadeLine({ joined: 2, referred: 1, depth: 1, deeds_via_shares: 0 }), "1 of 2 came through a shared link");
});
