"""Issue 6 against real server processes (``python -m server``) and real Socket.IO clients.

* A campaign of three mobs in three time zones fires GO at one instant (the same ``go_at_ms``
  in every timeline, and every mob's ``action`` phase event at that instant); its global
  counter equals the sum of the mobs' verified deeds; pledges pay by threshold and cap; the
  summary exports valid GeoJSON without anyone's position; the statement is ready after.
* A follower connected over Socket.IO is told at once when a matching mob is published, and a
  Web Push (a real HTTP request) reaches a local stand-in push service.
* Cascade and views over HTTP; with Redis, a follower connected to one process is told of a
  publish on another, and a view is counted once whichever process receives it.
"""

from __future__ import annotations

import csv
import io
import threading
import uuid

import pytest
import requests
import socketio
from sqlalchemy import func, select

from server.infra.models import COUNTED_DEED_STATUSES, Deed
from support.organizer import Organizer
from support.server import ServerProcess
from tests.factories import PARK, future
from tests.growth_support import (
    CITIES,
    PushService,
    browser_keys,
    clean_growth,
    decrypt_push,
    geojson_errors,
    square,
    vapid_claims,
)

FAST = {"START_NOW_MIN_LEAD_S": "1", "DURATION_MIN_S": "1"}
TIMEOUT = 10


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


@pytest.fixture()
def fast_server(database_url, db):
    process = ServerProcess(database_url, **FAST).start()
    yield process
    process.stop()


class Api:
    """An organizer's (or anyone's) HTTP client of a real server."""

    def __init__(self, base: str, token: str | None = None):
        self.base, self.token = base, token

    def call(self, method: str, path: str, expect: int | None = None, token=None, **kw):
        headers = kw.pop("headers", {})
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        r = requests.request(method, self.base + path, headers=headers, timeout=15, **kw)
        if expect is not None:
            assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r

    def post(self, path, body=None, expect=None, **kw):
        return self.call("POST", path, expect, json=body, **kw).json()

    def get(self, path, **kw):
        return self.call("GET", path, 200, **kw).json()


def organizer(base: str, name: str = "Ada") -> Api:
    return Api(base, Organizer(base, timeout=5).sign_up(name=name).token)


def new_mob(api: Api, zone: dict, title: str, duration_s: int = 60) -> dict:
    mob = api.post(
        "/api/mobs",
        {
            "title": title,
            "action": "Pick up litter",
            "zone": zone,
            "go_at": future(),
            "duration_s": duration_s,
        },
        expect=201,
    )
    api.post(
        f"/api/mobs/{mob['id']}/tasks/generate",
        {"spacing_m": 40, "kind": "litter", "capacity": 2},
        expect=201,
    )
    return mob


class Listener:
    """A real Socket.IO client on one namespace that records named events."""

    def __init__(self, base: str, namespace: str, names: tuple[str, ...], auth=None):
        self.namespace = namespace
        self.events: list[tuple[str, dict]] = []
        self.changed = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        for name in names:
            self.sio.on(name, self._recorder(name), namespace=namespace)
        self.sio.connect(
            base, namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=TIMEOUT
        )

    def _recorder(self, name):
        def record(data):
            with self.changed:
                self.events.append((name, data))
                self.changed.notify_all()

        return record

    def wait(self, predicate, timeout=TIMEOUT * 3):
        with self.changed:
            assert self.changed.wait_for(
                lambda: any(predicate(n, d) for n, d in self.events), timeout=timeout
            ), self.events
            return next(d for n, d in self.events if predicate(n, d))

    def call(self, event, data):
        return self.sio.call(event, data, namespace=self.namespace, timeout=TIMEOUT)

    def close(self):
        self.sio.disconnect()


def phone(base: str, mob_id: str, where: tuple[float, float]) -> tuple[Listener, dict]:
    """A participant who joined, connected, and stands at ``where`` (lon, lat) in the zone."""
    r = requests.post(f"{base}/api/mobs/{mob_id}/participants", json={}, timeout=5)
    assert r.status_code == 201, r.text
    client = Listener(base, "/participant", ("phase",), auth={"token": r.json()["token"]})
    assert client.call("join_mob", {"mob": mob_id})["timeline"]
    fix = {"lat": where[1], "lon": where[0], "accuracy_m": 5, "at": 0}
    ack = client.call("report_location", fix)
    assert ack["zone"] == "inside" and ack["task"], ack
    return client, ack["task"]


def _flatten(coords):
    if isinstance(coords, (int, float)):
        yield float(coords)
    else:
        for c in coords:
            yield from _flatten(c)


