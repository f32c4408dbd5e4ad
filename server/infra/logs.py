"""Structured logs: one JSON object per line in production, readable text in development.

Every line carries the id of the HTTP request (``X-Request-ID``, taken from the client when it
sends a sane one, else made here, and echoed in the response) or of the Socket.IO event it was
written for, so one request or one event can be followed through the log.

Nothing personal reaches the output: ``ScrubFilter`` rewrites every record before it is
written, replacing coordinates (``lat``/``lon`` values, GeoJSON ``coordinates``, WKT geometries,
coordinate pairs and GPS-precision numbers), tokens (``Bearer …``, itsdangerous-signed tokens,
``token``/``auth`` values), passwords and other secrets (``password``/``secret`` values, the
password in a database URL) and email addresses (the local part) with ``[redacted]``. SQL
parameters logged by SQLAlchemy are dropped whole. Request query strings are never logged.

Call ``configure_logging(settings)`` once at process start (before building the app) and
``install_request_ids(app)`` in the app factory.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from config import Settings

__all__ = [
    "configure_logging",
    "install_request_ids",
    "ScrubFilter",
    "JsonFormatter",
    "TextFormatter",
    "scrub",
    "current_ids",
    "REDACTED",
]

REDACTED = "[redacted]"

# --- scrubbing -----------------------------------------------------------------------------

_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# A value after ``key=`` / ``key: ``: a quoted string, "Bearer x", or a bare word; never an
# opening bracket or brace, so the keys inside a nested dict are matched on their own.
_VALUE = r"""(?:"[^"]*"|'[^']*'|(?:Bearer|Basic)\s+[^\s,;'"&}\])]+|[^\s,;&{}\[\]()'"]+)"""
_SECRET_KEY = (
    r"[\w-]*(?:password|passwd|pwd|token|secret|authorization|auth|cookie|api_?key|signature)[\w-]*"  # noqa: E501
)
_COORD_KEY = r"(?:lat|lon|lng|latitude|longitude)"

_RULES: list[tuple[re.Pattern, str]] = [
    # SQLAlchemy exception texts: "[parameters: (52.53, 13.40, ...)]"
    (re.compile(r"\[parameters: [^\n]*"), f"[parameters: {REDACTED}]"),
    # Credentials in URLs: postgresql://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.I), rf"\1{REDACTED}@"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I), rf"\1 {REDACTED}"),
    # Values of secret-looking keys: password=..., "token": "...", 'auth': '...'
    (re.compile(rf"""(["']?\b{_SECRET_KEY}["']?\s*[:=]\s*){_VALUE}""", re.I), rf"\1{REDACTED}"),
    # itsdangerous tokens (payload.timestamp.signature) and JWT-like tokens
    (
        re.compile(r"(?<![\w.-])\.?[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{4,12}\.[A-Za-z0-9_-]{20,}"),
        REDACTED,
    ),
    # Coordinates by key: lat=52.5, "lon": 13.4, 'latitude': '52.5'
    (re.compile(rf"""(["']?\b{_COORD_KEY}["']?\s*[:=]\s*){_VALUE}""", re.I), rf"\1{REDACTED}"),
    # GeoJSON: "coordinates": [[[13.39, 52.53], ...]]
    (
        re.compile(r"""(["']?coordinates["']?\s*[:=]\s*)\[[\d\s.,eE+\-\[\]]*\]""", re.I),
        rf"\1{REDACTED}",
    ),
    # WKT / EWKT: POINT(13.4 52.5), SRID=4326;POLYGON((...))
    (
        re.compile(
            r"\b(?:MULTI)?(?:POINT|LINESTRING|POLYGON)\s*(?:Z|M|ZM)?\s*\([\d\s.,eE+\-()]*\)?", re.I
        ),
        REDACTED,
    ),
    # Two decimal numbers in a row (a coordinate pair): "52.5318, 13.4002"
    (re.compile(r"(?<![\w.])-?\d{1,3}\.\d{2,}\s*,\s*-?\d{1,3}\.\d{2,}(?![\d.])"), REDACTED),
    # A lone number with GPS precision (five or more decimals, degrees-sized)
    (re.compile(r"(?<![\w.])-?\d{1,3}\.\d{5,}(?![\d.])"), REDACTED),
    # Email addresses: keep the domain
    (re.compile(r"\b[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.[A-Za-z0-9.-]+)\b"), rf"{REDACTED}@\1"),
]
_SECRET_NAME = re.compile(rf"^{_SECRET_KEY}$", re.I)
_COORD_NAME = re.compile(rf"^(?:{_COORD_KEY}|coordinates)$", re.I)


def scrub(text: str) -> str:
    """``text`` with coordinates, tokens, passwords and email addresses redacted.

    >>> scrub("fix lat=52.53187 lon=13.40021 for Bearer abc.def")
    'fix lat=[redacted] lon=[redacted] for Bearer [redacted]'
    >>> scrub('{"password": "correct horse", "email": "ada@example.org"}')
    '{"password": [redacted], "email": "[redacted]@example.org"}'
    """
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def _scrub_value(key: str, value):
    """An extra field of a record, scrubbed (by its key for secrets and coordinates)."""
    if _SECRET_NAME.match(key) or _COORD_NAME.match(key):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {str(k): _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value("", v) for v in value]
    if isinstance(value, bool | int | None):
        return value
    if isinstance(value, float):
        return REDACTED if scrub(repr(value)) != repr(value) else value
    return scrub(str(value))


# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "request_id",
    "event_id",
    "socket_event",
    "sid",
    "goodmob_scrubbed",
}


