// Tests for pwa/js/store.js: the pages' one state store.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";

import { createStore } from "../../pwa/js/store.js";

test("set merges, and listeners hear only real changes with the changed keys", () => {
  const store = createStore({ phase: "lobby", count: 0 });
  const heard = [];
  store.subscribe((s, changed) => heard.push([s.phase, s.count, changed]));
  store.set({ count: 1 });
  store.set({ count: 1 }); // no change: no call
  store.set({ phase: "countdown", count: 2 });
  assert.deepEqual(heard, [
    ["lobby", 1, ["count"]],
    ["countdown", 2, ["phase", "count"]],
  ]);
  assert.deepEqual(store.get(), { phase: "countdown", count: 2 });
});

test("a keyed listener runs only for its keys, and unsubscribe stops it", () => {
  const store = createStore({ a: 1, b: 1 });
  let calls = 0;
  const off = store.subscribe(() => calls++, ["a"]);
  store.set({ b: 2 });
  assert.equal(calls, 0);
  store.set({ a: 2 });
  assert.equal(calls, 1);
  off();
  store.set({ a: 3 });
  assert.equal(calls, 1);
});

test("state is replaced, not mutated: an old snapshot keeps its values", () => {
  const store = createStore({ n: 1 });
  const before = store.get();
  store.set({ n: 2 });
  assert.equal(before.n, 1);
  assert.equal(store.get().n, 2);
});