def deed(client: Listener, task: dict, offset_lat: float = 0.0) -> dict:
    return client.call(
        "confirm_deed",
        {
            "deed_id": str(uuid.uuid4()),
            "task": task["id"],
            "lat": task["lat"] + offset_lat,
            "lon": task["lon"],
            "accuracy_m": 5,
        },
    )


def test_a_campaign_in_three_time_zones_fires_go_at_one_instant(fast_server, db):
    base = fast_server.url
    api = organizer(base)
    campaign = api.post(
        "/api/campaigns", {"title": "World clean-up", "go_at": future(90)}, expect=201
    )
    cid = campaign["id"]
    mobs = []
    for tz, (lon, lat) in CITIES.items():
        mob = new_mob(api, square(lon, lat), f"Clean-up {tz}", duration_s=6)
        api.post(f"/api/campaigns/{cid}/mobs", {"mob": mob["id"], "time_zone": tz}, expect=201)
        mobs.append((mob, (lon, lat)))
    api.post(f"/api/campaigns/{cid}/publish", expect=200)
    berlin = mobs[0][0]["id"]
    sponsor = Api(base).post(
        "/api/pledges",
        {
            "mob": berlin,
            "amount_minor": 150,
            "currency": "EUR",
            "threshold_deeds": 2,
            "sponsor_name": "Bakery",
        },
        expect=201,
    )
    Api(base, sponsor["sponsor_token"]).post(
        "/api/pledges",
        {"campaign": cid, "amount_minor": 50, "currency": "EUR", "cap_minor": 200},
        expect=201,
    )

    watchers = []
    for mob, _centre in mobs:
        watcher = Listener(base, "/live", ("timeline", "phase"))
        assert watcher.call("watch_mob", {"mob": mob["id"]})["phase"] == "published"
        watchers.append(watcher)
    # Phones stand a little off each zone's centre (never on a task spot).
    standing = [(lon + 0.00013, lat + 0.00011) for _mob, (lon, lat) in mobs]
    phones = [
        [phone(base, mob["id"], standing[i]) for _ in range(2)] for i, (mob, _c) in enumerate(mobs)
    ]

    started = api.post(f"/api/campaigns/{cid}/start-now", {"lead_s": 3}, expect=200)
    go_ms = started["go_at_ms"]
    assert (
        started["in_sync"] and [m["timeline"]["go_at_ms"] for m in started["mobs"]] == [go_ms] * 3
    )
    for watcher in watchers:  # every timeline, as each audience heard it, names one instant
        heard = watcher.wait(lambda n, d: n == "timeline")
        assert heard["timeline"]["go_at_ms"] == go_ms
    actions = [w.wait(lambda n, d: n == "phase" and d["phase"] == "action") for w in watchers]
    assert [a["at_ms"] for a in actions] == [go_ms] * 3
    local = {m["go_local"]["time_zone"]: m["go_local"]["utc_offset"] for m in started["mobs"]}
    assert len(set(local.values())) == 3  # three different local clocks, one instant

    # Deeds: Berlin 2 accepted; New York 1 accepted + 1 flagged then approved; Tokyo 1 accepted.
    answers = [
        deed(*phones[0][0]),
        deed(*phones[0][1]),
        deed(*phones[1][0]),
        deed(*phones[1][1], offset_lat=0.002),
        deed(*phones[2][0]),
    ]
    assert [a["status"] for a in answers] == ["accepted"] * 3 + ["flagged", "accepted"]
    ny = mobs[1][0]["id"]
    flagged = api.get(f"/api/mobs/{ny}/deeds?status=flagged")["deeds"][0]
    api.post(f"/api/mobs/{ny}/deeds/{flagged['id']}/review", {"verdict": "approve"}, expect=200)
    for watcher in watchers:
        watcher.wait(lambda n, d: n == "phase" and d["phase"] == "finished")

    body = api.get(f"/api/campaigns/{cid}")
    per_mob = [m["counters"]["deeds_done"] for m in body["mobs"]]
    db.expire_all()
    verified = db.scalar(select(func.count()).where(Deed.status.in_(COUNTED_DEED_STATUSES)))
    assert per_mob == [2, 2, 1] and body["counters"]["deeds_done"] == sum(per_mob) == verified
    assert [m["status"] for m in body["mobs"]] == ["finished"] * 3

    totals = api.get(f"/api/mobs/{berlin}/pledges/totals")
    assert totals["totals"][0]["owed_minor"] == 300  # threshold 2 reached: 2 × 150
    assert totals["campaign"]["deeds_counted"] == 5
    assert totals["campaign"]["totals"][0]["owed_minor"] == 200  # 5 × 50 = 250, capped at 200
    statement = (
        Api(base, sponsor["sponsor_token"]).call("GET", "/api/sponsors/me/statement.csv", 200).text
    )
    rows = list(csv.DictReader(io.StringIO(statement)))
    assert [r["owed_minor"] for r in rows] == ["300", "200", "500"]

    export = api.call("GET", f"/api/mobs/{berlin}/summary.geojson", 200).json()
    assert geojson_errors(export) == []
    numbers = set()
    for feature in export["features"]:
        numbers |= set(_flatten(feature["geometry"]["coordinates"]))
    for lon, lat in standing:  # where the phones stood: in no coordinate of the export
        assert round(lon, 7) not in numbers and round(lat, 7) not in numbers
    for group in phones:
        for client, _task in group:
            client.close()
    for watcher in watchers:
        watcher.close()


