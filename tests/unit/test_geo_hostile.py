"""Hostile zones through the API, on SpatiaLite and on PostGIS (the ``client`` fixture runs
every test once per backend).

Bow-ties, spikes, NaN and infinities, huge coordinates, a million vertices, duplicate
points and well-formed random polygons: each is refused with the same code that
``geo.parse_zone`` gives, or accepted, stored and read back unchanged. The database agrees:
an accepted zone is valid by the backend's own ``ST_IsValid``, a refused bow-tie or spike is
invalid by it too. The examples are derandomized, so both backends judge the same shapes.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy import text as sql

import geo
from server.domain import mobs as mob_ops
from server.infra.models import Mob
from tests.factories import auth, future, make_organizer

HOSTILE = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
M_PER_DEG = 111_320.0

centers = st.tuples(
    st.floats(-170, 170, allow_nan=False), st.floats(-75, 75, allow_nan=False)
)  # (lon, lat), away from the antimeridian and the poles
half_sizes_m = st.floats(30, 1500, allow_nan=False)


@pytest.fixture()
def organizer(client):
    return make_organizer(client)


def corner(center, half_m, sx, sy) -> list[float]:
    lon, lat = center
    dlat = half_m / M_PER_DEG
    dlon = half_m / (M_PER_DEG * math.cos(math.radians(lat)))
    return [lon + sx * dlon, lat + sy * dlat]


def polygon(ring) -> dict:
    return {"type": "Polygon", "coordinates": [ring]}


def post_zone(client, token, zone, raw: str | None = None):
    body = {"title": "Hostile", "action": "Try it", "go_at": future(), "duration_s": 60}
    if raw is None:
        return client.post("/api/mobs", json={**body, "zone": zone}, headers=auth(token))
    data = json.dumps({**body, "zone": "ZONE"}).replace('"ZONE"', raw)
    return client.post("/api/mobs", data=data, content_type="application/json", headers=auth(token))


def expected(zone, app) -> str | None:
    """geo's verdict: None (accepted) or the refusal code."""
    try:
        geo.parse_zone(zone, mob_ops.zone_limits(app.config["SETTINGS"]))
    except geo.GeoError as exc:
        return exc.code
    return None


def db_is_valid(db, wkt: str) -> bool:
    return bool(db.scalar(select(func.ST_IsValid(func.ST_GeomFromText(wkt, 4326)))))


def wkt(ring) -> str:
    return "POLYGON((" + ", ".join(f"{x!r} {y!r}" for x, y in ring) + "))"


def check_consistent(app, client, db, token, zone) -> str | None:
    """POST the zone; the API's verdict must be geo's; accepted zones round-trip and the
    database finds them valid. Returns the verdict."""
    verdict = expected(zone, app)
    r = post_zone(client, token, zone)
    if verdict is None:
        assert r.status_code == 201, (r.get_json(), zone)
        mob = r.get_json()
        assert mob["zone"]["coordinates"] == [
            [[float(v) for v in p] for p in zone["coordinates"][0]]
        ]
        valid, points = db.execute(
            select(func.ST_IsValid(Mob.zone), func.ST_NPoints(Mob.zone)).where(Mob.id == mob["id"])
        ).one()
        assert bool(valid) and points == len(zone["coordinates"][0])
    else:
        assert r.status_code == 422, (r.get_json(), zone)
        assert r.get_json()["error"]["code"] == verdict
    return verdict


@HOSTILE
@given(center=centers, half_m=half_sizes_m)
def test_bow_ties_are_refused_and_every_backend_finds_them_invalid(
    app, client, db, organizer, center, half_m
):
    a, b = corner(center, half_m, -1, -1), corner(center, half_m, 1, 1)
    c, d = corner(center, half_m, 1, -1), corner(center, half_m, -1, 1)
    ring = [a, b, c, d, a]  # edges a→b and c→d cross in the middle
    assert check_consistent(app, client, db, organizer, polygon(ring)) == "zone_self_intersects"
    assert not db_is_valid(db, wkt(ring))


@HOSTILE
@given(center=centers, half_m=half_sizes_m, reach=st.floats(1.1, 5))
def test_spikes_are_refused_and_every_backend_finds_them_invalid(
    app, client, db, organizer, center, half_m, reach
):
    a, b = corner(center, half_m, -1, -1), corner(center, half_m, 1, -1)
    c, d = corner(center, half_m, 1, 1), corner(center, half_m, -1, 1)
    tip = corner(center, half_m, reach, -1)  # out along the bottom edge and back again
    ring = [a, b, tip, b, c, d, a]
    verdict = check_consistent(app, client, db, organizer, polygon(ring))
    assert verdict in ("zone_self_intersects", "zone_invalid")
    assert not db_is_valid(db, wkt(ring))


