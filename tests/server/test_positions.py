"""The write-behind buffer of walking fixes (server/domain/positions.py), on both databases.

Each test gets its own buffer with no flush loop running (``buf``), so it decides when a
flush happens; the real flush loop is exercised by the integration tests.
"""

import random
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import create_engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

import geo
from server import socketio
from server.domain import participants, positions
from server.infra.db import db_session
from server.infra.models import Mob, Participant
from tests.factories import PARK, make_organizer, make_published_mob

NS = "/participant"
INSIDE = (52.5320, 13.4000)  # lat, lon: inside the Weinberg park, ~15 m from a task


@pytest.fixture()
def buf(app, monkeypatch):
    """A fresh buffer for this test, flushed only when the test says so."""
    fresh = positions.PositionBuffer(app.extensions["goodmob.sessions"])
    monkeypatch.setitem(app.extensions, "goodmob.positions", fresh)
    return fresh


@pytest.fixture()
def mob(client):
    m = make_published_mob(client, make_organizer(client), spacing_m=40)
    return m


def join(client, mob_id) -> dict:
    r = client.post(f"/api/mobs/{mob_id}/participants", json={})
    assert r.status_code == 201
    return r.get_json()


def stored(db, participant_id):
    db.expire_all()
    return db.get(Participant, participant_id)


def report(app, participant_id, lat, lon, at, accuracy_m=8.0):
    """A location report through the socket handler's domain call, at server time ``at``."""
    with app.app_context():
        body = {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "at": 0}
        ack, changed = participants.report_location_by_id(
            app.extensions["goodmob.engine"],
            db_session,
            participant_id,
            body,
            app.config["SETTINGS"],
            now=at,
        )
        if changed is not None:
            db_session().commit()
        return ack, changed


def test_walking_fix_is_kept_in_memory_then_written_in_one_flush(app, client, db, mob, buf):
    people = [join(client, mob["id"])["participant"]["id"] for _ in range(3)]
    t0 = datetime.now(UTC)
    for pid in people:  # first fix: zone entry and a task claim, written at once
        ack, changed = report(app, pid, *INSIDE, at=t0)
        assert ack["zone"] == "inside" and ack["task"] and changed is not None
        assert stored(db, pid).lat == INSIDE[0]
    assert len(buf) == 0

    # A few metres on, 5 s later: same zone state, same task -> acknowledged from memory.
    t1 = t0 + timedelta(seconds=5)
    for i, pid in enumerate(people):
        ack, changed = report(app, pid, INSIDE[0] + 0.00003 * (i + 1), INSIDE[1], at=t1)
        assert ack["zone"] == "inside" and ack["counted"] and changed is None
    assert len(buf) == 3
    assert all(stored(db, pid).lat == INSIDE[0] for pid in people)  # not written yet

    assert buf.flush() == 3
    assert (buf.flushes, buf.written, len(buf)) == (1, 3, 0)
    for i, pid in enumerate(people):
        row = stored(db, pid)
        assert row.lat == pytest.approx(INSIDE[0] + 0.00003 * (i + 1)) and row.fix_at == t1


def test_own_snapshot_and_acks_use_the_latest_fix(app, client, db, mob, buf):
    joined = join(client, mob["id"])
    pid = joined["participant"]["id"]
    t0 = datetime.now(UTC)
    first, _ = report(app, pid, *INSIDE, at=t0)
    task = first["task"]
    # Walk 12 m straight towards the task (kept in the buffer only).
    lat = INSIDE[0] + (task["lat"] - INSIDE[0]) * 0.5
    lon = INSIDE[1] + (task["lon"] - INSIDE[1]) * 0.5
    ack, changed = report(app, pid, lat, lon, at=t0 + timedelta(seconds=10))
    assert changed is None and ack["task"]["id"] == task["id"]
    assert ack["task"]["distance_m"] == pytest.approx(task["distance_m"] / 2, abs=0.2)

    sc = socketio.test_client(app, namespace=NS, auth={"token": joined["token"]})
    snap = sc.emit("join_mob", {"mob": mob["id"]}, namespace=NS, callback=True)
    sc.disconnect(namespace=NS)
    assert snap["task"]["id"] == task["id"]
    assert snap["task"]["distance_m"] == pytest.approx(ack["task"]["distance_m"], abs=0.1)
    assert stored(db, pid).lat == INSIDE[0]  # the snapshot came from memory, not the row


def test_plausibility_judges_against_the_buffered_fix(app, client, db, mob, buf):
    pid = join(client, mob["id"])["participant"]["id"]
    t0 = datetime.now(UTC)
    report(app, pid, *INSIDE, at=t0)
    # 100 s later, 110 m north (1.1 m/s): plausible, kept in memory.
    north = (INSIDE[0] + 0.001, INSIDE[1])
    ack, _ = report(app, pid, *north, at=t0 + timedelta(seconds=100))
    assert ack["counted"] and len(buf) == 1
    # 2 s after that, back at the first spot: plausible from the stored row (102 s),
    # impossible from the buffered fix (110 m in 2 s).
    ack, _ = report(app, pid, *INSIDE, at=t0 + timedelta(seconds=102))
    assert ack["counted"] is False and ack["reason"] == "implausible_speed"


