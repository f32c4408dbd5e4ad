"""Socket.IO namespaces, grouped by audience. Events in are verbs; events out are facts.

``/participant``: a phone that joined a mob; authenticated by the participant token in the
Socket.IO ``auth`` payload (never in the URL). Every ack is either the answer or
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import time

from flask import current_app
from flask_socketio import Namespace, join_room
from sqlalchemy import select

from server import participants
from server.app import db_session
from server.errors import ApiError, error_body
from server.extensions import socketio
from server.models import Mob, Participant

__all__ = ["ParticipantNamespace", "register_namespaces", "push_stats", "notify_task_assigned"]

# Per-process throttle of `stats` pushes: mob id → monotonic time of the last push.
_last_stats: dict[str, float] = {}
_pending_stats: set[str] = set()


def _settings():
    return current_app.config["SETTINGS"]


def push_stats(mob: Mob, totals: dict | None = None) -> None:
    """Push counters to the mob's rooms at most every STATS_MIN_INTERVAL_S (≤ 2/s).

    ``totals`` may be given when the caller has them; otherwise they are counted only when a
    push is actually due (not on every location report).
    """
    interval = _settings().stats_min_interval_s
    now = time.monotonic()
    last = _last_stats.get(mob.id, 0.0)
    if now - last >= interval:
        _last_stats[mob.id] = now
        if totals is None:
            totals = participants.counters(db_session(), mob)
        socketio.emit(
            "stats", {"mob": mob.id, **totals}, to=f"mob:{mob.id}", namespace="/participant"
        )
        return
    if mob.id in _pending_stats:
        return  # a trailing push is already scheduled; it will read fresh counters
    _pending_stats.add(mob.id)
    app = current_app._get_current_object()
    mob_id = mob.id

    def trailing():
        socketio.sleep(interval - (now - last))
        with app.app_context():
            _pending_stats.discard(mob_id)
            session = db_session()
            try:
                fresh = session.scalar(select(Mob).where(Mob.id == mob_id))
            except Exception:  # the database went away (shutdown); the next event pushes again
                app.logger.warning("stats push for mob %s skipped", mob_id, exc_info=True)
                return
            if fresh is not None:
                _last_stats[mob_id] = time.monotonic()
                socketio.emit(
                    "stats",
                    {"mob": mob_id, **participants.counters(session, fresh)},
                    to=f"mob:{mob_id}",
                    namespace="/participant",
                )

    socketio.start_background_task(trailing)


def _current() -> tuple[Participant, Mob]:
    """The participant of this socket, reloaded from the database (the truth)."""
    from flask import session as socket_session

    session = db_session()
    participant = session.get(Participant, socket_session.get("participant_id"))
    if participant is None:
        raise ApiError(401, "participant_gone", "This participant no longer exists.")
    return participant, participant.mob


def _ack_errors(handler):
    def wrapper(self, data=None):
        try:
            return handler(self, data)
        except ApiError as exc:
            db_session().rollback()
            return error_body(exc.code, exc.message, exc.where)
        except Exception:  # never leave a phone waiting for an ack that will not come
            db_session().rollback()
            current_app.logger.exception("socket event %s failed", handler.__name__)
            return error_body("internal_error", "Something went wrong on our side.")

    wrapper.__name__ = handler.__name__
    return wrapper


class ParticipantNamespace(Namespace):
    def on_connect(self, auth=None):
        from flask import session as socket_session

        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            participant, mob = participants.participant_from_token(
                db_session(),
                token,
                current_app.config["SECRET_KEY"],
                _settings().participant_token_max_age_s,
            )
        except ApiError as exc:
            # Refused: the client's connect_error carries {code, message}.
            raise ConnectionRefusedError({"code": exc.code, "message": exc.message}) from None
        socket_session["participant_id"] = participant.id
        socket_session["mob_id"] = mob.id
        join_room(f"participant:{participant.id}")  # for messages to this phone alone

    def on_time_sync(self, data=None):
        t1 = time.time() * 1000
        t0 = data.get("t0") if isinstance(data, dict) else None
        return {"t0": t0, "t1": t1, "t2": time.time() * 1000}

    @_ack_errors
    def on_join_mob(self, data):
        participant, mob = _current()
        wanted = data.get("mob") if isinstance(data, dict) else None
        if wanted != mob.id:
            raise ApiError(403, "wrong_mob", "This token belongs to another mob.")
        join_room(f"mob:{mob.id}")
        return snapshot(participant, mob)

    @_ack_errors
    def on_report_location(self, data):
        participant, mob = _current()
        session = db_session()
        ack = participants.report_location(session, participant, mob, data, _settings())
        session.commit()
        push_stats(mob)
        return ack

    @_ack_errors
    def on_confirm_deed(self, data):
        participant, mob = _current()
        session = db_session()
        ack = participants.confirm_deed(session, participant, mob, data, _settings())
        session.commit()
        if ack.get("status"):
            push_stats(mob, ack["totals"])
        return ack


def snapshot(participant: Participant, mob: Mob) -> dict:
    from server.api import mob_json
    from server.models import Task

    session = db_session()
    task = session.get(Task, participant.task_id) if participant.task_id else None
    mob_data = mob_json(mob)
    return {
        "mob": mob_data,
        "timeline": mob_data["timeline"],
        "server_time_ms": int(time.time() * 1000),
        "me": {
            "nickname": participant.nickname,
            "ref_code": participant.ref_code,
            "zone": participant.zone_state,
        },
        "task": participants.task_json(task, participant) if task else None,
        "counters": participants.counters(session, mob),
    }


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


def register_namespaces() -> None:
    """Attach the namespaces to the module-level SocketIO, once; call before ``init_app``.

    ``init_app`` registers every handler in ``socketio.namespace_handlers`` with the new
    Socket.IO server, so later apps (tests build one per database) get them too.
    """
    if not any(h.namespace == "/participant" for h in socketio.namespace_handlers):
        socketio.on_namespace(ParticipantNamespace("/participant"))
