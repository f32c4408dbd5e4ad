"""server.wsfast gives exactly what gevent-websocket's own frame code gives."""

import random
import socket
import threading

import pytest
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


def test_install_patches_gevent_websocket():
    original_init = websocket.Stream.__init__
    wsfast.install()
    try:
        assert websocket.Header.unmask_payload is wsfast.mask_payload
        assert websocket.Utf8Validator is wsfast.Utf8Validator
        assert websocket.Stream.__init__ is wsfast._stream_init
    finally:
        websocket.Stream.__init__ = original_init
        websocket.Header.mask_payload = ORIGINAL_MASK
        websocket.Header.unmask_payload = ORIGINAL_MASK
        websocket.Utf8Validator = utf8validator.Utf8Validator
        websocket._goodmob_fast = False
