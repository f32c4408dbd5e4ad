"""server.realtime.wsfast gives exactly what gevent-websocket's own frame code gives."""

import logging
import random
import socket
import threading

import pytest
import socketio
from geventwebsocket import utf8validator, websocket

from server.realtime import wsfast

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
        wsfast.FrameWriter(a)(data)
        reader.join(timeout=30)
    finally:
        a.close()
        b.close()
    assert bytes(got) == data


def test_install_patches_only_the_parts_it_is_told():
    from engineio import socket as eio_socket

    original_init = websocket.Stream.__init__
    original_handler = eio_socket.Socket._websocket_handler
    original_limit = wsfast._max_message_bytes
    server = socketio.Server(async_mode="threading", max_http_buffer_size=4096)
    try:
        wsfast.install(server, wsfast.Fast(sockets=False, frames=False))  # all stock
        assert websocket.Stream.__init__ is original_init
        assert websocket.Header.unmask_payload is ORIGINAL_MASK
        assert eio_socket.Socket._websocket_handler is original_handler
        wsfast.install(server, wsfast.Fast(sockets=True, frames=False))
        assert eio_socket.Socket._websocket_handler._goodmob_original is original_handler
        assert websocket.Stream.__init__ is original_init
        wsfast.install(server, wsfast.Fast())
        wsfast.install(server, wsfast.Fast())  # once only
        assert wsfast._max_message_bytes == 4096
        assert websocket.Header.unmask_payload is wsfast.mask_payload
        assert websocket.Utf8Validator is wsfast.Utf8Validator
        assert websocket.Stream.__init__ is wsfast._stream_init
        assert eio_socket.Socket._websocket_handler._goodmob_original is original_handler
    finally:
        websocket.Stream.__init__ = original_init
        eio_socket.Socket._websocket_handler = original_handler
        websocket.Header.mask_payload = ORIGINAL_MASK
        websocket.Header.unmask_payload = ORIGINAL_MASK
        websocket.Utf8Validator = utf8validator.Utf8Validator
        websocket._goodmob_fast = False
        wsfast._max_message_bytes = original_limit


def test_the_json_module_and_packet_class_go_through_the_servers_hooks():
    """``json=`` and ``serializer=`` (what create_app hands init_app): the server's packets
    and its manager's Redis messages use SocketJSON, and python-socketio's own Packet class
    is left as it is (the Flask test client's packets use it)."""
    from engineio import packet as eio_packet
    from socketio import packet

    original_json, original_eio_json = packet.Packet.json, eio_packet.Packet.json
    original_binary = packet.Packet.__dict__["data_is_binary"]
    try:
        server = socketio.Server(
            async_mode="threading", json=wsfast.SocketJSON, serializer=wsfast.packet_class(True)
        )
        assert server.packet_class.json is wsfast.SocketJSON
        assert server.manager.json is wsfast.SocketJSON  # what it publishes to Redis with
        assert packet.Packet.json is original_json
        assert packet.Packet.__dict__["data_is_binary"] is original_binary
        assert server.packet_class.data_is_binary.__func__ is wsfast.data_is_binary
        assert wsfast.packet_class(False).data_is_binary.__func__ is original_binary.__func__
        encoded = server.packet_class(packet.EVENT, data=["stats", {"joined": 3}]).encode()
        assert encoded == '2["stats",{"joined":3}]'
        assert server.packet_class(encoded_packet=encoded).data == ["stats", {"joined": 3}]
        with pytest.raises(wsfast.InvalidPacketJSON) as refused:
            server.packet_class(encoded_packet='2/live,7["watch_mob",' + "[" * 5000)
        assert (refused.value.namespace, refused.value.id) == ("/live", 7)
    finally:
        eio_packet.Packet.json = original_eio_json


def test_the_installed_versions_are_the_tested_ones():
    """requirements.txt pins what TESTED_WITH names: bump both together, after running the
    socket tests and bench/sync.py on the new versions."""
    assert wsfast.installed_versions() == wsfast.TESTED_WITH
    assert wsfast.check() == wsfast.Fast()


