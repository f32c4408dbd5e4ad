"""The Good Mob server, in layers (docs/ARCHITECTURE.md): ``server.infra`` (database, models,
errors, logs, metrics, security, rate limits) < ``server.domain`` (the rules) <
``server.http`` and ``server.realtime`` (the two ways in) < ``server.app`` (wiring).

The names below are loaded lazily so that ``python -m server`` can patch the standard library
for gevent before Flask, ssl and the database drivers are imported.
"""

__all__ = ["create_app", "db_session", "socketio"]


def __getattr__(name: str):
    # Lazy on purpose (gevent must patch before Flask is imported), not to dodge a circle.
    if name == "create_app":
        from server.app import create_app

        return create_app
    if name == "db_session":
        from server.infra.db import db_session

        return db_session
    if name == "socketio":
        from server.realtime.extensions import socketio

        return socketio
    raise AttributeError(f"module 'server' has no attribute {name!r}")
