/**
 * Benchmark phones: one Node process holding many real Socket.IO clients (WebSocket transport,
 * one connection each) against a real `python -m server`, driven by bench/locations.py and
 * bench/join.py over stdin/stdout (one JSON object per line each way).
 *
 * Commands (stdin), answered on stdout:
 *   {"cmd": "config", ...}          the run's settings (url, mob, phones: [{id, token, lon, lat}])
 *   {"cmd": "connect"}             open every phone's socket and send join_mob → {"event": "connected"}
 *   {"cmd": "run", "rate", "seconds", "tag"}  report_location at `rate` per second (open loop:
 *                                   sends follow the clock, not the acks) → {"event": "ran", ...}
 *   {"cmd": "joins", "count", "concurrency"}  POST join + socket connect + join_mob, timed
 *                                   step by step → {"event": "joined", ...}
 *   {"cmd": "last"}                 each phone's last acknowledged fix (and later ones whose
 *                                   ack timed out) → {"event": "last", fixes}
 *   {"cmd": "quit"}                 close every socket and exit
 *
 * Phones walk at about 1.2 m/s inside the given box (or their own `box`), with a random
 * accuracy of 5–25 m, so most fixes keep their zone state and task (the server's
 * deferred-write path); a phone's first fix claims a task, and phones whose box straddles
 * the zone's edge keep changing state (the immediate-write path, and counter pushes).
 *
 * @module phones
 */

import { createRequire } from "node:module";
import { monitorEventLoopDelay } from "node:perf_hooks";
import readline from "node:readline";

// socket.io-client (and its `ws` transport) come from the PWA's npm install (scripts/setup.sh).
const requireFromPwa = createRequire(new URL("../pwa/node_modules/", import.meta.url));
const { io } = requireFromPwa("socket.io-client");

const NS = "/participant";
const ACK_TIMEOUT_MS = 10_000;
const TICK_MS = 5;
const M_PER_DEG_LAT = 111_320;

