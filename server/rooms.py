"""An index of each client's rooms for python-socketio's room manager.

python-socketio keeps ``rooms[namespace][room] = {sid: eio_sid}`` and nothing from a client to
its rooms, so a disconnect scans every room of the namespace, and every connected client has a
room of its own: each disconnect costs O(connected clients), and a wave of disconnects (a
network blip, a process draining, ping timeouts on a busy process) costs O(N²) and stalls
the process for seconds at 5,000 phones (measured with py-spy in bench/locations: 27 % of the
server's time in ``basic_disconnect``).

``install()`` wraps ``BaseManager.basic_enter_room`` / ``basic_leave_room`` to keep
``sid → rooms`` per namespace, and answers ``basic_disconnect`` and ``get_rooms`` from it. The
room data itself is python-socketio's, unchanged; every change to it goes through those two
methods (``connect`` and ``basic_close_room`` call them too), in the pinned version
(python-socketio 5.18) and the managers built on it (Redis).
"""

from __future__ import annotations

from socketio.base_manager import BaseManager

__all__ = ["install"]

_INDEX = "_goodmob_rooms_of"  # manager attribute: {(namespace, sid): set of rooms}


def _index(manager) -> dict:
    index = manager.__dict__.get(_INDEX)
    if index is None:
        index = manager.__dict__[_INDEX] = {}
    return index


def install() -> None:
    """Patch ``BaseManager`` once (idempotent)."""
    if getattr(BaseManager, "_goodmob_indexed", False):
        return
    enter = BaseManager.basic_enter_room
    leave = BaseManager.basic_leave_room

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        enter(self, sid, namespace, room, eio_sid=eio_sid)
        _index(self).setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid, namespace, room):
        leave(self, sid, namespace, room)
        index = _index(self)
        rooms = index.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del index[(namespace, sid)]

    def basic_disconnect(self, sid, namespace, **kwargs):
        if namespace not in self.rooms:
            _index(self).pop((namespace, sid), None)
            return
        for room in list(_index(self).get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        _index(self).pop((namespace, sid), None)
        if sid in self.callbacks:
            del self.callbacks[sid]
        for pending in (self.pending_connect, self.pending_disconnect):
            if namespace in pending and sid in pending[namespace]:
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def get_rooms(self, sid, namespace):
        return [r for r in _index(self).get((namespace, sid), ()) if r is not None]

    BaseManager.basic_enter_room = basic_enter_room
    BaseManager.basic_leave_room = basic_leave_room
    BaseManager.basic_disconnect = basic_disconnect
    BaseManager.get_rooms = get_rooms
    BaseManager._goodmob_indexed = True
