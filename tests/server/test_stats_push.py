"""Counters: spectators and the organizer get each push (≤ 2/s); the mob's phones get them on
their next location ack when they changed, and a phone that does not report gets them pushed
to it alone, at most every STATS_PARTICIPANTS_INTERVAL_S (server/infra/phonestats.py)."""

import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from server import create_app, socketio
from server.infra import phonestats
from server.infra.db import db_session
from server.infra.models import Mob
from server.realtime import broadcast as realtime
from tests.factories import make_organizer, make_published_mob

P, LIVE = "/participant", "/live"
FAR = (52.6, 13.6)  # well outside the test zone


@pytest.fixture()
def slow_phones_app(settings, db):
    app = create_app(replace(settings, stats_participants_interval_s=1.0))
    yield app
    app.extensions["goodmob.engine"].dispose()


def _stats(sc, namespace):
    return [e["args"][0] for e in sc.get_received(namespace) if e["name"] == "stats"]


def _mob(client) -> dict:
    return make_published_mob(client, make_organizer(client), spacing_m=40)


def _wait_until(done, timeout_s: float = 5.0):
    """Poll ``done()`` every 50 ms until it is truthy or the time is up; its last value."""
    deadline = time.monotonic() + timeout_s
    while not (value := done()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def _phone(app, client, mob_id):
    token = client.post(f"/api/mobs/{mob_id}/participants", json={}).get_json()["token"]
    phone = socketio.test_client(app, namespace=P, auth={"token": token})
    phone.emit("join_mob", {"mob": mob_id}, namespace=P, callback=True)
    return phone


def _report(phone, lat, lon):
    fix = {"lat": lat, "lon": lon, "accuracy_m": 10, "at": 0}
    return phone.emit("report_location", fix, namespace=P, callback=True)


def _emit(app, mob_id, totals):
    with app.app_context():
        session = db_session()
        the_mob = session.scalar(select(Mob).where(Mob.id == mob_id))
        realtime._emit_stats(session, the_mob, totals)


def test_counters_ride_on_acks_and_silent_phones_get_them_pushed(slow_phones_app):
    app = slow_phones_app
    client = app.test_client()
    mob = _mob(client)
    walker, silent = _phone(app, client, mob["id"]), _phone(app, client, mob["id"])
    spectator = socketio.test_client(app, namespace=LIVE)
    spectator.emit("watch_mob", {"mob": mob["id"]}, namespace=LIVE, callback=True)
    for sc, ns in ((walker, P), (silent, P), (spectator, LIVE)):
        sc.get_received(ns)
    counters = phonestats.state(app)
    assert counters.running  # started by the first join_mob

    _emit(app, mob["id"], {"joined": 7})
    _emit(app, mob["id"], {"joined": 8})
    assert [s["joined"] for s in _stats(spectator, LIVE)] == [7, 8]
    assert _stats(walker, P) == [] and _stats(silent, P) == []  # no push to every phone

    first = _report(walker, *FAR)
    assert first["zone"] == "outside"
    assert first["stats"]["mob"] == mob["id"]
    assert first["stats"] == counters.latest[mob["id"]].payload  # the latest counters
    assert "stats" not in _report(walker, *FAR)  # unchanged since: not again

    # The silent phone gets the latest counters pushed, once; the walker had them already.
    pushed = _wait_until(lambda: _stats(silent, P))
    assert pushed == [counters.latest[mob["id"]].payload]
    time.sleep(1.2)
    assert _stats(silent, P) == [] and _stats(walker, P) == []

    # Counters older than the interval are counted afresh from the database (a change made
    # through another process reaches this one's phones).
    _emit(app, mob["id"], {"joined": 99})
    counters.latest[mob["id"]].at -= 10
    with app.app_context():
        assert realtime._phone_counters_once(socketio.server, counters) == 1
    fresh = counters.latest[mob["id"]].payload
    assert fresh["joined"] == 2 and "pledges" in fresh
    on_ack = _report(walker, *FAR).get("stats")
    # (or pushed by the loop meanwhile: the walker's last counters are over 1 s old)
    assert fresh in [on_ack, *_stats(walker, P)]

    walker.disconnect(P)
    silent.disconnect(P)
    spectator.disconnect(LIVE)
    assert counters.seen == {}  # nothing kept for sockets that left
    _wait_until(lambda: not counters.running)
    assert not counters.running  # the loop stops when no phone is left
    assert counters.latest == {}


def test_phone_counters_due_only_when_changed_and_quiet_long_enough():
    c = phonestats.PhoneCounters(interval=5.0)
    c.offer("m", {"joined": 1}, now=100.0)
    c.joined("a", "m")
    c.seen["a"] = (c.seen["a"][0], 100.0)
    c.seen["b"] = (0, 100.0)
    # a has this version; b got older ones only a second ago; new never got any
    assert c.due("m", ["a", "b", "new"], 101.0) == ({"joined": 1}, ["new"])
    c.offer("m", {"joined": 2}, now=102.0)
    assert c.due("m", ["a", "b"], 103.0)[1] == []  # changed, but each got some < 5 s ago
    assert c.for_ack("a", "m") == {"joined": 2}
    assert c.due("m", ["a", "b"], 106.5)[1] == ["b"]  # a has it; b's last is 6.5 s old
    assert c.for_ack("b", "m") is None  # b got this version by push
    assert c.stale("m", 107.0) and not c.stale("m", 106.9)
    c.offer("m", {"joined": 2}, now=107.0)  # counted again, unchanged
    assert not c.stale("m", 107.5) and c.for_ack("a", "m") is None
    c.keep_only({"other"})
    assert c.latest == {} and c.for_ack("a", "m") is None


def test_a_join_snapshot_takes_counters_counted_in_the_last_half_second(slow_phones_app):
    """A wave of joins counts the mob once per STATS_MIN_INTERVAL_S, not once per join."""
    app = slow_phones_app
    client = app.test_client()
    mob = _mob(client)
    first = _phone(app, client, mob["id"])
    counters = phonestats.state(app)
    recent = {"mob": mob["id"], "seq": 0, "joined": 50, "in_zone": 0, "matched": 0,
              "deeds_done": 0, "deeds_flagged": 0, "pledges": []}  # fmt: skip
    counters.offer(mob["id"], recent)
    token = client.post(f"/api/mobs/{mob['id']}/participants", json={}).get_json()["token"]
    second = socketio.test_client(app, namespace=P, auth={"token": token})
    snap = second.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    assert snap["counters"] == {k: recent[k] for k in snap["counters"]}
    assert snap["counters"]["joined"] == 50 and set(snap["counters"]) >= {"deeds_done"}
    counters.latest[mob["id"]].at -= 1  # older than STATS_MIN_INTERVAL_S: counted afresh
    snap = second.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    assert snap["counters"]["joined"] == 2
    first.disconnect(P)
    second.disconnect(P)


def test_the_phones_counters_loop_ends_with_its_apps_engine(slow_phones_app):
    app = slow_phones_app
    client = app.test_client()
    mob = _mob(client)
    phone = _phone(app, client, mob["id"])
    counters = phonestats.state(app)
    assert counters.running
    app.extensions["goodmob.engine"].dispose()  # as at shutdown: the phone is still here
    _wait_until(lambda: not counters.running)
    assert not counters.running and counters.stopped
    phone.disconnect(P)
