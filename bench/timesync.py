"""What ``time_sync`` costs a server process, and the rate the PWA's clock asks of it.

Usage: .venv/bin/python -m bench.timesync [--phones 300] [--rates 250,1000]
       [--seconds 20] [--backend sqlite|postgis] [--write]

One real ``python -m server`` process (production settings) and ``--phones`` real Socket.IO
clients (bench/phones.mjs, one WebSocket each, in one Node process) that connect and join a
mob. Then: ``--seconds`` of nothing (the connected phones' idle cost: pings), and at each
rate ``--seconds`` of ``time_sync {t0}`` round trips, open loop, round-robin over the phones.
The server's CPU time comes from /proc/<pid>/stat; the cost of one round trip is the CPU
above idle divided by the round trips answered (everything the process does for it: the
WebSocket frame in, Socket.IO decoding, the handler, the acknowledgement out).

The rate a crowd asks of a process follows from the PWA's own ``CLOCK_CONFIG``
(pwa/js/clock.js, read through Node): N phones / ``finalIntervalMs`` in GO's last minute,
N / ``intervalMs`` before it. Reported: the cost per round trip, and the share of one core
that rate takes at 5,000 phones per process (issue 16: under 10 %).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from bench.common import ROOT, git_revision, machine, write_section
from bench.harness import (
    PhoneWorkers,
    Server,
    busy_cores,
    database,
    phone_configs,
    progress,
    seed_mob,
    seed_participants,
    tokens_for,
)
from support.park import square_box

PHONES_AT_TARGET = 5000
CPU_SHARE_TARGET = 0.10


def clock_config() -> dict:
    """The PWA's CLOCK_CONFIG, as pwa/js/clock.js exports it."""
    script = (
        "import(process.argv[1]).then((m) => process.stdout.write(JSON.stringify(m.CLOCK_CONFIG)))"
    )
    out = subprocess.run(
        ["node", "-e", script, (ROOT / "pwa" / "js" / "clock.js").as_uri()],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def implied_rates(cfg: dict, phones: int = PHONES_AT_TARGET) -> dict:
    """time_sync requests per second a process with ``phones`` phones answers."""
    return {
        "final": phones * 1000 / cfg["finalIntervalMs"],
        "waiting": phones * 1000 / cfg["intervalMs"],
        "idle": phones * 1000 / cfg["idleIntervalMs"],
    }


def _say(msg: str) -> None:
    progress("timesync", msg)


def measure(args) -> dict:
    db = database(args.backend)
    server = Server(db.url)
    workers = None
    try:
        server.migrate()
        server.start()
        mob = seed_mob(server, 400, 100, 1000)
        ids = seed_participants(db, mob["id"], args.phones)
        box = square_box(400, 20)
        slices = phone_configs(ids, tokens_for(ids, mob["id"]), box, np.random.default_rng(1), 1)
        workers = PhoneWorkers(1)
        workers.all(
            [
                {
                    "cmd": "config",
                    "worker": 0,
                    "url": server.url,
                    "mob": mob["id"],
                    "box": box,
                    "phones": slices[0],
                    "seed": 1,
                }  # fmt: skip
            ]
        )
        answer = workers.all({"cmd": "connect"})[0]
        if answer["connected"] < args.phones:
            raise RuntimeError(f"only {answer['connected']} phones connected: {answer}")
        _say(f"{answer['connected']} phones connected")
        time.sleep(2)
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        time.sleep(args.seconds)
        idle_cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        _say(f"idle: server CPU {idle_cpu:.1%} of a core")
        steps = []
        for rate in args.rates:
            cpu0, busy0 = server.cpu_seconds(), busy_cores()
            ran = workers.all(
                {
                    "cmd": "run",
                    "event": "time_sync",
                    "rate": rate,
                    "seconds": args.seconds,
                    "tag": rate,
                }  # fmt: skip
            )[0]
            wall = ran["wall_s"]
            cpu = (server.cpu_seconds() - cpu0) / wall
            lat = np.asarray(ran["latencies_ms"], dtype=float)
            step = {
                "rate": rate,
                "acked": ran["acked"],
                "ack_rate": ran["acked"] / wall,
                "timeouts": ran["timeouts"],
                "server_cpu": cpu,
                "per_round_trip_us": (cpu - idle_cpu) * wall / max(1, ran["acked"]) * 1e6,
                "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
                "phones_cpu": ran["cpu_s"] / wall,
                "other_cpu": max(0.0, (busy_cores() - busy0) / wall - cpu - ran["cpu_s"] / wall),
            }
            steps.append(step)
            _say(
                f"{rate}/s: {step['ack_rate']:.0f} acks/s, server CPU {cpu:.1%}, "
                f"{step['per_round_trip_us']:.0f} µs per round trip, ack p50/p99 "
                f"{step['p50_ms']:.1f}/{step['p99_ms']:.1f} ms, timeouts {step['timeouts']}"
            )
        return {"idle_cpu": idle_cpu, "steps": steps, "phones": answer["connected"]}
    finally:
        if workers is not None:
            workers.close()
        server.stop()
        db.drop()


def markdown(result: dict, cfg: dict, args, argv: list[str]) -> str:
    rates = implied_rates(cfg)
    steps = result["steps"]

    # The cost at the measured rate nearest to each implied rate (the cost per round trip
    # falls as the rate rises: more frames per wake-up of the process).
    def cost_at(rate: float) -> float:
        return min(steps, key=lambda st: abs(st["rate"] - rate))["per_round_trip_us"]

    share = {k: v * cost_at(v) / 1e6 for k, v in rates.items()}
    lines = [
        "## `time_sync`: what the PWA's clock asks of a server process",
        "",
        f"`.venv/bin/python -m bench.timesync {' '.join(argv)}`".replace(" `", "`")
        + f" — machine: {machine()}; revision {git_revision()}; database {args.backend}.",
        "",
        f"One `python -m server` process (production settings), {result['phones']:,} real "
        "Socket.IO clients (bench/phones.mjs, one WebSocket each) connected and joined; "
        f"{args.seconds:g} s idle, then {args.seconds:g} s of `time_sync` round trips at each "
        "rate (open loop, round-robin). Cost of one round trip = server CPU above idle "
        "(/proc/<pid>/stat) ÷ round trips answered: the frame in, Socket.IO, the handler, the "
        f"acknowledgement out. Idle: {result['idle_cpu']:.1%} of a core.",
        "",
        "| offered /s | answered /s | server CPU (share of a core) | µs per round trip "
        "| ack p50 / p99 ms | timeouts |",
        "|---:|---:|---:|---:|---|---:|",
    ]
    for s in steps:
        lines.append(
            f"| {s['rate']:,} | {s['ack_rate']:,.0f} | {s['server_cpu']:.1%} "
            f"| {s['per_round_trip_us']:.0f} | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} "
            f"| {s['timeouts']} |"
        )
    lines += [
        "",
        "The PWA's `CLOCK_CONFIG` (pwa/js/clock.js) at 5,000 phones on one process: "
        f"{rates['final']:,.0f} `time_sync`/s in GO's last minute (one per phone every "
        f"{cfg['finalIntervalMs'] / 1000:g} s), {rates['waiting']:,.0f}/s before it (every "
        f"{cfg['intervalMs'] / 1000:g} s), {rates['idle']:,.0f}/s with no GO pending; plus a "
        f"burst of {cfg['burstSamples']} per phone at each connect. At the cost measured "
        f"nearest those rates ({cost_at(rates['final']):.0f} and "
        f"{cost_at(rates['waiting']):.0f} µs per round trip) that is **{share['final']:.1%} "
        f"of one core in the last minute** (target < {CPU_SHARE_TARGET:.0%}), "
        f"{share['waiting']:.1%} before it, above the connected phones' idle cost.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phones", type=int, default=300)
    ap.add_argument(
        "--rates", default="", help="default: CLOCK_CONFIG's rates at 5,000 phones per process"
    )
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--backend", choices=["sqlite", "postgis"], default="sqlite")
    ap.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    args = ap.parse_args(argv)
    cfg = clock_config()
    implied = implied_rates(cfg)
    args.rates = (
        [int(r) for r in args.rates.split(",")]
        if args.rates
        else [
            round(implied["waiting"]),
            round(implied["final"]),
        ]
    )
    _say(f"CLOCK_CONFIG: {cfg}; implied at 5,000 phones: {implied_rates(cfg)}")
    result = measure(args)
    md = markdown(result, cfg, args, [a for a in argv if a != "--write"])
    print(md)
    if args.write:
        write_section("timesync", md)
        _say("docs/BENCHMARKS.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
