"""Location reports through one real server process: acknowledged report_location per second
and ack latency with thousands of phones connected.

Usage: .venv/bin/python -m bench.locations [--phones 5000] [--rates 2000] [--seconds 60]
       [--workers 2] [--backend sqlite|postgis|both] [--write]

One ``python -m server`` process (gevent, production settings) on a fresh database; a
published mob over a 1 km × 1 km square with tasks every 25 m; ``--phones`` participants,
each a real Socket.IO client (its own WebSocket) in ``--workers`` Node processes
(bench/phones.mjs). Every phone connects and sends join_mob; a warm-up round gives each
phone its first fix (which claims a task: the immediate-write path); then for each rate the
phones walk and send report_location open-loop (on the clock, not waiting for acks) for
``--seconds``, round-robin, so each phone reports every phones/rate seconds. Latency = send
to ack on the phone's side. After the run the phones disconnect, the server gets SIGTERM
(it flushes its buffered fixes on the way out), and every phone's last acknowledged fix is
compared with its row in the database: nothing accepted may be lost.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select

from bench.common import git_revision, machine, percentiles_ms, write_section
from bench.harness import (
    PhoneWorkers,
    Server,
    busy_cores,
    database,
    engine_for,
    phone_configs,
    progress,
    seed_mob,
    seed_participants,
    tokens_for,
)
from server.infra.models import Participant
from support.park import M_PER_DEG_LAT, square_box

TARGET_RATE = 2000
TARGET_P99_MS = 100
SIDE_M = 1000
INSET_M = 60  # phones walk at least this far inside the zone's edge...
EDGE_BAND_M = 40  # ...except the edge walkers, within this of its south edge


def _say(msg: str) -> None:
    progress("locations", msg)


def merge_runs(answers: list[dict]) -> dict:
    lat = np.concatenate([np.asarray(a["latencies_ms"], dtype=float) for a in answers])
    merged = {
        "sent": sum(a["sent"] for a in answers),
        "acked": sum(a["acked"] for a in answers),
        "timeouts": sum(a["timeouts"] for a in answers),
        "wall_s": max(a["wall_s"] for a in answers),
        "cpu_s": sum(a["cpu_s"] for a in answers),
        "lag_p99_ms": max(a["lag_p99_ms"] or 0 for a in answers),
        "loop_delay_p99_ms": max(a["loop_delay_p99_ms"] for a in answers),
        "errors": {},
        "reasons": {},
        "zones": {},
    }
    for key in ("errors", "reasons", "zones"):
        for a in answers:
            for k, v in a[key].items():
                merged[key][k] = merged[key].get(k, 0) + v
    merged["latency"] = percentiles_ms(lat / 1000) if len(lat) else None
    return merged


def check_positions(db, last: dict[int, dict]) -> dict:
    """Compare each phone's stored position with what it was told: ``same`` = its last
    acknowledged fix, ``later`` = a fix sent after it whose ack timed out (the server took
    it late), ``lost`` = anything else (an acknowledged fix overwritten by an older one, or
    missing)."""
    engine = engine_for(db)
    try:
        with engine.connect() as c:
            rows = c.execute(
                select(Participant.id, Participant.lat, Participant.lon, Participant.accuracy_m)
            ).all()
    finally:
        engine.dispose()
    stored = {r.id: (r.lat, r.lon, r.accuracy_m) for r in rows}

    def equal(a, b) -> bool:
        return a[0] is not None and all(abs(x - y) < 1e-9 for x, y in zip(a, b, strict=True))

    counts = {"same": 0, "later": 0, "lost": 0}
    for pid, told in last.items():
        here = stored.get(pid, (None, None, None))
        if equal(here, told["acked"]):
            counts["same"] += 1
        elif any(equal(here, fix) for fix in told["later"]):
            counts["later"] += 1
        else:
            counts["lost"] += 1
    return counts


def run_backend(backend: str, args) -> dict:
    db = database(backend)
    server = Server(db.url, nice=args.nice)
    workers = None
    try:
        server.migrate()
        server.start()
        mob = seed_mob(server, SIDE_M, spacing_m=25, capacity=4)
        ids = seed_participants(db, mob["id"], args.phones)
        tag = f"[{backend}]"
        _say(f"{tag} mob {mob['id']}: {mob['task_count']} tasks, {len(ids)} participants")
        rng = np.random.default_rng(args.seed)
        box = square_box(SIDE_M, INSET_M)
        w, s, e, _n = box
        edge = square_box(SIDE_M)[1]  # the zone's south edge: a band 40 m either side
        edge_box = (w, edge - EDGE_BAND_M / M_PER_DEG_LAT, e, edge + EDGE_BAND_M / M_PER_DEG_LAT)
        tokens = tokens_for(ids, mob["id"])
        slices = phone_configs(ids, tokens, box, rng, args.workers, edge_box, args.edge_share)
        workers = PhoneWorkers(args.workers, nice=args.nice)
        workers.all(
            [
                {
                    "cmd": "config",
                    "worker": i,
                    "url": server.url,
                    "mob": mob["id"],
                    "box": box,
                    "phones": phones,
                    "seed": args.seed + i,
                }  # fmt: skip
                for i, phones in enumerate(slices)
            ]
        )
        t0 = time.monotonic()
        answers = workers.all({"cmd": "connect"})
        connected = sum(a["connected"] for a in answers)
        failures = {k: v for a in answers for k, v in a["failures"].items()}
        connect_s = time.monotonic() - t0
        _say(f"{tag} {connected} phones connected in {connect_s:.1f} s {failures or ''}")
        if connected < args.phones:
            raise RuntimeError(f"only {connected} of {args.phones} phones connected: {failures}")

        results = {"backend": backend, "connected": connected}
        results["connect_s"] = connect_s
        # Warm-up: each phone's first fix (zone entry + task claim, written at once).
        warm_rate = min(args.warmup_rate, args.phones)
        warm_s = args.phones / warm_rate
        results["first_fix"] = run_step(workers, server, warm_rate, warm_s, args.workers)
        _say(f"{tag} first fixes: {summary(results['first_fix'])}")
        results["steps"] = []
        for rate in args.rates:
            step = run_step(workers, server, rate, args.seconds, args.workers)
            results["steps"].append(step)
            _say(f"{tag} {rate}/s: {summary(step)}")
        last = {int(k): v for a in workers.all({"cmd": "last"}) for k, v in a["fixes"].items()}
        workers.close()
        workers = None
        output = server.stop()
        results["flush"] = flush_stats(output)
        results["kept"] = check_positions(db, last)
        _say(f"{tag} positions kept: {results['kept']}; flushes: {results['flush']}")
        return results
    finally:
        if workers is not None:
            workers.close()
        server.stop()
        db.drop()


def run_step(workers: PhoneWorkers, server: Server, rate: float, seconds: float, n: int) -> dict:
    cpu_server, cpu_clients, busy = server.cpu_seconds(), workers.cpu_seconds(), busy_cores()
    answers = workers.all({"cmd": "run", "rate": rate / n, "seconds": seconds, "tag": rate})
    step = merge_runs(answers)
    wall = step["wall_s"]
    step["rate"] = rate
    step["server_cpu"] = (server.cpu_seconds() - cpu_server) / wall
    step["clients_cpu"] = (workers.cpu_seconds() - cpu_clients) / wall
    # Everything else on the machine meanwhile (other programs, the kernel, the database).
    mine = step["server_cpu"] + step["clients_cpu"]
    step["other_cpu"] = max(0.0, (busy_cores() - busy) / wall - mine)
    step["ack_rate"] = step["acked"] / wall
    return step


def summary(step: dict) -> str:
    lat = step["latency"] or {}
    return (
        f"{step['ack_rate']:.0f} acks/s, p50 {lat.get('p50', 0):.1f} ms, "
        f"p99 {lat.get('p99', 0):.1f} ms, max {lat.get('max', 0):.0f} ms, "
        f"timeouts {step['timeouts']}, errors {step['errors']}, not counted {step['reasons']}, "
        f"server CPU {step['server_cpu']:.0%}, clients CPU {step['clients_cpu']:.0%}, "
        f"other CPU {step['other_cpu']:.0%}, phones' event-loop delay p99 "
        f"{step['loop_delay_p99_ms']:.0f} ms, zones {step['zones']}"
    )


_FLUSH_LINE = re.compile(
    r"positions: (\d+) fixes deferred, (\d+) written in (\d+) flushes \(largest (\d+)\), "
    r"(\d+) failed, (\d+) left"
)


def flush_stats(output: str) -> dict | None:
    """The buffer's own count, logged by the server on shutdown."""
    found = _FLUSH_LINE.findall(output)
    if not found:
        return None
    keys = ("deferred", "written", "flushes", "largest", "failed", "left")
    return dict(zip(keys, map(int, found[-1]), strict=True))


