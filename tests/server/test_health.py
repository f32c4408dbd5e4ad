"""Liveness and readiness (server/http/health.py): each dependency down makes /readyz say so.

The failing dependencies are real: a database URL to a closed port, a PostgreSQL database that
does not exist, an SQLite file in a folder that does not exist, Redis on a closed port, a
database without the migrations, a scheduler loop that stopped ticking; and real server
processes started with a missing database or an unreachable Redis.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import requests
from flask import Flask

from server.domain import scheduler
from server.domain.readiness import SCHEDULER_STARTED, mark_scheduler_started
from server.http.health import health
from server.infra.db import make_engine
from support.ports import free_port
from support.server import ServerProcess
from tests.conftest import PG_ADMIN_URL, _postgis_database


def bare_app(settings) -> Flask:
    """An app with only the health blueprint on ``settings`` (no socketio, no migrations)."""
    app = Flask("health_test")
    app.config["SETTINGS"] = settings
    app.extensions["goodmob.engine"] = make_engine(settings)
    app.register_blueprint(health)
    return app


@pytest.fixture()
def build():
    apps = []

    def make(settings):
        apps.append(bare_app(settings))
        return apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions["goodmob.engine"].dispose()


def _unreachable_database_urls(settings, tmp_path) -> list[str]:
    if settings.is_sqlite:
        return [f"sqlite:///{tmp_path / 'no-such-folder' / 'goodmob.sqlite3'}"]
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    host_closed = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/goodmob"
    return [host_closed, f"{base}/goodmob_no_such_database"]


def test_healthz_answers_while_the_process_runs(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}
    assert r.headers["Cache-Control"] == "no-store"


def test_readyz_is_ready_with_every_check_listed(client):
    r = client.get("/readyz")
    body = r.get_json()
    assert r.status_code == 200, body
    assert body["status"] == "ready"
    checks = body["checks"]
    assert set(checks) == {"database", "migrations", "redis", "subscription", "scheduler"}
    for check in checks.values():
        assert set(check) == {"ok", "detail", "ms"} and check["ok"] is True
    assert "head" in checks["migrations"]["detail"]
    assert "not configured" in checks["redis"]["detail"]
    assert "no message queue" in checks["subscription"]["detail"]
    assert "not run by this process" in checks["scheduler"]["detail"]


def test_readyz_fails_when_the_database_is_unreachable(build, settings, tmp_path):
    for url in _unreachable_database_urls(settings, tmp_path):
        client = build(replace(settings, database_url=url))
        assert client.get("/healthz").status_code == 200  # alive, but not ready
        r = client.get("/readyz")
        body = r.get_json()
        assert r.status_code == 503, (url, body)
        assert body["status"] == "not_ready"
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["database"]["detail"], body
        assert body["checks"]["migrations"] == {
            "ok": False,
            "detail": "database unreachable",
            "ms": 0.0,
        }


def test_readyz_fails_when_the_migrations_are_not_applied(build, settings, tmp_path):
    drop = None
    if settings.is_sqlite:
        url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    else:
        url, drop = _postgis_database()  # PostGIS, no tables
    try:
        client = build(replace(settings, database_url=url))
        r = client.get("/readyz")
        body = r.get_json()
        assert r.status_code == 503, body
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["migrations"]["ok"] is False
        assert "python -m server migrate" in body["checks"]["migrations"]["detail"]
    finally:
        client.application.extensions["goodmob.engine"].dispose()
        if drop:
            drop()


def test_readyz_fails_when_redis_is_unreachable(build, settings, app):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    client = build(replace(settings, redis_url=closed, readyz_timeout_s=1.0))
    r = client.get("/readyz")
    body = r.get_json()
    assert r.status_code == 503, body
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_readyz_fails_when_the_scheduler_stops_ticking(build, settings, app, monkeypatch):
    client = build(settings)
    flask_app = client.application
    mark_scheduler_started(flask_app)
    assert client.get("/readyz").status_code == 200  # just started: it has time for a loop
    stale = settings.readyz_scheduler_stale_s + 1
    flask_app.extensions[SCHEDULER_STARTED] = time.monotonic() - 2 * stale  # started long ago
    monkeypatch.setattr(scheduler, "last_tick_monotonic", time.monotonic())
    assert client.get("/readyz").status_code == 200
    monkeypatch.setattr(scheduler, "last_tick_monotonic", time.monotonic() - stale)
    r = client.get("/readyz")
    assert r.status_code == 503
    check = r.get_json()["checks"]["scheduler"]
    assert check["ok"] is False and "READYZ_SCHEDULER_STALE_S" in check["detail"]
    # Started long ago and never looped at all: not ready either.
    monkeypatch.setattr(scheduler, "last_tick_monotonic", None)
    assert client.get("/readyz").status_code == 503


# --- real server processes -----------------------------------------------------------------


def test_a_real_server_is_ready_and_its_scheduler_ticks(database_url, db):
    server = ServerProcess(database_url)
    try:
        server.start()
        r = requests.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["scheduler"]["detail"].startswith("last loop")
    finally:
        server.stop()


def test_a_real_server_without_its_database_is_alive_but_not_ready(settings, tmp_path):
    url = _unreachable_database_urls(settings, tmp_path)[-1]  # PostgreSQL: no such database
    server = ServerProcess(url, AUTO_MIGRATE="false")
    try:
        server.start()
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
        r = requests.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 503, r.text
        assert r.json()["checks"]["database"]["ok"] is False
    finally:
        server.stop()


def test_a_real_server_with_redis_down_is_not_ready(database_url, db):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    server = ServerProcess(database_url, REDIS_URL=closed, READYZ_TIMEOUT_S="1")
    try:
        server.start()
        r = requests.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 503, r.text
        checks = r.json()["checks"]
        assert checks["redis"]["ok"] is False and checks["database"]["ok"] is True
    finally:
        server.stop()
