/**
 * The mob and the join: GET the mob (offline, the snapshot saved with the session), count
 * this page load as one view (POST …/views with a random id kept for the day), the pledge
 * totals (GET …/pledges/totals, then every `stats` event), and the join form (POST
 * …/participants with an optional nickname and the referral code of a shared link; a stale
 * code does not keep anyone out). The share buttons send the participant's own link (with
 * their referral code): the system share sheet, else the clipboard, else a prompt.
 *
 * @module participant/join
 */

import { api } from "../api.js";
import { viewClientId } from "../growth.js";
import { unlockAudio } from "./go.js";
import { joinErrorText, joinPatch, sharePath } from "./model.js";
import { connect } from "./realtime.js";
import { $, mobId, referralCode, saved, scheduleRender, store, toast } from "./state.js";

const mobPath = () => `/api/mobs/${encodeURIComponent(mobId)}`;
let viewCounted = false;

/** Counts this page load as one view of the mob (the funnel's first step); once per load. */
function countView() {
  if (viewCounted) return;
  viewCounted = true;
  let storage = null;
  try { storage = localStorage; } catch { /* blocked: a fresh id */ }
  api(`${mobPath()}/views`, {
    method: "POST", body: { client_id: viewClientId(storage) },
  }).catch(() => { /* offline or refused: a view is not worth a retry */ });
}

/** The pledge totals so far (then every stats event brings them). */
async function loadPledges() {
  try {
    if (store.get().pledges == null) store.set({ pledges: await api(`${mobPath()}/pledges/totals`) });
    scheduleRender();
  } catch { /* offline: shown once stats arrive */ }
}

export async function loadMob() {
  try {
    const mob = await api(mobPath());
    const s = store.get();
    store.set({
      mob, timeline: s.timeline ?? mob.timeline, phase: s.phase ?? mob.status, counters: s.counters ?? mob.counters,
    });
    countView();
    loadPledges();
  } catch (error) {
    const cached = store.get().session?.snapshot;
    if (error.status === 0 && cached?.mob) {
      store.set({
        mob: cached.mob, timeline: cached.timeline, phase: cached.phase, me: cached.me,
        counters: cached.counters, task: cached.task ?? null,
      });
    } else if (error.status === 404) {
      store.set({ fatal: "We couldn't find this mob. The link may be mistyped, or the mob isn't published yet." });
    } else if (error.status === 0) {
      store.set({ fatal: "You're offline and this mob isn't saved on this phone yet. Try again when you have a connection." });
    } else {
      store.set({ fatal: error.message });
    }
  }
  scheduleRender();
}

/** The join form's submit. */
export async function join(event) {
  event.preventDefault();
  unlockAudio();
  const btn = $("join-btn");
  const nickname = $("nickname").value.trim();
  btn.disabled = true;
  btn.textContent = "Joining…";
  $("join-error").hidden = true;
  const body = {};
  if (nickname) body.nickname = nickname;
  const ref = referralCode();
  if (ref) body.ref = ref;
  try {
    let result;
    try {
      result = await api(`${mobPath()}/participants`, { method: "POST", body });
    } catch (error) {
      if (error.code !== "ref_unknown") throw error;
      delete body.ref; // a stale or mistyped invitation must not keep anyone out
      result = await api(`${mobPath()}/participants`, { method: "POST", body });
    }
    const patch = joinPatch(store.get(), result, Date.now());
    store.set(patch);
    saved.save(patch.session);
    connect();
    toast(`You're in, ${result.participant.nickname}!`);
  } catch (error) {
    const el = $("join-error");
    el.textContent = joinErrorText(error);
    el.hidden = false;
  } finally {
    btn.disabled = false;
    btn.textContent = "Join this mob";
  }
  scheduleRender();
}

// --- sharing ---------------------------------------------------------------------------------

export function shareUrl() {
  return new URL(sharePath(store.get(), mobId), location.origin).href;
}

export async function share() {
  const url = shareUrl();
  const title = store.get().mob?.title ?? "Good Mob";
  const text = `Join me at "${title}" — one minute of good deeds, all at the same second.`;
  if (navigator.share) {
    try {
      await navigator.share({ title, text, url });
      return;
    } catch (error) {
      if (error?.name === "AbortError") return;
    }
  }
  try {
    await navigator.clipboard.writeText(url);
    toast("Link copied — send it to a friend");
  } catch {
    window.prompt("Copy this link and send it to a friend:", url);
  }
}
