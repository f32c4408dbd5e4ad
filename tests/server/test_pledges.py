"""Sponsor pledges per verified deed: threshold, cap, flagged deeds, rehearsals, statements."""

import csv
import io

import pytest

from server.domain import pledges
from tests.factories import auth, make_mob, make_organizer, make_published_mob
from tests.growth_support import add_deed, approve, clean_growth, join, set_status


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


@pytest.fixture()
def setup(client):
    token = make_organizer(client, name="Ada")
    mob = make_published_mob(client, token, spacing_m=25)
    people = [join(client, mob["id"])["participant"]["id"] for _ in range(6)]
    return token, mob, people


def pledge(client, sponsor_token=None, **body):
    headers = auth(sponsor_token) if sponsor_token else {}
    r = client.post("/api/pledges", json=body, headers=headers)
    return r


def owed(client, token) -> dict[int, int]:
    body = client.get("/api/sponsors/me", headers=auth(token)).get_json()
    return {p["id"]: p["owed_minor"] for p in body["pledges"]}


def test_threshold_pays_nothing_below_and_the_exact_amount_from_it(client, db, setup):
    _org, mob, people = setup
    r = pledge(
        client,
        mob=mob["id"],
        amount_minor=150,
        currency="EUR",
        threshold_deeds=3,
        sponsor_name="Bakery Schulz",
    )
    assert r.status_code == 201
    body = r.get_json()
    token, pledge_id = body["sponsor_token"], body["pledge"]["id"]
    assert token.startswith("spn.") and body["pledge"]["owed_minor"] == 0
    expected = {0: 0, 1: 0, 2: 0, 3: 450, 4: 600}
    for deeds in range(5):
        if deeds:
            add_deed(db, mob["id"], people[deeds])
        got = owed(client, token)[pledge_id]
        assert got == expected[deeds], (deeds, got)
    totals = client.get(f"/api/mobs/{mob['id']}/pledges/totals").get_json()
    assert totals["deeds_counted"] == 4
    assert totals["totals"] == [
        {
            "currency": "EUR",
            "owed_minor": 600,
            "per_deed_minor": 150,
            "pledges": 1,
            "waiting_for_threshold": 0,
            "owed": "6.00",
        }
    ]


def test_the_cap_is_respected(client, db, setup):
    _org, mob, people = setup
    body = pledge(
        client,
        mob=mob["id"],
        amount_minor=150,
        currency="EUR",
        cap_minor=400,
        sponsor_name="Cap Co",
    ).get_json()
    token, pledge_id = body["sponsor_token"], body["pledge"]["id"]
    seen = []
    for person in people[:5]:
        add_deed(db, mob["id"], person)
        seen.append(owed(client, token)[pledge_id])
    assert seen == [150, 300, 400, 400, 400]
    totals = client.get(f"/api/mobs/{mob['id']}/pledges/totals").get_json()["totals"][0]
    assert totals["owed_minor"] == 400 and totals["per_deed_minor"] == 0  # capped: adds nothing


def test_flagged_deeds_change_the_total_only_after_approval(client, db, setup):
    org, mob, people = setup
    body = pledge(
        client, mob=mob["id"], amount_minor=100, currency="USD", sponsor_name="Fund"
    ).get_json()
    token, pledge_id = body["sponsor_token"], body["pledge"]["id"]
    add_deed(db, mob["id"], people[0])
    flagged = add_deed(db, mob["id"], people[1], status="flagged")
    rejected = add_deed(db, mob["id"], people[2], status="flagged")
    assert owed(client, token)[pledge_id] == 100
    approve(client, org, mob["id"], flagged.id)
    assert owed(client, token)[pledge_id] == 200
    r = client.post(
        f"/api/mobs/{mob['id']}/deeds/{rejected.id}/review",
        json={"verdict": "reject"},
        headers=auth(org),
    )
    assert r.status_code == 200
    assert owed(client, token)[pledge_id] == 200


def test_a_rehearsal_never_counts(client, db):
    org = make_organizer(client)
    mob = make_published_mob(client, org, spacing_m=25, rehearsal=True)
    person = join(client, mob["id"])["participant"]["id"]
    body = pledge(
        client, mob=mob["id"], amount_minor=100, currency="EUR", sponsor_name="Fund"
    ).get_json()
    add_deed(db, mob["id"], person)
    assert owed(client, body["sponsor_token"])[body["pledge"]["id"]] == 0
    assert client.get(f"/api/mobs/{mob['id']}/pledges/totals").get_json()["deeds_counted"] == 0


