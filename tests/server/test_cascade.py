"""Cascade (who brought whom), the funnel and view counting, over HTTP and Socket.IO."""

import json

import pytest
from sqlalchemy import inspect

from server import socketio
from tests.factories import auth, make_mob, make_organizer, make_published_mob
from tests.growth_support import INSIDE, add_deed, approve, clean_growth, join


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


@pytest.fixture()
def org(client):
    token = make_organizer(client, name="Ada")
    mob = make_published_mob(client, token, spacing_m=25)
    return token, mob


def test_the_organizer_share_link_is_stable_and_owned(client, org):
    token, mob = org
    url = f"/api/mobs/{mob['id']}/share-link"
    first = client.post(url, headers=auth(token)).get_json()
    assert (
        len(first["ref_code"]) == 11 and first["url"] == f"/m/{mob['id']}?ref={first['ref_code']}"
    )
    assert client.post(url, headers=auth(token)).get_json() == first
    assert client.post(url).status_code == 401
    r = client.post(url, headers=auth(make_organizer(client)))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "not_owner"
    # A code from the organizer's link joins; an unknown code is still refused.
    assert join(client, mob["id"], ref=first["ref_code"])["participant"]["ref_code"]
    r = client.post(f"/api/mobs/{mob['id']}/participants", json={"ref": "nosuchcode"})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "ref_unknown"


def test_cascade_ranks_sharers_by_deeds_and_hides_unchosen_nicknames(client, db, org):
    token, mob = org
    mob_id = mob["id"]
    org_code = client.post(f"/api/mobs/{mob_id}/share-link", headers=auth(token)).get_json()
    alice = join(client, mob_id, nickname="Alice")
    bob = join(client, mob_id, ref=alice["participant"]["ref_code"])  # no nickname chosen
    carol = join(client, mob_id, nickname="Carol", ref=bob["participant"]["ref_code"])
    dan = join(client, mob_id, ref=alice["participant"]["ref_code"])
    eve = join(client, mob_id)
    fay = join(client, mob_id, ref=org_code["ref_code"])
    add_deed(db, mob_id, alice["participant"]["id"])
    add_deed(db, mob_id, bob["participant"]["id"])
    add_deed(db, mob_id, carol["participant"]["id"])
    add_deed(db, mob_id, carol["participant"]["id"], minute=1.5)
    flagged = add_deed(db, mob_id, dan["participant"]["id"], status="flagged")
    add_deed(db, mob_id, fay["participant"]["id"])

    r = client.get(f"/api/mobs/{mob_id}/cascade")
    assert r.status_code == 200
    body = r.get_json()
    assert body["sharers"] == [
        {
            "rank": 1,
            "name": "Alice",
            "kind": "participant",
            "brought": 2,
            "reach": 3,
            "deeds_led_to": 3,
        },
        {
            "rank": 2,
            "name": "anonymous",
            "kind": "participant",
            "brought": 1,
            "reach": 1,
            "deeds_led_to": 2,
        },
        {
            "rank": 3,
            "name": "Ada",
            "kind": "organizer",
            "brought": 1,
            "reach": 1,
            "deeds_led_to": 1,
        },
    ]
    assert body["depth"] == 2
    assert body["generations"] == [
        {"generation": 0, "people": 2},  # Alice, Eve
        {"generation": 1, "people": 3},  # Bob, Dan, Fay
        {"generation": 2, "people": 1},  # Carol
    ]
    assert (body["joined"], body["referred"], body["via_organizer"], body["direct"]) == (6, 4, 1, 2)
    assert body["deeds_via_shares"] == 4  # Bob 1 + Carol 2 + Fay 1; Dan's is flagged
    text = json.dumps(body)
    for person in (alice, bob, carol, dan, eve, fay):
        assert person["participant"]["ref_code"] not in text
    for person in (bob, dan, eve, fay):  # generated nicknames are never shown
        assert person["participant"]["nickname"] not in text

    approve(client, token, mob_id, flagged.id)  # a flagged deed counts once approved
    after = client.get(f"/api/mobs/{mob_id}/cascade").get_json()
    assert after["sharers"][0]["deeds_led_to"] == 4 and after["deeds_via_shares"] == 5

    mine = client.get(f"/api/mobs/{mob_id}/cascade?ref={bob['participant']['ref_code']}")
    assert mine.get_json()["you"] == {
        "rank": 2,
        "name": "anonymous",
        "kind": "participant",
        "brought": 1,
        "reach": 1,
        "deeds_led_to": 2,
    }
    assert client.get(f"/api/mobs/{mob_id}/cascade?ref=unknown").get_json()["you"] is None


