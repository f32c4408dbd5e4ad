"""Abuse limits: token buckets per participant token and per address, refused before any DB work.

Limits (settings ``RATE_LIMIT_*``, ``"<count>/<seconds>"``):

- ``join``: ``POST /api/mobs/{id}/participants`` per address;
- ``auth``: organizer sign-up and log-in per address, and log-in per account (the email);
- ``report``: the ``report_location`` socket event, per participant and per address;
- ``deed``: the ``confirm_deed`` socket event, per participant and per address;
- ``watch``: the ``watch_mob`` socket event of ``/live`` and ``/organizer`` (a snapshot each),
  per address;
- ``read``: every ``GET /api/...``, per address (a cached read is cheap, but not free).

Each limit is a token bucket holding ``count`` tokens that refill evenly over ``seconds``,
kept as one number per key (GCRA: the "theoretical arrival time" of the next request). With
``REDIS_URL`` the buckets live in Redis and are shared by every process (one atomic Lua script
per check, a socket event's two buckets in one call, timed by the Redis clock); without it,
in the process. If Redis is unreachable the process falls back to its own buckets for a few
seconds rather than refusing everyone.

HTTP answers 429 with ``Retry-After`` and ``{"error": {"code": "rate_limited", "message",
"retry_after_s"}}``; a socket event is acknowledged with the same error object. A check reads
nothing but the request's address and the socket's session (the participant id stored at
connect), so a flood from one phone costs no database work.

Addresses: the client's address as ``server.infra.security.behind_proxies`` gives it (the peer
address, or with ``PROXY_HOPS=n`` the n-th address from the right of ``X-Forwarded-For``, the
one the nearest trusted proxy saw: werkzeug's ProxyFix). IPv6 addresses count per /64.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import Flask, current_app, jsonify, request
from flask import session as socket_session

from config import Settings, parse_rate
from server.infra.errors import error_body
from server.infra.security import behind_proxies

__all__ = [
    "Rate",
    "RateLimiter",
    "install",
    "limiter",
    "client_address",
    "check_log_in",
    "environ_address",
    "check_socket",
    "limited",
    "HTTP_LIMITS",
    "SOCKET_LIMITS",
]

# Flask endpoint → limit checked per address before the view runs.
HTTP_LIMITS = {
    "participants.join_mob": "join",
    "organizers.create_organizer": "auth",
    "organizers.create_session": "auth",
    # Anonymous growth routes: a view beacon, a new follower, a pledge (may make a sponsor).
    "cascade.count_view": "anon",
    "follows.create_follower": "anon",
    "pledges.create_pledge": "anon",
}
# Socket event → limit checked per participant and per address before the handler runs.
SOCKET_LIMITS = {"report_location": "report", "confirm_deed": "deed", "watch_mob": "watch"}

_WHAT = {
    "join": "joins",
    "auth": "sign-up or log-in attempts",
    "report": "location reports",
    "deed": "deed confirmations",
    "anon": "anonymous requests (views, follows, pledges)",
    "watch": "watch_mob requests",
    "read": "reads",
}
_EXTENSION = "goodmob.ratelimit"


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``period_s`` seconds, in a burst of at most ``count``.

    >>> Rate(20, 10.0).interval_s
    0.5
    """

    count: int
    period_s: float

    @property
    def interval_s(self) -> float:
        return self.period_s / self.count

    @classmethod
    def parse(cls, spec: str) -> Rate:
        return cls(*parse_rate(spec))


