"""Rate limits: joins, organizer auth, location reports and deeds, per token and per address.

Refusals are cheap (no SQL statement runs for a refused request or event), carry the one error
shape with ``retry_after_s`` (HTTP adds ``Retry-After``), and one phone's flood leaves the
others' answers untouched. With Redis the buckets are shared by every process (proved with two
real server processes on one port).
"""

from __future__ import annotations

import os
import secrets
import threading
from contextlib import contextmanager
from dataclasses import replace

import pytest
import requests
from sqlalchemy import event

from config import ConfigError, load_settings, parse_rate
from server import socketio
from server.infra import ratelimit
from server.infra.ratelimit import MemoryStore, Rate, RateLimiter
from tests.conftest import unavailable
from tests.factories import PARK, auth, future, make_organizer, make_published_mob, organizer_token

NS = "/participant"
INSIDE = (52.5320, 13.4000)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def limits(app, **overrides):
    """Run with rate limiting on and ``overrides`` (settings) in force; restore afterwards."""
    before = app.config["SETTINGS"]
    settings = replace(before, rate_limit_enabled=True, **overrides)
    previous = app.extensions.get("goodmob.ratelimit")
    app.extensions["goodmob.ratelimit"] = RateLimiter(settings)
    app.config["SETTINGS"] = settings  # PROXY_HOPS is the app's (server.infra.security)
    try:
        yield
    finally:
        app.config["SETTINGS"] = before
        if previous is None:
            del app.extensions["goodmob.ratelimit"]
        else:
            app.extensions["goodmob.ratelimit"] = previous


@contextmanager
def sql_statements(app):
    """Collect the SQL statements the app's engine runs for this thread inside the block
    (the in-process test clients handle requests and events on the caller's thread; a
    background flush of buffered positions is not the refused request's work)."""
    seen: list[str] = []
    engine = app.extensions["goodmob.engine"]
    me = threading.get_ident()

    def record(conn, cursor, statement, *args):
        if threading.get_ident() == me:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture()
def mob(client):
    token = make_organizer(client)
    m = make_published_mob(client, token, spacing_m=40)
    m["token"] = token
    return m


def join(client, mob_id, addr="10.0.0.1"):
    return client.post(
        f"/api/mobs/{mob_id}/participants", json={}, environ_base={"REMOTE_ADDR": addr}
    )


def phone(app, client, mob_id, addr):
    """A joined participant's socket whose address (through one trusted proxy) is ``addr``."""
    r = join(client, mob_id, addr)
    assert r.status_code == 201, r.get_json()
    sc = socketio.test_client(
        app, namespace=NS, auth={"token": r.get_json()["token"]}, headers={"X-Forwarded-For": addr}
    )
    assert sc.is_connected(NS)
    return sc


def report(sc, lat=INSIDE[0], lon=INSIDE[1]):
    data = {"lat": lat, "lon": lon, "accuracy_m": 10, "at": 0}
    return sc.emit("report_location", data, namespace=NS, callback=True)


def assert_rate_limited(body):
    error = body["error"]
    assert error["code"] == "rate_limited", body
    assert error["retry_after_s"] > 0 and error["message"]


