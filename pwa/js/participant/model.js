/**
 * The participant page's rules, without the DOM: which phase to show, what the countdown
 * and the deed's state say, when a position is worth reporting, how a join, a snapshot or
 * an event changes the page's state (as a patch for the store's `set`), and the task and
 * navigation (the guide card, the walk to the zone, the GO prompt without a spot). Every
 * function takes the state (and the server's time), so it runs under `node --test`.
 *
 * @module participant/model
 */

import { icons } from "../icons.js";
import {
  bearingDeg, compassPoint, distanceM, escapeHtml, formatClock, formatCountdown, formatDistance, phaseAt,
} from "../util.js";

export const REPORT_MIN_MOVE_M = 3;
export const REPORT_MAX_QUIET_MS = 15000;

/** The page's state before anything is known (see participant.js for what each key holds). */
export function initialState(session = null) {
  return {
    mob: null,
    timeline: null,
    phase: null,
    session, // {token, participant: {id, nickname, ref_code}, share_url, snapshot?}
    me: null,
    task: null,
    counters: null,
    fix: null, // {lat, lon, accuracy_m, at}
    geoError: null,
    geoPermission: null,
    zone: null, // {state, distance_m, bearing_deg, problem}
    conn: null,
    connStatus: "idle",
    go: null, // {lateMs, via} once fired
    deed: null, // this mob's latest outbox record
    announcement: null,
    announcementSeq: 0,
    heading: null,
    pledges: null, // live pledge totals (GET …/pledges/totals, then every stats event)
    fatal: null,
    joinMessage: null,
  };
}

/** The phase to show at server time `now`. */
export function currentPhase(state, now) {
  if (!state.timeline) return state.phase ?? "loading";
  const timeline = { ...state.timeline, phase: state.phase ?? state.timeline.phase };
  let phase = phaseAt(timeline, now);
  // For a participant the action starts exactly when GO fires here (the local timer, or the
  // server's word), not when a render tick happens to notice the time.
  if (phase === "action" && !state.go && state.session && state.phase !== "action") phase = "countdown";
  if (state.go && ["published", "gathering", "countdown"].includes(phase)) phase = "action";
  return phase;
}

/**
 * Whether the action is already over: the server says so, or its clock passed the end (a
 * phone that slept through the action must not flash GO when it wakes up).
 */
export function actionOver(state, now) {
  if (["finished", "cancelled"].includes(state.phase)) return true;
  const end = state.timeline?.end_at_ms;
  return Number.isFinite(end) && now >= end;
}

