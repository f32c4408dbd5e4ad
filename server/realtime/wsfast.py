"""Faster WebSocket frames (gevent-websocket) and Socket.IO packets (python-socketio).

gevent-websocket unmasks every client frame with a Python loop over its bytes and checks
text frames with a pure-Python UTF-8 state machine (twice: per frame, then per message),
unless the optional C package ``wsaccel`` is installed, which helps with the second only.
At thousands of small messages a second that was a measurable share of a server process
(py-spy in bench/locations: about 4 %). ``install()`` replaces both with C-speed
equivalents from the standard library: the mask is XORed as one big integer, and UTF-8 is
checked by Python's incremental decoder. Same results, same errors. Frames are written with
one ``send`` where the whole frame fits, one at a time per connection (``FrameWriter``).

Size: gevent-websocket reads a whole frame (allocating its declared length up front) before
anyone looks at its size, so Engine.IO's ``max_http_buffer_size`` only applied once a frame
declaring 256 MiB was in memory (issue 15, finding 4). ``read_message`` here refuses a data
frame whose declared length, added to the fragments of its message already read, exceeds
the Engine.IO server's ``max_http_buffer_size`` (``SOCKET_MAX_MESSAGE_BYTES``), before it
reads one byte of its payload, and ``receive`` closes that connection with 1009 (message too
big). Control frames are at most 125 bytes (gevent-websocket checks that).

Fan-out: ``send_now`` writes one pre-built frame (``text_frame``) straight to a connection,
past Engine.IO's per-connection queue and writer task, when that keeps the connection's
order (server/realtime/rooms.py sends every room event this way).

Socket.IO packets: python-socketio checks every outgoing payload for binary parts with a
recursion that builds a list and a ``reduce`` per level (``data_is_binary`` here does the
same check with plain loops), and encodes and decodes JSON with the standard library;
``SocketJSON`` uses orjson, and the standard library for anything orjson refuses (NaN
literals, huge integers, types it does not know), so what is accepted, refused or written
stays as before, only faster.

Hooks first, patches only where there is none. The app factory hands these to
Flask-SocketIO's ``init_app``: ``json=SocketJSON`` (python-socketio's hook for the JSON
module of packets, Engine.IO's handshake and the Redis messages) and
``serializer=packet_class(fast)``, a ``Packet`` subclass that turns unreadable JSON into
:class:`InvalidPacketJSON` (``guard_packets``) and, when ``fast``, checks for binary parts
with ``data_is_binary``. What has no hook stays a patch, applied by :func:`install` only
to the versions it was written against (``TESTED_WITH``, the pins of requirements.txt):
gevent-websocket's frame reading and writing (the ``frames`` part) and Engine.IO's WebSocket
handler that lets ``send_now`` find a connection (the ``sockets`` part, together with
server/realtime/rooms.py's client managers and ``data_is_binary``). :func:`check`, called once
by the app factory, compares the installed versions; a part whose packages differ falls back to the
stock path, with one warning in the log and ``goodmob_wsfast_enabled{part=...}`` 0 on
/metrics. (Without the ``frames`` part a WebSocket frame is refused by its size only once
Engine.IO has it, as gevent-websocket reads it whole first.)
"""

from __future__ import annotations

import codecs
import importlib.metadata
import json as _stdlib_json
import logging
import re
import struct
from dataclasses import dataclass

import gevent
import gevent.socket
import orjson
from gevent.lock import Semaphore
from socketio import packet

from server.infra import metrics
from server.infra.errors import error_body

# gevent-websocket and Engine.IO internals are imported inside the functions that use them:
# only the real server (gevent, `python -m server`) needs them, never the test client.

__all__ = [
    "TESTED_WITH",
    "Fast",
    "FrameWriter",
    "InvalidPacketJSON",
    "MessageTooBig",
    "SocketJSON",
    "SocketPacket",
    "Utf8Validator",
    "check",
    "data_is_binary",
    "guard_packets",
    "install",
    "installed_versions",
    "mask_payload",
    "packet_class",
    "read_message",
    "receive",
    "send_now",
    "text_frame",
]

log = logging.getLogger("goodmob.wsfast")

