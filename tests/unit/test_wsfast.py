"""server.wsfast gives exactly what gevent-websocket's own frame code gives."""

import random
import socket
import threading

import pytest
import socketio
from geventwebsocket import utf8validator, websocket

from server import wsfast

ORIGINAL_MASK = websocket.Header.mask_payload


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 126, 1000, 70_000])
def test_mask_matches_the_original(length):
    rnd = random.Random(length)
    payload = bytes(rnd.randrange(256) for _ in range(length))
    header = websocket.Header(length=length)
    header.mask = bytes(rnd.randrange(256) for _ in range(4))
    masked = wsfast.mask_payload(header, payload)
    assert masked == ORIGINAL_MASK(header, payload)
    assert masked != payload or length == 0
    assert wsfast.mask_payload(header, masked) == payload  # unmasking is the same XOR


def _frames(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


CASES = [
    b'report_location {"lat": 52.5}',
    "Grüße aus Köln – 🌍 ok".encode(),
    b"\xff\xfe invalid",
    b"abc" + b"\xc3",  # ends inside a code point
    "ü".encode() + b"\x80\x80",  # a stray continuation byte
    b"",
]


@pytest.mark.parametrize("data", CASES)
def test_utf8_validation_matches_the_original(data):
    rnd = random.Random(len(data))
    for _ in range(20):
        cuts = [rnd.randrange(len(data) + 1) for _ in range(rnd.randrange(3))]
        ours, theirs = wsfast.Utf8Validator(), utf8validator.Utf8Validator()
        for frame in _frames(data, cuts):
            a, b = ours.validate(frame), theirs.validate(frame)
            assert a[:2] == b[:2], (data, cuts, a, b)
            if not a[0]:
                break


@pytest.mark.parametrize("size", [1, 200, 8 * 1024 * 1024])
def test_writer_sends_everything_in_order(size):
    a, b = socket.socketpair()
    data = bytes(random.Random(size).randrange(256) for _ in range(min(size, 4096))) * (
        size // 4096 + 1
    )
    data = data[:size]
    got = bytearray()

    def read():
        while len(got) < size:
            chunk = b.recv(1 << 16)
            if not chunk:
                break
            got.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        wsfast.writer(a)(data)
        reader.join(timeout=30)
    finally:
        a.close()
        b.close()
    assert bytes(got) == data


def test_install_patches_gevent_websocket_and_socketio_packets():
    from socketio import packet

    original_init = websocket.Stream.__init__
    original_binary = packet.Packet.__dict__["data_is_binary"]
    original_json = packet.Packet.json
    server = socketio.Server(async_mode="threading")  # made before the patch, as in serve()
    assert server.manager.json is not wsfast.SocketJSON
    wsfast.install(server)
    try:
        assert server.manager.json is wsfast.SocketJSON  # what it publishes to Redis with
        assert websocket.Header.unmask_payload is wsfast.mask_payload
        assert websocket.Utf8Validator is wsfast.Utf8Validator
        assert websocket.Stream.__init__ is wsfast._stream_init
        assert packet.Packet.json is wsfast.SocketJSON
        encoded = packet.Packet(packet.EVENT, data=["stats", {"joined": 3}]).encode()
        assert encoded == '2["stats",{"joined":3}]'
        assert packet.Packet(encoded_packet=encoded).data == ["stats", {"joined": 3}]
    finally:
        websocket.Stream.__init__ = original_init
        packet.Packet.data_is_binary = original_binary
        packet.Packet.json = original_json
        websocket.Header.mask_payload = ORIGINAL_MASK
        websocket.Header.unmask_payload = ORIGINAL_MASK
        websocket.Utf8Validator = utf8validator.Utf8Validator
        websocket._goodmob_fast = False


PAYLOADS = [
    None,
    1,
    "text",
    b"raw",
    bytearray(b"raw"),
    [],
    {},
    ["report_location", {"lat": 52.5, "lon": 13.4, "accuracy_m": 8}],
    {"zone": "inside", "task": {"id": 3, "label": "Grüße 🌍"}, "list": [1, [2, [3]]]},
    {"deep": [{"a": [1, {"b": b"x"}]}]},
    [1, 2, [3, [4, bytearray(b"y")]]],
]


@pytest.mark.parametrize("data", PAYLOADS)
def test_data_is_binary_matches_the_original(data):
    from socketio import packet

    original = packet.Packet.__dict__["data_is_binary"].__func__
    assert wsfast.data_is_binary(packet.Packet, data) == original(packet.Packet, data)


@pytest.mark.parametrize("data", [p for p in PAYLOADS if not wsfast.data_is_binary(None, p)])
def test_socket_json_reads_back_what_the_standard_library_writes(data):
    import json

    from engineio import json as engineio_json

    text = wsfast.SocketJSON.dumps(data, separators=(",", ":"))
    assert wsfast.SocketJSON.loads(text) == json.loads(text) == data
    standard = json.dumps(data, separators=(",", ":"))
    assert wsfast.SocketJSON.loads(standard) == engineio_json.loads(standard)


def test_socket_json_falls_back_for_what_orjson_refuses():
    from engineio import json as engineio_json

    for text in ('{"a": NaN}', "[Infinity]", "[1e999]"):  # the standard library takes them
        assert repr(wsfast.SocketJSON.loads(text)) == repr(engineio_json.loads(text))
    with pytest.raises(ValueError):  # engine.io refuses integers of more than 100 digits
        wsfast.SocketJSON.loads('{"x": ' + "7" * 101 + "}")
    with pytest.raises(ValueError):
        wsfast.SocketJSON.loads("{not json")
    assert wsfast.SocketJSON.dumps({1: "a"}) == '{"1":"a"}'  # non-string keys: stdlib
    assert wsfast.SocketJSON.dumps([2**70]) == f"[{2**70}]"  # beyond 64 bits: stdlib
