"""Generating, placing, listing and removing a mob's tasks."""

from shapely.geometry import Point, shape

import geo
from tests.factories import PARK, auth, make_mob, make_organizer


def test_generate_tasks_every_25_m_inside_the_park(client, db):
    token = make_organizer(client)
    mob = make_mob(client, token)
    url = f"/api/mobs/{mob['id']}/tasks"
    r = client.post(
        f"{url}/generate",
        json={"spacing_m": 25, "kind": "litter", "capacity": 3, "prompt": "Fill one bag"},
        headers=auth(token),
    )
    assert r.status_code == 201
    body = r.get_json()
    assert body["type"] == "FeatureCollection" and body["count"] == len(body["features"])
    zone = shape(PARK)
    # The park is about 8.2 ha; a hex cell at 25 m spacing covers 25² × √3/2 ≈ 541 m², and
    # cells cut by the boundary still get a task when more than 5 % of them is inside.
    full_cells = geo.zone_area_m2(geo.parse_zone(PARK)) / (25**2 * 3**0.5 / 2)
    assert full_cells <= body["count"] <= 1.3 * full_cells
    for feature in body["features"]:
        assert zone.covers(Point(feature["geometry"]["coordinates"]))
        assert feature["properties"]["capacity"] == 3
        assert feature["properties"]["kind"] == "litter"
        assert feature["properties"]["prompt"] == "Fill one bag"

    listed = client.get(url, headers=auth(token)).get_json()
    assert [f["id"] for f in listed["features"]] == [f["id"] for f in body["features"]]

    # Generating again replaces the tasks by default; replace=false adds to them.
    r = client.post(f"{url}/generate", json={"spacing_m": 50, "kind": "food"}, headers=auth(token))
    coarse = r.get_json()["count"]
    assert len(client.get(url, headers=auth(token)).get_json()["features"]) == coarse
    r = client.post(
        f"{url}/generate",
        json={"spacing_m": 50, "kind": "food", "replace": False, "grid": "square"},
        headers=auth(token),
    )
    assert r.status_code == 201
    total = coarse + r.get_json()["count"]
    assert len(client.get(url, headers=auth(token)).get_json()["features"]) == total


def test_generate_refuses_bad_parameters_and_too_many_tasks(client, db):
    token = make_organizer(client)
    mob = make_mob(client, token)
    url = f"/api/mobs/{mob['id']}/tasks/generate"
    cases = [
        ({"spacing_m": 1, "kind": "litter"}, 400, "field_out_of_range"),
        ({"spacing_m": "25", "kind": "litter"}, 400, "field_wrong_type"),
        ({"spacing_m": 25, "kind": "Litter Pick!"}, 400, "field_invalid"),
        ({"spacing_m": 25, "kind": "litter", "grid": "triangle"}, 400, "field_invalid"),
        ({"spacing_m": 25, "kind": "litter", "capacity": 0}, 400, "field_out_of_range"),
        ({"spacing_m": 5, "kind": "litter"}, 422, "too_many_tasks"),
    ]
    for body, status, code in cases:
        r = client.post(url, json=body, headers=auth(token))
        assert r.status_code == status, body
        assert r.get_json()["error"]["code"] == code, body
    assert (
        client.get(f"/api/mobs/{mob['id']}/tasks", headers=auth(token)).get_json()["features"] == []
    )


def test_place_and_delete_a_task(client, db):
    token = make_organizer(client)
    mob = make_mob(client, token)
    url = f"/api/mobs/{mob['id']}/tasks"
    r = client.post(
        url,
        json={"lat": 52.5320, "lon": 13.4000, "kind": "food", "label": "Soup table"},
        headers=auth(token),
    )
    assert r.status_code == 201
    task = r.get_json()
    assert task["geometry"]["coordinates"] == [13.4, 52.532]
    assert task["properties"]["label"] == "Soup table" and task["properties"]["capacity"] == 1

    r = client.post(url, json={"lat": 52.54, "lon": 13.40, "kind": "food"}, headers=auth(token))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "task_outside_zone"
    assert r.get_json()["error"]["where"] == {"lon": 13.4, "lat": 52.54}
    r = client.post(url, json={"lat": 95, "lon": 13.40, "kind": "food"}, headers=auth(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "field_out_of_range"

    assert client.delete(f"{url}/{task['id']}", headers=auth(token)).status_code == 204
    r = client.delete(f"{url}/{task['id']}", headers=auth(token))
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "task_not_found"
    assert client.get(url, headers=auth(token)).get_json()["features"] == []
