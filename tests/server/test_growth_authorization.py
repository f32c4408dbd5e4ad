"""Every growth route that changes something (issue 6) refuses the wrong token.

Organizer routes: 401 without or with a bad token (a follower's or sponsor's token is not an
organizer's), 403 for another organizer, and nothing changes. Follower and sponsor routes: 401
without their own kind of token; another follower's or sponsor's things are not found (404).
"""

import pytest

from tests.factories import PARK, auth, make_organizer, make_published_mob
from tests.growth_support import clean_growth

# The growth routes (issue 6), one blueprint per resource in server/http/.
GROWTH_BLUEPRINTS = {"cascade", "follows", "pledges", "campaigns", "summaries"}

# (method, url template, body) — organizer token, owner only.
ORGANIZER = [
    ("POST", "/api/mobs/{mob}/share-link", None),
    ("POST", "/api/campaigns", {"title": "x", "go_at": "2030-07-01T12:00:00Z"}),
    ("PATCH", "/api/campaigns/{campaign}", {"title": "Hijacked"}),
    ("POST", "/api/campaigns/{campaign}/mobs", {"mob": "{mob}"}),
    ("DELETE", "/api/campaigns/{campaign}/mobs/{mob}", None),
    ("POST", "/api/campaigns/{campaign}/publish", None),
    ("POST", "/api/campaigns/{campaign}/start-now", {"lead_s": 60}),
    ("POST", "/api/campaigns/{campaign}/postpone", {"by_s": 600}),
    ("POST", "/api/mobs/{mob}/copy", {"zone": PARK, "go_at": "2030-07-01T12:00:00Z"}),
    ("PUT", "/api/mobs/{mob}/time-zone", {"time_zone": "Asia/Tokyo"}),
    ("DELETE", "/api/mobs/{mob}/pledges/{pledge}", None),
]
# Follower token (flw.…).
FOLLOWER = [
    ("DELETE", "/api/followers/me", None),
    ("POST", "/api/followers/me/follows", {"type": "organizer", "mob": "{mob}"}),
    ("DELETE", "/api/followers/me/follows/{follow}", None),
    ("PUT", "/api/followers/me/push-subscription", {"endpoint": "https://fcm.googleapis.com/x"}),
    ("DELETE", "/api/followers/me/push-subscription", None),
    ("PUT", "/api/followers/me/reminders/{mob}", None),
    ("DELETE", "/api/followers/me/reminders/{mob}", None),
]
# Sponsor token (spn.…).
SPONSOR = [("DELETE", "/api/pledges/{pledge}", None)]
# No account needed: a view beacon, becoming a follower, a first pledge (a new sponsor).
PUBLIC = [
    ("POST", "/api/mobs/{mob}/views"),
    ("POST", "/api/followers"),
    ("POST", "/api/pledges"),
]
# Reads that are not for everyone.
PRIVATE_READS = [
    ("/api/mobs/{mob}/summary", "organizer"),
    ("/api/mobs/{mob}/summary.geojson", "organizer"),
    ("/api/mobs/{mob}/summary.csv", "organizer"),
    ("/api/mobs/{mob}/pledges", "organizer"),
    ("/api/organizers/me/campaigns", "organizer"),
    ("/api/followers/me", "follower"),
    ("/api/sponsors/me", "sponsor"),
    ("/api/sponsors/me/statement.csv", "sponsor"),
]


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


@pytest.fixture()
def world(client):
    """An owner with a mob in a campaign; a follower with a follow; a sponsor with a pledge."""
    owner = make_organizer(client, name="Owner")
    mob = make_published_mob(client, owner, spacing_m=40)
    r = client.post(
        "/api/campaigns", json={"title": "C", "go_at": mob["go_at"]}, headers=auth(owner)
    )
    campaign = r.get_json()
    r = client.post(
        f"/api/campaigns/{campaign['id']}/mobs", json={"mob": mob["id"]}, headers=auth(owner)
    )
    assert r.status_code == 201
    follower = client.post("/api/followers").get_json()["follower_token"]
    follow = client.post(
        "/api/followers/me/follows",
        json={"type": "organizer", "mob": mob["id"]},
        headers=auth(follower),
    ).get_json()["id"]
    created = client.post(
        "/api/pledges",
        json={"mob": mob["id"], "amount_minor": 100, "currency": "EUR", "sponsor_name": "S"},
    ).get_json()
    return {
        "owner": owner,
        "mob": mob,
        "campaign": campaign,
        "follower": follower,
        "follow": follow,
        "sponsor": created["sponsor_token"],
        "pledge": created["pledge"]["id"],
    }


def _fill(value, w):
    if isinstance(value, str):
        return value.format(
            mob=w["mob"]["id"], campaign=w["campaign"]["id"], follow=w["follow"], pledge=w["pledge"]
        )
    if isinstance(value, dict):
        return {k: _fill(v, w) for k, v in value.items()}
    return value


