"""GET /api/mobs?lat=&lon=&radius_m=: published, unfinished mobs nearby, nearest first."""

from sqlalchemy import update

import geo
from server.infra.models import Mob
from tests.factories import PARK, auth, make_mob, make_organizer, make_published_mob


def _square(lon, lat, d=0.002):
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
        ],
    }


def test_find_a_published_mob_from_800_m_away(client, db):
    token = make_organizer(client)
    mob = make_published_mob(client, token)
    # 800 m south of the park's southern edge (lat 52.53049) is about 0.0072° of latitude.
    lat, lon = 52.53049 - 0.0072, 13.3995
    r = client.get(f"/api/mobs?lat={lat}&lon={lon}&radius_m=1000")
    assert r.status_code == 200
    found = r.get_json()["mobs"]
    assert [m["id"] for m in found] == [mob["id"]]
    expected = geo.distance_to_zone_m(geo.parse_zone(PARK), lon, lat)
    assert abs(found[0]["distance_m"] - expected) < 2.0
    assert 780 < found[0]["distance_m"] < 820

    # Out of range with a 700 m radius; distance 0 from inside the park.
    assert client.get(f"/api/mobs?lat={lat}&lon={lon}&radius_m=700").get_json()["mobs"] == []
    inside = client.get("/api/mobs?lat=52.532&lon=13.40&radius_m=10").get_json()["mobs"]
    assert inside[0]["id"] == mob["id"] and inside[0]["distance_m"] == 0


def test_nearest_first_and_only_listed_statuses(client, db):
    token = make_organizer(client)
    near = make_published_mob(client, token, zone=_square(13.40, 52.52))
    far = make_published_mob(client, token, zone=_square(13.42, 52.52))
    live = make_published_mob(client, token, zone=_square(13.41, 52.52))
    draft = make_mob(client, token, zone=_square(13.401, 52.521, d=0.0005))
    cancelled = make_published_mob(client, token, zone=_square(13.403, 52.52))
    finished = make_published_mob(client, token, zone=_square(13.404, 52.52, d=0.0005))
    client.post(f"/api/mobs/{cancelled['id']}/cancel", headers=auth(token))
    db.execute(update(Mob).where(Mob.id == finished["id"]).values(status="finished"))
    db.execute(update(Mob).where(Mob.id == live["id"]).values(status="action"))
    db.commit()

    r = client.get("/api/mobs?lat=52.521&lon=13.399&radius_m=5000")
    ids = [m["id"] for m in r.get_json()["mobs"]]
    assert ids == [near["id"], live["id"], far["id"]]
    distances = [m["distance_m"] for m in r.get_json()["mobs"]]
    assert distances == sorted(distances)
    assert draft["id"] not in ids


def test_near_the_antimeridian_and_poles(client, db):
    token = make_organizer(client)
    fiji = make_published_mob(client, token, zone=_square(179.990, -16.5, d=0.005))
    r = client.get("/api/mobs?lat=-16.497&lon=-179.999&radius_m=3000")
    assert [m["id"] for m in r.get_json()["mobs"]] == [fiji["id"]]
    r = client.get("/api/mobs?lat=89.99&lon=0&radius_m=1000")
    assert r.status_code == 200 and r.get_json()["mobs"] == []


def test_bad_query_parameters(client, db):
    cases = [
        ("/api/mobs?lon=13.4", "param_missing"),
        ("/api/mobs?lat=52.5&lon=east", "param_wrong_type"),
        ("/api/mobs?lat=95&lon=13.4", "param_out_of_range"),
        ("/api/mobs?lat=52.5&lon=13.4&radius_m=1e9", "param_out_of_range"),
        ("/api/mobs?lat=nan&lon=13.4", "param_wrong_type"),
    ]
    for url, code in cases:
        r = client.get(url)
        assert r.status_code == 400, url
        assert r.get_json()["error"]["code"] == code, url
