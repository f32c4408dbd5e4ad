"""Every mutating endpoint: 401 without a valid token, 403 for an organizer who is not the owner."""

import pytest

from tests.factories import auth, make_mob, make_organizer, make_published_mob

# The growth routes (issue 6), one blueprint per resource in server/http/.
GROWTH_BLUEPRINTS = {"cascade", "follows", "pledges", "campaigns", "summaries"}

# (method, url template, body) for every endpoint that changes a mob or its tasks.
MUTATIONS = [
    ("POST", "/api/mobs", {"title": "x"}),
    ("PATCH", "/api/mobs/{mob}", {"title": "Hijacked"}),
    ("POST", "/api/mobs/{mob}/publish", None),
    ("POST", "/api/mobs/{mob}/cancel", None),
    ("POST", "/api/mobs/{mob}/tasks/generate", {"spacing_m": 30, "kind": "litter"}),
    ("POST", "/api/mobs/{mob}/tasks", {"lat": 52.532, "lon": 13.4, "kind": "food"}),
    ("DELETE", "/api/mobs/{mob}/tasks/{task}", None),
    ("PATCH", "/api/mobs/{mob}/tasks/{task}", {"status": "closed"}),
    ("POST", "/api/mobs/{mob}/deeds/{deed}/review", {"verdict": "approve"}),
    ("POST", "/api/mobs/{mob}/start-now", {"lead_s": 20}),
    ("POST", "/api/mobs/{mob}/postpone", {"by_s": 600}),
    ("POST", "/api/mobs/{mob}/announcements", {"text": "Free pizza!"}),
]
# Log-out and log-out-everywhere: the organizer's own sessions, no mob.
ACCOUNT = [("DELETE", "/api/sessions/current", None), ("DELETE", "/api/sessions", None)]
# A joined participant's own routes (the participant token of that mob).
PARTICIPANT = [
    ("PUT", "/api/mobs/{mob}/participants/me/push-subscription", {"endpoint": "x"}),
    ("DELETE", "/api/mobs/{mob}/participants/me/push-subscription", None),
]


@pytest.fixture()
def owned(client):
    token = make_organizer(client)
    mob = make_published_mob(client, token, spacing_m=40)
    task = client.get(f"/api/mobs/{mob['id']}/tasks").get_json()["features"][0]["id"]
    return token, mob, task


def _call(client, method, template, body, mob, task, headers):
    url = template.format(mob=mob["id"], task=task, deed=1)
    return client.open(url, method=method, json=body, headers=headers)


@pytest.mark.parametrize(("method", "template", "body"), MUTATIONS + ACCOUNT)
def test_without_or_with_a_bad_token_is_401(client, owned, method, template, body):
    token, mob, task = owned
    for headers, code in (
        ({}, "auth_required"),
        (auth("not-a-token"), "token_invalid"),
        (auth(token + "x"), "token_invalid"),
    ):
        r = _call(client, method, template, body, mob, task, headers)
        assert r.status_code == 401, (method, template, headers)
        assert r.get_json()["error"]["code"] == code


@pytest.mark.parametrize(("method", "template", "body"), PARTICIPANT)
def test_participant_routes_need_a_participant_token_of_that_mob(
    client, owned, method, template, body
):
    token, mob, task = owned
    other = make_published_mob(client, token, spacing_m=40)
    theirs = client.post(f"/api/mobs/{other['id']}/participants", json={}).get_json()["token"]
    for headers, code in (
        ({}, "auth_required"),
        (auth("not-a-token"), "token_invalid"),
        (auth(token), "token_invalid"),  # an organizer's token
        (auth(theirs), "token_invalid"),  # a participant of another mob
    ):
        r = _call(client, method, template, body, mob, task, headers)
        assert (r.status_code, r.get_json()["error"]["code"]) == (401, code), headers


@pytest.mark.parametrize(("method", "template", "body"), MUTATIONS[1:])
def test_another_organizer_is_403_and_changes_nothing(client, owned, method, template, body):
    token, mob, task = owned
    intruder = make_organizer(client, name="Mallory")
    r = _call(client, method, template, body, mob, task, auth(intruder))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "not_owner"
    after = client.get(f"/api/mobs/{mob['id']}").get_json()
    assert after["title"] == mob["title"] and after["status"] == "published"
    assert after["task_count"] == mob["task_count"]
    assert after["timeline"]["version"] == mob["timeline"]["version"]
    assert after["go_at"] == mob["go_at"]
    assert client.get(f"/api/mobs/{mob['id']}/events").get_json()["events"] == []


@pytest.mark.parametrize(("method", "template", "body"), MUTATIONS[1:])
def test_another_organizers_draft_is_404_like_a_missing_mob(client, method, template, body):
    """A draft is invisible to anyone but its owner: changing it answers as for no mob."""
    token = make_organizer(client)
    draft = make_mob(client, token)
    intruder = auth(make_organizer(client, name="Mallory"))
    r = _call(client, method, template, body, draft, 1, intruder)
    missing = _call(client, method, template, body, {"id": "nosuchmb"}, 1, intruder)
    assert r.status_code == missing.status_code == 404, (method, template, r.get_json())
    assert r.get_json()["error"]["code"] == missing.get_json()["error"]["code"] == "mob_not_found"
    after = client.get(f"/api/mobs/{draft['id']}", headers=auth(token)).get_json()
    assert after["title"] == draft["title"] and after["status"] == "draft"


def test_every_mutating_route_is_covered(app):
    """A new mutating endpoint must be added to MUTATIONS (and so get these checks)."""
    covered = {
        (
            m,
            t.replace("{mob}", "<mob_id>")
            .replace("{task}", "<int:task_id>")
            .replace("{deed}", "<int:deed_id>"),
        )
        for m, t, _ in MUTATIONS + ACCOUNT + PARTICIPANT
    }
    # Sign-up, log-in and joining a mob (participants have no account) need no token.
    public = {
        ("POST", "/api/organizers"),
        ("POST", "/api/sessions"),
        ("POST", "/api/mobs/<mob_id>/participants"),
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        if rule.endpoint.partition(".")[0] in GROWTH_BLUEPRINTS:
            continue  # tests/server/test_growth_authorization.py has the same check for these
        for method in rule.methods - {"GET", "HEAD", "OPTIONS"}:
            key = (method, rule.rule)
            assert key in covered or key in public, f"{key} has no authorization test"


def test_deed_list_is_for_the_owner_only(client, owned):
    token, mob, _task = owned
    url = f"/api/mobs/{mob['id']}/deeds?status=flagged"
    assert client.get(url).status_code == 401
    r = client.get(url, headers=auth(make_organizer(client)))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "not_owner"
    r = client.get(url, headers=auth(token))
    assert r.status_code == 200 and r.get_json() == {"deeds": []}
