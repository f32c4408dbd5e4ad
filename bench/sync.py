"""The synchronized moment: how close to GO do thousands of phones fire, on real processes?

Usage: .venv/bin/python -m bench.sync [--write]   (write docs/BENCHMARKS.md's section)
       [--cases 1x5000,2x10000,late,fanout,fanout-stock]
       [--phones-per-process 500] [--lead-s 180] [--database postgis|sqlite]
       [--experiment NAME --clock '{"finalIntervalMs": 2000}']

The phones run the PWA's own clock configuration, ``CLOCK_CONFIG`` of pwa/js/clock.js, as it
is (read through Node and printed in the report). ``--experiment NAME --clock JSON`` runs
other settings as a named experiment: its report goes to its own section
(``sync-experiment-NAME``), never to the ``sync`` table.

Each case starts fresh real server processes (``python -m server``; for ``2xN``
``python -m server --workers 2 --redis-url …``: two processes on one port, sharing a PostGIS
database and Redis as the Socket.IO message queue, on a pub/sub channel of the case's own),
creates an organizer, a published mob over a park with tasks, and N phones
in separate Node processes (``bench/sim/run.mjs``: the PWA's own ``pwa/js/clock.js`` and the
socket.io-client over WebSocket). Each phone's wall clock is off by a random offset (uniform
±10 min) and every message pays a random delay of 0–80 ms each way, drawn per message and
per direction. Then:

1. the phones join over REST (``POST /api/mobs/{id}/participants``): the join rate;
2. they connect ``/participant`` and ``join_mob``: the connect rate, and the server RSS
   before and after (memory per connected phone);
3. they start ClockSync as the PWA does (a burst, then single round trips on the
   CLOCK_CONFIG schedule), at random moments over a spread so the server sees a steady load;
4. the organizer starts the mob now (``POST /api/mobs/{id}/start-now {lead_s}``), so the
   phones wait ``--lead-s`` for GO, sampling as the PWA does meanwhile; every
   phone arms ``clock.fireAt(go_at_ms)`` on the new timeline and records, on the machine's
   true clock (``Date.now()`` without the fake offset, the server's own clock source), when
   it fired locally and when the server's ``phase: action`` push reached it after its
   simulated downlink delay (fire-on-receipt).

Probe phones (``--probe-phones``, 100): that many of each case's phones run in a Node process
of their own at a higher CPU priority, so their timers run when due, as on a phone with its
own CPU; their local firing is the phone's figure. The crowd shares the two cores with the
servers, and at T its thousands of timers fall due at once while the server sends the GO push:
its local firing (reported beside it) includes the harness's own lateness.

Reported: p50/p99/max of |fire − T| for both, the fan-out (when the GO push reached the last
phone), missing phones (never fired / never got the push), join and connect rates, memory
per connection. ``fanout`` repeats the one-process case without the added delays and sends
``--prompts`` announcements after GO: the time from the server stamping a prompt to the
last of the phones receiving it; ``fanout-stock`` the same with ``DIRECT_WS_WRITES=false``
(python-socketio's stock emit path), to be read side by side. Both also give the loopback
figure: local firing without added delays. ``late`` (``late:<phones>``): the phones start
their clock only ``--late-s`` (30) before GO (the late joiner).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.common import ROOT, git_revision, machine, write_section
from support.db import PG_ADMIN_URL, Database
from support.organizer import Organizer
from support.park import PARK
from support.server import ServerProcess, cpu_seconds

PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", PG_ADMIN_URL)
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
NODE = shutil.which("node") or "node"
# The Node processes collect their garbage this long before GO (then stay quiet).
GC_BEFORE_GO_S = 3.0
SIM = ROOT / "bench" / "sim" / "run.mjs"

TARGETS = {  # issue 16
    "local_p99_ms": 20.0,
    "ratio": 10.0,
    "loopback_p99_ms": 5.0,
    "late_p99_ms": 30.0,
    "fanout_p99_ms": 250.0,
    "kib_per_conn": 70.0,
    "connect_per_s": 500.0,
}


def clock_config() -> dict:
    """The PWA's CLOCK_CONFIG, as pwa/js/clock.js exports it (read through Node)."""
    script = (
        "import(process.argv[1]).then((m) => process.stdout.write(JSON.stringify(m.CLOCK_CONFIG)))"
    )
    out = subprocess.run(
        [NODE, "-e", script, (ROOT / "pwa" / "js" / "clock.js").as_uri()],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def progress(msg: str) -> None:
    print(f"[bench.sync {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def now_ms() -> float:
    return time.time() * 1000


# --- database, Redis and server processes ----------------------------------------------------


def redis_url_for_case(db_number: int) -> str:
    """A Redis database for one case, emptied first."""
    import redis

    url = f"{REDIS_BASE}/{db_number}"
    redis.Redis.from_url(url).flushdb()
    return url


def case_server(
    database_url: str, log_dir: Path, name: str, workers: int = 1, redis_url: str = "", **env
) -> ServerProcess:
    """``python -m server`` on one port (its output goes to a log file). With ``workers`` > 1
    it is started as in production, ``--workers N --redis-url URL``: a supervisor and N
    server processes on the same port (SO_REUSEPORT), joined by Redis."""
    env = {
        "MAX_CONNECTIONS": "12000",
        "RATE_LIMIT_ENABLED": "false",  # every phone comes from 127.0.0.1
        # ... and so does every WebSocket: lift the per-address socket cap (real phones
        # have their own addresses; the cap guards one address flooding a process).
        "SOCKET_MAX_PER_ADDRESS": "100000",
        **env,
    }
    return ServerProcess(
        database_url,
        output=log_dir / f"{name}.log",
        # test settings: no access log, warnings only
        base_env={"GOODMOB_ENV": "test", "SECRET_KEY": "bench-secret-" + "z" * 32},
        workers=workers,
        redis_url=redis_url,
        cwd=ROOT,
        **env,
    )


# --- machine load ---------------------------------------------------------------------------


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_share(window_s: float = 2.0) -> float:
    """Share of all cores busy over the next ``window_s`` seconds (0..1)."""
    b0, t0 = _busy_jiffies()
    time.sleep(window_s)
    b1, t1 = _busy_jiffies()
    return (b1 - b0) / max(1, t1 - t0)


def wait_quiet(max_busy: float, timeout_s: float) -> float:
    """Wait until the machine is mostly idle (other people's jobs share it); the last share."""
    deadline = time.monotonic() + timeout_s
    share = busy_share()
    while share > max_busy and time.monotonic() < deadline:
        progress(f"machine {share:.0%} busy with other work; waiting for ≤ {max_busy:.0%}")
        time.sleep(10)
        share = busy_share(3.0)
    return share


def _pids_matching(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_text():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


class LoadMeter:
    """CPU used by the machine, by our processes and by everything else, during a case."""

    def __init__(self):
        self.start = time.monotonic()
        self.b0, self.t0 = _busy_jiffies()

    def finish(self, our_cpu_s: float) -> dict:
        b1, t1 = _busy_jiffies()
        elapsed = time.monotonic() - self.start
        cores = os.cpu_count() or 1
        busy_s = (b1 - self.b0) / max(1, t1 - self.t0) * elapsed * cores
        return {
            "elapsed_s": elapsed,
            "busy_cores": busy_s / elapsed,
            "ours_cores": our_cpu_s / elapsed,
            "others_cores": max(0.0, busy_s - our_cpu_s) / elapsed,
        }


# --- the Node phone processes ----------------------------------------------------------------


PROBE_NICE = -10


def _raise_priority() -> None:  # in the child, before exec
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, PROBE_NICE)


class Fleet:
    """Node processes of simulated phones; their JSON lines arrive on one queue."""

    def __init__(self, configs: list[dict], log_dir: Path):
        self.events: queue.Queue = queue.Queue()
        self.procs = []
        self.latest: dict[int, dict] = {}
        for cfg in configs:
            err = open(log_dir / f"sim-{cfg['process']}.log", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [NODE, "--expose-gc", str(SIM), json.dumps(cfg)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
                preexec_fn=_raise_priority if cfg.get("probe") else None,
            )
            proc._err = err
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc) -> None:
        for line in proc.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                progress(f"sim: {line.strip()[:200]}")
        self.events.put({"event": "eof", "pid": proc.pid})

    def send(self, cmd: dict) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.stdin.write(json.dumps(cmd) + "\n")
                proc.stdin.flush()

    def collect(self, event: str, timeout_s: float, on_progress=None) -> list[dict]:
        """One ``event`` line from every process (fewer if some died or time ran out)."""
        got: dict[int, dict] = {}
        deadline = time.monotonic() + timeout_s
        alive = len(self.procs)
        while len(got) < alive and time.monotonic() < deadline:
            try:
                msg = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if msg.get("event") == "eof":
                alive -= 1
                continue
            if msg.get("event") == "progress":
                self.latest[msg["process"]] = msg
                if on_progress:
                    on_progress(self.totals())
            elif msg.get("event") == event:
                got[msg["process"]] = msg
        return [got[k] for k in sorted(got)]

    def totals(self) -> dict:
        keys = ("tokens", "connected", "joined", "synced", "fired", "go", "errors", "disconnects")
        return {k: sum(p.get(k, 0) for p in self.latest.values()) for k in keys}

    def drain_progress(self) -> dict:
        while True:
            try:
                msg = self.events.get_nowait()
            except queue.Empty:
                return self.totals()
            if msg.get("event") == "progress":
                self.latest[msg["process"]] = msg

    def stop(self) -> None:
        self.send({"cmd": "exit"})
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc._err.close()


# --- REST calls of the organizer -------------------------------------------------------------


def published_mob(org: Organizer, places: int) -> dict:
    """A published mob over the test park with room for ``places`` phones."""
    mob = org.create_mob(
        PARK, title="Synchronized moment bench", action="Raise your hand", duration_s=120
    )
    tasks = org.generate_tasks(mob["id"], 40, "wave", capacity=1000, timeout=30)
    capacity = 1000 * len(tasks["features"])
    if capacity < places:
        raise RuntimeError(f"only {capacity} places for {places} phones")
    return org.publish(mob["id"])


# --- one case ---------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    servers: int
    phones: int
    delays: bool = True
    prompts: int = 0
    late: bool = False  # the phones start their clock only --late-s before GO
    direct_writes: bool = True  # DIRECT_WS_WRITES of the server processes


@dataclass
class Options:
    database: str = "postgis"
    # Few enough phones per Node process that its own timer lateness stays well under the
    # target (1,250 per process gave fireAt lateness p99 24 ms at 5,000 phones; issue 16).
    phones_per_process: int = 500
    # Probe phones: this many of each case's phones run in a Node process of their own at a
    # higher CPU priority (nice PROBE_NICE), so that their timers fire when due, as on a phone
    # that has its own CPU, while the crowd shares two cores with the servers and each other.
    # They are ordinary phones otherwise (same joins, clock, delays, server); their local
    # firing is the phone's figure, the crowd's is reported beside it.
    probe_phones: int = 100
    # The phones' first bursts spread so each server process sees about this many
    # time_sync/s while they start (phones arriving over time, not all in one second).
    burst_rate: float = 1500.0
    lead_s: int = 180
    late_s: float = 30.0
    clock: dict = field(default_factory=dict)  # CLOCK_CONFIG overrides: experiments only
    experiment: str = ""
    connect_concurrency: int = 128
    join_concurrency: int = 6
    seed: int = 1
    prompts: int = 20
    max_busy: float = 0.15  # wait for the machine to be this idle before each case
    quiet_timeout_s: float = 1800.0
    raw_dir: str | None = None
    extra: dict = field(default_factory=dict)


def _span_rate(n: int, lines: list[dict]) -> float:
    first = min(x["first"] for x in lines if x.get("first"))
    last = max(x["last"] for x in lines if x.get("last"))
    return n / max(1e-3, (last - first) / 1000)


def _stats(values) -> dict:
    a = np.abs(np.asarray(values, dtype=float))
    if a.size == 0:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan, "n": 0}
    return {
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "n": int(a.size),
    }


def run_case(case: Case, opt: Options, log_dir: Path, redis_db: int) -> dict:
    progress(f"case {case.name}: {case.phones:,} phones, {case.servers} server process(es)")
    delays = 80 if case.delays else 0
    burst = {**clock_config(), **opt.clock}["burstSamples"]
    if opt.max_busy < 1:
        wait_quiet(opt.max_busy, opt.quiet_timeout_s)
    if case.servers > 1 and opt.database == "sqlite":
        raise SystemExit(f"case {case.name}: several server processes need --database postgis")
    meter = LoadMeter()
    db = Database(opt.database, admin_url=PG_ADMIN, prefix="goodmob_bench_")
    servers: list[ServerProcess] = []
    fleet = None
    try:
        redis_url, env = "", {}
        if case.servers > 1:
            redis_url = redis_url_for_case(redis_db)
            # Pub/sub channels are shared by every Redis database: one of our own, so that
            # other Good Mob servers on this Redis (tests, a demo) neither see nor send ours.
            env["REDIS_CHANNEL"] = f"goodmob-bench-{secrets.token_hex(4)}"
        if not case.direct_writes:
            env["DIRECT_WS_WRITES"] = "false"
        server = case_server(
            db.url, log_dir, f"{case.name}-server", case.servers, redis_url, **env
        ).start(timeout_s=90)
        servers.append(server)
        cpu_start = _cpu(servers)
        org = Organizer(server.url, timeout=30).sign_up(
            email=f"bench-{secrets.token_hex(4)}@example.org",
            password="bench password",
            name="Bench",
        )
        mob = published_mob(org, case.phones)
        progress(f"mob {mob['id']} published; server processes {server.pids()} on {server.port}")

        # The phones' first bursts spread over `spread_s` (a late joiner's over 2 s).
        spread_s = case.phones * burst / (opt.burst_rate * case.servers)
        if case.late:
            spread_s = 2.0
        probes = opt.probe_phones if case.phones >= 4 * opt.probe_phones else 0
        crowd = case.phones - probes
        n_proc = max(1, math.ceil(crowd / opt.phones_per_process))
        per = math.ceil(crowd / n_proc)
        slots = [(k * per, min(per, crowd - k * per)) for k in range(n_proc)]
        if probes:
            slots.append((crowd, probes))
        configs = []
        for k, (first, count) in enumerate(slots):
            configs.append(
                {
                    "mode": "bench",
                    "process": k,
                    "rest_url": servers[k % len(servers)].url,
                    "socket_urls": [s.url for s in servers],
                    "mob": mob["id"],
                    "phones": count,
                    "first_index": first,
                    "seed": opt.seed,
                    "max_up_ms": delays,
                    "max_down_ms": delays,
                    "clock": opt.clock,
                    "join_concurrency": opt.join_concurrency,
                    "connect_concurrency": max(4, opt.connect_concurrency // n_proc),
                    "probe": bool(probes) and k == n_proc,
                    **opt.extra,
                }
            )
        fleet = Fleet(configs, log_dir)
        probe_nice = None
        if probes:
            probe_nice = os.getpriority(os.PRIO_PROCESS, fleet.procs[-1].pid)
            progress(f"{probes} probe phones in their own Node process at nice {probe_nice}")

        def show(t):
            progress(
                "  " + ", ".join(f"{k} {v:,}" for k, v in t.items() if v or k in ("fired", "go"))
            )

        t0 = time.monotonic()
        tokens = fleet.collect("tokens", 600, on_progress=_throttled(show))
        n_tokens = sum(x["ok"] for x in tokens)
        join_rate = _span_rate(n_tokens, tokens)
        progress(
            f"{n_tokens:,} joined over REST in {time.monotonic() - t0:.1f} s ({join_rate:.0f}/s)"
        )

        cpu = {"rest_join": _cpu(servers) - cpu_start}
        node_cpu_tokens = sum(x["cpu_ms"] for x in tokens) / 1000
        rss_before = sum(s.rss_kb() for s in servers)
        mark = _cpu(servers)
        fleet.send({"cmd": "connect"})
        connected = fleet.collect("connected", 600, on_progress=_throttled(show))
        n_conn = sum(x["ok"] for x in connected)
        connect_rate = _span_rate(n_conn, connected)
        progress(f"{n_conn:,} sockets connected at {connect_rate:.0f}/s")
        cpu["connect"], mark = _cpu(servers) - mark, _cpu(servers)
        node_cpu_connect = sum(x["cpu_ms"] for x in connected) / 1000 - node_cpu_tokens
        fleet.send({"cmd": "join"})
        joined = fleet.collect("joined", 600, on_progress=_throttled(show))
        n_joined = sum(x["ok"] for x in joined)
        join_mob_rate = _span_rate(n_joined, joined)
        cpu["join_mob"] = _cpu(servers) - mark
        time.sleep(1.0)
        rss_after = sum(s.rss_kb() for s in servers)
        kb_per_conn = (rss_after - rss_before) / max(1, n_joined)
        progress(
            f"{n_joined:,} join_mob at {join_mob_rate:.0f}/s; server RSS {rss_before / 1024:.0f}"
            f" → {rss_after / 1024:.0f} MiB ({kb_per_conn:.1f} KiB/phone); open sockets per "
            f"server process {servers[0].sockets()}"
        )
        errors = [e for x in tokens + connected + joined for e in x.get("errors", [])]
        n_conn = n_joined

        mark = _cpu(servers)
        if case.late:
            # GO first; the phones start their clocks only late_s before it.
            lead_s = math.ceil(opt.late_s + 15)
            timeline = org.post(f"/mobs/{mob['id']}/start-now", {"lead_s": lead_s})["timeline"]
            go_ms = timeline["go_at_ms"]
            while now_ms() < go_ms - opt.late_s * 1000:
                fleet.drain_progress()
                time.sleep(0.05)
            fleet.send({"cmd": "sync", "spread_ms": int(spread_s * 1000)})
            progress(f"late joiners start their clocks {(go_ms - now_ms()) / 1000:.1f} s before GO")
            cpu["first_sync"], mark = 0.0, _cpu(servers)
        else:
            fleet.send({"cmd": "sync", "spread_ms": int(spread_s * 1000)})
            synced = fleet.collect("synced", spread_s + 300, on_progress=_throttled(show))
            n_synced = sum(x["ok"] for x in synced)
            progress(f"{n_synced:,} synced (spread {spread_s:.0f} s)")
            cpu["first_sync"], mark = _cpu(servers) - mark, _cpu(servers)
            timeline = org.post(f"/mobs/{mob['id']}/start-now", {"lead_s": opt.lead_s})["timeline"]
            go_ms = timeline["go_at_ms"]
        progress(f"start-now: GO in {(go_ms - now_ms()) / 1000:.1f} s")
        # Collect the phones' garbage before GO, not at it (see run.mjs "gc").
        while now_ms() < go_ms - GC_BEFORE_GO_S * 1000:
            fleet.drain_progress()
            time.sleep(0.2)
        fleet.send({"cmd": "gc"})
        gc_ms = max((x["ms"] for x in fleet.collect("gc", 5)), default=math.nan)
        deadline = go_ms + 30_000
        while now_ms() < deadline:
            t = fleet.drain_progress()
            if now_ms() > go_ms + 3000 and t["fired"] >= n_conn and t["go"] >= n_conn:
                break
            time.sleep(0.5)
        cpu["lead_and_go"], mark = _cpu(servers) - mark, _cpu(servers)
        prompts_sent = []
        for _ in range(case.prompts):
            body = org.post(f"/mobs/{mob['id']}/announcements", {"text": "Look up!"})
            prompts_sent.append(body)
            time.sleep(1.0)
        if case.prompts:
            time.sleep(3.0)
        cpu["prompts"] = _cpu(servers) - mark
        fleet.send({"cmd": "report"})
        results = fleet.collect("result", 120)
        phones = [
            {**p, "probe": bool(probes) and r["process"] == n_proc}
            for r in results
            for p in r["phones"]
        ]
        our_cpu = (
            _cpu(servers)
            + sum(cpu_seconds(p.pid) for p in fleet.procs)
            + (sum(cpu_seconds(pid) for pid in _pids_matching(db.name)) if db.name else 0.0)
        )
        load = meter.finish(our_cpu)
        progress(
            f"machine during the case: {load['busy_cores']:.2f} cores busy, "
            f"{load['others_cores']:.2f} of them by other work"
        )
        if opt.raw_dir:
            Path(opt.raw_dir, f"{case.name}.json").write_text(json.dumps(phones))
        return summarize(
            case,
            phones,
            go_ms,
            prompts_sent,
            extra={
                "mob": mob["id"],
                "node_processes": n_proc,
                "join_rate": join_rate,
                "connect_rate": connect_rate,
                "join_mob_rate": join_mob_rate,
                "connected": n_conn,
                "tokens": n_tokens,
                "rss_before_kb": rss_before,
                "rss_after_kb": rss_after,
                "kb_per_conn": kb_per_conn,
                "server_cpu_s": cpu,
                "node_cpu_connect_s": node_cpu_connect,
                "loop_delay_p99_ms": max(r["loop_delay_ms"]["p99"] for r in results),
                "node_rss_mb": sum(r["rss_mb"] for r in results),
                "errors": sorted(set(errors))[:5],
                "delays_ms": delays,
                "late": case.late,
                "late_s": opt.late_s,
                "phones_per_process": per,
                "direct_writes": case.direct_writes,
                "gc_ms": gc_ms,
                "load": load,
                "probes": probes,
                "probe_nice": probe_nice,
            },
        )
    finally:
        if fleet:
            fleet.stop()
        for s in servers:
            s.stop(timeout_s=30)
        db.drop()


def _cpu(servers: list[ServerProcess]) -> float:
    """CPU seconds used so far by all server processes."""
    return sum(s.cpu_seconds() for s in servers)


def _throttled(fn, every_s: float = 5.0):
    last = [0.0]

    def call(arg):
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            fn(arg)

    return call


def summarize(case: Case, phones: list[dict], go_ms: float, prompts: list[dict], extra) -> dict:
    fired = [p for p in phones if p["fire"] is not None]
    wrong_target = sum(1 for p in fired if p["fireTarget"] != go_ms)
    # Local firing of the crowd (every phone but the probes, which are reported apart).
    local = [p["fire"] - go_ms for p in fired if not p.get("probe")]
    recv = [p["recv"] - go_ms for p in phones if p["recv"] is not None]
    arrived = [p["arr"] - go_ms for p in phones if p["arr"] is not None]
    handled = [p["recv"] - go_ms for p in phones if p["recv"] is not None]
    est = [p["est"] for p in fired if p["est"] is not None]
    late = [p["late"] for p in fired if p["late"] is not None]
    bound = [p["bound"] for p in fired if p.get("bound") is not None]
    reqs = [p.get("reqs", 0) for p in phones]
    out = {
        "case": case.name,
        "servers": case.servers,
        "phones": case.phones,
        "local": _stats(local),
        "local_bias_ms": float(np.mean(local)) if local else math.nan,
        "receipt": _stats(recv),
        "arrival": _stats(arrived),
        "estimate": _stats(est),
        "lateness": _stats(late),
        "bound": _stats(bound),
        "requests_per_phone": float(np.mean(reqs)) if reqs else math.nan,
        "missing_local": case.phones - len(fired),
        "missing_receipt": case.phones - len(recv),
        # Fan-out: when the GO push reached the last phone (signed, ms after T).
        "fanout_last_ms": max(arrived) if arrived else math.nan,
        "fanout_last_handled_ms": max(handled) if handled else math.nan,
        "wrong_target": wrong_target,
        "reconnects": sum(p["rc"] for p in phones),
        "sync_failures": sum(p["syncFail"] for p in phones),
        **extra,
    }
    out["ratio"] = out["receipt"]["p99"] / out["local"]["p99"] if local else math.nan
    # The probe phones (their own process at a higher priority): the phone's own figure.
    pf = [p for p in fired if p.get("probe")]
    if pf:
        out["probe_local"] = _stats([p["fire"] - go_ms for p in pf])
        out["probe_estimate"] = _stats([p["est"] for p in pf if p["est"] is not None])
        out["probe_lateness"] = _stats([p["late"] for p in pf if p["late"] is not None])
        out["probe_ratio"] = out["receipt"]["p99"] / out["probe_local"]["p99"]
    if prompts:
        lat_all, last_per_prompt, first_per_prompt, spread = [], [], [], []
        for body in prompts:
            seq, at_ms = body["seq"], body["at_ms"]
            got = [p["ann"].get(str(seq)) for p in phones]
            lat = [g - at_ms for g in got if g is not None]
            lat_all += lat
            if len(lat) == len(phones):
                last_per_prompt.append(max(lat))
                first_per_prompt.append(min(lat))
                spread.append(max(lat) - min(lat))
        out["prompt"] = _stats(lat_all)
        out["prompt_last"] = _stats(last_per_prompt)
        out["prompt_first"] = _stats(first_per_prompt)
        out["prompt_spread"] = _stats(spread)
        out["prompt_complete"] = len(last_per_prompt)
        out["prompts"] = len(prompts)
    return out


# --- report -------------------------------------------------------------------------------------


def _f(x: float, digits: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def _by(runs: list[dict], servers: int, phones: int) -> dict | None:
    for r in runs:
        plain = r["case"] not in ("late", "fanout", "fanout-stock")
        if plain and (r["servers"], r["phones"]) == (servers, phones):
            return r
    return None


def _case(runs: list[dict], name: str) -> dict | None:
    return next((r for r in runs if r["case"] == name), None)


def _config_text(cfg: dict) -> str:
    return (
        f"a burst of {cfg['burstSamples']} round trips, then one every "
        f"{cfg['intervalMs'] / 1000:g} s while GO is pending, every "
        f"{cfg['finalIntervalMs'] / 1000:g} s in its last {cfg['finalWindowMs'] / 1000:g} s, "
        f"none in its last {cfg['quietMs'] / 1000:g} s (each wait ±{cfg['jitter']:.0%}); "
        f"every sample of the last {cfg['windowMs'] / 60000:g} min (≤ {cfg['maxSamples']}) "
        f"bounded at once with a drift of up to {cfg['maxDriftPpm']} ppm fitted"
    )


def markdown(runs: list[dict], opt: Options, argv: list[str]) -> str:
    cmd = " ".join(["`.venv/bin/python -m bench.sync", *argv]).strip() + "`"
    cfg = {**clock_config(), **opt.clock}
    title = "## Synchronized moment (GO on thousands of phones)"
    if opt.experiment:
        title = (
            f"## Experiment `{opt.experiment}`: the synchronized moment with CLOCK_CONFIG + "
            f"`{json.dumps(opt.clock)}` (not what the PWA runs)"
        )
    phones_per = max((r.get("phones_per_process", 0) for r in runs), default=0)
    lines = [
        title,
        "",
        f"{cmd} — machine: {machine()}; revision {git_revision()}, "
        f"{datetime.now(UTC):%Y-%m-%d}; database {opt.database}.",
        "",
        "Real server processes: `python -m server` (two: `python -m server --workers 2 "
        "--redis-url …`, two processes on one port, spread by the kernel (SO_REUSEPORT), "
        "sharing the database and Redis as the Socket.IO message queue); phones in Node "
        f"processes (≤ {phones_per or opt.phones_per_process:,} each) running "
        "`pwa/js/clock.js` with "
        + ("the PWA's own `CLOCK_CONFIG`" if not opt.experiment else "the experiment's settings")
        + f" ({_config_text(cfg)}) and socket.io-client over WebSocket (`bench/sim/`), on the "
        "same 2 cores as the server. Each phone: clock offset uniform ±10 min, every message "
        "delayed 0–80 ms each way (uniform, drawn per message and direction; none in the "
        "fan-out cases). The phones' first bursts are spread so each server process answers "
        f"about {opt.burst_rate:,.0f} `time_sync`/s while they start; then GO is set by "
        f"`start-now` with a {opt.lead_s} s lead, and the phones sample on their schedule "
        "while they wait. `late`: GO is set first and the phones start their clocks only "
        f"{opt.late_s:g} s before it. The Node processes run one garbage collection "
        f"{GC_BEFORE_GO_S:g} s before GO. Errors are |t − T| on the true clock (`Date.now()` "
        "without the fake offset: the server's own clock source), T = `timeline.go_at_ms`. "
        "Local = `clock.fireAt`; receipt = the server's `phase: action` push, handled after "
        "the phone's simulated downlink delay. Fan-out = when the GO push reached the last "
        "phone, ms after T: in its process (before the simulated delay) / handled (after it). "
        "Missing = phones that never fired locally / never got the GO push.",
        "",
        "**The phone and the harness.** A phone fires GO on its own CPU; here thousands of "
        "simulated phones share two cores with the servers, and at T their timers all fall due "
        "at once while the server sends the GO push, so the crowd's timers fire late by "
        "however long the machine takes to run them all (`timer lateness` below). To measure "
        "the phone, "
        f"{opt.probe_phones} of each case's phones (cases of ≥ {4 * opt.probe_phones} phones) "
        f"are probes: ordinary phones in a Node process of their own at nice {PROBE_NICE}, so "
        "their timers run when due, as on a phone with its own CPU. **Local (phone)** is "
        "theirs; **local (crowd)** is every other phone's, on the shared cores.",
        "",
        "| case | server processes | phones | local (phone) p50 / p99 / max ms | local (crowd) "
        "p50 / p99 / max ms | receipt p50 / p99 / max ms | receipt p99 ÷ local p99 (phone / "
        "crowd) | fan-out to the last phone ms | missing local / receipt | connect /s "
        "| server KiB per phone |",
        "|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lo, rc = r["local"], r["receipt"]
        pl = r.get("probe_local", _stats([]))
        lines.append(
            f"| {r['case']} | {r['servers']} | {r['phones']:,} | {_f(pl['p50'])} / "
            f"{_f(pl['p99'])} / {_f(pl['max'])} | {_f(lo['p50'])} / "
            f"{_f(lo['p99'])} / {_f(lo['max'])} | {_f(rc['p50'], 0)} / {_f(rc['p99'], 0)} / "
            f"{_f(rc['max'], 0)} | {_f(r.get('probe_ratio', math.nan))}× / {_f(r['ratio'])}× "
            f"| {_fanout(r)} | {r['missing_local']} / "
            f"{r['missing_receipt']} | {r['connect_rate']:,.0f} | {r['kb_per_conn']:.0f} |"
        )
    lines += [
        "",
        "The phone apart from the harness (same runs): the clock estimate's error at the "
        "moment of firing (`serverNow()` − true time) and the bound the phone stated for it "
        "(`uncertaintyMs`), p50 / p99 ms; the phones' own timer lateness (`fireAt`'s "
        "`lateMs`: the Node process's event loop, not the clock), p50 / p99 ms; the Node "
        "processes' worst event-loop delay p99; `time_sync` round trips per phone; when the "
        "GO push reached the phone's process, before the simulated delay, p50 / p99 / max ms; "
        "CPU used by other work on the machine during the case.",
        "",
        "| case | phones | estimate error | stated bound | timer lateness (probes / all) "
        "| Node loop p99 ms | round trips per phone | push arrival | other work (cores) |",
        "|---|---:|---|---|---|---:|---:|---|---:|",
    ]
    for r in runs:
        e, la, ar = r["estimate"], r["lateness"], r["arrival"]
        bd = r.get("bound", _stats([]))
        pla = r.get("probe_lateness", _stats([]))
        lines.append(
            f"| {r['case']} | {r['phones']:,} | {_f(e['p50'])} / {_f(e['p99'])} "
            f"| {_f(bd['p50'])} / {_f(bd['p99'])} | {_f(pla['p50'])} / {_f(pla['p99'])} "
            f"· {_f(la['p50'])} / {_f(la['p99'])} "
            f"| {_f(r['loop_delay_p99_ms'])} | {_f(r.get('requests_per_phone', math.nan))} "
            f"| {_f(ar['p50'], 0)} / {_f(ar['p99'], 0)} / {_f(ar['max'], 0)} "
            f"| {r['load']['others_cores']:.2f} |"
        )
    for r in runs:
        if not r["case"].startswith("fanout") or not r.get("prompts"):
            continue
        pr, pl = r["prompt"], r["prompt_last"]
        sp, fi = r.get("prompt_spread", _stats([])), r.get("prompt_first", _stats([]))
        path = (
            "direct WebSocket writes (the default)"
            if r.get("direct_writes", True)
            else "python-socketio's stock emit path (`DIRECT_WS_WRITES=false`)"
        )
        lines += [
            "",
            f"**Prompt fan-out, {r['case']}**: {path}; {r['phones']:,} phones, one server "
            f"process, no added delays; other work on the machine "
            f"{r['load']['others_cores']:.2f} cores. {r['prompts']} announcements (1 s apart) "
            f"reached the phones {_f(pr['p50'], 0)} / {_f(pr['p99'], 0)} / {_f(pr['max'], 0)} "
            "ms (p50 / p99 / max over phones × prompts) after the server stamped them; **the "
            f"last phone of each prompt: p50 {_f(pl['p50'], 0)}, p99 {_f(pl['p99'], 0)}, max "
            f"{_f(pl['max'], 0)} ms** ({r['prompt_complete']} of {r['prompts']} prompts "
            f"reached every phone); first → last phone p50 {_f(sp['p50'], 0)}, max "
            f"{_f(sp['max'], 0)} ms; stamp → first phone p50 {_f(fi['p50'], 0)} ms. Server RSS "
            f"{r['rss_before_kb'] / 1024:.0f} → {r['rss_after_kb'] / 1024:.0f} MiB "
            f"({r['kb_per_conn']:.0f} KiB per phone).",
        ]
    lines += ["", *_verdict(runs)]
    return "\n".join(lines)


def _fanout(r: dict) -> str:
    """The GO push at the last phone: in its process / handled after the simulated delay."""
    last, handled = r.get("fanout_last_ms", math.nan), r.get("fanout_last_handled_ms", math.nan)
    return f"{_f(last, 0)} / {_f(handled, 0)}"


def _verdict(runs: list[dict]) -> list[str]:
    """One line per target of issue 16 that these runs measured."""
    t = TARGETS
    out = ["Targets (issue 16):", ""]
    for servers, phones in ((1, 5000), (2, 10000)):
        r = _by(runs, servers, phones)
        if r:
            p99 = r.get("probe_local", _stats([]))["p99"]
            out.append(
                f"- local p99 ≤ {t['local_p99_ms']:.0f} ms at {phones:,} phones on {servers} "
                f"process(es), the phone (probes): {_f(p99)} ms — "
                f"{_ok(p99 <= t['local_p99_ms'])} (the crowd on the shared cores: "
                f"{r['local']['p99']:.1f} ms); 0 missing: {r['missing_local']} — "
                f"{_ok(r['missing_local'] == 0)}"
            )
    # The 10× target is for the crowd that waited; the late joiner has its own target.
    ratios = [
        (r["case"], r.get("probe_ratio", math.nan), r["ratio"])
        for r in runs
        if r["delays_ms"] and not r.get("late")
    ]
    if ratios:
        text = ", ".join(f"{c}: {p:.1f}× (crowd {x:.1f}×)" for c, p, x in ratios)
        ok = all(p >= t["ratio"] for _, p, _ in ratios)
        out.append(f"- receipt p99 ≥ {t['ratio']:.0f}× local p99: {text} — {_ok(ok)}")
    late = _case(runs, "late")
    if late:
        p99 = late["local"]["p99"]
        out.append(
            f"- late joiner (clock started {late.get('late_s', 30):g} s before GO) p99 ≤ "
            f"{t['late_p99_ms']:.0f} ms: {p99:.1f} ms — {_ok(p99 <= t['late_p99_ms'])}"
        )
    for r in runs:
        if r["case"].startswith("fanout"):
            p99 = r["local"]["p99"]
            out.append(
                f"- loopback (no added delay, {r['case']}) local p99 ≤ "
                f"{t['loopback_p99_ms']:.0f} ms: {p99:.1f} ms — "
                f"{_ok(p99 <= t['loopback_p99_ms'])}"
            )
    for r in runs:
        if r["case"].startswith("fanout") and r.get("prompts"):
            p99 = r["prompt_last"]["p99"]
            out.append(
                f"- prompt fan-out to the last of {r['phones']:,} phones ({r['case']}) ≤ "
                f"{t['fanout_p99_ms']:.0f} ms p99: {p99:.0f} ms — "
                f"{_ok(p99 <= t['fanout_p99_ms'])}"
            )
    mem = _case(runs, "fanout") or _by(runs, 1, 5000)
    if mem:
        kib = mem["kb_per_conn"]
        out.append(
            f"- ≤ {t['kib_per_conn']:.0f} KiB of server memory per phone ({mem['case']}): "
            f"{kib:.0f} KiB — {_ok(kib <= t['kib_per_conn'])}"
        )
    return out


def _ok(flag: bool) -> str:
    return "met" if flag else "missed"


CASES = {
    "1x1000": Case("1x1000", 1, 1000),
    "1x5000": Case("1x5000", 1, 5000),
    "2x1000": Case("2x1000", 2, 1000),
    "2x5000": Case("2x5000", 2, 5000),
    "2x10000": Case("2x10000", 2, 10000),
    "late": Case("late", 1, 1000, late=True),
    "fanout": Case("fanout", 1, 5000, delays=False),
    "fanout-stock": Case("fanout-stock", 1, 5000, delays=False, direct_writes=False),
}


def parse_case(name: str) -> Case:
    """``1x5000`` (server processes x phones), ``late[:<phones>]``, ``fanout[:<phones>]``,
    ``fanout-stock[:<phones>]``."""
    if name in CASES:
        return CASES[name]
    base, _, n = name.partition(":")
    if base in ("late", "fanout", "fanout-stock") and n:
        c = CASES[base]
        return Case(base, 1, int(n), delays=c.delays, late=c.late, direct_writes=c.direct_writes)
    servers, _, phones = name.partition("x")
    return Case(name, int(servers), int(phones))


def _shown_args(argv: list[str]) -> list[str]:
    """The command line without the options that only name local files."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--json", "--logs", "--raw", "--from-json"):
            skip = True
        elif not arg.startswith(("--json=", "--logs=", "--raw=", "--from-json=")):
            shown.append(arg)
    return shown


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    ap.add_argument("--cases", default="1x5000,2x10000,late,fanout,fanout-stock")
    ap.add_argument("--database", choices=["postgis", "sqlite"], default="postgis")
    ap.add_argument("--phones-per-process", type=int, default=Options.phones_per_process)
    ap.add_argument(
        "--probe-phones",
        type=int,
        default=Options.probe_phones,
        help="phones in a Node process of their own at a higher CPU priority (0: none)",
    )
    ap.add_argument("--burst-rate", type=float, default=Options.burst_rate)
    ap.add_argument("--lead-s", type=int, default=Options.lead_s)
    ap.add_argument("--late-s", type=float, default=Options.late_s)
    ap.add_argument(
        "--experiment",
        default="",
        help="a named experiment: writes section sync-experiment-NAME, never the sync table",
    )
    ap.add_argument("--clock", default="", help="JSON overrides of CLOCK_CONFIG (experiments)")
    ap.add_argument("--connect-concurrency", type=int, default=Options.connect_concurrency)
    ap.add_argument("--prompts", type=int, default=Options.prompts)
    ap.add_argument("--seed", type=int, default=Options.seed)
    ap.add_argument("--redis-db", type=int, default=9, help="Redis database number to use")
    ap.add_argument("--json", help="also write the raw summaries to this file")
    ap.add_argument(
        "--from-json",
        help="do not run: render (and with --write, write) the summaries of an earlier --json",
    )
    ap.add_argument("--raw", help="also write every phone's record, per case, to this directory")
    ap.add_argument(
        "--max-busy",
        type=float,
        default=Options.max_busy,
        help="before each case wait until at most this share of the CPU is busy (1 = never)",
    )
    ap.add_argument("--logs", help="keep server and simulator logs in this directory")
    args = ap.parse_args(argv)
    clock = json.loads(args.clock) if args.clock else {}
    if clock and not args.experiment:
        ap.error("--clock needs --experiment NAME: the sync table is the PWA's configuration only")
    unknown = set(clock) - set(clock_config())
    if unknown:
        ap.error(f"not CLOCK_CONFIG keys: {sorted(unknown)}")
    opt = Options(
        database=args.database,
        phones_per_process=args.phones_per_process,
        probe_phones=args.probe_phones,
        burst_rate=args.burst_rate,
        lead_s=args.lead_s,
        late_s=args.late_s,
        clock=clock,
        experiment=args.experiment,
        connect_concurrency=args.connect_concurrency,
        seed=args.seed,
        prompts=args.prompts,
        max_busy=args.max_busy,
        raw_dir=args.raw,
    )
    section = f"sync-experiment-{args.experiment}" if args.experiment else "sync"
    if args.raw:
        Path(args.raw).mkdir(parents=True, exist_ok=True)
    if args.from_json:
        runs = json.loads(Path(args.from_json).read_text())
        md = markdown(runs, opt, runs[0].get("argv", []))
        print(md)
        if args.write:
            write_section(section, md)
        return 0
    log_dir = Path(args.logs or tempfile.mkdtemp(prefix="bench-sync-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    progress(f"logs in {log_dir}")
    runs = []
    for name in args.cases.split(","):
        case = parse_case(name.strip())
        if case.name.startswith("fanout"):
            case.prompts = opt.prompts
        runs.append(run_case(case, opt, log_dir, args.redis_db))
        r = runs[-1]
        r["argv"] = _shown_args(argv)
        progress(
            f"case {case.name}: local p50/p99/max {r['local']['p50']:.1f}/{r['local']['p99']:.1f}/"
            f"{r['local']['max']:.1f} ms, receipt {r['receipt']['p50']:.0f}/"
            f"{r['receipt']['p99']:.0f}/{r['receipt']['max']:.0f} ms, GO push at the last "
            f"phone {r['fanout_last_ms']:.0f} ms after T, missing (never fired / no GO push) "
            f"{r['missing_local']}/{r['missing_receipt']}, {r['kb_per_conn']:.1f} KiB/phone"
        )
        if args.json:
            Path(args.json).write_text(json.dumps(runs, indent=1))
    md = markdown(runs, opt, _shown_args(argv))
    print(md)
    if args.write:
        write_section(section, md)
        progress("docs/BENCHMARKS.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
