"""The authorization matrix of the Socket.IO namespaces.

Every event of /participant, /live and /organizer is tried with no token, a forged token, an
expired token, a participant token of another mob and an organizer token of another
organizer: each is refused with a clear code (a refused connection, or an error ack), none
with ``internal_error``, and nothing changes.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from socketio import packet
from sqlalchemy import func, select

from server import socketio
from server.domain import accounts as organizer_auth
from server.domain import participants
from server.infra.models import Deed, Mob, MobEvent
from tests.factories import auth, make_mob, make_organizer, make_published_mob

P, LIVE, ORG = "/participant", "/live", "/organizer"
INSIDE = {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 10}

PARTICIPANT_EVENTS = {
    "time_sync": {"t0": 1},
    "join_mob": None,  # filled with the target mob
    "report_location": {**INSIDE, "at": 0},
    "confirm_deed": None,
}
ORGANIZER_EVENTS = ["watch_mob", "start_now", "postpone", "cancel", "announce"]


def organizer_payload(event: str, mob_id: str) -> dict:
    return {
        "watch_mob": {"mob": mob_id},
        "start_now": {"mob": mob_id, "lead_s": 30},
        "postpone": {"mob": mob_id, "by_s": 600},
        "cancel": {"mob": mob_id},
        "announce": {"mob": mob_id, "text": "Everyone go home"},
    }[event]


class _PastSigner(TimestampSigner):
    """Signs with a timestamp ``AGE_S`` seconds ago (an expired token, properly signed)."""

    AGE_S = 0

    def get_timestamp(self) -> int:
        return int(time.time()) - self.AGE_S


def expired(secret: str, salt: str, payload: dict, max_age_s: int) -> str:
    signer = type("Past", (_PastSigner,), {"AGE_S": max_age_s + 3600})
    return URLSafeTimedSerializer(secret, salt=salt, signer=signer).dumps(payload)


def forged(salt: str, payload: dict) -> str:
    return URLSafeTimedSerializer("not-the-server-secret-" + "z" * 32, salt=salt).dumps(payload)


@contextmanager
def connect_errors():
    """Collect the data of every CONNECT_ERROR packet the server sends inside the block."""
    seen: list = []
    original = socketio.server._send_packet

    def spy(eio_sid, pkt):
        if pkt.packet_type == packet.CONNECT_ERROR:
            seen.append(pkt.data)
        return original(eio_sid, pkt)

    socketio.server._send_packet = spy
    try:
        yield seen
    finally:
        socketio.server._send_packet = original


def refused_code(app, namespace: str, auth_payload) -> str:
    """Try to connect; assert the server refused; return the refusal's code."""
    live = socketio.test_client(app, namespace=LIVE)  # any connection to attach the namespace to
    with connect_errors() as errors:
        live.connect(namespace=namespace, auth=auth_payload)
    assert not live.is_connected(namespace), (namespace, auth_payload)
    assert len(errors) == 1, errors
    # {message, data: {code, message}}: a Socket.IO client's connect_error has err.data.code.
    code = errors[0]["data"]["code"]
    assert code != "internal_error" and errors[0]["message"]
    # Events sent anyway on the refused namespace are dropped: no ack, no effect.
    for i, event in enumerate([*PARTICIPANT_EVENTS, *ORGANIZER_EVENTS], start=1):
        raw = packet.Packet(packet.EVENT, data=[event, {"mob": "x"}], namespace=namespace, id=i)
        live.acks = None
        socketio.server._handle_eio_message(live.eio_sid, raw.encode())
        assert live.acks is None, (namespace, event)
    live.disconnect(LIVE)
    return code


def assert_refused(ack, *codes: str):
    assert isinstance(ack, dict) and "error" in ack, ack
    assert ack["error"]["code"] != "internal_error", ack
    if codes:
        assert ack["error"]["code"] in codes, ack


@pytest.fixture()
def world(app, client, db):
    """Two organizers, each with a published mob, and a participant of each mob."""
    owner = make_organizer(client, name="Ada")
    other = make_organizer(client, name="Mallory")
    target = make_published_mob(client, owner, spacing_m=40)
    elsewhere = make_published_mob(client, other, spacing_m=40)
    draft = make_mob(client, owner)
    joined = {
        key: client.post(f"/api/mobs/{m['id']}/participants", json={}).get_json()
        for key, m in (("target", target), ("elsewhere", elsewhere))
    }
    return {
        "owner": owner,
        "other": other,
        "target": target,
        "elsewhere": elsewhere,
        "draft": draft,
        "joined": joined,
        "secret": app.config["SECRET_KEY"],
        "settings": app.config["SETTINGS"],
    }


