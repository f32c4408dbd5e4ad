"""Pushes to a mob's rooms: counters, density and tasks (throttled per process, a trailing
push keeps the last change), numbered mob events, personal ``task_assigned`` and
``deed_reviewed``, the phones' counters loop; and the domain's ``SocketNotifier`` and
``SocketHost`` (``server.domain.ports``), which ``create_app`` installs."""

from __future__ import annotations

import time

from flask import current_app, has_app_context
from sqlalchemy import select

from server.domain import density, participants, pledges, ports
from server.domain.follows import NAMESPACE as FOLLOW_NAMESPACE
from server.domain.views import tasks_feature_collection
from server.infra import metrics, phonestats
from server.infra.db import db_session
from server.infra.models import Mob, Participant
from server.realtime import rooms
from server.realtime.common import settings
from server.realtime.extensions import socketio

__all__ = [
    "TASKS_MIN_INTERVAL_S",
    "push_stats",
    "push_tasks",
    "recent_counters",
    "start_phone_counters",
    "notify_task_assigned",
    "notify_deed_reviewed",
    "emit_mob_event",
    "SocketNotifier",
    "SocketHost",
]


# Per-process throttle of `density` pushes to spectators.
_last_density: dict[str, float] = {}
TASKS_MIN_INTERVAL_S = 1.0


class _Throttle:
    """Per-process, per-mob: at most one push every ``interval``; a change inside the quiet
    interval schedules one trailing push that reloads the mob, so the last change is always
    pushed (and work such as counting is done only when a push is due)."""

    def __init__(self, what: str):
        self.what = what
        self.last: dict[str, float] = {}  # mob id → monotonic time of the last push
        self.pending: set[str] = set()  # mob ids with a trailing push scheduled

    def push(self, mob_id: str, interval: float, now_push, fresh_push) -> None:
        """``now_push()`` if due; else, once, ``fresh_push(session, mob)`` when it is due."""
        now = time.monotonic()
        due = self.last.get(mob_id, 0.0) + interval
        if now >= due:
            self.last[mob_id] = now
            now_push()
            return
        if mob_id in self.pending:
            return  # a trailing push is scheduled; it reads fresh data
        self.pending.add(mob_id)
        app = current_app._get_current_object()

        def trailing():
            socketio.sleep(due - now)
            with app.app_context():
                self.pending.discard(mob_id)
                session = db_session()  # closed when the app context ends
                try:
                    fresh = session.scalar(select(Mob).where(Mob.id == mob_id))
                    if fresh is not None:
                        self.last[mob_id] = time.monotonic()
                        fresh_push(session, fresh)
                except Exception:  # the database went away (shutdown); the next change pushes
                    app.logger.warning(
                        "%s push for mob %s skipped", self.what, mob_id, exc_info=True
                    )

        socketio.start_background_task(trailing)


_stats_throttle = _Throttle("stats")  # spectators and organizer (phones: see phonestats)
_tasks_throttle = _Throttle("tasks")


def _stats_payload(session, mob: Mob, totals: dict | None) -> dict:
    if totals is None:
        totals = participants.counters(session, mob)
    payload = {"mob": mob.id, "seq": mob.event_seq, **totals}
    payload["pledges"] = pledges.pledge_totals(session, mob)
    return payload


def _emit_stats(session, mob: Mob, totals: dict | None) -> None:
    """Counters to every audience; crowd density to spectators when it is due.

    Spectators and the organizer get every push (≤ 2/s). The mob's phones get the counters
    on their next location ack, or, when they do not report, from the phones' counters loop
    (server/infra/phonestats.py): one push to 5,000 phones costs a process about 0.15 s."""
    payload = _stats_payload(session, mob, totals)
    for namespace, room in _audiences(mob.id)[1:]:
        socketio.emit("stats", payload, to=room, namespace=namespace)
    metrics.event_emitted("stats", 2)
    phonestats.state(current_app).offer(mob.id, payload)
    s = settings()
    now = time.monotonic()
    if now - _last_density.get(mob.id, 0.0) >= s.density_min_interval_s:
        _last_density[mob.id] = now
        cells = density.density_json(session, mob, s)
        for namespace, room in _audiences(mob.id)[1:]:  # spectators and organizer only
            socketio.emit(
                "density",
                {"mob": mob.id, "seq": mob.event_seq, **cells},
                to=room,
                namespace=namespace,
            )
        metrics.event_emitted("density", 2)


