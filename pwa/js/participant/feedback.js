/**
 * What the phone does to get attention: a toast, a beep (Web Audio, unlocked by the first
 * tap), a vibration, and the screen wake lock while the countdown and the action run.
 *
 * @module participant/feedback
 */

export const $ = (id) => document.getElementById(id);

let toastTimer = null;

export function toast(message) {
  const el = $("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 2600);
}

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
