"""Parsing and checking of JSON request bodies and query parameters, with specific errors."""

from __future__ import annotations

import json
import math
from datetime import datetime

from flask import Request

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


def reject_unknown(data: dict, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(
            400,
            "field_unknown",
            f"Unknown field {unknown[0]!r}; allowed fields are {', '.join(sorted(allowed))}.",
            {"field": unknown[0]},
        )


def _missing(name: str) -> ApiError:
    return ApiError(400, "field_missing", f"The field {name!r} is required.", {"field": name})


def _wrong_type(name: str, expected: str) -> ApiError:
    return ApiError(
        400, "field_wrong_type", f"The field {name!r} must be {expected}.", {"field": name}
    )


def get_str(
    data: dict,
    name: str,
    *,
    required: bool = True,
    default: str | None = None,
    max_len: int = 200,
    min_len: int = 1,
) -> str | None:
    if name not in data or data[name] is None:
        if required:
            raise _missing(name)
        return default
    value = data[name]
    if not isinstance(value, str):
        raise _wrong_type(name, "a string")
    value = value.strip()
    if len(value) < min_len:
        raise ApiError(
            400,
            "field_too_short",
            f"The field {name!r} must have at least {min_len} character(s).",
            {"field": name},
        )
    if len(value) > max_len:
        raise ApiError(
            400,
            "field_too_long",
            f"The field {name!r} must have at most {max_len} characters.",
            {"field": name},
        )
    return value


def _out_of_range(name: str, value, lo, hi) -> ApiError:
    return ApiError(
        400,
        "field_out_of_range",
        f"The field {name!r} is {value}; it must be between {lo} and {hi}.",
        {"field": name},
    )


def get_int(
    data: dict, name: str, *, lo: int, hi: int, required: bool = True, default: int | None = None
) -> int | None:
    if name not in data or data[name] is None:
        if required:
            raise _missing(name)
        return default
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _wrong_type(name, "an integer")
    if not lo <= value <= hi:
        raise _out_of_range(name, value, lo, hi)
    return value


def get_number(
    data: dict,
    name: str,
    *,
    lo: float,
    hi: float,
    required: bool = True,
    default: float | None = None,
) -> float | None:
    if name not in data or data[name] is None:
        if required:
            raise _missing(name)
        return default
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _wrong_type(name, "a number")
    if not lo <= value <= hi:
        raise _out_of_range(name, value, lo, hi)
    return float(value)


def get_bool(data: dict, name: str, *, default: bool) -> bool:
    if name not in data or data[name] is None:
        return default
    if not isinstance(data[name], bool):
        raise _wrong_type(name, "true or false")
    return data[name]


def get_time(data: dict, name: str, *, required: bool = True) -> datetime | None:
    """An ISO 8601 date-time that carries its UTC offset (``2026-12-05T14:00:00+01:00``)."""
    if name not in data or data[name] is None:
        if required:
            raise _missing(name)
        return None
    value = data[name]
    if not isinstance(value, str):
        raise _wrong_type(name, "an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400,
            "time_invalid",
            f"The field {name!r} is not an ISO 8601 date-time: {value!r}.",
            {"field": name},
        ) from None
    if parsed.tzinfo is None:
        raise ApiError(
            400,
            "time_without_offset",
            f"The field {name!r} must carry a UTC offset, e.g. 2026-12-05T14:00:00+01:00 "
            "or a trailing Z.",
            {"field": name},
        )
    return parsed


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