/** "12 s", "2 min 5 s", "1 h 4 min" for a duration in ms. */
export function formatSince(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min${total % 60 ? ` ${total % 60} s` : ""}`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}

/** What to do while the mob gathers: only a phone with a spot is sent to it. */
export function gatheringHint(state) {
  if (!state.session) return "gathering now: join to get a spot";
  if (state.task) return "walk to your spot now";
  if (state.zone?.state === "outside" || state.zone?.state === "uncertain") return "walk into the zone now";
  return "gathering now";
}

/**
 * The clock card: `{label, value, sub, final}` at server time `now`; `doubt` is the clock's
 * own note ("timing ±N ms", clock.js clockNote) or "".
 */
export function clockFace(state, phase, now, doubt = "") {
  const t = state.timeline;
  const left = t.go_at_ms - now;
  let label = "GO in";
  let value = formatCountdown(left);
  let sub = `at ${formatClock(t.go_at_ms, now)}`;
  if (phase === "gathering") sub += ` · ${gatheringHint(state)}`;
  else if (phase === "published") sub += ` · gather from ${formatClock(t.gather_at_ms, now)}`;
  if (phase === "countdown") {
    label = "Get ready";
    sub = "Everyone goes at the same second";
  } else if (phase === "action") {
    label = "Happening now";
    value = "GO";
    sub = `until ${formatClock(t.end_at_ms, now)}`;
  } else if (phase === "finished") {
    label = "It's over";
    value = "Done";
    sub = `ended ${formatClock(t.end_at_ms, now)}`;
  } else if (phase === "cancelled") {
    label = "Cancelled";
    value = "—";
    sub = "This mob was called off";
  }
  if (t.rehearsal && !["finished", "cancelled"].includes(phase)) sub += " · rehearsal, nothing counts";
  // Before GO only: a quiet " · timing ±N ms" when the clock is not known to within ±50 ms.
  if (doubt && ["published", "gathering", "countdown"].includes(phase)) sub += ` · ${doubt}`;
  return { label, value, sub, final: phase === "countdown" && left <= 10_000 };
}

/** The GO screen's time-left pill ("1:52 left"); a late GO also says when it started. */
export function timeLeftText(state, now) {
  const t = state.timeline;
  const left = `${formatCountdown(t.end_at_ms - now)} left`;
  return (state.go?.lateMs ?? 0) >= 1500 ? `started ${formatSince(now - t.go_at_ms)} ago · ${left}` : left;
}

export function chipsHtml(state, phase) {
  const chips = [];
  const names = {
    published: ["Upcoming", ""], gathering: ["Gathering", "chip-soon"], countdown: ["Countdown", "chip-live"],
    action: ["Live", "chip-live"], finished: ["Finished", "chip-done"], cancelled: ["Cancelled", "chip-danger"],
  };
  const [text, cls] = names[phase] ?? ["", ""];
  if (text) chips.push(`<span class="chip ${cls}">${text}</span>`);
  if (state.timeline?.rehearsal) chips.push('<span class="chip chip-warn">Rehearsal</span>');
  return chips.join("");
}

export function countersHtml(state) {
  const c = state.counters ?? {};
  const done = state.timeline?.rehearsal ? c.rehearsal_deeds ?? c.deeds_done : c.deeds_done;
  const cells = [
    ["joined", c.joined, "joined"],
    ["in_zone", c.in_zone, "in the zone"],
    ["deeds_done", done, state.timeline?.rehearsal ? "tries" : "deeds done"],
  ];
  return cells.map(([key, value, label]) =>
    `<div class="counter" data-counter="${key}"><span class="counter-value">${Number.isFinite(value) ? value : "–"}</span><span class="counter-label">${label}</span></div>`).join("");
}

/** `{cls, html}` for what became of the deed tapped here, or null before the tap. */
export function doneState(state) {
  const deed = state.deed;
  if (!deed) return null;
  if (deed.state === "pending") {
    const offline = !state.conn?.connected;
    return {
      cls: "pending",
      html: `${offline ? icons.offline : icons.clock}<span>${offline
        ? "Saved on your phone. It will be sent as soon as you're back online."
        : "Sending your deed…"}</span>`,
    };
  }
  const answer = deed.answer ?? {};
  const thanks = `Thank you${state.me?.nickname ? `, ${escapeHtml(state.me.nickname)}` : ""}.`;
  if (answer.status === "approved") {
    return { cls: "", html: `${icons.check}<span>The organizer approved your deed: it counts! ${thanks}</span>` };
  }
  if (answer.status === "rejected") {
    return { cls: "pending", html: `${icons.alert}<span>The organizer checked your deed and it wasn't counted this time. Thank you for taking part.</span>` };
  }
  if (answer.accepted) {
    return { cls: "", html: `${icons.check}<span>Counted! ${thanks}</span>` };
  }
  if (answer.status === "flagged") {
    const far = answer.reason === "far_from_task" ? " (you seemed far from your spot)" : "";
    return { cls: "", html: `${icons.check}<span>Thanks! The organizer will check this one${far}.</span>` };
  }
  const reasons = {
    not_action_phase: "That tap came outside the action time, so it wasn't counted.",
    not_your_task: "That spot isn't yours any more, so it wasn't counted.",
  };
  return { cls: "pending", html: `${icons.alert}<span>${escapeHtml(reasons[answer.reason] ?? answer.error?.message ?? "It couldn't be counted.")}</span>` };
}

/**
 * Whether `fix` is worth a report: the first one, a move of REPORT_MIN_MOVE_M, a change of
 * accuracy of 5 m, REPORT_MAX_QUIET_MS since the last one, or the server doubted the last.
 * `last` is the last reported fix with its `sentAt` (Date.now() when sent).
 */
export function reportDue(last, fix, zone, now) {
  if (!last) return true;
  return distanceM(last.lat, last.lon, fix.lat, fix.lon) >= REPORT_MIN_MOVE_M ||
    Math.abs(last.accuracy_m - fix.accuracy_m) >= 5 ||
    now - last.sentAt >= REPORT_MAX_QUIET_MS || zone?.problem;
}

/** The zone (and the task, when the ack carries one) from a `report_location` ack. */
export function locationAckPatch(ack) {
  const patch = {
    zone: {
      state: ack.zone,
      distance_m: ack.distance_m,
      bearing_deg: ack.bearing_deg,
      problem: ack.counted === false ? ack.reason ?? "uncertain" : null,
    },
  };
  if (ack.task !== undefined) patch.task = ack.task ?? null;
  return patch;
}

/**
 * The patch of a `join_mob` snapshot (after every (re)join). The session gains the
 * snapshot's essentials, so the page opens offline next time.
 */
