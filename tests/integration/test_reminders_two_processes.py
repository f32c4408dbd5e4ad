"""Reminders and notices by Web Push from TWO real server processes (Redis) to a local stand-in
push service (issue 19 item 3): each reminder is sent exactly once and at its time, a postpone
sends one notice and moves the reminders not yet sent, a 410 removes the subscription.

Offsets are seconds here (REMINDER_OFFSETS_S=8,4) so the test takes about 25 s.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import text

from support.organizer import Organizer
from support.server import ServerProcess
from tests.factories import PARK
from tests.growth_support import PushService, browser_keys, decrypt_push

REMIND = {
    "REMINDER_OFFSETS_S": "8,4",
    "REMINDER_LATE_MAX_S": "2",
    "PUSH_RETRY_BASE_S": "0.2",
    "START_NOW_MIN_LEAD_S": "1",
    "DURATION_MIN_S": "1",
}
# How late after its time a push may arrive on this busy 2-core machine (the scheduler looks
# every SCHEDULER_MAX_SLEEP_S = 0.25 s; the push is encrypted and sent over HTTP).
SLACK_S = 2.0


def _organizer(base: str) -> dict:
    return Organizer(base, timeout=5).sign_up(name="Org").headers


def _published_mob(base: str, headers: dict, go_at: datetime) -> dict:
    body = {"title": "Remind", "action": "Go", "zone": PARK, "go_at": go_at.isoformat(),
            "duration_s": 2}  # fmt: skip
    mob = requests.post(f"{base}/api/mobs", json=body, headers=headers, timeout=5).json()
    tasks = {"spacing_m": 40, "kind": "litter"}
    r = requests.post(
        f"{base}/api/mobs/{mob['id']}/tasks/generate", json=tasks, headers=headers, timeout=10
    )
    assert r.status_code == 201, r.text
    r = requests.post(f"{base}/api/mobs/{mob['id']}/publish", headers=headers, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def _participant_push(base: str, mob_id: str, endpoint: str, keys: dict) -> None:
    r = requests.post(f"{base}/api/mobs/{mob_id}/participants", json={}, timeout=5)
    assert r.status_code == 201, r.text
    r = requests.put(
        f"{base}/api/mobs/{mob_id}/participants/me/push-subscription",
        json={"endpoint": endpoint, "keys": keys},
        headers={"Authorization": f"Bearer {r.json()['token']}"},
        timeout=5,
    )
    assert r.status_code == 204, r.text


def _follower_push(base: str, mob_id: str, endpoint: str, keys: dict) -> None:
    created = requests.post(f"{base}/api/followers", timeout=5).json()
    h = {"Authorization": f"Bearer {created['follower_token']}"}
    r = requests.put(f"{base}/api/followers/me/push-subscription",
                     json={"endpoint": endpoint, "keys": keys}, headers=h, timeout=5)  # fmt: skip
    assert r.status_code == 200, r.text
    r = requests.put(f"{base}/api/followers/me/reminders/{mob_id}", headers=h, timeout=5)
    assert r.status_code == 204, r.text


def _keys_of(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(_keys_of(v) for v in value.values()))
    return set()


def _count(db, table: str) -> int:
    """Rows in ``table``, read through the app's own engine: a second SQLAlchemy engine here
    would open the SQLite file with the standard library's sqlite3 next to the app's pysqlite3,
    and two SQLite libraries in one process break each other's locks (the file was corrupted
    for every later test)."""
    db.rollback()  # a fresh snapshot: the server processes wrote meanwhile
    return db.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def test_two_processes_send_each_reminder_once_at_its_time_and_a_postpone_moves_them(
    database_url,
    db,
    redis_env,
):
    a = ServerProcess(database_url, **redis_env, **REMIND).start()
    b = ServerProcess(database_url, **redis_env, **REMIND).start()
    try:
        with PushService() as ok, PushService(status=410) as gone:
            headers = _organizer(a.url)
            go_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
            mob = _published_mob(a.url, headers, go_at)
            keys = {}  # device → (private key, subscription keys)
            for name, base, service in (("p1", a.url, ok), ("f1", b.url, ok), ("p2", b.url, gone)):
                keys[name] = browser_keys()
                add = _follower_push if name.startswith("f") else _participant_push
                add(base, mob["id"], f"{service.url}/sub/{name}", keys[name][1])
            assert _count(db, "participant_push_subscriptions") == 2

            # remind_8 at GO - 8 s, to each of the two devices once; the 410 one once, then gone
            first = ok.wait_for(2, timeout_s=20)
            assert len(first) == 2
            for request in first:
                assert request["at"] >= go_at.timestamp() - 8 - 0.05
                assert request["at"] <= go_at.timestamp() - 8 + SLACK_S
            assert len(gone.wait_for(1, timeout_s=5)) == 1
            deadline = time.monotonic() + 5
            while _count(db, "participant_push_subscriptions") != 1:
                assert time.monotonic() < deadline, "the 410 subscription was not removed"
                time.sleep(0.1)

            # postpone by 6 s: one notice each, and remind_4 moves from GO-4 to new GO-4
            r = requests.post(f"{b.url}/api/mobs/{mob['id']}/postpone", json={"by_s": 6},
                              headers=headers, timeout=5)  # fmt: skip
            assert r.status_code == 200, r.text
            new_go = datetime.fromisoformat(r.json()["go_at"].replace("Z", "+00:00"))
            assert new_go == go_at + timedelta(seconds=6)
            notices = ok.wait_for(4, timeout_s=10)
            assert len(notices) == 4
            # the remind_4 of the new GO, not the old one (and remind_8 not again)
            ok.wait_for(6, timeout_s=25)
            time.sleep(SLACK_S + 1)  # anything extra would have arrived by now
            every = list(ok.requests)
            assert not gone.requests[1:], "pushed again to a subscription that answered 410"
    finally:
        a.stop()
        b.stop()

    got: dict[str, list[tuple[str, float, dict]]] = {}
    for request in every:
        name = request["path"].rsplit("/", 1)[1]
        payload = decrypt_push(request["body"], *keys[name])
        got.setdefault(name, []).append((payload["kind"], request["at"], payload))
    for name in ("p1", "f1"):
        kinds = [k for k, _, _ in got[name]]
        assert kinds == ["remind_8", "postponed", "remind_4"], (name, kinds)
        at = {k: t for k, t, _ in got[name]}
        assert new_go.timestamp() - 4 - 0.05 <= at["remind_4"] <= new_go.timestamp() - 4 + SLACK_S
        for _, _, payload in got[name]:
            assert payload["tag"] == f"mob-{mob['id']}" and payload["url"] == f"/m/{mob['id']}"
            assert payload["mob"]["id"] == mob["id"] and payload["title"] and payload["body"]
            assert not _keys_of(payload) & {"lat", "lon", "position", "token", "zone"}
        postponed = next(p for k, _, p in got[name] if k == "postponed")
        assert postponed["mob"]["go_at_ms"] == int(new_go.timestamp() * 1000)
    # one claim row per push sent (the 410 one too): the database decided, not luck
    assert _count(db, "push_claims") == 7
