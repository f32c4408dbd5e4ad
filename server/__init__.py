"""The Good Mob server: Flask app factory, models, domain operations, API and Socket.IO."""

from server.app import create_app, db_session
from server.extensions import socketio

__all__ = ["create_app", "db_session", "socketio"]
