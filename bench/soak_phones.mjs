#!/usr/bin/env node
/**
 * Phones for the soak benchmark (bench/soak.py): one Node process runs many of them against
 * real Good Mob server processes, for as long as the orchestrator keeps it running.
 *
 *     node bench/soak_phones.mjs '<config JSON>'
 *
 * Every phone stands somewhere in the zone and, all the time, reports its location every
 * `report_every_ms` (±20 %), walking toward its task at a walking pace. The orchestrator moves
 * the crowd from mob to mob: on `{"cmd": "mob", "mob": id, "spread_ms": n}` each phone, at a
 * random moment within the spread, joins the new mob over REST, opens a new /participant
 * socket, sends join_mob, then closes its old socket. When the mob's action starts (the
 * `phase` push, or a snapshot that says so), the phone confirms one deed at a random moment of
 * the action: a client UUID, retried with the same deed_id until a success ack (or until the
 * deed grace period ends). On reconnect it re-joins with the last seq it saw.
 *
 * Output (stdout, one JSON object per line): `switched` after each mob command, `window`
 * every `window_ms` (latency percentiles and errors of that window), `result` on
 * `{"cmd": "report"}` (every latency sample, every deed id acknowledged per mob, errors).
 * `{"cmd": "exit"}` closes every socket and exits.
 *
 * Config: process, first_index, phones, rest_urls, socket_urls (phone i uses index i mod n),
 * box [west, south, east, north], report_every_ms, ack_timeout_ms, deed_grace_ms,
 * walk_mps, window_ms, seed.
 */

import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import readline from "node:readline";

import { mulberry32, uniform } from "./sim/net.mjs";
import { distanceM, stepToward } from "./sim/walk.mjs";

const requireFromPwa = createRequire(new URL("../pwa/node_modules/", import.meta.url));
const { io } = requireFromPwa("socket.io-client");

