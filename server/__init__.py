"""The Good Mob server: Flask app factory, models, domain operations, API and Socket.IO.

The names are loaded lazily so that ``python -m server`` can patch the standard library for
gevent before Flask, ssl and the database drivers are imported.
"""

__all__ = ["create_app", "db_session", "socketio"]


def __getattr__(name: str):
    if name in ("create_app", "db_session"):
        from server import app

        return getattr(app, name)
    if name == "socketio":
        from server.extensions import socketio

        return socketio
    raise AttributeError(f"module 'server' has no attribute {name!r}")
