"""Readiness checks, served by ``GET /readyz`` (``server.http.health``, with ``/healthz``).

``/healthz`` answers 200 while the process serves requests (restart it when this fails).
``/readyz`` answers 200 only when this process can do its work (send it traffic only then):
the database answers, Redis answers (when REDIS_URL is set), this process's Socket.IO
message-queue subscription is live (a probe it publishes comes back through its own
listener: ``server.infra.subscription``), the database schema is at the newest migration, and the
phase scheduler loop of this process has completed a loop in the last
READYZ_SCHEDULER_STALE_S (when this process runs it). The body lists each check as
``{ok, detail, ms}``; a failing one makes the answer 503.

``run_checks`` is also used by ``python -m server check-config --connect``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext

from sqlalchemy import text

from config import Settings
from server.domain import scheduler
from server.infra.migrate import current_revision, head_revision

__all__ = ["run_checks", "redis_client", "mark_scheduler_started", "SCHEDULER_STARTED"]

# app.extensions key: the monotonic time the scheduler loop was started in this process.
SCHEDULER_STARTED = "goodmob.scheduler_started"
_head: list[str | None] = []  # the newest migration, read once from migrations/


def mark_scheduler_started(app) -> None:
    """Tell readiness that this process runs the phase scheduler loop (call when starting it)."""
    app.extensions[SCHEDULER_STARTED] = time.monotonic()


def _timeout(seconds: float):
    """A gevent timeout when the process runs on gevent; else nothing (the drivers' own)."""
    try:
        from gevent import Timeout, monkey  # optional: only a gevent server has it patched

        if monkey.is_module_patched("socket"):
            return Timeout(seconds)
    except ImportError:  # pragma: no cover
        pass
    return nullcontext()


def _run(check: Callable[[], str], seconds: float) -> dict:
    started = time.perf_counter()
    try:
        with _timeout(seconds):
            detail, ok = check(), True
    except BaseException as exc:  # gevent.Timeout is a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        detail, ok = _describe(exc, seconds), False
    return {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _describe(exc: BaseException, seconds: float) -> str:
    name = type(exc).__name__
    if name == "Timeout":
        return f"no answer within {seconds:g} s"
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{name}: {first[0][:200]}" if first else name


def _database(engine) -> Callable[[], str]:
    def check() -> str:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return f"{engine.dialect.name} answered"

    return check


def _migrations(engine) -> Callable[[], str]:
    def check() -> str:
        if not _head:
            _head.append(head_revision())
        current = current_revision(engine)
        if current != _head[0]:
            raise RuntimeError(
                f"the database is at {current or 'no revision'}, the code needs {_head[0]}: "
                "run `python -m server migrate`"
            )
        return f"at {current} (head)"

    return check


def _redis(client) -> Callable[[], str]:
    def check() -> str:
        client.ping()
        return "answered PING"

    return check


def _scheduler(started: float | None, settings: Settings) -> Callable[[], str]:
    def check() -> str:
        last = scheduler.last_tick_monotonic
        since = time.monotonic() - (last if last is not None and last >= started else started)
        if since > settings.readyz_scheduler_stale_s:
            what = "last loop" if last is not None and last >= started else "start, no loop yet"
            raise RuntimeError(
                f"{since:.1f} s since its {what} (READYZ_SCHEDULER_STALE_S="
                f"{settings.readyz_scheduler_stale_s:g})"
            )
        return f"last loop {since:.2f} s ago"

    return check


def _skipped(detail: str) -> dict:
    return {"ok": True, "detail": detail, "ms": 0.0}


def redis_client(url: str, timeout_s: float):
    import redis  # only when REDIS_URL is set

    return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)


def run_checks(
    settings: Settings,
    engine,
    *,
    redis=None,
    scheduler_started: float | None = None,
    subscription: Callable[[], str] | None = None,
) -> dict:
    """Every readiness check: ``{name: {ok, detail, ms}}``. ``subscription`` probes the
    message-queue subscription (only a serving process has one)."""
    t = settings.readyz_timeout_s
    checks = {"database": _run(_database(engine), t)}
    if checks["database"]["ok"]:
        checks["migrations"] = _run(_migrations(engine), t)
    else:
        checks["migrations"] = {"ok": False, "detail": "database unreachable", "ms": 0.0}
    if settings.redis_url:
        redis = redis or redis_client(settings.redis_url, t)
        checks["redis"] = _run(_redis(redis), t)
    else:
        checks["redis"] = _skipped("not configured (REDIS_URL is empty)")
    if not settings.redis_url:
        checks["subscription"] = _skipped("no message queue (REDIS_URL is empty)")
    elif subscription is None:
        checks["subscription"] = _skipped("not checked here (only a serving process has one)")
    elif checks["redis"]["ok"]:
        checks["subscription"] = _run(subscription, t)
    else:
        checks["subscription"] = {"ok": False, "detail": "Redis unreachable", "ms": 0.0}
    if scheduler_started is not None:
        checks["scheduler"] = _run(_scheduler(scheduler_started, settings), t)
    else:
        checks["scheduler"] = _skipped("not run by this process")
    return checks
