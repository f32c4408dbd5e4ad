"""Unbound Flask extensions, bound to an app in the factory."""

from flask_socketio import SocketIO

from server import rooms

__all__ = ["socketio"]

rooms.install()  # O(1) room bookkeeping on disconnect (see server/rooms.py)

socketio = SocketIO()
