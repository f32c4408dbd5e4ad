"""Creating, reading, changing, publishing and cancelling mobs (server/http/mobs.py,
server/domain/mobs.py)."""

import copy
import json
import re
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from server.infra.models import Mob
from tests.factories import PARK, auth, future, make_mob, make_organizer, make_published_mob


def _count(db):
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Mob))


def test_create_mob_is_a_draft_with_short_public_id(client, db):
    token = make_organizer(client, name="Grace")
    go_at = "2030-06-01T14:00:00+02:00"
    mob = make_mob(client, token, go_at=go_at, duration_s=90)
    assert mob["status"] == "draft"
    assert re.fullmatch(r"[a-z0-9]{8}", mob["id"])
    assert mob["go_at"] == "2030-06-01T12:00:00.000Z"
    assert mob["gather_at"] == "2030-06-01T11:45:00.000Z"
    assert mob["countdown_at"] == "2030-06-01T11:59:00.000Z"
    assert mob["end_at"] == "2030-06-01T12:01:30.000Z"
    go_ms = int(datetime(2030, 6, 1, 12, tzinfo=UTC).timestamp() * 1000)
    assert mob["timeline"]["go_at_ms"] == go_ms and mob["timeline"]["version"] == 1
    assert mob["zone"]["type"] == "Polygon"
    assert mob["zone"]["coordinates"][0][0] == PARK["coordinates"][0][0]
    assert mob["organizer"] == {"name": "Grace"} and mob["task_count"] == 0
    assert _count(db) == 1

    # The owner sees the draft; nobody else does.
    assert client.get(f"/api/mobs/{mob['id']}", headers=auth(token)).status_code == 200
    r = client.get(f"/api/mobs/{mob['id']}")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "mob_not_found"
    other = make_organizer(client)
    assert client.get(f"/api/mobs/{mob['id']}", headers=auth(other)).status_code == 404


def test_create_mob_field_errors(client, db):
    token = make_organizer(client)
    base = {
        "title": "T",
        "action": "A",
        "zone": PARK,
        "go_at": future(),
        "duration_s": 60,
    }
    cases = [
        ({"go_at": "2030-06-01T14:00:00"}, 400, "time_without_offset"),
        ({"go_at": "next tuesday"}, 400, "time_invalid"),
        ({"go_at": "2001-01-01T00:00:00Z"}, 422, "go_at_in_past"),
        ({"duration_s": 0}, 400, "field_out_of_range"),
        ({"duration_s": "60"}, 400, "field_wrong_type"),
        ({"title": ""}, 400, "field_too_short"),
        ({"title": "x" * 121}, 400, "field_too_long"),
        ({"colour": "red"}, 400, "field_unknown"),
    ]
    for change, status, code in cases:
        r = client.post("/api/mobs", json={**base, **change}, headers=auth(token))
        assert r.status_code == status, change
        assert r.get_json()["error"]["code"] == code, change
    r = client.post(
        "/api/mobs", json={k: v for k, v in base.items() if k != "zone"}, headers=auth(token)
    )
    assert r.get_json()["error"] == {
        "code": "field_missing",
        "message": "The field 'zone' is required.",
        "where": {"field": "zone"},
    }
    assert _count(db) == 0


def _square(lon, lat, d=0.002):
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
        ],
    }


