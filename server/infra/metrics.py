"""Prometheus metrics: sockets, events, ack latency, scheduler lag, database pool, deeds.

Served at ``GET /metrics`` by the ``metrics`` blueprint (``server.http.metrics``). Handlers
call the small functions below (``event_received``, ``observe_ack`` …); the deed, mob and
participant counts are read from the database when the endpoint is scraped, so they are right
whichever process answers.

Several processes (``python -m server --workers N``) share one port, so a scrape reaches any
one of them. With ``PROMETHEUS_MULTIPROC_DIR`` set (to an empty directory, before the process
starts) every process writes its values to files there and each one serves the sum over all
of them (prometheus_client's multiprocess mode): counters and histograms add up across
processes, and the live gauges (sockets, pool) keep a ``pid`` label per process. The
supervisor must call ``prometheus_client.multiprocess.mark_process_dead(pid)`` when a child
exits so its live gauges disappear. See docs/OPERATIONS.md for the metric names and alerts.

Who may scrape: with ``METRICS_TOKEN`` set, a client sending ``Authorization: Bearer
<METRICS_TOKEN>`` (anyone else gets 401). Without it, in production nobody (404, as for any
unknown address); in development and tests, clients on the loopback address only.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from server.infra.models import LISTED_STATUSES, Deed, Mob, Participant, utcnow

__all__ = [
    "event_received",
    "event_emitted",
    "frames_sent",
    "wsfast_enabled",
    "observe_ack",
    "socket_connected",
    "socket_disconnected",
    "scheduler_lag",
    "scheduler_ticked",
    "watch_pool",
    "registry_for_scrape",
    "mob_label",
]

log = logging.getLogger("goodmob.metrics")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

SOCKETS = Gauge(
    "goodmob_connected_sockets",
    "Socket.IO connections by audience (participant = a phone in the mob) and mob.",
    ["audience", "mob"],
    multiprocess_mode="liveall",
)
EVENTS_RECEIVED = Counter(
    "goodmob_socket_events_received", "Socket.IO events received from clients.", ["event"]
)
EVENTS_EMITTED = Counter(
    "goodmob_socket_events_emitted", "Socket.IO events emitted to a room or a client.", ["event"]
)
FRAMES_SENT = Counter(
    "goodmob_socket_frames_sent",
    "Frames of events sent to rooms and clients without an ack, by path: direct = written "
    "straight to the client's WebSocket, queued = through Engine.IO's per-connection queue "
    "(long-polling clients, and connections busy writing or with a full send buffer).",
    ["path"],
)
WSFAST_ENABLED = Gauge(
    "goodmob_wsfast_enabled",
    "1 if this part of server/realtime/wsfast.py runs its fast path (the installed library "
    "versions are those it was tested with), 0 if it fell back to the libraries' stock path: "
    "sockets = python-socketio, python-engineio, Flask-SocketIO; frames = gevent-websocket.",
    ["part"],
    multiprocess_mode="livemin",
)
ACK_SECONDS = Histogram(
    "goodmob_socket_ack_seconds",
    "Time from receiving a Socket.IO event to returning its acknowledgement.",
    ["event"],
    buckets=_LATENCY_BUCKETS,
)
SCHEDULER_LAG = Histogram(
    "goodmob_scheduler_lag_seconds",
    "How late a phase change was emitted after its scheduled time.",
    buckets=_LAG_BUCKETS,
)
PHASE_CHANGES = Counter(
    "goodmob_phase_changes", "Phase changes emitted by the scheduler, by new phase.", ["phase"]
)
SCHEDULER_TICK = Gauge(
    "goodmob_scheduler_last_tick_timestamp_seconds",
    "Unix time of the last completed loop of the phase scheduler in this process.",
    multiprocess_mode="livemax",
)
POOL_CHECKED_OUT = Gauge(
    "goodmob_db_pool_checked_out",
    "Database connections in use (checked out of the pool) in this process.",
    multiprocess_mode="liveall",
)
POOL_SIZE = Gauge(
    "goodmob_db_pool_size",
    "Connections the pool keeps open (its size; checked out may exceed it by the overflow).",
    multiprocess_mode="liveall",
)
HTTP_REQUESTS = Counter(
    "goodmob_http_requests", "HTTP requests by route and status.", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "goodmob_http_request_seconds",
    "HTTP request duration by route.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)

# Event names become label values: only short snake_case names, anything else is "other".
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MOB = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _event(name: str) -> str:
    return name if isinstance(name, str) and _NAME.match(name) else "other"


def mob_label(mob) -> str:
    """A mob's ``mob`` label: its public id, except ``draft`` for a draft (whose id only its
    organizer knows; a scrape must not list them)."""
    return "draft" if mob.status == "draft" else mob.id


def _mob(mob_id) -> str:
    return mob_id if isinstance(mob_id, str) and _MOB.match(mob_id) else "none"


# (metric, event name) → its labelled child: ``labels()`` costs more than the count itself,
# and these run for every event. Event names are the handlers' own (a few dozen).
_children: dict = {}


def _child(metric, name: str):
    child = _children.get((metric, name))
    if child is None:
        child = metric.labels(_event(name))
        if len(_children) < 1024:
            _children[(metric, name)] = child
    return child


def event_received(name: str) -> None:
    """Count one Socket.IO event received (``rate()`` of it: events per second)."""
    _child(EVENTS_RECEIVED, name).inc()


def event_emitted(name: str, n: int = 1) -> None:
    """Count ``n`` emits of ``name`` (one per room or client emitted to)."""
    _child(EVENTS_EMITTED, name).inc(n)


def frames_sent(direct: int, queued: int) -> None:
    """Count the frames of one fan-out by the path they took (server/realtime/rooms.py)."""
    if direct:
        FRAMES_SENT.labels("direct").inc(direct)
    if queued:
        FRAMES_SENT.labels("queued").inc(queued)


def wsfast_enabled(part: str, enabled: bool) -> None:
    """Say whether ``part`` of server/realtime/wsfast.py runs fast (1) or fell back to stock (0)."""
    WSFAST_ENABLED.labels(part).set(1 if enabled else 0)


def observe_ack(event_name: str, seconds: float) -> None:
    """Record how long the acknowledgement of ``event_name`` took."""
    _child(ACK_SECONDS, event_name).observe(max(0.0, seconds))


def socket_connected(mob_id: str | None, audience: str = "participant") -> None:
    SOCKETS.labels(_event(audience), _mob(mob_id)).inc()


def socket_disconnected(mob_id: str | None, audience: str = "participant") -> None:
    SOCKETS.labels(_event(audience), _mob(mob_id)).dec()


def scheduler_lag(seconds: float, phase: str | None = None) -> None:
    """Record that a phase change was emitted ``seconds`` after its scheduled time."""
    SCHEDULER_LAG.observe(max(0.0, seconds))
    if phase:
        PHASE_CHANGES.labels(_event(phase)).inc()


def scheduler_ticked() -> None:
    """Mark one completed scheduler loop (for the staleness alert)."""
    SCHEDULER_TICK.set(time.time())


def watch_pool(engine) -> None:
    """Keep the pool gauges of this process up to date from the engine's pool events."""
    pool = engine.pool
    if getattr(engine, "_goodmob_pool_watched", False) or not hasattr(pool, "checkedout"):
        return
    engine._goodmob_pool_watched = True

    def update(*_):
        POOL_CHECKED_OUT.set(pool.checkedout())
        POOL_SIZE.set(pool.size())

    for name in ("checkout", "checkin", "connect", "close"):
        event.listen(engine, name, update)
    update()