def test_a_failed_flush_keeps_its_fixes_for_the_next(app, client, db, mob, buf, tmp_path):
    pid = join(client, mob["id"])["participant"]["id"]
    t0 = datetime.now(UTC)
    report(app, pid, *INSIDE, at=t0)
    report(app, pid, INSIDE[0] + 0.00002, INSIDE[1], at=t0 + timedelta(seconds=3))

    real_sessions = buf._sessions
    broken = create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite3")
    buf._sessions = sessionmaker(broken)
    with pytest.raises(OperationalError):  # the database file cannot be opened
        buf.flush()
    assert (buf.failures, len(buf)) == (1, 1)
    assert stored(db, pid).fix_at == t0

    # A newer fix arriving meanwhile replaces the kept one; the next flush writes it.
    report(app, pid, INSIDE[0] + 0.00004, INSIDE[1], at=t0 + timedelta(seconds=6))
    buf._sessions = real_sessions
    assert buf.flush() == 1
    row = stored(db, pid)
    assert row.fix_at == t0 + timedelta(seconds=6)
    assert row.lat == pytest.approx(INSIDE[0] + 0.00004)


def test_a_flush_never_replaces_a_newer_fix(app, client, db, mob, buf):
    pid = join(client, mob["id"])["participant"]["id"]
    person = stored(db, pid)
    t0 = datetime.now(UTC)
    newer = t0 + timedelta(seconds=10)
    db.execute(
        update(Participant).where(Participant.id == pid).values(lat=1.0, lon=2.0, fix_at=newer)
    )
    db.commit()
    buf.put(positions.Fix(pid, person.mob_pk, 52.53, 13.4, 5.0, t0))
    assert buf.flush() == 1  # written as a statement, matched no row
    row = stored(db, pid)
    assert (row.lat, row.lon, row.fix_at) == (1.0, 2.0, newer)


def test_a_fix_older_than_the_row_is_never_used_for_it(app, client, db, mob, buf):
    """A recycled participant id (a truncated test database) never gets a stranger's fix."""
    pid = join(client, mob["id"])["participant"]["id"]
    person = stored(db, pid)
    before = person.created_at - timedelta(seconds=5)
    buf.put(positions.Fix(pid, person.mob_pk, 52.53, 13.4, 5.0, before))
    with app.app_context():
        assert positions.latest(pid, person.mob_pk, person.created_at, None) is None
    buf.flush()
    assert stored(db, pid).lat is None


def test_purge_drops_buffered_fixes_and_later_writes(app, client, db, mob, buf):
    pid = join(client, mob["id"])["participant"]["id"]
    t0 = datetime.now(UTC)
    report(app, pid, *INSIDE, at=t0)
    report(app, pid, INSIDE[0] + 0.00002, INSIDE[1], at=t0 + timedelta(seconds=3))
    assert len(buf) == 1
    the_mob = db.scalar(select(Mob).where(Mob.id == mob["id"]))
    with app.app_context():
        positions.purge_positions(db, the_mob)  # what the scheduler runs when a mob ends
        the_mob.positions_purged_at = t0
        db.commit()
    assert len(buf) == 0 and stored(db, pid).lat is None

    # A fix that was already on its way is not written over the purge...
    buf.put(positions.Fix(pid, the_mob.pk, 52.53, 13.4, 5.0, t0 + timedelta(seconds=4)))
    buf.flush()
    assert stored(db, pid).lat is None
    # ...and a report after it is refused without keeping anything.
    ack, _ = report(app, pid, *INSIDE, at=t0 + timedelta(seconds=9))
    assert {**ack, "seq": None} == {"zone": "uncertain", "counted": False, "reason": "mob_ended",
                                    "task": None, "seq": None}  # fmt: skip
    assert len(buf) == 0 and stored(db, pid).lat is None


def test_state_changes_are_written_at_once(app, client, db, mob, buf):
    pid = join(client, mob["id"])["participant"]["id"]
    t0 = datetime.now(UTC)
    report(app, pid, *INSIDE, at=t0)
    # On the boundary with a 60 m circle: inside -> uncertain, written immediately.
    ack, changed = report(
        app, pid, 52.53049, 13.39905, at=t0 + timedelta(seconds=60), accuracy_m=60
    )
    assert ack["zone"] == "uncertain" and changed is not None
    row = stored(db, pid)
    assert row.zone_state == "uncertain" and row.lat == 52.53049 and len(buf) == 0


@pytest.mark.parametrize(
    "zone",
    [
        PARK,
        # concave (an L), with a hole
        {"type": "Polygon", "coordinates": [
            [[13.40, 52.50], [13.42, 52.50], [13.42, 52.505], [13.405, 52.505],
             [13.405, 52.52], [13.40, 52.52], [13.40, 52.50]],
            [[13.401, 52.501], [13.403, 52.501], [13.403, 52.503], [13.401, 52.501]],
        ]},
        # a thin strip 20 km long, far north
        {"type": "Polygon", "coordinates": [
            [[24.90, 60.10], [24.902, 60.10], [24.902, 60.28], [24.90, 60.28], [24.90, 60.10]]
        ]},
    ],
)  # fmt: skip
def test_the_inside_shortcut_agrees_with_geo(zone):
    """participants' cached-zone check says what geo.zone_status says, on every fix."""
    polygon = shape(zone)
    cached = participants._Zone(datetime.now(UTC), polygon, participants._inner_zones(polygon))
    assert cached.inner, "the shortcut should apply to these zones"
    w, s, e, n = polygon.bounds
    rng = random.Random(5)
    shortcuts = 0
    for _ in range(3000):
        lon, lat = rng.uniform(w, e), rng.uniform(s, n)
        accuracy = rng.choice([0.0, 3.0, 9.9, 10.0, 24.0, 50.0, 99.0, 100.0, 150.0])
        want = geo.zone_status(polygon, lon, lat, accuracy)
        got = participants._zone_status(cached, lon, lat, accuracy)
        assert got == want, (lon, lat, accuracy)
        shortcuts += any(
            accuracy <= d and shapely.contains_xy(inner, lon, lat) for d, inner in cached.inner
        )
    assert shortcuts > 100  # the shortcut is actually taken