def unchanged(db, client, mob: dict) -> None:
    """The mob is as it was: same timeline, no events, no deeds."""
    now = client.get(f"/api/mobs/{mob['id']}").get_json()
    assert now["timeline"] == mob["timeline"] and now["status"] == mob["status"]
    pk = db.scalar(select(Mob.pk).where(Mob.id == mob["id"]))
    assert db.scalar(select(func.count()).where(MobEvent.mob_pk == pk)) == 0
    assert db.scalar(select(func.count()).where(Deed.mob_pk == pk)) == 0


# --- /participant -------------------------------------------------------------------------


def test_participant_namespace_refuses_missing_forged_and_expired_tokens(app, world):
    s, joined = world["settings"], world["joined"]["target"]
    payload = {"p": joined["participant"]["id"], "m": world["target"]["id"]}
    salt = participants.TOKEN_SALT
    cases = {
        "no auth": (None, "auth_required"),
        "no token": ({}, "auth_required"),
        "token not a string": ({"token": 12}, "auth_required"),
        "garbage": ({"token": "not-a-token"}, "token_invalid"),
        "forged": ({"token": forged(salt, payload)}, "token_invalid"),
        "tampered": ({"token": joined["token"][:-2] + "xx"}, "token_invalid"),
        "expired": (
            {"token": expired(world["secret"], salt, payload, s.participant_token_max_age_s)},
            "token_expired",
        ),
        "organizer token": ({"token": world["owner"]}, "token_invalid"),
        "mob swapped": (
            {
                "token": URLSafeTimedSerializer(world["secret"], salt=salt).dumps(
                    {**payload, "m": world["elsewhere"]["id"]}
                )
            },
            "token_invalid",
        ),
    }
    for name, (auth_payload, code) in cases.items():
        assert refused_code(app, P, auth_payload) == code, name


def test_a_participant_of_another_mob_can_do_nothing_to_this_one(app, client, db, world):
    target = world["target"]
    intruder = socketio.test_client(
        app, namespace=P, auth={"token": world["joined"]["elsewhere"]["token"]}
    )
    assert intruder.is_connected(P)
    assert_refused(intruder.emit("join_mob", {"mob": target["id"]}, namespace=P, callback=True),
                   "wrong_mob")  # fmt: skip
    for bad in (None, {}, {"mob": None}, {"mob": 5}, "x", [target["id"]]):
        assert_refused(intruder.emit("join_mob", bad, namespace=P, callback=True))
    task = client.get(f"/api/mobs/{target['id']}/tasks").get_json()["features"][0]["id"]
    deed = {"deed_id": str(uuid.uuid4()), "task": task, **INSIDE}
    ack = intruder.emit("confirm_deed", deed, namespace=P, callback=True)
    assert ack.get("accepted") is False or "error" in ack
    assert intruder.emit("report_location", {**INSIDE, "at": 0}, namespace=P, callback=True)
    # An organizer's control sent to the participant namespace is not an event there.
    assert not intruder.emit("cancel", {"mob": target["id"]}, namespace=P, callback=True)
    unchanged(db, client, target)
    assert client.get(f"/api/mobs/{target['id']}").get_json()["counters"]["joined"] == 1
    names = {e["name"] for e in intruder.get_received(P)}
    assert not names & {"timeline", "phase", "announcement", "density"}
    intruder.disconnect(P)


# --- /organizer ---------------------------------------------------------------------------


def test_organizer_namespace_refuses_missing_forged_and_expired_tokens(app, world):
    s = world["settings"]
    salt = organizer_auth.TOKEN_SALT
    with app.app_context():
        owner_id = organizer_auth._serializer().loads(world["owner"])["o"]
    cases = {
        "no auth": (None, "auth_required"),
        "no token": ({}, "auth_required"),
        "garbage": ({"token": "not-a-token"}, "token_invalid"),
        "forged": ({"token": forged(salt, {"o": owner_id})}, "token_invalid"),
        "expired": (
            {"token": expired(world["secret"], salt, {"o": owner_id}, s.organizer_token_max_age_s)},
            "token_expired",
        ),
        "participant token": ({"token": world["joined"]["target"]["token"]}, "token_invalid"),
        "unknown organizer": (
            {"token": URLSafeTimedSerializer(world["secret"], salt=salt).dumps({"o": 10**9})},
            "token_revoked",  # signed, but names no live session
        ),
    }
    for name, (auth_payload, code) in cases.items():
        assert refused_code(app, ORG, auth_payload) == code, name


