/**
 * Good Mob's service worker: the app shell (pages, modules, styles, icons and the vendor
 * files) is cached in a versioned cache and served from it, so the app opens offline.
 *
 * - The BUILD line is rewritten by the server (server/pages.py) with a hash of the shell files
 *   and their URLs: a change to any shell file makes a new worker with a new cache; the old
 *   caches are deleted on activate.
 * - Precache by page role: install caches only BUILD.core (the mob page /m/<id> and the
 *   discover page with what they load), so a participant's first visit stays light. A page
 *   that opens posts {type: "precache", path} (js/pwa.js): the files that page loads
 *   (BUILD.pages) are cached then — the organizer's drawing library only with /organize.
 *   Any other shell file is cached the first time it is fetched.
 * - /api/ and /socket.io/ are never cached nor answered from a cache: they go to the network.
 * - Pages (navigations) are network-first with a short timeout, falling back to the cached
 *   shell page for the route (/m/<id> → m.html, /live/<id> → live.html, /live/c/<id> →
 *   campaign.html, /s/<id> → summary.html, /organize → organize.html, /following →
 *   following.html): a fresh page when online, the app when offline.
 * - Other shell files are cache-first; /config.json is network-first, cached as a fallback.
 * - Map tiles and other origins are left to the browser.
 * - Web Push: `push` shows the notification the server sent (`{title, body, url, mob}`,
 *   server/domain/follows.py; no one's position, no token) with the app icon and a tag per
 *   mob, so a later notice about a mob replaces the earlier one; `notificationclick` focuses
 *   a tab already on that page, else opens it. Only this origin's paths are opened.
 */

/* global self, caches */
const BUILD = {"version": "dev", "shell": ["/", "/m.html", "/manifest.webmanifest"], "core": ["/", "/m.html", "/manifest.webmanifest"], "pages": {}};

const PREFIX = "goodmob-shell-";
const CACHE = PREFIX + BUILD.version;
const NAVIGATION_TIMEOUT_MS = 3000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(BUILD.core.concat(["/config.json"])))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((key) => key.startsWith(PREFIX) && key !== CACHE).map((key) => caches.delete(key)),
      ))
      .then(() => self.clients.claim()),
  );
});

/** The cached page that serves a navigation to `path`. */
function shellPageFor(path) {
  if (path.startsWith("/m/")) return "/m.html";
  if (path.startsWith("/live/c/")) return "/campaign.html";
  if (path.startsWith("/live/")) return "/live.html";
  if (path.startsWith("/s/")) return "/summary.html";
  if (path === "/organize" || path.startsWith("/organize/")) return "/organize.html";
  if (path === "/following") return "/following.html";
  return "/";
}

/** Caches the files the page at `path` loads (those not cached yet). */
async function precachePage(path) {
  const files = BUILD.pages[shellPageFor(path)] ?? [];
  const cache = await caches.open(CACHE);
  const missing = [];
  for (const file of files) {
    if (!(await cache.match(file))) missing.push(file);
  }
  if (missing.length) await cache.addAll(missing);
}

self.addEventListener("message", (event) => {
  const data = event.data;
  if (data?.type === "precache" && typeof data.path === "string") {
    event.waitUntil(precachePage(data.path).catch(() => {}));
  }
});

function isNeverCached(url) {
  return url.pathname.startsWith("/api/") || url.pathname.startsWith("/socket.io/") ||
    url.pathname === "/sw.js";
}

/** fetch, rejected after `ms` (a flaky network must not hold the page). */
function fetchWithTimeout(request, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    fetch(request).then(
      (response) => { clearTimeout(timer); resolve(response); },
      (error) => { clearTimeout(timer); reject(error); },
    );
  });
}

async function navigate(request, url) {
  try {
    const response = await fetchWithTimeout(request, NAVIGATION_TIMEOUT_MS);
    if (response.ok || response.status === 404) return response;
    throw new Error(`status ${response.status}`);
  } catch (error) {
    const cached = await caches.match(shellPageFor(url.pathname), { cacheName: CACHE });
    if (cached) return cached;
    throw error;
  }
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request);
    if (cached) return cached;
    throw error;
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request, { cacheName: CACHE, ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const copy = response.clone();
    caches.open(CACHE).then((cache) => cache.put(new URL(request.url).pathname, copy)).catch(() => {});
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || isNeverCached(url)) return; // network only
  if (request.mode === "navigate") {
    event.respondWith(navigate(request, url));
  } else if (url.pathname === "/config.json") {
    event.respondWith(networkFirst(request));
  } else if (BUILD.shell.includes(url.pathname)) {
    event.respondWith(cacheFirst(request));
  }
});

/** The notification for a push's JSON body (an unreadable body still shows one). */
function notificationFor(data) {
  const mob = data && typeof data.mob === "object" && data.mob ? data.mob : {};
  const id = typeof mob.id === "string" ? mob.id : null;
  let url = typeof data?.url === "string" ? data.url : typeof mob.url === "string" ? mob.url : "/";
  if (!url.startsWith("/") || url.startsWith("//")) url = "/"; // this origin only
  const title = typeof data?.title === "string" && data.title ? data.title : "Good Mob";
  return {
    title,
    options: {
      body: typeof data?.body === "string" ? data.body : "",
      icon: "/icons/icon-192.png",
      badge: "/icons/icon-192.png",
      tag: id ? `mob-${id}` : "goodmob",
      renotify: Boolean(id),
      data: { url, mob: id, type: typeof data?.type === "string" ? data.type : null },
    },
  };
}

self.addEventListener("push", (event) => {
  let data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const { title, options } = notificationFor(data);
  event.waitUntil(self.registration.showNotification(title, options));
});

/**
 * Focuses a window already on `path` (this origin), else opens one. Browsers allow both only
 * while a notification click is handled; a page that asked by message (below) is navigated
 * there instead.
 */
async function openPage(path, askingClient = null) {
  const target = new URL(path, self.location.origin);
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => {
    const url = new URL(client.url);
    return url.origin === target.origin && url.pathname === target.pathname;
  });
  try {
    if (open) return await open.focus();
    return await self.clients.openWindow(target.href);
  } catch (error) {
    if (askingClient && "navigate" in askingClient) return askingClient.navigate(target.href);
    throw error;
  }
}

function clickNotification(notification, askingClient = null) {
  notification.close();
  const url = notification.data?.url;
  return openPage(typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : "/", askingClient);
}

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(clickNotification(event.notification));
});

// A page may open a notification shown by this worker as a tap would ({type:
// "open-notification", tag}): the same code path as notificationclick (no automation can tap
// a system notification in headless Chromium; tests/browser/test_follow.py uses this).
self.addEventListener("message", (event) => {
  const data = event.data;
  if (data?.type !== "open-notification" || typeof data.tag !== "string") return;
  event.waitUntil(
    self.registration.getNotifications({ tag: data.tag })
      .then(([notification]) => notification && clickNotification(notification, event.source))
      .catch(() => {}),
  );
});
