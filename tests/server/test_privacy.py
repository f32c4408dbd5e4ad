"""Privacy: no participant's position reaches a spectator, the public API or the logs.

A whole mob is played in-process (the scheduler ticked by hand, as in test_timeline): phones
join and report known positions, the mob counts down, goes, deeds are confirmed, the
organizer announces, the mob ends. Every payload a /live spectator receives (snapshots and
pushed events) and every public REST answer is scanned for those positions, as a coordinate
pair in either order at ~10 m precision and as the exact decimals sent. Density cells with
fewer than k people are absent; positions are deleted when the mob ends; the log records of
the run and the access log of a real server process hold no position and no token.
"""

from __future__ import annotations

import json
import logging
import random
import re
import uuid

import h3
import requests
import socketio as sio_client
from sqlalchemy import select

from server import socketio
from server.infra.models import Participant
from support.server import ServerProcess
from tests.factories import PARK, auth, make_organizer, make_published_mob, organizer_token
from tests.server.test_timeline import shift_schedule, tick

P, LIVE = "/participant", "/live"
NEAR = 1e-4  # degrees: ~11 m of latitude, ~7 m of longitude here


def number_pairs(value) -> list[tuple[float, float]]:
    """Pairs of numbers that sit together in one JSON container: neighbours in an array,
    any two members of an object (``{"lat", "accuracy_m", "lon"}`` still pairs lat and lon)."""
    pairs: list[tuple[float, float]] = []
    if isinstance(value, dict):
        nums = [float(v) for v in value.values() if _is_number(v)]
        pairs += [(a, b) for i, a in enumerate(nums) for b in nums[i + 1 :]]
        for v in value.values():
            pairs += number_pairs(v)
    elif isinstance(value, list | tuple):
        nums = [float(v) for v in value if _is_number(v)]
        pairs += list(zip(nums, nums[1:], strict=False))
        for v in value:
            pairs += number_pairs(v)
    return pairs


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def leaks(payload, positions: list[tuple[float, float]]) -> list[str]:
    """Where ``payload`` reveals one of ``positions`` (lat, lon): as two numbers of one
    container within NEAR, in either order, or as the exact decimals the phone sent."""
    found = []
    pairs = number_pairs(payload)
    text = json.dumps(payload)
    for lat, lon in positions:
        for a, b in pairs:
            if (abs(a - lat) < NEAR and abs(b - lon) < NEAR) or (
                abs(a - lon) < NEAR and abs(b - lat) < NEAR
            ):
                found.append(f"({a}, {b}) ≈ ({lat}, {lon})")
        for exact in (repr(lat), repr(lon)):
            if exact in text:
                found.append(f"{exact} verbatim")
    return found


def public_pairs(tasks: dict, resolution: int) -> list[tuple[float, float]]:
    """(lat, lon) pairs that public answers legitimately carry: task spots, the zone's
    corners and every H3 cell corner around the park."""
    pairs = [
        (f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0])
        for f in tasks["features"]
    ]
    pairs += [(lat, lon) for lon, lat in PARK["coordinates"][0]]
    lats = [lat for _, lat in PARK["coordinates"][0]]
    lons = [lon for lon, _ in PARK["coordinates"][0]]
    center = h3.latlng_to_cell(sum(lats) / len(lats), sum(lons) / len(lons), resolution)
    for cell in h3.grid_disk(center, 8):
        pairs += list(h3.cell_to_boundary(cell))
    return pairs


def private_positions(tasks: dict, resolution: int, count: int, rng) -> list[tuple[float, float]]:
    """``count`` positions inside the park, each in a distinct spot away from any public pair,
    the first ``count - 2`` in one H3 cell (a crowd) and the last two alone in other cells."""
    from shapely.geometry import Point, Polygon

    park = Polygon(PARK["coordinates"][0])
    public = public_pairs(tasks, resolution)

    def clear(lat, lon):
        inside = park.buffer(-0.0003).contains(Point(lon, lat))
        return inside and all(
            not (abs(lat - a) < 1.5 * NEAR and abs(lon - b) < 1.5 * NEAR) for a, b in public
        )

    def draw(near=None, spread=0.0004):
        for _ in range(100_000):
            if near is None:
                lat, lon = rng.uniform(52.5306, 52.5332), rng.uniform(13.3978, 13.4024)
            else:
                lat, lon = (
                    near[0] + rng.uniform(-spread, spread),
                    near[1] + rng.uniform(-spread, spread),
                )
            lat, lon = round(lat, 7), round(lon, 7)
            if clear(lat, lon):
                return lat, lon
        raise AssertionError("no free spot for a private position; loosen the test's spacing")

    crowd_cell = None
    chosen: list[tuple[float, float]] = []
    for _ in range(10_000):
        if len(chosen) == count - 2:
            break
        lat, lon = draw(chosen[0] if chosen else None, 0.0003)
        cell = h3.latlng_to_cell(lat, lon, resolution)
        crowd_cell = crowd_cell or cell
        if cell == crowd_cell and all(
            abs(lat - a) > 2 * NEAR or abs(lon - b) > 2 * NEAR for a, b in chosen
        ):
            chosen.append((lat, lon))
    loners: set[str] = {crowd_cell}
    for _ in range(10_000):
        if len(chosen) == count:
            break
        lat, lon = draw()
        cell = h3.latlng_to_cell(lat, lon, resolution)
        if cell not in loners:
            loners.add(cell)
            chosen.append((lat, lon))
    return chosen


