"""Organizer sign-up, log-in and bearer tokens (server/domain/accounts.py, server/http/auth.py)."""

import itsdangerous.timed
from argon2 import PasswordHasher
from sqlalchemy import func, select

from server.infra.models import Organizer
from tests.factories import PARK, auth, future, make_organizer


def test_sign_up_accepts_then_log_in_gives_a_token_and_the_password_is_hashed(client, db):
    r = client.post(
        "/api/organizers",
        json={"email": "Ada@Example.org", "password": "correct horse", "name": "Ada"},
    )
    assert r.status_code == 202
    assert r.get_json()["status"] == "accepted" and r.get_json()["next"] == "POST /api/sessions"
    assert not {"token", "organizer", "id"} & set(r.get_json())
    stored = db.scalar(select(Organizer))
    assert stored.email == "ada@example.org" and stored.name == "Ada"
    assert stored.password_hash.startswith("$argon2id$")
    assert "correct horse" not in stored.password_hash
    r = client.post("/api/sessions", json={"email": "ada@example.org", "password": "correct horse"})
    assert r.status_code == 201
    body = r.get_json()
    assert body["token_type"] == "Bearer" and len(body["token"]) > 20
    assert body["organizer"]["email"] == "ada@example.org"
    r = client.get("/api/organizers/me/mobs", headers=auth(body["token"]))
    assert r.status_code == 200 and r.get_json() == {"mobs": []}


# Headers that differ between any two requests, whatever they ask.
_PER_REQUEST = {"date", "x-request-id"}


def _sign_up(client, email, password, name="Mallory"):
    r = client.post("/api/organizers", json={"email": email, "password": password, "name": name})
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in _PER_REQUEST}
    return r.status_code, headers, r.get_data()


def test_sign_up_answers_alike_for_a_new_and_an_existing_email(app, client, db, monkeypatch):
    """Issue 15 §9: the answer (status, headers, body bytes) and the work (an argon2 hash,
    the same SQL) are the same whether or not the email has an account; the account keeps
    its password and name, and the attempted password does not log in."""
    from server.domain import accounts as auth_module
    from tests.server.test_ratelimit import sql_statements

    make_organizer(client, email="taken@example.org", name="Owner")
    hashes = []

    class CountingHasher(PasswordHasher):
        def hash(self, password, **kwargs):
            hashes.append(password)
            return super().hash(password, **kwargs)

    monkeypatch.setattr(auth_module, "_hasher", CountingHasher())
    with sql_statements(app) as existing_sql:
        existing = _sign_up(client, " TAKEN@example.org", "attacker password")
    with sql_statements(app) as new_sql:
        new = _sign_up(client, "fresh@example.org", "attacker password")
    assert existing == new
    status, headers, body = new
    assert status == 202 and headers["content-type"] == "application/json"
    assert "set-cookie" not in headers and "location" not in headers
    assert b"token" not in body and b"taken" not in body and b"fresh" not in body
    assert hashes == ["attacker password", "attacker password"]  # hashed in both cases
    assert existing_sql == new_sql and len(new_sql) == 1  # one INSERT … ON CONFLICT DO NOTHING
    assert "ON CONFLICT" in new_sql[0].upper()

    def log_in(email, password):
        return client.post("/api/sessions", json={"email": email, "password": password})

    assert log_in("taken@example.org", "correct horse").status_code == 201  # the old password
    r = log_in("taken@example.org", "attacker password")  # the attempted one
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "credentials_invalid"
    owner = db.scalar(select(Organizer).where(Organizer.email == "taken@example.org"))
    assert owner.name == "Owner"
    assert log_in("fresh@example.org", "attacker password").status_code == 201  # the new one
    assert db.scalar(select(func.count()).select_from(Organizer)) == 2


def test_sign_up_refuses_bad_fields_with_their_own_codes(client):
    make_organizer(client, email="dup@example.org")
    cases = [
        ({"email": "nope", "password": "12345678", "name": "B"}, "email_invalid"),
        ({"email": "b@example.org", "password": "short", "name": "B"}, "password_too_short"),
        ({"email": "dup@example.org", "password": "short", "name": "B"}, "password_too_short"),
        ({"email": "b@example.org", "password": "12345678"}, "field_missing"),
        ({"email": "b@example.org", "password": 12345678, "name": "B"}, "field_wrong_type"),
        ({"email": "b@example.org", "password": "12345678", "name": "B", "x": 1}, "field_unknown"),
    ]
    for body, code in cases:
        r = client.post("/api/organizers", json=body)
        assert r.status_code == 400, body
        assert r.get_json()["error"]["code"] == code, body


