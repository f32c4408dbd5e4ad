"""The after-action summary: organizer view, GeoJSON and CSV exports, the public page."""

import csv
import io
import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from shapely.geometry import shape
from sqlalchemy import text

from server import socketio
from server.domain import summary
from server.infra.models import Base
from tests.factories import PARK, auth, make_mob, make_organizer, make_published_mob
from tests.growth_support import (
    GROWTH_TABLES,
    add_deed,
    clean_growth,
    geojson_errors,
    join,
)

# Where the walker stands: inside the park, not on any task spot.
WALKER = {"lat": 52.531713, "lon": 13.399871, "accuracy_m": 6, "at": 0}


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


@pytest.fixture()
def done_mob(app, client, db):
    """A mob with three people, one in the zone, deeds on two tasks, a pledge and a referral."""
    token = make_organizer(client, name="Ada")
    mob = make_published_mob(client, token, spacing_m=40)
    mob_id = mob["id"]
    walker = join(client, mob_id, nickname="Walker")
    friend = join(client, mob_id, ref=walker["participant"]["ref_code"])
    join(client, mob_id)
    sc = socketio.test_client(app, namespace="/participant", auth={"token": walker["token"]})
    assert sc.emit("report_location", WALKER, namespace="/participant", callback=True)["task"]
    sc.disconnect(namespace="/participant")
    tasks = client.get(f"/api/mobs/{mob_id}/tasks").get_json()["features"]
    first, second = tasks[0]["id"], tasks[1]["id"]
    add_deed(db, mob_id, walker["participant"]["id"], minute=0.2, task_id=first)
    add_deed(db, mob_id, friend["participant"]["id"], minute=1.1, task_id=first)
    add_deed(db, mob_id, friend["participant"]["id"], minute=1.9, task_id=second)
    add_deed(db, mob_id, walker["participant"]["id"], status="flagged", task_id=second)
    r = client.post(
        "/api/pledges",
        json={
            "mob": mob_id,
            "amount_minor": 200,
            "currency": "EUR",
            "sponsor_name": "Bakery Schulz",
        },
    )
    assert r.status_code == 201
    return token, mob, tasks, (walker, friend)


def test_organizer_summary(client, done_mob):
    token, mob, tasks, _people = done_mob
    r = client.get(f"/api/mobs/{mob['id']}/summary", headers=auth(token))
    assert r.status_code == 200
    body = r.get_json()
    assert body["participants"] == {"joined": 3, "with_nickname": 1, "in_zone": 1, "matched": 1}
    deeds = body["deeds"]
    assert (deeds["done"], deeds["accepted"], deeds["flagged"], deeds["approved"]) == (3, 3, 1, 0)
    assert [(m["minute"], m["done"]) for m in deeds["per_minute"]] == [(0, 1), (1, 2)]
    assert deeds["per_minute"][1]["start"] > deeds["per_minute"][0]["start"]
    by_task = {f["id"]: f["properties"] for f in body["tasks"]["features"]}
    assert by_task[tasks[0]["id"]]["deeds_done"] == 2 and by_task[tasks[0]["id"]]["done"]
    assert by_task[tasks[1]["id"]]["deeds_done"] == 1
    assert by_task[tasks[1]["id"]]["deeds_flagged"] == 1
    assert sum(p["done"] for p in by_task.values()) == 2
    assert body["funnel"]["joined"] == 3 and body["funnel"]["deeds_done"] == 3
    assert body["pledges"]["pledges"][0]["sponsor"] == {"name": "Bakery Schulz"}
    assert body["pledges"]["pledges"][0]["owed_minor"] == 600
    assert body["cascade"]["sharers"][0]["name"] == "Walker"
    assert client.get(f"/api/mobs/{mob['id']}/summary").status_code == 401
    r = client.get(f"/api/mobs/{mob['id']}/summary", headers=auth(make_organizer(client)))
    assert r.status_code == 403


