"""Field types of the request models: each checks one JSON value exactly as the hand-written
parsing did (``server.http.validate``: the same code, message and ``where``), and describes itself
in the OpenAPI document with its limits read from the settings.

A model field is ``name: Text(120)`` (required: absent or null → ``field_missing``) or
``name: Text(5000, min_len=0, default="") = ""`` (optional: absent → the model's default,
null → ``default``). ``parse`` validates a body against a model and raises the one
``ApiError`` the old code raised first: an unknown field before anything else (the first in
sorted order), then the fields in the order the model declares them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from config import Settings
from server.http import validate
from server.infra.errors import ApiError

__all__ = [
    "REQUIRED",
    "Setting",
    "Check",
    "Text",
    "Slug",
    "Choice",
    "Int",
    "Number",
    "Bool",
    "Time",
    "Raw",
    "Param",
    "parse",
    "body",
    "check_unknown",
    "check_field",
    "schema_settings",
    "current_settings",
]

M = TypeVar("M", bound=BaseModel)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # a null value is an error (field_missing), not a default

# The settings the JSON schemas are made with (``schema_settings``), when not validating.
_schema_settings: ContextVar[Settings | None] = ContextVar("schema_settings", default=None)


@dataclass(frozen=True)
class Setting:
    """A limit read from the settings (``Setting("duration_max_s")``) when a value is checked
    and when the document is made, never frozen at import."""

    name: str

    def of(self, settings: Settings):
        return getattr(settings, self.name)


def _value(limit, settings: Settings):
    return limit.of(settings) if isinstance(limit, Setting) else limit


def current_settings() -> Settings:
    settings = _schema_settings.get()
    if settings is None:
        settings = current_app.config["SETTINGS"]
    return settings


class schema_settings:  # noqa: N801 - a context manager used like a function
    """``with schema_settings(s):`` JSON schemas made inside show the limits of ``s``."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def __enter__(self):
        self._token = _schema_settings.set(self.settings)
        return self.settings

    def __exit__(self, *exc):
        _schema_settings.reset(self._token)


@dataclass(frozen=True, eq=False)
class Check:
    """Annotation metadata: ``check(value, name, settings)`` returns the parsed value or raises
    ``ApiError``; ``schema(settings)`` is the field's JSON schema."""

    check: Callable[[Any, str, Settings], Any]
    schema: Callable[[Settings], dict]

    def __get_pydantic_core_schema__(self, source, handler):
        def run(value, info):
            settings = (info.context or {}).get("settings") or current_settings()
            try:
                return self.check(value, info.field_name, settings)
            except ApiError as exc:
                raise PydanticCustomError("api_error", "{message}", {"error": exc}) from None

        return core_schema.with_info_plain_validator_function(run)

    def __get_pydantic_json_schema__(self, _core_schema, _handler):
        return self.schema(current_settings())


def _field(check, schema) -> Any:
    return Annotated[Any, Check(check, schema)]


def _doc(schema: dict, description: str | None, default=REQUIRED, documented_default=True):
    if description:
        schema["description"] = description
    if documented_default and default is not REQUIRED and default is not None:
        schema["default"] = default
    return schema


_NON_BLANK = r"\S"  # strings are trimmed; a blank one is missing (or too short)


def Text(  # noqa: N802 - a type
    max_len,
    *,
    min_len: int = 1,
    default=REQUIRED,
    pattern: str | None = None,
    fmt: str | None = None,
    check: Callable[[str, str], None] | None = None,
    description: str | None = None,
) -> Any:
    """A string, trimmed, of ``min_len`` to ``max_len`` characters (``field_too_short``,
    ``field_too_long``); ``check(value, name)`` may refuse it further."""

    def run(value, name, settings):
        required = default is REQUIRED
        out = validate.get_str(
            {name: value},
            name,
            required=required,
            default=None if required else default,
            max_len=_value(max_len, settings),
            min_len=min_len,
        )
        if check is not None and out is not None:
            check(out, name)
        return out

    def schema(settings):
        out: dict = {"type": "string"}
        if fmt:
            out["format"] = fmt
        if min_len > 1:
            out["minLength"] = min_len
        out["maxLength"] = _value(max_len, settings)
        if pattern or min_len >= 1:
            out["pattern"] = pattern or _NON_BLANK
        return _doc(out, description, default)

    return _field(run, schema)


def Slug(max_len: int, regex: str, message: str, *, default=REQUIRED, description=None) -> Any:  # noqa: N802
    """A ``Text`` matching ``regex`` (else ``field_invalid`` with ``message``)."""
    compiled = re.compile(regex)

    def check(value, name):
        if not compiled.match(value):
            raise ApiError(400, "field_invalid", message, {"field": name})

    return Text(max_len, default=default, pattern=regex, check=check, description=description)


def Choice(  # noqa: N802
    options: tuple[str, ...],
    *,
    max_len: int = 10,
    code: str = "field_invalid",
    message: str,
    default=REQUIRED,
    description: str | None = None,
) -> Any:
    """One of ``options`` (a ``Text`` first, then ``code`` with ``message``)."""

    def run(value, name, settings):
        required = default is REQUIRED
        out = validate.get_str(
            {name: value}, name, required=required, default=None if required else default,
            max_len=max_len,
        )  # fmt: skip
        if out not in options and not (out is None and not required):
            raise ApiError(400, code, message, {"field": name})
        return out

    def schema(settings):
        return _doc({"enum": list(options)}, description, default)

    return _field(run, schema)


