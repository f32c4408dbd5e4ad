"""The Socket.IO namespaces, grouped by audience (one module each). Events in are verbs;
events out are facts."""

from __future__ import annotations

from server.domain.follows import NAMESPACE as FOLLOW_NAMESPACE
from server.realtime.extensions import socketio
from server.realtime.follow import FollowNamespace
from server.realtime.live import LiveNamespace
from server.realtime.organizer import OrganizerNamespace
from server.realtime.participant import ParticipantNamespace

__all__ = ["register_namespaces"]


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
        (FOLLOW_NAMESPACE, FollowNamespace),
    ):
        if namespace not in registered:
            socketio.on_namespace(cls(namespace))
