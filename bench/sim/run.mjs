#!/usr/bin/env node
/**
 * A Node process running many simulated phones against a real Good Mob server.
 *
 *     node bench/sim/run.mjs '<config JSON>'
 *
 * Output: one JSON object per line on stdout (`{"event": ...}`); diagnostics on stderr.
 *
 * Modes:
 *
 * - `bench` (driven by bench/sync.py): joins every phone over REST at once and prints
 *   `tokens`; then obeys JSON-line commands on stdin:
 *     {"cmd": "connect"}               connect every phone's socket → `connected`
 *     {"cmd": "join"}                  join_mob on every connected phone → `joined`
 *     {"cmd": "sync", "spread_ms": n}  start each phone's ClockSync at a random moment
 *                                      within spread_ms → `synced` once all synced once
 *     {"cmd": "gc"}                    one garbage collection now (node --expose-gc) → `gc`
 *     {"cmd": "report"}                → `result` with one record per phone (phone.mjs)
 *     {"cmd": "exit"}                  close the sockets and exit
 *   plus a `progress` line every 2 s while anything changes.
 * - `crowd` (the demo): each phone joins at a random moment within `join_spread_ms`, walks
 *   from outside the zone toward the zone and then its task (report_location every
 *   ~`report_every_ms`), fires at GO, confirms its deed a few seconds later (a client UUID,
 *   retried with the same id) and stays connected. Exits when stdin closes or `stay_ms`
 *   after the mob's end.
 *
 * Config keys (defaults in DEFAULTS): rest_url, socket_urls (phone i uses
 * socket_urls[i % n]), mob, phones, first_index, seed, offset_ms (± range of the phones'
 * clock offsets), min/max_up_ms and min/max_down_ms (per-message delays), clock (overrides of
 * the PWA's CLOCK_CONFIG: named experiments only; {} runs the PWA's), join_concurrency,
 * connect_concurrency, and for
 * crowd: join_spread_ms, report_every_ms, deed_after_ms [lo, hi], walk_speed_mps [lo, hi],
 * start_outside_m [lo, hi], stay_ms, exit_on_stdin_close. SIM_DEBUG=1 in the environment logs
 * every report_location acknowledgement of the crowd to stderr.
 */

import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import { monitorEventLoopDelay } from "node:perf_hooks";
import readline from "node:readline";

import { mulberry32, NetworkModel, uniform } from "./net.mjs";
import { Phone, sleep, trueNow } from "./phone.mjs";
import { centre, distanceM, offsetPoint, startOutside, stepToward } from "./walk.mjs";

// socket.io-client comes from the PWA's locked npm install (scripts/setup.sh).
const requireFromPwa = createRequire(new URL("../../pwa/node_modules/", import.meta.url));
const { io } = requireFromPwa("socket.io-client");

const DEFAULTS = {
  mode: "bench",
  rest_url: "http://127.0.0.1:5000",
  socket_urls: null, // default: [rest_url]
  mob: null,
  phones: 100,
  first_index: 0,
  seed: 1,
  process: 0,
  offset_ms: 600_000,
  min_up_ms: 0,
  max_up_ms: 80,
  min_down_ms: 0,
  max_down_ms: 80,
  clock: {}, // CLOCK_CONFIG as the PWA runs it
  join_concurrency: 8,
  connect_concurrency: 64,
  // crowd
  join_spread_ms: 30_000,
  report_every_ms: 2_000,
  deed_after_ms: [2_000, 9_000],
  walk_speed_mps: [1.2, 3.5],
  start_outside_m: [40, 160],
  stay_ms: 60_000,
  exit_on_stdin_close: false, // crowd: leave when the parent (the demo) goes away
};

/** CPU time this process has used so far, ms (user + system). */
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const out = (obj) => process.stdout.write(`${JSON.stringify({ ...obj, cpu_ms: cpuMs() })}\n`);
process.stdout.on("error", () => {}); // the reader went away (EPIPE): nothing left to tell
const log = (msg) => process.stderr.write(`[sim ${cfg.process}] ${msg}\n`);

