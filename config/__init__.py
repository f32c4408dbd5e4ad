"""Settings per environment, read from environment variables (the only place that reads them)."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, fields, replace
from pathlib import Path

__all__ = ["ConfigError", "Settings", "ENVIRONMENTS", "load_settings", "parse_rate", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "test", "production")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class Settings:
    """Every setting of a Good Mob server process, with its default.

    The environment variable for a field is its name in upper case (``database_url`` ←
    ``DATABASE_URL``), except ``env`` which is read from ``GOODMOB_ENV``.
    """

    env: str = "development"
    database_url: str = f"sqlite:///{REPO_ROOT / 'instance' / 'goodmob.sqlite3'}"
    redis_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 5000
    auto_migrate: bool = True
    spatialite_library: str = "mod_spatialite"
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    log_level: str = "INFO"
    log_format: str = "auto"  # json (one object per line), text, or auto: json in production
    # Requests: the largest body, and how long the server waits for what a client sends
    # before the application sees it (server/realtime/wire.py; docs/OPERATIONS.md)
    max_body_bytes: int = 1_048_576
    http_header_timeout_s: float = 10.0  # a new connection or request → the end of its headers
    http_body_timeout_s: float = 15.0  # the whole request body, read before the application
    http_idle_timeout_s: float = 75.0  # a kept-alive connection waiting for its next request
    # Abuse limits, "<count>/<seconds>" per key (a token bucket of <count>), kept in Redis when
    # REDIS_URL is set (shared by every process), else in the process (see docs/SECURITY.md)
    rate_limit_enabled: bool = True
    rate_limit_join_addr: str = "60/60"  # POST /api/mobs/{id}/participants, per address
    rate_limit_auth_addr: str = "10/60"  # organizer sign-up and log-in, per address
    # organizer log-in per account (the email asked for, whether or not it exists), from any
    # address: a password-guessing attack spread over many addresses
    rate_limit_auth_account: str = "10/600"
    rate_limit_anon_addr: str = "120/60"  # view beacons, new followers, pledges, per address
    rate_limit_report_token: str = "20/10"  # report_location, per participant
    rate_limit_report_addr: str = "600/10"  # report_location, per address (NAT: many phones)
    rate_limit_deed_token: str = "20/60"  # confirm_deed, per participant
    rate_limit_deed_addr: str = "300/60"  # confirm_deed, per address
    # watch_mob on /live and /organizer (a snapshot each), per address: a big screen re-watches
    # only on reconnect; a crowd of spectators behind one NAT opens it once each
    rate_limit_watch_addr: str = "300/60"
    rate_limit_read_addr: str = "1200/60"  # GET /api/..., per address (pages read a few each)
    # reverse proxies in front: with n > 0 the n-th entries from the right of X-Forwarded-For,
    # -Proto and -Host are trusted (werkzeug's ProxyFix); with 0 those headers are ignored
    proxy_hops: int = 0
    # Browser security: extra origins (comma-separated) that may open a Socket.IO connection
    # besides the server's own; the largest Socket.IO message; HSTS (production only)
    allowed_origins: str = ""
    socket_max_message_bytes: int = 65_536
    # WebSockets one address may hold open, per process (carrier-grade NAT and venue Wi-Fi
    # put many phones behind one address: see docs/SECURITY.md "Size and shape limits")
    socket_max_per_address: int = 1000
    hsts_max_age_s: int = 365 * 24 * 3600
    # Organizer sessions
    organizer_token_max_age_s: int = 30 * 24 * 3600
    # Zones (see DESIGN.md "Geo rules")
    zone_max_vertices: int = 2000
    zone_max_area_m2: float = 25_000_000.0
    zone_min_area_m2: float = 100.0
    # Tasks
    tasks_max_per_mob: int = 2000
    task_spacing_min_m: float = 5.0
    task_spacing_max_m: float = 5000.0
    task_capacity_max: int = 1000
    # CPU-heavy geometry (task grids) runs in worker processes, off the event loop
    compute_workers: int = 1  # worker processes per server process
    compute_max_pending: int = 4  # calls running or queued per server process; more get 503
    compute_timeout_s: float = 30.0  # a call running longer has its worker killed (503)
    # Schedule
    gather_lead_s: int = 15 * 60
    countdown_lead_s: int = 60
    duration_min_s: int = 10
    duration_max_s: int = 6 * 3600
    # Participants (see DESIGN.md "Geo rules": plausibility and privacy)
    participant_token_max_age_s: int = 2 * 24 * 3600
    location_max_accuracy_m: float = 100.0
    location_max_speed_mps: float = 15.0
    deed_radius_m: float = 30.0
    deed_grace_s: int = 120
    stats_min_interval_s: float = 0.5
    # counters to a phone that does not report (others get them on acks): at most this often
    stats_participants_interval_s: float = 5.0
    # Timeline and scheduler
    scheduler: bool = True  # run the phase scheduler loop in `python -m server`
    scheduler_max_sleep_s: float = 0.25  # longest wait before looking for schedule changes
    start_now_lead_s: int = 30  # default lead time of "start now"
    start_now_min_lead_s: int = 10  # shortest lead: long enough for every phone to hear it
    event_replay_max: int = 200  # events kept per mob for reconnecting clients
    announcement_max_chars: int = 280
    # Crowd density for spectators (H3 cells; cells with fewer than k people are hidden)
    density_resolution: int = 10
    density_min_people: int = 5
    density_min_interval_s: float = 2.0
    # Only people in the zone for this long count towards k (fresh fake joiners cannot fill a
    # lone person's cell up to k; see docs/SECURITY.md, issue 15 §2); 0 in tests
    density_trust_after_s: float = 120.0
    # Scale-out: connections one process should be able to hold (open-file limit check)
    max_connections: int = 10_000
    workers: int = 1
    redis_channel: str = "goodmob"  # Redis pub/sub channel of the Socket.IO message queue
    # Room events (GO, prompts, counters) written straight to each idle WebSocket (server/
    # rooms.py, wsfast.send_now); false: python-socketio's stock emit path (one queued packet
    # and writer wake-up per connection). An experiment switch for bench/sync.py's
    # side-by-side fan-out; leave it on.
    direct_ws_writes: bool = True
    # A process accepts connections only once its Redis subscription is live: how long it
    # waits for that at start (when Redis is unreachable it does not wait; /readyz says so)
    redis_subscribe_wait_s: float = 15.0
    shutdown_timeout_s: float = 10.0  # longest graceful stop on SIGTERM
    # Rolling restart: the longest wait for a new worker to listen before an old one stops
    worker_boot_s: float = 60.0
    # Operations (see docs/OPERATIONS.md): readiness checks and Prometheus metrics
    readyz_timeout_s: float = 2.0  # longest wait for one readiness check (database, Redis)
    readyz_scheduler_stale_s: float = 5.0  # the scheduler loop must have ticked this recently
    prometheus_multiproc_dir: str = ""  # metrics shared by several processes (`--workers`)
    # who may scrape /metrics: a client sending "Authorization: Bearer <METRICS_TOKEN>"; when
    # empty, nobody in production (404) and loopback clients only in development and tests
    metrics_token: str = ""
    # Web Push for followers (docs/GROWTH.md): the VAPID key (base64url; generated into
    # instance/vapid_private_key.pem on first use when empty), its contact, the push hosts
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:admin@goodmob.invalid"
    push_allowed_hosts: str = (
        "fcm.googleapis.com,android.googleapis.com,push.services.mozilla.com,push.apple.com,"
        "notify.windows.com"
    )
    # Reminders and notices by Web Push (issue 19; docs/GROWTH.md "Reminders"): the offsets
    # before GO (seconds, comma-separated), how late a reminder or notice may still go out,
    # and the sending of every push of this process: the rate, the attempts on 429/5xx and
    # the first back-off (doubled at each attempt; a Retry-After is honoured up to 60 s)
    reminder_offsets_s: str = "86400,3600,600"
    reminder_late_max_s: float = 300.0
    reminder_rehearsals: bool = False  # rehearsals get no reminders or notices unless true
    push_rate_per_s: float = 20.0
    push_max_attempts: int = 4
    push_retry_base_s: float = 1.0
    # PostgreSQL connection pool per process
    db_pool_size: int = 20  # kept open: fewer than the busy moments need means a new one each time
    db_max_overflow: int = 10
    db_pool_timeout_s: float = 10.0  # wait for a free connection, then answer 503 server_busy
    # Nearby search
    nearby_default_radius_m: float = 5000.0
    nearby_max_radius_m: float = 50_000.0
    nearby_limit: int = 100

    @property
    def reminder_offsets(self) -> tuple[int, ...]:
        """The reminder offsets before GO, in seconds, largest first."""
        return tuple(
            sorted({int(v) for v in self.reminder_offsets_s.split(",") if v.strip()}, reverse=True)
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_DEFAULTS_BY_ENV = {
    "development": {},
    "test": {"log_level": "WARNING", "rate_limit_enabled": False, "density_trust_after_s": 0},
    "production": {"auto_migrate": False, "host": "0.0.0.0"},
}


def _coerce(name: str, raw: str, kind: type):
    var = name.upper() if name != "env" else "GOODMOB_ENV"
    if kind is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{var}={raw!r} is not a boolean (use true or false)")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not an integer") from None
    if kind is float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{var}={raw!r} is not a finite number")
        return value
    return raw


_RATE = re.compile(r"^\s*([1-9][0-9]*)\s*/\s*([0-9]*\.?[0-9]+)\s*s?\s*$")
_ORIGIN = re.compile(r"^https?://[^/\s?#*]+$")


def parse_rate(spec: str) -> tuple[int, float]:
    """``"20/10"`` (20 per 10 seconds) → ``(20, 10.0)``; ValueError when malformed."""
    match = _RATE.match(spec)
    if not match or float(match.group(2)) <= 0:
        raise ValueError(f"{spec!r} is not '<count>/<seconds>' (e.g. '20/10')")
    return int(match.group(1)), float(match.group(2))


def _check_security(s: Settings) -> None:
    for f in fields(Settings):
        if f.name.startswith("rate_limit_") and f.name != "rate_limit_enabled":
            try:
                parse_rate(getattr(s, f.name))
            except ValueError as exc:
                raise ConfigError(f"{f.name.upper()}: {exc}") from None
    for origin in filter(None, (o.strip() for o in s.allowed_origins.split(","))):
        if not _ORIGIN.match(origin):
            raise ConfigError(
                f"ALLOWED_ORIGINS: {origin!r} is not an origin like https://example.org"
                " (scheme and host, no path, no wildcard)"
            )
    if s.proxy_hops < 0:
        raise ConfigError(f"PROXY_HOPS={s.proxy_hops} must be 0 or more")
    if s.metrics_token and len(s.metrics_token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters (or empty)")
    if s.socket_max_message_bytes < 1024:
        raise ConfigError("SOCKET_MAX_MESSAGE_BYTES must be at least 1024")
    if s.socket_max_per_address < 1:
        raise ConfigError(f"SOCKET_MAX_PER_ADDRESS={s.socket_max_per_address} must be positive")
    for name in ("http_header_timeout_s", "http_body_timeout_s", "http_idle_timeout_s"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name.upper()}={getattr(s, name)} must be positive")


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _check_operations(s: Settings) -> None:
    if s.log_level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={s.log_level!r} must be one of {', '.join(_LOG_LEVELS)}")
    if s.log_format not in ("auto", "json", "text"):
        raise ConfigError(f"LOG_FORMAT={s.log_format!r} must be auto, json or text")
    if s.redis_subscribe_wait_s < 0:
        raise ConfigError(f"REDIS_SUBSCRIBE_WAIT_S={s.redis_subscribe_wait_s} must be 0 or more")
    try:
        offsets = s.reminder_offsets
    except ValueError:
        offsets = (0,)
    if any(v <= 0 for v in offsets):
        raise ConfigError(
            f"REMINDER_OFFSETS_S={s.reminder_offsets_s!r} must be positive whole seconds, "
            "comma-separated (e.g. 86400,3600,600), or empty for none"
        )
    for name in ("reminder_late_max_s", "push_rate_per_s", "push_max_attempts"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name.upper()}={getattr(s, name)} must be positive")
    if s.push_retry_base_s < 0:
        raise ConfigError(f"PUSH_RETRY_BASE_S={s.push_retry_base_s} must be 0 or more")
    if s.readyz_timeout_s <= 0:
        raise ConfigError(f"READYZ_TIMEOUT_S={s.readyz_timeout_s} must be positive")
    if s.readyz_scheduler_stale_s <= s.scheduler_max_sleep_s:
        raise ConfigError("READYZ_SCHEDULER_STALE_S must be longer than SCHEDULER_MAX_SLEEP_S")
    # A supervisor (WORKERS > 1) prepares the directory for its processes; one process needs it.
    d = s.prometheus_multiproc_dir
    if d and s.workers == 1 and not Path(d).is_dir():
        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR={d!r} is not an existing directory")


def _check(s: Settings) -> None:
    if s.env not in ENVIRONMENTS:
        raise ConfigError(f"GOODMOB_ENV={s.env!r} must be one of {', '.join(ENVIRONMENTS)}")
    if not s.database_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg2:")):
        raise ConfigError(
            f"DATABASE_URL={s.database_url!r} must start with sqlite:/// or postgresql://"
        )
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL={s.redis_url!r} must start with redis:// or rediss://")
    if not 0 < s.port < 65536:
        raise ConfigError(f"PORT={s.port} must be between 1 and 65535")
    if s.env == "production" and len(s.secret_key) < 32:
        raise ConfigError("SECRET_KEY must be set to at least 32 characters in production")
    for name in (
        "max_body_bytes",
        "zone_max_vertices",
        "tasks_max_per_mob",
        "organizer_token_max_age_s",
        "duration_min_s",
        "duration_max_s",
        "nearby_limit",
        "start_now_min_lead_s",
        "event_replay_max",
        "announcement_max_chars",
        "density_min_people",
        "max_connections",
        "workers",
        "db_pool_size",
        "db_pool_timeout_s",
        "compute_workers",
        "compute_max_pending",
        "compute_timeout_s",
    ):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name.upper()}={getattr(s, name)} must be positive")
    if s.stats_participants_interval_s < s.stats_min_interval_s:
        raise ConfigError("STATS_PARTICIPANTS_INTERVAL_S must be at least STATS_MIN_INTERVAL_S")
    if s.db_max_overflow < 0:
        raise ConfigError(f"DB_MAX_OVERFLOW={s.db_max_overflow} must be 0 or more")
    if s.start_now_lead_s < s.start_now_min_lead_s:
        raise ConfigError("START_NOW_LEAD_S must be at least START_NOW_MIN_LEAD_S")
    if s.density_trust_after_s < 0:
        raise ConfigError(f"DENSITY_TRUST_AFTER_S={s.density_trust_after_s} must be 0 or more")
    if not 0 <= s.density_resolution <= 15:
        raise ConfigError(f"DENSITY_RESOLUTION={s.density_resolution} must be between 0 and 15")
    if s.workers > 1 and not s.redis_url:
        raise ConfigError(
            f"WORKERS={s.workers} needs REDIS_URL: processes share Socket.IO rooms through Redis"
        )
    if s.zone_min_area_m2 >= s.zone_max_area_m2:
        raise ConfigError("ZONE_MIN_AREA_M2 must be smaller than ZONE_MAX_AREA_M2")
    _check_security(s)
    _check_operations(s)


def _local_secret() -> str:
    """A development/test secret kept in instance/secret_key so tokens survive restarts."""
    path = REPO_ROOT / "instance" / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        path.write_text(key + "\n")
        path.chmod(0o600)
        return key


def load_settings(environ: dict | None = None, **overrides) -> Settings:
    """Build the settings from ``environ`` (default ``os.environ``) and explicit overrides.

    The environment (``GOODMOB_ENV``) picks per-environment defaults; every variable then
    overrides its default; keyword overrides win over both. A bad value raises ConfigError
    naming the variable.
    """
    environ = os.environ if environ is None else environ
    env = overrides.get("env") or environ.get("GOODMOB_ENV") or "development"
    values: dict = {"env": env, **_DEFAULTS_BY_ENV.get(env, {})}
    for f in fields(Settings):
        if f.name == "env":
            continue
        raw = environ.get(f.name.upper())
        if raw is not None:
            kind = {"bool": bool, "int": int, "float": float}.get(str(f.type), str)
            values[f.name] = _coerce(f.name, raw, kind)
    values.update(overrides)
    settings = Settings(**values)
    if not settings.secret_key and settings.env != "production":
        settings = replace(settings, secret_key=_local_secret())
    _check(settings)
    return settings