# --- the bucket ---------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_one_per_interval(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    store, rate = MemoryStore(), Rate(3, 3.0)
    assert [store.hit("k", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert store.hit("k", rate) == pytest.approx(1.0)
    assert store.hit("other", rate) == 0.0  # buckets are per key
    now[0] += 0.5
    assert store.hit("k", rate) == pytest.approx(0.5)  # a refusal does not cost a token
    now[0] += 0.5
    assert store.hit("k", rate) == 0.0
    assert store.hit("k", rate) == pytest.approx(1.0)
    now[0] += 10
    assert [store.hit("k", rate) for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # full again


def test_full_buckets_are_forgotten(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    store = MemoryStore()
    for i in range(MemoryStore._SWEEP_EVERY - 1):
        store.hit(f"addr-{i}", Rate(5, 1.0))
    now[0] += 2.0
    store.hit("late", Rate(5, 1.0))  # the sweep runs on this hit
    assert len(store) <= 1


def test_rate_settings_are_checked():
    assert parse_rate("20/10") == (20, 10.0) and parse_rate(" 5 / 0.5s ") == (5, 0.5)
    for bad in ("20", "0/10", "20/0", "a/b", "-1/10"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    with pytest.raises(ConfigError, match="RATE_LIMIT_JOIN_ADDR"):
        load_settings({"RATE_LIMIT_JOIN_ADDR": "lots"}, env="test", secret_key="k" * 32)
    assert load_settings({}, env="development", secret_key="k" * 32).rate_limit_enabled
    assert not load_settings({}, env="test", secret_key="k" * 32).rate_limit_enabled


# --- HTTP -----------------------------------------------------------------------------------


def test_joins_per_address_get_429_with_retry_after_and_no_db_work(app, client, mob):
    with limits(app, rate_limit_join_addr="3/60"):
        assert [join(client, mob["id"]).status_code for _ in range(3)] == [201] * 3
        with sql_statements(app) as statements:
            r = join(client, mob["id"])
        assert r.status_code == 429
        assert_rate_limited(r.get_json())
        assert int(r.headers["Retry-After"]) >= 1
        assert statements == []  # refused before the database was touched
        assert join(client, mob["id"], addr="10.0.0.2").status_code == 201  # another address
        r = client.post("/api/mobs/zzzzzzzz/participants", environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert r.status_code == 429  # the budget is per address, whichever mob


def test_sign_up_and_log_in_share_a_budget_per_address(app, client, db):
    creds = {"email": "ada@example.org", "password": "correct horse"}
    env = {"REMOTE_ADDR": "10.0.1.1"}
    with limits(app, rate_limit_auth_addr="3/60"):
        r = client.post("/api/organizers", json={**creds, "name": "Ada"}, environ_base=env)
        assert r.status_code == 202
        wrong = {**creds, "password": "guess-1234"}
        assert client.post("/api/sessions", json=wrong, environ_base=env).status_code == 401
        assert client.post("/api/sessions", json=creds, environ_base=env).status_code == 201
        r = client.post("/api/sessions", json=creds, environ_base=env)  # even the right password
        assert r.status_code == 429 and r.get_json()["error"]["code"] == "rate_limited"
        other = {"REMOTE_ADDR": "10.0.1.2"}
        assert client.post("/api/sessions", json=creds, environ_base=other).status_code == 201
        # Reading is not limited by these budgets.
        assert client.get("/api/openapi.json", environ_base=env).status_code == 200


def test_sign_ups_over_the_budget_are_refused_alike_for_new_and_existing_emails(app, client, db):
    """Issue 15 §9: the sign-up still counts against the per-address budget, and its 429
    does not depend on whether the email has an account; nothing is written then."""
    make_organizer(client, email="kept@example.org")
    env = {"REMOTE_ADDR": "10.0.1.3"}

    def sign_up(email):
        body = {"email": email, "password": "other horse", "name": "Eve"}
        return client.post("/api/organizers", json=body, environ_base=env)

    with limits(app, rate_limit_auth_addr="2/60"):
        accepted = [sign_up(e).status_code for e in ("kept@example.org", "new1@example.org")]
        assert accepted == [202, 202]
        with sql_statements(app) as statements:
            refused = [sign_up(e) for e in ("kept@example.org", "new2@example.org")]
        assert [r.status_code for r in refused] == [429, 429] and statements == []
        assert refused[0].get_json()["error"]["code"] == "rate_limited"
        first, second = (r.get_json()["error"] for r in refused)  # the wait differs by ms
        assert first["message"].split(" in ")[0] == second["message"].split(" in ")[0]
        assert abs(first["retry_after_s"] - second["retry_after_s"]) < 1
        assert sign_up("new2@example.org").status_code == 429
        other = {"REMOTE_ADDR": "10.0.1.4"}
        body = {"email": "new2@example.org", "password": "other horse", "name": "Eve"}
        assert client.post("/api/organizers", json=body, environ_base=other).status_code == 202


def test_a_guessing_attack_spread_over_addresses_meets_the_per_account_limit(app, client, db):
    """Each guess from a fresh address passes the per-address budget; the account's own
    budget stops them, for an email with no account too (the limit reveals nothing), while
    another account is untouched."""
    make_organizer(client, email="victim@example.org")
    make_organizer(client, email="bystander@example.org")

    def guess(email, i, password="guess-1234"):
        env = {"REMOTE_ADDR": f"198.51.{i // 250}.{i % 250 + 1}"}
        body = {"email": email, "password": password}
        return client.post("/api/sessions", json=body, environ_base=env)

    with limits(app, rate_limit_auth_addr="3/60", rate_limit_auth_account="5/600"):
        for email in ("victim@example.org", "Nobody@Example.org"):
            codes = [guess(email, i).status_code for i in range(12)]
            assert codes == [401] * 5 + [429] * 7, (email, codes)
        r = guess("VICTIM@example.org ", 99, password="correct horse")  # even the right one
        assert r.status_code == 429 and r.get_json()["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        assert guess("bystander@example.org", 100, "correct horse").status_code == 201


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(app, client, mob):
    spoof = {"REMOTE_ADDR": "10.0.2.1"}
    with limits(app, rate_limit_join_addr="2/60"):  # no proxy: X-Forwarded-For is ignored
        codes = [
            client.post(
                f"/api/mobs/{mob['id']}/participants",
                json={},
                environ_base=spoof,
                headers={"X-Forwarded-For": f"192.0.2.{i}"},
            ).status_code
            for i in range(3)
        ]
        assert codes == [201, 201, 429]
    with limits(app, rate_limit_join_addr="2/60", proxy_hops=1):  # the proxy's last entry
        codes = [
            client.post(
                f"/api/mobs/{mob['id']}/participants",
                json={},
                environ_base=spoof,
                headers={"X-Forwarded-For": f"forged, 192.0.2.{i // 2}"},
            ).status_code
            for i in range(5)
        ]
        assert codes == [201, 201, 201, 201, 201]


def test_ipv6_addresses_count_per_64(app, client, mob):
    with limits(app, rate_limit_join_addr="2/60"):
        codes = [join(client, mob["id"], addr=f"2001:db8:0:1::{i}").status_code for i in (1, 2, 3)]
        assert codes == [201, 201, 429]
        assert join(client, mob["id"], addr="2001:db8:0:2::1").status_code == 201


# --- sockets ------------------------------------------------------------------------------


def test_a_flooding_phone_is_refused_cheaply_and_the_others_are_untouched(app, client, mob):
    with limits(app, rate_limit_report_token="3/60", proxy_hops=1):
        flooder = phone(app, client, mob["id"], "10.1.0.1")
        neighbour = phone(app, client, mob["id"], "10.1.0.1")  # same address (a shared NAT)
        assert all("zone" in report(flooder) for _ in range(3))
        with sql_statements(app) as statements:
            refused = [report(flooder) for _ in range(50)]
        for body in refused:
            assert_rate_limited(body)
        assert statements == []  # 50 refusals, not one SQL statement
        ack = report(neighbour)
        assert ack["zone"] == "inside" and ack["task"] is not None
        flooder.disconnect(NS)
        neighbour.disconnect(NS)


def test_reports_per_address_cover_many_tokens(app, client, mob):
    with limits(app, rate_limit_report_addr="4/60", proxy_hops=1):
        phones = [phone(app, client, mob["id"], "10.1.1.1") for _ in range(3)]
        acks = [report(p) for p in phones] + [report(phones[0])]
        assert all("zone" in a for a in acks)
        assert_rate_limited(report(phones[1]))  # a fresh token, but the address is spent
        elsewhere = phone(app, client, mob["id"], "10.1.1.2")
        assert "zone" in report(elsewhere)
        for p in [*phones, elsewhere]:
            p.disconnect(NS)


def test_deeds_per_token(app, client, mob):
    with limits(app, rate_limit_deed_token="2/60", proxy_hops=1):
        sc = phone(app, client, mob["id"], "10.1.2.1")
        bad = {"deed_id": "not-a-uuid", "task": 1, "lat": 0, "lon": 0, "accuracy_m": 5}
        first = [sc.emit("confirm_deed", bad, namespace=NS, callback=True) for _ in range(2)]
        assert [a["error"]["code"] for a in first] == ["deed_id_invalid"] * 2  # counted too
        assert_rate_limited(sc.emit("confirm_deed", bad, namespace=NS, callback=True))
        assert "zone" in report(sc)  # reports have their own budget
        sc.disconnect(NS)


# --- Redis: one budget for every process ----------------------------------------------------


@pytest.fixture()
def redis_settings():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        unavailable(f"Redis unreachable at {REDIS_URL}: {type(exc).__name__}")
    return load_settings(
        {},
        env="test",
        secret_key="k" * 32,
        rate_limit_enabled=True,
        redis_url=REDIS_URL,
        redis_channel=f"goodmob-test-{secrets.token_hex(4)}",
        rate_limit_join_addr="5/600",
    )


def test_limiters_sharing_redis_share_one_budget(redis_settings):
    first, second = RateLimiter(redis_settings), RateLimiter(redis_settings)
    waits = [(first if i % 2 else second).hit("join:addr", "10.2.0.1") for i in range(8)]
    assert waits[:5] == [0.0] * 5
    assert all(w > 0 for w in waits[5:])
    assert first.hit("join:addr", "10.2.0.2") == 0.0


def test_a_socket_events_two_buckets_are_one_redis_call_counted_in_order(redis_settings):
    rl = RateLimiter(replace(redis_settings, rate_limit_report_token="3/600",
                             rate_limit_report_addr="5/600"))  # fmt: skip
    calls = []
    script = rl.store._script
    rl.store._script = lambda **kw: calls.append(kw) or script(**kw)
    both = [("report:token", "1"), ("report:addr", "10.2.2.1")]
    waits = [rl.hit_all(both) for _ in range(4)]
    assert waits[:3] == [0.0] * 3 and waits[3] > 0  # the token's 3
    assert len(calls) == 4 and all(len(c["keys"]) == 2 for c in calls)
    # A refused token did not count against the address: 3 of its 5 are used.
    waits = [rl.hit_all([("report:token", "2"), ("report:addr", "10.2.2.1")]) for _ in range(3)]
    assert waits[:2] == [0.0] * 2 and waits[2] > 0  # the address's last 2, then refused


def test_an_unreachable_redis_falls_back_to_limits_in_the_process(redis_settings):
    gone = replace(redis_settings, redis_url="redis://127.0.0.1:1/0")
    rl = RateLimiter(gone)
    waits = [rl.hit("join:addr", "10.2.1.1") for _ in range(6)]
    assert waits[:5] == [0.0] * 5 and waits[5] > 0


def test_two_server_processes_on_one_port_share_the_join_budget(tmp_path, redis_settings):
    """Real processes (``--workers 2``, SO_REUSEPORT): the join budget is counted in Redis.

    Its own SQLite file: the database does not matter here, so it runs once, not per backend.
    """
    from support.ports import free_port
    from support.server import ServerProcess

    server = ServerProcess(
        f"sqlite:///{tmp_path / 'rl.sqlite3'}",
        "--workers",
        "2",
        port=free_port(),
        REDIS_URL=REDIS_URL,
        REDIS_CHANNEL=redis_settings.redis_channel,
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_JOIN_ADDR="5/600",
        SCHEDULER="false",  # not needed here; SQLite writes then never wait for its loop
    ).start()
    try:
        token = organizer_token(f"{server.url}/api", email="rl@example.org")
        body = {"title": "Limits", "action": "Pick up", "zone": PARK, "go_at": future(),
                "duration_s": 60}  # fmt: skip
        mob = requests.post(f"{server.url}/api/mobs", json=body, headers=auth(token), timeout=5)
        mob_id = mob.json()["id"]
        for path, data in (("tasks/generate", {"spacing_m": 40, "kind": "litter"}),
                           ("publish", None)):  # fmt: skip
            r = requests.post(
                f"{server.url}/api/mobs/{mob_id}/{path}", json=data, headers=auth(token), timeout=5
            )
            assert r.status_code in (200, 201), r.text
        codes = []
        for _ in range(12):  # a new connection each time: the kernel spreads them over both
            with requests.Session() as s:
                codes.append(s.post(f"{server.url}/api/mobs/{mob_id}/participants", json={},
                                    timeout=5).status_code)  # fmt: skip
        assert codes.count(201) == 5 and codes.count(429) == 7, codes
    finally:
        server.stop()


def test_a_flood_of_watch_mob_or_public_reads_is_refused_per_address(app, client, mob):
    """Issue 15 §6: re-sending watch_mob (a snapshot each) or looping a public read is
    limited per address; another address is still served."""
    with limits(app, rate_limit_watch_addr="3/60", rate_limit_read_addr="5/60", proxy_hops=1):
        audiences = (
            ("/live", {}, "10.0.0.64"),
            ("/organizer", {"token": mob["token"]}, "10.0.0.65"),
        )
        for namespace, extra, addr in audiences:
            flooder = socketio.test_client(
                app, namespace=namespace, auth=extra or None,
                headers={"X-Forwarded-For": addr},
            )  # fmt: skip
            acks = [
                flooder.emit("watch_mob", {"mob": mob["id"]}, namespace=namespace, callback=True)
                for _ in range(5)
            ]
            assert all("error" not in a for a in acks[:3]), acks[:3]
            assert_rate_limited(acks[3])
            other = socketio.test_client(
                app, namespace=namespace, auth=extra or None,
                headers={"X-Forwarded-For": "10.0.0.67"},
            )  # fmt: skip
            ack = other.emit("watch_mob", {"mob": mob["id"]}, namespace=namespace, callback=True)
            assert "error" not in ack, ack
            flooder.disconnect(namespace)
            other.disconnect(namespace)
        url = f"/api/mobs/{mob['id']}/tasks"
        answers = [client.get(url, headers={"X-Forwarded-For": "10.0.0.66"}) for _ in range(7)]
        assert [r.status_code for r in answers] == [200] * 5 + [429] * 2
        assert_rate_limited(answers[-1].get_json())
        assert int(answers[-1].headers["Retry-After"]) >= 1
        assert client.get(url, headers={"X-Forwarded-For": "10.0.0.67"}).status_code == 200