class MemoryStore:
    """Buckets in this process: key → theoretical arrival time (monotonic seconds)."""

    _SWEEP_EVERY = 1024

    def __init__(self):
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._hits = 0

    def hit(self, key: str, rate: Rate) -> float:
        """0.0 when allowed (and counted), else the seconds until one is allowed."""
        now = time.monotonic()
        tolerance = rate.period_s - rate.interval_s  # (count - 1) intervals of burst
        with self._lock:
            self._hits += 1
            if self._hits % self._SWEEP_EVERY == 0:
                self._sweep(now)
            tat = max(self._tat.get(key, now), now)
            if tat - now > tolerance:
                return tat - now - tolerance
            self._tat[key] = tat + rate.interval_s
            return 0.0

    def hit_all(self, hits: list[tuple[str, Rate]]) -> float:
        """``hit`` each in order until one is refused: 0.0 or that one's wait."""
        for key, rate in hits:
            wait_s = self.hit(key, rate)
            if wait_s:
                return wait_s
        return 0.0

    def _sweep(self, now: float) -> None:
        """Forget full buckets (their arrival time has passed), so memory stays bounded."""
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    def __len__(self) -> int:
        return len(self._tat)


# KEYS = buckets, checked in order; ARGV = interval ms and tolerance ms for each. Each bucket
# is counted until one is over its limit: returns 0 (all allowed) or that one's ms to wait.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  if tat - now > tolerance then return math.ceil(tat - now - tolerance) end
  local new = tat + interval
  redis.call('SET', key, new, 'PX', math.max(1, math.ceil(new - now)))
end
return 0
"""


class RedisStore:
    """Buckets in Redis, shared by every process; falls back to memory while Redis is away."""

    _BACKOFF_S = 5.0

    def __init__(self, url: str, prefix: str, logger=None):
        import redis  # only when the limits are shared through Redis

        self._client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        self._script = self._client.register_script(_GCRA_LUA)
        self._prefix = prefix
        self._fallback = MemoryStore()
        self._down_until = 0.0
        self._logger = logger

    def hit(self, key: str, rate: Rate) -> float:
        return self.hit_all([(key, rate)])

    def hit_all(self, hits: list[tuple[str, Rate]]) -> float:
        """As ``MemoryStore.hit_all``, in one round trip to Redis."""
        if time.monotonic() < self._down_until:
            return self._fallback.hit_all(hits)
        args = []
        for _, rate in hits:
            interval_ms = max(1, round(rate.interval_s * 1000))
            args += [interval_ms, round(rate.period_s * 1000) - interval_ms]
        try:
            wait_ms = self._script(keys=[f"{self._prefix}{key}" for key, _ in hits], args=args)
        except Exception as exc:  # Redis away: keep limiting, in this process only
            self._down_until = time.monotonic() + self._BACKOFF_S
            if self._logger is not None:
                self._logger.warning(
                    "rate limits: Redis unreachable (%s); limiting per process for %.0f s",
                    type(exc).__name__,
                    self._BACKOFF_S,
                )
            return self._fallback.hit_all(hits)
        return int(wait_ms) / 1000.0


class RateLimiter:
    """The configured limits over one store; ``hit(limit, key)`` → seconds to wait (0: go)."""

    def __init__(self, settings: Settings, logger=None):
        self.enabled = settings.rate_limit_enabled
        self.rates = {
            "join:addr": Rate.parse(settings.rate_limit_join_addr),
            "auth:addr": Rate.parse(settings.rate_limit_auth_addr),
            "auth:account": Rate.parse(settings.rate_limit_auth_account),
            "anon:addr": Rate.parse(settings.rate_limit_anon_addr),
            "report:token": Rate.parse(settings.rate_limit_report_token),
            "report:addr": Rate.parse(settings.rate_limit_report_addr),
            "deed:token": Rate.parse(settings.rate_limit_deed_token),
            "deed:addr": Rate.parse(settings.rate_limit_deed_addr),
            "watch:addr": Rate.parse(settings.rate_limit_watch_addr),
            "read:addr": Rate.parse(settings.rate_limit_read_addr),
        }
        if settings.redis_url:
            self.store = RedisStore(settings.redis_url, f"{settings.redis_channel}:rl:", logger)
        else:
            self.store = MemoryStore()

    def hit(self, limit: str, key: str) -> float:
        """Count one request of ``key`` against ``limit`` (e.g. ``"report:token"``)."""
        if not self.enabled:
            return 0.0
        return self.store.hit(f"{limit}:{key}", self.rates[limit])

    def hit_all(self, hits: list[tuple[str, str]]) -> float:
        """``hit`` each ``(limit, key)`` in order until one is refused (one Redis round trip)."""
        if not self.enabled:
            return 0.0
        return self.store.hit_all([(f"{limit}:{key}", self.rates[limit]) for limit, key in hits])


def install(app: Flask) -> RateLimiter:
    """Create the app's limiter and check the HTTP limits before their views run."""
    rl = RateLimiter(app.config["SETTINGS"], app.logger)
    app.extensions[_EXTENSION] = rl

    @app.before_request
    def _limit_http():
        current = limiter()
        if not current.enabled:
            return None
        if request.method == "GET" and request.path.startswith("/api/"):
            name = "read"
        else:
            name = HTTP_LIMITS.get(request.endpoint or "")
            if name is None or request.method != "POST":
                return None
        wait_s = current.hit(f"{name}:addr", client_address())
        return _too_many(name, wait_s) if wait_s else None

    return rl


