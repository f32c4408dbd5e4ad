"""Joining without an account, the /participant socket, matching, plausibility and deeds."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from server import socketio
from server.infra.models import Mob, Participant, Task
from tests.factories import auth, make_organizer, make_published_mob

NS = "/participant"
INSIDE = (52.5320, 13.4000)  # lat, lon: inside the Weinberg park
SOUTH_800M = (52.5233, 13.3995)


@pytest.fixture()
def mob(client):
    token = make_organizer(client)
    m = make_published_mob(client, token, spacing_m=40)
    m["token"] = token
    return m


def join(client, mob_id, **body):
    r = client.post(f"/api/mobs/{mob_id}/participants", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def connect(app, token):
    sc = socketio.test_client(app, namespace=NS, auth={"token": token})
    assert sc.is_connected(NS)
    return sc


def emit(sc, event, data):
    return sc.emit(event, data, namespace=NS, callback=True)


def report(sc, lat, lon, accuracy_m=10):
    return emit(sc, "report_location", {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "at": 0})


def start_action(db, mob_id, seconds_ago=5):
    go = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    db.execute(update(Mob).where(Mob.id == mob_id).values(go_at=go, status="action"))
    db.commit()


def test_join_gives_a_token_a_nickname_and_a_share_link(client, db, mob):
    body = join(client, mob["id"])
    assert len(body["participant"]["nickname"].split()) == 2  # e.g. "Brave Otter"
    assert body["share_url"] == f"/m/{mob['id']}?ref={body['participant']['ref_code']}"
    friend = join(client, mob["id"], nickname="Grace H.", ref=body["participant"]["ref_code"])
    assert friend["participant"]["nickname"] == "Grace H."
    stored = db.scalar(select(Participant).where(Participant.id == friend["participant"]["id"]))
    assert stored.referred_by_id == body["participant"]["id"] and stored.nickname_chosen


def test_join_refusals(client, db, mob):
    url = f"/api/mobs/{mob['id']}/participants"
    for body, status, code in (
        ({"nickname": "x" * 30}, 400, "nickname_invalid"),
        ({"nickname": "<script>"}, 400, "nickname_invalid"),
        ({"nickname": "Shithead"}, 400, "nickname_refused"),
        ({"ref": "nobody"}, 422, "ref_unknown"),
        ({"team": "red"}, 400, "field_unknown"),
    ):
        r = client.post(url, json=body)
        assert r.status_code == status and r.get_json()["error"]["code"] == code, body
    # Full: the places are the tasks' capacities.
    capacity = sum(t.capacity for t in db.scalars(select(Task)))
    for _ in range(capacity):
        join(client, mob["id"])
    r = client.post(url, json={})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_full"
    client.post(f"/api/mobs/{mob['id']}/cancel", headers=auth(mob["token"]))
    r = client.post(url, json={})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "mob_closed"


def test_socket_refuses_missing_forged_and_organizer_tokens(app, client, mob):
    good = join(client, mob["id"])["token"]
    for auth_payload in (None, {}, {"token": good[:-3] + "abc"}, {"token": mob["token"]}):
        sc = socketio.test_client(app, namespace=NS, auth=auth_payload)
        assert not sc.is_connected(NS), auth_payload
    assert connect(app, good).is_connected(NS)


def test_join_mob_snapshot_and_other_mob_refused(app, client, mob):
    body = join(client, mob["id"], nickname="Ada")
    sc = connect(app, body["token"])
    snap = emit(sc, "join_mob", {"mob": mob["id"]})
    assert snap["mob"]["id"] == mob["id"] and snap["me"]["nickname"] == "Ada"
    assert snap["timeline"]["go_at_ms"] == mob["timeline"]["go_at_ms"]
    assert snap["counters"]["joined"] == 1 and snap["task"] is None
    other = make_published_mob(client, make_organizer(client), spacing_m=40)
    ack = emit(sc, "join_mob", {"mob": other["id"]})
    assert ack["error"]["code"] == "wrong_mob"


def test_location_inside_matches_a_task_and_keeps_it(app, client, mob):
    sc = connect(app, join(client, mob["id"])["token"])
    emit(sc, "join_mob", {"mob": mob["id"]})
    ack = report(sc, *INSIDE)
    assert ack["zone"] == "inside" and ack["counted"] and ack["distance_m"] == 0
    task = ack["task"]
    assert task["id"] and task["distance_m"] < 40 and 0 <= task["bearing_deg"] < 360
    # Walking a few metres keeps the same task.
    ack = report(sc, INSIDE[0] + 0.00005, INSIDE[1])
    assert ack["task"]["id"] == task["id"]


def test_location_outside_and_uncertain(app, client, mob):
    sc = connect(app, join(client, mob["id"])["token"])
    ack = report(sc, *SOUTH_800M)
    assert ack["zone"] == "outside" and ack["task"] is None
    assert 750 < ack["distance_m"] < 850 and (ack["bearing_deg"] < 30 or ack["bearing_deg"] > 330)
    ack = report(sc, 52.53049, 13.39905, accuracy_m=60)  # on the boundary, 60 m circle
    assert ack["zone"] == "uncertain"


def test_teleport_and_poor_accuracy_do_not_count(app, client, db, mob):
    start_action(db, mob["id"])
    sc = connect(app, join(client, mob["id"])["token"])
    assert report(sc, *SOUTH_800M)["zone"] == "outside"
    ack = report(sc, *INSIDE)  # ~900 m in well under a second
    assert ack == {"zone": "uncertain", "counted": False, "reason": "implausible_speed",
                   "task": None, "seq": 0}  # fmt: skip
    sc2 = connect(app, join(client, mob["id"])["token"])
    ack = report(sc2, *INSIDE, accuracy_m=800)
    assert ack["zone"] == "uncertain" and ack["reason"] == "poor_accuracy"
    # Neither can confirm a deed: they hold no task.
    any_task = db.scalars(select(Task.id)).first()
    for s in (sc, sc2):
        deed = {"deed_id": str(uuid.uuid4()), "task": any_task, "lat": INSIDE[0],
                "lon": INSIDE[1], "accuracy_m": 10}  # fmt: skip
        ack = emit(s, "confirm_deed", deed)
        assert ack["accepted"] is False and ack["reason"] == "not_your_task"


def test_capacity_is_never_exceeded(app, client, db, mob):
    db.execute(update(Task).values(capacity=3))
    db.commit()
    acks = []
    for _ in range(7):
        sc = connect(app, join(client, mob["id"])["token"])
        acks.append(report(sc, *INSIDE)["task"]["id"])
    nearest = acks[0]
    assert acks.count(nearest) == 3
    db.expire_all()
    for task in db.scalars(select(Task)):
        assert task.assigned <= task.capacity
        assert task.assigned == acks.count(task.id)


def test_deed_counts_once_and_flagged_deeds_are_reviewed(app, client, db, mob):
    sc = connect(app, join(client, mob["id"])["token"])
    task = report(sc, *INSIDE)["task"]
    deed = {"deed_id": str(uuid.uuid4()), "task": task["id"], "lat": task["lat"],
            "lon": task["lon"], "accuracy_m": 8}  # fmt: skip
    early = emit(sc, "confirm_deed", deed)
    assert early["accepted"] is False and early["reason"] == "not_action_phase"

    start_action(db, mob["id"])
    answers = [emit(sc, "confirm_deed", deed) for _ in range(5)]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["accepted"] is True and answers[0]["totals"]["deeds_done"] == 1
    # After a reconnect too.
    sc.disconnect(namespace=NS)
    sc = connect(app, join(client, mob["id"])["token"])
    other = emit(sc, "confirm_deed", deed)
    assert other["error"]["code"] == "deed_id_taken"

    # A deed 200 m from the task is stored as flagged and waits for the organizer.
    sc3 = connect(app, join(client, mob["id"])["token"])
    t3 = report(sc3, *INSIDE)["task"]
    far = {"deed_id": str(uuid.uuid4()), "task": t3["id"], "lat": t3["lat"] - 0.0018,
           "lon": t3["lon"], "accuracy_m": 10}  # fmt: skip
    ack = emit(sc3, "confirm_deed", far)
    assert ack["accepted"] is False and ack["status"] == "flagged"
    assert ack["reason"] in ("far_from_task", "implausible_speed")
    assert ack["totals"]["deeds_done"] == 1 and ack["totals"]["deeds_flagged"] == 1
    queue = client.get(
        f"/api/mobs/{mob['id']}/deeds?status=flagged", headers=auth(mob["token"])
    ).get_json()["deeds"]
    assert [d["deed_id"] for d in queue] == [far["deed_id"]]
    r = client.post(
        f"/api/mobs/{mob['id']}/deeds/{queue[0]['id']}/review",
        json={"verdict": "approve"},
        headers=auth(mob["token"]),
    )
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    again = client.post(
        f"/api/mobs/{mob['id']}/deeds/{queue[0]['id']}/review",
        json={"verdict": "reject"},
        headers=auth(mob["token"]),
    )
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "deed_not_flagged"
    counters = client.get(f"/api/mobs/{mob['id']}").get_json()["counters"]
    assert counters["deeds_done"] == 2 and counters["deeds_flagged"] == 0
    per_task = {
        f["id"]: f["properties"]["deeds_done"]
        for f in client.get(f"/api/mobs/{mob['id']}/tasks").get_json()["features"]
    }
    assert per_task[task["id"]] == 1 + (t3["id"] == task["id"])
    assert sum(per_task.values()) == 2


def test_positions_never_leave_the_participant(app, client, db, mob):
    sc = connect(app, join(client, mob["id"])["token"])
    assert report(sc, 52.531234, 13.400567)["zone"] == "inside"
    public = [
        client.get(f"/api/mobs/{mob['id']}").get_data(as_text=True),
        client.get(f"/api/mobs/{mob['id']}/tasks").get_data(as_text=True),
        client.get("/api/mobs?lat=52.532&lon=13.4").get_data(as_text=True),
    ]
    watcher = connect(app, join(client, mob["id"])["token"])
    public.append(str(emit(watcher, "join_mob", {"mob": mob["id"]})))
    for text in public:
        assert "52.531234" not in text and "13.400567" not in text
    received = watcher.get_received(NS)
    assert all("lat" not in str(e.get("args")) for e in received if e["name"] == "stats")


def test_removed_task_re_matches_its_people(app, client, db, mob):
    sc = connect(app, join(client, mob["id"])["token"])
    first = report(sc, *INSIDE)["task"]
    sc.get_received(NS)
    r = client.delete(f"/api/mobs/{mob['id']}/tasks/{first['id']}", headers=auth(mob["token"]))
    assert r.status_code == 204
    pushed = [e for e in sc.get_received(NS) if e["name"] == "task_assigned"]
    assert len(pushed) == 1
    new = pushed[0]["args"][0]["task"]
    assert new is not None and new["id"] != first["id"]
    db.expire_all()
    assert db.get(Task, new["id"]).assigned == 1
    assert report(sc, *INSIDE)["task"]["id"] == new["id"]


def test_added_and_moved_tasks_are_matched_at_once(app, client, db, mob):
    """The process keeps the task points in a k-d tree: adding or moving a task must reach
    the very next claim (the mob's tasks_version), not a stale tree."""
    first = connect(app, join(client, mob["id"])["token"])
    assert report(first, *INSIDE)["task"] is not None  # the tree is built now
    headers = auth(mob["token"])
    here = (52.53155, 13.40120)  # inside, between grid points
    r = client.post(f"/api/mobs/{mob['id']}/tasks", json={"lat": here[0], "lon": here[1],
                    "kind": "litter"}, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.get_json()
    added = r.get_json()["id"]
    second = connect(app, join(client, mob["id"])["token"])
    ack = report(second, *here)
    assert ack["task"]["id"] == added and ack["task"]["distance_m"] == 0
    # Move a task from the far end of the mob to where a third participant stands.
    there = (52.53250, 13.39850)
    tasks = client.get(f"/api/mobs/{mob['id']}/tasks").get_json()["features"]
    far = max(tasks, key=lambda f: abs(f["geometry"]["coordinates"][0] - there[1]))
    r = client.patch(f"/api/mobs/{mob['id']}/tasks/{far['id']}",
                     json={"lat": there[0], "lon": there[1]}, headers=headers)  # fmt: skip
    assert r.status_code == 200, r.get_json()
    third = connect(app, join(client, mob["id"])["token"])
    ack = report(third, *there)
    assert ack["task"]["id"] == far["id"] and ack["task"]["distance_m"] == 0


def test_a_report_survives_its_kept_connection_dying(app, client, db, mob):
    """Reports run on connections kept out of the pool (no ping before each): one found dead
    (the database restarted, the connection was killed) is dropped and the report is judged
    on a fresh one, not answered with an error."""
    from sqlalchemy import text

    from server.domain import participants

    engine = app.extensions["goodmob.engine"]
    sc = connect(app, join(client, mob["id"])["token"])
    emit(sc, "join_mob", {"mob": mob["id"]})
    first = report(sc, *INSIDE)
    assert first["zone"] == "inside" and first["task"]
    kept = participants._kept_for(engine)
    assert len(kept.idle) == 1
    dead = kept.idle[0]
    if engine.dialect.name == "postgresql":
        pid = dead.dbapi_connection.get_backend_pid()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    else:
        dead.dbapi_connection.close()
    ack = report(sc, INSIDE[0] + 0.00005, INSIDE[1])
    assert "error" not in ack, ack
    assert ack["zone"] == "inside" and ack["task"]["id"] == first["task"]["id"]
    assert kept.idle and dead not in kept.idle and kept.count == len(kept.idle)


# 9 m south of the park's southern edge: outside it, even with an 8 m accuracy circle.
NEAR_OUTSIDE_9M = (52.530578, 13.400465)


def test_a_task_is_claimed_only_from_inside_the_zone(app, client, mob):
    """One rule for the phone, the counters and the funnel (issue 17, item 1): a phone
    outside the zone, however near, gets no task; stepping in claims one."""
    sc = connect(app, join(client, mob["id"])["token"])
    emit(sc, "join_mob", {"mob": mob["id"]})
    ack = report(sc, *NEAR_OUTSIDE_9M, accuracy_m=8)
    assert ack["zone"] == "outside" and 5 < ack["distance_m"] < 15
    assert ack["task"] is None
    counters = client.get(f"/api/mobs/{mob['id']}").get_json()["counters"]
    assert counters["in_zone"] == 0 and counters["matched"] == 0
    # At the edge (the accuracy circle crosses the boundary): no task either.
    edge = report(sc, 52.53061, 13.400465, accuracy_m=8)
    assert edge["zone"] == "uncertain" and edge["task"] is None
    ack = report(sc, 52.53073, 13.400465, accuracy_m=3)  # 13 m on: 8 m inside
    assert ack["zone"] == "inside" and ack["task"] is not None
    counters = client.get(f"/api/mobs/{mob['id']}").get_json()["counters"]
    assert counters["in_zone"] == 1 and counters["matched"] == 1
    funnel = client.get(f"/api/mobs/{mob['id']}/funnel").get_json()
    assert funnel["in_zone"] >= funnel["matched"] == 1


def test_the_review_verdict_goes_to_the_deeds_owner_only_and_comes_back_in_the_snapshot(
    app, client, db, mob
):
    """A flagged deed's verdict is pushed to its owner's socket (``deed_reviewed``, not
    numbered: it is personal) and carried by the owner's next snapshot (issue 17, item 4)."""
    start_action(db, mob["id"])
    owner = connect(app, join(client, mob["id"])["token"])
    other = connect(app, join(client, mob["id"])["token"])
    for sc in (owner, other):
        emit(sc, "join_mob", {"mob": mob["id"]})
    task = report(owner, *INSIDE)["task"]
    report(other, *INSIDE)
    far = {"deed_id": str(uuid.uuid4()), "task": task["id"], "lat": task["lat"] - 0.0018,
           "lon": task["lon"], "accuracy_m": 10}  # fmt: skip
    assert emit(owner, "confirm_deed", far)["status"] == "flagged"
    snap = emit(owner, "join_mob", {"mob": mob["id"]})
    assert snap["deeds"] == [{"deed_id": far["deed_id"], "status": "flagged", "accepted": False,
                              "reason": snap["deeds"][0]["reason"]}]  # fmt: skip
    owner.get_received(NS)
    other.get_received(NS)
    queue = client.get(
        f"/api/mobs/{mob['id']}/deeds?status=flagged", headers=auth(mob["token"])
    ).get_json()["deeds"]
    r = client.post(
        f"/api/mobs/{mob['id']}/deeds/{queue[0]['id']}/review",
        json={"verdict": "approve"},
        headers=auth(mob["token"]),
    )
    assert r.status_code == 200
    pushed = [e["args"][0] for e in owner.get_received(NS) if e["name"] == "deed_reviewed"]
    assert pushed == [{"mob": mob["id"], "deed_id": far["deed_id"], "status": "approved",
                       "accepted": True}]  # fmt: skip
    assert not [e for e in other.get_received(NS) if e["name"] == "deed_reviewed"]
    # Missed (the phone was offline): the next snapshot carries it.
    later = connect(app, join(client, mob["id"])["token"])
    assert emit(later, "join_mob", {"mob": mob["id"]})["deeds"] == []
    snap = emit(owner, "join_mob", {"mob": mob["id"]})
    assert [(d["deed_id"], d["status"], d["accepted"]) for d in snap["deeds"]] == [
        (far["deed_id"], "approved", True)
    ]
