"""Parsing and checking of JSON request bodies and query parameters, with specific errors.

The field checks themselves are in ``server.domain.fields`` (socket events use them too);
they are re-exported here for the handlers."""

from __future__ import annotations

import json
import math

from flask import Request

from server.domain.fields import get_bool, get_int, get_number, get_str, get_time, reject_unknown
from server.infra.errors import ApiError

__all__ = [
    "json_body",
    "reject_unknown",
    "get_str",
    "get_int",
    "get_number",
    "get_time",
    "get_bool",
    "query_number",
]


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "payload_too_large", f"The request body is larger than the limit of {limit} bytes."
    )


def _body(request: Request) -> bytes:
    """The raw body. A body with a Content-Length over the limit was refused by werkzeug
    (413) before this; a chunked one (no Content-Length) is read up to the limit, and if the
    client sent more than that it is refused with the same 413, not cut and then misread."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    # werkzeug stops reading a chunked body at the limit: one byte more on the WSGI stream
    # (the server de-chunks) means the client sent more than the limit.
    chunked = request.content_length is None and limit is not None
    if chunked and len(raw) >= limit and request.environ["wsgi.input"].read(1):
        raise _too_large(limit)
    return raw


def json_body(request: Request) -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong and where
    (413 ``payload_too_large`` past ``MAX_BODY_BYTES``, chunked or not)."""
    raw = _body(request)
    if not raw:
        raise ApiError(400, "body_missing", "Send a JSON object as the request body.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, "invalid_json", "The body is not UTF-8 text.", {"byte": exc.start}
        ) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            {"line": exc.lineno, "column": exc.colno},
        ) from None
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc}.") from None
    except RecursionError:  # `[[[[…` a thousand deep: refused, never a 500 with a traceback
        raise ApiError(
            400, "invalid_json", "The body is not valid JSON: it is nested too deeply."
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "body_not_object", "The body must be a JSON object.")
    return data


def query_number(
    args, name: str, *, lo: float, hi: float, required: bool = True, default=None
) -> float | None:
    raw = args.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(
                400, "param_missing", f"The query parameter {name!r} is required.", {"param": name}
            )
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ApiError(
            400,
            "param_wrong_type",
            f"The query parameter {name!r} must be a number, got {raw!r}.",
            {"param": name},
        )
    if not lo <= value <= hi:
        raise ApiError(
            400,
            "param_out_of_range",
            f"The query parameter {name!r} is {value:g}; it must be between {lo:g} and {hi:g}.",
            {"param": name},
        )
    return value
