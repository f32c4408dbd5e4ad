"""The Flask application factory: it only wires the layers together (blueprints, namespaces,
the domain's notifier and host, error handlers, security and rate limits)."""

from __future__ import annotations

import logging
from dataclasses import replace

from flask import Flask, g
from flask.sessions import SecureCookieSessionInterface
from werkzeug.routing import IntegerConverter, PathConverter

from config import Settings, load_settings
from server.domain import ports, timeline
from server.http import (
    campaigns,
    cascade,
    deeds,
    follows,
    mobs,
    openapi,
    organizers,
    participants,
    pledges,
    summaries,
    tasks,
)
from server.http.errors import register_error_handlers
from server.http.health import health
from server.http.metrics import metrics
from server.http.pages import pages
from server.infra import ratelimit, security
from server.infra.db import make_engine, make_session_factory
from server.infra.logs import install_request_ids
from server.infra.migrate import upgrade
from server.realtime import rooms, wsfast
from server.realtime.broadcast import SocketHost, SocketNotifier
from server.realtime.extensions import socketio
from server.realtime.namespaces import register_namespaces

__all__ = ["create_app"]


def _async_mode() -> str:
    try:
        from gevent import monkey  # optional: the test client runs without gevent

        if monkey.is_module_patched("socket"):
            return "gevent"
    except ImportError:  # pragma: no cover
        pass
    return "threading"


class _RowId(IntegerConverter):
    """``<int:...>`` in URLs: at most 18 digits, so an id always fits a 64-bit column (a
    longer one is a 404, not a database overflow)."""

    regex = r"\d{1,18}"


_SOCKET_PATH = "/socket.io"


def _is_socket(request) -> bool:
    return request.environ.get("PATH_INFO", "").startswith(_SOCKET_PATH)


class _Sessions(SecureCookieSessionInterface):
    """Flask's cookie session, except on Socket.IO requests: Flask-SocketIO pushes a request
    context for every event, and the socket keeps its own session in memory, so parsing a
    cookie there is wasted work (the app sets no cookie anyway)."""

    def open_session(self, app, request):
        if _is_socket(request):
            return self.session_class()
        return super().open_session(app, request)


class _App(Flask):
    def create_url_adapter(self, request):
        # Socket.IO events never route through the URL map: skip matching their path
        # against it on every event (measured in docs/BENCHMARKS.md, "locations").
        if request is not None and _is_socket(request):
            return None
        return super().create_url_adapter(request)


class _NotApi(PathConverter):
    """A path outside ``/api/`` (the web app's files): an unknown API path is then a 404
    whatever its method, and a known one with a wrong method a 405 with ``Allow``."""

    regex = r"(?!api/)[^/].*?"


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """Build an app from ``settings`` (default: the environment), with ``overrides`` applied."""
    if settings is None:
        settings = load_settings(**overrides)
    elif overrides:
        settings = replace(settings, **overrides)

    app = _App(__name__, static_folder=None)
    app.session_interface = _Sessions()
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        TESTING=settings.env == "test",
    )
    app.json.sort_keys = False  # keep fields in the order the API documents them
    app.logger.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))

    engine = make_engine(settings)
    if settings.auto_migrate:
        upgrade(engine)
    app.extensions["goodmob.engine"] = engine
    app.extensions["goodmob.sessions"] = make_session_factory(engine)

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()

    app.url_map.converters["int"] = _RowId
    app.url_map.converters["notapi"] = _NotApi

    register_error_handlers(app)
    install_request_ids(app)
    security.install(app)
    ratelimit.install(app)
    app.register_blueprint(health)
    app.register_blueprint(metrics)
    for routes in (  # the REST API under /api, one blueprint per resource
        openapi,
        organizers,
        mobs,
        tasks,
        participants,
        deeds,
        cascade,
        follows,
        pledges,
        campaigns,
        summaries,
    ):
        app.register_blueprint(routes.blueprint)
    app.register_blueprint(pages)  # last: its catch-all serves the app's static files

    # The domain tells clients through Socket.IO and runs its background work as the server's
    # tasks (greenlets under gevent).
    ports.install(SocketNotifier(), SocketHost())
    timeline.install(app.extensions["goodmob.sessions"])  # numbered events, after each commit
    register_namespaces()  # /participant, /live, /organizer, /follow
    # The library versions server/realtime/wsfast.py and server/realtime/rooms.py were tested
    # with, or the stock path (one warning, goodmob_wsfast_enabled 0); serve() applies the rest.
    fast = app.extensions["goodmob.wsfast"] = wsfast.check()
    socketio.init_app(
        app,
        async_mode=_async_mode(),
        # the room index (and direct writes), in-process or on Redis (REDIS_URL, its channel)
        client_manager=rooms.client_manager(settings, fast.sockets),
        json=wsfast.SocketJSON,  # orjson for packets and Redis messages
        serializer=wsfast.packet_class(fast.sockets),  # unreadable JSON: InvalidPacketJSON
        **security.socketio_options(settings),  # origin check and message size limit
    )
    wsfast.guard_packets(socketio.server)  # unreadable JSON: a refusal, not a traceback
    # Outermost, so Socket.IO's handshakes pass it too: forwarded headers count only behind
    # PROXY_HOPS trusted proxies.
    app.wsgi_app = security.TrustedProxies(app.wsgi_app, app)
    return app
