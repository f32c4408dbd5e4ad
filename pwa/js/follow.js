/**
 * Following organizers and places (no account): the follower token, the follows, and Web Push.
 * No DOM here (`node --test tests/js/follow.test.mjs`): the pages pass in `api` (api.js),
 * a Storage (localStorage) and, for notifications, the browser's `Notification` and
 * `navigator.serviceWorker`. The pages' buttons are in follow-button.js and following.js.
 *
 * - The follower token (`flw.…`, returned once by `POST /api/followers`) is kept in
 *   `localStorage` under FOLLOWER_KEY with the follow ids per mob, never put in a URL.
 * - Notification permission is asked only from a click (`askPermission` must be called
 *   before the first `await` of the click handler, while the tap still counts as one);
 *   a refusal leaves the follow in place (listed on /following, told in the open app).
 *
 * @module follow
 */

export const FOLLOWER_KEY = "goodmob:follower";
/** The radii offered for "mobs near here" (the server accepts 100 m – 50 km). */
export const PLACE_RADII_M = [1000, 5000, 20000];

/** The stored follower `{token, id, mobs: {mobId: followId}}`, or null. */
export function loadFollower(storage) {
  try {
    const saved = JSON.parse(storage.getItem(FOLLOWER_KEY) ?? "null");
    return saved && typeof saved.token === "string" ? { mobs: {}, ...saved } : null;
  } catch {
    return null;
  }
}

function saveFollower(storage, follower) {
  try {
    storage.setItem(FOLLOWER_KEY, JSON.stringify(follower));
  } catch { /* private mode: the follow stays on the server, this page forgets the token */ }
  return follower;
}

/** The follower of this browser, made on first use: `{token, id, mobs, vapidKey}`. */
export async function ensureFollower(api, storage) {
  const saved = loadFollower(storage);
  if (saved) return saved;
  const body = await api("/api/followers", { method: "POST", body: {} });
  return saveFollower(storage, {
    token: body.follower_token, id: body.follower.id, mobs: {}, vapidKey: body.vapid_public_key ?? null,
  });
}

const isUnknownToken = (error) => error?.status === 401;

/**
 * Follows `target` (`organizerTarget` or `placeTarget`); returns the follow (`{id, type,
 * label, …}`). A token the server no longer knows (the follower was forgotten) is replaced
 * once by a new follower.
 */
export async function follow(api, storage, target, { mob } = {}) {
  let follower = await ensureFollower(api, storage);
  let made;
  try {
    made = await api("/api/followers/me/follows", { body: target, token: follower.token });
  } catch (error) {
    if (!isUnknownToken(error)) throw error;
    forget(storage);
    follower = await ensureFollower(api, storage);
    made = await api("/api/followers/me/follows", { body: target, token: follower.token });
  }
  if (mob) saveFollower(storage, { ...follower, mobs: { ...follower.mobs, [mob]: made.id } });
  return made;
}

/** Stops a follow; forgets it locally too. */
export async function unfollow(api, storage, followId) {
  const follower = loadFollower(storage);
  if (!follower) return;
  try {
    await api(`/api/followers/me/follows/${encodeURIComponent(followId)}`, { method: "DELETE", token: follower.token });
  } catch (error) {
    if (error?.status !== 404) throw error; // gone already: the same outcome
  }
  const mobs = Object.fromEntries(Object.entries(follower.mobs).filter(([, id]) => id !== followId));
  saveFollower(storage, { ...follower, mobs });
}

/** What this browser follows (`GET /api/followers/me`), or null without a follower. */
export async function listFollows(api, storage) {
  const follower = loadFollower(storage);
  if (!follower) return null;
  try {
    return await api("/api/followers/me", { token: follower.token });
  } catch (error) {
    if (!isUnknownToken(error)) throw error;
    forget(storage);
    return null;
  }
}

/** Forgets the token here (the server's follower is left alone). */
export function forget(storage) {
  try {
    storage.removeItem(FOLLOWER_KEY);
  } catch { /* nothing stored */ }
}

/** Whether this browser already follows the organizer of `mobId` (as far as it knows). */
export function followsMob(storage, mobId) {
  return Boolean(loadFollower(storage)?.mobs?.[mobId]);
}

export const organizerTarget = (mobId) => ({ type: "organizer", mob: mobId });

/** A place follow; coordinates rounded to ~1 m (the server keys on them). */
export function placeTarget(lat, lon, radiusM, label = "") {
  const target = { type: "place", lat: Math.round(lat * 1e5) / 1e5, lon: Math.round(lon * 1e5) / 1e5, radius_m: Math.round(radiusM) };
  if (label) target.label = String(label).slice(0, 80);
  return target;
}

export function formatRadius(m) {
  return m >= 1000 ? `${Number((m / 1000).toFixed(1))} km` : `${Math.round(m)} m`;
}

/** One line for a follow in the list. */
export function followText(f) {
  if (f.type === "organizer") return `Mobs by ${f.organizer?.name ?? f.label ?? "an organizer"}`;
  const where = f.label || `${Number(f.lat).toFixed(3)}, ${Number(f.lon).toFixed(3)}`;
  return `Mobs within ${formatRadius(f.radius_m)} of ${where}`;
}

/** The VAPID key (base64url) as `pushManager.subscribe` wants it. */
export function applicationServerKey(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(base64url.length / 4) * 4, "=");
  const raw = atob(base64);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/**
 * Starts asking for notification permission, if it was never answered; call it in the click
 * handler before any `await`. Resolves to "granted", "denied", "default" (dismissed) or
 * "unsupported".
 */
export function askPermission(NotificationApi) {
  if (!NotificationApi) return Promise.resolve("unsupported");
  if (NotificationApi.permission !== "default") return Promise.resolve(NotificationApi.permission);
  try {
    return Promise.resolve(NotificationApi.requestPermission()).catch(() => "default");
  } catch {
    return Promise.resolve("default");
  }
}

/**
 * With permission granted: subscribes this browser to Web Push and gives the server the
 * subscription. Resolves to "on" or "no-push" (no service worker, no key, or the push
 * service refused); never throws.
 */
export async function subscribePush({ api, storage, serviceWorker, register }) {
  try {
    const follower = loadFollower(storage);
    if (!follower || !serviceWorker) return "no-push";
    let key = follower.vapidKey;
    if (!key) key = (await api("/api/push/public-key")).public_key;
    const registration = (await serviceWorker.getRegistration("/")) ?? (await register?.());
    if (!registration?.pushManager) return "no-push";
    const subscription = (await registration.pushManager.getSubscription()) ??
      (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey(key) }));
    await api("/api/followers/me/push-subscription", { method: "PUT", body: subscription.toJSON(), token: follower.token });
    return "on";
  } catch {
    return "no-push";
  }
}

/** The quiet note after a follow, by the permission and the push outcome. */
export function followNote(permission, push) {
  if (permission === "granted" && push === "on") return "We'll tell you on this device when they publish a new mob.";
  const where = "Your follows are listed under What I follow.";
  if (permission === "granted") return `Notifications could not be set up in this browser. ${where}`;
  if (permission === "unsupported") return `This browser cannot show notifications. ${where}`;
  if (permission === "denied") return `Notifications are off for this site (you can allow them in the browser's settings). ${where}`;
  return `Notifications are off. ${where}`;
}
