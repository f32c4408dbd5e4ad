"""Reminders and notices (server.domain.reminders) on both databases: who asked, what is due
when, claims, rehearsals, and the sending (retries, 410). The two-process test with the real
scheduler is tests/integration/test_reminders_two_processes.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from server.domain import reminders
from server.infra.models import Base, ParticipantPushSubscription, PushClaim
from tests.factories import auth, make_mob, make_organizer, make_published_mob
from tests.growth_support import PushService, browser_keys, decrypt_push


@pytest.fixture()
def conf(app):
    return replace(
        app.config["SETTINGS"],
        reminder_offsets_s="3600,600",
        reminder_late_max_s=300,
        push_retry_base_s=0.01,
    )


def _go(mob: dict) -> datetime:
    return datetime.fromisoformat(mob["go_at"].replace("Z", "+00:00"))


def _join_with_push(client, mob_id: str, endpoint: str, keys: dict) -> str:
    token = client.post(f"/api/mobs/{mob_id}/participants", json={}).get_json()["token"]
    r = client.put(
        f"/api/mobs/{mob_id}/participants/me/push-subscription",
        json={"endpoint": endpoint, "keys": keys},
        headers=auth(token),
    )
    assert r.status_code == 204, r.get_json()
    return token


def _kinds(db, at: datetime, conf) -> list[tuple[str, str]]:
    db.expire_all()
    return [(d.mob.id, d.kind) for d in reminders.due_pushes(db, conf, at)]


def test_participant_push_subscription_routes(client, db):
    org = make_organizer(client)
    mob = make_published_mob(client, org)
    other = make_published_mob(client, org)
    _, keys = browser_keys()
    url = f"/api/mobs/{mob['id']}/participants/me/push-subscription"
    token = _join_with_push(client, mob["id"], "http://127.0.0.1:9/sub", keys)
    assert db.scalar(select(func.count()).select_from(ParticipantPushSubscription)) == 1
    # again: replaced, not added
    body = {"endpoint": "http://127.0.0.1:9/sub2", "keys": keys}
    assert client.put(url, json=body, headers=auth(token)).status_code == 204
    db.expire_all()
    assert db.scalars(select(ParticipantPushSubscription.endpoint)).all() == [
        "http://127.0.0.1:9/sub2"
    ]
    r = client.put(
        url, json={"endpoint": "https://evil.example/x", "keys": keys}, headers=auth(token)
    )
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "push_endpoint_refused"
    r = client.put(url, json=body)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth_required"
    other_url = f"/api/mobs/{other['id']}/participants/me/push-subscription"
    r = client.put(other_url, json=body, headers=auth(token))
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "token_invalid"
    r = client.put(
        "/api/mobs/zzzzzzzz/participants/me/push-subscription", json=body, headers=auth(token)
    )
    assert r.status_code == 404
    assert client.delete(url, headers=auth(token)).status_code == 204
    assert db.scalar(select(func.count()).select_from(ParticipantPushSubscription)) == 0


def test_follower_opt_in_routes(client, db):
    org = make_organizer(client)
    mob = make_published_mob(client, org)
    draft = make_mob(client, org)
    token = client.post("/api/followers").get_json()["follower_token"]
    url = f"/api/followers/me/reminders/{mob['id']}"
    assert client.put(url, headers=auth(token)).status_code == 204
    assert client.put(url, headers=auth(token)).status_code == 204  # again: still one
    assert client.put(url).status_code == 401
    r = client.put(f"/api/followers/me/reminders/{draft['id']}", headers=auth(token))
    assert r.status_code == 404
    assert client.delete(url, headers=auth(token)).status_code == 204


def test_the_latest_due_reminder_within_its_window(client, db, conf):
    org = make_organizer(client)
    go = datetime.now().astimezone().replace(microsecond=0) + timedelta(hours=3)
    mob = make_published_mob(client, org, go_at=go.isoformat())
    rehearsal = make_published_mob(client, org, go_at=go.isoformat(), rehearsal=True)
    assert _kinds(db, go - timedelta(seconds=3601), conf) == []
    assert _kinds(db, go - timedelta(seconds=3600), conf) == [(mob["id"], "remind_3600")]
    assert _kinds(db, go - timedelta(seconds=3400), conf) == [(mob["id"], "remind_3600")]
    assert _kinds(db, go - timedelta(seconds=3299), conf) == []  # too late: skipped
    assert _kinds(db, go - timedelta(seconds=590), conf) == [(mob["id"], "remind_600")]
    asked = replace(conf, reminder_rehearsals=True)
    assert {k for _, k in _kinds(db, go - timedelta(seconds=590), asked)} == {"remind_600"}
    assert len(_kinds(db, go - timedelta(seconds=590), asked)) == 2
    assert rehearsal["rehearsal"] is True


def test_notices_postpone_supersede_and_cancel(client, db, conf):
    org = make_organizer(client)
    mob = make_published_mob(client, org)
    url = f"/api/mobs/{mob['id']}"
    client.post(f"{url}/postpone", json={"by_s": 600}, headers=auth(org))
    now = datetime.now().astimezone()
    assert _kinds(db, now, conf) == [(mob["id"], "postponed")]
    client.post(f"{url}/start-now", json={"lead_s": 60}, headers=auth(org))
    assert _kinds(db, datetime.now().astimezone(), conf) == [(mob["id"], "started_now")]
    client.post(f"{url}/cancel", headers=auth(org))
    assert _kinds(db, datetime.now().astimezone(), conf) == [(mob["id"], "cancelled")]
    later = datetime.now().astimezone() + timedelta(seconds=301)
    assert _kinds(db, later, conf) == []
    rehearsal = make_published_mob(client, org, rehearsal=True)
    client.post(f"/api/mobs/{rehearsal['id']}/cancel", headers=auth(org))
    assert _kinds(db, datetime.now().astimezone(), conf) == [(mob["id"], "cancelled")]


def test_a_reminder_whose_new_time_passed_before_the_postpone_is_not_sent(client, db, conf):
    org = make_organizer(client)
    go = datetime.now().astimezone().replace(microsecond=0) + timedelta(seconds=3500)
    mob = make_published_mob(client, org, go_at=go.isoformat())
    # published after GO - 1 h: no 1-hour reminder for this timeline
    assert _kinds(db, datetime.now().astimezone(), conf) == []
    # GO + 60 s: the 1-hour reminder's new time (40 s ago) came before the postpone
    client.post(f"/api/mobs/{mob['id']}/postpone", json={"by_s": 60}, headers=auth(org))
    assert _kinds(db, datetime.now().astimezone(), conf) == [(mob["id"], "postponed")]


def test_claims_once_and_send_retries_then_forgets_a_gone_subscription(app, client, db, conf):
    org = make_organizer(client)
    go = datetime.now().astimezone().replace(microsecond=0) + timedelta(hours=2)
    mob = make_published_mob(client, org, go_at=go.isoformat())
    private, keys = browser_keys()
    with PushService(status=503) as busy, PushService(status=410) as gone:
        _join_with_push(client, mob["id"], f"{busy.url}/sub/a", keys)
        _join_with_push(client, mob["id"], f"{gone.url}/sub/b", keys)
        at = go - timedelta(seconds=3590)
        db.expire_all()
        due = reminders.due_pushes(db, conf, at)
        assert [d.kind for d in due] == ["remind_3600"]
        targets = reminders.claim(db, due[0], at)
        db.commit()
        assert sorted(t.recipient[0] for t in targets) == ["p", "p"]
        assert reminders.claim(db, due[0], at) == []  # claimed: nobody sends it twice
        db.commit()
        data = reminders.notification(due[0], at)
        assert data["tag"] == f"mob-{mob['id']}" and "lat" not in data["mob"]
        batch = [(t, json.dumps(data), 60) for t in targets]
        sessions = app.extensions["goodmob.sessions"]
        result = reminders.send_all(sessions, batch, replace(conf, push_max_attempts=3))
        assert result == {"sent": 0, "gone": 1, "failed": 1}
        assert len(busy.requests) == 3 and len(gone.requests) == 1
        assert decrypt_push(busy.requests[0]["body"], private, keys)["kind"] == "remind_3600"
    db.expire_all()
    left = db.scalars(select(ParticipantPushSubscription)).all()
    assert [(s.endpoint.rsplit("/", 1)[1], s.failures) for s in left] == [("a", 1)]
    assert db.scalar(select(func.count()).select_from(PushClaim)) == 2


def test_reminder_migration_matches_the_models(app):
    """Migration 0007 creates exactly what the models describe."""
    engine = app.extensions["goodmob.engine"]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    tables = ("participant_push_subscriptions", "reminder_optins", "mob_notices", "push_claims")
    names = [(f"'{t}'", f"<{t}>", f"{t}.") for t in tables] + [("ix_mobs_go_at",)]
    ours = [d for d in diff if any(n in repr(d) for forms in names for n in forms)]
    assert ours == []
