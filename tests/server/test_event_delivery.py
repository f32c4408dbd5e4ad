"""No numbered event lost between a socket's join and the events published meanwhile, and a
phone that missed one anyway learns of it from the ``seq`` on its next ack (issue 15,
finding 8). The process-level half (the Redis subscription live before a process accepts a
connection) is in tests/integration/test_subscription.py."""

import uuid

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from server import socketio
from server.domain import timeline
from server.infra.models import Mob
from tests.factories import make_organizer, make_published_mob

P = "/participant"
INSIDE = (52.5320, 13.4000)  # lat, lon: inside the Weinberg park


@pytest.fixture()
def mob(client):
    token = make_organizer(client)
    m = make_published_mob(client, token, spacing_m=40)
    m["token"] = token
    return m


def _phone(app, client, mob_id):
    token = client.post(f"/api/mobs/{mob_id}/participants", json={}).get_json()["token"]
    sc = socketio.test_client(app, namespace=P, auth={"token": token})
    assert sc.is_connected(P)
    return sc


def _seq(db, mob_id) -> int:
    db.expire_all()
    return db.scalar(select(Mob.event_seq).where(Mob.id == mob_id))


def _announced_elsewhere(app, mob_id: str, text: str) -> dict:
    """An announcement committed by "another process" whose publish never reaches this one:
    recorded in a session without this app's emit-after-commit hook."""
    with Session(app.extensions["goodmob.engine"]) as other:
        the_mob = other.scalar(select(Mob).where(Mob.id == mob_id))
        payload = timeline.announce(other, the_mob, text, app.config["SETTINGS"])
        other.commit()
    return payload


def _announce_during_first_mob_read(app, mob_id: str):
    """Arm a hook: right after the next statement that reads ``mobs`` returns, another
    "process" commits an announcement and publishes it (this app's after-commit emit), as a
    Redis listener would deliver it while a join waits for its database read."""
    engine = app.extensions["goodmob.engine"]
    fired = []

    def after(conn, cursor, statement, params, context, executemany):
        if fired or not statement.lstrip().upper().startswith("SELECT") or "mobs" not in statement:
            return
        fired.append(True)
        session = app.extensions["goodmob.sessions"]()  # emits after its commit
        try:
            the_mob = session.scalar(select(Mob).where(Mob.id == mob_id))
            fired.append(timeline.announce(session, the_mob, "meanwhile", app.config["SETTINGS"]))
            session.commit()
        finally:
            session.close()

    event.listen(engine, "after_cursor_execute", after)
    return fired, lambda: event.remove(engine, "after_cursor_execute", after)


def _got(sc, namespace, seq) -> bool:
    return any(
        e["name"] == "announcement" and e["args"][0]["seq"] == seq
        for e in sc.get_received(namespace)
    )


def test_an_event_published_while_a_phone_joins_reaches_it(app, client, db, mob):
    phone = _phone(app, client, mob["id"])
    fired, disarm = _announce_during_first_mob_read(app, mob["id"])
    try:
        snap = phone.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    finally:
        disarm()
    assert "error" not in snap, snap
    announced = fired[1]
    # Either the snapshot was read after the event (then it holds it) or the event came live.
    assert snap["seq"] >= announced["seq"] or _got(phone, P, announced["seq"]), (
        snap["seq"],
        announced,
    )


@pytest.mark.parametrize("namespace", ["/live", "/organizer"])
def test_an_event_published_while_a_watcher_joins_reaches_it(app, client, db, mob, namespace):
    auth_payload = {"token": mob["token"]} if namespace == "/organizer" else None
    watcher = socketio.test_client(app, namespace=namespace, auth=auth_payload)
    before = _seq(db, mob["id"])
    fired, disarm = _announce_during_first_mob_read(app, mob["id"])
    try:
        snap = watcher.emit(
            "watch_mob", {"mob": mob["id"], "last_seq": before}, namespace=namespace, callback=True
        )
    finally:
        disarm()
    assert "error" not in snap, snap
    announced = fired[1]
    replayed = [m["data"]["seq"] for m in snap["missed"] or []]
    assert announced["seq"] in replayed or _got(watcher, namespace, announced["seq"]), (
        snap["seq"],
        replayed,
        announced,
    )


def test_the_location_ack_carries_the_mobs_latest_seq(app, client, db, mob):
    phone = _phone(app, client, mob["id"])
    snap = phone.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    fix = {"lat": INSIDE[0], "lon": INSIDE[1], "accuracy_m": 8, "at": 0}
    first = phone.emit("report_location", fix, namespace=P, callback=True)  # claims a task
    assert first["seq"] == snap["seq"] == _seq(db, mob["id"]), (first, snap)
    missed = _announced_elsewhere(app, mob["id"], "you were not told")
    assert not _got(phone, P, missed["seq"])  # the publish never reached this process
    again = phone.emit("report_location", fix, namespace=P, callback=True)  # unchanged fix
    assert again["seq"] == missed["seq"] == _seq(db, mob["id"]), again
    far = {"lat": 52.6, "lon": 13.6, "accuracy_m": 8, "at": 0}
    # A jump of 10 km: implausible, written as "uncertain" (another path of the ack).
    moved = phone.emit("report_location", far, namespace=P, callback=True)
    assert moved["reason"] == "implausible_speed" and moved["seq"] == missed["seq"], moved
    # The replay path the phone then takes: join_mob with its last seq.
    rejoin = phone.emit(
        "join_mob", {"mob": mob["id"], "last_seq": snap["seq"]}, namespace=P, callback=True
    )
    assert [m["data"]["seq"] for m in rejoin["missed"]] == [missed["seq"]]


def test_the_deed_ack_carries_the_mobs_latest_seq(app, client, db, mob):
    phone = _phone(app, client, mob["id"])
    phone.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    fix = {"lat": INSIDE[0], "lon": INSIDE[1], "accuracy_m": 8, "at": 0}
    task = phone.emit("report_location", fix, namespace=P, callback=True)["task"]
    missed = _announced_elsewhere(app, mob["id"], "you were not told")
    body = {"deed_id": str(uuid.uuid4()), "task": task["id"], "lat": task["lat"],
            "lon": task["lon"], "accuracy_m": 5}  # fmt: skip
    ack = phone.emit("confirm_deed", body, namespace=P, callback=True)
    assert "error" not in ack, ack
    assert ack["seq"] == missed["seq"] == _seq(db, mob["id"]), ack
