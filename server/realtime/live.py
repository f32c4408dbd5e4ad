"""``/live``: spectators; no account, no token; they never receive an individual's position."""

from __future__ import annotations

from flask_socketio import join_room

from server.infra import ratelimit
from server.realtime.common import (
    BaseNamespace,
    ack_errors,
    refresh_after_joining,
    unwatch,
    watch,
    watched_mob,
)
from server.realtime.snapshots import spectator_snapshot

__all__ = ["LiveNamespace"]


class LiveNamespace(BaseNamespace):
    """Spectators: no account, no token; they never receive an individual's position."""

    def on_disconnect(self, reason=None):
        unwatch("live")

    @ratelimit.limited("watch_mob")
    @ack_errors
    def on_watch_mob(self, data):
        mob = watched_mob(data)
        join_room(f"mob:{mob.id}:live")
        refresh_after_joining(mob)
        watch(mob.id, "live")
        return spectator_snapshot(mob, data.get("last_seq"))
