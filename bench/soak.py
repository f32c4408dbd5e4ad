"""Soak: thousands of phones for many minutes over repeated mobs; nothing lost, nothing leaks.

Usage: .venv/bin/python -m bench.soak [--write]   (write docs/BENCHMARKS.md's section)
       [--phones 2000] [--duration-s 600] [--cycle-s 120] [--servers 2]
       [--report-every-s 5] [--phone-processes 2] [--database postgis|sqlite]

Real server processes (``python -m server``, production settings; with ``--servers 2`` two
processes on two ports joined by Redis, one PostGIS database) and real Socket.IO clients in
Node processes (``bench/soak_phones.mjs``). Every ``--cycle-s`` seconds the organizer creates
a mob over a 600 m square, generates its tasks and publishes it; every phone joins it (REST,
then a new /participant socket and ``join_mob``, spread over ``--join-spread-s``) and leaves
the previous one. ``--start-after-s`` into the cycle the organizer starts it now (GO
``--lead-s`` later, an action of ``--action-s``); during the action every phone confirms one
deed (a client UUID, retried with the same ``deed_id`` until acknowledged). All the time,
every phone reports its location every ``--report-every-s`` (±20 %), walking to its task.

Reported:
- errors: acks with an error, timeouts, HTTP errors, unexpected disconnects (clients), and
  ERROR/Traceback lines in the servers' logs. A call left unanswered because the phone
  itself closed that socket (it moved on to the next mob while a report was in flight) is
  listed as ``abandoned_by_phone``, not counted as the server's;
- lost deeds: deeds acknowledged as stored that the database does not hold (and deeds the
  database holds that were never acknowledged);
- memory: each server's RSS (``/proc/<pid>/status``) at the start of every cycle; growth is
  the last cycle boundary (the end) against the end of the first cycle (after warm-up);
- latency percentiles of every call, and the report_location p99 per 30 s window.

Targets (issue 7): 0 lost deeds, 0 server errors, memory growth under 10 %.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import re
import secrets
import shutil
import signal
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
from support.organizer import ApiError, Organizer
from support.park import box_polygon, square_box
from support.server import ServerProcess, cpu_seconds, redis_env

PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", PG_ADMIN_URL)
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
NODE = shutil.which("node") or "node"
PHONES_JS = ROOT / "bench" / "soak_phones.mjs"
SECRET_KEY = "soak-secret-" + "s" * 40
TARGET_GROWTH = 0.10
KINDS = ("report", "deed_ack", "deed_total", "join_mob", "connect", "rest_join")


def progress(msg: str) -> None:
    print(f"[bench.soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- services ---------------------------------------------------------------------------------


def stored_deeds(db: Database) -> dict[str, list[str]]:
    """mob id → deed ids in the database."""
    from config import load_settings
    from server.infra.db import make_engine

    settings = load_settings({}, env="test", database_url=db.url, secret_key=SECRET_KEY)
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT m.id, d.deed_id FROM deeds d JOIN mobs m ON m.pk = d.mob_pk"
            ).all()
    finally:
        engine.dispose()
    out: dict[str, list[str]] = {}
    for mob_id, deed_id in rows:
        out.setdefault(mob_id, []).append(deed_id)
    return out


def soak_server(database_url: str, log_dir: Path, name: str, **env) -> ServerProcess:
    """One ``python -m server`` process with production settings; output in a log file."""
    env = {
        "LOG_LEVEL": "WARNING",
        "MAX_CONNECTIONS": "12000",
        # Every simulated phone comes from 127.0.0.1: lift the per-address limits (real
        # phones have their own addresses); the per-participant limits stay on.
        "RATE_LIMIT_JOIN_ADDR": "1000000/1",
        "RATE_LIMIT_REPORT_ADDR": "1000000/1",
        "RATE_LIMIT_DEED_ADDR": "1000000/1",
        "SOCKET_MAX_PER_ADDRESS": "100000",  # every phone comes from 127.0.0.1
        **env,
    }
    base = {"GOODMOB_ENV": "production", "SECRET_KEY": SECRET_KEY}
    return ServerProcess(
        database_url, output=log_dir / f"{name}.log", base_env=base, cwd=ROOT, **env
    )


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- phones -------------------------------------------------------------------------------------


class Fleet:
    """Node processes of soak phones; their JSON lines arrive on one queue."""

    def __init__(self, configs: list[dict], log_dir: Path):
        self.events: queue.Queue = queue.Queue()
        self.windows: list[dict] = []
        self.procs = []
        for cfg in configs:
            err = open(log_dir / f"phones-{cfg['process']}.log", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [NODE, str(PHONES_JS), json.dumps(cfg)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
            )
            proc._err = err
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc) -> None:
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                progress(f"phones: {line.strip()[:200]}")
                continue
            if msg.get("event") == "window":
                self.windows.append(msg)
            else:
                self.events.put(msg)
        self.events.put({"event": "eof", "pid": proc.pid})

    def send(self, cmd: dict) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.stdin.write(json.dumps(cmd) + "\n")
                proc.stdin.flush()

    def collect(self, event: str, timeout_s: float, **match) -> list[dict]:
        """One ``event`` line (with the fields in ``match``) from every live process."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout_s
        alive = sum(p.poll() is None for p in self.procs)
        while len(got) < alive and time.monotonic() < deadline:
            try:
                msg = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if msg.get("event") == "eof":
                alive -= 1
            elif msg.get("event") == event and all(msg.get(k) == v for k, v in match.items()):
                got.append(msg)
        return got

    def cpu_s(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        self.send({"cmd": "exit"})
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc._err.close()


def soak_mob(org: Organizer, n: int, opt: Options) -> dict:
    """Mob ``n``: a square zone, its tasks, published; ``places`` = tasks × capacity."""
    mob = org.create_mob(
        box_polygon(square_box(opt.zone_m)),
        title=f"Soak mob {n}",
        action="Pick up the litter",
        duration_s=opt.action_s,
    )
    tasks = org.generate_tasks(mob["id"], opt.spacing_m, "litter", opt.capacity)
    mob["places"] = opt.capacity * len(tasks["features"])
    org.publish(mob["id"])
    return mob


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Options:
    phones: int = 2000
    duration_s: float = 600
    cycle_s: float = 120
    servers: int = 2
    phone_processes: int = 2
    report_every_s: float = 5
    join_spread_s: float = 40
    start_after_s: float = 50
    lead_s: int = 15
    action_s: int = 45
    zone_m: float = 600
    spacing_m: float = 30
    capacity: int = 8
    database: str = "postgis"
    redis_db: int = 7
    seed: int = 7
    write: bool = False
    section: str = "soak"
    title: str = "Soak"
    from_raw: str = ""
    argv: list[str] = field(default_factory=list)


class Sampler:
    """Every server's RSS and CPU, and the machine's busy share, every ``every_s``."""

    def __init__(self, servers: list[ServerProcess], every_s: float = 5):
        self.servers = servers
        self.rows: list[dict] = []
        self.stop = threading.Event()
        self.every_s = every_s
        self.t0 = time.monotonic()
        threading.Thread(target=self._run, daemon=True).start()

    def take(self) -> dict:
        rss_mb = [s.rss_kb() / 1024 for s in self.servers]
        row = {"t": time.monotonic() - self.t0, "rss_mb": rss_mb}
        row["cpu_s"] = [s.cpu_seconds() for s in self.servers]
        self.rows.append(row)
        return row

    def _run(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                self.take()
            except OSError:
                return


def run(opt: Options, log_dir: Path) -> dict:
    db = Database(opt.database, admin_url=PG_ADMIN, prefix="goodmob_soak_")
    servers: list[ServerProcess] = []
    fleet = None
    try:
        env = {"START_NOW_MIN_LEAD_S": "1", "DURATION_MIN_S": "1"}
        if opt.servers > 1:
            env.update(redis_env(f"{REDIS_BASE}/{opt.redis_db}", "goodmob-soak"))
        for k in range(opt.servers):
            server = soak_server(db.url, log_dir, f"server{k}", **env)
            if k == 0:
                server.migrate()
            servers.append(server.start(timeout_s=60))
        progress(f"{opt.servers} server process(es) on ports {[s.port for s in servers]}")
        org = Organizer(
            servers[0].url,
            timeout=60,
            retries=5,  # 6 tries: a 5xx or a network error (an overloaded server) is retried
            on_retry=lambda _m, path, what: progress(
                f"POST {path}: {what.split(':')[1]}; retrying"
            ),
        ).sign_up(email=f"soak-{secrets.token_hex(4)}@example.org", name="Soak")
        sampler = Sampler(servers)
        idle = sampler.take()
        per = math.ceil(opt.phones / opt.phone_processes)
        configs = [
            {
                "process": k,
                "first_index": k * per,
                "phones": min(per, opt.phones - k * per),
                "rest_urls": [s.url for s in servers],
                "box": square_box(opt.zone_m * 0.9),
                "report_every_ms": int(opt.report_every_s * 1000),
                "seed": opt.seed,
            }
            for k in range(opt.phone_processes)
        ]
        fleet = Fleet(configs, log_dir)
        busy0, total0 = machine_jiffies()
        fleet_cpu0 = fleet.cpu_s()
        t_start = time.monotonic()
        cycles = max(1, round(opt.duration_s / opt.cycle_s))
        mobs, boundaries, switches = [], [], []
        for n in range(cycles):
            t0 = t_start + n * opt.cycle_s
            time.sleep(max(0.0, t0 - time.monotonic()))
            boundaries.append(sampler.take())
            mob = soak_mob(org, n + 1, opt)
            if mob["places"] < opt.phones:
                raise RuntimeError(f"only {mob['places']} places for {opt.phones} phones")
            mobs.append(mob)
            fleet.send({"cmd": "mob", "mob": mob["id"], "spread_ms": int(opt.join_spread_s * 1e3)})
            time.sleep(max(0.0, t0 + opt.start_after_s - time.monotonic()))
            try:
                org.start_now(mob["id"], opt.lead_s)
            except ApiError as exc:
                progress(f"mob {n + 1}: start-now failed ({exc}); this mob has no action")
            got = fleet.collect(
                "switched", max(1.0, t0 + opt.cycle_s - 1 - time.monotonic()), mob=mob["id"]
            )
            switches.append(got)
            joined = sum(g["ok"] for g in got)
            progress(
                f"mob {n + 1}/{cycles} {mob['id']}: {joined:,} phones joined; server RSS "
                f"{', '.join(f'{r:.0f}' for r in boundaries[-1]['rss_mb'])} MB; "
                f"{_window_line(fleet.windows)}"
            )
        time.sleep(max(0.0, t_start + cycles * opt.cycle_s - time.monotonic()))
        end = sampler.take()
        busy1, total1 = machine_jiffies()
        fleet_cpu = fleet.cpu_s() - fleet_cpu0
        fleet.send({"cmd": "report"})
        results = fleet.collect("result", 120)
        sampler.stop.set()
        stored = stored_deeds(db)
    finally:
        if fleet:
            fleet.stop()
        for server in servers:
            server.stop(timeout_s=20)
        db.drop()
    errors_in_logs = [line for s in servers for line in s.errors()]
    warnings_in_logs = [line for s in servers for line in s.warnings()]
    return {
        "idle": idle,
        "boundaries": boundaries,
        "end": end,
        "samples": sampler.rows,
        "results": results,
        "switches": switches,
        "windows": fleet.windows,
        "stored": stored,
        "mobs": [m["id"] for m in mobs],
        "places": mobs[0]["places"] if mobs else 0,
        "log_errors": errors_in_logs,
        "log_warnings": warnings_in_logs,
        "organizer_errors": org.errors,
        "elapsed_s": end["t"] - boundaries[0]["t"],
        "machine_busy": (busy1 - busy0) / max(1, total1 - total0),
        "server_cpu_s": [e - b for e, b in zip(end["cpu_s"], boundaries[0]["cpu_s"], strict=True)],
        "fleet_cpu_s": fleet_cpu,
    }


def _window_line(windows: list[dict]) -> str:
    if not windows:
        return "no latency window yet"
    latest: dict[int, dict] = {}
    for w in windows:
        latest[w["process"]] = w
    n = sum(w["kinds"].get("report", {}).get("n", 0) for w in latest.values())
    p99 = max((w["kinds"].get("report", {}).get("p99") or 0) for w in latest.values())
    errs = sum(sum(w["errors"].values()) for w in latest.values())
    conn = sum(w["connected"] for w in latest.values())
    return (
        f"last window: {conn:,} connected, {n:,} reports, report p99 ≤ {p99:.0f} ms, {errs} errors"
    )


# --- summary ------------------------------------------------------------------------------------


def summarize(raw: dict, opt: Options) -> dict:
    samples = {k: [] for k in KINDS}
    errors: dict[str, int] = {}
    acked: dict[str, set] = {}
    unacked: dict[str, set] = {}
    rejected: dict[str, int] = {}
    for key, n in raw.get("organizer_errors", {}).items():
        errors[key] = errors.get(key, 0) + n
    for r in raw["results"]:
        for k in KINDS:
            samples[k] += r["samples"].get(k, [])
        for key, n in r["errors"].items():
            errors[key] = errors.get(key, 0) + n
        for mob_id, book in r["deeds"].items():
            acked.setdefault(mob_id, set()).update(book["acked"])
            unacked.setdefault(mob_id, set()).update(book["unacked"])
            for reason, n in book["rejected"].items():
                rejected[reason] = rejected.get(reason, 0) + n
    stored = {m: set(ids) for m, ids in raw["stored"].items()}
    all_acked = set().union(*acked.values()) if acked else set()
    all_stored = set().union(*stored.values()) if stored else set()
    lost = all_acked - all_stored
    extra = all_stored - all_acked
    duplicates = sum(len(ids) for ids in raw["stored"].values()) - len(all_stored)
    latency = {}
    for k, v in samples.items():
        if v:
            a = np.asarray(v)
            latency[k] = {
                "n": len(v),
                "p50": float(np.percentile(a, 50)),
                "p95": float(np.percentile(a, 95)),
                "p99": float(np.percentile(a, 99)),
                "max": float(a.max()),
            }
    # Memory: the end against the end of the first cycle (warm-up), per server process.
    base = raw["boundaries"][1] if len(raw["boundaries"]) > 1 else raw["boundaries"][0]
    growth = [
        (e - b) / b for e, b in zip(raw["end"]["rss_mb"], base["rss_mb"], strict=True) if b > 0
    ]
    peak = [max(row["rss_mb"][i] for row in raw["samples"]) for i in range(opt.servers)]
    server_errors = {k: n for k, n in errors.items() if _server_side(k)}
    per_mob = [
        {
            "mob": m,
            "acked": len(acked.get(m, ())),
            "stored": len(stored.get(m, ())),
            "lost": len(acked.get(m, set()) - stored.get(m, set())),
            "unacked": len(unacked.get(m, ())),
        }
        for m in raw["mobs"]
    ]
    windows = _report_windows(raw["windows"])
    return {
        "latency": latency,
        "errors": errors,
        "server_errors": server_errors,
        "log_errors": raw["log_errors"],
        "log_warnings": _kinds_of(raw["log_warnings"]),
        "calls": sum(v["n"] for k, v in latency.items() if k != "deed_total"),
        "acked": len(all_acked),
        "stored": len(all_stored),
        "lost": len(lost),
        "extra": len(extra),
        "duplicates": duplicates,
        "unacked": sum(len(v) for v in unacked.values()),
        "rejected": rejected,
        "per_mob": per_mob,
        "rss_idle": raw["idle"]["rss_mb"],
        "rss_base": base["rss_mb"],
        "rss_end": raw["end"]["rss_mb"],
        "rss_peak": peak,
        "rss_boundaries": [row["rss_mb"] for row in raw["boundaries"]],
        "growth": growth,
        "windows": windows,
        "elapsed_s": raw["elapsed_s"],
        "machine_busy": raw["machine_busy"],
        "server_cpu_s": raw["server_cpu_s"],
        "fleet_cpu_s": raw["fleet_cpu_s"],
        "joined": [sum(g["ok"] for g in got) for got in raw["switches"]],
        "commit": raw.get("commit", git_revision()),
        "date": raw.get("date", f"{datetime.now(UTC):%Y-%m-%d}"),
    }


def _kinds_of(lines: list[str]) -> dict[str, int]:
    """Log lines counted by their text without timestamps and numbers."""
    kinds: dict[str, int] = {}
    for line in lines:
        key = re.sub(r"[\d.:,-]+", "#", line.split("WARNING", 1)[-1])[:120].strip()
        kinds[key] = kinds.get(key, 0) + 1
    return kinds


def _server_side(key: str) -> bool:
    """Client-seen errors that are the server's fault (5xx, internal_error, no answer)."""
    kind, _, what = key.partition(":")
    return (
        what.startswith("http_5")
        or what in ("internal_error", "timeout", "dropped")
        or (kind == "socket" and what not in ("disconnect_io_client_disconnect",))
    )


def _report_windows(windows: list[dict]) -> list[dict]:
    """report_location p99 (worst phone process) and error count per 30 s window."""
    by_slot: dict[int, list[dict]] = {}
    if not windows:
        return []
    t0 = min(w["at"] for w in windows)
    for w in windows:
        by_slot.setdefault(round((w["at"] - t0) / 30000), []).append(w)
    rows = []
    for slot in sorted(by_slot):
        ws = by_slot[slot]
        rows.append(
            {
                "t_s": slot * 30,
                "reports": sum(w["kinds"].get("report", {}).get("n", 0) for w in ws),
                "p99": max((w["kinds"].get("report", {}).get("p99") or 0) for w in ws),
                "errors": sum(sum(w["errors"].values()) for w in ws),
            }
        )
    return rows


def _ms(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def markdown(s: dict, opt: Options) -> str:
    ok = lambda flag: "✅" if flag else "❌"  # noqa: E731
    worst_growth = max(s["growth"]) if s["growth"] else 0.0
    cmd = ".venv/bin/python -m bench.soak " + " ".join(opt.argv)
    lines = [
        f"## {opt.title}",
        "",
        f"`{cmd.strip()}` — {opt.phones:,} phones for {s['elapsed_s'] / 60:.1f} min "
        f"({len(s['per_mob'])} mobs, a new one every {opt.cycle_s:.0f} s: join over "
        f"{opt.join_spread_s:.0f} s, start-now at {opt.start_after_s:.0f} s with a "
        f"{opt.lead_s} s lead, {opt.action_s} s of action, one deed per phone per mob); every "
        f"phone reports its location every {opt.report_every_s:g} s (±20 %). "
        f"{opt.servers} server process(es) (`python -m server`, GOODMOB_ENV=production"
        f"{', joined by Redis' if opt.servers > 1 else ''}), {opt.database}, "
        f"{opt.phone_processes} Node processes of phones (`bench/soak_phones.mjs`, "
        "socket.io-client over WebSocket), all on this machine.",
        "",
        f"Machine: {machine()}; commit {s['commit']}, {s['date']}. "
        f"The machine was {s['machine_busy']:.0%} busy on average during the run "
        f"(servers {sum(s['server_cpu_s']) / s['elapsed_s']:.2f} cores, phones "
        f"{s['fleet_cpu_s'] / s['elapsed_s']:.2f} cores, the rest PostgreSQL, Redis and "
        "other people's jobs sharing the machine). Server CPU per call answered: "
        f"{sum(s['server_cpu_s']) * 1000 / max(1, s['calls']):.1f} ms "
        f"({s['calls']:,} calls). Throughput: {s['calls'] / s['elapsed_s']:,.0f} calls/s "
        f"answered, of which {s['latency'].get('report', {}).get('n', 0) / s['elapsed_s']:,.0f}"
        f" report_location/s; the phones' schedule asks for "
        f"{opt.phones / opt.report_every_s:,.0f} report_location/s plus "
        f"{3 * opt.phones / opt.join_spread_s:,.0f} calls/s (REST join, connect, join_mob) "
        "while they move to a new mob.",
        *_overload_note(s, opt),
        "",
        "| target | result | |",
        "|---|---|---|",
        f"| 0 lost deeds | {s['lost']} lost of {s['acked']:,} acknowledged "
        f"({s['stored']:,} stored, {s['extra']} stored but never acknowledged, "
        f"{s['duplicates']} duplicates, {s['unacked']} never acknowledged) "
        f"| {ok(s['lost'] == 0)} |",
        f"| 0 server errors | {sum(s['server_errors'].values())} error acks/5xx/timeouts/drops "
        f"seen by phones, {len(s['log_errors'])} ERROR lines in the server logs "
        f"| {ok(not s['server_errors'] and not s['log_errors'])} |",
        f"| memory growth < 10 % | {', '.join(f'{g:+.1%}' for g in s['growth'])} "
        f"(RSS MB per process: idle {_mbs(s['rss_idle'])}, after the first mob "
        f"{_mbs(s['rss_base'])}, end {_mbs(s['rss_end'])}, peak {_mbs(s['rss_peak'])}) "
        f"| {ok(worst_growth < TARGET_GROWTH)} |",
        "",
        "| call | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "report": "report_location ack",
        "deed_ack": "confirm_deed ack",
        "deed_total": "deed: first send → success ack",
        "join_mob": "join_mob ack",
        "connect": "socket connect",
        "rest_join": "POST participants",
    }
    for k in KINDS:
        if k in s["latency"]:
            v = s["latency"][k]
            lines.append(
                f"| {names[k]} | {v['n']:,} | {_ms(v['p50'])} | {_ms(v['p95'])} | "
                f"{_ms(v['p99'])} | {_ms(v['max'])} |"
            )
    lines += [
        "",
        "Per mob (phones switched to it within its cycle / deeds acknowledged / stored / lost): "
        + "; ".join(
            f"{j:,} / {m['acked']:,} / {m['stored']:,} / {m['lost']}"
            for j, m in zip(s["joined"], s["per_mob"], strict=False)
        )
        + ".",
        "",
        "RSS at the start of each mob (MB per process): "
        + "; ".join(_mbs(r) for r in s["rss_boundaries"])
        + f"; end {_mbs(s['rss_end'])}.",
        "",
        "report_location p99 per 30 s window (ms): "
        + ", ".join(f"{w['p99']:.0f}" for w in s["windows"])
        + ".",
    ]
    if s["errors"]:
        lines.append("")
        lines.append(
            "Errors seen by phones: "
            + ", ".join(f"`{k}` {n}" for k, n in sorted(s["errors"].items()))
            + "."
        )
    if s["rejected"]:
        lines.append(
            "Deeds answered but not stored (by design): "
            + ", ".join(f"`{k}` {n}" for k, n in sorted(s["rejected"].items()))
            + "."
        )
    if s["log_warnings"]:
        lines.append(
            "Server log warnings: "
            + ", ".join(f"`{k}` ×{n}" for k, n in sorted(s["log_warnings"].items()))
            + "."
        )
    if s["log_errors"]:
        lines.append("")
        lines.append("First server log errors: " + "; ".join(
            f"`{e[:160]}`" for e in s["log_errors"][:3]))  # fmt: skip
    return "\n".join(lines)


def _overload_note(s: dict, opt: Options) -> list[str]:
    """A warning when the servers answered clearly fewer reports than the phones asked for."""
    asked = opt.phones / opt.report_every_s
    answered = s["latency"].get("report", {}).get("n", 0) / s["elapsed_s"]
    if answered >= 0.9 * asked:
        return []
    return [
        "",
        f"**Overloaded:** the servers answered {answered / asked:.0%} of the location reports "
        "the phones asked for (the others timed out after 20 s or were refused), so latency "
        "is the 20 s timeout, errors are overload errors, and RSS also holds the queued work "
        "(its growth is then no leak measure). A smaller run (e.g. `--phones 500`, below if "
        "written) shows the behaviour nearer to what the machine can serve.",
    ]


def _mbs(values: list[float]) -> str:
    return "/".join(f"{v:.0f}" for v in values)


def parse(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    d = Options()
    p.add_argument("--write", action="store_true", help="write docs/BENCHMARKS.md's section")
    for name in (
        "phones", "duration_s", "cycle_s", "servers", "phone_processes", "report_every_s",
        "join_spread_s", "start_after_s", "lead_s", "action_s", "zone_m", "spacing_m",
        "capacity", "redis_db", "seed",
    ):  # fmt: skip
        default = getattr(d, name)
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    p.add_argument("--database", choices=["postgis", "sqlite"], default=d.database)
    p.add_argument("--section", default=d.section, help="BENCHMARKS.md section (soak)")
    p.add_argument("--title", default=d.title, help="the section's heading")
    p.add_argument(
        "--from-raw", default="", help="render a saved run's raw.json (same options) instead"
    )
    args = p.parse_args(argv)
    opt = Options(**{k: v for k, v in vars(args).items()})
    opt.argv = _shown(argv)
    if opt.servers > 1 and opt.database == "sqlite":
        p.error("several server processes need PostGIS")
    if opt.start_after_s + opt.lead_s + opt.action_s >= opt.cycle_s:
        p.error("start-after + lead + action must fit in one cycle")
    return opt


def _shown(argv: list[str]) -> list[str]:
    """The command-line options that shape the run (not --write, not --from-raw PATH)."""
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--from-raw":
            skip = True
        elif a != "--write" and not a.startswith("--from-raw="):
            shown.append(a)
    return shown


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")  # run the clean-up (servers, phones, database)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background
    opt = parse(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="goodmob-soak-")) if not opt.from_raw else None
    progress(
        f"{opt.phones:,} phones, {opt.duration_s:.0f} s, a mob every {opt.cycle_s:.0f} s, "
        f"{opt.servers} server process(es); logs in {log_dir}"
    )
    if opt.from_raw:
        raw = json.loads(Path(opt.from_raw).read_text())
    else:
        raw = run(opt, log_dir)
        raw["commit"], raw["date"] = git_revision(), f"{datetime.now(UTC):%Y-%m-%d}"
        (log_dir / "raw.json").write_text(json.dumps(raw, default=list))
    s = summarize(raw, opt)
    if log_dir:
        (log_dir / "summary.json").write_text(json.dumps(s, indent=1))
    text = markdown(s, opt)
    print(text)
    if opt.write:
        write_section(opt.section, text)
        progress("docs/BENCHMARKS.md updated")
    good = (
        s["lost"] == 0
        and not s["server_errors"]
        and not s["log_errors"]
        and max(s["growth"] or [0]) < TARGET_GROWTH
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
