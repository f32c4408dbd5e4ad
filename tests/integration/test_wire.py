"""What a real server process reads from the network, bounded (server/realtime/wire.py,
server/realtime/wsfast.py).

Issue 15, findings 4 and 5: a WebSocket frame is refused by its declared length before its
payload is read; WebSockets are capped per address; request headers and bodies are read
whole under deadlines before the application (and its database connections) sees them.
Every test talks raw bytes over TCP, so nothing in between reads ahead.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time

import pytest
import requests

from support.organizer import Organizer
from support.server import ServerProcess
from tests.factories import PARK, future

WS_PATH = "/socket.io/?EIO=4&transport=websocket"


class Raw:
    """One TCP connection to the server, read with a buffer, every wait bounded."""

    def __init__(self, port: int, timeout_s: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self) -> tuple[int, dict]:
        """An HTTP response's status code and headers."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"closed before the response head: {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers

    def read_response(self) -> tuple[int, dict, bytes]:
        status, headers = self.read_head()
        return status, headers, self.read_exact(int(headers.get("content-length", "0")))

    def closed_by_server(self) -> bool:
        """True when the server closed (EOF or reset) within the socket timeout."""
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def frame(payload: bytes, opcode: int = 1, fin: bool = True, length: int | None = None) -> bytes:
    """A masked client frame; ``length`` declares another length than the payload's."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack("!Q", n)
    mask = b"\x11\x22\x33\x44"
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class WebSocket(Raw):
    """An Engine.IO WebSocket (no Socket.IO client in between), its handshake done."""

    def __init__(self, port: int, headers: dict | None = None, timeout_s: float = 5.0):
        super().__init__(port, timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(
            f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n".encode()
        )
        self.status, self.headers = self.read_head()
        if self.status == 101:
            assert self.recv()[1].startswith(b"0{")  # Engine.IO's open packet

    def recv(self) -> tuple[int, bytes]:
        """The next server frame: (opcode, payload); Engine.IO pings are answered."""
        while True:
            first, second = self.read_exact(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self.read_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self.read_exact(8))[0]
            opcode, payload = first & 0x0F, self.read_exact(n)
            if opcode == 1 and payload == b"2":
                self.sock.sendall(frame(b"3"))
                continue
            return opcode, payload

    def works(self) -> bool:
        """Connects to the spectators' namespace and is answered."""
        self.sock.sendall(frame(b"40/live,"))
        opcode, payload = self.recv()
        return opcode == 1 and payload.startswith(b"40/live,{")


def close_code(ws: WebSocket) -> int:
    opcode, payload = ws.recv()
    assert opcode == 8, (opcode, payload[:80])
    return struct.unpack("!H", payload[:2])[0]


# --- finding 4: WebSocket frames and sockets per address --------------------------------


@pytest.fixture()
def ws_server(database_url, db):
    process = ServerProcess(database_url, SOCKET_MAX_MESSAGE_BYTES="4096").start()
    yield process
    process.stop()


def test_a_frame_declaring_more_than_the_limit_is_closed_before_its_payload_is_read(ws_server):
    bystander = WebSocket(ws_server.port)
    attacker = WebSocket(ws_server.port)
    # 256 MiB declared, 10 bytes sent: the close must come back without the rest.
    attacker.sock.sendall(frame(b"4" * 10, length=256 * 1024 * 1024)[: 2 + 8 + 4 + 10])
    assert close_code(attacker) == 1009
    assert attacker.closed_by_server()
    assert bystander.works()
    assert requests.get(f"{ws_server.url}/healthz", timeout=5).status_code == 200


def test_fragments_adding_up_past_the_limit_are_refused_before_the_last_is_read(ws_server):
    bystander = WebSocket(ws_server.port)
    attacker = WebSocket(ws_server.port)
    attacker.sock.sendall(frame(b"4" + b"x" * 2999, fin=False))  # 3,000 of 4,096: fine
    attacker.sock.sendall(frame(b"y" * 10, opcode=0, length=2000)[: 2 + 2 + 4 + 10])
    assert close_code(attacker) == 1009
    assert bystander.works()


def test_a_message_within_the_limit_still_passes_in_fragments(ws_server):
    ws = WebSocket(ws_server.port)
    ws.sock.sendall(frame(b"40/li", fin=False) + frame(b"ve,", opcode=0))
    opcode, payload = ws.recv()
    assert opcode == 1 and payload.startswith(b"40/live,{")