def limiter() -> RateLimiter:
    """The app's limiter (made on first use if ``install`` has not run: sockets are then
    limited even so; HTTP limits need ``install``)."""
    rl = current_app.extensions.get(_EXTENSION)
    if rl is None:
        rl = RateLimiter(current_app.config["SETTINGS"], current_app.logger)
        current_app.extensions[_EXTENSION] = rl
    return rl


def client_address() -> str:
    """The client's address (see the module docstring), IPv6 reduced to its /64."""
    return environ_address(request.environ)


def environ_address(environ: dict) -> str:
    """``client_address`` of a WSGI environ (a socket's keeps the one of its handshake)."""
    hops = current_app.config["SETTINGS"].proxy_hops
    return address_of(behind_proxies(environ, hops).get("REMOTE_ADDR"))


def address_of(remote_addr: str | None) -> str:
    """A client address as a rate-limit key: IPv6 reduced to its /64, IPv4-mapped to IPv4.

    >>> address_of("2001:db8::1"), address_of("::ffff:192.0.2.1")
    ('2001:db8::/64', '192.0.2.1')
    """
    addr = remote_addr or ""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def check_log_in(email: str):
    """The 429 response when log-ins to this account are over ``RATE_LIMIT_AUTH_ACCOUNT``
    (whichever addresses they come from), else None. The key is a hash of the normalized
    email, whether or not an account has it, so the limit reveals nothing either."""
    rl = limiter()
    if not rl.enabled:
        return None
    key = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    wait_s = rl.hit("auth:account", key)
    return _too_many("auth", wait_s) if wait_s else None


def _error(name: str, wait_s: float) -> dict:
    wait_s = round(max(wait_s, 0.001), 3)
    body = error_body("rate_limited", f"Too many {_WHAT[name]}; try again in {wait_s:g} s.")
    body["error"]["retry_after_s"] = wait_s
    return body


def _too_many(name: str, wait_s: float):
    response = jsonify(_error(name, wait_s))
    response.status_code = 429
    response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
    return response


def check_socket(event: str) -> dict | None:
    """The error ack when this socket's participant or address is over ``event``'s limit."""
    return check(event, socket_session.get("participant_id"), client_address)


def check(event: str, participant: int | None, address: Callable[[], str]) -> dict | None:
    """``check_socket`` for a participant (or None) and a way to get the client's address."""
    name = SOCKET_LIMITS[event]
    rl = limiter()
    if not rl.enabled:
        return None
    hits = [(f"{name}:addr", address())]
    if participant is not None:
        hits.insert(0, (f"{name}:token", str(participant)))
    wait_s = rl.hit_all(hits)
    return _error(name, wait_s) if wait_s else None


def limited(event: str):
    """Decorator for a namespace's ``on_<event>``: refuse it with a ``rate_limited`` ack first."""

    def decorate(handler):
        @wraps(handler)
        def wrapper(self, data=None):
            refused = check_socket(event)
            if refused is not None:
                return refused
            return handler(self, data)

        return wrapper

    return decorate
