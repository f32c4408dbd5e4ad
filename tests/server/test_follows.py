"""Follow an organizer or a place; be told on publish over Socket.IO and by Web Push.

The Web Push is a real HTTP request from the server to a local stand-in push service, which
checks the VAPID signature and claims and decrypts the body as a browser would.
"""

import time

import pytest
from sqlalchemy import func, select

from server import socketio
from server.infra.models import Mob, PublishNotice, PushSubscription
from tests.factories import auth, make_mob, make_organizer, make_published_mob
from tests.growth_support import (
    CITIES,
    PushService,
    browser_keys,
    clean_growth,
    decrypt_push,
    square,
    vapid_claims,
)

NS = "/follow"


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


def follower(client) -> tuple[str, dict]:
    r = client.post("/api/followers")
    assert r.status_code == 201
    body = r.get_json()
    assert body["follower_token"].startswith("flw.") and body["vapid_public_key"]
    return body["follower_token"], body


def publish(client, token, mob_id) -> None:
    r = client.post(
        f"/api/mobs/{mob_id}/tasks/generate",
        json={"spacing_m": 40, "kind": "litter"},
        headers=auth(token),
    )
    assert r.status_code == 201
    assert client.post(f"/api/mobs/{mob_id}/publish", headers=auth(token)).status_code == 200


def told(sc) -> list[dict]:
    return [e["args"][0] for e in sc.get_received(NS) if e["name"] == "mob_published"]


def test_follower_lifecycle_and_validation(client):
    token, created = follower(client)
    assert created["follower"] == {"id": created["follower"]["id"], "follows": [], "push": False}
    org = make_organizer(client, name="Greta")
    mob = make_published_mob(client, org, spacing_m=40)
    url = "/api/followers/me/follows"
    r = client.post(url, json={"type": "organizer", "mob": mob["id"]}, headers=auth(token))
    assert r.status_code == 201
    organizer_follow = r.get_json()["id"]
    assert r.get_json()["organizer"] == {"name": "Greta"} and r.get_json()["label"] == "Greta"
    again = client.post(url, json={"type": "organizer", "mob": mob["id"]}, headers=auth(token))
    assert again.status_code == 200 and again.get_json()["id"] == r.get_json()["id"]
    place = {"type": "place", "lat": 52.52, "lon": 13.40, "radius_m": 2000, "label": "Home"}
    p = client.post(url, json=place, headers=auth(token))
    assert p.status_code == 201 and p.get_json()["radius_m"] == 2000
    me = client.get("/api/followers/me", headers=auth(token)).get_json()
    assert [f["type"] for f in me["follows"]] == ["organizer", "place"]

    for bad, code in (
        ({"type": "place", "lat": 52.5, "lon": 13.4, "radius_m": 10}, "field_out_of_range"),
        ({"type": "place", "lat": 95, "lon": 13.4, "radius_m": 500}, "field_out_of_range"),
        ({"type": "planet"}, "field_invalid"),
        ({"type": "organizer", "mob": mob["id"], "extra": 1}, "field_unknown"),
    ):
        r = client.post(url, json=bad, headers=auth(token))
        assert r.status_code == 400 and r.get_json()["error"]["code"] == code, bad
    draft = make_mob(client, org)
    r = client.post(url, json={"type": "organizer", "mob": draft["id"]}, headers=auth(token))
    assert r.status_code == 404

    assert client.delete(f"{url}/{p.get_json()['id']}", headers=auth(token)).status_code == 204
    assert client.delete(f"{url}/{p.get_json()['id']}", headers=auth(token)).status_code == 404
    other, _ = follower(client)
    r = client.delete(f"{url}/{organizer_follow}", headers=auth(other))
    assert r.status_code == 404  # nor someone else's follow
    assert client.delete("/api/followers/me", headers=auth(token)).status_code == 204
    assert client.get("/api/followers/me", headers=auth(token)).status_code == 401


def test_push_subscriptions_only_to_push_services(client):
    token, _ = follower(client)
    _private, keys = browser_keys()
    url = "/api/followers/me/push-subscription"
    for endpoint in (
        "https://evil.example.org/steal",
        "http://fcm.googleapis.com/fcm/send/x",  # not https
        "https://fcm.googleapis.com.evil.org/x",
        "http://10.0.0.5/internal",
        "https://user:pw@fcm.googleapis.com/fcm/send/x",
    ):
        r = client.put(url, json={"endpoint": endpoint, "keys": keys}, headers=auth(token))
        assert r.status_code == 422 and r.get_json()["error"]["code"] == "push_endpoint_refused"
    fcm = "https://fcm.googleapis.com/fcm/send/abc:def"
    r = client.put(
        url, json={"endpoint": fcm, "keys": keys, "expirationTime": None}, headers=auth(token)
    )
    assert r.status_code == 200 and r.get_json()["push"] is True
    for bad_keys in (
        {"p256dh": keys["p256dh"][:-4], "auth": keys["auth"]},
        {"p256dh": "BA" + "A" * 85, "auth": keys["auth"]},
        {"p256dh": keys["p256dh"], "auth": "short"},
    ):
        r = client.put(url, json={"endpoint": fcm, "keys": bad_keys}, headers=auth(token))
        assert r.status_code == 422 and r.get_json()["error"]["code"] == "push_key_invalid"
    assert client.delete(url, headers=auth(token)).status_code == 204
    assert client.get("/api/followers/me", headers=auth(token)).get_json()["push"] is False
    key = client.get("/api/push/public-key").get_json()["public_key"]
    assert len(key) == 87  # 65 bytes, base64url without padding