#: The versions the patches and client managers were written against and tested with (the
#: pins of requirements.txt), by the part of this module that depends on them.
TESTED_WITH = {
    "python-socketio": "5.18.1",  # sockets: server/realtime/rooms.py's managers, data_is_binary
    "python-engineio": "4.15.1",  # sockets: Socket._websocket_handler (send_now)
    "Flask-SocketIO": "5.7.0",  # sockets: how init_app builds the server around them
    "gevent-websocket": "0.10.1",  # frames: Header, Utf8Validator, WebSocket, Stream
}
_PARTS = {
    "sockets": ("python-socketio", "python-engineio", "Flask-SocketIO"),
    "frames": ("gevent-websocket",),
}


@dataclass(frozen=True)
class Fast:
    """Which parts run the fast path (True) or the libraries' stock one (False)."""

    sockets: bool = True
    frames: bool = True


def installed_versions() -> dict[str, str | None]:
    """The installed version of each package of ``TESTED_WITH`` (None: not installed)."""
    found: dict[str, str | None] = {}
    for name in TESTED_WITH:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def check() -> Fast:
    """Compare the installed versions with ``TESTED_WITH``: a part whose packages all match
    runs fast, any other falls back to the stock path; one warning names what differs, and
    ``goodmob_wsfast_enabled`` says which parts run (1) or fell back (0)."""
    installed = installed_versions()
    differ = {n: v for n, v in installed.items() if v != TESTED_WITH[n]}
    ok = {part: not any(n in differ for n in names) for part, names in _PARTS.items()}
    for part, on in ok.items():
        metrics.wsfast_enabled(part, on)
    if differ:
        log.warning(
            "wsfast: stock path for %s: installed %s, tested with %s",
            ", ".join(part for part, on in ok.items() if not on),
            ", ".join(f"{n} {v or 'missing'}" for n, v in differ.items()),
            ", ".join(f"{n} {TESTED_WITH[n]}" for n in differ),
        )
    return Fast(**ok)


