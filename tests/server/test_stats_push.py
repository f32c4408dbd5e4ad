"""Counters pushes: spectators and the organizer get each one (≤ 2/s); the mob's phones at most
every STATS_PARTICIPANTS_INTERVAL_S, and a trailing push always brings them the last change."""

import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from server import create_app, realtime, socketio
from server.app import db_session
from server.models import Mob
from tests.factories import make_organizer, make_published_mob

P, LIVE = "/participant", "/live"


@pytest.fixture()
def slow_phones_app(settings, db):
    app = create_app(replace(settings, stats_participants_interval_s=1.0))
    yield app
    app.extensions["goodmob.engine"].dispose()


def _stats(sc, namespace):
    return [e["args"][0] for e in sc.get_received(namespace) if e["name"] == "stats"]


def test_phones_get_counters_less_often_but_always_the_last_change(slow_phones_app):
    app = slow_phones_app
    client = app.test_client()
    mob = make_published_mob(client, make_organizer(client), spacing_m=40)
    token = client.post(f"/api/mobs/{mob['id']}/participants", json={}).get_json()["token"]
    phone = socketio.test_client(app, namespace=P, auth={"token": token})
    phone.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    spectator = socketio.test_client(app, namespace=LIVE)
    spectator.emit("watch_mob", {"mob": mob["id"]}, namespace=LIVE, callback=True)
    phone.get_received(P)
    spectator.get_received(LIVE)

    with app.app_context():
        session = db_session()
        the_mob = session.scalar(select(Mob).where(Mob.id == mob["id"]))
        realtime._emit_stats(session, the_mob, {"joined": 1})
        realtime._emit_stats(session, the_mob, {"joined": 2})
    assert [s["joined"] for s in _stats(spectator, LIVE)] == [1, 2]
    assert [s["joined"] for s in _stats(phone, P)] == [1]  # the second waits

    deadline = time.monotonic() + 5
    trailing = []
    while not trailing and time.monotonic() < deadline:
        time.sleep(0.05)
        trailing = _stats(phone, P)
    assert len(trailing) == 1
    # Read afresh from the database, not the stale totals it was asked with.
    assert trailing[0]["joined"] == 1 and "pledges" in trailing[0]
    phone.disconnect(P)
    spectator.disconnect(LIVE)