def _numbers(value) -> set[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {float(value)}
    if isinstance(value, dict):
        return set().union(*map(_numbers, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_numbers, value)) if value else set()
    return set()


def test_geojson_export_is_valid_rfc7946_without_anyones_position(app, client, db, done_mob):
    token, mob, tasks, _people = done_mob
    r = client.get(f"/api/mobs/{mob['id']}/summary.geojson", headers=auth(token))
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    assert r.headers["Content-Disposition"] == f'attachment; filename="goodmob-{mob["id"]}.geojson"'
    doc = json.loads(r.get_data(as_text=True))
    assert geojson_errors(doc) == []
    zone, *points = doc["features"]
    assert zone["geometry"]["type"] == "Polygon" and zone["properties"]["kind"] == "zone"
    min_lon, min_lat, max_lon, max_lat = shape(zone["geometry"]).bounds  # lon/lat order
    assert 13.39 < min_lon < max_lon < 13.41 and 52.52 < min_lat < max_lat < 52.54
    assert shape(zone["geometry"]).equals(shape(PARK))  # the same zone, re-oriented CCW
    assert zone["properties"]["deeds_done"] == 3 and zone["properties"]["joined"] == 3
    assert [p["geometry"]["coordinates"] for p in points] == [
        [round(c, 7) for c in t["geometry"]["coordinates"]] for t in tasks
    ]
    assert all(shape(f["geometry"]).is_valid for f in doc["features"])
    # The database's own GeoJSON reader (SpatiaLite / PostGIS) takes every geometry as valid.
    engine = app.extensions["goodmob.engine"]
    reader = "ST_GeomFromGeoJSON" if engine.dialect.name == "postgresql" else "GeomFromGeoJSON"
    with engine.connect() as conn:
        for feature in doc["features"]:
            geometry = json.dumps(feature["geometry"])
            valid = conn.execute(text(f"SELECT ST_IsValid({reader}(:g))"), {"g": geometry})
            assert valid.scalar() in (True, 1)
    # No participant's position anywhere in the file (the walker's fix is stored in the db).
    numbers = _numbers(doc)
    assert WALKER["lat"] not in numbers and WALKER["lon"] not in numbers
    assert not {"lat", "lon", "accuracy_m", "participant", "nickname"} & set(
        k for f in doc["features"] for k in f["properties"]
    )


def test_the_validator_catches_broken_geojson():
    good = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": good}],
    }
    assert geojson_errors(fc) == []
    for geometry, why in (
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 0]]]}, "right-hand"),
        ({"type": "Point", "coordinates": [52.5, 113.4]}, "lon/lat"),
        ({"type": "Circle", "coordinates": [0, 0]}, "unknown geometry"),
    ):
        fc["features"][0]["geometry"] = geometry
        assert any(why in e for e in geojson_errors(fc)), geometry
    assert geojson_errors({**fc, "crs": {}})  # no crs member in RFC 7946
    shaped = summary.rfc7946_geometry(shape(PARK))
    assert shaped["coordinates"][0][0] == shaped["coordinates"][0][-1]


def test_csv_exports(client, done_mob):
    token, mob, tasks, _people = done_mob
    url = f"/api/mobs/{mob['id']}/summary.csv"

    def table(name):
        r = client.get(f"{url}?table={name}", headers=auth(token))
        assert r.status_code == 200 and r.mimetype == "text/csv"
        return list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))

    rows = table("tasks")
    assert len(rows) == len(tasks) and rows[0]["task_id"] == str(tasks[0]["id"])
    assert (rows[0]["deeds_done"], rows[1]["deeds_flagged"]) == ("2", "1")
    assert float(rows[0]["lon"]) == round(tasks[0]["geometry"]["coordinates"][0], 7)
    assert [(m["minute"], m["deeds_done"]) for m in table("minutes")] == [("0", "1"), ("1", "2")]
    funnel = {row["step"]: row["count"] for row in table("funnel")}
    assert funnel["joined"] == "3" and funnel["done"] == "2"
    assert table("pledges")[0]["owed_minor"] == "600"
    r = client.get(f"{url}?table=people", headers=auth(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "param_out_of_range"
    assert client.get(url).status_code == 401


def test_public_summary_is_privacy_safe(client, db, done_mob):
    _token, mob, _tasks, (walker, friend) = done_mob
    r = client.get(f"/api/mobs/{mob['id']}/public-summary")
    assert r.status_code == 200
    body = r.get_json()
    assert body["counters"] == {"joined": 3, "in_zone": 1, "deeds_done": 3}
    assert body["mob"]["summary_url"] == f"/s/{mob['id']}" and body["mob"]["final"] is False
    assert body["pledges"]["totals"][0]["owed_minor"] == 600
    assert [s["name"] for s in body["cascade"]["sharers"]] == ["Walker"]
    raw = r.get_data(as_text=True)
    for secret in (
        "Bakery Schulz",
        friend["participant"]["nickname"],
        walker["participant"]["ref_code"],
        walker["token"],
    ):
        assert secret not in raw
    numbers = _numbers(body)
    assert WALKER["lat"] not in numbers and WALKER["lon"] not in numbers

    page = client.get(f"/s/{mob['id']}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b"/js/summary.js" in page.data
    draft = make_mob(client, make_organizer(client))
    assert client.get(f"/api/mobs/{draft['id']}/public-summary").status_code == 404


def test_a_rehearsal_summary_counts_no_deeds(client, db):
    token = make_organizer(client)
    mob = make_published_mob(client, token, spacing_m=40, rehearsal=True)
    person = join(client, mob["id"])["participant"]["id"]
    add_deed(db, mob["id"], person)
    body = client.get(f"/api/mobs/{mob['id']}/summary", headers=auth(token)).get_json()
    assert body["deeds"]["done"] == 0 and body["deeds"]["rehearsal_deeds"] == 1
    assert [m["done"] for m in body["deeds"]["per_minute"]] == [0]


def test_growth_migration_matches_the_models(app):
    """Migration 0004 creates exactly what the models describe (columns, types, nullability)."""
    engine = app.extensions["goodmob.engine"]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    names = [(f"'{t}'", f"<{t}>", f"{t}.") for t in GROWTH_TABLES]
    ours = [d for d in diff if any(n in repr(d) for forms in names for n in forms)]
    assert ours == []
