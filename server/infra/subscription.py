"""The Socket.IO message queue's subscription, live before this process accepts a phone.

python-socketio's ``RedisManager`` subscribes lazily: its listener starts when the first
client connects (``Server._handle_eio_connect`` calls ``manager.initialize()``), and the
SUBSCRIBE is sent from that greenlet later still. Until Redis holds the subscription,
whatever another process publishes (a phase change, an announcement) never reaches this
process's sockets, and a phone that joined meanwhile holds a snapshot older than the event
and is never told (issue 15, finding 8: a rolling restart lost ``phase: action``).

``start(app, server, wait_s)`` starts the listener at once and waits until a probe that this
process publishes comes back through its own listener: from then on, every later publish
reaches it. ``python -m server serve`` calls it before it opens its listening socket.
``probe(app, timeout_s)`` makes the same round trip for ``/readyz`` (a listener that lost
Redis and has not subscribed again is not ready).

A probe is a pub/sub message ``{"method": "goodmob_probe", "host_id", "probe": <token>}``:
the listener of the process that sent it takes it out of the stream; every other process's
listener ignores it (python-socketio handles only the methods it knows).
"""

from __future__ import annotations

import logging
import secrets
import time

__all__ = ["Subscription", "start", "probe"]

log = logging.getLogger("goodmob.subscription")
_KEY = "goodmob.subscription"  # app.extensions key
_METHOD = "goodmob_probe"


class Subscription:
    """The listener of one ``RedisManager``, with the probes it is waiting for."""

    def __init__(self, server):
        import redis  # only with a message queue (REDIS_URL)

        self.server = server
        self.manager = server.manager
        # Probes are published on a client of their own, to tell a refused connection
        # (Redis is down) from a slow one (python-socketio's publish says neither).
        self.client = redis.Redis.from_url(self.manager.redis_url, **self.manager.redis_options)
        self.waiting: dict[bytes, object] = {}  # probe token → event set when it comes back
        self.confirmed_at: float | None = None  # monotonic time of the first round trip
        listen = self.manager._listen

        def listening():
            for message in listen():
                if self.waiting and self._is_probe(message):
                    continue
                yield message

        self.manager._listen = listening  # the manager's listener loop calls self._listen()

    def _is_probe(self, message) -> bool:
        raw = message.encode() if isinstance(message, str) else message
        if not isinstance(raw, bytes | bytearray):
            return False
        for token in list(self.waiting):
            if token in raw:
                self.waiting.pop(token).set()
                return True
        return False

    def round_trip(self, timeout_s: float) -> bool:
        """Publish a probe and wait up to ``timeout_s`` for this listener to receive it.

        Raises ``ConnectionError`` when Redis cannot be reached (not when it is slow)."""
        from redis.exceptions import RedisError  # only with a message queue (REDIS_URL)
        from redis.exceptions import TimeoutError as RedisTimeout

        token = f"goodmob-probe-{secrets.token_hex(8)}"
        arrived = self.server.eio.create_event()
        self.waiting[token.encode()] = arrived
        try:
            message = {"method": _METHOD, "host_id": self.manager.host_id, "probe": token}
            try:
                self.client.publish(self.manager.channel, self.manager.json.dumps(message))
            except RedisTimeout:
                return False
            except RedisError as exc:
                raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
            if not arrived.wait(timeout_s):
                return False
        finally:
            self.waiting.pop(token.encode(), None)
        if self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        return True


def start(app, server, wait_s: float) -> str:
    """Start ``server``'s message-queue listener now and wait (up to ``wait_s``) until it is
    subscribed; a line saying how it went. Without a message queue: nothing to do.

    When Redis is unreachable the wait ends at once (the process then serves its own
    sockets, as it would during a Redis outage; ``/readyz`` says it is not ready) and a
    background task keeps probing until the subscription is live."""
    from socketio.redis_manager import RedisManager  # only with a message queue

    if not isinstance(server.manager, RedisManager) or server.manager.write_only:
        return "no Redis message queue: nothing to subscribe to"
    subscription = Subscription(server)
    app.extensions[_KEY] = subscription
    if not server.manager_initialized:
        server.manager_initialized = True
        server.manager.initialize()  # spawns the listener (it subscribes when it runs)
    started = time.monotonic()
    deadline = started + wait_s
    while True:
        left = deadline - time.monotonic()
        try:
            if subscription.round_trip(max(0.05, min(0.25, left))):
                return f"message queue subscribed in {time.monotonic() - started:.2f} s"
        except ConnectionError:
            server.start_background_task(_confirm_later, subscription)
            return "message queue UNREACHABLE: accepting without its subscription (not ready)"
        if time.monotonic() >= deadline:
            server.start_background_task(_confirm_later, subscription)
            return f"message queue NOT subscribed after {wait_s:g} s: accepting anyway (not ready)"


def _confirm_later(subscription: Subscription) -> None:
    """Probe every second until the first round trip (for the log; readiness probes too)."""
    while subscription.confirmed_at is None:
        try:
            if subscription.round_trip(1.0):
                log.info("message queue subscribed")
                return
        except ConnectionError:
            pass
        subscription.server.sleep(1.0)


def probe(app, timeout_s: float) -> str:
    """One round trip through the message queue for ``/readyz``; raises when it fails."""
    subscription = app.extensions.get(_KEY)
    if subscription is None:
        raise RuntimeError("the message queue listener was not started (python -m server does)")
    started = time.monotonic()
    if not subscription.round_trip(timeout_s):
        raise RuntimeError(f"a probe did not come back through Redis within {timeout_s:g} s")
    return f"a probe came back in {(time.monotonic() - started) * 1000:.1f} ms"