/** Runs `fn` over `items` with at most `limit` in flight; resolves to the settled results. */
async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { ok: true, value: await fn(items[i], i) };
      } catch (error) {
        results[i] = { ok: false, error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function spanOf(values) {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? { first: Math.min(...v), last: Math.max(...v) } : { first: null, last: null };
}

function makePhones(onEvent) {
  const urls = cfg.socket_urls?.length ? cfg.socket_urls : [cfg.rest_url];
  return Array.from({ length: cfg.phones }, (_, k) => {
    const index = cfg.first_index + k;
    const rng = mulberry32(cfg.seed * 1_000_003 + index * 7919);
    const net = new NetworkModel({
      rng: mulberry32(cfg.seed * 2_000_003 + index * 104_729),
      minUpMs: cfg.min_up_ms,
      maxUpMs: cfg.max_up_ms,
      minDownMs: cfg.min_down_ms,
      maxDownMs: cfg.max_down_ms,
    });
    const phone = new Phone({
      index,
      restUrl: cfg.rest_url,
      socketUrl: urls[index % urls.length],
      mobId: cfg.mob,
      io,
      net,
      offsetMs: uniform(rng, -cfg.offset_ms, cfg.offset_ms),
      clock: cfg.clock,
      onEvent,
    });
    phone.rng = rng;
    return phone;
  });
}

function counters(phones) {
  const c = { phones: phones.length, tokens: 0, connected: 0, joined: 0, synced: 0, fired: 0,
    go: 0, in_zone: 0, tasks: 0, deeds: 0, disconnects: 0, errors: 0 };
  for (const p of phones) {
    if (p.token) c.tokens++;
    if (p.timings.connected) c.connected++;
    if (p.timings.joined) c.joined++;
    if (p.syncs > 0) c.synced++;
    if (p.fired) c.fired++;
    if (p.goReceived) c.go++;
    if (p.zone === "inside") c.in_zone++;
    if (p.task) c.tasks++;
    if (p.deed?.accepted) c.deeds++;
    c.disconnects += p.disconnects;
    if (p.error) c.errors++;
  }
  return c;
}

function startProgress(phones, everyMs) {
  let last = "";
  const timer = setInterval(() => {
    const c = counters(phones);
    const text = JSON.stringify(c);
    if (text !== last) out({ event: "progress", process: cfg.process, at: trueNow(), ...c });
    last = text;
  }, everyMs);
  timer.unref();
}

// --- bench mode --------------------------------------------------------------------------

async function runBench() {
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  const phones = makePhones(() => {});
  startProgress(phones, 2000);

  const joined = await pool(phones, cfg.join_concurrency, (p) => p.joinRest());
  const rest = spanOf(phones.map((p) => p.timings.restStart));
  out({
    event: "tokens", process: cfg.process, ok: joined.filter((r) => r.ok).length,
    failed: joined.filter((r) => !r.ok).length, first: rest.first,
    last: spanOf(phones.map((p) => p.timings.restEnd)).last,
    errors: [...new Set(phones.filter((p) => p.error).map((p) => p.error))].slice(0, 5),
  });

  const commands = {
    async connect() {
      const ready = phones.filter((p) => p.token);
      const done = await pool(ready, cfg.connect_concurrency, (p) => p.connect());
      out({
        event: "connected", process: cfg.process, ok: done.filter((r) => r.ok).length,
        failed: done.filter((r) => !r.ok).length,
        first: spanOf(ready.map((p) => p.timings.connectStart)).first,
        last: spanOf(ready.map((p) => p.timings.connected)).last,
        errors: [...new Set(phones.filter((p) => p.error).map((p) => p.error))].slice(0, 5),
      });
    },
    async join() {
      const ready = phones.filter((p) => p.timings.connected);
      const start = trueNow();
      const done = await pool(ready, cfg.connect_concurrency, (p) => p.joinMob());
      out({
        event: "joined", process: cfg.process, ok: done.filter((r) => r.ok).length,
        failed: done.filter((r) => !r.ok).length, first: start,
        last: spanOf(ready.map((p) => p.timings.joined)).last,
        errors: [...new Set(phones.filter((p) => p.error).map((p) => p.error))].slice(0, 5),
      });
    },
    async sync({ spread_ms: spread = 0 }) {
      loopDelay.enable();
      const ready = phones.filter((p) => p.timings.joined);
      await Promise.all(ready.map(async (p) => {
        await sleep(p.rng() * spread);
        await p.startClock();
      }));
      out({
        event: "synced", process: cfg.process, ok: ready.filter((p) => p.syncs > 0).length,
        failed: ready.filter((p) => p.syncs === 0).length, at: trueNow(),
      });
    },
    async gc() {
      // One garbage collection a few seconds before GO: the simulator packs a thousand
      // phones into one V8 heap, and a major GC at T would delay all their timers at once
      // (a real phone's GC pauses are its own). Needs node --expose-gc.
      const start = performance.now();
      globalThis.gc?.();
      out({ event: "gc", process: cfg.process, ms: performance.now() - start, done: !!globalThis.gc });
    },
    async report() {
      const pct = (q) => loopDelay.percentile(q) / 1e6;
      out({
        event: "result", process: cfg.process, at: trueNow(),
        loop_delay_ms: { p50: pct(50), p99: pct(99), max: loopDelay.max / 1e6 },
        rss_mb: process.memoryUsage().rss / 2 ** 20,
        phones: phones.map((p) => p.result()),
      });
    },
    async exit() {
      for (const p of phones) p.close();
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
    // Commands run concurrently with later ones (e.g. report while phones are syncing).
    fn(msg).catch((err) => log(`${msg.cmd} failed: ${err.stack ?? err}`));
  }
  await commands.exit();
}

// --- crowd mode (demo) -------------------------------------------------------------------

async function confirmDeed(phone) {
  const [lo, hi] = cfg.deed_after_ms;
  await sleep(uniform(phone.rng, lo, hi));
  // Still walking (GO came early)? Do the deed on arrival.
  for (let i = 0; i < 120 && phone.task && distanceM(phone.pos, walkTarget(phone)) > 5; i++) {
    await sleep(1000);
  }
  if (!phone.task) return;
  const deed = {
    deed_id: randomUUID(),
    task: phone.task.id,
    lat: phone.pos[1],
    lon: phone.pos[0],
    accuracy_m: Math.round(uniform(phone.rng, 4, 12)),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const ack = await phone.confirmDeed(deed); // the same deed_id on every retry
      if (ack && !ack.error) {
        phone.deed = ack;
        if (!ack.accepted) log(`phone ${phone.index}: deed not accepted: ${ack.reason}`);
        return;
      }
      log(`phone ${phone.index}: confirm_deed ${JSON.stringify(ack?.error)}`);
      if (ack?.error?.code !== "rate_limited") return;
      await sleep(5000);
    } catch {
      await sleep(1000 * (attempt + 1));
    }
  }
}

/**
 * The phone's walking target: a spot by its task, else a point near the zone's centre. Tasks
 * can lie right at the zone's edge, so people stand a few metres from the task toward the
 * middle (well within the deed radius): their fixes then count as inside the zone.
 */
function walkTarget(phone) {
  if (phone.task) return stepToward([phone.task.lon, phone.task.lat], phone.zoneCentre, 10);
  return phone.aim;
}

async function walk(phone) {
  const zone = phone.snapshot.mob.zone;
  phone.zoneCentre = centre(zone);
  const [lo, hi] = cfg.start_outside_m;
  phone.pos = startOutside(zone, phone.rng, uniform(phone.rng, lo, hi));
  phone.aim = offsetPoint(phone.zoneCentre, uniform(phone.rng, 0, 25), phone.rng() * 2 * Math.PI);
  const [vMin, vMax] = cfg.walk_speed_mps;
  let lastStep = trueNow();
  while (!stopping) {
    const now = trueNow();
    const dt = (now - lastStep) / 1000;
    lastStep = now;
    const target = walkTarget(phone);
    const left = distanceM(phone.pos, target);
    // Hurry when GO is near: arrive about 20 s before it.
    const goIn = phone.timeline && phone.clock?.isSynced
      ? (phone.timeline.go_at_ms - phone.clock.serverNow()) / 1000 - 20 : Infinity;
    const speed = Math.min(vMax, Math.max(vMin, goIn > 0 ? left / goIn : vMax));
    phone.pos = stepToward(phone.pos, target, speed * dt);
    try {
      const ack = await phone.reportLocation({
        lat: phone.pos[1],
        lon: phone.pos[0],
        accuracy_m: Math.round(uniform(phone.rng, 3, 8)),
        at: Date.now() + phone.options.offsetMs,
      });
      if (process.env.SIM_DEBUG) log(`phone ${phone.index} ${JSON.stringify(ack)}`);
      if (ack && !ack.error) {
        phone.zone = ack.zone;
        if (ack.task !== undefined && ack.task !== null) phone.task = ack.task;
      }
    } catch {
      // a lost report: the next one goes out on schedule
    }
    if (phone.fired && !phone.deedStarted && phone.task) {
      phone.deedStarted = true;
      confirmDeed(phone);
    }
    await sleep(uniform(phone.rng, cfg.report_every_ms * 0.8, cfg.report_every_ms * 1.2));
  }
}

let stopping = false;

async function runCrowd() {
  const phones = makePhones((phone, kind) => {
    if (kind === "fired" && phone.task && !phone.deedStarted) {
      phone.deedStarted = true;
      confirmDeed(phone);
    }
  });
  startProgress(phones, 5000);
  scheduleCrowdEnd(phones);
  if (cfg.exit_on_stdin_close) {
    process.stdin.on("end", () => shutdown(phones));
    process.stdin.resume();
  }
  process.on("SIGTERM", () => shutdown(phones));
  process.on("SIGINT", () => shutdown(phones));

  await Promise.all(phones.map(async (phone) => {
    await sleep(phone.rng() * cfg.join_spread_ms);
    try {
      await phone.joinRest();
      await phone.connect();
      await phone.joinMob();
      phone.startClock();
      await walk(phone);
    } catch (err) {
      log(`phone ${phone.index}: ${err.message ?? err}`);
    }
  }));
}

function shutdown(phones) {
  if (stopping) return;
  stopping = true;
  for (const p of phones) p.close();
  out({ event: "exit", process: cfg.process, ...counters(phones) });
  setTimeout(() => process.exit(0), 200);
}

function scheduleCrowdEnd(phones) {
  // Leave `stay_ms` after the mob's end (as the first phone with a timeline sees it).
  const timer = setInterval(() => {
    const tl = phones.find((p) => p.timeline)?.timeline;
    if (tl && Date.now() > tl.end_at_ms + cfg.stay_ms) shutdown(phones);
  }, 5000);
  timer.unref();
}

// --- main --------------------------------------------------------------------------------

const cfg = { ...DEFAULTS, ...JSON.parse(process.argv[2] ?? "{}") };
if (!cfg.mob) {
  process.stderr.write("usage: node bench/sim/run.mjs '{\"mob\": \"<id>\", ...}'\n");
  process.exit(2);
}
if (cfg.mode === "crowd") {
  runCrowd();
} else {
  runBench().catch((err) => {
    log(err.stack ?? String(err));
    process.exit(1);
  });
}