# --- what the database knows (read at scrape time) -----------------------------------------


class DatabaseCollector:
    """Mobs by phase, deeds by status, and per current mob: participants by zone, deeds."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        up = GaugeMetricFamily("goodmob_metrics_database_up", "1 if the database answered.")
        try:
            families = self._families()
        except Exception as exc:
            log.warning("metrics: database query failed: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list:
        with Session(self.engine) as session:
            mobs = GaugeMetricFamily("goodmob_mobs", "Mobs by phase.", labels=["phase"])
            for phase, n in session.execute(select(Mob.status, func.count()).group_by(Mob.status)):
                mobs.add_metric([phase], n)
            deeds = GaugeMetricFamily(
                "goodmob_deeds", "Deeds by status (rehearsal deeds apart).",
                labels=["status", "rehearsal"],
            )  # fmt: skip
            rows = session.execute(
                select(Deed.status, Mob.rehearsal, func.count())
                .join(Mob, Mob.pk == Deed.mob_pk)
                .group_by(Deed.status, Mob.rehearsal)
            )
            for status, rehearsal, n in rows:
                deeds.add_metric([status, str(bool(rehearsal)).lower()], n)
            # Mobs that are published or live, or ended in the last hour, get their own series.
            recent = utcnow() - timedelta(hours=1)
            just_ended = (Mob.status == "finished") & (Mob.end_at >= recent)
            live = select(Mob.pk).where(Mob.status.in_(LISTED_STATUSES) | just_ended)
            mob_deeds = GaugeMetricFamily(
                "goodmob_mob_deeds", "Deeds of a current (or just ended) mob by status.",
                labels=["mob", "status"],
            )  # fmt: skip
            rows = session.execute(
                select(Mob.id, Deed.status, func.count())
                .join(Mob, Mob.pk == Deed.mob_pk)
                .where(Deed.mob_pk.in_(live))
                .group_by(Mob.id, Deed.status)
            )
            for mob_id, status, n in rows:
                mob_deeds.add_metric([mob_id, status], n)
            joined = GaugeMetricFamily(
                "goodmob_mob_participants", "Participants of a current mob by zone state.",
                labels=["mob", "zone"],
            )  # fmt: skip
            rows = session.execute(
                select(Mob.id, Participant.zone_state, func.count())
                .join(Mob, Mob.pk == Participant.mob_pk)
                .where(Participant.mob_pk.in_(live))
                .group_by(Mob.id, Participant.zone_state)
            )
            for mob_id, zone, n in rows:
                joined.add_metric([mob_id, zone or "unknown"], n)
        return [mobs, deeds, mob_deeds, joined]


def registry_for_scrape(multiproc_dir: str = "") -> CollectorRegistry:
    """The process's registry, or in multiprocess mode one that sums every process's files."""
    if not multiproc_dir:
        return REGISTRY
    from prometheus_client import multiprocess  # only in multiprocess mode

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    return registry
