"""Typed API errors with an HTTP status and a machine-readable code, in one JSON shape.

``{"error": {"code": "zone_self_intersects", "message": "...", "where": {...}}}``

No Flask here: the domain raises these; ``server.http.errors`` turns them into responses.
"""

from __future__ import annotations

from sqlalchemy import exc as sa

__all__ = ["ApiError", "error_body", "unavailable"]


class ApiError(Exception):
    """An error a client can act on: ``status`` (HTTP), ``code`` (stable), ``message`` (human)."""

    def __init__(self, status: int, code: str, message: str, where: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.where = where


def error_body(code: str, message: str, where: dict | None = None) -> dict:
    error = {"code": code, "message": message}
    if where is not None:
        error["where"] = where
    return {"error": error}


def unavailable(exc: BaseException) -> ApiError | None:
    """The 503 a client should get for ``exc`` when the database is out of reach (down,
    restarting) or every pooled connection is busy past the pool timeout; None otherwise.
    Nothing was committed in either case, so the client may retry the same request."""
    if isinstance(exc, sa.TimeoutError):  # the pool: every connection in use
        return ApiError(503, "server_busy", "The server is busy; try again in a moment.")
    if isinstance(exc, sa.DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, sa.OperationalError)
    ):
        return ApiError(
            503, "database_unavailable", "The database is unavailable; try again in a moment."
        )
    return None