def public_get_routes(app) -> list[str]:
    """Every GET route under /api/mobs/<mob_id> that needs no token (found, not listed, so a
    new public endpoint is scanned too)."""
    routes = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not rule.rule.startswith("/api/mobs/<mob_id>"):
            continue
        if set(rule.arguments) != {"mob_id"}:
            continue
        routes.append(rule.rule)
    return sorted(routes)


def test_no_position_reaches_spectators_or_the_public_api(app, client, db, caplog):
    caplog.set_level(logging.INFO, logger=app.logger.name)  # as the server runs (LOG_LEVEL)
    s = app.config["SETTINGS"]
    organizer = make_organizer(client)
    mob = make_published_mob(client, organizer, spacing_m=60)
    mob_id = mob["id"]
    tasks = client.get(f"/api/mobs/{mob_id}/tasks").get_json()
    positions = private_positions(tasks, s.density_resolution, 8, random.Random(7))

    spectator = socketio.test_client(app, namespace=LIVE)
    seen: list = [spectator.emit("watch_mob", {"mob": mob_id}, namespace=LIVE, callback=True)]

    phones, tokens = [], []
    for lat, lon in positions:
        joined = client.post(f"/api/mobs/{mob_id}/participants", json={}).get_json()
        tokens.append(joined["token"])
        sc = socketio.test_client(app, namespace=P, auth={"token": joined["token"]})
        sc.emit("join_mob", {"mob": mob_id}, namespace=P, callback=True)
        ack = sc.emit(
            "report_location",
            {"lat": lat, "lon": lon, "accuracy_m": 8, "at": 0},
            namespace=P,
            callback=True,
        )
        assert ack["zone"] == "inside", ack
        phones.append((sc, ack["task"]["id"] if ack["task"] else None))
    seen.append(spectator.emit("watch_mob", {"mob": mob_id}, namespace=LIVE, callback=True))

    # Density: only cells of at least k people; the two loners' cells are never shown.
    loner_cells = {h3.latlng_to_cell(lat, lon, s.density_resolution) for lat, lon in positions[-2:]}
    densities = [seen[-1]["density"]]

    shift_schedule(db, mob_id, go_in_s=30)
    tick(app, db)  # → countdown
    shift_schedule(db, mob_id, go_in_s=-1)
    tick(app, db)  # → action
    for (sc, task), (lat, lon) in zip(phones, positions, strict=True):
        if task is not None:
            deed = {
                "deed_id": str(uuid.uuid4()),
                "task": task,
                "lat": lat,
                "lon": lon,
                "accuracy_m": 8,
            }
            assert "error" not in sc.emit("confirm_deed", deed, namespace=P, callback=True)
    r = client.post(
        f"/api/mobs/{mob_id}/announcements",
        json={"text": "Great job, all of you"},
        headers=auth(organizer),
    )
    assert r.status_code == 201
    seen.append(spectator.emit("watch_mob", {"mob": mob_id}, namespace=LIVE, callback=True))

    def public_answers():
        answers = []
        for route in public_get_routes(app):
            r = client.get(route.replace("<mob_id>", mob_id))
            assert r.status_code < 500, route
            answers.append((route, r.get_json(silent=True)))
        lon, lat = PARK["coordinates"][0][0]  # the asker's own point is echoed back: not theirs
        r = client.get(f"/api/mobs?lat={lat}&lon={lon}")
        answers.append(("nearby", r.get_json()))
        return answers

    answers = public_answers()
    shift_schedule(db, mob_id, go_in_s=-120, duration_s=60)
    tick(app, db)  # → finished
    shift_schedule(db, mob_id, go_in_s=-(60 + s.deed_grace_s + 10), duration_s=60)
    tick(app, db)  # the deed grace period is over: positions purged
    seen.append(spectator.emit("watch_mob", {"mob": mob_id}, namespace=LIVE, callback=True))
    answers += public_answers()
    seen += [e for e in spectator.get_received(LIVE)]

    densities += [e["args"][0] for e in seen if isinstance(e, dict) and e.get("name") == "density"]
    densities += [a["density"] for a in seen if isinstance(a, dict) and "density" in a]
    for density in densities:
        assert all(c["count"] >= s.density_min_people for c in density["cells"]), density
        assert not loner_cells & {c["h3"] for c in density["cells"]}, density
    names = {e["name"] for e in seen if isinstance(e, dict) and "name" in e}
    assert {"phase", "stats", "announcement"} <= names, names
    assert len(answers) >= 8
    for payload in seen:
        assert leaks(payload, positions) == [], payload
    for route, body in answers:
        assert leaks(body, positions) == [], route
        assert not any(t in json.dumps(body) for t in tokens), route

    # Raw positions are gone once the mob has ended.
    stored = db.execute(select(Participant.lat, Participant.lon)).all()
    assert stored and all(lat is None and lon is None for lat, lon in stored)

    # The log records written during the whole mob hold no position and no token.
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for lat, lon in positions:
        assert f"{lat:.4f}" not in text and f"{lon:.4f}" not in text
    assert not any(t in text for t in tokens)
    for sc, _ in phones:
        sc.disconnect(P)
    spectator.disconnect(LIVE)