def recent_counters(mob: Mob) -> dict | None:
    """The mob's counters as this process counted them less than STATS_MIN_INTERVAL_S ago
    (for a join's snapshot, a deed's answer: two aggregates over the mob saved per call)."""
    payload = phonestats.state(current_app).fresh(mob.id, settings().stats_min_interval_s)
    if payload is None:
        return None
    return {k: v for k, v in payload.items() if k not in ("mob", "seq", "pledges")}


def start_phone_counters(app) -> None:
    """Start this app's phones' counters loop unless it runs (see server/infra/phonestats.py)."""
    counters = phonestats.state(app)
    with counters.lock:
        if counters.running or counters.stopped:
            return
        counters.running = True
    socketio.start_background_task(_phone_counters_loop, app, socketio.server)


def _phone_counters_loop(app, server) -> None:
    counters = phonestats.state(app)
    while True:
        socketio.sleep(counters.interval / 5)
        if counters.stopped:
            with counters.lock:
                counters.running = False
            return
        try:
            with app.app_context():
                left = _phone_counters_once(server, counters)
        except Exception:  # the database is away: the next round tries again
            app.logger.warning("phones' counters round skipped", exc_info=True)
            continue
        if not left:
            with counters.lock:
                if not _phone_mob_ids(server):  # none joined meanwhile
                    counters.running = False
                    return


def _phone_mob_ids(server) -> list[str]:
    names = server.manager.rooms.get("/participant", {})
    return [r[4:] for r in list(names) if isinstance(r, str) and r.startswith("mob:")]


def _phone_counters_once(server, counters: phonestats.PhoneCounters) -> int:
    """One round: count the stale mobs, push to the phones that are due; how many mobs have
    phones on this process."""
    mob_ids = _phone_mob_ids(server)
    counters.keep_only(set(mob_ids))
    for mob_id in mob_ids:
        now = time.monotonic()
        if counters.stale(mob_id, now):
            session = db_session()
            try:
                mob = session.scalar(select(Mob).where(Mob.id == mob_id))
                if mob is not None:
                    counters.offer(mob_id, _stats_payload(session, mob, None))
            finally:
                session.rollback()  # read only; the connection goes back to the pool
        members = dict(server.manager.get_participants("/participant", f"mob:{mob_id}"))
        payload, sids = counters.due(mob_id, members, time.monotonic())
        if sids:
            eio_sids = [members[sid] for sid in sids]
            rooms.send_local(server, "/participant", "stats", payload, eio_sids)
            metrics.event_emitted("stats", len(sids))
    return len(mob_ids)


def _resolve(mob: Mob | str) -> Mob | None:
    """The mob itself, or read by its id (a caller that knows only the id)."""
    if isinstance(mob, Mob):
        return mob
    return db_session().scalar(select(Mob).where(Mob.id == mob))


def _mob_id(mob: Mob | str) -> str:
    return mob.id if isinstance(mob, Mob) else mob


def push_stats(mob: Mob | str, totals: dict | None = None) -> None:
    """Push counters to the mob's rooms at most every STATS_MIN_INTERVAL_S (≤ 2/s).

    ``mob`` is the mob or its id (then it is read only when a push is due). ``totals`` may
    be given when the caller has them; otherwise they are counted only when a push is
    actually due (not on every location report). A change inside the quiet interval
    schedules one trailing push, so the last change is always pushed.
    """

    def now_push() -> None:
        found = _resolve(mob)
        if found is not None:
            _emit_stats(db_session(), found, totals)

    _stats_throttle.push(
        _mob_id(mob),
        settings().stats_min_interval_s,
        now_push,
        lambda session, fresh: _emit_stats(session, fresh, None),
    )