@HOSTILE
@given(
    center=centers,
    half_m=half_sizes_m,
    radii=st.lists(st.floats(0.5, 1.0), min_size=3, max_size=40),
    repeats=st.lists(st.integers(1, 3), min_size=40, max_size=40),
)
def test_star_shapes_with_duplicate_points_are_accepted_and_round_trip(
    app, client, db, organizer, center, half_m, radii, repeats
):
    n = len(radii)
    ring = []
    for i, r in enumerate(radii):
        angle = 2 * math.pi * i / n
        p = corner(center, half_m * r, math.cos(angle), math.sin(angle))
        ring += [p] * repeats[i]  # repeated consecutive positions: valid, kept as sent
    ring.append(ring[0])
    assert check_consistent(app, client, db, organizer, polygon(ring)) is None
    assert db_is_valid(db, wkt(ring))


@HOSTILE
@given(
    value=st.sampled_from([1e308, -1e308, 10**400, -(10**400), 180.0000001, -1000]),
    index=st.integers(0, 1),
)
def test_huge_coordinates_are_refused(app, client, organizer, value, index):
    ring = [[13.35, 52.51], [13.354, 52.51], [13.354, 52.512], [13.35, 52.512], [13.35, 52.51]]
    ring[1][index] = value
    r = post_zone(client, organizer, polygon(ring))
    assert r.status_code == 422
    assert r.get_json()["error"]["code"] == "coordinate_out_of_range"
    assert r.get_json()["error"]["where"]["path"] == f"coordinates[0][1][{index}]"


def test_nan_and_infinity_are_refused_before_any_geometry(client, organizer):
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        ring = f"[[13.35, 52.51], [{literal}, 52.51], [13.354, 52.512], [13.35, 52.51]]"
        r = post_zone(
            client, organizer, None, raw=f'{{"type": "Polygon", "coordinates": [{ring}]}}'
        )
        assert r.status_code in (400, 422), literal
        code = r.get_json()["error"]["code"]
        assert code in ("invalid_json", "coordinate_not_numeric"), (literal, code)


def test_all_duplicate_or_collinear_rings_are_refused_alike(app, client, db, organizer):
    p = [13.35, 52.51]
    for ring in (
        [p, p, p, p],  # one point four times
        [p, [13.351, 52.511], [13.352, 52.512], p],  # a line, no area
        [p, [13.351, 52.511], p, [13.351, 52.511], p],  # there and back
    ):
        verdict = check_consistent(app, client, db, organizer, polygon(ring))
        assert verdict in ("zone_invalid", "zone_self_intersects", "zone_too_small"), verdict
        assert verdict == "zone_too_small" or not db_is_valid(db, wkt(ring))


def test_a_million_vertices_are_refused_before_any_heavy_work(app, client, organizer, monkeypatch):
    n = 1_000_000
    # Over HTTP the body (about 15 MB) is over MAX_BODY_BYTES: refused unread.
    raw = '{"type": "Polygon", "coordinates": [[' + "[13.35, 52.51], " * n + "[13.35, 52.51]]]}"
    r = post_zone(client, organizer, None, raw=raw)
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"
    # Parsed directly, the vertex cap answers before a single position is checked.
    checked = []
    monkeypatch.setattr(
        "geo.zones._check_position", lambda *a: checked.append(a) or (0.0, 0.0), raising=True
    )
    zone = polygon([[13.35, 52.51]] * (n + 1))
    with pytest.raises(geo.GeoError) as refused:
        geo.parse_zone(zone, mob_ops.zone_limits(app.config["SETTINGS"]))
    assert refused.value.code == "zone_too_many_vertices" and checked == []
    assert f"{n} vertices" in refused.value.message


def test_just_over_the_vertex_cap_is_refused_on_every_backend(app, client, db, organizer):
    cap = app.config["SETTINGS"].zone_max_vertices
    ring = [[13.35 + 0.004 * math.cos(t), 52.51 + 0.002 * math.sin(t)]
            for t in (2 * math.pi * i / (cap + 1) for i in range(cap + 1))]  # fmt: skip
    ring.append(ring[0])
    assert check_consistent(app, client, db, organizer, polygon(ring)) == "zone_too_many_vertices"
    ring = ring[: cap - 1] + [ring[0]]  # exactly at the cap
    assert check_consistent(app, client, db, organizer, polygon(ring)) is None
    count = db.scalar(sql("SELECT COUNT(*) FROM mobs"))
    assert count == 1
