/**
 * GO: at the instant the server's clock reaches go_at (clock.js fireAt, the same instant on
 * every phone) the whole screen flips to the action prompt, with a colour flash, a
 * vibration and a short beep. The server's `phase: action` (or a snapshot saying so) flips
 * it too when no local timer fired (a late joiner, a lost timeline, a phone that slept);
 * a phone that slept through the whole action gets no GO on waking. Also what the phone does
 * to get attention: a beep (Web Audio, unlocked by the first tap), a vibration, and the
 * screen wake lock while the countdown and the action run.
 *
 * `window.__goodmob` records the GO instant on the true clock for tests:
 * `{firedAtMs: performance.timeOrigin + performance.now(), lateMs, via, offsetMs}`;
 * `window.__goodmobClock` the local timer's own `{firedAtMs, lateMs}`, also when the
 * server's push got there first (`via: "event"`).
 *
 * @module participant/go
 */

import { $, actionOver, render, store } from "./state.js";

let goHandle = null;
let goVersion = null;

/** Flips the screen to the action prompt, now. Runs once per mob; false if it did not. */
export function fireGo({ lateMs, via }) {
  if (store.get().go || actionOver()) return false;
  // Record the instant first (true clock): the tests compare phones on it.
  window.__goodmob = {
    firedAtMs: performance.timeOrigin + performance.now(),
    lateMs,
    via,
    offsetMs: store.get().conn?.clock.offsetMs ?? null,
  };
  store.set({ go: { lateMs, via } });
  document.body.dataset.phase = "action";
  const screen = $("go-screen");
  screen.hidden = false;
  screen.classList.remove("ended");
  screen.classList.add("flash");
  vibrate([400, 120, 400]);
  beep(1175, 0.45, 0.45);
  keepAwake(true);
  render();
  focusGo();
  return true;
}

/** Moves focus onto the GO screen: Done when there is one, else the GO word. */
export function focusGo() {
  const done = $("done-btn");
  const target = !done.hidden && !done.disabled ? done : $("go-word");
  target.focus({ preventScroll: true });
}

/** Arms the local GO timer on the synced clock for the current timeline version. */
export function armGo() {
  const { timeline: t, conn, go, phase: serverPhase } = store.get();
  if (!t || !conn || go) return;
  const phase = serverPhase ?? t.phase;
  if (["cancelled", "finished", "draft"].includes(phase)) {
    goHandle?.cancel();
    goHandle = null;
    return;
  }
  // Before the first sync the wall clock may be minutes off: wait for the estimate.
  if (!conn.clock.isSynced) return;
  const key = `${t.version}:${t.go_at_ms}`;
  if (goHandle && goVersion === key) return;
  goHandle?.cancel();
  goVersion = key;
  goHandle = conn.clock.fireAt(t.go_at_ms, ({ lateMs }) => {
    window.__goodmobClock = { firedAtMs: performance.timeOrigin + performance.now(), lateMs };
    if (!fireGo({ lateMs, via: "clock" })) render(); // woke up after the end: show the end
  });
}

// --- sound, vibration, wake lock -------------------------------------------------------------

const sound = { ctx: null };

export function unlockAudio() {
  const Ctx = window.AudioContext ?? window.webkitAudioContext;
  if (!Ctx) return;
  try {
    sound.ctx ??= new Ctx();
    if (sound.ctx.state === "suspended") sound.ctx.resume();
  } catch {
    sound.ctx = null;
  }
}

export function beep(frequency = 880, seconds = 0.18, volume = 0.35) {
  const ctx = sound.ctx;
  if (!ctx || ctx.state !== "running") return;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = "square";
  osc.frequency.value = frequency;
  const t = ctx.currentTime;
  gain.gain.setValueAtTime(0.0001, t);
  gain.gain.exponentialRampToValueAtTime(volume, t + 0.01);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + seconds);
  osc.connect(gain).connect(ctx.destination);
  osc.start(t);
  osc.stop(t + seconds + 0.02);
}

export function vibrate(pattern) {
  try { navigator.vibrate?.(pattern); } catch { /* not allowed */ }
}

const wake = { lock: null, pending: false };

export async function keepAwake(wanted) {
  if (!("wakeLock" in navigator)) return;
  if (!wanted) {
    const lock = wake.lock;
    wake.lock = null;
    lock?.release().catch(() => {});
    return;
  }
  if (wake.lock || wake.pending || document.visibilityState !== "visible") return;
  wake.pending = true;
  try {
    wake.lock = await navigator.wakeLock.request("screen");
    wake.lock.addEventListener("release", () => { wake.lock = null; });
  } catch {
    wake.lock = null; // refused (battery saver, no gesture yet): the screen may dim
  } finally {
    wake.pending = false;
  }
}