def current_ids() -> dict:
    """The id of the current HTTP request, or of the current Socket.IO event (made on first
    use and kept for the rest of the event); empty outside both."""
    try:
        # Flask is imported late: `python -m server` sets up logging before gevent patches.
        from flask import g, has_app_context, has_request_context, request
    except ImportError:  # pragma: no cover
        return {}
    if not has_request_context():
        # An event handled in an app context only (realtime: report_location) names
        # itself in g.goodmob_event = {"message", "sid"}.
        event = g.get("goodmob_event") if has_app_context() else None
        if event is None:
            return {}
        if "id" not in event:
            event["id"] = uuid.uuid4().hex[:16]
        return {"event_id": event["id"], "socket_event": event["message"], "sid": event["sid"]}
    rid = g.get("request_id")
    event = getattr(request, "event", None)
    if isinstance(event, dict):  # a Socket.IO event (Flask-SocketIO sets request.event)
        eid = getattr(request, "goodmob_event_id", None)
        if eid is None:
            eid = uuid.uuid4().hex[:16]
            request.goodmob_event_id = eid
        return {
            "event_id": eid,
            "socket_event": str(event.get("message")),
            "sid": getattr(request, "sid", None),
        }
    return {"request_id": rid} if rid else {}


class ScrubFilter(logging.Filter):
    """Adds the request/event id and removes personal data from a record (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "goodmob_scrubbed", False):
            return True
        for key, value in current_ids().items():
            setattr(record, key, value)
        record.msg = scrub(_message(record))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        for key in set(vars(record)) - _STANDARD:
            setattr(record, key, _scrub_value(key, getattr(record, key)))
        record.goodmob_scrubbed = True
        return True


def _message(record: logging.LogRecord) -> str:
    # SQLAlchemy's echo logs the bound parameters as "[<stats>] <repr of params>": drop them.
    if record.name.startswith("sqlalchemy.engine") and record.msg == "[%s] %r" and record.args:
        return f"[{record.args[0]}] [parameters {REDACTED}]"
    try:
        return record.getMessage()
    except Exception:  # a bad format string: keep what there is
        return f"{record.msg} {record.args!r}"


# --- formatting ----------------------------------------------------------------------------


def _ts(record: logging.LogRecord) -> str:
    return (
        datetime.fromtimestamp(record.created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, ids, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": _ts(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key in ("request_id", "event_id", "socket_event", "sid"):
            value = getattr(record, key, None)
            if value is not None:
                body[key] = value
        for key in sorted(set(vars(record)) - _STANDARD):
            body[key] = getattr(record, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body["exc"] = record.exc_text
        if record.stack_info:
            body["stack"] = record.stack_info
        return json.dumps(body, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2025-05-01 12:00:00.123 INFO  goodmob.access [req 1a2b3c4d] GET /api/mobs 200 3.1 ms``"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        stamp += f".{int(record.msecs):03d}"
        ids = ""
        if getattr(record, "request_id", None):
            ids = f" [req {record.request_id}]"
        elif getattr(record, "event_id", None):
            ids = f" [{record.socket_event} {record.event_id}]"
        line = f"{stamp} {record.levelname:<5} {record.name}{ids} {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


# --- set-up --------------------------------------------------------------------------------

# Libraries that attach a plain StreamHandler of their own when their level is unset
# (python-socketio, python-engineio): their records would reach stderr unscrubbed.
_OWN_HANDLER_LOGGERS = ("socketio.server", "engineio.server", "socketio.client", "engineio.client")


def log_format(settings: Settings) -> str:
    """``json`` or ``text`` for ``settings`` (``auto``: json in production)."""
    if settings.log_format != "auto":
        return settings.log_format
    return "json" if settings.env == "production" else "text"


def configure_logging(settings: Settings, stream=None) -> logging.Handler:
    """Send every log record of the process through one scrubbing handler on the root logger.

    Idempotent: a handler installed by an earlier call is replaced. Returns the handler.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "goodmob", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.goodmob = True
    handler.setFormatter(JsonFormatter() if log_format(settings) == "json" else TextFormatter())
    handler.addFilter(ScrubFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # SQL echo at DEBUG would log every statement (ask for it explicitly if needed);
    # gevent-websocket logs a second access line per request, with the client's address.
    for name in ("sqlalchemy", "geventwebsocket.handler"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    for name in _OWN_HANDLER_LOGGERS:
        lib = logging.getLogger(name)
        for h in list(lib.handlers):
            if type(h) is logging.StreamHandler:
                lib.removeHandler(h)
        if lib.level == logging.NOTSET:
            lib.setLevel(logging.ERROR)
    logging.captureWarnings(True)
    return handler


# Probes are frequent and dull: logged at DEBUG only.
_QUIET_PATHS = ("/healthz", "/readyz", "/metrics")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_access = logging.getLogger("goodmob.access")


def install_request_ids(app) -> None:
    """Give every HTTP request an id (``X-Request-ID`` in and out) and write one access line
    per request: method, path (never the query string), status, duration."""
    from flask import g, request  # late, as above

    @app.before_request
    def _request_id():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _echo_request_id(response):
        rid = g.get("request_id")
        if rid is None:
            return response
        response.headers["X-Request-ID"] = rid
        ms = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        level = logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO
        if _access.isEnabledFor(level):
            _access.log(
                level,
                "%s %s %s %.1f ms",
                request.method,
                request.path,
                response.status_code,
                ms,
                extra={"method": request.method, "path": request.path,
                       "status": response.status_code, "ms": round(ms, 1)},
            )  # fmt: skip
        return response

    # Flask's own handler on app.logger would write unscrubbed lines next to ours.
    if any(getattr(h, "goodmob", False) for h in logging.getLogger().handlers):
        from flask.logging import default_handler  # late, as above

        app.logger.removeHandler(default_handler)