def test_a_real_server_logs_no_position_and_no_token(tmp_path):
    """A development server (access log on): search nearby, join, report; read its output."""
    db_url = f"sqlite:///{tmp_path / 'privacy.sqlite3'}"
    server = ServerProcess(db_url, GOODMOB_ENV="development", LOG_LEVEL="DEBUG").start()
    lat, lon = 52.5318731, 13.4001947

    def post(path, body=None, token=None):
        headers = auth(token) if token else {}
        r = requests.post(f"{server.url}/api{path}", json=body, headers=headers, timeout=5)
        assert r.status_code in (200, 201), r.text
        return r.json()

    try:
        token = organizer_token(f"{server.url}/api", email="p@example.org")
        mob = {"title": "Privacy", "action": "Pick up", "zone": PARK, "duration_s": 60}
        mob_id = post("/mobs", {**mob, "go_at": "2999-01-01T12:00:00Z"}, token)["id"]
        post(f"/mobs/{mob_id}/tasks/generate", {"spacing_m": 40, "kind": "litter"}, token)
        post(f"/mobs/{mob_id}/publish", None, token)
        nearby = requests.get(f"{server.url}/api/mobs?lat={lat}&lon={lon}", timeout=5)
        assert nearby.status_code == 200
        joined = post(f"/mobs/{mob_id}/participants", {})
        phone = sio_client.Client(reconnection=False)
        phone.connect(
            server.url, namespaces=[P], auth={"token": joined["token"]}, transports=["websocket"]
        )
        phone.call("join_mob", {"mob": mob_id}, namespace=P, timeout=5)
        fix = {"lat": lat, "lon": lon, "accuracy_m": 8, "at": 0}
        assert phone.call("report_location", fix, namespace=P, timeout=5)["zone"] == "inside"
        phone.disconnect()
    finally:
        server.stop()
    output = server.proc.stdout.read()
    assert re.search(r"goodmob.access .*GET /api/mobs 200", output), "the access log is on"
    for secret in ("52.5318", "13.4001", joined["token"], token):
        assert secret not in output, f"{secret[:12]}… is in the server's output"


# --- issue 15 §1: which task a participant holds is theirs alone ---------------------------


def task_collections(payload) -> list[list[dict]]:
    """The task features of every GeoJSON FeatureCollection of tasks inside ``payload``."""
    found = []
    if isinstance(payload, dict):
        features = payload.get("features")
        if payload.get("type") == "FeatureCollection" and isinstance(features, list):
            found.append([f for f in features if f.get("geometry", {}).get("type") == "Point"])
        for value in payload.values():
            found += task_collections(value)
    elif isinstance(payload, list):
        for value in payload:
            found += task_collections(value)
    return found


def look_of(feature: dict) -> str:
    """What a task shows besides its name: equal for tasks that nobody can tell apart."""
    names = ("id", "task_id", "label")
    props = {k: v for k, v in feature.get("properties", {}).items() if k not in names}
    return json.dumps(props, sort_keys=True)


