"""Unbound Flask extensions, bound to an app in the factory."""

from flask_socketio import SocketIO

__all__ = ["socketio"]

socketio = SocketIO()
