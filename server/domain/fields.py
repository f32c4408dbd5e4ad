"""Checking the fields of a JSON object (a request body or a socket event's data), with
specific errors: ``field_missing``, ``field_wrong_type``, ``field_too_long`` … and ``where``.

Plain dicts in, plain values or ``ApiError`` out: the HTTP layer (``server.http.validate``)
and the socket namespaces use the same checks."""

from __future__ import annotations

import math
from datetime import datetime

from server.infra.errors import ApiError

__all__ = ["reject_unknown", "get_str", "get_int", "get_number", "get_time", "get_bool"]


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