def _emit_tasks(session, mob: Mob) -> None:
    """The mob's tasks by state (``GET /api/mobs/<id>/tasks``) to spectators and organizer."""
    payload = {"mob": mob.id, "seq": mob.event_seq, "tasks": tasks_feature_collection(session, mob)}
    for namespace, room in _audiences(mob.id)[1:]:  # never to participants
        socketio.emit("tasks", payload, to=room, namespace=namespace)
    metrics.event_emitted("tasks", 2)


def push_tasks(mob: Mob | str, session=None) -> None:
    """Push the tasks to the live and organizer rooms at most once per TASKS_MIN_INTERVAL_S.

    Call after a commit that changes a task or its deed count (an organizer's edit, a deed,
    a review); ``mob`` is the mob or its id. As in ``push_stats``, a change inside the quiet
    interval schedules one trailing push that reads the tasks afresh, so the last change is
    always pushed. No participant, position or holder count is in it: tasks with their
    state (open, closed) and deed counts only.
    """

    def now_push() -> None:
        found = _resolve(mob)
        if found is not None:
            _emit_tasks(session if session is not None else db_session(), found)

    _tasks_throttle.push(_mob_id(mob), TASKS_MIN_INTERVAL_S, now_push, _emit_tasks)


def notify_task_assigned(session, moved) -> None:
    """Tell each re-matched participant their new task (or None) on their own room."""
    for participant_id, task in moved:
        participant = session.get(Participant, participant_id)
        socketio.emit(
            "task_assigned",
            {"task": participants.task_json(task, participant) if task else None},
            to=f"participant:{participant_id}",
            namespace="/participant",
        )
    metrics.event_emitted("task_assigned", len(moved))
    # No tasks push: a re-match changes no one's view but the re-matched phone's (who holds
    # which task is never shown to anyone else, docs/SECURITY.md issue 15 §1).


def notify_deed_reviewed(mob: Mob, deed) -> None:
    """Tell a deed's owner the organizer's verdict (``deed_reviewed``), on their own room
    only. Personal, like ``task_assigned``: it carries no mob sequence number; a phone that
    missed it finds the verdict in its next ``join_mob`` snapshot (``deeds``)."""
    socketio.emit(
        "deed_reviewed",
        {"mob": mob.id, **participants.deed_state(deed)},
        to=f"participant:{deed.participant_id}",
        namespace="/participant",
    )
    metrics.event_emitted("deed_reviewed", 1)


def emit_mob_event(mob_id: str, name: str, payload: dict) -> None:
    """Send a numbered event to every audience of the mob (through Redis when configured)."""
    for namespace, room in _audiences(mob_id):
        socketio.emit(name, payload, to=room, namespace=namespace)
    metrics.event_emitted(name, 3)


def _audiences(mob_id: str) -> tuple[tuple[str, str], ...]:
    return (
        ("/participant", f"mob:{mob_id}"),
        ("/live", f"mob:{mob_id}:live"),
        ("/organizer", f"mob:{mob_id}:org"),
    )


class SocketNotifier(ports.Notifier):
    """The domain's notifier (``server.domain.ports``): Socket.IO rooms, through Redis when
    several processes run."""

    def mob_event(self, mob_id: str, name: str, payload: dict) -> None:
        emit_mob_event(mob_id, name, payload)

    def tasks_assigned(self, session, moved) -> None:
        notify_task_assigned(session, moved)

    def stats_changed(self, mob, totals: dict | None = None) -> None:
        push_stats(mob, totals)

    def tasks_changed(self, mob) -> None:
        push_tasks(mob)

    def deed_reviewed(self, mob, deed) -> None:
        notify_deed_reviewed(mob, deed)

    def mob_published(self, matches: dict[int, list[str]], payload: dict) -> None:
        for follower_id, reasons in matches.items():
            socketio.emit(
                "mob_published",
                {**payload, "reasons": reasons},
                to=f"follower:{follower_id}",
                namespace=FOLLOW_NAMESPACE,
            )


class SocketHost(ports.Host):
    """The domain's host: Flask-SocketIO's background tasks and sleep (greenlets under
    gevent, threads otherwise) and Flask's current app."""

    def spawn(self, fn, *args):
        return socketio.start_background_task(fn, *args)

    def sleep(self, seconds: float) -> None:
        socketio.sleep(seconds)

    def app(self):
        return current_app._get_current_object() if has_app_context() else None