def test_a_follower_is_told_on_publish_over_socketio_and_by_web_push(server, db):
    base = server.url
    api = organizer(base, name="Greta")
    first = new_mob(api, PARK, "First")
    api.post(f"/api/mobs/{first['id']}/publish", expect=200)
    created = Api(base).post("/api/followers", expect=201)
    fan = Api(base, created["follower_token"])
    fan.post("/api/followers/me/follows", {"type": "organizer", "mob": first["id"]}, expect=201)
    private_key, keys = browser_keys()
    with PushService() as push:
        fan.call(
            "PUT",
            "/api/followers/me/push-subscription",
            200,
            json={"endpoint": f"{push.url}/sub/1", "keys": keys},
        )
        listener = Listener(
            base, "/follow", ("mob_published",), auth={"follower_token": created["follower_token"]}
        )
        mob = new_mob(api, PARK, "Second")
        api.post(f"/api/mobs/{mob['id']}/publish", expect=200)
        told = listener.wait(lambda n, d: d["mob"]["id"] == mob["id"])
        requests_seen = push.wait_for(1)
    listener.close()
    assert told["reasons"] == ["organizer"] and told["mob"]["title"] == "Second"
    request = requests_seen[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    k, claims = vapid_claims(headers["authorization"])
    assert k == created["vapid_public_key"] and claims["aud"] == push.url
    assert decrypt_push(request["body"], private_key, keys)["mob"]["id"] == mob["id"]


def test_cascade_and_views_over_http(server, db):
    base = server.url
    api = organizer(base, name="Ada")
    mob = new_mob(api, PARK, "Cascade")
    api.post(f"/api/mobs/{mob['id']}/publish", expect=200)
    code = api.post(f"/api/mobs/{mob['id']}/share-link", expect=200)["ref_code"]
    anon = Api(base)
    a = anon.post(
        f"/api/mobs/{mob['id']}/participants", {"ref": code, "nickname": "Alice"}, expect=201
    )
    anon.post(
        f"/api/mobs/{mob['id']}/participants", {"ref": a["participant"]["ref_code"]}, expect=201
    )
    for client_id in ("view-client-1", "view-client-1", "view-client-2"):
        anon.post(f"/api/mobs/{mob['id']}/views", {"client_id": client_id}, expect=200)
    cascade = anon.get(f"/api/mobs/{mob['id']}/cascade")
    assert [(s["name"], s["brought"]) for s in cascade["sharers"]] == [("Ada", 1), ("Alice", 1)]
    assert cascade["depth"] == 2 and cascade["via_organizer"] == 1
    assert anon.get(f"/api/mobs/{mob['id']}/funnel")["viewed"] == 2


def test_across_processes_with_redis(database_url, db, redis_env):
    one = ServerProcess(database_url, **redis_env).start()
    two = ServerProcess(database_url, **redis_env).start()
    try:
        api_two = organizer(two.url)
        first = new_mob(api_two, PARK, "First")
        api_two.post(f"/api/mobs/{first['id']}/publish", expect=200)
        created = Api(one.url).post("/api/followers", expect=201)
        Api(one.url, created["follower_token"]).post(
            "/api/followers/me/follows", {"type": "organizer", "mob": first["id"]}, expect=201
        )
        listener = Listener(
            one.url,
            "/follow",
            ("mob_published",),
            auth={"follower_token": created["follower_token"]},
        )
        mob = new_mob(api_two, PARK, "Published on the other process")
        api_two.post(f"/api/mobs/{mob['id']}/publish", expect=200)
        assert listener.wait(lambda n, d: d["mob"]["id"] == mob["id"])["reasons"] == ["organizer"]
        listener.close()
        client_id = f"view-{uuid.uuid4().hex[:12]}"
        counted = [
            Api(s.url).post(f"/api/mobs/{mob['id']}/views", {"client_id": client_id}, expect=200)
            for s in (one, two, one)
        ]
        assert [c["counted"] for c in counted] == [True, False, False]
    finally:
        one.stop()
        two.stop()