def test_funnel_from_views_to_deeds(app, client, db, org):
    _token, mob = org
    mob_id = mob["id"]
    url = f"/api/mobs/{mob_id}/views"
    assert client.post(url, json={"client_id": "client-aaaa-1"}).get_json() == {"counted": True}
    assert client.post(url, json={"client_id": "client-aaaa-1"}).get_json() == {"counted": False}
    # A beacon (navigator.sendBeacon) sends text/plain: the body is still read as JSON.
    r = client.post(url, data='{"client_id": "client-bbbb-2"}', content_type="text/plain")
    assert r.get_json() == {"counted": True}
    for bad in ({"client_id": "x"}, {"client_id": 12345678}, {}, {"client_id": "a" * 65}):
        r = client.post(url, json=bad)
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "field_invalid"
    assert client.post(url, json={"client_id": "client-cccc-3", "ip": "1.2.3.4"}).status_code == 400

    walker = join(client, mob_id, nickname="Walker")
    join(client, mob_id)  # joins but never comes
    sc = socketio.test_client(app, namespace="/participant", auth={"token": walker["token"]})
    ack = sc.emit("report_location", INSIDE, namespace="/participant", callback=True)
    assert ack["zone"] == "inside" and ack["task"]
    sc.disconnect(namespace="/participant")
    add_deed(db, mob_id, walker["participant"]["id"])
    add_deed(db, mob_id, walker["participant"]["id"], minute=2)

    funnel = client.get(f"/api/mobs/{mob_id}/funnel").get_json()
    assert funnel == {
        "viewed": 2,
        "joined": 2,
        "in_zone": 1,
        "matched": 1,
        "done": 1,
        "deeds_done": 2,
    }
    growth = client.get(f"/api/mobs/{mob_id}/growth").get_json()
    assert growth["funnel"] == funnel and growth["cascade"]["joined"] == 2
    assert growth["pledges"]["deeds_counted"] == 2 and growth["campaign"] is None


def test_views_keep_no_personal_data(app, client, org):
    _token, mob = org
    columns = {
        c["name"] for c in inspect(app.extensions["goodmob.engine"]).get_columns("mob_views")
    }
    assert columns == {"mob_pk", "day", "views"}
    draft = make_mob(client, make_organizer(client))
    r = client.post(f"/api/mobs/{draft['id']}/views", json={"client_id": "client-dddd-4"})
    assert r.status_code == 404


def test_a_rehearsal_counts_no_deeds_in_funnel_or_cascade(client, db):
    token = make_organizer(client)
    mob = make_published_mob(client, token, spacing_m=25, rehearsal=True)
    a = join(client, mob["id"], nickname="Ann")
    b = join(client, mob["id"], ref=a["participant"]["ref_code"])
    add_deed(db, mob["id"], b["participant"]["id"])
    assert client.get(f"/api/mobs/{mob['id']}/funnel").get_json()["deeds_done"] == 0
    sharer = client.get(f"/api/mobs/{mob['id']}/cascade").get_json()["sharers"][0]
    assert sharer["name"] == "Ann" and sharer["brought"] == 1 and sharer["deeds_led_to"] == 0


def test_drafts_have_no_public_cascade(client):
    token = make_organizer(client)
    draft = make_mob(client, token)
    for path in ("cascade", "funnel", "growth"):
        assert client.get(f"/api/mobs/{draft['id']}/{path}").status_code == 404
        assert client.get(f"/api/mobs/{draft['id']}/{path}", headers=auth(token)).status_code == 200
