"""Liveness and readiness: ``GET /healthz`` and ``GET /readyz`` (the checks themselves are in
``server.domain.readiness``).

``/healthz`` answers 200 while the process serves requests (restart it when this fails).
``/readyz`` answers 200 only when this process can do its work (send it traffic only then);
the body lists each check as ``{ok, detail, ms}``; a failing one makes the answer 503.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from server.domain.readiness import SCHEDULER_STARTED, redis_client, run_checks
from server.infra import subscription

__all__ = ["health"]

health = Blueprint("health", __name__)


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@health.get("/healthz")
def healthz():
    return _no_store(jsonify({"status": "ok"}))


@health.get("/readyz")
def readyz():
    app = current_app
    settings = app.config["SETTINGS"]
    redis = None
    if settings.redis_url:
        redis = app.extensions.get("goodmob.health_redis")
        if redis is None:
            redis = redis_client(settings.redis_url, settings.readyz_timeout_s)
            app.extensions["goodmob.health_redis"] = redis
    checks = run_checks(
        settings,
        app.extensions["goodmob.engine"],
        redis=redis,
        scheduler_started=app.extensions.get(SCHEDULER_STARTED),
        subscription=lambda: subscription.probe(app, settings.readyz_timeout_s),
    )
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return _no_store(jsonify(body)), 200 if ready else 503
