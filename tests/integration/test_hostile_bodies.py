"""Hostile bodies and packets against a real `python -m server` (gevent's pywsgi de-chunks
bodies itself, and the real server decodes Socket.IO packets with orjson first): issue 15,
finding 7. A body or packet nested a thousand deep is refused as ``invalid_json`` (it was a
500 with a traceback); a chunked body over MAX_BODY_BYTES is 413 (it was cut and then 400);
the server logs no traceback for any of it."""

from __future__ import annotations

import json

import requests
import websocket

from support.organizer import Organizer
from tests.factories import PARK, future

LIMIT = 1_048_576  # MAX_BODY_BYTES, the default


def _token(api: str) -> dict:
    org = Organizer(api.removesuffix("/api")).sign_up(email="hostile@example.org", name="H")
    return {**org.headers, "Content-Type": "application/json"}


def _mob_body(size: int) -> bytes:
    body = json.dumps(
        {"title": "Chunked", "action": "Go", "zone": PARK, "go_at": future(), "duration_s": 60}
    ).encode()
    return body + b" " * (size - len(body))


def _chunks(body: bytes):
    for i in range(0, len(body), 65536):
        yield body[i : i + 65536]


def _output(server) -> str:
    server.stop()
    return server.proc.stdout.read()


def test_nested_and_chunked_bodies_get_specific_errors_and_no_traceback(server):
    api = f"{server.url}/api"
    headers = _token(api)
    for body in (b"[" * 1000, b'{"title": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
        r = requests.post(f"{api}/mobs", data=body, headers=headers, timeout=10)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_json"

    # No Content-Length: requests sends a generator with Transfer-Encoding: chunked.
    r = requests.post(f"{api}/mobs", data=_chunks(_mob_body(LIMIT + 1)), headers=headers)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    r = requests.post(f"{api}/mobs", data=_chunks(_mob_body(3 * LIMIT)), headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = requests.post(f"{api}/mobs", data=_chunks(_mob_body(LIMIT)), headers=headers)
    assert r.status_code == 201, r.text  # exactly the limit is read whole
    r = requests.post(f"{api}/mobs", data=_chunks(_mob_body(3000)), headers=headers)
    assert r.status_code == 201, r.text
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    assert "Traceback" not in _output(server)


def test_a_nested_socket_packet_gets_an_invalid_json_ack_and_no_traceback(server):
    url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(url, timeout=10)
    try:
        assert ws.recv().startswith("0{")  # Engine.IO open
        ws.send("40/live,")
        assert ws.recv().startswith("40/live,")  # Socket.IO connect to /live
        packets = [
            '42/live,7["watch_mob",' + "[" * 1000,  # orjson refuses, the stdlib recursed
            '42/live,8["watch_mob",' + "[" * 2000 + "]" * 2000 + "]",  # past orjson's depth
        ]
        for n, raw in enumerate(packets, start=7):
            ws.send(raw)
            reply = ws.recv()
            while reply == "2":  # a ping from the server: answer and read on
                ws.send("3")
                reply = ws.recv()
            assert reply.startswith(f"43/live,{n}["), reply
            (ack,) = json.loads(reply[len(f"43/live,{n}") :])
            assert ack["error"]["code"] == "invalid_json"
        ws.send('42/live,9["watch_mob",{"mob":"zzzzzzzz"}]')  # the connection still works
        reply = ws.recv()
        assert reply.startswith("43/live,9[") and "invalid_json" not in reply
    finally:
        ws.close()
    assert "Traceback" not in _output(server)
