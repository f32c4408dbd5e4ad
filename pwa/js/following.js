/**
 * The page of what this device follows (/following): each follow with "Unfollow", whether
 * notifications reach this device (permission is asked only from "Turn on notifications"),
 * and, while the page is open, the mobs published for these follows (`/follow` namespace,
 * docs/GROWTH.md) — how a follow works without notifications.
 *
 * @module following
 */

import { io } from "../vendor/socket.io/socket.io.esm.min.js";
import { api } from "./api.js";
import { askPermission, followText, listFollows, loadFollower, subscribePush, unfollow } from "./follow.js";
import { registerServiceWorker } from "./pwa.js";

const $ = (id) => document.getElementById(id);

function showError(error) {
  $("follows-error").textContent = error ? (error.status === 0 ? "You seem to be offline." : error.message) : "";
  $("follows-error").hidden = !error;
}

function notifyState(push) {
  const permission = globalThis.Notification?.permission ?? "unsupported";
  let text;
  if (push) text = "New mobs are notified on this device.";
  else if (permission === "unsupported") text = "This browser cannot show notifications: new mobs appear here while the page is open.";
  else if (permission === "denied") text = "Notifications are off for this site (the browser's settings can allow them): new mobs appear here while the page is open.";
  else text = "Notifications are off: new mobs appear here while the page is open.";
  $("notify-state").textContent = text;
  $("notify-btn").hidden = Boolean(push) || permission === "denied" || permission === "unsupported";
}

function renderFollows(follower) {
  const list = $("follows");
  list.replaceChildren();
  const items = follower?.follows ?? [];
  $("follows-empty").hidden = items.length > 0;
  for (const f of items) {
    const li = document.createElement("li");
    li.className = "card row";
    li.style.justifyContent = "space-between";
    li.dataset.follow = String(f.id);
    const text = Object.assign(document.createElement("span"), { textContent: followText(f) });
    const button = Object.assign(document.createElement("button"), {
      type: "button", className: "btn btn-light btn-small", textContent: "Unfollow",
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await unfollow(api, localStorage, f.id);
        li.remove();
        $("follows-empty").hidden = list.children.length > 0;
        showError(null);
      } catch (error) {
        button.disabled = false;
        showError(error);
      }
    });
    li.append(text, button);
    list.append(li);
  }
}

function listen(token) {
  const socket = io("/follow", { transports: ["websocket"], auth: { follower_token: token } });
  socket.on("mob_published", ({ mob }) => {
    const li = document.createElement("li");
    const link = Object.assign(document.createElement("a"), { href: mob.url, textContent: mob.title });
    li.append(link, ` by ${mob.organizer?.name ?? "an organizer"}`);
    $("new-list").prepend(li);
    $("new-mobs").hidden = false;
  });
}

async function init() {
  registerServiceWorker();
  let follower = null;
  try {
    follower = await listFollows(api, localStorage);
  } catch (error) {
    showError(error);
  }
  renderFollows(follower);
  notifyState(follower?.push);
  if (!follower) {
    $("notify-btn").hidden = true;
    return;
  }
  $("notify-btn").addEventListener("click", async () => {
    const permission = await askPermission(globalThis.Notification); // asked on this tap only
    const push = permission === "granted"
      ? await subscribePush({ api, storage: localStorage, serviceWorker: navigator.serviceWorker, register: () => navigator.serviceWorker.register("/sw.js", { scope: "/" }) })
      : "no-push";
    notifyState(push === "on");
    if (permission === "granted" && push !== "on") $("notify-state").textContent = "Notifications could not be set up in this browser: new mobs appear here while the page is open.";
  });
  listen(loadFollower(localStorage).token);
}

init();
