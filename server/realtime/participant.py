"""``/participant``: a phone that joined a mob; authenticated by the participant token in the
Socket.IO ``auth`` payload (never in the URL). Every ack is either the answer or
``{"error": {"code", "message"}}``. Location reports take a lean path (an app
context only, no request context)."""

from __future__ import annotations

from flask import current_app, g, request
from flask import session as socket_session
from flask_socketio import join_room, leave_room
from flask_socketio import rooms as rooms_of_socket

from server.domain import participants
from server.infra import metrics, phonestats, ratelimit
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.infra.models import Mob, Participant
from server.realtime.broadcast import push_stats, push_tasks, recent_counters, start_phone_counters
from server.realtime.common import (
    BaseNamespace,
    ack_errors,
    refused,
    refused_busy,
    settings,
)
from server.realtime.snapshots import snapshot

__all__ = ["ParticipantNamespace"]


def _current() -> tuple[Participant, Mob]:
    """The participant of this socket, reloaded from the database (the truth)."""
    session = db_session()
    participant = session.get(Participant, socket_session.get("participant_id"))
    if participant is None:
        raise ApiError(401, "participant_gone", "This participant no longer exists.")
    return participant, participant.mob


_NOT_LEAN = object()  # ParticipantNamespace: this report goes through Flask-SocketIO


class ParticipantNamespace(BaseNamespace):
    def on_connect(self, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            participant_id, mob_id = participants.participant_ids_from_token(
                current_app.extensions["goodmob.engine"],
                token,
                current_app.config["SECRET_KEY"],
                settings().participant_token_max_age_s,
            )
        except ApiError as exc:
            # Refused: the client's connect_error carries {code, message}.
            raise refused(exc.code, exc.message) from None
        except Exception as exc:
            raise refused_busy(exc) from None
        socket_session["participant_id"] = participant_id
        socket_session["mob_id"] = mob_id
        join_room(f"participant:{participant_id}")  # for messages to this phone alone
        metrics.socket_connected(mob_id)

    def on_disconnect(self, reason=None):
        metrics.socket_disconnected(socket_session.get("mob_id"))
        phonestats.state(current_app).forget(request.sid)

    @ack_errors
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
        start_phone_counters(app)
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
    @ack_errors
    def on_report_location(self, data, participant_id=None, sid=None, mob_id=None):
        if participant_id is None:
            participant_id = socket_session.get("participant_id")
            sid, mob_id = request.sid, socket_session.get("mob_id")
        ack, changed = participants.report_location_by_id(
            current_app.extensions["goodmob.engine"],
            db_session,
            participant_id,
            data,
            settings(),
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
    @ack_errors
    def on_confirm_deed(self, data):
        participant, mob = _current()
        session = db_session()
        ack = participants.confirm_deed(
            session, participant, mob, data, settings(), known=recent_counters(mob)
        )
        ack = {**ack, "seq": mob.event_seq}  # as read with the mob: a phone notices a gap
        session.commit()
        if ack.get("status"):
            push_stats(mob, ack["totals"])
            push_tasks(mob)
        return ack


# on_report_location past its rate-limit check (the lean path checks the limits itself).
_report_location_checked = ParticipantNamespace.on_report_location.__wrapped__
