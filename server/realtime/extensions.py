"""Unbound Flask extensions, bound to an app in the factory."""

from flask_socketio import SocketIO

__all__ = ["socketio"]

# Its client manager (server/realtime/rooms.py), packet class and JSON module
# (server/realtime/wsfast.py) are handed to it by ``create_app`` through ``init_app``.
socketio = SocketIO()
