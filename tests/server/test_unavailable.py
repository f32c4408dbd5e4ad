"""A database out of reach, or a pool with no free connection, is a 503 the client can retry
(``database_unavailable`` / ``server_busy``, with Retry-After), never a 500."""

from dataclasses import replace

import pytest

from server import create_app


def test_an_unreachable_database_answers_503(settings):
    # Port 9 (discard) has nothing listening: every connection attempt is refused.
    dead = replace(
        settings, database_url="postgresql://postgres@127.0.0.1:9/nowhere", auto_migrate=False
    )
    app = create_app(dead)
    try:
        r = app.test_client().get("/api/mobs/abcdefgh")
    finally:
        app.extensions["goodmob.engine"].dispose()
    assert r.status_code == 503
    assert r.get_json()["error"]["code"] == "database_unavailable"
    assert r.headers["Retry-After"] == "2"


@pytest.mark.postgis_only  # SQLite has no connection pool to exhaust
def test_a_pool_with_no_free_connection_answers_503_server_busy(settings, db):
    app = create_app(replace(settings, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.2))
    engine = app.extensions["goodmob.engine"]
    held = engine.connect()  # the only connection
    try:
        client = app.test_client()
        r = client.get("/api/mobs/abcdefgh")
        assert r.status_code == 503
        assert r.get_json()["error"]["code"] == "server_busy"
    finally:
        held.close()
    r = client.get("/api/mobs/abcdefgh")
    assert r.status_code == 404  # the connection is free again: served normally
    engine.dispose()


def test_a_socket_connecting_while_the_database_is_unreachable_is_refused_with_a_code(
    settings, client, db
):
    from tests.factories import make_organizer
    from tests.server.test_socket_authorization import refused_code

    token = make_organizer(client)  # a valid organizer token for the same secret key
    dead = replace(
        settings, database_url="postgresql://postgres@127.0.0.1:9/nowhere", auto_migrate=False
    )
    app = create_app(dead)
    try:
        assert refused_code(app, "/organizer", {"token": token}) == "database_unavailable"
    finally:
        app.extensions["goodmob.engine"].dispose()
