// Tests for pwa/js/deedqueue.js: the outbox of deeds (stored first, sent until answered, once).
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";

import { DeedQueue, memoryStore } from "../../pwa/js/deedqueue.js";

const DEED = { mob: "m1", task: 7, lat: 52.53, lon: 13.4, accuracy_m: 5 };

/** A server that answers like confirm_deed: the first answer per deed_id, forever. */
function fakeServer() {
  const answers = new Map();
  return {
    received: [],
    online: true,
    async send(record) {
      if (!this.online) throw new Error("offline");
      this.received.push(record.deed_id);
      if (!answers.has(record.deed_id)) {
        answers.set(record.deed_id, { deed_id: record.deed_id, accepted: true, status: "accepted", totals: { deeds_done: answers.size + 1 } });
      }
      return answers.get(record.deed_id);
    },
    get counted() { return answers.size; },
  };
}

test("a deed is stored, sent and settled with the server's answer", async () => {
  const server = fakeServer();
  const changes = [];
  const queue = new DeedQueue({ send: (r) => server.send(r), store: memoryStore(), onChange: (r) => changes.push(r.state) });
  const record = await queue.add(DEED);
  assert.match(record.deed_id, /^[0-9a-f-]{36}$/);
  assert.equal(await queue.flush("m1"), 0);
  const [saved] = await queue.list("m1");
  assert.equal(saved.state, "settled");
  assert.equal(saved.answer.accepted, true);
  assert.deepEqual(changes, ["pending", "settled"]);
  assert.equal(server.counted, 1);
});

test("offline: kept pending, sent once when back, never again", async () => {
  const server = fakeServer();
  server.online = false;
  const store = memoryStore();
  const queue = new DeedQueue({ send: (r) => server.send(r), store });
  await queue.add(DEED);
  assert.equal(await queue.flush("m1"), 1);
  assert.equal((await queue.pending("m1")).length, 1);
  server.online = true;
  assert.equal(await queue.flush("m1"), 0);
  await queue.flush("m1");
  // A new page on the same store (a reload) does not send it again either.
  const reloaded = new DeedQueue({ send: (r) => server.send(r), store });
  await reloaded.flush("m1");
  assert.equal(server.received.length, 1);
  assert.equal(server.counted, 1);
});

test("a lost acknowledgement is retried with the same deed_id and counts once", async () => {
  const server = fakeServer();
  let loseNext = true;
  const send = async (r) => {
    const answer = await server.send(r);
    if (loseNext) {
      loseNext = false;
      throw new Error("ack timed out"); // the server stored it, the phone never heard
    }
    return answer;
  };
  const queue = new DeedQueue({ send, store: memoryStore() });
  const { deed_id } = await queue.add(DEED);
  await queue.flush("m1");
  await queue.flush("m1");
  assert.deepEqual(server.received, [deed_id, deed_id]);
  assert.equal(server.counted, 1);
  assert.equal((await queue.list("m1"))[0].state, "settled");
});

test("concurrent flushes share one run and a deed added meanwhile is sent too", async () => {
  const server = fakeServer();
  let release;
  const gate = new Promise((r) => { release = r; });
  const queue = new DeedQueue({ send: async (r) => { await gate; return server.send(r); }, store: memoryStore() });
  const first = queue.add(DEED);
  await first;
  const second = queue.add({ ...DEED, task: 8 });
  await second;
  release();
  await queue.flush("m1");
  await queue.flush("m1");
  assert.equal(server.received.length, 2);
  assert.equal((await queue.pending("m1")).length, 0);
});

test("a retryable error answer keeps it pending; a final refusal settles it", async () => {
  let answer = { error: { code: "internal_error", message: "oops" } };
  const queue = new DeedQueue({ send: async () => answer, store: memoryStore() });
  await queue.add(DEED);
  await queue.flush("m1");
  assert.equal((await queue.pending("m1")).length, 1);
  answer = { deed_id: "x", accepted: false, status: null, reason: "not_action_phase" };
  await queue.flush("m1");
  const [record] = await queue.list("m1");
  assert.equal(record.state, "settled");
  assert.equal(record.answer.reason, "not_action_phase");
});

test("only the given mob's deeds are sent", async () => {
  const server = fakeServer();
  const queue = new DeedQueue({ send: (r) => server.send(r), store: memoryStore() });
  server.online = false;
  await queue.add(DEED);
  await queue.add({ ...DEED, mob: "other" });
  server.online = true;
  await queue.flush("m1");
  assert.equal(server.received.length, 1);
  assert.equal((await queue.pending("other")).length, 1);
});

test("a review's verdict is kept on the settled deed, once; unknown or pending deeds are left alone", async () => {
  const server = fakeServer();
  const changes = [];
  const queue = new DeedQueue({ send: (r) => server.send(r), store: memoryStore(), onChange: (r) => changes.push(r.answer?.status ?? r.state) });
  const record = await queue.add(DEED);
  await queue.flush("m1");
  assert.equal(await queue.review("no-such-deed", { status: "approved", accepted: true }), null);
  const reviewed = await queue.review(record.deed_id, { status: "rejected", accepted: false });
  assert.equal(reviewed.answer.status, "rejected");
  assert.equal(reviewed.answer.accepted, false);
  await queue.review(record.deed_id, { status: "rejected", accepted: false }); // again: no change
  assert.deepEqual(changes, ["pending", "accepted", "rejected"]);
  const [saved] = await queue.list("m1");
  assert.equal(saved.answer.status, "rejected");
  server.online = false;
  const waiting = await queue.add({ ...DEED, deed_id: "11111111-1111-4111-8111-111111111111" });
  assert.equal(await queue.review(waiting.deed_id, { status: "approved", accepted: true }), null);
});
