// "Follow the organizer" on the mob page (/m/<id>) and the summary page (/s/<id>): every
// `[data-follow]` button follows the organizer of the mob in the URL (follow.js). Notification
// permission is asked on that click only; a refusal keeps the follow and says so quietly.
// Kept apart from the pages' own modules on purpose.
import { api } from "./api.js";
import { askPermission, follow, followNote, followsMob, organizerTarget, subscribePush } from "./follow.js";

const mobId = decodeURIComponent(location.pathname.split("/")[2] ?? "");
const buttons = [...document.querySelectorAll("[data-follow]")];
const notes = [...document.querySelectorAll("[data-follow-note]")];

function show(label, note, busy = false) {
  for (const button of buttons) {
    button.textContent = label;
    button.disabled = busy;
    button.hidden = false;
  }
  for (const el of notes) {
    el.replaceChildren();
    if (note) el.append(`${note} `);
    const link = Object.assign(document.createElement("a"), { href: "/following", textContent: "What I follow" });
    el.append(link);
    el.hidden = false;
  }
}

async function onClick() {
  const permission = askPermission(globalThis.Notification); // in the tap, before any await
  show("Following…", "", true);
  let made;
  try {
    made = await follow(api, localStorage, organizerTarget(mobId), { mob: mobId });
  } catch (error) {
    for (const button of buttons) { button.textContent = "Follow the organizer"; button.disabled = false; }
    for (const el of notes) { el.textContent = error.status === 0 ? "You seem to be offline: try again." : error.message; el.hidden = false; }
    return;
  }
  const name = made.organizer?.name ?? made.label;
  show(`Following ${name}`, "", true);
  const answer = await permission;
  const push = answer === "granted"
    ? await subscribePush({ api, storage: localStorage, serviceWorker: navigator.serviceWorker, register: () => navigator.serviceWorker.register("/sw.js", { scope: "/" }) })
    : "no-push";
  show(`Following ${name}`, followNote(answer, push), true);
}

if (buttons.length && /^[a-z0-9]{8}$/.test(mobId)) {
  for (const button of buttons) button.addEventListener("click", onClick);
  if (followsMob(localStorage, mobId)) show("Following the organizer", "", true);
  else for (const button of buttons) button.hidden = false;
}
