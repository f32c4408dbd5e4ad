"""The Flask application factory and the per-request database session."""

from __future__ import annotations

import logging

from flask import Flask, g

from config import Settings, load_settings
from server.db import make_engine, make_session_factory
from server.extensions import socketio

__all__ = ["create_app", "db_session"]


def _async_mode() -> str:
    try:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            return "gevent"
    except ImportError:  # pragma: no cover
        pass
    return "threading"


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """Build an app from ``settings`` (default: the environment), with ``overrides`` applied."""
    if settings is None:
        settings = load_settings(**overrides)
    elif overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)

    app = Flask(__name__, static_folder=None)
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
        from server.migrate import upgrade

        upgrade(engine)
    app.extensions["goodmob.engine"] = engine
    app.extensions["goodmob.sessions"] = make_session_factory(engine)

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()

    from server.api import api
    from server.errors import register_error_handlers
    from server.pages import pages

    register_error_handlers(app)
    app.register_blueprint(api)
    app.register_blueprint(pages)

    from server import timeline
    from server.realtime import emit_mob_event, register_namespaces

    timeline.install(app.extensions["goodmob.sessions"], emit_mob_event)
    register_namespaces()
    socketio.init_app(
        app,
        async_mode=_async_mode(),
        message_queue=settings.redis_url or None,
        channel=settings.redis_channel,
        cors_allowed_origins=[],  # same origin only
    )
    return app


def db_session():
    """The request's SQLAlchemy session, opened on first use and closed at teardown."""
    from flask import current_app

    if "db" not in g:
        g.db = current_app.extensions["goodmob.sessions"]()
    return g.db