def _zone_cases():
    """The zones the foundation issue lists, each with the code it must be refused with."""
    bow_tie = {
        "type": "Polygon",
        "coordinates": [[[13.0, 52.0], [13.01, 52.01], [13.01, 52.0], [13.0, 52.01], [13.0, 52.0]]],
    }
    unclosed = copy.deepcopy(PARK)
    unclosed["coordinates"][0] = unclosed["coordinates"][0][:-1]
    three = {"type": "Polygon", "coordinates": [[[13.0, 52.0], [13.01, 52.0], [13.0, 52.0]]]}
    lat95 = copy.deepcopy(PARK)
    lat95["coordinates"][0][1] = [13.4, 95.0]
    non_numeric = copy.deepcopy(PARK)
    non_numeric["coordinates"][0][2] = [13.4, "52.53"]
    antimeridian = {
        "type": "Polygon",
        "coordinates": [[[179.99, 0], [-179.99, 0], [-179.99, 0.01], [179.99, 0.01], [179.99, 0]]],
    }
    import math

    n = 2100
    ring = [
        [13.4 + 0.01 * math.cos(2 * math.pi * i / n), 52.5 + 0.006 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    many = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
    huge = _square(13.0, 52.0, d=0.1)  # about 7 km × 11 km
    point = {"type": "Point", "coordinates": [13.4, 52.5]}
    return [
        ("bow-tie", bow_tie, 422, "zone_self_intersects"),
        ("unclosed ring", unclosed, 422, "ring_not_closed"),
        ("ring of 3 positions", three, 422, "ring_too_few_positions"),
        ("latitude 95", lat95, 422, "coordinate_out_of_range"),
        ("non-numeric coordinate", non_numeric, 422, "coordinate_not_numeric"),
        ("crosses the antimeridian", antimeridian, 422, "zone_crosses_antimeridian"),
        ("too many vertices", many, 422, "zone_too_many_vertices"),
        ("area over the limit", huge, 422, "zone_too_large"),
        ("a Point", point, 422, "zone_wrong_type"),
    ]


def test_bad_zones_are_refused_with_distinct_codes_and_nothing_stored(client, db):
    token = make_organizer(client)
    body = {"title": "T", "action": "A", "go_at": future(), "duration_s": 60}
    codes = set()
    for name, zone, status, code in _zone_cases():
        r = client.post("/api/mobs", json={**body, "zone": zone}, headers=auth(token))
        assert r.status_code == status, name
        error = r.get_json()["error"]
        assert error["code"] == code, (name, error)
        assert error["message"] and error["where"]["field"] == "zone", name
        codes.add(code)
    # The bow-tie's error says where the ring crosses itself.
    bow = client.post("/api/mobs", json={**body, "zone": _zone_cases()[0][1]}, headers=auth(token))
    where = bow.get_json()["error"]["where"]
    assert abs(where["lon"] - 13.005) < 1e-6 and abs(where["lat"] - 52.005) < 1e-6

    # Malformed JSON and a 5 MB body.
    r = client.post(
        "/api/mobs",
        data='{"title": "T", "zone": {"type": "Polygon",',
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_json"
    codes.add("invalid_json")
    big = json.dumps({**body, "zone": PARK, "description": "x" * 5_000_000})
    r = client.post(
        "/api/mobs", data=big, headers={**auth(token), "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"
    codes.add("payload_too_large")

    assert len(codes) == len(_zone_cases()) + 2
    assert _count(db) == 0


def test_patch_mob(client, db):
    token = make_organizer(client)
    mob = make_mob(client, token)
    url = f"/api/mobs/{mob['id']}"
    r = client.patch(url, json={"title": "Weinberg spring clean"}, headers=auth(token))
    assert r.status_code == 200 and r.get_json()["title"] == "Weinberg spring clean"
    assert r.get_json()["timeline"]["version"] == 1

    r = client.patch(url, json={"go_at": "2031-01-01T10:00:00+01:00"}, headers=auth(token))
    assert r.get_json()["go_at"] == "2031-01-01T09:00:00.000Z"
    assert r.get_json()["timeline"]["version"] == 2

    new_zone = _square(13.398, 52.531, d=0.003)
    r = client.patch(url, json={"zone": new_zone}, headers=auth(token))
    assert r.status_code == 200 and r.get_json()["zone"]["coordinates"][0][0] == [13.398, 52.531]

    r = client.patch(url, json={}, headers=auth(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "body_empty"
    r = client.patch(
        url, json={"zone": {"type": "Point", "coordinates": [0, 0]}}, headers=auth(token)
    )
    assert r.status_code == 422
    stored = client.get(url, headers=auth(token)).get_json()["zone"]
    assert stored["coordinates"] == new_zone["coordinates"]


def test_zone_cannot_change_once_live(client, db):
    token = make_organizer(client)
    mob = make_published_mob(client, token)
    url = f"/api/mobs/{mob['id']}"
    # Published but not yet live: the zone may still change.
    r = client.patch(url, json={"zone": PARK}, headers=auth(token))
    assert r.status_code == 200
    for phase in ("gathering", "countdown", "action"):
        db.execute(update(Mob).where(Mob.id == mob["id"]).values(status=phase))
        db.commit()
        r = client.patch(url, json={"zone": _square(13.398, 52.531)}, headers=auth(token))
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_live", phase
        r = client.patch(url, json={"title": "Still editable"}, headers=auth(token))
        assert r.status_code == 200
    stored = client.get(url).get_json()["zone"]
    assert stored["coordinates"][0][0] == PARK["coordinates"][0][0]


def test_zone_change_refused_when_tasks_would_fall_outside(client, db):
    token = make_organizer(client)
    mob = make_published_mob(client, token)
    far = _square(13.41, 52.54, d=0.003)
    r = client.patch(f"/api/mobs/{mob['id']}", json={"zone": far}, headers=auth(token))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "tasks_outside_zone"


def test_publish_and_cancel(client, db):
    token = make_organizer(client)
    mob = make_mob(client, token)
    url = f"/api/mobs/{mob['id']}"
    r = client.post(f"{url}/publish", headers=auth(token))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "mob_has_no_tasks"
    client.post(
        f"{url}/tasks/generate", json={"spacing_m": 40, "kind": "litter"}, headers=auth(token)
    )
    r = client.post(f"{url}/publish", headers=auth(token))
    assert r.status_code == 200
    published = r.get_json()
    assert published["status"] == "published" and published["published_at"]
    # Publishing again changes nothing; everyone can now see the mob.
    assert client.post(f"{url}/publish", headers=auth(token)).get_json() == published
    assert client.get(url).status_code == 200

    r = client.post(f"{url}/cancel", headers=auth(token))
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert r.get_json()["timeline"]["version"] == 2
    r = client.post(f"{url}/publish", headers=auth(token))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_not_draft"
    r = client.patch(url, json={"title": "x"}, headers=auth(token))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_closed"


def test_finished_mob_cannot_be_cancelled(client, db):
    token = make_organizer(client)
    mob = make_published_mob(client, token)
    db.execute(update(Mob).where(Mob.id == mob["id"]).values(status="finished"))
    db.commit()
    r = client.post(f"/api/mobs/{mob['id']}/cancel", headers=auth(token))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_closed"


def test_publish_refuses_past_go_at(client, db):
    token = make_organizer(client)
    mob = make_mob(client, token)
    client.post(
        f"/api/mobs/{mob['id']}/tasks/generate",
        json={"spacing_m": 40, "kind": "litter"},
        headers=auth(token),
    )
    db.execute(
        update(Mob).where(Mob.id == mob["id"]).values(go_at=datetime(2020, 1, 1, tzinfo=UTC))
    )
    db.commit()
    r = client.post(f"/api/mobs/{mob['id']}/publish", headers=auth(token))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "go_at_in_past"


def test_my_mobs_lists_own_mobs_only(client, db):
    token = make_organizer(client)
    mine = make_mob(client, token)
    make_mob(client, make_organizer(client))
    r = client.get("/api/organizers/me/mobs", headers=auth(token))
    assert [m["id"] for m in r.get_json()["mobs"]] == [mine["id"]]