def test_log_in(client):
    make_organizer(client, email="eve@example.org")
    r = client.post("/api/sessions", json={"email": "eve@example.org", "password": "correct horse"})
    assert r.status_code == 201
    token = r.get_json()["token"]
    assert client.get("/api/organizers/me/mobs", headers=auth(token)).status_code == 200
    for email, password in (("eve@example.org", "wrong horse"), ("who@example.org", "x" * 9)):
        r = client.post("/api/sessions", json={"email": email, "password": password})
        assert r.status_code == 401
        assert r.get_json()["error"]["code"] == "credentials_invalid"


def test_tokens_forged_malformed_and_expired(client, monkeypatch):
    token = make_organizer(client)
    url = "/api/organizers/me/mobs"
    r = client.get(url)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "auth_required"
    r = client.get(url, headers=auth(token[:-2] + "xx"))
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "token_invalid"
    r = client.get(url, headers={"Authorization": f"Basic {token}"})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "token_invalid"

    # A token signed 31 days ago (the default lifetime is 30 days).
    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() - 31 * 86400)
    old = make_organizer(client)
    monkeypatch.setattr(itsdangerous.timed.time, "time", real_time)
    r = client.get(url, headers=auth(old))
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "token_expired"


# --- log-out (issue 15, finding 9) ---------------------------------------------------------


def _log_in(client, email: str) -> str:
    r = client.post("/api/sessions", json={"email": email, "password": "correct horse"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["token"]


def _mine(client, token):
    return client.get("/api/organizers/me/mobs", headers=auth(token))


def test_log_out_refuses_that_token_on_rest_and_socket_while_another_session_works(app, client):
    from server import socketio

    make_organizer(client, email="two@example.org")
    laptop, phone = _log_in(client, "two@example.org"), _log_in(client, "two@example.org")
    mob = client.post(
        "/api/mobs",
        json={"title": "T", "action": "Go", "zone": PARK, "go_at": future(), "duration_s": 60},
        headers=auth(laptop),
    ).get_json()
    open_socket = socketio.test_client(app, namespace="/organizer", auth={"token": laptop})
    ack = open_socket.emit("watch_mob", {"mob": mob["id"]}, namespace="/organizer", callback=True)
    assert ack["mob"]["id"] == mob["id"]

    assert client.delete("/api/sessions/current", headers=auth(laptop)).status_code == 204
    r = _mine(client, laptop)
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "token_revoked"
    assert client.delete("/api/sessions/current", headers=auth(laptop)).status_code == 401
    # The open socket is refused on its next control; a new one does not connect.
    ack = open_socket.emit("watch_mob", {"mob": mob["id"]}, namespace="/organizer", callback=True)
    assert ack["error"]["code"] == "token_revoked"
    ack = open_socket.emit("cancel", {"mob": mob["id"]}, namespace="/organizer", callback=True)
    assert ack["error"]["code"] == "token_revoked"
    fresh = socketio.test_client(app, namespace="/organizer", auth={"token": laptop})
    assert not fresh.is_connected("/organizer")
    # The other session of the same organizer goes on, on REST and on the socket.
    assert _mine(client, phone).status_code == 200
    other = socketio.test_client(app, namespace="/organizer", auth={"token": phone})
    ack = other.emit("watch_mob", {"mob": mob["id"]}, namespace="/organizer", callback=True)
    assert ack["mob"]["id"] == mob["id"]
    other.disconnect("/organizer")
    assert client.get(f"/api/mobs/{mob['id']}", headers=auth(phone)).get_json()["status"] == "draft"


def test_log_out_everywhere_refuses_every_earlier_token(app, client):
    from server import socketio

    first = make_organizer(client, email="all@example.org")
    tokens = [first, _log_in(client, "all@example.org"), _log_in(client, "all@example.org")]
    bystander = make_organizer(client, email="else@example.org")
    sock = socketio.test_client(app, namespace="/organizer", auth={"token": tokens[1]})
    assert sock.is_connected("/organizer")
    assert client.delete("/api/sessions", headers=auth(tokens[2])).status_code == 204
    for token in tokens:
        r = _mine(client, token)
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "token_revoked"
        assert not socketio.test_client(
            app, namespace="/organizer", auth={"token": token}
        ).is_connected("/organizer")
    ack = sock.emit("watch_mob", {"mob": "whatever"}, namespace="/organizer", callback=True)
    assert ack["error"]["code"] == "token_revoked"
    assert _mine(client, bystander).status_code == 200  # another organizer is untouched
    assert _mine(client, _log_in(client, "all@example.org")).status_code == 200  # log in again
