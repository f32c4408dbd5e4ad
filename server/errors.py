"""Typed API errors with an HTTP status and a machine-readable code, in one JSON shape.

``{"error": {"code": "zone_self_intersects", "message": "...", "where": {...}}}``
"""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

__all__ = ["ApiError", "error_body", "unavailable", "register_error_handlers"]


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
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.TimeoutError):  # the pool: every connection in use
        return ApiError(503, "server_busy", "The server is busy; try again in a moment.")
    if isinstance(exc, sa.DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, sa.OperationalError)
    ):
        return ApiError(
            503, "database_unavailable", "The database is unavailable; try again in a moment."
        )
    return None


_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("auth_required", "Authentication is required."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
    429: ("too_many_requests", "Too many requests; slow down."),
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return jsonify(error_body(exc.code, exc.message, exc.where)), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code, message = _HTTP_CODES.get(exc.code or 500, ("http_error", exc.description or ""))
        if exc.code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"The request body is larger than the limit of {limit} bytes."
        response = jsonify(error_body(code, message))
        response.status_code = exc.code or 500
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        busy = unavailable(exc)
        if busy is not None:
            app.logger.warning("%s: %s", busy.code, type(exc).__name__)
            response = jsonify(error_body(busy.code, busy.message))
            response.headers["Retry-After"] = "2"
            return response, 503
        app.logger.exception("unhandled error")
        return jsonify(error_body("internal_error", "Something went wrong on our side.")), 500
