"""Generating, placing, listing and removing a mob's tasks."""

from shapely.geometry import Point, shape

import geo
from server.infra.models import Task
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


def _holders(app, client, mob_id, n):
    """n participants inside the park, each holding a task; returns their socket clients."""
    from server import socketio

    clients = []
    for _ in range(n):
        token = client.post(f"/api/mobs/{mob_id}/participants", json={}).get_json()["token"]
        sc = socketio.test_client(app, namespace="/participant", auth={"token": token})
        fix = {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 8, "at": 0}
        ack = sc.emit("report_location", fix, namespace="/participant", callback=True)
        assert ack["task"] is not None
        sc.get_received("/participant")
        clients.append((sc, ack["task"]["id"]))
    return clients


def _published(client, capacity):
    token = make_organizer(client)
    mob = make_mob(client, token)
    client.post(f"/api/mobs/{mob['id']}/tasks/generate",
                json={"spacing_m": 40, "kind": "litter", "capacity": capacity},
                headers=auth(token))  # fmt: skip
    assert client.post(f"/api/mobs/{mob['id']}/publish", headers=auth(token)).status_code == 200
    return token, mob


def test_move_a_task_by_dragging_it_inside_the_zone(client, db):
    token, mob = _published(client, 1)
    task = client.get(f"/api/mobs/{mob['id']}/tasks").get_json()["features"][0]
    url = f"/api/mobs/{mob['id']}/tasks/{task['id']}"
    r = client.patch(url, json={"lat": 52.5320, "lon": 13.4000, "label": "By the gate"},
                     headers=auth(token))  # fmt: skip
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["geometry"]["coordinates"] == [13.4, 52.532]
    assert r.get_json()["properties"]["label"] == "By the gate"
    r = client.patch(url, json={"lat": 52.54, "lon": 13.4}, headers=auth(token))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "task_outside_zone"
    r = client.patch(url, json={"lat": 52.532}, headers=auth(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "field_missing"
    r = client.patch(url, json={"status": "done"}, headers=auth(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "status_invalid"
    r = client.patch(
        f"/api/mobs/{mob['id']}/tasks/999999", json={"label": "x"}, headers=auth(token)
    )
    assert r.status_code == 404


def test_closing_a_task_re_matches_its_holders(app, client, db):
    token, mob = _published(client, 3)
    holders = _holders(app, client, mob["id"], 2)
    task_id = holders[0][1]
    assert all(t == task_id for _, t in holders)  # both took the nearest task
    r = client.patch(f"/api/mobs/{mob['id']}/tasks/{task_id}", json={"status": "closed"},
                     headers=auth(token))  # fmt: skip
    assert r.status_code == 200
    assert r.get_json()["properties"]["status"] == "closed"
    assert "assigned" not in r.get_json()["properties"]  # never shown (issue 15 §1)
    assert db.get(Task, task_id).assigned == 0
    for sc, _ in holders:
        [pushed] = [e for e in sc.get_received("/participant") if e["name"] == "task_assigned"]
        assert pushed["args"][0]["task"]["id"] != task_id
    r = client.patch(f"/api/mobs/{mob['id']}/tasks/{task_id}", json={"status": "open"},
                     headers=auth(token))  # fmt: skip
    assert r.get_json()["properties"]["status"] == "open"


def test_lowering_capacity_frees_the_latest_holders(app, client, db):
    token, mob = _published(client, 3)
    holders = _holders(app, client, mob["id"], 3)
    task_id = holders[0][1]
    r = client.patch(f"/api/mobs/{mob['id']}/tasks/{task_id}", json={"capacity": 1},
                     headers=auth(token))  # fmt: skip
    assert r.get_json()["properties"]["capacity"] == 1
    assert "assigned" not in r.get_json()["properties"]  # never shown (issue 15 §1)
    assert db.get(Task, task_id).assigned == 1
    moved = [
        [e for e in sc.get_received("/participant") if e["name"] == "task_assigned"]
        for sc, _ in holders
    ]
    assert [len(m) for m in moved] == [0, 1, 1]  # the first to come keeps the task
    assert all(m[0]["args"][0]["task"]["id"] != task_id for m in moved[1:])


def test_the_tasks_collection_is_built_once_per_version_and_follows_every_change(app, client, db):
    """Issue 15 §6: loops of GET …/tasks on a large mob each rebuilt the whole collection.
    It is now built once per (tasks version, counted deeds) and served from memory to every
    reader (REST, snapshots, pushes); an organizer's edit or a deed shows at once."""
    import uuid

    from sqlalchemy import event

    from server import socketio

    token, mob = _published(client, 1)
    url = f"/api/mobs/{mob['id']}/tasks"
    engine = app.extensions["goodmob.engine"]
    built: list[str] = []

    def record(conn, cursor, statement, *args):
        if "ST_X" in statement.replace("st_x", "ST_X") and "FROM tasks" in statement:
            built.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        first = client.get(url).get_json()
        built.clear()
        for _ in range(5):
            assert client.get(url).get_json() == first
        spectator = socketio.test_client(app, namespace="/live")
        ack = spectator.emit("watch_mob", {"mob": mob["id"]}, namespace="/live", callback=True)
        assert ack["tasks"] == first
        assert built == [], "the collection was built again for an unchanged mob"
        task_id = first["features"][0]["id"]
        r = client.patch(f"{url}/{task_id}", json={"label": "By the gate"}, headers=auth(token))
        assert r.status_code == 200
        labels = {f["id"]: f["properties"]["label"] for f in client.get(url).get_json()["features"]}
        assert labels[task_id] == "By the gate"
        # A deed counts at once.
        from tests.server.test_timeline import shift_schedule, tick

        shift_schedule(db, mob["id"], go_in_s=-1)
        tick(app, db)  # → action
        joined = client.post(f"/api/mobs/{mob['id']}/participants", json={}).get_json()
        phone = socketio.test_client(app, namespace="/participant", auth={"token": joined["token"]})
        fix = {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 8, "at": 0}
        task = phone.emit("report_location", fix, namespace="/participant", callback=True)["task"]
        deed = {"deed_id": str(uuid.uuid4()), "task": task["id"], "lat": task["lat"],
                "lon": task["lon"], "accuracy_m": 5}  # fmt: skip
        ack = phone.emit("confirm_deed", deed, namespace="/participant", callback=True)
        assert ack.get("status") == "accepted", ack
        features = client.get(url).get_json()["features"]
        done = {f["id"]: f["properties"]["deeds_done"] for f in features}
        assert done[task["id"]] == 1
        phone.disconnect("/participant")
        spectator.disconnect("/live")
    finally:
        event.remove(engine, "before_cursor_execute", record)