const cfg = {
  process: 0,
  first_index: 0,
  phones: 100,
  rest_urls: ["http://127.0.0.1:5000"],
  socket_urls: null,
  box: null,
  report_every_ms: 5000,
  ack_timeout_ms: 20_000,
  deed_grace_ms: 120_000,
  walk_mps: 1.4,
  window_ms: 30_000,
  seed: 1,
  ...JSON.parse(process.argv[2] ?? "{}"),
};

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const log = (msg) => process.stderr.write(`[soak phones ${cfg.process}] ${msg}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

// --- measurements ----------------------------------------------------------------------------

const KINDS = ["rest_join", "connect", "join_mob", "report", "deed_ack", "deed_total"];
const samples = Object.fromEntries(KINDS.map((k) => [k, []])); // whole run, ms
let windowSamples = Object.fromEntries(KINDS.map((k) => [k, []]));
const errors = {}; // "kind:what" → count, whole run
let windowErrors = {};
const deeds = {}; // mob id → {acked: [ids], unacked: [ids], rejected: {reason: n}}

function sample(kind, ms) {
  const v = Math.round(ms * 10) / 10;
  samples[kind].push(v);
  windowSamples[kind].push(v);
}

function error(kind, what) {
  const key = `${kind}:${what}`;
  errors[key] = (errors[key] ?? 0) + 1;
  windowErrors[key] = (windowErrors[key] ?? 0) + 1;
}

function deedBook(mobId) {
  deeds[mobId] ??= { acked: [], unacked: [], rejected: {} };
  return deeds[mobId];
}

function pct(values, q) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((q / 100) * s.length))];
}

function flushWindow() {
  const kinds = {};
  for (const k of KINDS) {
    const v = windowSamples[k];
    if (v.length) kinds[k] = { n: v.length, p50: pct(v, 50), p99: pct(v, 99), max: Math.max(...v) };
  }
  const connected = phones.filter((p) => p.cur?.socket?.connected).length;
  out({ event: "window", process: cfg.process, at: Date.now(), connected, kinds, errors: windowErrors });
  windowSamples = Object.fromEntries(KINDS.map((k) => [k, []]));
  windowErrors = {};
}

/** emitWithAck with a timeout; resolves to {ack, ms}, or {timeout: true, ms} with
 * `dropped: true` when the socket closed before the ack came (socket.io-client then gives
 * up every pending ack at once). */
async function request(socket, event, payload) {
  const t0 = now();
  try {
    const ack = await socket.timeout(cfg.ack_timeout_ms).emitWithAck(event, payload);
    return { ack, ms: now() - t0 };
  } catch (err) {
    const dropped = String(err?.message ?? "").includes("disconnected");
    return { timeout: true, dropped, ms: now() - t0 };
  }
}

/** An unanswered call: a timeout, a connection dropped under it, or (not the server's
 * doing) a call on the old mob's socket that this phone closed itself when it moved on. */
function unanswered(kind, r, state) {
  if (!r.dropped) return error(kind, "timeout");
  return error(kind, state.closing ? "abandoned_by_phone" : "dropped");
}

// --- one phone -------------------------------------------------------------------------------

class SoakPhone {
  constructor(index) {
    this.index = index;
    this.rng = mulberry32(cfg.seed * 1_000_003 + index * 7919);
    const [w, s, e, n] = cfg.box;
    this.pos = [uniform(this.rng, w, e), uniform(this.rng, s, n)];
    this.restUrl = cfg.rest_urls[index % cfg.rest_urls.length];
    const urls = cfg.socket_urls?.length ? cfg.socket_urls : cfg.rest_urls;
    this.socketUrl = urls[index % urls.length];
    this.cur = null; // {mob, token, socket, seq, task, timeline, deedArmed, closing}
    this.lastStep = now();
  }

  async joinRest(mobId) {
    for (let attempt = 0; attempt < 8; attempt++) {
      const t0 = now();
      try {
        const res = await fetch(`${this.restUrl}/api/mobs/${mobId}/participants`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        });
        const data = await res.json().catch(() => null);
        if (res.status === 201) {
          sample("rest_join", now() - t0);
          return data.token;
        }
        error("rest_join", `http_${res.status}`);
        if (res.status < 500 && res.status !== 429) return null;
      } catch (err) {
        error("rest_join", `network_${err.cause?.code ?? err.name}`);
      }
      await sleep(500 * 2 ** attempt);
    }
    return null;
  }

  /** Join `mobId` over REST, open its socket, join_mob; then drop the old mob's socket.
   * A switch overtaken by a later one (an overloaded server) gives up its socket. */
  async switchTo(mobId) {
    this.wanted = mobId;
    const token = await this.joinRest(mobId);
    if (!token) return false;
    const state = { mob: mobId, token, socket: null, seq: 0, task: null, timeline: null,
      deedArmed: false, closing: false };
    const t0 = now();
    const socket = io(`${this.socketUrl}/participant`, {
      transports: ["websocket"],
      auth: { token },
      forceNew: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      timeout: 20_000,
    });
    state.socket = socket;
    this.listen(state);
    const connected = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 60_000);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!connected) {
      error("connect", "timeout");
      state.closing = true;
      socket.close();
      return false;
    }
    sample("connect", now() - t0);
    const joined = await this.joinMob(state);
    if (this.wanted !== mobId) {
      error("switch", "overtaken");
      state.closing = true;
      socket.close();
      return false;
    }
    const old = this.cur;
    this.cur = state;
    if (old) {
      old.closing = true;
      old.socket.close();
    }
    return joined;
  }

  listen(state) {
    const { socket } = state;
    const seen = (seq) => {
      if (Number.isInteger(seq) && seq > state.seq) state.seq = seq;
    };
    socket.on("connect", () => {
      if (state.connectedOnce) this.joinMob(state); // a reconnect: catch up by seq
      state.connectedOnce = true;
    });
    socket.on("connect_error", (err) => error("connect", `refused_${err.message}`));
    socket.on("disconnect", (reason) => {
      if (!state.closing) error("socket", `disconnect_${reason.replaceAll(" ", "_")}`);
    });
    socket.on("timeline", (d) => {
      seen(d.seq);
      state.timeline = d.timeline;
    });
    socket.on("phase", (d) => {
      seen(d.seq);
      if (d.phase === "action") this.armDeed(state);
    });
    socket.on("announcement", (d) => seen(d.seq));
    socket.on("task_assigned", (d) => {
      state.task = d.task;
    });
  }

  async joinMob(state) {
    const payload = { mob: state.mob };
    if (state.seq > 0) payload.last_seq = state.seq;
    const r = await request(state.socket, "join_mob", payload);
    if (r.timeout) {
      unanswered("join_mob", r, state);
      return false;
    }
    if (r.ack?.error) {
      error("join_mob", r.ack.error.code);
      return false;
    }
    sample("join_mob", r.ms);
    const snap = r.ack;
    state.timeline = snap.timeline;
    state.task = snap.task ?? state.task;
    if (snap.seq > state.seq) state.seq = snap.seq;
    for (const m of snap.missed ?? []) {
      if (m.event === "phase" && m.data.phase === "action") this.armDeed(state);
    }
    if (snap.phase === "action") this.armDeed(state);
    return true;
  }

  async reportLoop() {
    await sleep(this.rng() * cfg.report_every_ms);
    while (!stopping) {
      const state = this.cur;
      if (state?.socket.connected) await this.report(state);
      await sleep(uniform(this.rng, cfg.report_every_ms * 0.8, cfg.report_every_ms * 1.2));
    }
  }

  async report(state) {
    const t = now();
    const dt = (t - this.lastStep) / 1000;
    this.lastStep = t;
    if (state.task) this.pos = stepToward(this.pos, [state.task.lon, state.task.lat], cfg.walk_mps * dt);
    const fix = { lat: this.pos[1], lon: this.pos[0], accuracy_m: Math.round(uniform(this.rng, 4, 10)),
      at: Date.now() };
    const r = await request(state.socket, "report_location", fix);
    if (r.timeout) return unanswered("report", r, state);
    if (r.ack?.error) return error("report", r.ack.error.code);
    sample("report", r.ms);
    if (r.ack.task) state.task = r.ack.task;
  }

  armDeed(state) {
    if (state.deedArmed) return;
    state.deedArmed = true;
    const tl = state.timeline;
    const actionMs = tl ? Math.max(2000, tl.end_at_ms - tl.go_at_ms) : 10_000;
    const delay = uniform(this.rng, 1000, actionMs * 0.6);
    setTimeout(() => this.confirmDeed(state).catch((err) => log(`deed: ${err.stack ?? err}`)), delay);
  }

  async confirmDeed(state) {
    const book = deedBook(state.mob);
    const endMs = state.timeline ? state.timeline.end_at_ms : Date.now() + 60_000;
    const giveUpAt = endMs + cfg.deed_grace_ms;
    let deedId = randomUUID();
    const t0 = now();
    while (Date.now() < giveUpAt && !stopping) {
      if (!state.task || !state.socket.connected) {
        await sleep(1000);
        continue;
      }
      const task = state.task;
      const body = { deed_id: deedId, task: task.id, lat: this.pos[1], lon: this.pos[0],
        accuracy_m: 6 };
      const r = await request(state.socket, "confirm_deed", body);
      if (r.timeout) {
        unanswered("deed", r, state);
        if (state.closing) break; // this phone left the mob
        continue; // the same deed_id again
      }
      if (r.ack?.error) {
        error("deed", r.ack.error.code);
        await sleep(1000);
        continue;
      }
      sample("deed_ack", r.ms);
      const ack = r.ack;
      if (ack.status === "accepted" || ack.status === "flagged") {
        sample("deed_total", now() - t0);
        book.acked.push(deedId);
        return;
      }
      book.rejected[ack.reason] = (book.rejected[ack.reason] ?? 0) + 1;
      if (ack.reason === "not_your_task") {
        await this.joinMob(state); // learn the task the server holds, then a new deed
        deedId = randomUUID();
        continue;
      }
      return; // e.g. not_action_phase: nothing was stored
    }
    book.unacked.push(deedId);
  }
}

// --- main ------------------------------------------------------------------------------------

let stopping = false;
const phones = Array.from({ length: cfg.phones }, (_, k) => new SoakPhone(cfg.first_index + k));
for (const p of phones) p.reportLoop();
setInterval(flushWindow, cfg.window_ms).unref();

const commands = {
  async mob({ mob, spread_ms: spread = 0 }) {
    const t0 = Date.now();
    const results = await Promise.all(phones.map(async (p) => {
      await sleep(p.rng() * spread);
      try {
        return await p.switchTo(mob);
      } catch (err) {
        log(`phone ${p.index}: ${err.stack ?? err}`);
        return false;
      }
    }));
    const ok = results.filter(Boolean).length;
    out({ event: "switched", process: cfg.process, mob, ok, failed: results.length - ok,
      ms: Date.now() - t0 });
  },
  async report() {
    out({ event: "result", process: cfg.process, samples, errors, deeds,
      rss_mb: process.memoryUsage().rss / 2 ** 20 });
  },
  async exit() {
    stopping = true;
    for (const p of phones) {
      if (p.cur) {
        p.cur.closing = true;
        p.cur.socket.close();
      }
    }
    await new Promise((resolve) => process.stdout.write("", resolve));
    process.exit(0);
  },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const msg = JSON.parse(line);
  const fn = commands[msg.cmd];
  if (!fn) {
    log(`unknown command ${line}`);
    continue;
  }
  fn(msg).catch((err) => log(`${msg.cmd} failed: ${err.stack ?? err}`));
}
await commands.exit();
