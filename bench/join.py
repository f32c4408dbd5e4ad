"""End-to-end join latency through one real server process: POST join + socket connect +
join_mob, as a phone does it, on an idle server and while phones report their locations.

Usage: .venv/bin/python -m bench.join [--joins 1000] [--concurrency 10]
       [--load-phones 2000] [--load-rate 800] [--backend sqlite|postgis|both] [--write]

One ``python -m server`` process (gevent, production settings) on a fresh database and a
published mob (1 km × 1 km, tasks every 25 m). A Node process (bench/phones.mjs) makes
``--joins`` new participants, ``--concurrency`` at a time, each: ``POST
/api/mobs/{id}/participants`` (fetch), a Socket.IO connection to ``/participant`` with the
returned token (WebSocket transport), then ``join_mob`` until its snapshot arrives; every
step is timed on the client. Run twice: on an idle server, then while ``--load-phones``
other phones (two more Node processes) send ``report_location`` at ``--load-rate`` per
second.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import numpy as np

from bench.common import git_revision, machine, percentiles_ms, write_section
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

STEPS = ("post", "connect", "join_mob", "total")


def _say(msg: str) -> None:
    progress("join", msg)


def join_round(joiners: PhoneWorkers, server: Server, count: int, concurrency: int) -> dict:
    cpu, busy = server.cpu_seconds(), busy_cores()
    answer = joiners.all({"cmd": "joins", "count": count, "concurrency": concurrency})[0]
    wall = answer["wall_s"]
    result = {
        "ok": len(answer["steps"]["total"]),
        "failures": answer["failures"],
        "per_s": len(answer["steps"]["total"]) / wall,
        "server_cpu": (server.cpu_seconds() - cpu) / wall,
        "busy": (busy_cores() - busy) / wall,
    }
    for step in STEPS:
        samples = np.asarray(answer["steps"][step], dtype=float) / 1000
        result[step] = percentiles_ms(samples) if len(samples) else None
    return result


def run_backend(backend: str, args) -> dict:
    db = database(backend)
    server = Server(db.url)
    joiners = load = None
    try:
        server.migrate()
        server.start()
        mob = seed_mob(server, 1000, spacing_m=25, capacity=4)
        joiners = PhoneWorkers(1)
        joiners.all({"cmd": "config", "worker": "join", "url": server.url, "mob": mob["id"]})
        joiners.all({"cmd": "joins", "count": 20, "concurrency": 2})  # warm-up
        tag = f"[{backend}]"
        _say(f"{tag} idle server: {args.joins} joins, {args.concurrency} at a time")
        results = {"backend": backend}
        results["idle"] = join_round(joiners, server, args.joins, args.concurrency)
        _say(f"{tag} idle: {brief(results['idle'])}")
        if args.load_phones:
            ids = seed_participants(db, mob["id"], args.load_phones)
            box = square_box(1000, 60)
            slices = phone_configs(
                ids, tokens_for(ids, mob["id"]), box, np.random.default_rng(7), 2
            )
            load = PhoneWorkers(2)
            load.all(
                [
                    {
                        "cmd": "config",
                        "worker": i,
                        "url": server.url,
                        "mob": mob["id"],
                        "box": box,
                        "phones": p,
                        "seed": 7 + i,
                    }  # fmt: skip
                    for i, p in enumerate(slices)
                ]
            )
            load.all({"cmd": "connect"})
            warm = min(250, args.load_phones)
            load.all({"cmd": "run", "rate": warm / 2, "seconds": args.load_phones / warm})
            # Load for longer than the joins take; the joins run in the middle of it.
            seconds = max(30.0, args.joins / max(1.0, results["idle"]["per_s"]) * 3)
            for i in range(2):
                load.send(i, {"cmd": "run", "rate": args.load_rate / 2, "seconds": seconds})
            joiners.all({"cmd": "joins", "count": 5, "concurrency": 1})  # let the load start
            results["loaded"] = join_round(joiners, server, args.joins, args.concurrency)
            ran = [load.read(i) for i in range(2)]
            acked = sum(r["acked"] for r in ran) / max(r["wall_s"] for r in ran)
            lat = np.concatenate([np.asarray(r["latencies_ms"]) for r in ran])
            results["load"] = {"acked_per_s": acked, "p99": float(np.percentile(lat, 99))}
            _say(f"{tag} under load: {brief(results['loaded'])}; load {results['load']}")
        return results
    finally:
        for workers in (joiners, load):
            if workers is not None:
                workers.close()
        server.stop()
        db.drop()


def brief(r: dict) -> str:
    t = r["total"] or {}
    return (
        f"{r['ok']} ok, {r['per_s']:.0f}/s, total p50 {t.get('p50', 0):.1f} ms "
        f"p99 {t.get('p99', 0):.1f} ms, failures {r['failures']}, server CPU {r['server_cpu']:.0%}"
    )


def markdown(results: list[dict], args) -> str:
    cmd = (
        f"`.venv/bin/python -m bench.join --joins {args.joins} --concurrency {args.concurrency} "
        f"--load-phones {args.load_phones} --load-rate {args.load_rate} "
        f"--backend {args.backend} --write`"
    )
    lines = [
        "## Joining a mob, end to end",
        "",
        f"{cmd} — one server process (`python -m server`: gevent, production settings) on a "
        "fresh database; a published mob (1 km × 1 km, tasks every 25 m). "
        "A Node process "
        f"(bench/phones.mjs) makes {args.joins:,} new participants, {args.concurrency} at a "
        "time, each as a phone does: `POST /api/mobs/{id}/participants`, a Socket.IO "
        "connection to `/participant` with the token (WebSocket), then `join_mob` until the "
        "snapshot (mob, timeline, own task, counters) arrives; each step timed at the "
        'client. "loaded": the same while '
        f"{args.load_phones:,} other connected phones send `report_location` at "
        f"{args.load_rate:,}/s.",
        "",
        f'Machine: {machine()}; server, phones and database share its 2 cores ("machine '
        'busy" = cores in use by everything meanwhile). '
        f"Working tree on commit {git_revision()}, {datetime.now(UTC).strftime('%Y-%m-%d')}.",
        "",
        "| backend | load | joins/s | POST p50 / p99 ms | connect p50 / p99 ms "
        "| join_mob p50 / p99 ms | total p50 / p95 / p99 ms | failures | server CPU "
        "| machine busy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        for label in ("idle", "loaded"):
            r = res.get(label)
            if r is None:
                continue
            p, c, j, t = (r[s] for s in STEPS)
            lines.append(
                f"| {res['backend']} | {label} | {r['per_s']:.0f} "
                f"| {p['p50']:.1f} / "
                f"{p['p99']:.1f} | {c['p50']:.1f} / {c['p99']:.1f} | {j['p50']:.1f} / "
                f"{j['p99']:.1f} | {t['p50']:.1f} / {t['p95']:.1f} / {t['p99']:.1f} "
                f"| {sum(r['failures'].values())} | {r['server_cpu']:.0%} | {r['busy']:.2f} |"
            )
    for res in results:
        if "load" in res:
            load = res["load"]
            lines.append(
                f"\nUnder load ({res['backend']}): the location reports were "
                "acknowledged at "
                f"{load['acked_per_s']:,.0f}/s with p99 {load['p99']:.1f} ms meanwhile."
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--joins", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--load-phones", type=int, default=2000)
    ap.add_argument("--load-rate", type=int, default=800)
    ap.add_argument("--backend", choices=["sqlite", "postgis", "both"], default="sqlite")
    ap.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    args = ap.parse_args(argv)
    backends = ["sqlite", "postgis"] if args.backend == "both" else [args.backend]
    results = [run_backend(b, args) for b in backends]
    md = markdown(results, args)
    print(md)
    if args.write:
        write_section("join", md)
        _say("wrote docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
