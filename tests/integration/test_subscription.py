"""A server process accepts phones only once its Redis subscription is live (issue 15,
finding 8; server/infra/subscription.py).

python-socketio subscribes lazily, after the first client connects: a process that accepts a
phone before Redis holds its subscription drops what other processes publish meanwhile, and
the phone, whose snapshot is older than the event, is never told. Here the Redis
subscription of process A is made slow for certain (a TCP proxy that forwards each new
connection to Redis only after a delay); a phone joins on A, and process B (straight to
Redis) announces to the mob.
"""

from __future__ import annotations

from urllib.parse import urlparse

import requests

from support.server import ServerProcess
from tests.integration.faultproxy import FaultProxy
from tests.integration.test_multiprocess import FAST, Phone, _mob, _wait

SLOW_S = 3.5  # longer than a join and an announcement on a busy machine; redis-py
# gives up on a connection after 5 s


def test_a_phone_gets_what_is_published_right_after_it_joined(database_url, db, redis_env):
    real = urlparse(redis_env["REDIS_URL"])
    with FaultProxy(real.hostname, real.port or 6379, connect_delay_s=SLOW_S) as slow:
        b = ServerProcess(database_url, **redis_env, **FAST).start()
        a = ServerProcess(
            database_url,
            REDIS_URL=f"redis://127.0.0.1:{slow.port}{real.path or '/0'}",
            REDIS_CHANNEL=redis_env["REDIS_CHANNEL"],
            READYZ_TIMEOUT_S="4.5",  # its Redis client's connection is slow too
            **FAST,
        )
        phone = None
        try:
            a.start()
            mob, headers = _mob(b.url)
            phone = Phone(a.url, mob["id"])
            r = requests.post(
                f"{b.url}/api/mobs/{mob['id']}/announcements",
                json={"text": "Meet at the fountain"},
                headers=headers,
                timeout=10,
            )
            assert r.status_code in (200, 201), r.text
            seq = r.json()["seq"]
            got = _wait(lambda: seq in phone.seen, SLOW_S + 3)
            assert got, (seq, phone.events)
            [(name, data)] = [(n, d) for n, d in phone.events if d["seq"] == seq]
            assert name == "announcement" and data["text"] == "Meet at the fountain"
            ready = requests.get(f"{a.url}/readyz", timeout=10).json()["checks"]
            assert ready["subscription"]["ok"] is True, ready
        finally:
            if phone is not None:
                phone.close()
            a.stop()
            b.stop()