def test_websockets_over_the_per_address_cap_are_refused(database_url, db):
    process = ServerProcess(database_url, SOCKET_MAX_PER_ADDRESS="3", PROXY_HOPS="1").start()
    try:
        crowd = {"X-Forwarded-For": "203.0.113.7"}
        held = [WebSocket(process.port, crowd) for _ in range(3)]
        assert [ws.status for ws in held] == [101, 101, 101]
        over = WebSocket(process.port, crowd)
        assert over.status == 429
        body = json.loads(over.read_exact(int(over.headers["content-length"])))
        assert body["error"]["code"] == "too_many_sockets"
        assert over.closed_by_server()
        # another address is not affected; the polling transport is not upgraded either
        other = WebSocket(process.port, {"X-Forwarded-For": "203.0.113.8"})
        assert other.status == 101 and other.works()
        # a closed socket frees its place
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:
            again = WebSocket(process.port, crowd)
            if again.status == 101 or time.monotonic() > deadline:
                break
            again.close()
            time.sleep(0.1)
        assert again.status == 101 and again.works()
        assert all(ws.works() for ws in held)
    finally:
        process.stop()


# --- finding 5: request headers and bodies -----------------------------------------------


def _organizer_mob_follower(url: str) -> tuple[str, str, str]:
    """An organizer's token, a follower's token and the organizer's draft mob's id."""
    token = Organizer(url).sign_up(email="slow@example.org", name="Slow").token
    body = {"title": "Slow", "action": "Wait", "zone": PARK, "go_at": future(), "duration_s": 60}
    r = requests.post(
        f"{url}/api/mobs", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert r.status_code == 201, r.text
    mob_id = str(r.json()["id"])
    r = requests.post(f"{url}/api/followers", timeout=10)
    assert r.status_code == 201, r.text
    return token, r.json()["follower_token"], mob_id


def slow_body(port: int, method: str, path: str, token: str) -> Raw:
    """A request whose headers promise 200 bytes of body, of which 10 are sent."""
    raw = Raw(port, timeout_s=30)
    raw.sock.sendall(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        '{"title": '.encode()
    )
    return raw


@pytest.fixture()
def small_pool_server(database_url, db):
    process = ServerProcess(
        database_url,
        DB_POOL_SIZE="2",
        DB_MAX_OVERFLOW="0",
        DB_POOL_TIMEOUT_S="1",
        HTTP_BODY_TIMEOUT_S="30",
    ).start()
    yield process
    process.stop()


def test_slow_bodies_take_no_database_connection(small_pool_server):
    url, port = small_pool_server.url, small_pool_server.port
    token, follower, mob_id = _organizer_mob_follower(url)
    stalled = []
    for i in range(20):  # more than SQLite's default pool (5 + 10) and the 2 set here
        if i % 2:
            stalled.append(slow_body(port, "PATCH", f"/api/mobs/{mob_id}", token))
        else:
            stalled.append(slow_body(port, "POST", "/api/followers/me/follows", follower))
    time.sleep(1.5)  # past the pool timeout, had any of them taken a connection
    for _ in range(3):
        r = requests.get(
            f"{url}/api/mobs", params={"lat": 52.532, "lon": 13.40, "radius_m": 1000}, timeout=5
        )
        assert r.status_code == 200, r.text
        r = requests.get(
            f"{url}/api/mobs/{mob_id}", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert r.status_code == 200, r.text
    # the stalled requests are still waiting for their bodies: finishing one is answered
    last = stalled.pop()
    last.sock.sendall(b" " * 190)
    status, _, body = last.read_response()
    assert status in (200, 201, 400, 422), body
    for raw in stalled:
        raw.close()


@pytest.fixture()
def quick_timeout_server(database_url, db):
    process = ServerProcess(
        database_url, HTTP_BODY_TIMEOUT_S="1", HTTP_HEADER_TIMEOUT_S="1", MAX_BODY_BYTES="4096"
    ).start()
    yield process
    process.stop()


def test_a_body_stalled_past_the_read_timeout_gets_408_and_is_closed(quick_timeout_server):
    url, port = quick_timeout_server.url, quick_timeout_server.port
    token, _, mob_id = _organizer_mob_follower(url)
    raw = slow_body(port, "PATCH", f"/api/mobs/{mob_id}", token)
    raw.sock.settimeout(5)
    status, headers, body = raw.read_response()
    assert status == 408
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert headers.get("connection", "").lower() == "close"
    assert raw.closed_by_server()
    r = requests.get(f"{url}/api/mobs/{mob_id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["title"] == "Slow"  # the stalled PATCH did nothing


def test_headers_stalled_past_the_read_timeout_are_closed(quick_timeout_server):
    raw = Raw(quick_timeout_server.port)
    raw.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    status, _, body = raw.read_response()
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"
    assert raw.closed_by_server()
    idle = Raw(quick_timeout_server.port)  # connected, nothing sent
    assert idle.closed_by_server()


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(quick_timeout_server):
    raw = Raw(quick_timeout_server.port)
    raw.sock.sendall(
        b"POST /api/followers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + (b"1000\r\n" + b" " * 4096 + b"\r\n") * 2
    )
    status, _, body = raw.read_response()
    assert status == 413 and json.loads(body)["error"]["code"] == "payload_too_large"
    assert raw.closed_by_server()


def test_a_websocket_outlives_the_request_read_timeouts(quick_timeout_server):
    ws = WebSocket(quick_timeout_server.port)
    time.sleep(3)  # past the header and the body timeouts
    assert ws.works()
