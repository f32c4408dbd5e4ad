"""Timeline, numbered events, organizer controls and the phase scheduler (in-process)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from server import socketio
from server.domain import scheduler, timeline
from server.infra.models import Mob, MobEvent, Participant
from tests.factories import auth, make_organizer, make_published_mob

P, LIVE, ORG = "/participant", "/live", "/organizer"
INSIDE = (52.5320, 13.4000)


@pytest.fixture()
def mob(client):
    token = make_organizer(client)
    m = make_published_mob(client, token, spacing_m=40)
    m["token"] = token
    return m


def join(client, app, mob_id):
    r = client.post(f"/api/mobs/{mob_id}/participants", json={})
    assert r.status_code == 201
    sc = socketio.test_client(app, namespace=P, auth={"token": r.get_json()["token"]})
    assert sc.is_connected(P)
    return sc


def events(sc, namespace, name=None):
    got = [e for e in sc.get_received(namespace) if name is None or e["name"] == name]
    return [(e["name"], e["args"][0]) for e in got]


def shift_schedule(db, mob_id, go_in_s, duration_s=60):
    """Move the stored schedule so GO is ``go_in_s`` from now (negative: in the past)."""
    go = datetime.now(UTC) + timedelta(seconds=go_in_s)
    db.execute(
        update(Mob)
        .where(Mob.id == mob_id)
        .values(
            go_at=go,
            gather_at=go - timedelta(seconds=900),
            countdown_at=go - timedelta(seconds=60),
            end_at=go + timedelta(seconds=duration_s),
            duration_s=duration_s,
        )
    )
    db.commit()


def tick(app, db):
    with app.app_context():
        scheduler.tick(db, app.config["SETTINGS"])


def test_timeline_in_join_snapshot_and_rest(app, client, mob):
    sc = join(client, app, mob["id"])
    snap = sc.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    tl = snap["timeline"]
    assert tl["version"] == 1 and tl["phase"] == "published" and snap["seq"] == 0
    assert tl["go_at_ms"] - tl["countdown_at_ms"] == 60_000
    assert tl["action"] == mob["action"] and tl["rehearsal"] is False
    assert snap["missed"] is None  # no last_seq: a fresh snapshot
    assert client.get(f"/api/mobs/{mob['id']}").get_json()["timeline"] == tl


def test_scheduler_moves_phases_once_and_emits_to_every_audience(app, client, db, mob):
    sc = join(client, app, mob["id"])
    sc.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    live = socketio.test_client(app, namespace=LIVE)
    assert live.emit("watch_mob", {"mob": mob["id"]}, namespace=LIVE, callback=True)["seq"] == 0
    shift_schedule(db, mob["id"], go_in_s=30)  # gathering and countdown are both overdue
    tick(app, db)
    tick(app, db)  # a second loop finds nothing more to do
    phases = events(sc, P, "phase")
    assert [(d["phase"], d["seq"]) for _, d in phases] == [("countdown", 1)]
    assert [d["phase"] for _, d in events(live, LIVE, "phase")] == ["countdown"]
    shift_schedule(db, mob["id"], go_in_s=-1)
    tick(app, db)
    [(_, action)] = events(sc, P, "phase")
    assert action["phase"] == "action" and action["seq"] == 2
    stored = db.scalars(select(MobEvent.event).join(Mob).where(Mob.id == mob["id"])).all()
    assert stored == ["phase", "phase"]


def test_compare_and_set_lets_one_of_two_schedulers_win(app, client, db, mob):
    shift_schedule(db, mob["id"], go_in_s=-1)
    sessions = app.extensions["goodmob.sessions"]
    first, second = sessions(), sessions()
    try:
        a = first.scalar(select(Mob).where(Mob.id == mob["id"]))
        b = second.scalar(select(Mob).where(Mob.id == mob["id"]))
        now = datetime.now(UTC)
        settings = app.config["SETTINGS"]
        with app.app_context():
            assert scheduler.advance(first, a, now, settings) == "action"
            assert scheduler.advance(second, b, now, settings) is None
    finally:
        first.close()
        second.close()
    assert db.scalar(select(Mob.event_seq).where(Mob.id == mob["id"])) == 1


def test_start_now_postpone_announce_and_replay(app, client, db, mob):
    sc = join(client, app, mob["id"])
    sc.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    h = auth(mob["token"])
    r = client.post(f"/api/mobs/{mob['id']}/start-now", json={"lead_s": 45}, headers=h)
    assert r.status_code == 200, r.get_json()
    go_ms = r.get_json()["timeline"]["go_at_ms"]
    assert abs(go_ms - (datetime.now(UTC).timestamp() * 1000 + 45_000)) < 5_000
    r = client.post(f"/api/mobs/{mob['id']}/postpone", json={"by_s": 120}, headers=h)
    assert r.get_json()["timeline"]["go_at_ms"] == go_ms + 120_000
    assert r.get_json()["timeline"]["version"] == 3
    r = client.post(
        f"/api/mobs/{mob['id']}/announcements", json={"text": "Gloves at the gate"}, headers=h
    )
    assert r.status_code == 201 and r.get_json()["seq"] == 3
    got = events(sc, P)
    assert [(n, d["seq"]) for n, d in got if n != "stats"] == [
        ("timeline", 1),
        ("timeline", 2),
        ("announcement", 3),
    ]
    # A client that saw only seq 1 catches up on 2 and 3, in order.
    snap = sc.emit("join_mob", {"mob": mob["id"], "last_seq": 1}, namespace=P, callback=True)
    assert [(m["event"], m["data"]["seq"]) for m in snap["missed"]] == [
        ("timeline", 2),
        ("announcement", 3),
    ]
    assert snap["missed"][1]["data"]["text"] == "Gloves at the gate"
    # A number the mob never gave out gets a fresh snapshot instead.
    snap = sc.emit("join_mob", {"mob": mob["id"], "last_seq": 99}, namespace=P, callback=True)
    assert snap["missed"] is None and snap["seq"] == 3
    r = client.get(f"/api/mobs/{mob['id']}/events?after=2")
    assert [e["event"] for e in r.get_json()["events"]] == ["announcement"]


def test_trimmed_events_give_a_fresh_snapshot(app, client, db, mob):
    h = auth(mob["token"])
    keep = app.config["SETTINGS"].event_replay_max
    with app.app_context():
        m = db.scalar(select(Mob).where(Mob.id == mob["id"]))
        for i in range(keep + 20):
            timeline.record_event(db, m, "announcement", {"text": str(i)}, app.config["SETTINGS"])
        db.commit()
    r = client.get(f"/api/mobs/{mob['id']}/events?after=1")
    assert r.status_code == 410 and r.get_json()["error"]["code"] == "events_gone"
    r = client.get(f"/api/mobs/{mob['id']}/events?after={keep}", headers=h)
    assert len(r.get_json()["events"]) == 20


def test_an_event_committed_after_the_mob_was_read_is_not_taken_for_a_trim(app, client, db, mob):
    """The mob (with its last event number) and its events are two reads: an event
    committed between them (the scheduler moving the mob on) must not make the replay look
    trimmed (that answered 410 events_gone to a poll in a fault test)."""
    settings = app.config["SETTINGS"]
    with app.app_context():
        m = db.scalar(select(Mob).where(Mob.id == mob["id"]))
        timeline.record_event(db, m, "announcement", {"text": "one"}, settings)
        timeline.record_event(db, m, "announcement", {"text": "two"}, settings)
        db.commit()
        reader = app.extensions["goodmob.sessions"]()
        try:
            seen = reader.scalar(select(Mob).where(Mob.id == mob["id"]))  # event_seq = 2
            assert seen.event_seq == 2
            timeline.record_event(db, m, "announcement", {"text": "three"}, settings)
            db.commit()  # committed by another session after the mob was read
            missed = timeline.missed_events(reader, seen, 0)
        finally:
            reader.close()
    assert missed is not None
    assert [e["data"]["text"] for e in missed] == ["one", "two"]


def test_control_errors(client, db, mob):
    h = auth(mob["token"])
    url = f"/api/mobs/{mob['id']}"
    r = client.post(f"{url}/start-now", json={"lead_s": 2}, headers=h)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "lead_too_short"
    r = client.post(f"{url}/postpone", json={"by_s": 60, "go_at": mob["go_at"]}, headers=h)
    assert r.status_code == 400
    r = client.post(f"{url}/postpone", json={"go_at": mob["go_at"]}, headers=h)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "postpone_not_later"
    r = client.post(f"{url}/announcements", json={"text": "x" * 281}, headers=h)
    assert r.status_code == 400
    shift_schedule(db, mob["id"], go_in_s=-1)
    db.execute(update(Mob).where(Mob.id == mob["id"]).values(status="action"))
    db.commit()
    r = client.post(f"{url}/start-now", json={}, headers=h)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_started"
    r = client.post(f"{url}/cancel", headers=h)
    assert r.status_code == 200
    r = client.post(f"{url}/announcements", json={"text": "too late"}, headers=h)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_closed"


def test_postponing_a_countdown_goes_back_to_gathering(app, client, db, mob):
    shift_schedule(db, mob["id"], go_in_s=30)
    tick(app, db)
    assert client.get(f"/api/mobs/{mob['id']}").get_json()["status"] == "countdown"
    r = client.post(
        f"/api/mobs/{mob['id']}/postpone", json={"by_s": 600}, headers=auth(mob["token"])
    )
    assert r.get_json()["status"] == "gathering"
    assert r.get_json()["timeline"]["phase"] == "gathering"


def test_cancel_tells_everyone_and_purges_positions(app, client, db, mob):
    sc = join(client, app, mob["id"])
    sc.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    ack = sc.emit(
        "report_location",
        {"lat": INSIDE[0], "lon": INSIDE[1], "accuracy_m": 10, "at": 0},
        namespace=P,
        callback=True,
    )
    assert ack["zone"] == "inside"
    r = client.post(f"/api/mobs/{mob['id']}/cancel", headers=auth(mob["token"]))
    assert r.status_code == 200
    got = [(n, d.get("phase")) for n, d in events(sc, P) if n in ("timeline", "phase")]
    assert got == [("timeline", None), ("phase", "cancelled")]
    tick(app, db)
    db.expire_all()
    people = db.scalars(select(Participant).join(Mob).where(Mob.id == mob["id"])).all()
    assert people and all(p.lat is None and p.lon is None for p in people)


def test_finished_mob_positions_deleted_after_grace(app, client, db, mob):
    sc = join(client, app, mob["id"])
    sc.emit(
        "report_location",
        {"lat": INSIDE[0], "lon": INSIDE[1], "accuracy_m": 10, "at": 0},
        namespace=P,
        callback=True,
    )
    grace = app.config["SETTINGS"].deed_grace_s
    shift_schedule(db, mob["id"], go_in_s=-100, duration_s=10)  # ended 90 s ago
    tick(app, db)
    assert client.get(f"/api/mobs/{mob['id']}").get_json()["status"] == "finished"
    assert db.scalar(select(Participant.lat).join(Mob).where(Mob.id == mob["id"])) is not None
    shift_schedule(db, mob["id"], go_in_s=-(grace + 20), duration_s=10)
    tick(app, db)
    db.expire_all()
    assert db.scalar(select(Participant.lat).join(Mob).where(Mob.id == mob["id"])) is None


def test_rehearsal_counts_no_deeds(client, mob):
    token = mob["token"]
    r = client.patch(f"/api/mobs/{mob['id']}", json={"rehearsal": True}, headers=auth(token))
    assert r.status_code == 200 and r.get_json()["timeline"]["rehearsal"] is True
    counters = client.get(f"/api/mobs/{mob['id']}").get_json()["counters"]
    assert counters["deeds_done"] == 0 and counters["rehearsal_deeds"] == 0


def test_organizer_socket_controls_and_authorization(app, client, mob):
    other = make_organizer(client, name="Mallory")
    refused = socketio.test_client(app, namespace=ORG, auth={"token": "forged"})
    assert not refused.is_connected(ORG)
    intruder = socketio.test_client(app, namespace=ORG, auth={"token": other})
    ack = intruder.emit("watch_mob", {"mob": mob["id"]}, namespace=ORG, callback=True)
    assert ack["error"]["code"] == "not_owner"
    ack = intruder.emit("start_now", {"mob": mob["id"], "lead_s": 30}, namespace=ORG, callback=True)
    assert ack["error"]["code"] == "not_owner"
    org = socketio.test_client(app, namespace=ORG, auth={"token": mob["token"]})
    snap = org.emit("watch_mob", {"mob": mob["id"]}, namespace=ORG, callback=True)
    assert snap["phase"] == "published" and snap["tasks"]["type"] == "FeatureCollection"
    ack = org.emit("start_now", {"mob": mob["id"], "lead_s": 30}, namespace=ORG, callback=True)
    assert ack["timeline"]["version"] == 2
    ack = org.emit("announce", {"mob": mob["id"], "text": "Hello"}, namespace=ORG, callback=True)
    assert ack["announcement"]["seq"] == 2
    names = [n for n, _ in events(org, ORG) if n != "stats"]
    assert names == ["timeline", "announcement"]


def _two_task_mob(client):
    from tests.factories import make_mob

    token = make_organizer(client)
    m = make_mob(client, token)
    ids = []
    for lat, lon in ((52.5320, 13.4000), (52.5315, 13.4020)):  # about 150 m apart
        r = client.post(f"/api/mobs/{m['id']}/tasks", json={"lat": lat, "lon": lon,
                        "kind": "litter"}, headers=auth(token))  # fmt: skip
        ids.append(r.get_json()["id"])
    assert client.post(f"/api/mobs/{m['id']}/publish", headers=auth(token)).status_code == 200
    return m, ids


def _place(db, sc_task_pairs):
    for pid, (lat, lon) in sc_task_pairs:
        db.execute(update(Participant).where(Participant.id == pid).values(lat=lat, lon=lon))
    db.commit()


def test_countdown_rebalance_swaps_walkers_but_not_who_has_arrived(app, client, db):
    m, (t1, t2) = _two_task_mob(client)
    people = []
    for _ in range(2):
        sc = join(client, app, m["id"])
        ack = sc.emit("report_location", {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 5,
                                          "at": 0}, namespace=P, callback=True)  # fmt: skip
        people.append((sc, ack["task"]["id"]))
    assert [t for _, t in people] == [t1, t2]  # the first took the nearer task
    pids = db.scalars(select(Participant.id).order_by(Participant.id)).all()
    # The first now stands at the far task, the second near the first task: both walk far.
    _place(db, [(pids[0], (52.5315, 13.4020)), (pids[1], (52.53205, 13.4001))])
    shift_schedule(db, m["id"], go_in_s=30)
    tick(app, db)
    db.expire_all()
    assert [db.get(Participant, pid).task_id for pid in pids] == [t2, t1]
    for (sc, _), task in zip(people, (t2, t1), strict=True):
        [pushed] = [d for n, d in events(sc, P, "task_assigned")]
        assert pushed["task"]["id"] == task


def test_countdown_rebalance_leaves_arrived_people_alone(app, client, db):
    m, (t1, t2) = _two_task_mob(client)
    for _ in range(2):
        sc = join(client, app, m["id"])
        sc.emit("report_location", {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 5, "at": 0},
                namespace=P, callback=True)  # fmt: skip
    pids = db.scalars(select(Participant.id).order_by(Participant.id)).all()
    # The first is at their task (arrived); swapping would shorten the second's walk only.
    _place(db, [(pids[0], (52.5320, 13.4000)), (pids[1], (52.53201, 13.40005))])
    shift_schedule(db, m["id"], go_in_s=30)
    tick(app, db)
    db.expire_all()
    assert [db.get(Participant, pid).task_id for pid in pids] == [t1, t2]


def test_snapshots_carry_the_latest_announcements(app, client, db, mob):
    """Someone who opens a page after the organizer spoke still reads it (issue 17, item 5):
    the join and watch snapshots carry the last few announcements, oldest first."""
    h = auth(mob["token"])
    url = f"/api/mobs/{mob['id']}/announcements"
    texts = [f"Message {i}" for i in range(7)]
    for text in texts:
        assert client.post(url, json={"text": text}, headers=h).status_code == 201
    # Other numbered events in between are not announcements.
    client.post(f"/api/mobs/{mob['id']}/start-now", json={"lead_s": 60}, headers=h)
    wanted = texts[-timeline.SNAPSHOT_ANNOUNCEMENTS :]

    sc = join(client, app, mob["id"])
    snap = sc.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    assert [a["text"] for a in snap["announcements"]] == wanted
    assert all(a["mob"] == mob["id"] and a["seq"] and a["at_ms"] for a in snap["announcements"])
    live = socketio.test_client(app, namespace=LIVE)
    snap = live.emit("watch_mob", {"mob": mob["id"]}, namespace=LIVE, callback=True)
    assert [a["text"] for a in snap["announcements"]] == wanted
    org = socketio.test_client(app, namespace=ORG, auth={"token": mob["token"]})
    snap = org.emit("watch_mob", {"mob": mob["id"]}, namespace=ORG, callback=True)
    assert [a["text"] for a in snap["announcements"]] == wanted


def test_a_mob_without_announcements_has_an_empty_list(app, client, mob):
    sc = join(client, app, mob["id"])
    snap = sc.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
    assert snap["announcements"] == []


def test_time_sync_answers_on_every_namespace_without_a_request_context(app, client, mob):
    """time_sync {t0} → {t0, t1, t2} on /participant, /live and /organizer, answered past
    Flask-SocketIO's per-event request context (realtime.common.BaseNamespace): the clock's round
    trips, several per phone per minute, stay cheap."""
    import time

    from flask_socketio import SocketIO

    opened = []
    real = SocketIO._handle_event

    def spy(self, handler, message, namespace, sid, *args):
        opened.append(message)
        return real(self, handler, message, namespace, sid, *args)

    SocketIO._handle_event = spy
    try:
        clients = [
            (join(client, app, mob["id"]), P),
            (socketio.test_client(app, namespace="/live"), "/live"),
            (socketio.test_client(app, namespace=ORG, auth={"token": mob["token"]}), ORG),
        ]
        for sc, ns in clients:
            before = time.time() * 1000
            ack = sc.emit("time_sync", {"t0": 12345}, namespace=ns, callback=True)
            after = time.time() * 1000
            assert ack["t0"] == 12345
            assert before <= ack["t1"] <= ack["t2"] <= after
            assert sc.emit("time_sync", "junk", namespace=ns, callback=True)["t0"] is None
        assert "time_sync" not in opened
        ack = clients[1][0].emit("watch_mob", {"mob": mob["id"]}, namespace="/live", callback=True)
        assert "watch_mob" in opened and ack["phase"] == "published"  # other events as before
    finally:
        SocketIO._handle_event = real