def test_no_one_but_the_holder_can_tell_which_task_a_lone_participant_holds(app, client, db):
    """One participant (the worst case: no crowd to hide in) claims the nearest task. Every
    answer an anonymous caller or the organizer gets (REST, /live and /organizer snapshots and
    pushes, the organizer's own edits) shows every open task alike; the organizer then closes
    the held task (the re-match uses the latest fix) and reads again: still nothing."""
    organizer = make_organizer(client)
    mob_id = make_published_mob(client, organizer, spacing_m=40)["id"]
    spectator = socketio.test_client(app, namespace=LIVE)
    watcher = socketio.test_client(app, namespace="/organizer", auth={"token": organizer})
    seen = [
        spectator.emit("watch_mob", {"mob": mob_id}, namespace=LIVE, callback=True),
        watcher.emit("watch_mob", {"mob": mob_id}, namespace="/organizer", callback=True),
    ]
    token = client.post(f"/api/mobs/{mob_id}/participants", json={}).get_json()["token"]
    phone = socketio.test_client(app, namespace=P, auth={"token": token})
    phone.emit("join_mob", {"mob": mob_id}, namespace=P, callback=True)
    fix = {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 8, "at": 0}
    held = phone.emit("report_location", fix, namespace=P, callback=True)["task"]["id"]

    def read_all() -> list:
        answers = [
            spectator.emit("watch_mob", {"mob": mob_id}, namespace=LIVE, callback=True),
            watcher.emit("watch_mob", {"mob": mob_id}, namespace="/organizer", callback=True),
        ]
        for route in public_get_routes(app):
            url = route.replace("<mob_id>", mob_id)
            answers.append(client.get(url).get_json(silent=True))
            answers.append(client.get(url, headers=auth(organizer)).get_json(silent=True))
        answers.append(client.get("/api/organizers/me/mobs", headers=auth(organizer)).get_json())
        answers += [e["args"] for e in spectator.get_received(LIVE)]
        answers += [e["args"] for e in watcher.get_received("/organizer")]
        return answers

    def assert_alike(answers, closed=()):
        collections = [c for a in answers for c in task_collections(a)]
        assert collections, "no tasks were read: the check saw nothing"
        for features in collections:
            open_looks = {look_of(f) for f in features if f["id"] not in closed}
            assert len(open_looks) == 1, open_looks  # the held task looks like any other

    seen += read_all()
    assert_alike(seen)
    # The organizer closes the held task: the phone is re-matched from its latest fix.
    r = client.patch(
        f"/api/mobs/{mob_id}/tasks/{held}", json={"status": "closed"}, headers=auth(organizer)
    )
    assert r.status_code == 200
    moved = [e for e in phone.get_received(P) if e["name"] == "task_assigned"]
    now_held = moved[-1]["args"][0]["task"]["id"]
    assert now_held != held
    # Any edit's answer to the organizer shows no more than the collection does.
    edit = client.patch(
        f"/api/mobs/{mob_id}/tasks/{now_held}", json={"label": "Gate"}, headers=auth(organizer)
    ).get_json()
    assert_alike([r.get_json(), edit, *read_all()], closed={held})
    assert not any("assigned" in f["properties"] for f in [r.get_json(), edit]), (
        "an edit's answer carries a holder count"
    )
    for sc, ns in ((phone, P), (spectator, LIVE), (watcher, "/organizer")):
        sc.disconnect(ns)


# --- issue 15 §2: fake joiners cannot fill a lone person's cell up to k --------------------


def test_fresh_fake_joiners_cannot_make_a_lone_persons_cell_appear(app, client, db):
    """A lone participant has been in the zone for a while; 4 fake phones join and report
    next to them. The cell must stay hidden: only people who have been in the zone for
    DENSITY_TRUST_AFTER_S count towards k. Once the fakes have been there that long too, the
    cell shows (the residual risk documented in SECURITY.md)."""
    from dataclasses import replace
    from datetime import timedelta

    from sqlalchemy import update

    from server.infra.models import utcnow

    base = app.config["SETTINGS"]
    app.config["SETTINGS"] = replace(base, density_trust_after_s=120)
    try:
        organizer = make_organizer(client)
        mob_id = make_published_mob(client, organizer, spacing_m=40)["id"]
        spectator = socketio.test_client(app, namespace=LIVE)

        def cells():
            ack = spectator.emit("watch_mob", {"mob": mob_id}, namespace=LIVE, callback=True)
            return ack["density"]["cells"]

        def phone(lat, lon):
            token = client.post(f"/api/mobs/{mob_id}/participants", json={}).get_json()["token"]
            sc = socketio.test_client(app, namespace=P, auth={"token": token})
            fix = {"lat": lat, "lon": lon, "accuracy_m": 8, "at": 0}
            assert sc.emit("report_location", fix, namespace=P, callback=True)["zone"] == "inside"
            return sc

        def age_everyone(seconds):
            db.execute(
                update(Participant).values(entered_zone_at=utcnow() - timedelta(seconds=seconds))
            )
            db.commit()

        lone = phone(52.53200, 13.40000)
        age_everyone(600)  # the lone person has been in the zone for 10 minutes
        fakes = [phone(52.53200 + 0.00001 * i, 13.40000) for i in range(1, 5)]
        assert cells() == []  # 1 established + 4 fresh: below k
        age_everyone(600)  # the fakes stayed 10 minutes: they count now (the residual risk)
        [cell] = cells()
        assert cell["count"] == 5
        for sc in [lone, *fakes]:
            sc.disconnect(P)
        spectator.disconnect(LIVE)
    finally:
        app.config["SETTINGS"] = base