@pytest.mark.parametrize(
    ("package", "part"),
    [
        ("python-socketio", "sockets"),
        ("python-engineio", "sockets"),
        ("Flask-SocketIO", "sockets"),
        ("gevent-websocket", "frames"),
    ],
)
def test_another_version_falls_back_with_one_warning_and_the_metric(
    package, part, monkeypatch, caplog
):
    from prometheus_client import REGISTRY

    other = {**wsfast.TESTED_WITH, package: "99.0"}
    monkeypatch.setattr(wsfast, "installed_versions", lambda: dict(other))
    try:
        with caplog.at_level(logging.WARNING, logger="goodmob.wsfast"):
            fast = wsfast.check()
        assert getattr(fast, part) is False
        assert all(getattr(fast, p) for p in ("sockets", "frames") if p != part)
        (line,) = [r for r in caplog.records if r.name == "goodmob.wsfast"]
        assert line.levelno == logging.WARNING
        assert f"{package} 99.0" in line.getMessage()
        assert REGISTRY.get_sample_value("goodmob_wsfast_enabled", {"part": part}) == 0
    finally:
        monkeypatch.undo()
        wsfast.check()
    assert REGISTRY.get_sample_value("goodmob_wsfast_enabled", {"part": part}) == 1


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


# send_now: a frame written straight to a connection, past Engine.IO's queue, never lands
# inside or ahead of what that connection's own writer is sending (gevent sockets, as served).


def _connection(sndbuf: int | None = None):
    """A fake Engine.IO socket over a gevent socket pair: (eio socket, writer, reading end)."""
    from types import SimpleNamespace

    import gevent.queue
    import gevent.socket

    a, b = gevent.socket.socketpair()
    if sndbuf:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    write = wsfast.FrameWriter(a)
    ws = SimpleNamespace(closed=False, raw_write=write)
    eio = SimpleNamespace(
        _goodmob_ws=ws, closed=False, upgrading=False, queue=gevent.queue.JoinableQueue()
    )
    return eio, write, a, b


