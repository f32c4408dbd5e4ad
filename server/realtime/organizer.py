"""``/organizer``: the organizer's live view and controls (the same ``server.domain.controls``
as the REST routes); authenticated with the organizer token."""

from __future__ import annotations

from flask import session as socket_session
from flask_socketio import join_room

from server.domain import controls, timeline
from server.domain.accounts import organizer_from_token, organizer_of_session, session_id_of
from server.domain.fields import get_int
from server.infra import metrics, ratelimit
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.realtime.common import (
    BaseNamespace,
    ack_errors,
    owned_mob_from,
    refresh_after_joining,
    refused,
    refused_busy,
    settings,
    unwatch,
    watch,
)
from server.realtime.snapshots import spectator_snapshot

__all__ = ["OrganizerNamespace"]


class OrganizerNamespace(BaseNamespace):
    """The organizer's controls and view; authenticated with the organizer token."""

    def on_connect(self, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise refused("auth_required", "Connect with auth {token}.")
        try:
            organizer = organizer_from_token(db_session(), token)
        except ApiError as exc:
            raise refused(exc.code, exc.message) from None
        except Exception as exc:
            raise refused_busy(exc) from None
        socket_session["organizer_id"] = organizer.id
        socket_session["organizer_session"] = session_id_of(token)

    def on_disconnect(self, reason=None):
        unwatch("organizer")

    def _organizer(self):
        """The organizer, while the socket's session lasts (one query per control): after a
        log-out, on whichever process, every control is refused with ``token_revoked``."""
        return organizer_of_session(
            db_session(),
            socket_session.get("organizer_id"),
            socket_session.get("organizer_session"),
        )

    @ratelimit.limited("watch_mob")
    @ack_errors
    def on_watch_mob(self, data):
        mob = owned_mob_from(data, self._organizer())
        join_room(f"mob:{mob.id}:org")
        refresh_after_joining(mob)
        watch(metrics.mob_label(mob), "organizer")
        body = spectator_snapshot(mob, data.get("last_seq"))
        return body

    @ack_errors
    def on_start_now(self, data):
        mob = owned_mob_from(data, self._organizer())
        s = settings()
        lead_s = get_int(data, "lead_s", lo=1, hi=24 * 3600, required=False)
        controls.start_now(db_session(), mob, lead_s, s)
        db_session().commit()
        return {"timeline": timeline.timeline_json(mob)}

    @ack_errors
    def on_postpone(self, data):
        mob = owned_mob_from(data, self._organizer())
        controls.postpone(db_session(), mob, data, settings())
        db_session().commit()
        return {"timeline": timeline.timeline_json(mob)}

    @ack_errors
    def on_cancel(self, data):
        mob = owned_mob_from(data, self._organizer())
        controls.cancel(db_session(), mob, settings())
        db_session().commit()
        return {"timeline": timeline.timeline_json(mob)}

    @ack_errors
    def on_announce(self, data):
        mob = owned_mob_from(data, self._organizer())
        text = controls.announcement_text(data, settings())
        event = controls.announce(db_session(), mob, text, settings())
        db_session().commit()
        return {"announcement": event}
