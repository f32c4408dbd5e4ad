"""Error responses: ``ApiError``, HTTP errors and unexpected exceptions as one JSON shape."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from server.infra.errors import ApiError, error_body, unavailable

__all__ = ["register_error_handlers"]


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