def test_another_organizer_is_refused_every_control(app, client, db, world):
    mallory = socketio.test_client(app, namespace=ORG, auth={"token": world["other"]})
    assert mallory.is_connected(ORG)
    for event in ORGANIZER_EVENTS:
        for mob in (world["target"], world["draft"]):
            payload = organizer_payload(event, mob["id"])
            ack = mallory.emit(event, payload, namespace=ORG, callback=True)
            assert_refused(ack, "not_owner", "mob_not_found")
        for bad in (None, {}, {"mob": 7}, "x", {"mob": "zzzzzzzz"}):
            assert_refused(mallory.emit(event, bad, namespace=ORG, callback=True))
    unchanged(db, client, world["target"])
    assert not {e["name"] for e in mallory.get_received(ORG)} & {"timeline", "stats", "density"}
    mallory.disconnect(ORG)
    # The owner still may (the refusals above were about who, not what).
    owner = socketio.test_client(app, namespace=ORG, auth={"token": world["owner"]})
    ack = owner.emit("watch_mob", {"mob": world["target"]["id"]}, namespace=ORG, callback=True)
    assert "error" not in ack and ack["mob"]["id"] == world["target"]["id"]
    owner.disconnect(ORG)


def test_another_organizers_draft_is_not_found_like_a_missing_mob(app, client, db, world):
    """A draft's existence is not revealed: every control on another organizer's draft gets
    the ack a mob id that does not exist gets (REST answers 404 alike)."""
    mallory = socketio.test_client(app, namespace=ORG, auth={"token": world["other"]})
    draft = world["draft"]["id"]
    for event in ORGANIZER_EVENTS:
        ack = mallory.emit(event, organizer_payload(event, draft), namespace=ORG, callback=True)
        missing = mallory.emit(
            event, organizer_payload(event, "nosuchmb"), namespace=ORG, callback=True
        )
        assert_refused(ack, "mob_not_found")
        assert ack["error"]["message"].replace(draft, "ID") == missing["error"]["message"].replace(
            "nosuchmb", "ID"
        ), event
    mallory.disconnect(ORG)
    assert client.get(f"/api/mobs/{draft}", headers=auth(world["owner"])).status_code == 200


def test_a_participant_token_cannot_drive_the_organizer_controls(app, client, db, world):
    sc = socketio.test_client(app, namespace=P, auth={"token": world["joined"]["target"]["token"]})
    for event in ORGANIZER_EVENTS:
        payload = organizer_payload(event, world["target"]["id"])
        assert not sc.emit(event, payload, namespace=P, callback=True)  # no such event: empty ack
    sc.disconnect(P)
    unchanged(db, client, world["target"])


# --- /live ----------------------------------------------------------------------------------


def test_spectators_watch_published_mobs_only(app, client, db, world):
    for auth_payload in (None, {"token": "forged"}, {"token": world["other"]}):
        live = socketio.test_client(app, namespace=LIVE, auth=auth_payload)
        assert live.is_connected(LIVE)  # no account needed; a token grants nothing more
        assert_refused(
            live.emit("watch_mob", {"mob": world["draft"]["id"]}, namespace=LIVE, callback=True),
            "mob_not_found",
        )
        for bad in (None, {}, {"mob": 5}, "x", {"mob": "z" * 5000}, {"mob": "zzzzzzzz"}):
            assert_refused(live.emit("watch_mob", bad, namespace=LIVE, callback=True))
        for event in ORGANIZER_EVENTS[1:]:  # controls are not events of /live
            payload = organizer_payload(event, world["target"]["id"])
            assert not live.emit(event, payload, namespace=LIVE, callback=True)
        ack = live.emit("watch_mob", {"mob": world["target"]["id"]}, namespace=LIVE, callback=True)
        assert ack["mob"]["id"] == world["target"]["id"]
        live.disconnect(LIVE)
    unchanged(db, client, world["target"])
    h = auth(world["owner"])  # the draft is still the owner's to see
    assert client.get(f"/api/mobs/{world['draft']['id']}", headers=h).status_code == 200