let cfg = null;
let phones = [];
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const log = (msg) => process.stderr.write(`[phones ${cfg?.worker ?? "?"}] ${msg}\n`);
const nowMs = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Seeded PRNG (mulberry32): uniform floats in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool(items, limit, fn) {
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Opens a /participant socket (its own WebSocket) and resolves once connected. */
function openSocket(token) {
  return new Promise((resolve, reject) => {
    const socket = io(cfg.url + NS, {
      auth: { token },
      transports: ["websocket"],
      forceNew: true, // one connection per phone, as on real phones
      reconnection: false,
      timeout: 20_000,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

class Walker {
  constructor(phone, rng) {
    this.lon = phone.lon;
    this.lat = phone.lat;
    this.heading = rng() * 2 * Math.PI;
    this.rng = rng;
    this.lastAt = null;
    this.box = phone.box ?? cfg.box;
  }

  /** The next fix after walking since the last one; stays inside cfg.box. */
  step(t) {
    const dt = this.lastAt === null ? 0 : (t - this.lastAt) / 1000;
    this.lastAt = t;
    this.heading += (this.rng() - 0.5) * 0.8;
    const d = cfg.speed_mps * dt;
    const mPerDegLon = M_PER_DEG_LAT * Math.cos((this.lat * Math.PI) / 180);
    let lon = this.lon + (d * Math.sin(this.heading)) / mPerDegLon;
    let lat = this.lat + (d * Math.cos(this.heading)) / M_PER_DEG_LAT;
    const [w, s, e, n] = this.box;
    if (lon < w || lon > e) {
      this.heading = -this.heading;
      lon = Math.min(e, Math.max(w, lon));
    }
    if (lat < s || lat > n) {
      this.heading = Math.PI - this.heading;
      lat = Math.min(n, Math.max(s, lat));
    }
    this.lon = lon;
    this.lat = lat;
    return { lat, lon, accuracy_m: Math.round((5 + this.rng() * 20) * 10) / 10, at: Date.now() };
  }
}

async function connectAll() {
  const t0 = nowMs();
  const failures = {};
  await pool(phones, cfg.connect_concurrency, async (phone) => {
    try {
      phone.socket = await openSocket(phone.token);
      const snap = await phone.socket.timeout(ACK_TIMEOUT_MS).emitWithAck("join_mob", { mob: cfg.mob });
      if (snap.error) throw new Error(snap.error.code);
      phone.socket.on("disconnect", (reason) => {
        phone.dropped = reason;
      });
    } catch (err) {
      phone.socket = null;
      const key = String(err?.message ?? err);
      failures[key] = (failures[key] ?? 0) + 1;
    }
  });
  const connected = phones.filter((p) => p.socket).length;
  out({ event: "connected", connected, failures, seconds: (nowMs() - t0) / 1000 });
}

/** Open-loop report_location at `rate` per second for `seconds`, round-robin over phones. */
async function run({ rate, seconds, tag, event = "report_location" }) {
  const live = phones.filter((p) => p.socket && !p.dropped);
  const latencies = [];
  const lags = [];
  const errors = {};
  const reasons = {};
  const zones = {};
  let sent = 0;
  let acked = 0;
  let timeouts = 0;
  let next = 0;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const start = nowMs();
  const end = start + seconds * 1000;
  const total = Math.floor(rate * seconds);
  await new Promise((resolve) => {
    let pending = 0;
    let finished = false;
    const maybeDone = () => {
      if (finished && pending === 0) resolve();
    };
    const tick = () => {
      const t = nowMs();
      const due = Math.min(total, Math.floor(((t - start) / 1000) * rate));
      while (sent < due) {
        const scheduled = start + (sent / rate) * 1000;
        lags.push(t - scheduled);
        const phone = live[next++ % live.length];
        const fix = event === "report_location" ? phone.walker.step(Date.now()) : { t0: Date.now() };
        const sentAt = nowMs();
        sent += 1;
        pending += 1;
        const seq = (phone.seq = (phone.seq ?? 0) + 1);
        phone.socket.timeout(ACK_TIMEOUT_MS).emit(event, fix, (err, ack) => {
          pending -= 1;
          if (err) {
            timeouts += 1;
            // The server may still have taken it: it may legitimately be the stored one.
            if (event === "report_location") (phone.doubt ??= []).push([seq, fix.lat, fix.lon, fix.accuracy_m]);
          } else if (ack?.error) {
            errors[ack.error.code] = (errors[ack.error.code] ?? 0) + 1;
          } else {
            acked += 1;
            latencies.push(nowMs() - sentAt);
            zones[ack.zone] = (zones[ack.zone] ?? 0) + 1;
            if (ack.counted === false) {
              reasons[ack.reason] = (reasons[ack.reason] ?? 0) + 1;
            } else {
              if (event === "report_location" && seq > (phone.lastSeq ?? 0)) {
                phone.lastCounted = [fix.lat, fix.lon, fix.accuracy_m];
                phone.lastSeq = seq;
              }
            }
          }
          maybeDone();
        });
      }
      if (sent >= total || t >= end) {
        finished = true;
        maybeDone();
        return;
      }
      setTimeout(tick, TICK_MS);
    };
    tick();
  });
  const wall = (nowMs() - start) / 1000;
  loop.disable();
  const cpu = process.cpuUsage(cpu0);
  out({
    event: "ran",
    tag,
    phones: live.length,
    dropped: phones.filter((p) => p.dropped).length,
    sent,
    acked,
    timeouts,
    errors,
    reasons,
    zones,
    wall_s: wall,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    latencies_ms: latencies,
    lag_p99_ms: percentile(lags, 99),
    loop_delay_p99_ms: loop.percentile(99) / 1e6,
  });
}

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** New participants end to end: POST join, socket connect, join_mob ack, each step timed. */
async function joins({ count, concurrency }) {
  const steps = { post: [], connect: [], join_mob: [], total: [] };
  const failures = {};
  const sockets = [];
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  await pool(
    Array.from({ length: count }, (_, i) => i),
    concurrency,
    async (i) => {
      try {
        const a = nowMs();
        const r = await fetch(`${cfg.url}/api/mobs/${cfg.mob}/participants`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ nickname: `Joiner ${cfg.worker}-${i}` }),
        });
        const body = await r.json();
        if (r.status !== 201) throw new Error(body?.error?.code ?? `http_${r.status}`);
        const b = nowMs();
        const socket = await openSocket(body.token);
        sockets.push(socket);
        const c = nowMs();
        const snap = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("join_mob", { mob: cfg.mob });
        if (snap.error) throw new Error(snap.error.code);
        const d = nowMs();
        steps.post.push(b - a);
        steps.connect.push(c - b);
        steps.join_mob.push(d - c);
        steps.total.push(d - a);
      } catch (err) {
        const key = String(err?.message ?? err);
        failures[key] = (failures[key] ?? 0) + 1;
      }
    },
  );
  const wall = (nowMs() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  for (const socket of sockets) socket.close();
  out({ event: "joined", steps, failures, wall_s: wall, cpu_s: (cpu.user + cpu.system) / 1e6 });
}

async function handle(msg) {
  switch (msg.cmd) {
    case "config":
      cfg = { connect_concurrency: 50, speed_mps: 1.2, ...msg };
      phones = (cfg.phones ?? []).map((p, i) => ({
        ...p,
        walker: new Walker(p, mulberry32(cfg.seed * 1_000_003 + i)),
      }));
      out({ event: "configured", phones: phones.length });
      break;
    case "connect":
      await connectAll();
      break;
    case "run":
      await run(msg);
      break;
    case "joins":
      await joins(msg);
      break;
    case "last":
      // Each phone's last acknowledged fix, and any later one whose ack never came.
      out({
        event: "last",
        fixes: Object.fromEntries(
          phones
            .filter((p) => p.lastCounted)
            .map((p) => [
              p.id,
              {
                acked: p.lastCounted,
                later: (p.doubt ?? []).filter((d) => d[0] > p.lastSeq).map((d) => d.slice(1)),
              },
            ]),
        ),
      });
      break;
    case "quit":
      for (const phone of phones) phone.socket?.close();
      await sleep(100);
      process.exit(0);
      break;
    default:
      log(`unknown command ${msg.cmd}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on("line", (line) => {
  if (!line.trim()) return;
  const msg = JSON.parse(line);
  queue = queue.then(() => handle(msg)).catch((err) => {
    log(err?.stack ?? String(err));
    out({ event: "error", message: String(err?.message ?? err) });
  });
});
rl.on("close", () => queue.then(() => process.exit(0)));
