"""server.http.validate: hostile JSON bodies get a specific 4xx, never a 500 (issue 15, finding 7).

A body nested a thousand deep made the standard library's decoder raise RecursionError (500
and a logged traceback); a chunked body (no Content-Length) over MAX_BODY_BYTES was cut at
the limit and then refused as invalid JSON (400), or read as empty under the test client.
The chunked cases set ``wsgi.input_terminated`` as gevent's pywsgi does when it de-chunks a
body; tests/integration/test_hostile_bodies.py sends the same bodies to a real server.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.factories import PARK, auth, future, make_organizer

NESTED = [
    pytest.param(b"[" * 1000, id="1000-open-brackets"),
    pytest.param(b'{"title": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="5000-deep-closed"),
    pytest.param(b'{"zone": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001, id="3000-deep-objects"),
]


@pytest.fixture()
def token(client):
    return make_organizer(client)


@pytest.mark.parametrize("body", NESTED)
def test_a_deeply_nested_body_is_invalid_json_not_a_500(client, token, body, caplog):
    with caplog.at_level(logging.WARNING):
        r = client.post(
            "/api/mobs", data=body, content_type="application/json", headers=auth(token)
        )
    assert r.status_code == 400, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "invalid_json" and "nested too deeply" in error["message"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def _chunked(client, token, body: bytes):
    """POST ``body`` without a Content-Length, as a server hands a de-chunked body on."""
    return client.post(
        "/api/mobs",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={**auth(token), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def _mob_body(size: int) -> bytes:
    """A valid mob body padded with spaces to exactly ``size`` bytes."""
    body = json.dumps(
        {"title": "Chunked", "action": "Go", "zone": PARK, "go_at": future(), "duration_s": 60}
    ).encode()
    return body + b" " * (size - len(body))


def test_a_chunked_body_over_the_limit_is_413(app, client, token):
    limit = app.config["MAX_CONTENT_LENGTH"]
    r = _chunked(client, token, _mob_body(limit + 1))
    assert r.status_code == 413
    assert r.get_json()["error"]["code"] == "payload_too_large"
    r = _chunked(client, token, _mob_body(4 * limit))
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"


def test_a_chunked_body_up_to_the_limit_is_read_whole(app, client, token):
    limit = app.config["MAX_CONTENT_LENGTH"]
    r = _chunked(client, token, _mob_body(limit))
    assert r.status_code == 201, r.get_json()
    r = _chunked(client, token, _mob_body(2000))
    assert r.status_code == 201, r.get_json()


def test_a_body_with_a_content_length_over_the_limit_is_still_413(app, client, token):
    limit = app.config["MAX_CONTENT_LENGTH"]
    r = client.post(
        "/api/mobs",
        data=_mob_body(limit + 1),
        content_type="application/json",
        headers=auth(token),
    )
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"
