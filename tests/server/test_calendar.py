"""The calendar entries: ``GET /api/mobs/{id}.ics`` and the organizer's feed (RFC 5545, parsed
back with the icalendar library), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar

from tests.factories import auth, make_mob, make_organizer, make_published_mob


def _parse(response) -> Calendar:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/calendar"
    return Calendar.from_ical(response.data)


def _event(cal: Calendar):
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    return events[0]


def _at(value: str) -> datetime:
    """An API instant to whole seconds: iCalendar has no fractions of a second."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(microsecond=0)


def _go_at(mob: dict) -> datetime:
    return _at(mob["go_at"])


def test_mob_ics_has_go_uid_url_and_no_email(client, db):
    token = make_organizer(client, email="ics@example.org")
    mob = make_published_mob(client, token)
    r = client.get(f"/api/mobs/{mob['id']}.ics")
    assert "attachment" in r.headers["Content-Disposition"]
    cal = _parse(r)
    assert str(cal["version"]) == "2.0" and cal["prodid"]
    event = _event(cal)
    start = event.decoded("dtstart")
    assert start.tzinfo is not None and start.utcoffset().total_seconds() == 0
    assert start == _go_at(mob)
    assert event.decoded("dtend") == _at(mob["end_at"])
    assert str(event["uid"]) == f"mob-{mob['id']}@goodmob"
    assert str(event["url"]).endswith(f"/m/{mob['id']}")
    assert str(event["summary"]) == mob["title"]
    assert int(event["sequence"]) == 0 and str(event["status"]) == "CONFIRMED"
    assert "organizer" not in event and b"ics@example.org" not in r.data
    # the UID is stable
    again = _event(_parse(client.get(f"/api/mobs/{mob['id']}.ics")))
    assert again["uid"] == event["uid"]
    # the JSON view of the mob is untouched by the .ics route
    assert client.get(f"/api/mobs/{mob['id']}").get_json()["id"] == mob["id"]


def test_dtstart_is_exactly_go_at(client, db):
    go_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    mob = make_published_mob(client, make_organizer(client), go_at=go_at.isoformat())
    event = _event(_parse(client.get(f"/api/mobs/{mob['id']}.ics")))
    assert event.decoded("dtstart") == go_at == datetime.fromisoformat(mob["go_at"])


def test_postpone_raises_sequence_and_moves_dtstart(client, db):
    token = make_organizer(client)
    mob = make_published_mob(client, token)
    url = f"/api/mobs/{mob['id']}"
    r = client.post(f"{url}/postpone", json={"by_s": 600}, headers=auth(token))
    assert r.status_code == 200, r.get_json()
    moved = r.get_json()
    first = _event(_parse(client.get(f"{url}.ics")))
    assert int(first["sequence"]) == 1
    assert first.decoded("dtstart") == _go_at(moved) != _go_at(mob)
    client.post(f"{url}/postpone", json={"by_s": 60}, headers=auth(token))
    second = _event(_parse(client.get(f"{url}.ics")))
    assert int(second["sequence"]) == 2 and second["uid"] == first["uid"]


def test_cancel_sets_status_cancelled(client, db):
    token = make_organizer(client)
    mob = make_published_mob(client, token)
    url = f"/api/mobs/{mob['id']}"
    assert client.post(f"{url}/cancel", headers=auth(token)).status_code == 200
    event = _event(_parse(client.get(f"{url}.ics")))
    assert str(event["status"]) == "CANCELLED" and int(event["sequence"]) == 1


def test_draft_ics_is_404_to_others_and_unknown_mob_is_404(client, db):
    token = make_organizer(client)
    draft = make_mob(client, token)
    r = client.get(f"/api/mobs/{draft['id']}.ics")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "mob_not_found"
    assert client.get(f"/api/mobs/{draft['id']}.ics", headers=auth(token)).status_code == 200
    assert client.get("/api/mobs/zzzzzzzz.ics").status_code == 404


def test_organizer_feed_lists_published_upcoming_mobs(client, db):
    token = make_organizer(client, name="Feedy")
    a = make_published_mob(client, token, title="First")
    b = make_published_mob(client, token, title="Second")
    draft = make_mob(client, token, title="Draft")
    # a draft cancelled before it was ever published: its title must not leak into the feed
    dropped = make_mob(client, token, title="Secret draft")
    assert client.post(f"/api/mobs/{dropped['id']}/cancel", headers=auth(token)).status_code == 200
    rehearsal = make_published_mob(client, token, title="Practice", rehearsal=True)
    client.post(f"/api/mobs/{b['id']}/cancel", headers=auth(token))
    other = make_published_mob(client, make_organizer(client, name="Other"), title="Else")
    r = client.get(f"/api/mobs/{a['id']}/organizer/mobs.ics")
    cal = _parse(r)
    assert "Feedy" in str(cal["x-wr-calname"])
    events = {str(e["uid"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {f"mob-{a['id']}@goodmob", f"mob-{b['id']}@goodmob"}
    assert str(events[f"mob-{b['id']}@goodmob"]["status"]) == "CANCELLED"
    assert events[f"mob-{a['id']}@goodmob"].decoded("dtstart") == _go_at(a)
    for absent in (draft, dropped, rehearsal, other):
        assert absent["id"] not in r.get_data(as_text=True)
    assert "Secret draft" not in r.get_data(as_text=True)
    # named through any of the organizer's visible mobs
    same = client.get(f"/api/mobs/{b['id']}/organizer/mobs.ics")
    assert {str(e["uid"]) for e in _parse(same).walk("VEVENT")} == set(events)
    assert client.get(f"/api/mobs/{draft['id']}/organizer/mobs.ics").status_code == 404
    assert datetime.now(UTC) < _go_at(a)


def test_place_feed_lists_the_mobs_nearby(client, db):
    token = make_organizer(client)
    a = make_published_mob(client, token, title="Near")
    rehearsal = make_published_mob(client, token, title="Practice", rehearsal=True)
    draft = make_mob(client, token)
    lat, lon = a["zone"]["coordinates"][0][0][1], a["zone"]["coordinates"][0][0][0]
    r = client.get(f"/api/mobs.ics?lat={lat}&lon={lon}&radius_m=1000")
    cal = _parse(r)
    assert [str(e["uid"]) for e in cal.walk("VEVENT")] == [f"mob-{a['id']}@goodmob"]
    assert "near" in str(cal["x-wr-calname"]).lower()
    for absent in (rehearsal, draft):
        assert absent["id"] not in r.get_data(as_text=True)
    far = _parse(client.get("/api/mobs.ics?lat=0&lon=0&radius_m=1000"))
    assert list(far.walk("VEVENT")) == []
    r = client.get("/api/mobs.ics?lat=100&lon=0")
    assert r.status_code == 400
    assert (
        r.get_json()["error"]["code"]
        == client.get("/api/mobs?lat=100&lon=0").get_json()["error"]["code"]
    )
