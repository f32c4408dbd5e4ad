"""An index of each client's rooms for python-socketio's room manager.

python-socketio keeps ``rooms[namespace][room] = {sid: eio_sid}`` and nothing from a client to
its rooms, so a disconnect scans every room of the namespace, and every connected client has a
room of its own: each disconnect costs O(connected clients), and a wave of disconnects (a
network blip, a process draining, ping timeouts on a busy process) costs O(N²) and stalls
the process for seconds at 5,000 phones (measured with py-spy in bench/locations: 27 % of the
server's time in ``basic_disconnect``).

``install()`` also replaces ``Manager.emit`` (events without an ack callback, which are the
same bytes for every recipient): the event is encoded once and written straight to each
recipient's WebSocket where that keeps the connection's order (``wsfast.send_now``), else
queued as before; the fan-out of refreshed counters and maps (``BULK_EVENTS``) yields to
other greenlets every ``_CHUNK`` recipients.

``install()`` wraps ``BaseManager.basic_enter_room`` / ``basic_leave_room`` to keep
``sid → rooms`` per namespace, and answers ``basic_disconnect`` and ``get_rooms`` from it. The
room data itself is python-socketio's, unchanged; every change to it goes through those two
methods (``connect`` and ``basic_close_room`` call them too), in the pinned version
(python-socketio 5.18) and the managers built on it (Redis).
"""

from __future__ import annotations

from engineio import packet as eio_packet
from socketio import packet
from socketio.base_manager import BaseManager
from socketio.manager import Manager

from server import wsfast
from server.infra import metrics

__all__ = ["BULK_EVENTS", "install", "send_local", "use_direct_writes"]

#: Events whose fan-out to a room yields to the other greenlets every ``_CHUNK`` recipients:
#: counters and maps, refreshed every few seconds. Sending one message to 5,000 sockets
#: takes a process about 0.15 s; in one go it would delay every location ack that arrives
#: meanwhile by up to that much. Phase changes and prompts (time-critical) go in one go.
BULK_EVENTS = frozenset({"stats", "density", "tasks"})
_CHUNK = 100

_INDEX = "_goodmob_rooms_of"  # manager attribute: {(namespace, sid): set of rooms}
_DIRECT = {"on": True}  # DIRECT_WS_WRITES (use_direct_writes)


def use_direct_writes(enabled: bool) -> None:
    """Room events through ``_send`` (encoded once, written straight to idle WebSockets: the
    default) or, when ``enabled`` is false, through python-socketio's stock ``Manager.emit``
    (the DIRECT_WS_WRITES experiment switch: bench/sync.py measures both side by side)."""
    _DIRECT["on"] = bool(enabled)


def _index(manager) -> dict:
    index = manager.__dict__.get(_INDEX)
    if index is None:
        index = manager.__dict__[_INDEX] = {}
    return index


def _frames(server, namespace: str, event: str, args: list) -> list:
    """One Socket.IO event, encoded once, as the Engine.IO frames to send to each client."""
    encoded = server.packet_class(packet.EVENT, namespace=namespace, data=[event, *args]).encode()
    return [
        eio_packet.Packet(eio_packet.MESSAGE, p)
        for p in (encoded if isinstance(encoded, list) else [encoded])
    ]


def _send(server, frames: list, eio_sids, chunk: int = _CHUNK) -> None:
    """``frames`` to each client, written straight to its WebSocket where that keeps its
    order (``wsfast.send_now``), else through Engine.IO's queue; yielding every ``chunk``
    recipients (0: in one go)."""
    frame = _text_frame(frames)
    sockets = server.eio.sockets if frame is not None else {}
    send_now = wsfast.send_now
    direct = queued = 0
    for sent, eio_sid in enumerate(eio_sids, 1):
        eio_socket = sockets.get(eio_sid)
        if eio_socket is not None and send_now(eio_socket, frame):
            direct += 1
        else:
            queued += len(frames)
            for f in frames:
                server._send_eio_packet(eio_sid, f)
        if chunk and sent % chunk == 0:
            server.sleep(0)  # let waiting acks through
    metrics.frames_sent(direct, queued)


def _text_frame(frames: list) -> bytes | None:
    """The WebSocket frame of a one-frame text event (None for binary attachments)."""
    if len(frames) != 1:
        return None
    text = frames[0].encode()
    return wsfast.text_frame(text) if isinstance(text, str) else None


def send_local(server, namespace: str, event: str, data, eio_sids) -> None:
    """``event`` to the given clients of this process only (never through the message
    queue), encoded once, yielding every ``_CHUNK`` recipients like ``BULK_EVENTS``."""
    _send(server, _frames(server, namespace, event, [data]), list(eio_sids))


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

    emit = Manager.emit

    def room_emit(self, event, data, namespace, room=None, skip_sid=None, callback=None,
                  to=None, **kwargs):  # fmt: skip
        if callback or not _DIRECT["on"]:
            return emit(self, event, data, namespace, room=room, skip_sid=skip_sid,
                        callback=callback, to=to, **kwargs)  # fmt: skip
        room = to or room
        if namespace not in self.rooms:
            return None
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        targets = [e for s, e in self.get_participants(namespace, room) if s not in skip]
        chunk = _CHUNK if event in BULK_EVENTS else 0
        _send(self.server, _frames(self.server, namespace, event, args), targets, chunk)
        return None

    Manager.emit = room_emit
    BaseManager.basic_enter_room = basic_enter_room
    BaseManager.basic_leave_room = basic_leave_room
    BaseManager.basic_disconnect = basic_disconnect
    BaseManager.get_rooms = get_rooms
    BaseManager._goodmob_indexed = True
