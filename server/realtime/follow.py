"""``/follow``: a follower's open app, told at once when a matching mob is published (the rules
are in ``server.domain.follows``; ``SocketNotifier.mob_published`` sends the event)."""

from __future__ import annotations

from flask import session as socket_session
from flask_socketio import ConnectionRefusedError, Namespace, join_room

from server.domain.follows import follower_from_token, follower_json
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.infra.models import Follower

__all__ = ["FollowNamespace"]


class FollowNamespace(Namespace):
    """``/follow``: a follower's open app; auth ``{follower_token}``. Out: ``mob_published``
    ``{mob: {id, title, organizer, go_at_ms, url, lat, lon}, reasons}``."""

    def on_connect(self, auth=None):
        token = auth.get("follower_token") if isinstance(auth, dict) else None
        try:
            follower = follower_from_token(db_session(), token)
        except ApiError as exc:
            raise ConnectionRefusedError(
                exc.message, {"code": exc.code, "message": exc.message}
            ) from None
        socket_session["follower_id"] = follower.id
        join_room(f"follower:{follower.id}")

    def on_follows(self, data=None):
        """Ack: the follower with its follows (as GET /api/followers/me)."""
        session = db_session()
        follower = session.get(Follower, socket_session.get("follower_id"))
        if follower is None:
            return {"error": {"code": "follower_gone", "message": "This follower was deleted."}}
        return follower_json(session, follower)
