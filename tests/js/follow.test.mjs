// The follow logic without a DOM (pwa/js/follow.js): token storage, retry on a forgotten
// follower, permission asked only when called, the note after a follow.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  FOLLOWER_KEY, applicationServerKey, askPermission, follow, followNote, followText, followsMob,
  listFollows, loadFollower, organizerTarget, placeTarget, subscribePush, unfollow,
} from "../../pwa/js/follow.js";

function memoryStorage() {
  const data = new Map();
  return {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
  };
}

/** A fake api(): records calls, answers from `routes` ("METHOD path" → fn(options)). */
function fakeApi(routes) {
  const calls = [];
  const api = async (path, options = {}) => {
    const method = options.method ?? (options.body === undefined ? "GET" : "POST");
    calls.push({ method, path, ...options });
    const handler = routes[`${method} ${path}`];
    if (!handler) throw Object.assign(new Error(`no route ${method} ${path}`), { status: 404 });
    return handler(options, calls);
  };
  return { api, calls };
}

const newFollower = (n) => () => ({ follower: { id: `f${n}` }, follower_token: `flw.f${n}.secret`, vapid_public_key: "AQID" });

test("the first follow makes a follower, keeps its token and remembers the mob", async () => {
  const storage = memoryStorage();
  const { api, calls } = fakeApi({
    "POST /api/followers": newFollower(1),
    "POST /api/followers/me/follows": () => ({ id: 7, type: "organizer", label: "Ada", organizer: { name: "Ada" } }),
  });
  const made = await follow(api, storage, organizerTarget("abcd1234"), { mob: "abcd1234" });
  assert.equal(made.id, 7);
  assert.deepEqual(calls[1].body, { type: "organizer", mob: "abcd1234" });
  assert.equal(calls[1].token, "flw.f1.secret");
  assert.equal(loadFollower(storage).token, "flw.f1.secret");
  assert.ok(followsMob(storage, "abcd1234"));
  assert.ok(!followsMob(storage, "other123"));
  await follow(api, storage, organizerTarget("other123"));
  assert.equal(calls.filter((c) => c.path === "/api/followers").length, 1); // made once
});

test("a token the server forgot is replaced once", async () => {
  const storage = memoryStorage();
  storage.setItem(FOLLOWER_KEY, JSON.stringify({ token: "flw.old.x", id: "old", mobs: {} }));
  const { api, calls } = fakeApi({
    "POST /api/followers": newFollower(2),
    "POST /api/followers/me/follows": (options) => {
      if (options.token === "flw.old.x") throw Object.assign(new Error("bad"), { status: 401 });
      return { id: 1, type: "place" };
    },
  });
  await follow(api, storage, placeTarget(52.53201234, 13.4, 5000));
  assert.equal(loadFollower(storage).token, "flw.f2.secret");
  assert.deepEqual(calls.at(-1).body, { type: "place", lat: 52.53201, lon: 13.4, radius_m: 5000 });
});

test("other errors are thrown, and nothing is stored as followed", async () => {
  const storage = memoryStorage();
  const { api } = fakeApi({
    "POST /api/followers": newFollower(3),
    "POST /api/followers/me/follows": () => { throw Object.assign(new Error("too many"), { status: 422 }); },
  });
  await assert.rejects(follow(api, storage, organizerTarget("abcd1234"), { mob: "abcd1234" }), /too many/);
  assert.ok(!followsMob(storage, "abcd1234"));
});

test("unfollow deletes on the server and forgets the mob; a 404 is the same outcome", async () => {
  const storage = memoryStorage();
  storage.setItem(FOLLOWER_KEY, JSON.stringify({ token: "flw.a.b", id: "a", mobs: { m1: 4, m2: 5 } }));
  const { api, calls } = fakeApi({ "DELETE /api/followers/me/follows/4": () => null });
  await unfollow(api, storage, 4);
  assert.equal(calls[0].token, "flw.a.b");
  assert.deepEqual(loadFollower(storage).mobs, { m2: 5 });
  await unfollow(api, storage, 5); // no route: 404
  assert.deepEqual(loadFollower(storage).mobs, {});
});

test("listFollows: null without a follower or with a forgotten one", async () => {
  const storage = memoryStorage();
  const { api } = fakeApi({ "GET /api/followers/me": () => { throw Object.assign(new Error("x"), { status: 401 }); } });
  assert.equal(await listFollows(api, storage), null);
  storage.setItem(FOLLOWER_KEY, JSON.stringify({ token: "flw.a.b" }));
  assert.equal(await listFollows(api, storage), null);
  assert.equal(loadFollower(storage), null);
});

test("permission is asked only when never answered", async () => {
  let asked = 0;
  const make = (permission, answer) => ({ permission, requestPermission: async () => { asked += 1; return answer; } });
  assert.equal(await askPermission(undefined), "unsupported");
  assert.equal(await askPermission(make("granted")), "granted");
  assert.equal(await askPermission(make("denied")), "denied");
  assert.equal(asked, 0);
  assert.equal(await askPermission(make("default", "denied")), "denied");
  assert.equal(asked, 1);
  const throwing = { permission: "default", requestPermission: () => { throw new Error("no"); } };
  assert.equal(await askPermission(throwing), "default");
});

test("subscribePush hands the subscription to the server, and never throws", async () => {
  const storage = memoryStorage();
  storage.setItem(FOLLOWER_KEY, JSON.stringify({ token: "flw.a.b", vapidKey: "AQID" }));
  const sub = { toJSON: () => ({ endpoint: "https://push.example/1", keys: { p256dh: "p", auth: "a" } }) };
  let options;
  const registration = { pushManager: { getSubscription: async () => null, subscribe: async (o) => { options = o; return sub; } } };
  const { api, calls } = fakeApi({ "PUT /api/followers/me/push-subscription": () => ({}) });
  const serviceWorker = { getRegistration: async () => registration };
  assert.equal(await subscribePush({ api, storage, serviceWorker }), "on");
  assert.deepEqual([...options.applicationServerKey], [1, 2, 3]);
  assert.equal(options.userVisibleOnly, true);
  assert.equal(calls[0].token, "flw.a.b");
  assert.equal(calls[0].body.endpoint, "https://push.example/1");
  registration.pushManager.subscribe = async () => { throw new Error("push service error"); };
  assert.equal(await subscribePush({ api, storage, serviceWorker }), "no-push");
  assert.equal(await subscribePush({ api, storage, serviceWorker: undefined }), "no-push");
});

test("texts", () => {
  assert.deepEqual([...applicationServerKey("_-8")], [255, 239]);
  assert.match(followNote("granted", "on"), /tell you/);
  assert.match(followNote("denied", "no-push"), /^Notifications are off/);
  assert.match(followNote("default", "no-push"), /^Notifications are off/);
  assert.match(followNote("granted", "no-push"), /could not be set up/);
  assert.equal(followText({ type: "organizer", organizer: { name: "Ada" } }), "Mobs by Ada");
  assert.equal(followText({ type: "place", lat: 52.5, lon: 13.4, radius_m: 5000, label: "" }), "Mobs within 5 km of 52.500, 13.400");
  assert.equal(followText({ type: "place", lat: 0, lon: 0, radius_m: 1500, label: "Home" }), "Mobs within 1.5 km of Home");
});