export function snapshotPatch(state, snap) {
  const mob = snap.mob ?? state.mob;
  const timeline = snap.timeline ?? snap.mob?.timeline ?? state.timeline;
  const patch = {
    mob,
    timeline,
    phase: snap.phase ?? timeline?.phase ?? state.phase,
    me: snap.me ?? state.me,
    task: snap.task ?? null,
    counters: snap.counters ?? state.counters,
  };
  if (snap.me?.zone && !state.zone) patch.zone = { state: snap.me.zone };
  const said = snap.announcements?.at(-1); // said before this page opened (or while away)
  if (said && (said.seq ?? 0) > state.announcementSeq) {
    patch.announcement = said.text;
    patch.announcementSeq = said.seq ?? 0;
  }
  if (state.session) {
    patch.session = {
      ...state.session,
      snapshot: {
        mob: patch.mob, timeline: patch.timeline, phase: patch.phase, me: patch.me,
        task: patch.task, counters: patch.counters,
      },
    };
  }
  return patch;
}

/** The patch of a mob event (`timeline`, `phase`, `stats`, `announcement`, `task_assigned`). */
export function eventPatch(state, name, data) {
  if (name === "timeline" && data.timeline) {
    return { timeline: data.timeline, phase: data.timeline.phase ?? state.phase };
  }
  if (name === "phase") return { phase: data.phase };
  if (name === "stats") {
    const { mob: _m, seq: _s, pledges, ...counters } = data;
    const patch = { counters: { ...state.counters, ...counters } };
    if (pledges) patch.pledges = pledges;
    return patch;
  }
  if (name === "task_assigned") return { task: data.task ?? null };
  if (name === "announcement") {
    return { announcement: data.text, announcementSeq: Math.max(state.announcementSeq, data.seq ?? 0) };
  }
  return {};
}

/** The patch of a successful join (POST …/participants); `now` is Date.now(). */
export function joinPatch(state, result, now) {
  const mob = result.mob ?? state.mob;
  return {
    session: {
      token: result.token,
      participant: result.participant,
      share_url: result.share_url,
      expires_at: now + (result.expires_in_s ?? 0) * 1000,
    },
    me: { nickname: result.participant.nickname, ref_code: result.participant.ref_code, zone: null },
    mob,
    timeline: mob?.timeline ?? state.timeline,
    joinMessage: null,
  };
}

/** What a failed join tells the user. */
export function joinErrorText(error) {
  const messages = {
    nickname_refused: "Please pick another nickname.",
    nickname_invalid: "That nickname can't be used — letters, numbers and spaces work best.",
    mob_full: "Every spot of this mob is taken. Bring your energy to the next one!",
    mob_closed: "This mob is over — it can't be joined any more.",
  };
  return error.status === 0
    ? "You're offline. Join when you have a connection again."
    : messages[error.code] ?? error.message;
}

/** The participant's own link (with their referral code), relative to the site. */
export function sharePath(state, mobId) {
  const code = state.session?.participant?.ref_code ?? state.me?.ref_code;
  return state.session?.share_url ?? `/m/${encodeURIComponent(mobId)}${code ? `?ref=${encodeURIComponent(code)}` : ""}`;
}

// --- task and navigation ---------------------------------------------------------------------
// One story (issue 17): a spot is claimed only from inside the zone (the server's rule), so a
// phone outside or at the edge is told to step in, and whether the walk still fits.

export const AT_SPOT_M = 12; // closer than this (plus accuracy, capped) counts as "at your spot"
export const WALK_MPS = 1.3; // a brisk walk: how long the way to the zone takes
export const DEED_MARGIN_MS = 20000; // time to find a spot and do the deed once in the zone

/** The arrow icon turned toward `bearing`, relative to the phone's compass `heading`. */
export function arrowHtml(bearing, heading) {
  return icons.arrow.replace("<svg", `<svg style="transform:rotate(${Math.round(bearing - (heading ?? 0))}deg)"`);
}

/**
 * Walking `distance` metres to the zone: how long (ms, at WALK_MPS) and whether one arrives
 * with time for the deed before the action ends (always, before the timeline is known).
 */
export function walkToZone(state, distance, now) {
  const ms = (distance / WALK_MPS) * 1000;
  const end = state.timeline?.end_at_ms;
  return { ms, canMake: !Number.isFinite(end) || now + ms + DEED_MARGIN_MS <= end };
}

export function formatWalk(ms) {
  const min = Math.round(ms / 60000);
  return min < 1 ? "under a minute on foot" : `about ${min} min on foot`;
}

