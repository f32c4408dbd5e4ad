"""Socket.IO namespaces, grouped by audience. Events in are verbs; events out are facts.

``/participant``: a phone that joined a mob; authenticated by the participant token in the
Socket.IO ``auth`` payload (never in the URL). Every ack is either the answer or
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import time

from flask import current_app, g, has_app_context, request
from flask import session as socket_session
from flask_socketio import ConnectionRefusedError, Namespace, join_room, leave_room
from flask_socketio import rooms as rooms_of_socket
from sqlalchemy import select

from server import rooms
from server.domain import controls, density, mobs, participants, pledges, ports, timeline
from server.domain.accounts import organizer_from_token, organizer_of_session, session_id_of
from server.domain.fields import get_int
from server.domain.follows import NAMESPACE as FOLLOW_NAMESPACE
from server.domain.views import mob_json, tasks_feature_collection
from server.extensions import socketio
from server.infra import metrics, phonestats, ratelimit
from server.infra.db import db_session
from server.infra.errors import ApiError, error_body, unavailable
from server.infra.models import Mob, Participant, Task

__all__ = [
    "ParticipantNamespace",
    "LiveNamespace",
    "OrganizerNamespace",
    "register_namespaces",
    "push_stats",
    "push_tasks",
    "notify_task_assigned",
    "notify_deed_reviewed",
    "emit_mob_event",
    "in_flight",
    "snapshot",
    "SocketNotifier",
    "SocketHost",
    "spectator_snapshot",
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


def _settings():
    return current_app.config["SETTINGS"]


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
    s = _settings()
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


def _recent_counters(mob: Mob) -> dict | None:
    """The mob's counters as this process counted them less than STATS_MIN_INTERVAL_S ago
    (for a join's snapshot, a deed's answer: two aggregates over the mob saved per call)."""
    payload = phonestats.state(current_app).fresh(mob.id, _settings().stats_min_interval_s)
    if payload is None:
        return None
    return {k: v for k, v in payload.items() if k not in ("mob", "seq", "pledges")}


def _start_phone_counters(app) -> None:
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
        _settings().stats_min_interval_s,
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


def _current() -> tuple[Participant, Mob]:
    """The participant of this socket, reloaded from the database (the truth)."""
    session = db_session()
    participant = session.get(Participant, socket_session.get("participant_id"))
    if participant is None:
        raise ApiError(401, "participant_gone", "This participant no longer exists.")
    return participant, participant.mob


# Socket events being handled by this process now (a graceful stop waits for them).
_in_flight = [0]


def in_flight() -> int:
    return _in_flight[0]


def _rollback() -> None:
    """End the event's transaction; a connection that died with the database is dropped."""
    try:
        db_session().rollback()
    except Exception:
        current_app.logger.warning("rollback failed; the connection is discarded")


def _ack_errors(handler):
    event = handler.__name__.removeprefix("on_")

    def wrapper(self, data=None, *more):
        _in_flight[0] += 1
        metrics.event_received(event)
        started = time.perf_counter()
        try:
            return handler(self, data, *more)
        except ApiError as exc:
            _rollback()
            return error_body(exc.code, exc.message, exc.where)
        except Exception as exc:  # never leave a phone waiting for an ack that will not come
            _rollback()
            busy = unavailable(exc)
            if busy is not None:  # nothing was committed: the phone retries (same deed_id)
                current_app.logger.warning("%s in %s", busy.code, handler.__name__)
                return error_body(busy.code, busy.message)
            current_app.logger.exception("socket event %s failed", handler.__name__)
            return error_body("internal_error", "Something went wrong on our side.")
        finally:
            _in_flight[0] -= 1
            metrics.observe_ack(event, time.perf_counter() - started)

    wrapper.__name__ = handler.__name__
    return wrapper


_NOT_LEAN = object()  # ParticipantNamespace: this report goes through Flask-SocketIO


