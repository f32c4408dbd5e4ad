"""The client manager python-socketio keeps rooms in, with an index of each client's rooms.

python-socketio keeps ``rooms[namespace][room] = {sid: eio_sid}`` and nothing from a client to
its rooms, so a disconnect scans every room of the namespace, and every connected client has a
room of its own: each disconnect costs O(connected clients), and a wave of disconnects (a
network blip, a process draining, ping timeouts on a busy process) costs O(N²) and stalls
the process for seconds at 5,000 phones (measured with py-spy in bench/locations: 27 % of the
server's time in ``basic_disconnect``).

``IndexedManager`` (a ``socketio.Manager``) and ``IndexedRedisManager`` (a
``socketio.RedisManager`` with the same methods) are handed to Flask-SocketIO as its
``client_manager`` by the app factory (``client_manager()`` picks one from the settings).
They keep ``sid → rooms`` per namespace in ``basic_enter_room`` / ``basic_leave_room`` and
answer ``basic_disconnect`` and ``get_rooms`` from it. The room data itself is
python-socketio's, unchanged; every change to it goes through those two methods
(``connect`` and ``basic_close_room`` call them too) in the version these were tested with
(``wsfast.TESTED_WITH``). When the installed python-socketio, python-engineio or
Flask-SocketIO differ from it, ``client_manager()`` hands out the stock managers instead
(``wsfast.check`` logs that once, and ``goodmob_wsfast_enabled{part="sockets"}`` is 0).

Their ``emit`` (events without an ack callback, which are the same bytes for every
recipient) encodes the event once and writes it straight to each recipient's WebSocket
where that keeps the connection's order (``wsfast.send_now``), else queues it as before;
the fan-out of refreshed counters and maps (``BULK_EVENTS``) yields to other greenlets
every ``_CHUNK`` recipients. With ``direct_writes`` false (``DIRECT_WS_WRITES=false``) it
is python-socketio's own ``Manager.emit``. In ``IndexedRedisManager`` this ``emit`` sits
below ``PubSubManager`` in the method order (``RedisManager, PubSubManager,
IndexedManager, Manager``): the pub/sub manager publishes as usual, and its local
delivery (``super().emit``, for this process's clients and for messages from the queue)
is this one.
"""

from __future__ import annotations

import socketio
from engineio import packet as eio_packet
from socketio import packet

from server.infra import metrics
from server.realtime import wsfast

__all__ = ["BULK_EVENTS", "IndexedManager", "IndexedRedisManager", "client_manager", "send_local"]

#: Events whose fan-out to a room yields to the other greenlets every ``_CHUNK`` recipients:
#: counters and maps, refreshed every few seconds. Sending one message to 5,000 sockets
#: takes a process about 0.15 s; in one go it would delay every location ack that arrives
#: meanwhile by up to that much. Phase changes and prompts (time-critical) go in one go.
BULK_EVENTS = frozenset({"stats", "density", "tasks"})
_CHUNK = 100


class IndexedManager(socketio.Manager):
    """python-socketio's in-process manager with a per-client room index and the
    encoded-once, direct-write ``emit`` (see the module's docstring)."""

    def __init__(self) -> None:  # (PubSubManager calls it without arguments)
        super().__init__()
        self.rooms_of: dict = {}  # (namespace, sid) → set of rooms
        # DIRECT_WS_WRITES: room events through ``_send`` (encoded once, written straight
        # to idle WebSockets); false: python-socketio's stock ``Manager.emit`` (an
        # experiment switch: bench/sync.py measures both side by side)
        self.direct_writes = True

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        rooms = self.rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self.rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid, namespace, **kwargs):
        if namespace not in self.rooms:
            self.rooms_of.pop((namespace, sid), None)
            return
        for room in list(self.rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.rooms_of.pop((namespace, sid), None)
        if sid in self.callbacks:
            del self.callbacks[sid]
        for pending in (self.pending_connect, self.pending_disconnect):
            if namespace in pending and sid in pending[namespace]:
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def get_rooms(self, sid, namespace):
        return [r for r in self.rooms_of.get((namespace, sid), ()) if r is not None]

    def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None,
             to=None, **kwargs):  # fmt: skip
        if callback or not self.direct_writes:
            return super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
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


class IndexedRedisManager(socketio.RedisManager, IndexedManager):
    """python-socketio's Redis manager (several processes share rooms through Redis' pub/sub)
    with ``IndexedManager``'s index and local ``emit``."""


def client_manager(settings, fast: bool = True) -> socketio.Manager:
    """The client manager for ``socketio.init_app(client_manager=...)``: Redis' when
    ``REDIS_URL`` is set, with ``REDIS_CHANNEL`` and not write-only (as Flask-SocketIO
    makes it from ``message_queue`` and ``channel`` for an app), else the in-process one;
    indexed when ``fast`` (``wsfast.check().sockets``), python-socketio's own otherwise."""
    url = settings.redis_url
    if url:
        # (Flask-SocketIO picks RedisManager for redis:// and rediss://; the settings allow
        # unix:// too, which RedisManager reads as a Redis socket)
        redis_class = IndexedRedisManager if fast else socketio.RedisManager
        manager = redis_class(url, channel=settings.redis_channel, write_only=False)
    else:
        manager = IndexedManager() if fast else socketio.Manager()
    if fast:
        manager.direct_writes = bool(settings.direct_ws_writes)
    return manager


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