/** `{cls, arrow, main, sub}` for the guide card. */
export function guide(state, now) {
  const fix = state.fix;
  const task = state.task;
  const z = state.zone;
  const label = task ? (task.label || `${task.kind ? task.kind[0].toUpperCase() + task.kind.slice(1) : "Your"} spot #${task.id}`) : "";
  if (!fix) {
    if (state.geoError === "denied") {
      return { cls: "off", arrow: icons.locationOff, main: "Location is off",
        sub: "No spot and no counted deed without it" };
    }
    return { cls: "off", arrow: icons.locate, main: "Finding you…", sub: "Step outside for a better GPS fix." };
  }
  if (task) {
    const d = distanceM(fix.lat, fix.lon, task.lat, task.lon);
    const b = bearingDeg(fix.lat, fix.lon, task.lat, task.lon);
    if (d <= AT_SPOT_M + Math.min(fix.accuracy_m, 15)) {
      if (z?.state === "outside") {
        return { cls: "", arrow: arrowHtml(b, state.heading), main: "Step back into the zone", sub: `${label} is right at its edge` };
      }
      return { cls: "here", arrow: icons.check, main: "You're at your spot", sub: label };
    }
    return { cls: "", arrow: arrowHtml(b, state.heading), main: formatDistance(d), sub: `${compassPoint(b)} to your spot · ${label}`, bearing: b };
  }
  if (z?.problem) {
    return { cls: "off", arrow: icons.locate, main: "Hold on…", sub: "Waiting for a steady GPS fix" };
  }
  if (z?.state === "outside" && Number.isFinite(z.distance_m)) {
    // A spot is claimed only from inside the zone (the server's rule): say so, and whether
    // the walk there still fits before the end.
    const b = z.bearing_deg;
    const toward = Number.isFinite(b) ? `${compassPoint(b)} ` : "";
    const walk = walkToZone(state, z.distance_m, now);
    return { cls: "", arrow: Number.isFinite(b) ? arrowHtml(b, state.heading) : icons.pin, main: formatDistance(z.distance_m),
      sub: walk.canMake
        ? `${toward}to the zone, ${formatWalk(walk.ms)}: step in to get your spot`
        : `${toward}to the zone, ${formatWalk(walk.ms)}: too far to make it before the end` };
  }
  if (z?.state === "uncertain") {
    return { cls: "", arrow: icons.locate, main: "At the edge of the zone", sub: "Step into the zone to get your spot" };
  }
  if (z?.state === "inside") {
    return { cls: "here", arrow: icons.check, main: "You're in the zone", sub: "Waiting for a free spot…" };
  }
  return { cls: "off", arrow: icons.locate, main: "Checking your position…", sub: "" };
}

/**
 * The GO prompt of a phone without a spot: `{text, watch}`, what is true, and whether to
 * watch live instead (never "around your spot").
 */
export function noSpotStory(state, now) {
  const z = state.zone;
  if (!state.fix) {
    return state.geoError === "denied"
      ? { text: "Your location is off, so you have no spot and your deed can't be counted. You can still watch it live.", watch: true }
      : { text: "We're still finding you, so you have no spot yet.", watch: true };
  }
  if (z?.state === "outside" && Number.isFinite(z.distance_m)) {
    const walk = walkToZone(state, z.distance_m, now);
    const far = `You're ${formatDistance(z.distance_m)} from the zone (${formatWalk(walk.ms)})`;
    if (walk.canMake) return { text: `${far}: you can still make it. Step into the zone to get your spot.`, watch: false };
    const left = state.timeline ? formatSince(state.timeline.end_at_ms - now) : "";
    return { text: `${far} and it ends in ${left}: too far to make it this time. Watch it live instead.`, watch: true };
  }
  if (z?.state === "inside") return { text: "You're in the zone, but no spot is free near you.", watch: true };
  return { text: "Step into the zone to get your spot.", watch: false };
}

/** `[dot class, text]` of the zone line under the guide card. */
export function zoneLine(state) {
  const z = state.zone;
  const acc = state.fix ? ` (±${Math.round(state.fix.accuracy_m)} m)` : "";
  if (state.geoError === "denied" && !state.fix) return ["bad", "Location blocked — you can't be counted"];
  if (!state.fix) return ["", "Waiting for your location"];
  if (z?.problem === "poor_accuracy") return ["warn", `GPS too imprecise${acc} — try under open sky`];
  if (z?.problem === "implausible_speed") return ["warn", "Your position jumped — waiting for a steady fix"];
  if (z?.state === "inside") return ["ok", `You're in the zone${acc}`];
  if (z?.state === "uncertain") return ["warn", `Right at the edge of the zone${acc}`];
  if (z?.state === "outside") return ["warn", `Outside the zone${acc}`];
  return ["", `Located${acc}`];
}