def Int(lo, hi, *, default=REQUIRED, description: str | None = None, doc_default=True) -> Any:  # noqa: N802
    """An integer (a float with no fraction passes) in ``lo..hi`` (``field_out_of_range``)."""

    def run(value, name, settings):
        required = default is REQUIRED
        return validate.get_int(
            {name: value}, name, lo=_value(lo, settings), hi=_value(hi, settings),
            required=required, default=None if required else default,
        )  # fmt: skip

    def schema(settings):
        out = {"type": "integer", "minimum": _value(lo, settings), "maximum": _value(hi, settings)}
        return _doc(out, description, default, doc_default)

    return _field(run, schema)


def Number(lo, hi, *, default=REQUIRED, description: str | None = None) -> Any:  # noqa: N802
    """A finite number in ``lo..hi``."""

    def run(value, name, settings):
        required = default is REQUIRED
        return validate.get_number(
            {name: value}, name, lo=_value(lo, settings), hi=_value(hi, settings),
            required=required, default=None if required else default,
        )  # fmt: skip

    def schema(settings):
        out = {"type": "number", "minimum": _value(lo, settings), "maximum": _value(hi, settings)}
        return _doc(out, description, default)

    return _field(run, schema)


def Bool(*, default: bool, description: str | None = None) -> Any:  # noqa: N802
    """true or false; null is the default."""

    def run(value, name, settings):
        return validate.get_bool({name: value}, name, default=default)

    return _field(run, lambda s: _doc({"type": "boolean"}, description, default))


def Time(*, default=REQUIRED, description: str | None = None) -> Any:  # noqa: N802
    """An ISO 8601 date-time with its UTC offset (``time_invalid``, ``time_without_offset``)."""

    def run(value, name, settings):
        return validate.get_time({name: value}, name, required=default is REQUIRED)

    def schema(settings):
        return _doc({"type": "string", "format": "date-time"}, description)

    return _field(run, schema)


def Raw(  # noqa: N802
    schema: dict | Callable[[Settings], dict],
    check: Callable[[Any, str, Settings], Any] | None = None,
) -> Any:
    """Any JSON value, checked by ``check`` (or later, by the domain) and documented as
    ``schema``."""
    make = schema if callable(schema) else (lambda s: dict(schema))
    return _field(check or (lambda value, name, settings: value), make)


def Param(  # noqa: N802
    lo, hi, *, default=REQUIRED, integer: bool = False, description: str | None = None
) -> Any:
    """A numeric query parameter (``param_missing``, ``param_wrong_type``,
    ``param_out_of_range``)."""

    def run(value, name, settings):
        required = default is REQUIRED
        fallback = None if required else _value(default, settings)
        out = validate.query_number(
            {name: value} if value is not None else {}, name, lo=_value(lo, settings),
            hi=_value(hi, settings), required=required, default=fallback,
        )  # fmt: skip
        return int(out) if integer and out is not None else out

    def schema(settings):
        out = {
            "type": "integer" if integer else "number",
            "minimum": _value(lo, settings),
            "maximum": _value(hi, settings),
        }
        return _doc(out, description, _value(default, settings))

    return _field(run, schema)


# --- parsing --------------------------------------------------------------------------------


def field_names(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def check_unknown(model: type[BaseModel], data: dict, also: set[str] = frozenset()) -> None:
    """``field_unknown`` for the first (sorted) field the model does not have."""
    validate.reject_unknown(data, field_names(model) | set(also))


def parse(
    model: type[M], data: dict, settings: Settings | None = None, *, also: set[str] = frozenset()
) -> M:
    """``data`` (a JSON object) as ``model``, or the ``ApiError`` of its first fault.

    ``also``: names accepted and ignored (the socket controls send ``mob`` with the body)."""
    check_unknown(model, data, also)
    if also:
        data = {k: v for k, v in data.items() if k not in also}
    try:
        return model.model_validate(data, context={"settings": settings or current_settings()})
    except ValidationError as exc:
        raise _first_error(model, exc) from None


def check_field(model: type[BaseModel], data: dict, name: str, settings: Settings | None = None):
    """One field of ``data`` checked as ``model`` declares it (absent is null): for a handler
    that must look something up between two fields, as it always did."""
    check = next(m for m in model.model_fields[name].metadata if isinstance(m, Check))
    return check.check(data.get(name), name, settings or current_settings())


def body(model: type[M], *, also: set[str] = frozenset(), optional: bool = False) -> M:
    """The request's JSON body as ``model`` (``json_body``'s errors for a body that is not a
    JSON object: syntax error with its line and column, nesting, size); ``optional``: an
    empty body is ``{}``."""
    if optional and not request.get_data(cache=True):
        return parse(model, {}, also=also)
    return parse(model, validate.json_body(request), also=also)


def _first_error(model: type[BaseModel], exc: ValidationError) -> ApiError:
    errors = exc.errors(include_url=False)
    error = errors[0]  # pydantic reports the fields in declaration order
    if error["type"] == "api_error":
        return error["ctx"]["error"]
    name = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "missing":
        return ApiError(400, "field_missing", f"The field {name!r} is required.", {"field": name})
    return ApiError(400, "field_invalid", f"The field {name!r} is not valid.", {"field": name})
