"""Faster WebSocket frame reading for gevent-websocket (the server's WebSocket layer).

gevent-websocket unmasks every client frame with a Python loop over its bytes and checks
text frames with a pure-Python UTF-8 state machine (twice: per frame, then per message),
unless the optional C package ``wsaccel`` is installed, which helps with the second only.
At thousands of small messages a second that was a measurable share of a server process
(py-spy in bench/locations: about 4 %). ``install()`` replaces both with C-speed
equivalents from the standard library: the mask is XORed as one big integer, and UTF-8 is
checked by Python's incremental decoder. Same results, same errors. Frames are written with
one ``send`` where the whole frame fits (``writer``).
"""

from __future__ import annotations

import codecs

__all__ = ["Utf8Validator", "install", "mask_payload", "writer"]


def mask_payload(self, payload) -> bytearray:
    """``Header.mask_payload``: XOR ``payload`` with the frame's 4-byte mask, repeated."""
    n = self.length
    rest = bytearray(payload[n:])  # (the original leaves bytes past the length as they are)
    if n == 0:
        return rest
    key = (bytes(self.mask) * (n // 4 + 1))[:n]
    data = int.from_bytes(bytes(payload[:n]), "big") ^ int.from_bytes(key, "big")
    return bytearray(data.to_bytes(n, "big")) + rest


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


def writer(sock):
    """A ``sendall`` for ``sock`` that tries one ``send`` first: gevent's ``sendall`` asks the
    kernel for the socket's buffer size (a system call) before every write, which doubled
    the system calls of each small frame sent."""
    send, sendall = sock.send, sock.sendall

    def write(data) -> None:
        sent = send(data)
        if sent < len(data):
            sendall(memoryview(data)[sent:])

    return write


def _stream_init(self, handler) -> None:
    self.handler = handler
    self.read = handler.rfile.read
    self.write = writer(handler.socket)


def install() -> None:
    """Patch gevent-websocket once (idempotent)."""
    from geventwebsocket import websocket

    if getattr(websocket, "_goodmob_fast", False):
        return
    websocket.Header.mask_payload = mask_payload
    websocket.Header.unmask_payload = mask_payload
    websocket.Utf8Validator = Utf8Validator
    websocket.Stream.__init__ = _stream_init
    websocket._goodmob_fast = True