def markdown(results: list[dict], args) -> str:
    cmd = (
        f"`.venv/bin/python -m bench.locations --phones {args.phones} --rates "
        f"{','.join(str(r) for r in args.rates)} --seconds {args.seconds:g} "
        f"--workers {args.workers} --edge-share {args.edge_share:g} "
        + (f"--nice {args.nice} " if args.nice else "")
        + (f"--section {args.section} " if args.section != "locations" else "")
        + f"--backend {args.backend} --write`"
    )
    lines = [
        "## Location reports through one server process",
        "",
        f"{cmd} — one `python -m server` process (gevent, production settings with the "
        "process tuning built into `serve()`: GC thresholds and freeze, and for Socket.IO "
        "events no URL matching, no cookie-session parsing, no greenlet per event; rate limits "
        "on, the per-address limit lifted since every phone here is 127.0.0.1) on a fresh "
        "database. "
        f"{args.phones:,} phones connected, each a real "
        "Socket.IO client with its "
        f"own WebSocket, in {args.workers} Node processes (bench/phones.mjs) on the same "
        "machine. The phones walk at 1.2 m/s in a 1 km × 1 km zone (tasks every 25 m, "
        f"capacity 4); {args.edge_share:.0%} of them walk along its edge, flipping between "
        "inside, uncertain and outside (immediate writes, and new counters: pushed to the "
        "spectators, carried to the phones on their next acks). "
        "Each step sends `report_location` open-loop (on the clock, not waiting for acks) at "
        "the offered total rate, round-robin, so each phone reports every phones/rate "
        f"seconds; latency = send → ack at the phone. Target: ≥ {TARGET_RATE:,} acks/s with "
        f"p99 ≤ {TARGET_P99_MS} ms.",
        "",
        f"Machine: {machine()}; the server, the phones and the database share its 2 cores "
        '("other CPU" = everything else that ran on the machine meanwhile, in cores). '
        f"Working tree on commit {git_revision()}, {datetime.now(UTC).strftime('%Y-%m-%d')}.",
        "",
        "| backend | offered /s | acked /s | p50 ms | p95 ms | p99 ms | max ms "
        "| timeouts | errors | server CPU | phones CPU | other CPU | phones' loop delay p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        rows = [("first fix", res["first_fix"])] + [(f"{s['rate']:,}", s) for s in res["steps"]]
        for label, s in rows:
            lat = s["latency"]
            errs = sum(s["errors"].values())
            lines.append(
                f"| {res['backend']} | {label} | {s['ack_rate']:,.0f} "
                f"| {lat['p50']:.1f} "
                f"| {lat['p95']:.1f} | {lat['p99']:.1f} | {lat['max']:.0f} | {s['timeouts']} "
                f"| {errs} | {s['server_cpu']:.0%} | {s['clients_cpu']:.0%} "
                f"| {s['other_cpu']:.2f} | {s['loop_delay_p99_ms']:.0f} |"
            )
    lines.append("")
    for res in results:
        f = res["flush"]
        kept = res["kept"]
        acked = sum(s["acked"] for s in [res["first_fix"], *res["steps"]])
        flushes = (
            f"{f['deferred']:,} of {acked:,} acknowledged fixes were deferred; "
            f"{f['written']:,} rows written in {f['flushes']:,} flush transactions (mean "
            f"{f['written'] / max(1, f['flushes']):.0f}, largest {f['largest']:,}; "
            f"{f['failed']} failed)"
            if f
            else "no flush statistics in the server's output"
        )
        lines.append(
            f"- {res['backend']}: {res['connected']:,} phones connected in "
            f"{res['connect_s']:.1f} s; {flushes}; after the phones left and the server got "
            f"SIGTERM, {kept['same']:,} phones' stored position was their last acknowledged "
            f"fix, {kept['later']:,} a later fix whose ack had timed out, {kept['lost']} "
            "neither (lost)."
        )
    lines += [
        "",
        '"first fix" is the warm-up round: each phone\'s first report enters the zone and '
        "claims a task (written at once, in its own transaction). In the other rows a fix "
        "that keeps its zone state and task is acknowledged from one read and written "
        "behind, all of a process's pending fixes in one transaction every 200 ms "
        "(server/domain/positions.py); one that changes either is written at once.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phones", type=int, default=5000)
    ap.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[2000])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", choices=["sqlite", "postgis", "both"], default="sqlite")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warmup-rate", type=int, default=250, help="first fixes per second")
    ap.add_argument(
        "--edge-share", type=float, default=0.05, help="share of phones walking on the edge"
    )
    ap.add_argument(
        "--nice", type=int, default=0, help="priority of the server and phones (e.g. -10)"
    )
    ap.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    ap.add_argument("--section", default="locations", help="its name in docs/BENCHMARKS.md")
    args = ap.parse_args(argv)
    backends = ["sqlite", "postgis"] if args.backend == "both" else [args.backend]
    results = [run_backend(b, args) for b in backends]
    md = markdown(results, args)
    print(md)
    if args.write:
        write_section(args.section, md)
        _say("wrote docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