class _Namespace(Namespace):
    """Every namespace answers ``time_sync`` straight from the socket's reader: the handler
    needs no app, request or session, and Flask-SocketIO's request context per event cost
    more than the rest of the round trip. Phones send one every few seconds while they wait
    for GO (pwa/js/clock.js CLOCK_CONFIG; bench/timesync measures the cost)."""

    def trigger_event(self, event, *args):
        if event == "time_sync" and args:
            return _time_sync(args[1] if len(args) > 1 else None)
        return super().trigger_event(event, *args)


class ParticipantNamespace(_Namespace):
    def on_connect(self, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            participant_id, mob_id = participants.participant_ids_from_token(
                current_app.extensions["goodmob.engine"],
                token,
                current_app.config["SECRET_KEY"],
                _settings().participant_token_max_age_s,
            )
        except ApiError as exc:
            # Refused: the client's connect_error carries {code, message}.
            raise _refused(exc.code, exc.message) from None
        except Exception as exc:
            raise _refused_busy(exc) from None
        socket_session["participant_id"] = participant_id
        socket_session["mob_id"] = mob_id
        join_room(f"participant:{participant_id}")  # for messages to this phone alone
        metrics.socket_connected(mob_id)

    def on_disconnect(self, reason=None):
        metrics.socket_disconnected(socket_session.get("mob_id"))
        phonestats.state(current_app).forget(request.sid)

    @_ack_errors
    def on_join_mob(self, data):
        # In the mob's room before the mob (and its seq) is read: an event committed after
        # that read then reaches this socket live, one committed before is in the snapshot.
        # (Joined after the read, an event published during the read was lost: finding 8.)
        room = f"mob:{socket_session.get('mob_id')}"
        joined_before = room in rooms_of_socket()
        join_room(room)
        try:
            participant, mob = _current()
            wanted = data.get("mob") if isinstance(data, dict) else None
            if wanted != mob.id:
                raise ApiError(403, "wrong_mob", "This token belongs to another mob.")
        except Exception:
            if not joined_before:
                leave_room(room)
            raise
        answer = snapshot(participant, mob, data.get("last_seq"))
        app = current_app._get_current_object()
        phonestats.state(app).joined(request.sid, mob.id)  # the snapshot has the counters
        _start_phone_counters(app)
        return answer

    def trigger_event(self, event, *args):
        # report_location, sent by every walking phone every few seconds, runs in an app
        # context only: Flask-SocketIO's request context per event (a Werkzeug request, the
        # socket's session swapped in) cost about a sixth of each report (py-spy in
        # bench/locations). Every other event goes through Flask-SocketIO.
        if event == "report_location" and len(args) == 2:
            answer = self._report_location_lean(*args)
            if answer is not _NOT_LEAN:
                return answer
        return super().trigger_event(event, *args)

    def _report_location_lean(self, sid, data):
        environ = self.socketio.server.get_environ(sid, namespace=self.namespace)
        saved = environ.get("saved_session") if environ else None
        participant_id = saved.get("participant_id") if saved is not None else None
        if participant_id is None:
            return _NOT_LEAN  # Flask-SocketIO answers (and refuses) as for any event

        def address() -> str:  # the client's address, worked out once per socket
            addr = environ.get("goodmob.client_address")
            if addr is None:
                addr = ratelimit.environ_address(environ)
                environ["goodmob.client_address"] = addr
            return addr

        with environ["flask.app"].app_context():
            g.goodmob_event = {"message": "report_location", "sid": sid}  # for the logs
            refused = ratelimit.check("report_location", participant_id, address)
            if refused is not None:
                return refused
            return _report_location_checked(self, data, participant_id, sid, saved.get("mob_id"))

    @ratelimit.limited("report_location")
    @_ack_errors
    def on_report_location(self, data, participant_id=None, sid=None, mob_id=None):
        if participant_id is None:
            participant_id = socket_session.get("participant_id")
            sid, mob_id = request.sid, socket_session.get("mob_id")
        ack, changed = participants.report_location_by_id(
            current_app.extensions["goodmob.engine"],
            db_session,
            participant_id,
            data,
            _settings(),
        )
        if changed is not None:  # written: counters and tasks may have moved
            db_session().commit()  # (on a conflict it was written in the request's session)
            push_stats(changed)  # (no tasks push: who holds a task is never in it)
        if "error" not in ack:  # the mob's counters ride on the ack when they changed
            stats = phonestats.state(current_app).for_ack(sid, mob_id)
            if stats is not None:
                ack = {**ack, "stats": stats}
        return ack

    @ratelimit.limited("confirm_deed")
    @_ack_errors
    def on_confirm_deed(self, data):
        participant, mob = _current()
        session = db_session()
        ack = participants.confirm_deed(
            session, participant, mob, data, _settings(), known=_recent_counters(mob)
        )
        ack = {**ack, "seq": mob.event_seq}  # as read with the mob: a phone notices a gap
        session.commit()
        if ack.get("status"):
            push_stats(mob, ack["totals"])
            push_tasks(mob)
        return ack


def _time_sync(data) -> dict:
    """NTP-style timestamps: the client's t0 back, with server receive and send times."""
    t1 = time.time() * 1000
    t0 = data.get("t0") if isinstance(data, dict) else None
    return {"t0": t0, "t1": t1, "t2": time.time() * 1000}


def _watched_mob(data) -> Mob:
    mob_id = data.get("mob") if isinstance(data, dict) else None
    if not isinstance(mob_id, str):
        raise ApiError(400, "field_missing", "Send {mob: <mob id>}.", {"field": "mob"})
    return mobs.get_mob(db_session(), mob_id)  # drafts are not watchable: 404


def _mob_from(data, organizer) -> Mob:
    mob_id = data.get("mob") if isinstance(data, dict) else None
    if not isinstance(mob_id, str):
        raise ApiError(400, "field_missing", "Send {mob: <mob id>}.", {"field": "mob"})
    return mobs.get_owned_mob(db_session(), mob_id, organizer)


def _refused(code: str, message: str) -> ConnectionRefusedError:
    """A refused connection; the client's ``connect_error`` has ``err.data = {code, message}``."""
    return ConnectionRefusedError(message, {"code": code, "message": message})


def _refused_busy(exc: Exception) -> Exception:
    """A connection refused because the database is out of reach or every pooled connection
    is busy (the client retries, as after any refused connection); any other error as it is."""
    busy = unavailable(exc)
    if busy is None:
        return exc
    _rollback()
    current_app.logger.warning("%s on connect", busy.code)
    return _refused(busy.code, busy.message)


def _refresh_after_joining(mob: Mob) -> None:
    """Read the mob again once the socket is in its room (the room is joined only after the
    watcher is authorized, which reads the mob): an event committed after this read reaches
    the socket live, one committed before is in the snapshot (or its ``missed``)."""
    db_session().refresh(mob)


def _watch(mob_id: str, audience: str) -> None:
    """Count this socket as watching ``mob_id`` (once; a second watch_mob moves it)."""
    before = socket_session.get("watching")
    if before == mob_id:
        return
    if before is not None:
        metrics.socket_disconnected(before, audience)
    socket_session["watching"] = mob_id
    metrics.socket_connected(mob_id, audience)


def _unwatch(audience: str) -> None:
    watching = socket_session.pop("watching", None)
    if watching is not None:
        metrics.socket_disconnected(watching, audience)


# on_report_location past its rate-limit check (the lean path checks the limits itself).
_report_location_checked = ParticipantNamespace.on_report_location.__wrapped__


class LiveNamespace(_Namespace):
    """Spectators: no account, no token; they never receive an individual's position."""

    def on_disconnect(self, reason=None):
        _unwatch("live")

    @ratelimit.limited("watch_mob")
    @_ack_errors
    def on_watch_mob(self, data):
        mob = _watched_mob(data)
        join_room(f"mob:{mob.id}:live")
        _refresh_after_joining(mob)
        _watch(mob.id, "live")
        return spectator_snapshot(mob, data.get("last_seq"))


class OrganizerNamespace(_Namespace):
    """The organizer's controls and view; authenticated with the organizer token."""

    def on_connect(self, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise _refused("auth_required", "Connect with auth {token}.")
        try:
            organizer = organizer_from_token(db_session(), token)
        except ApiError as exc:
            raise _refused(exc.code, exc.message) from None
        except Exception as exc:
            raise _refused_busy(exc) from None
        socket_session["organizer_id"] = organizer.id
        socket_session["organizer_session"] = session_id_of(token)

    def on_disconnect(self, reason=None):
        _unwatch("organizer")

    def _organizer(self):
        """The organizer, while the socket's session lasts (one query per control): after a
        log-out, on whichever process, every control is refused with ``token_revoked``."""
        return organizer_of_session(
            db_session(),
            socket_session.get("organizer_id"),
            socket_session.get("organizer_session"),
        )

    @ratelimit.limited("watch_mob")
    @_ack_errors
    def on_watch_mob(self, data):
        mob = _mob_from(data, self._organizer())
        join_room(f"mob:{mob.id}:org")
        _refresh_after_joining(mob)
        _watch(metrics.mob_label(mob), "organizer")
        body = spectator_snapshot(mob, data.get("last_seq"))
        return body

    @_ack_errors
    def on_start_now(self, data):
        mob = _mob_from(data, self._organizer())
        s = _settings()
        lead_s = get_int(data, "lead_s", lo=1, hi=24 * 3600, required=False)
        controls.start_now(db_session(), mob, lead_s, s)
        db_session().commit()
        return {"timeline": timeline.timeline_json(mob)}

    @_ack_errors
    def on_postpone(self, data):
        mob = _mob_from(data, self._organizer())
        controls.postpone(db_session(), mob, data, _settings())
        db_session().commit()
        return {"timeline": timeline.timeline_json(mob)}

    @_ack_errors
    def on_cancel(self, data):
        mob = _mob_from(data, self._organizer())
        controls.cancel(db_session(), mob, _settings())
        db_session().commit()
        return {"timeline": timeline.timeline_json(mob)}

    @_ack_errors
    def on_announce(self, data):
        mob = _mob_from(data, self._organizer())
        text = controls.announcement_text(data, _settings())
        event = controls.announce(db_session(), mob, text, _settings())
        db_session().commit()
        return {"announcement": event}


def snapshot(participant: Participant, mob: Mob, last_seq=None) -> dict:
    """A participant's view of the mob: timeline, own task and counters (never others)."""
    session = db_session()
    task = session.get(Task, participant.task_id) if participant.task_id else None
    return {
        "mob": mob_json(mob),
        "timeline": timeline.timeline_json(mob),
        "phase": mob.status,
        "seq": mob.event_seq,
        "server_time_ms": int(time.time() * 1000),
        "me": {
            "nickname": participant.nickname,
            "ref_code": participant.ref_code,
            "zone": participant.zone_state,
        },
        "task": participants.task_json(task, participant) if task else None,
        "counters": _recent_counters(mob) or participants.counters(session, mob),
        "deeds": participants.deeds_of(session, participant),
        "announcements": timeline.recent_announcements(session, mob),
        "missed": timeline.missed_events(session, mob, last_seq),
    }


def spectator_snapshot(mob: Mob, last_seq=None) -> dict:
    """What a spectator sees: the mob, tasks by state, counters, density; no one's position."""
    session = db_session()
    s = _settings()
    return {
        "mob": mob_json(mob),
        "timeline": timeline.timeline_json(mob),
        "phase": mob.status,
        "seq": mob.event_seq,
        "server_time_ms": int(time.time() * 1000),
        "tasks": tasks_feature_collection(session, mob),
        "counters": participants.counters(session, mob),
        "density": density.density_json(session, mob, s),
        "announcements": timeline.recent_announcements(session, mob),
        "missed": timeline.missed_events(session, mob, last_seq),
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


def register_namespaces() -> None:
    """Attach the namespaces to the module-level SocketIO, once; call before ``init_app``.

    ``init_app`` registers every handler in ``socketio.namespace_handlers`` with the new
    Socket.IO server, so later apps (tests build one per database) get them too.
    """
    registered = {h.namespace for h in socketio.namespace_handlers}
    for namespace, cls in (
        ("/participant", ParticipantNamespace),
        ("/live", LiveNamespace),
        ("/organizer", OrganizerNamespace),
    ):
        if namespace not in registered:
            socketio.on_namespace(cls(namespace))


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
