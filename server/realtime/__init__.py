"""The Socket.IO layer: one module per namespace, the broadcasts and their throttles, the
snapshots a socket gets on joining, and the Socket.IO/Engine.IO plumbing (rooms, wsfast,
wire). May import ``server.domain`` and ``server.infra``; never ``server.http``."""