def test_connected_followers_are_told_at_once_on_publish(app, client, db):
    org = make_organizer(client, name="Greta")
    first = make_published_mob(client, org, spacing_m=40)
    fan, _ = follower(client)
    client.post(
        "/api/followers/me/follows",
        json={"type": "organizer", "mob": first["id"]},
        headers=auth(fan),
    )
    near, _ = follower(client)  # 1.5 km from the park, radius 2 km: the zone is within reach
    client.post(
        "/api/followers/me/follows",
        headers=auth(near),
        json={"type": "place", "lat": 52.5200, "lon": 13.4050, "radius_m": 2000},
    )
    far, _ = follower(client)  # the same point, radius 500 m: out of reach
    client.post(
        "/api/followers/me/follows",
        headers=auth(far),
        json={"type": "place", "lat": 52.5200, "lon": 13.4050, "radius_m": 500},
    )
    clients = {}
    for name, token in (("fan", fan), ("near", near), ("far", far)):
        clients[name] = socketio.test_client(app, namespace=NS, auth={"follower_token": token})
        assert clients[name].is_connected(NS)
        clients[name].get_received(NS)

    mob = make_mob(client, org, title="Second clean-up")
    publish(client, org, mob["id"])
    fan_told, near_told = told(clients["fan"]), told(clients["near"])
    assert len(fan_told) == 1 and fan_told[0]["reasons"] == ["organizer"]
    assert (
        fan_told[0]["mob"]["id"] == mob["id"] and fan_told[0]["mob"]["title"] == "Second clean-up"
    )
    assert fan_told[0]["mob"]["organizer"] == {"name": "Greta"}
    assert fan_told[0]["mob"]["go_at_ms"] == mob["timeline"]["go_at_ms"]
    assert len(near_told) == 1 and near_told[0]["reasons"] == ["place"]
    assert told(clients["far"]) == []

    # Publishing again is a no-op: nobody is told twice (the notice is claimed once).
    assert client.post(f"/api/mobs/{mob['id']}/publish", headers=auth(org)).status_code == 200
    assert told(clients["fan"]) == []
    db.expire_all()
    notices = dict(db.execute(select(Mob.id, PublishNotice.followers).join(Mob)).all())
    assert notices == {first["id"]: 0, mob["id"]: 2}
    # Another organizer's mob elsewhere tells no one.
    other = make_organizer(client)
    elsewhere = make_mob(client, other, zone=square(*CITIES["Asia/Tokyo"]))
    publish(client, other, elsewhere["id"])
    assert all(told(sc) == [] for sc in clients.values())
    for sc in clients.values():
        sc.disconnect(namespace=NS)


def test_follow_socket_refuses_bad_tokens(app, client):
    org = make_organizer(client)
    for auth_payload in (None, {}, {"follower_token": "flw.nope.nope"}, {"token": org}):
        sc = socketio.test_client(app, namespace=NS, auth=auth_payload)
        assert not sc.is_connected(NS)
    token, _ = follower(client)
    sc = socketio.test_client(app, namespace=NS, auth={"follower_token": token})
    me = sc.emit("follows", {}, namespace=NS, callback=True)
    assert me["follows"] == [] and me["push"] is False
    sc.disconnect(namespace=NS)


def test_web_push_is_a_signed_encrypted_request_to_the_push_service(client, db):
    org = make_organizer(client, name="Greta")
    first = make_published_mob(client, org, spacing_m=40)
    token, created = follower(client)
    client.post(
        "/api/followers/me/follows",
        json={"type": "organizer", "mob": first["id"]},
        headers=auth(token),
    )
    private_key, keys = browser_keys()
    with PushService() as push:
        endpoint = f"{push.url}/push/v1/subscription-1"
        r = client.put(
            "/api/followers/me/push-subscription",
            json={"endpoint": endpoint, "keys": keys},
            headers=auth(token),
        )
        assert r.status_code == 200
        mob = make_mob(client, org, title="Push me")
        publish(client, org, mob["id"])
        requests = push.wait_for(1)
    assert len(requests) == 1
    request = requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["path"] == "/push/v1/subscription-1"
    k, claims = vapid_claims(headers["authorization"])
    assert (
        k
        == created["vapid_public_key"]
        == client.get("/api/push/public-key").get_json()["public_key"]
    )
    assert claims["aud"] == push.url and claims["sub"].startswith("mailto:")
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert headers["content-encoding"] == "aes128gcm" and int(headers["ttl"]) > 0
    message = decrypt_push(request["body"], private_key, keys)
    assert message["type"] == "mob_published" and message["mob"]["id"] == mob["id"]
    assert message["title"] == "New Good Mob: Push me" and message["url"] == f"/m/{mob['id']}"
    assert message["reasons"] == ["organizer"]


def test_a_gone_subscription_is_forgotten(client, db):
    org = make_organizer(client)
    first = make_published_mob(client, org, spacing_m=40)
    token, _ = follower(client)
    client.post(
        "/api/followers/me/follows",
        json={"type": "organizer", "mob": first["id"]},
        headers=auth(token),
    )
    _private, keys = browser_keys()
    with PushService(status=410) as push:
        client.put(
            "/api/followers/me/push-subscription",
            headers=auth(token),
            json={"endpoint": f"{push.url}/gone", "keys": keys},
        )
        mob = make_mob(client, org)
        publish(client, org, mob["id"])
        assert len(push.wait_for(1)) == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the sender deletes it after the 410 answer
            db.expire_all()
            if not db.scalar(select(func.count()).select_from(PushSubscription)):
                break
            time.sleep(0.05)
    assert db.scalar(select(func.count()).select_from(PushSubscription)) == 0