def _call(client, w, method, template, body, headers):
    return client.open(_fill(template, w), method=method, json=_fill(body, w), headers=headers)


def _state(client, w) -> tuple:
    owner = auth(w["owner"])
    return (
        client.get(f"/api/campaigns/{w['campaign']['id']}", headers=owner).get_json(),
        client.get(f"/api/mobs/{w['mob']['id']}", headers=owner).get_json()["timeline"],
        client.get("/api/organizers/me/mobs", headers=owner).get_json(),
    )


@pytest.mark.parametrize(("method", "template", "body"), ORGANIZER)
def test_organizer_routes_need_the_owners_token(client, world, method, template, body):
    before = _state(client, world)
    for headers, code in (
        ({}, "auth_required"),
        (auth("not-a-token"), "token_invalid"),
        (auth(world["follower"]), "token_invalid"),
        (auth(world["sponsor"]), "token_invalid"),
    ):
        r = _call(client, world, method, template, body, headers)
        assert (r.status_code, r.get_json()["error"]["code"]) == (401, code), headers
    if template != "/api/campaigns":  # creating is for any organizer; the rest for the owner
        r = _call(client, world, method, template, body, auth(make_organizer(client)))
        assert r.status_code == 403 and r.get_json()["error"]["code"] == "not_owner"
    assert _state(client, world) == before


@pytest.mark.parametrize(("method", "template", "body"), FOLLOWER)
def test_follower_routes_need_that_followers_token(client, world, method, template, body):
    for headers, code in (
        ({}, "auth_required"),
        (auth("flw.forged.secret"), "token_invalid"),
        (auth(world["owner"]), "token_invalid"),
        (auth(world["sponsor"]), "token_invalid"),
    ):
        r = _call(client, world, method, template, body, headers)
        assert (r.status_code, r.get_json()["error"]["code"]) == (401, code), headers
    me = client.get("/api/followers/me", headers=auth(world["follower"])).get_json()
    assert [f["id"] for f in me["follows"]] == [world["follow"]]


def test_a_follower_cannot_remove_anothers_follow(client, world):
    stranger = client.post("/api/followers").get_json()["follower_token"]
    r = client.delete(f"/api/followers/me/follows/{world['follow']}", headers=auth(stranger))
    assert r.status_code == 404


@pytest.mark.parametrize(("method", "template", "body"), SPONSOR)
def test_sponsor_routes_need_that_sponsors_token(client, world, method, template, body):
    for headers, code in (
        ({}, "auth_required"),
        (auth("spn.forged.secret"), "token_invalid"),
        (auth(world["owner"]), "token_invalid"),
        (auth(world["follower"]), "token_invalid"),
    ):
        r = _call(client, world, method, template, body, headers)
        assert (r.status_code, r.get_json()["error"]["code"]) == (401, code), headers
    stranger = client.post(
        "/api/pledges",
        json={"mob": world["mob"]["id"], "amount_minor": 1, "currency": "EUR", "sponsor_name": "T"},
    )
    r = _call(client, world, method, template, body, auth(stranger.get_json()["sponsor_token"]))
    assert r.status_code == 404
    assert (
        len(client.get("/api/sponsors/me", headers=auth(world["sponsor"])).get_json()["pledges"])
        == 1
    )


def test_a_pledge_with_a_bad_sponsor_token_makes_no_new_sponsor(client, world):
    body = {"mob": world["mob"]["id"], "amount_minor": 1, "currency": "EUR", "sponsor_name": "X"}
    for token in ("spn.forged.secret", world["owner"], world["follower"]):
        r = client.post("/api/pledges", json=body, headers=auth(token))
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "token_invalid"


@pytest.mark.parametrize(("path", "kind"), PRIVATE_READS)
def test_private_reads(client, world, path, kind):
    url = _fill(path, world)
    assert client.get(url).status_code == 401
    others = {"organizer": world["follower"], "follower": world["owner"], "sponsor": world["owner"]}
    assert client.get(url, headers=auth(others[kind])).status_code == 401
    if kind == "organizer" and "{mob}" in path:
        assert client.get(url, headers=auth(make_organizer(client))).status_code == 403


def test_every_mutating_growth_route_is_covered(app):
    """A new growth route that changes something must be listed here (and so be tested)."""

    def rule_of(template: str) -> str:
        return (
            template.replace("{mob}", "<mob_id>")
            .replace("{campaign}", "<campaign_id>")
            .replace("{follow}", "<int:follow_id>")
            .replace("{pledge}", "<int:pledge_id>")
        )

    covered = {(m, rule_of(t)) for m, t, _ in ORGANIZER + FOLLOWER + SPONSOR}
    covered |= {(m, rule_of(t)) for m, t in PUBLIC}
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.partition(".")[0] in GROWTH_BLUEPRINTS:
            for method in rule.methods - {"GET", "HEAD", "OPTIONS"}:
                found.add((method, rule.rule))
    assert found == covered
