"""Nearby search on 10,000 mobs: time of GET /api/mobs?lat=&lon=&radius_m= on each database.

Usage: .venv/bin/python -m bench.nearby [--mobs 10000] [--queries 300]
       [--backend sqlite|postgis|both]
       [--write]   (write the result into docs/BENCHMARKS.md)

Seeds published mobs with small square-ish zones (50–400 m across) spread uniformly over a
region, then asks from random points in it, each answer timed end to end through the Flask
test client (routing, the spatial query, serialization) and, separately, the database query
alone (server.domain.mobs.nearby_mobs).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from geoalchemy2.shape import from_shape
from shapely.geometry import box
from sqlalchemy import create_engine, insert, text

from bench.common import git_revision, machine, percentiles_ms, write_section
from config import load_settings
from server import create_app
from server.domain.mobs import nearby_mobs
from server.infra.models import Mob, Organizer

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
# Region: about 150 km × 110 km around Berlin (a dense metropolitan case).
REGION = (12.4, 52.0, 14.6, 53.0)


def seed(app, n: int, rng: np.random.Generator) -> None:
    sessions = app.extensions["goodmob.sessions"]
    with sessions() as s:
        org = Organizer(email="bench@example.org", name="Bench", password_hash="x")
        s.add(org)
        s.flush()
        go = datetime.now(UTC) + timedelta(days=1)
        rows = []
        lons = rng.uniform(REGION[0], REGION[2], n)
        lats = rng.uniform(REGION[1], REGION[3], n)
        sizes = rng.uniform(0.0007, 0.006, n)
        for i in range(n):
            zone = box(lons[i], lats[i], lons[i] + sizes[i], lats[i] + sizes[i] * 0.6)
            rows.append(
                dict(
                    id=secrets.token_hex(4),
                    organizer_id=org.id,
                    title=f"Mob {i}",
                    description="",
                    action="Act",
                    zone=from_shape(zone, srid=4326),
                    status="published",
                    gather_at=go - timedelta(minutes=15),
                    countdown_at=go - timedelta(minutes=1),
                    go_at=go,
                    duration_s=60,
                    timeline_version=1,
                    created_at=go,
                    updated_at=go,
                )
            )
        for start in range(0, n, 1000):
            s.execute(insert(Mob), rows[start : start + 1000])
        s.commit()


def run_backend(backend: str, n: int, queries: int, radius_m: float) -> dict:
    rng = np.random.default_rng(7)
    drop = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    else:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"goodmob_bench_{secrets.token_hex(3)}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        e = create_engine(url, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            c.execute(text("CREATE EXTENSION postgis"))
        e.dispose()

        def drop():
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))

    app = create_app(load_settings({}, env="test", database_url=url, secret_key="b" * 40))
    try:
        t0 = time.perf_counter()
        seed(app, n, rng)
        print(f"[{backend}] seeded {n} mobs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        if backend == "postgis":
            with app.extensions["goodmob.engine"].begin() as c:
                c.execute(text("ANALYZE mobs"))
        client = app.test_client()
        points = np.column_stack(
            [rng.uniform(REGION[0], REGION[2], queries), rng.uniform(REGION[1], REGION[3], queries)]
        )
        http, db_only, found = [], [], []
        for lon, lat in points[:10]:  # warm-up
            client.get(f"/api/mobs?lat={lat}&lon={lon}&radius_m={radius_m}")
        for i, (lon, lat) in enumerate(points):
            t = time.perf_counter()
            r = client.get(f"/api/mobs?lat={lat}&lon={lon}&radius_m={radius_m}")
            http.append(time.perf_counter() - t)
            assert r.status_code == 200
            found.append(len(r.get_json()["mobs"]))
            with app.extensions["goodmob.sessions"]() as s:
                t = time.perf_counter()
                nearby_mobs(s, lon, lat, radius_m, 100)
                db_only.append(time.perf_counter() - t)
            if (i + 1) % 100 == 0:
                print(f"[{backend}] {i + 1}/{queries} queries", file=sys.stderr)
        return {
            "http": percentiles_ms(http),
            "db": percentiles_ms(db_only),
            "found_mean": float(np.mean(found)),
        }
    finally:
        app.extensions["goodmob.engine"].dispose()
        if drop:
            drop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mobs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--radius-m", type=float, default=5000)
    parser.add_argument("--backend", choices=["sqlite", "postgis", "both"], default="both")
    parser.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    args = parser.parse_args()
    backends = ["sqlite", "postgis"] if args.backend == "both" else [args.backend]
    lines = [
        "## Nearby search",
        "",
        f"`.venv/bin/python -m bench.nearby --mobs {args.mobs} --queries {args.queries} "
        f"--radius-m {args.radius_m:g}` — {args.mobs:,} published mobs (zones 50–400 m across) "
        "spread over 150 km × 110 km around Berlin; random query points in that region; "
        f"radius {args.radius_m:g} m. Target: well under 50 ms.",
        "",
        f"Machine: {machine()}. Commit {git_revision()}, {datetime.now(UTC).strftime('%Y-%m-%d')}.",
        "",
        "| backend | mobs found (mean) | HTTP p50 | HTTP p95 | HTTP max | query p50 | query p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in backends:
        res = run_backend(backend, args.mobs, args.queries, args.radius_m)
        h, d = res["http"], res["db"]
        lines.append(
            f"| {backend} | {res['found_mean']:.1f} | {h['p50']:.1f} ms | {h['p95']:.1f} ms | "
            f"{h['max']:.1f} ms | {d['p50']:.1f} ms | {d['p95']:.1f} ms |"
        )
    lines += [
        "",
        "HTTP = the whole request through the Flask test client, including serializing every "
        "found mob with its zone; query = `server.domain.mobs.nearby_mobs` alone (bounding box "
        "on the spatial index, geodesic distance and sort in the database).",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section("nearby", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