def mask_payload(self, payload) -> bytearray:
    """``Header.mask_payload``: XOR ``payload`` with the frame's 4-byte mask, repeated."""
    n = self.length
    rest = bytearray(payload[n:])  # (the original leaves bytes past the length as they are)
    if n == 0:
        return rest
    key = (bytes(self.mask) * (n // 4 + 1))[:n]
    data = int.from_bytes(bytes(payload[:n]), "big") ^ int.from_bytes(key, "big")
    return bytearray(data.to_bytes(n, "big")) + rest


class MessageTooBig(Exception):
    """A client's message (one frame or the sum of its fragments) is declared larger than the
    limit: its connection is closed with 1009 before the payload is read."""


# The largest message a client may send (bytes); ``install`` sets it from the Engine.IO
# server's ``max_http_buffer_size``. None: no limit (gevent-websocket's own behaviour).
_max_message_bytes: int | None = None


def read_message(self):
    """``WebSocket.read_message`` as gevent-websocket has it, except that a data frame's
    declared length is checked, with the fragments before it, against the message limit
    before its payload is read (``MessageTooBig``)."""
    from geventwebsocket.exceptions import ProtocolError, WebSocketError
    from geventwebsocket.websocket import Header

    limit = _max_message_bytes
    opcode = None
    message = bytearray()
    while True:
        header = Header.decode_header(self.stream)
        if header.flags:
            raise ProtocolError
        f_opcode = header.opcode
        if (
            limit is not None
            and f_opcode in (self.OPCODE_TEXT, self.OPCODE_BINARY, self.OPCODE_CONTINUATION)
            and len(message) + header.length > limit
        ):
            raise MessageTooBig(f"{len(message) + header.length} bytes declared, limit {limit}")
        payload = b""
        if header.length:
            try:
                payload = self.raw_read(header.length)
            except Exception:  # (as gevent-websocket: a broken read is an unexpected EOF)
                payload = b""
            if len(payload) != header.length:
                raise WebSocketError("Unexpected EOF reading frame payload")
            if header.mask:
                payload = header.unmask_payload(payload)
        if f_opcode in (self.OPCODE_TEXT, self.OPCODE_BINARY):
            if opcode:
                raise ProtocolError(
                    f"The opcode in non-fin frame is expected to be zero, got {f_opcode!r}"
                )
            self.utf8validator.reset()
            self.utf8validate_last = (True, True, 0, 0)
            opcode = f_opcode
        elif f_opcode == self.OPCODE_CONTINUATION:
            if not opcode:
                raise ProtocolError("Unexpected frame with opcode=0")
        elif f_opcode == self.OPCODE_PING:
            self.handle_ping(header, payload)
            continue
        elif f_opcode == self.OPCODE_PONG:
            self.handle_pong(header, payload)
            continue
        elif f_opcode == self.OPCODE_CLOSE:
            self.handle_close(header, payload)
            return None
        else:
            raise ProtocolError(f"Unexpected opcode={f_opcode!r}")
        if opcode == self.OPCODE_TEXT:
            self.validate_utf8(payload)
        message += payload
        if header.fin:
            break
    if opcode == self.OPCODE_TEXT:
        self.validate_utf8(message)
        return self._decode_bytes(message)
    return message


def receive(self):
    """``WebSocket.receive``, plus: a message over the limit closes with 1009 (None)."""
    from geventwebsocket.exceptions import ProtocolError, WebSocketError
    from geventwebsocket.websocket import MSG_ALREADY_CLOSED, MSG_CLOSED

    if self.closed:
        self.current_app.on_close(MSG_ALREADY_CLOSED)
        raise WebSocketError(MSG_ALREADY_CLOSED)
    try:
        return self.read_message()
    except MessageTooBig:
        _close_with(self, 1009, b"message too big")
    except UnicodeError:
        self.close(1007)
    except ProtocolError:
        self.close(1002)
    except OSError:  # (socket.error, as gevent-websocket catches)
        self.close()
        self.current_app.on_close(MSG_CLOSED)
    return None


def _close_with(self, code: int, reason: bytes) -> None:
    """``WebSocket.close``, with the status code in the close frame (gevent-websocket's
    ``close`` sends only the reason, so a client sees no code)."""
    from geventwebsocket.exceptions import WebSocketError

    try:
        self.send_frame(struct.pack("!H", code) + reason, self.OPCODE_CLOSE)
    except WebSocketError:
        pass  # the peer is gone: the socket is closed anyway
    finally:
        self.closed = True
        self.stream = self.raw_write = self.raw_read = self.environ = None


class Utf8Validator:
    """gevent-websocket's incremental validator, on Python's incremental UTF-8 decoder.

    ``validate(bytes)`` returns ``(valid, ends_on_code_point, bytes_seen, total_seen)`` as the
    original does; after an invalid byte every later call is invalid too."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._total = 0
        self._failed = False

    def validate(self, payload) -> tuple[bool, bool, int, int]:
        if self._failed:
            return False, False, 0, self._total
        try:
            self._decoder.decode(payload, final=False)
        except UnicodeDecodeError as exc:
            self._failed = True
            self._total += exc.start
            return False, False, exc.start, self._total
        self._total += len(payload)
        ends = not self._decoder.getstate()[0]
        return True, ends, len(payload), self._total


class FrameWriter:
    """A stream's ``write``: a whole frame with one ``send`` where it fits (gevent's
    ``sendall`` asks the kernel for the socket's buffer size, a system call, before every
    write, which doubled the system calls of each small frame sent), one frame at a time
    (``lock``), so that a frame ``send_now`` writes from outside the connection's own
    writer never lands inside one that writer is part-way through."""

    __slots__ = ("_send", "_sendall", "raw", "lock")

    def __init__(self, sock) -> None:
        self._send, self._sendall = sock.send, sock.sendall
        # gevent's non-blocking socket underneath, for ``send_now``; plain TCP only (past a
        # TLS socket it would write cleartext into the encrypted stream)
        self.raw = sock._sock if type(sock) is gevent.socket.socket else None
        self.lock = Semaphore()

    def __call__(self, data) -> None:
        with self.lock:
            sent = self._send(data)
            if sent < len(data):
                self._sendall(memoryview(data)[sent:])

    def finish(self, rest: memoryview) -> None:
        """The rest of a frame ``send_now`` began, then the lock it took is let go."""
        try:
            self._sendall(rest)
        except OSError:
            pass  # the peer is gone: the connection's reader and writer see it and close
        finally:
            self.lock.release()


def _stream_init(self, handler) -> None:
    self.handler = handler
    self.read = handler.rfile.read
    self.write = FrameWriter(handler.socket)


def text_frame(text: str) -> bytes:
    """A whole unmasked WebSocket text frame carrying ``text``, as gevent-websocket's
    ``send`` writes it (server frames are never masked, so the bytes are the same for every
    recipient and one frame can go to thousands of connections)."""
    from geventwebsocket.websocket import Header, WebSocket

    payload = text.encode()
    return bytes(Header.encode_header(True, WebSocket.OPCODE_TEXT, b"", len(payload), 0)) + payload


def send_now(eio_socket, frame: bytes) -> bool:
    """Write ``frame`` (``text_frame``) straight to the WebSocket of an Engine.IO socket,
    skipping its queue and writer task, and say whether it did.

    Engine.IO queues each packet and wakes a writer task per connection to send it: at a
    prompt to 5,000 phones that queueing and waking costs more than the system call that
    sends (py-spy in bench/sync). Writing here keeps the connection's order: it is done only
    when the queue is empty and no frame of this connection is being written (a writer
    part-way through a frame holds the lock); it never waits: a full socket buffer (nothing
    written) answers False and the caller queues the packet as usual; a frame written in
    part is finished by a task of its own, holding the lock so nothing can come between.
    Sockets on long-polling, upgrading, closing or made without ``install()`` answer False.
    """
    ws = getattr(eio_socket, "_goodmob_ws", None)
    if ws is None or ws.closed or eio_socket.closed or eio_socket.upgrading:
        return False
    if eio_socket.queue.qsize():
        return False
    write = ws.raw_write
    if type(write) is not FrameWriter or write.raw is None or not write.lock.acquire(False):
        return False
    try:
        sent = write.raw.send(frame)
    except BlockingIOError:
        sent = 0
    except OSError:
        write.lock.release()
        return False
    if sent == len(frame):
        write.lock.release()
        return True
    if sent == 0:
        write.lock.release()
        return False
    gevent.spawn(write.finish, memoryview(frame)[sent:])
    return True


def _keep_websocket(handler):
    """Wrap Engine.IO's WebSocket handler so its socket knows its gevent-websocket
    connection (``send_now``) for as long as the handler runs."""

    def _websocket_handler(self, ws):
        self._goodmob_ws = getattr(ws, "_sock", None)  # engine.io's wrapper around it
        try:
            return handler(self, ws)
        finally:
            self._goodmob_ws = None

    _websocket_handler._goodmob_original = handler
    return _websocket_handler


def data_is_binary(cls, data) -> bool:
    """``socketio.packet.Packet.data_is_binary``: bytes anywhere in lists and dict values."""
    if isinstance(data, (bytes, bytearray)):
        return True
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        items = data.values()
    else:
        return False
    for item in items:
        if isinstance(item, (bytes, bytearray, list, dict)) and data_is_binary(cls, item):
            return True
    return False


_LONG_DIGITS = re.compile(r"\d{19}")


class SocketJSON:
    """The ``json`` module python-socketio encodes and decodes packets with (``dumps`` and
    ``loads``): orjson, falling back to engine.io's standard-library wrapper (which also
    refuses integers of more than 100 digits) for whatever orjson will not take."""

    @staticmethod
    def dumps(obj, *args, **kwargs) -> str:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            kwargs.setdefault("separators", (",", ":"))
            return _stdlib_json.dumps(obj, *args, **kwargs)

    @staticmethod
    def loads(s, *args, **kwargs):
        # orjson reads integers past 64 bits as floats; engine.io reads them exactly (and
        # refuses those of more than 100 digits): text with such digit runs goes there.
        if isinstance(s, (bytes, bytearray)):
            s = s.decode()
        if not _LONG_DIGITS.search(s):
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                pass
        from engineio import json as engineio_json

        return _strict_loads(engineio_json.loads, s, *args, **kwargs)


class InvalidPacketJSON(ValueError):
    """A Socket.IO packet whose JSON cannot be read: malformed, or nested deeper than the
    decoder goes (``[[[[…`` a thousand deep raised RecursionError in the standard library,
    a 500-style traceback per packet). ``Packet.decode`` (see :func:`guard_packets`) adds
    the packet's type, namespace and ack id, which come before the JSON."""

    packet_type: int | None = None
    namespace: str | None = None
    id: int | None = None


def _strict_loads(loads, s, *args, **kwargs):
    try:
        return loads(s, *args, **kwargs)
    except RecursionError:
        raise InvalidPacketJSON("it is nested too deeply") from None
    except ValueError as exc:
        raise InvalidPacketJSON(str(exc) or "it cannot be read") from None


class SocketPacket(packet.Packet):
    """python-socketio's packet (``serializer=`` of ``init_app``) with ``SocketJSON``, whose
    ``decode`` raises :class:`InvalidPacketJSON` with the packet's type, namespace and ack
    id (read before its JSON) for JSON it cannot read (see :func:`guard_packets`)."""

    json = SocketJSON

    def decode(self, encoded_packet):
        try:
            return super().decode(encoded_packet)
        except RecursionError:
            exc = InvalidPacketJSON("it is nested too deeply")
        except InvalidPacketJSON as raised:
            exc = raised
        exc.packet_type, exc.namespace, exc.id = self.packet_type, self.namespace, self.id
        raise exc


class _FastSocketPacket(SocketPacket):
    """``SocketPacket`` that checks for binary parts with plain loops (``data_is_binary``)."""

    data_is_binary = classmethod(data_is_binary)


def packet_class(fast: bool = True) -> type[SocketPacket]:
    """The ``serializer`` for ``init_app``: with ``data_is_binary`` when ``fast``
    (``check().sockets``), python-socketio's own check otherwise."""
    return _FastSocketPacket if fast else SocketPacket


def guard_packets(server) -> None:
    """Answer a Socket.IO packet whose JSON cannot be read with a clean refusal instead of a
    logged traceback: an event that asked for an ack gets ``{"error": {"code":
    "invalid_json", …}}`` as its ack, a connect gets a CONNECT_ERROR with that code, anything
    else is dropped; one warning line is logged. Called by ``create_app`` for every server
    (the real one and the test client's), whose ``packet_class`` is a :class:`SocketPacket`;
    it wraps this server's Engine.IO message handler (nothing global)."""
    sock_log = logging.getLogger("goodmob.socket")
    handle = server._handle_eio_message

    def guarded(eio_sid, data):
        try:
            return handle(eio_sid, data)
        except InvalidPacketJSON as exc:
            namespace = exc.namespace or "/"
            sock_log.warning("socket packet refused: invalid_json (%s) on %s", exc, namespace)
            body = error_body("invalid_json", f"The message is not valid JSON: {exc}.")
            if exc.packet_type == packet.EVENT and exc.id is not None:
                if server.manager.sid_from_eio_sid(eio_sid, namespace):
                    ack = server.packet_class(
                        packet.ACK, namespace=namespace, data=[body], id=exc.id
                    )
                    server._send_packet(eio_sid, ack)
            elif exc.packet_type == packet.CONNECT:
                server._send_packet(
                    eio_sid,
                    server.packet_class(
                        packet.CONNECT_ERROR,
                        namespace=namespace,
                        data={"message": "invalid_json", "data": body},
                    ),
                )

    server._handle_eio_message = guarded  # the Flask test client calls it by name
    server.eio.on("message", guarded)  # engine.io took the bound method when it was made


def install(server, fast: Fast) -> None:
    """For ``python -m server``: ``server``'s Engine.IO ``max_http_buffer_size`` becomes the
    limit of a client's WebSocket message, and the parts ``fast`` allows (:func:`check`)
    are patched, once (idempotent): ``frames``, gevent-websocket's frame reading and
    writing; ``sockets``, Engine.IO's WebSocket handler (for ``send_now``)."""
    global _max_message_bytes

    _max_message_bytes = server.eio.max_http_buffer_size
    if fast.frames:
        _patch_frames()
    if fast.sockets:
        _patch_websocket_handler()


def _patch_frames() -> None:
    from geventwebsocket import websocket

    if getattr(websocket, "_goodmob_fast", False):
        return
    websocket.Header.mask_payload = mask_payload
    websocket.Header.unmask_payload = mask_payload
    websocket.Utf8Validator = Utf8Validator
    websocket.WebSocket.read_message = read_message
    websocket.WebSocket.receive = receive
    websocket.Stream.__init__ = _stream_init
    websocket._goodmob_fast = True


def _patch_websocket_handler() -> None:
    from engineio import socket as eio_socket

    handler = eio_socket.Socket._websocket_handler
    if not hasattr(handler, "_goodmob_original"):
        eio_socket.Socket._websocket_handler = _keep_websocket(handler)