def _read_all(sock, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        got.extend(chunk)
    return bytes(got)


def test_text_frame_is_what_gevent_websocket_sends():
    for text in ["4" + "x" * n for n in (0, 124, 125, 126, 65535, 65536)] + ["4ü🌍"]:
        payload = text.encode()
        header = websocket.Header.encode_header(True, websocket.WebSocket.OPCODE_TEXT, b"",
                                                len(payload), 0)  # fmt: skip
        assert wsfast.text_frame(text) == bytes(header) + payload


def test_send_now_writes_a_frame_when_the_connection_is_idle():
    eio, write, a, b = _connection()
    try:
        frame = wsfast.text_frame('42["prompt",{"seq":1}]')
        assert wsfast.send_now(eio, frame) is True
        assert _read_all(b, len(frame)) == frame
        assert not write.lock.locked()
    finally:
        a.close()
        b.close()


def test_send_now_leaves_queued_packets_first():
    eio, write, a, b = _connection()
    try:
        eio.queue.put("an earlier packet the writer has not sent yet")
        assert wsfast.send_now(eio, wsfast.text_frame("42[1]")) is False
        eio.queue.get()
        eio.upgrading = True  # still on long-polling
        assert wsfast.send_now(eio, wsfast.text_frame("42[1]")) is False
        eio.upgrading, eio._goodmob_ws.closed = False, True
        assert wsfast.send_now(eio, wsfast.text_frame("42[1]")) is False
        eio._goodmob_ws = None  # not (or no longer) a WebSocket
        assert wsfast.send_now(eio, wsfast.text_frame("42[1]")) is False
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(1)  # nothing was written
    finally:
        a.close()
        b.close()


def test_a_frame_written_in_part_is_finished_before_anything_else():
    import gevent

    eio, write, a, b = _connection(sndbuf=4096)
    big = wsfast.text_frame("4" + "a" * 2_000_000)  # far more than the socket buffers hold
    after = wsfast.text_frame("4" + "b" * 1000)
    try:
        assert wsfast.send_now(eio, big) is True  # part written, the rest by a task
        assert write.lock.locked()
        assert wsfast.send_now(eio, after) is False  # the caller queues it instead
        writer = gevent.spawn(write, after)  # the connection's own writer waits its turn
        reader = gevent.spawn(_read_all, b, len(big) + len(after))
        gevent.joinall([writer, reader], timeout=30, raise_error=True)
        assert reader.value == big + after
        assert not write.lock.locked()
    finally:
        a.close()
        b.close()


def test_a_full_send_buffer_writes_nothing_and_lets_the_caller_queue():
    eio, write, a, b = _connection(sndbuf=4096)
    try:
        filler = b"x" * 65536
        while True:  # fill the buffers without a reader
            try:
                write.raw.send(filler)
            except BlockingIOError:
                break
        assert wsfast.send_now(eio, wsfast.text_frame("42[1]")) is False
        assert not write.lock.locked()
    finally:
        a.close()
        b.close()


def test_an_engineio_socket_knows_its_websocket_while_its_handler_runs():
    from types import SimpleNamespace

    wrapped = wsfast._keep_websocket(lambda self, ws: self._goodmob_ws)
    me, inner = SimpleNamespace(), object()
    assert wrapped(me, SimpleNamespace(_sock=inner)) is inner  # engine.io's wrapper's socket
    assert me._goodmob_ws is None  # forgotten when the connection ends


def test_frames_are_never_written_past_a_tls_socket():
    import gevent.socket
    import gevent.ssl

    a, b = gevent.socket.socketpair()
    try:
        assert wsfast.FrameWriter(a).raw is not None
        tls = gevent.ssl.SSLSocket.__new__(gevent.ssl.SSLSocket)  # its type is what counts
        tls.send, tls.sendall = a.send, a.sendall
        assert wsfast.FrameWriter(tls).raw is None
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- unreadable packets (#15.7)

DEEP_PACKETS = [
    pytest.param('2/live,7["watch_mob",' + "[" * 1000, id="1000-open-brackets"),
    pytest.param('2/live,7["watch_mob",' + "[" * 5000 + "]" * 5000 + "]", id="5000-deep"),
    pytest.param('2/live,7["watch_mob",{"mob": nope}]', id="malformed"),
]


@pytest.mark.parametrize("text", ["[" * 1000, "[" * 5000 + "]" * 5000, '{"a": nope}'])
def test_socket_json_refuses_unreadable_text_with_one_exception_type(text):
    with pytest.raises(wsfast.InvalidPacketJSON):
        wsfast.SocketJSON.loads(text)


@pytest.mark.parametrize("raw", DEEP_PACKETS)
def test_an_unreadable_event_gets_an_invalid_json_ack_and_no_traceback(app, raw, caplog):
    from server import socketio as flask_socketio

    live = flask_socketio.test_client(app, namespace="/live")
    with caplog.at_level(logging.WARNING):
        flask_socketio.server._handle_eio_message(live.eio_sid, raw)
    assert live.acks is not None, "no ack for an event that asked for one"
    (body,) = live.acks["args"]
    live.acks = None
    assert body["error"]["code"] == "invalid_json"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("invalid_json" in r.getMessage() for r in caplog.records)
    # The connection stays usable.
    ack = live.emit("watch_mob", {"mob": "zzzzzzzz"}, namespace="/live", callback=True)
    assert ack["error"]["code"] != "invalid_json"
    live.disconnect(namespace="/live")


def test_an_unreadable_connect_gets_a_connect_error(app, caplog):
    from socketio import packet

    from server import socketio as flask_socketio

    live = flask_socketio.test_client(app, namespace="/live")
    sent = []
    real_send = flask_socketio.server._send_packet
    flask_socketio.server._send_packet = lambda sid, pkt: sent.append(pkt) or real_send(sid, pkt)
    try:
        with caplog.at_level(logging.WARNING):
            flask_socketio.server._handle_eio_message(live.eio_sid, "0/organizer," + "[" * 1000)
    finally:
        flask_socketio.server._send_packet = real_send
    assert [p.packet_type for p in sent] == [packet.CONNECT_ERROR]
    assert sent[0].data["data"]["error"]["code"] == "invalid_json"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
