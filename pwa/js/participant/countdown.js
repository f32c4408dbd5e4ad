/**
 * The clock display: the clock cards (`[data-clock]`: "GO in 2:14", "Get ready", …, with a
 * quiet "timing ±N ms" while this phone's clock is unsure: ../clock.js clockNote), the GO
 * screen's time-left pill, and the tick that redraws them on every second boundary of the
 * countdown, beeps the final three seconds, and redraws the page when the phase turns.
 *
 * @module participant/countdown
 */

import { clockNote } from "../clock.js";
import { $, beep, vibrate } from "./feedback.js";
import { clockFace, timeLeftText } from "./model.js";
import { currentPhase, render, serverNow, store } from "./state.js";

export function renderClock(phase) {
  const state = store.get();
  if (!state.timeline) return;
  const doubt = state.conn ? clockNote(state.conn.clock) : "";
  const face = clockFace(state, phase, serverNow(), doubt);
  for (const el of document.querySelectorAll("[data-clock=label]")) el.textContent = face.label;
  for (const el of document.querySelectorAll("[data-clock=value]")) {
    el.textContent = face.value;
    el.classList.toggle("final", face.final);
  }
  for (const el of document.querySelectorAll("[data-clock=sub]")) el.textContent = face.sub;
}

/** The time-left pill of the GO screen ("1:52 left"); a GO that fired late (a late joiner,
 * a woken phone) also says when it started. */
export function renderLate(phase) {
  const el = $("go-late");
  const state = store.get();
  const show = phase === "action" && Boolean(state.timeline);
  el.hidden = !show;
  if (!show) return;
  el.textContent = timeLeftText(state, serverNow());
}

let lastBeep = null;
let lastPhase = null;

/**
 * Re-renders on every second boundary of the countdown (and during the final seconds'
 * beeps); `renderTop` draws the top bar (view.js).
 */
export function tick(renderTop) {
  const state = store.get();
  const t = state.timeline;
  const phase = state.mob ? currentPhase() : null;
  if (phase) {
    renderClock(phase);
    renderTop(phase);
    if (state.go && phase === "action") renderLate(phase);
    if (state.session && phase === "countdown" && t) {
      const left = Math.ceil((t.go_at_ms - serverNow()) / 1000);
      if (left !== lastBeep && left >= 1 && left <= 3) {
        lastBeep = left;
        beep(880, 0.09, 0.3);
        vibrate(50);
      }
    }
    if (phase !== lastPhase) {
      lastPhase = phase;
      render();
    }
  }
  const now = serverNow();
  const msToNextSecond = t ? ((t.go_at_ms - now) % 1000 + 1000) % 1000 : 1000;
  setTimeout(() => tick(renderTop), Math.max(40, Math.min(1000, msToNextSecond + 15)));
}
