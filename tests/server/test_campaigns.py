"""Campaigns: mobs in three time zones on one GO instant, global counters, copy as template."""

import pytest
from shapely.geometry import Point, shape

from server.domain import campaigns
from server.infra.errors import ApiError
from tests.factories import auth, make_mob, make_organizer
from tests.growth_support import (
    CITIES,
    add_deed,
    approve,
    clean_growth,
    join,
    mob_row,
    set_status,
    square,
)

GO = "2030-07-01T12:00:00Z"  # summer: Berlin UTC+2, New York UTC−4, Tokyo UTC+9


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


def make_campaign(client, token, go_at=GO) -> dict:
    r = client.post(
        "/api/campaigns", json={"title": "World clean-up", "go_at": go_at}, headers=auth(token)
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def city_mob(client, token, tz: str, **overrides) -> dict:
    mob = make_mob(
        client,
        token,
        title=f"Clean-up {tz}",
        zone=square(*CITIES[tz]),
        go_at="2030-01-01T00:00:00Z",
        **overrides,
    )
    r = client.post(
        f"/api/mobs/{mob['id']}/tasks/generate",
        json={"spacing_m": 40, "kind": "litter", "prompt": "Fill one bag"},
        headers=auth(token),
    )
    assert r.status_code == 201
    return mob


def three_city_campaign(client, token) -> tuple[dict, list[dict]]:
    campaign = make_campaign(client, token)
    mobs = [city_mob(client, token, tz) for tz in CITIES]
    for mob, tz in zip(mobs, CITIES, strict=True):
        r = client.post(
            f"/api/campaigns/{campaign['id']}/mobs",
            json={"mob": mob["id"], "time_zone": tz},
            headers=auth(token),
        )
        assert r.status_code == 201, r.get_json()
    return campaign, mobs


def timelines(client, token, mobs) -> list[dict]:
    return [
        client.get(f"/api/mobs/{m['id']}", headers=auth(token)).get_json()["timeline"] for m in mobs
    ]


def test_three_time_zones_share_one_go_instant(client):
    token = make_organizer(client)
    campaign, mobs = three_city_campaign(client, token)
    body = client.get(f"/api/campaigns/{campaign['id']}", headers=auth(token)).get_json()
    go_ms = body["go_at_ms"]
    assert body["go_at"] == "2030-07-01T12:00:00.000Z" and body["in_sync"] is True
    assert [m["timeline"]["go_at_ms"] for m in body["mobs"]] == [go_ms] * 3
    assert [t["go_at_ms"] for t in timelines(client, token, mobs)] == [go_ms] * 3
    local = {m["go_local"]["time_zone"]: m["go_local"] for m in body["mobs"]}
    assert local["Europe/Berlin"]["local"] == "2030-07-01T14:00:00+02:00"
    assert local["America/New_York"]["local"] == "2030-07-01T08:00:00-04:00"
    assert local["Asia/Tokyo"]["local"] == "2030-07-01T21:00:00+09:00"
    assert local["Asia/Tokyo"]["utc_offset"] == "+09:00"
    features = body["map"]["features"]
    assert [f["properties"]["time_zone"] for f in features] == list(CITIES)
    assert [f["properties"]["local_time"] for f in features] == ["14:00", "08:00", "21:00"]
    # Drafts are for the owner's eyes only.
    assert client.get(f"/api/campaigns/{campaign['id']}").get_json()["mobs"] == []


def test_campaign_controls_move_every_mob_to_one_instant(client):
    token = make_organizer(client)
    campaign, mobs = three_city_campaign(client, token)
    cid = campaign["id"]
    r = client.post(f"/api/campaigns/{cid}/start-now", json={"lead_s": 60}, headers=auth(token))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_not_published"
    r = client.post(f"/api/campaigns/{cid}/publish", headers=auth(token))
    assert r.status_code == 200 and {m["status"] for m in r.get_json()["mobs"]} == {"published"}

    r = client.patch(
        f"/api/campaigns/{cid}", json={"go_at": "2030-07-02T12:00:00Z"}, headers=auth(token)
    )
    assert r.status_code == 200
    new_ms = r.get_json()["go_at_ms"]
    assert {t["go_at_ms"] for t in timelines(client, token, mobs)} == {new_ms}

    r = client.post(f"/api/campaigns/{cid}/start-now", json={"lead_s": 120}, headers=auth(token))
    assert r.status_code == 200, r.get_json()
    started = timelines(client, token, mobs)
    assert len({t["go_at_ms"] for t in started}) == 1
    assert started[0]["go_at_ms"] == r.get_json()["go_at_ms"] and r.get_json()["in_sync"]

    r = client.post(f"/api/campaigns/{cid}/postpone", json={"by_s": 600}, headers=auth(token))
    assert r.status_code == 200
    later = timelines(client, token, mobs)
    assert {t["go_at_ms"] for t in later} == {started[0]["go_at_ms"] + 600_000}
    for mob in mobs:  # every member announced each change as a numbered timeline event
        events = client.get(f"/api/mobs/{mob['id']}/events").get_json()["events"]
        assert [e["event"] for e in events] == ["timeline"] * 3
        assert events[-1]["data"]["timeline"]["go_at_ms"] == later[0]["go_at_ms"]


def test_global_counter_is_the_sum_of_verified_deeds(client, db):
    token = make_organizer(client)
    campaign, mobs = three_city_campaign(client, token)
    client.post(f"/api/campaigns/{campaign['id']}/publish", headers=auth(token))
    people = {m["id"]: [join(client, m["id"])["participant"]["id"] for _ in range(3)] for m in mobs}
    berlin, new_york, tokyo = (m["id"] for m in mobs)
    add_deed(db, berlin, people[berlin][0])
    add_deed(db, berlin, people[berlin][1])
    add_deed(db, berlin, people[berlin][2], status="flagged")  # not counted
    add_deed(db, new_york, people[new_york][0])
    approved = add_deed(db, tokyo, people[tokyo][0], status="flagged")
    approve(client, token, tokyo, approved.id)  # counted once approved
    add_deed(db, tokyo, people[tokyo][1], status="rejected")

    body = client.get(f"/api/campaigns/{campaign['id']}").get_json()
    per_mob = [m["counters"]["deeds_done"] for m in body["mobs"]]
    assert per_mob == [2, 1, 1]
    assert body["counters"]["deeds_done"] == sum(per_mob) == 4
    assert body["counters"]["joined"] == 9 and body["counters"]["deeds_flagged"] == 1
    for m in mobs:  # each equals what the mob itself reports
        own = client.get(f"/api/mobs/{m['id']}").get_json()["counters"]["deeds_done"]
        assert own == per_mob[mobs.index(m)]


def test_copy_a_mob_as_template_into_a_new_zone(client, db):
    token = make_organizer(client)
    campaign, mobs = three_city_campaign(client, token)
    paris = square(2.3522, 48.8566, half_m=150)
    r = client.post(
        f"/api/mobs/{mobs[0]['id']}/copy",
        headers=auth(token),
        json={
            "zone": paris,
            "time_zone": "Europe/Paris",
            "campaign": campaign["id"],
            "title": "Clean-up Paris",
        },
    )
    assert r.status_code == 201, r.get_json()
    copy = r.get_json()
    assert copy["status"] == "draft" and copy["title"] == "Clean-up Paris"
    assert copy["action"] == mobs[0]["action"] and copy["duration_s"] == mobs[0]["duration_s"]
    assert copy["timeline"]["go_at_ms"] == campaign["go_at_ms"]
    assert copy["go_local"]["local"] == "2030-07-01T14:00:00+02:00"
    tasks = client.get(f"/api/mobs/{copy['id']}/tasks", headers=auth(token)).get_json()
    zone = shape(paris)
    assert copy["task_count"] == len(tasks["features"]) > 0
    for feature in tasks["features"]:
        props = feature["properties"]
        assert (props["kind"], props["prompt"]) == ("litter", "Fill one bag")
        assert zone.covers(Point(feature["geometry"]["coordinates"]))
    body = client.get(f"/api/campaigns/{campaign['id']}", headers=auth(token)).get_json()
    assert len(body["mobs"]) == 4 and body["in_sync"]

    alone = client.post(
        f"/api/mobs/{mobs[0]['id']}/copy", json={"zone": paris}, headers=auth(token)
    )
    assert alone.status_code == 400 and alone.get_json()["error"]["where"] == {"field": "go_at"}
    r = client.post(
        f"/api/mobs/{mobs[0]['id']}/copy",
        headers=auth(token),
        json={"zone": paris, "go_at": "2030-08-01T10:00:00+02:00"},
    )
    assert r.status_code == 201 and r.get_json()["go_local"]["time_zone"] == "Europe/Berlin"
    bad = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    r = client.post(
        f"/api/mobs/{mobs[0]['id']}/copy",
        headers=auth(token),
        json={"zone": bad, "go_at": "2030-08-01T10:00:00Z"},
    )
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "zone_self_intersects"


def test_membership_rules(client, db):
    token = make_organizer(client)
    campaign, mobs = three_city_campaign(client, token)
    other_campaign = make_campaign(client, token, go_at="2030-09-01T12:00:00Z")
    url = f"/api/campaigns/{other_campaign['id']}/mobs"
    r = client.post(url, json={"mob": mobs[0]["id"]}, headers=auth(token))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_in_campaign"
    fresh = city_mob(client, token, "Asia/Tokyo")
    r = client.post(
        url, json={"mob": fresh["id"], "time_zone": "Mars/Olympus"}, headers=auth(token)
    )
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "time_zone_invalid"
    stranger = make_organizer(client)
    theirs = city_mob(client, stranger, "Asia/Tokyo")
    r = client.post(url, json={"mob": theirs["id"]}, headers=auth(token))
    # another organizer's draft is not found, like a missing id (issue 15, finding 10)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "mob_not_found"
    live = city_mob(client, token, "America/New_York")
    set_status(db, live["id"], "gathering")
    r = client.post(url, json={"mob": live["id"]}, headers=auth(token))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_live"

    url = f"/api/campaigns/{campaign['id']}/mobs/{mobs[2]['id']}"
    assert client.delete(url, headers=auth(token)).status_code == 204
    assert client.delete(url, headers=auth(token)).status_code == 404
    body = client.get(f"/api/campaigns/{campaign['id']}", headers=auth(token)).get_json()
    assert [m["id"] for m in body["mobs"]] == [mobs[0]["id"], mobs[1]["id"]]
    mine = client.get("/api/organizers/me/campaigns", headers=auth(token)).get_json()
    assert {c["id"] for c in mine["campaigns"]} == {campaign["id"], other_campaign["id"]}

    r = client.put(
        f"/api/mobs/{fresh['id']}/time-zone", json={"time_zone": "Asia/Tokyo"}, headers=auth(token)
    )
    assert r.status_code == 200 and r.get_json()["utc_offset"] == "+09:00"
    r = client.post(
        "/api/campaigns",
        json={"title": "Past", "go_at": "2020-01-01T00:00:00Z"},
        headers=auth(token),
    )
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "go_at_in_past"


def test_a_member_cannot_leave_the_shared_go_on_its_own(app, client, db):
    token = make_organizer(client)
    _campaign, mobs = three_city_campaign(client, token)
    with app.app_context():
        with pytest.raises(ApiError) as caught:
            campaigns.guard_schedule_change(db, mob_row(db, mobs[0]["id"]))
        assert caught.value.code == "mob_in_campaign"
        solo = make_mob(client, token)
        campaigns.guard_schedule_change(db, mob_row(db, solo["id"]))  # no campaign: no error


def test_time_zone_names_are_validated():
    assert campaigns.validate_time_zone("America/Argentina/Buenos_Aires")
    for bad in ("", "Berlin", "UTC+2", "../etc/passwd", None, 5):
        with pytest.raises(ApiError):
            campaigns.validate_time_zone(bad)
