"""Browser-facing protections: security headers, Socket.IO origins and message size, access log.

- Every response carries a Content-Security-Policy (scripts only from this origin, never
  inline; images from here, the map tile host, ``data:`` and ``blob:`` for Leaflet; network
  to here, its WebSocket and the tile host), ``frame-ancestors 'none'``, a Permissions-Policy
  that grants geolocation and the screen wake lock to this origin only, Referrer-Policy,
  X-Content-Type-Options and, in production, HSTS. API answers are never cached.
- Socket.IO handshakes (polling and WebSocket) are accepted from this origin and from the
  origins in ``ALLOWED_ORIGINS`` only; a browser on another site is refused (clients that
  send no Origin, like phones' native clients and tests, are not browsers and may connect).
  Messages larger than ``SOCKET_MAX_MESSAGE_BYTES`` close the connection.
- The access log never shows query strings (``GET /api/mobs?lat=…&lon=…`` is a position).
- Forwarded headers (``X-Forwarded-For``, ``-Proto``, ``-Host``) are trusted only behind
  ``PROXY_HOPS`` configured proxies, through werkzeug's ``ProxyFix`` (``behind_proxies``): the
  one place that reads them, for the client's address (rate limits), the scheme and the host
  (origin checks, URLs). With ``PROXY_HOPS=0`` they are ignored.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Settings

__all__ = [
    "install",
    "content_security_policy",
    "tile_source",
    "allowed_origins",
    "origin_allowed",
    "socketio_options",
    "access_log_handler",
    "behind_proxies",
    "TrustedProxies",
    "PERMISSIONS_POLICY",
]

PERMISSIONS_POLICY = (
    "geolocation=(self), screen-wake-lock=(self), fullscreen=(self), camera=(), "
    "microphone=(), payment=(), usb=()"
)
_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def tile_source(tile_url: str) -> str | None:
    """The CSP source of a Leaflet tile URL template (None when it is on this origin).

    >>> tile_source("https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    'https://tile.openstreetmap.org'
    >>> tile_source("https://{s}.tile.example.com:8443/{z}/{x}/{y}.png")
    'https://*.tile.example.com:8443'
    >>> tile_source("/tiles/{z}/{x}/{y}.png") is None
    True
    """
    parts = urlsplit(tile_url)
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    labels = host.split(".")
    if _PLACEHOLDER.search(labels[0]):
        labels[0] = "*"  # a subdomain template ({s}.tile...) → a wildcard, leftmost only
    host = _PLACEHOLDER.sub("", ".".join(labels))
    return f"{parts.scheme}://{host}"


def content_security_policy(settings: Settings, host: str | None = None) -> str:
    """The CSP for pages served to ``host`` (the Host header: its WebSocket is allowed)."""
    tiles = tile_source(settings.tile_url)
    extra = [tiles] if tiles else []
    sockets = [f"ws://{host}", f"wss://{host}"] if host else []
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # Leaflet and pages set style attributes
        "img-src": ["'self'", "data:", "blob:", *extra],
        "connect-src": ["'self'", *sockets, *extra],
        "font-src": ["'self'"],
        "manifest-src": ["'self'"],
        "worker-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def install(app: Flask) -> None:
    """Add the security headers to every response; secure cookie flags if cookies appear."""
    settings: Settings = app.config["SETTINGS"]
    production = settings.env == "production"
    app.config.update(
        SESSION_COOKIE_SECURE=production,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    hsts = f"max-age={settings.hsts_max_age_s}; includeSubDomains"

    @app.after_request
    def _headers(response):
        h = response.headers
        h.setdefault("Content-Security-Policy", content_security_policy(settings, request.host))
        h.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if production:
            h.setdefault("Strict-Transport-Security", hsts)
        if request.path.startswith("/api/"):
            h["Cache-Control"] = "no-store"  # bodies carry tokens and live state
        return response


_FIXED = "werkzeug.proxy_fix.orig"  # ProxyFix keeps the environ's own values here


def _ignore(*_args):
    return None


def behind_proxies(environ: dict, hops: int) -> dict:
    """``environ`` as the app sees it behind ``hops`` trusted proxies, changed in place, once.

    werkzeug's ProxyFix with ``x_for = x_proto = x_host = hops``: the client address, scheme
    and host become the ``hops``-th entries from the right of ``X-Forwarded-For``, ``-Proto``
    and ``-Host`` (what the nearest trusted proxy saw), when there are that many. With 0 hops
    nothing changes: forwarded headers from a client talking to us directly are ignored.

    >>> env = {"REMOTE_ADDR": "10.0.0.2", "HTTP_HOST": "app:8000", "wsgi.url_scheme": "http",
    ...        "HTTP_X_FORWARDED_FOR": "forged, 203.0.113.7", "HTTP_X_FORWARDED_HOST": "a.org"}
    >>> behind_proxies(dict(env), 0)["HTTP_HOST"]
    'app:8000'
    >>> fixed = behind_proxies(dict(env), 1)
    >>> fixed["REMOTE_ADDR"], fixed["HTTP_HOST"], fixed["wsgi.url_scheme"]
    ('203.0.113.7', 'a.org', 'http')
    """
    if hops > 0 and _FIXED not in environ:
        ProxyFix(_ignore, x_for=hops, x_proto=hops, x_host=hops)(environ, _ignore)
    return environ


class TrustedProxies:
    """WSGI middleware (outermost, so Socket.IO's requests pass it too): ``behind_proxies``
    with the app's ``PROXY_HOPS``."""

    def __init__(self, wsgi_app, app: Flask):
        self.wsgi_app = wsgi_app
        self.app = app

    def __call__(self, environ, start_response):
        behind_proxies(environ, self.app.config["SETTINGS"].proxy_hops)
        return self.wsgi_app(environ, start_response)


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The configured extra origins, normalized (lower case, no trailing slash)."""
    return frozenset(
        o.strip().rstrip("/").lower() for o in settings.allowed_origins.split(",") if o.strip()
    )


def origin_allowed(settings: Settings, origin: str | None, environ: dict) -> bool:
    """May a browser page of ``origin`` open a Socket.IO connection to this server?

    Its own origin (scheme and Host of the request; behind ``PROXY_HOPS`` trusted proxies,
    the ones they forwarded) and the configured ones may; any other site may not.
    """
    if not origin:
        return True
    origin = origin.rstrip("/").lower()
    if origin in allowed_origins(settings):
        return True
    environ = behind_proxies(environ, settings.proxy_hops)
    host = (environ.get("HTTP_HOST") or "").strip().lower()
    if not host:
        return False
    scheme = str(environ.get("wsgi.url_scheme", "http")).lower()
    own = {f"{scheme}://{host}"}
    if scheme == "http" and host.endswith(":80") or scheme == "https" and host.endswith(":443"):
        own.add(f"{scheme}://{host.rsplit(':', 1)[0]}")
    return origin in own


def socketio_options(settings: Settings) -> dict:
    """Keyword arguments for ``socketio.init_app``: origin check and message size limit."""

    def check(origin, environ=None):
        return origin_allowed(settings, origin, environ or {})

    return {
        "cors_allowed_origins": check,
        "cors_credentials": False,
        "max_http_buffer_size": settings.socket_max_message_bytes,
    }


def access_log_handler():
    """The gevent handler class for ``pywsgi.WSGIServer(handler_class=...)``.

    WebSocket-aware (gevent-websocket); refuses a cross-site WebSocket upgrade with a 400
    before the upgrade happens (gevent-websocket upgrades before Engine.IO sees the request,
    so Engine.IO's own origin check would only close an already open socket); writes
    access-log lines, without query strings, to the server's ``log``.
    """
    from gevent.pywsgi import WSGIHandler  # the real server only (gevent, patched first)
    from geventwebsocket.handler import WebSocketHandler

    class GoodMobHandler(WebSocketHandler):
        def upgrade_websocket(self):
            settings = getattr(self.application, "config", {}).get("SETTINGS")
            upgrade = self.environ.get("HTTP_UPGRADE", "").lower() == "websocket"
            origin = self.environ.get("HTTP_ORIGIN")
            if upgrade and settings and not origin_allowed(settings, origin, self.environ):
                self.start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [b"Not an accepted origin."]
            return super().upgrade_websocket()

        def log_request(self):
            # gevent-websocket sends access lines to a logger nobody configured; write them to
            # the server's access log (``WSGIServer(log=...)``) as pywsgi does, upgrades aside.
            if "101" not in str(self.status):
                WSGIHandler.log_request(self)

        def format_request(self):
            line = self.requestline
            self.requestline = _without_query(line or "")
            try:
                return super().format_request()
            finally:
                self.requestline = line

    return GoodMobHandler


def _without_query(requestline: str) -> str:
    """``GET /a?lat=1 HTTP/1.1`` → ``GET /a?… HTTP/1.1``.

    >>> _without_query("GET /api/mobs?lat=52.5&lon=13.4 HTTP/1.1")
    'GET /api/mobs?… HTTP/1.1'
    """
    parts = requestline.split(" ")
    if len(parts) >= 2 and "?" in parts[1]:
        parts[1] = parts[1].split("?", 1)[0] + "?…"
    return " ".join(parts)
