"""What the server reads from the network, bounded, before the application sees a request.

gevent's WSGI server (``pywsgi``) waits as long as a client likes for a request's headers
and hands the application a body still to be read from the socket: a view reads it when it
asks for it, after the auth decorator has already taken a database connection, so 40
never-finished bodies held the whole PostgreSQL pool (issue 15, finding 5). The handler
class made here (``handler_class``, used by ``python -m server``):

- **Headers under a deadline.** From a new connection (or the first byte of a kept-alive
  connection's next request) to the end of the headers: ``HTTP_HEADER_TIMEOUT_S``. A
  kept-alive connection may wait ``HTTP_IDLE_TIMEOUT_S`` for its next request. Past either,
  the connection is closed (with 408 when part of a request came).
- **The whole body first.** A request's body (``Content-Length`` or chunked) is read whole
  into memory, within ``HTTP_BODY_TIMEOUT_S`` in all, before the application runs, and
  bounded: ``MAX_BODY_BYTES``, or ``SOCKET_MAX_MESSAGE_BYTES`` under ``/socket.io/``
  (Engine.IO long-polling). A declared length over the bound is refused before one byte is
  read; a chunked body as soon as it passes it. Answers (JSON, then the connection is
  closed): 408 ``request_timeout``, 413 ``payload_too_large``. The application then reads
  the body from memory, so no database connection ever waits on a client's network.
- **WebSockets per address.** At most ``SOCKET_MAX_PER_ADDRESS`` WebSockets from one client
  address (``PROXY_HOPS`` and IPv6 /64 as the rate limits count them) are open at once in
  this process; one more upgrade gets 429 ``too_many_sockets`` before it is upgraded. The
  count is per process: with ``WORKERS=n`` one address may hold up to n times the cap
  (nginx's ``limit_conn`` in deploy/nginx.conf caps the total).

None of these deadlines applies once a connection is a WebSocket: a phone's socket lives for
the whole mob (Engine.IO's ping timeout closes dead ones). What a WebSocket frame may declare
is bounded in server/realtime/wsfast.py.
"""

from __future__ import annotations

import json
import logging
from io import BytesIO

import gevent
from gevent.pywsgi import Input

from config import Settings
from server.infra import security
from server.infra.ratelimit import address_of

__all__ = ["handler_class", "SocketCounter"]

_log = logging.getLogger("goodmob.wire")
_SOCKET_PATH = "/socket.io"


class _ReadTimedOut(TimeoutError):
    """A client did not send its request (headers or body) in time."""


class SocketCounter:
    """Open WebSockets per client address in this process."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}

    def acquire(self, address: str) -> bool:
        """Count one more socket of ``address``, unless it already holds ``cap``."""
        n = self._open.get(address, 0)
        if n >= self.cap:
            return False
        self._open[address] = n + 1
        return True

    def release(self, address: str) -> None:
        n = self._open.get(address, 0) - 1
        if n > 0:
            self._open[address] = n
        else:
            self._open.pop(address, None)

    def __len__(self) -> int:
        return sum(self._open.values())


def _json_error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _raw_response(status: str, code: str, message: str) -> bytes:
    """A whole HTTP response for answers given before a request was parsed."""
    body = _json_error(code, message)
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def handler_class(settings: Settings):
    """The gevent handler class for ``pywsgi.WSGIServer(handler_class=...)``: the
    WebSocket-aware access-log handler (server/infra/security.py) with the bounds above."""
    base = security.access_log_handler()
    header_s = settings.http_header_timeout_s
    body_s = settings.http_body_timeout_s
    idle_s = settings.http_idle_timeout_s
    hops = settings.proxy_hops
    sockets = SocketCounter(settings.socket_max_per_address)
    header_timeout = _raw_response(
        "408 Request Timeout",
        "request_timeout",
        f"The request's headers did not arrive within {header_s:g} s.",
    )

    class BoundedHandler(base):
        socket_counter = sockets
        _requests_read = 0

        def handle_one_request(self):
            if self._requests_read:
                # kept alive: wait (at most idle_s) for the first byte of the next request
                try:
                    with gevent.Timeout(idle_s, _ReadTimedOut()):
                        if not self.rfile.peek(1):
                            return None
                except (OSError, ValueError):
                    return None
            self._requests_read += 1
            timer = gevent.Timeout(header_s, _ReadTimedOut())
            timer.start()
            self._header_timer = timer
            try:
                # a timeout in the request line is an OSError there: the connection closes
                return super().handle_one_request()
            finally:
                timer.close()

        def read_request(self, raw_requestline):
            try:
                return super().read_request(raw_requestline)
            finally:
                self._header_timer.cancel()  # the headers are in: the application may take time

        def _handle_client_error(self, ex):
            if isinstance(ex, _ReadTimedOut):
                _log.info("closed a connection whose headers took longer than %g s", header_s)
                return ("408", header_timeout)
            return super()._handle_client_error(ex)

        def run_application(self):
            try:
                refused = self._read_body()
            except OSError:  # the client went away or sent broken chunks: nothing to answer
                self.wsgi_input = Input(None, 0)
                self.close_connection = True
                return None
            if refused:
                return self._refuse(*refused)
            if self.environ.get("HTTP_UPGRADE", "").lower() != "websocket":
                return super().run_application()
            # (on a copy: the app's own middleware fixes the environ itself, once)
            fixed = security.behind_proxies(dict(self.environ), hops)
            address = address_of(fixed.get("REMOTE_ADDR"))
            if not sockets.acquire(address):
                _log.warning("refused a WebSocket: %d already open from one address", sockets.cap)
                return self._refuse(
                    "429 Too Many Requests",
                    "too_many_sockets",
                    f"This address already holds {sockets.cap} open sockets to this server.",
                )
            try:
                return super().run_application()  # for a WebSocket: its whole life
            finally:
                sockets.release(address)

        def _read_body(self) -> tuple[str, str, str] | None:
            """Read the request's body into memory, bounded and timed; the refusal if not."""
            env = self.environ
            chunked = env.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
            length = self.content_length
            if not chunked and not length:
                return None
            socket_path = env.get("PATH_INFO", "").startswith(_SOCKET_PATH)
            limit = settings.socket_max_message_bytes if socket_path else settings.max_body_bytes
            too_large = (
                "413 Payload Too Large",
                "payload_too_large",
                f"The request body is larger than {limit} bytes.",
            )
            if not chunked and length > limit:
                return too_large  # refused before one byte of it is read
            try:
                with gevent.Timeout(body_s, _ReadTimedOut()):
                    data = self.wsgi_input.read(limit + 1 if chunked else length)
            except _ReadTimedOut:
                _log.info("closed a request whose body took longer than %g s", body_s)
                return (
                    "408 Request Timeout",
                    "request_timeout",
                    f"The request body did not arrive within {body_s:g} s.",
                )
            if len(data) > limit:
                return too_large
            env["wsgi.input"] = BytesIO(data)
            env["CONTENT_LENGTH"] = str(len(data))
            env.pop("HTTP_TRANSFER_ENCODING", None)
            return None

        def _refuse(self, status: str, code: str, message: str) -> None:
            """Answer without the application, and close (the rest of the body, if any,
            stays unread: gevent must not try to read it)."""
            self.wsgi_input = Input(None, 0)
            self.close_connection = True
            body = _json_error(code, message)
            self.start_response(
                status,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                    ("Cache-Control", "no-store"),
                    ("X-Content-Type-Options", "nosniff"),
                ],
            )
            self.write(body)

    return BoundedHandler