def test_one_sponsor_token_many_pledges_and_the_statement_after_the_mob(client, db, setup):
    org, mob, people = setup
    first = pledge(
        client,
        mob=mob["id"],
        amount_minor=250,
        currency="EUR",
        cap_minor=1000,
        sponsor_name='=HYPERLINK("x")',
    ).get_json()
    token = first["sponsor_token"]
    second = pledge(
        client, token, mob=mob["id"], amount_minor=300, currency="JPY", threshold_deeds=10
    )
    assert second.status_code == 201 and "sponsor_token" in second.get_json()
    assert second.get_json()["sponsor"]["id"] == first["sponsor"]["id"]
    for person in people[:3]:
        add_deed(db, mob["id"], person)
    r = client.get("/api/sponsors/me/statement.csv", headers=auth(token))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "statement_not_ready"
    set_status(db, mob["id"], "finished")
    r = client.get("/api/sponsors/me/statement.csv", headers=auth(token))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["pledge_id"] for row in rows] == [
        str(first["pledge"]["id"]),
        str(second.get_json()["pledge"]["id"]),
        "total",
        "total",
    ]
    eur, jpy = rows[0], rows[1]
    assert (eur["verified_deeds"], eur["owed_minor"], eur["owed"]) == ("3", "750", "7.50")
    assert (jpy["threshold_met"], jpy["owed_minor"], jpy["owed"]) == ("false", "0", "0")
    assert {(r["currency"], r["owed_minor"]) for r in rows[2:]} == {("EUR", "750"), ("JPY", "0")}
    assert all(row["sponsor"].startswith("'=") for row in rows)  # no formula injection


def test_public_totals_name_no_sponsor_and_the_organizer_sees_them(client, db, setup):
    org, mob, _people = setup
    pledge(client, mob=mob["id"], amount_minor=100, currency="EUR", sponsor_name="Secret Sam")
    public = client.get(f"/api/mobs/{mob['id']}/pledges/totals").get_data(as_text=True)
    assert "Secret Sam" not in public
    assert client.get(f"/api/mobs/{mob['id']}/pledges").status_code == 401
    r = client.get(f"/api/mobs/{mob['id']}/pledges", headers=auth(make_organizer(client)))
    assert r.status_code == 403
    mine = client.get(f"/api/mobs/{mob['id']}/pledges", headers=auth(org)).get_json()
    assert [p["sponsor"]["name"] for p in mine["pledges"]] == ["Secret Sam"]
    # The organizer may decline a pledge (anyone can pledge; totals are public).
    url = f"/api/mobs/{mob['id']}/pledges/{mine['pledges'][0]['id']}"
    other = make_published_mob(client, make_organizer(client), spacing_m=40)
    r = client.delete(
        f"/api/mobs/{other['id']}/pledges/{mine['pledges'][0]['id']}",
        headers=auth(make_organizer(client)),
    )
    assert r.status_code == 403
    assert client.delete(url, headers=auth(org)).status_code == 204
    assert client.delete(url, headers=auth(org)).status_code == 404
    assert client.get(f"/api/mobs/{mob['id']}/pledges/totals").get_json()["totals"] == []


def test_pledge_validation(client, db, setup):
    _org, mob, _people = setup
    ok = {"mob": mob["id"], "amount_minor": 100, "currency": "EUR", "sponsor_name": "S"}
    for change, status, code in (
        ({"currency": "EURO"}, 400, "field_too_long"),
        ({"currency": "ABC"}, 400, "currency_invalid"),
        ({"currency": "XAU"}, 400, "currency_invalid"),
        ({"amount_minor": 0}, 400, "field_out_of_range"),
        ({"amount_minor": 1.5}, 400, "field_wrong_type"),
        ({"cap_minor": 0}, 400, "field_out_of_range"),
        ({"threshold_deeds": -1}, 400, "field_out_of_range"),
        ({"campaign": "abcdefgh"}, 400, "field_missing"),
        ({"sponsor_name": None}, 400, "field_missing"),
        ({"mob": "nosuchmb"}, 404, "mob_not_found"),
        ({"bonus": 1}, 400, "field_unknown"),
    ):
        r = pledge(client, **{**ok, **change})
        assert (r.status_code, r.get_json()["error"]["code"]) == (status, code), change
    draft = make_mob(client, make_organizer(client))
    assert pledge(client, **{**ok, "mob": draft["id"]}).status_code == 404
    set_status(db, mob["id"], "cancelled")
    r = pledge(client, **ok)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_closed"


def test_withdraw_only_before_go_and_only_your_own(client, db, setup):
    _org, mob, _people = setup
    body = pledge(
        client, mob=mob["id"], amount_minor=100, currency="EUR", sponsor_name="S"
    ).get_json()
    other = pledge(
        client, mob=mob["id"], amount_minor=100, currency="EUR", sponsor_name="T"
    ).get_json()
    url = f"/api/pledges/{body['pledge']['id']}"
    r = client.delete(url, headers=auth(other["sponsor_token"]))
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "pledge_not_found"
    set_status(db, mob["id"], "action", go_in_s=-5)
    r = client.delete(url, headers=auth(body["sponsor_token"]))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "pledge_locked"
    set_status(db, mob["id"], "published", go_in_s=600)
    assert client.delete(url, headers=auth(body["sponsor_token"])).status_code == 204


def test_owed_rule():
    assert [pledges.owed_minor(150, 400, 3, d) for d in range(6)] == [0, 0, 0, 400, 400, 400]
    assert [pledges.owed_minor(99, None, None, d) for d in (0, 1, 7)] == [0, 99, 693]
    assert pledges.format_minor(-1234, "EUR") == "-12.34"
