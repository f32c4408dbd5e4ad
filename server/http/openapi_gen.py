"""The OpenAPI 3.1 document, generated from the route table (the app's ``url_map``), the
per-route documentation (``server.http.routes_doc.ROUTES``: summary, answers, token) and the
pydantic models (bodies, query parameters, answers), with the limits of the app's settings
and the 429 answers of the rate limits.

Every ``/api/`` route must be documented and every documented operation must be a route:
``openapi_document`` raises otherwise (the OpenAPI test catches it).
"""

from __future__ import annotations

import re

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from config import Settings
from server.http.routes_doc import INFO, ROUTES, Op, Reply
from server.http.schemas.bodies import REQUEST_MODELS
from server.http.schemas.fields import schema_settings
from server.http.schemas.queries import QUERY_MODELS
from server.http.schemas.responses import RESPONSE_MODELS
from server.infra.ratelimit import HTTP_LIMITS

__all__ = ["openapi_document", "build_document", "operations"]

_REF = "#/components/schemas/{model}"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class _Generator(GenerateJsonSchema):
    """JSON schemas as the document wants them: no generated titles, and a field's default
    only when its type documents one (a model default of None is "not sent", not null)."""

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def default_schema(self, schema):
        return self.generate_inner(schema["schema"])

    def nullable_schema(self, schema):
        inner = self.generate_inner(schema["schema"])
        if isinstance(inner.get("type"), str) and "$ref" not in inner:
            return {**inner, "type": [inner["type"], "null"]}
        return {"oneOf": [inner, {"type": "null"}]}


def _tidy(value):
    """Titles and ``additionalProperties: true`` dropped, ``x-ref`` made a ``$ref``."""
    if isinstance(value, dict):
        if "x-ref" in value:
            return {"$ref": _REF.format(model=value["x-ref"])}
        out = {}
        for key, item in value.items():
            if key == "title" and isinstance(item, str):
                continue
            if key == "additionalProperties" and item is True:
                continue
            if key == "items" and item == {}:
                continue
            out[key] = _tidy(item)
        return out
    if isinstance(value, list):
        return [_tidy(item) for item in value]
    return value


def _schemas(models: list[type[BaseModel]], settings: Settings) -> dict:
    with schema_settings(settings):
        _, top = models_json_schema(
            [(m, "validation") for m in models], ref_template=_REF, schema_generator=_Generator
        )
    return _tidy(top.get("$defs", {}))


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": _REF.format(model=model.__name__)}


# --- paths --------------------------------------------------------------------------------------

_ROW_ID = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}  # <int:…>: 1 to 18 digits
_PUBLIC_ID = {"type": "string", "pattern": "^[a-z0-9]{8}$"}
_PATH_PARAMETERS = {
    "mob_id": (_PUBLIC_ID, "The mob's short public id."),
    "campaign_id": (_PUBLIC_ID, "The campaign's id."),
    "task_id": (_ROW_ID, "The task's id."),
    "deed_id": (_ROW_ID, "The deed's id."),
    "follow_id": (_ROW_ID, "The follow's id."),
    "pledge_id": (_ROW_ID, "The pledge's id."),
}
_PLACEHOLDER = re.compile(r"<(?:(\w+):)?(\w+)>")


def openapi_path(rule: str) -> str:
    """``/api/mobs/<mob_id>/tasks/<int:task_id>`` → ``/api/mobs/{mob_id}/tasks/{task_id}``."""
    return _PLACEHOLDER.sub(r"{\2}", rule)


def _path_parameters(rule: str) -> list[dict]:
    out = []
    for converter, name in _PLACEHOLDER.findall(rule):
        schema, description = _PATH_PARAMETERS[name]
        if (converter == "int") != (schema is _ROW_ID):  # pragma: no cover - a new route
            raise RuntimeError(f"path parameter {name} of {rule}: document its converter")
        param = {"name": name, "in": "path", "required": True, "schema": dict(schema)}
        param["description"] = description
        out.append(param)
    return out


def _query_parameters(model: type[BaseModel], schemas: dict) -> list[dict]:
    body = schemas[model.__name__]
    required = set(body.get("required", []))
    out = []
    for name, schema in body["properties"].items():
        schema = dict(schema)
        description = schema.pop("description", None)
        param = {"name": name, "in": "query"}
        if name in required:
            param["required"] = True
        param["schema"] = schema
        if description:
            param["description"] = description
        out.append(param)
    return out


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }


def _reply(reply: Reply | str) -> dict:
    if isinstance(reply, str):
        return _error(reply)
    out: dict = {"description": reply.description}
    if reply.model is not None:
        schema = reply.model if isinstance(reply.model, dict) else _ref(reply.model)
        out["content"] = {reply.media: {"schema": schema}}
    return out


_RATE_SETTING = {
    "read": "rate_limit_read_addr",
    "join": "rate_limit_join_addr",
    "auth": "rate_limit_auth_addr",
    "anon": "rate_limit_anon_addr",
}


def _too_many(limit: str, settings: Settings, per_account: bool) -> dict:
    name = _RATE_SETTING[limit]
    count, _, seconds = getattr(settings, name).partition("/")
    text = f"Over the rate limit {name.upper()} ({count} per {seconds} s per address"
    if per_account:
        account = settings.rate_limit_auth_account.partition("/")
        text += (
            f"; log-ins also RATE_LIMIT_AUTH_ACCOUNT, {account[0]} per {account[2]} s per account"
        )
    text += "): rate_limited, with retry_after_s and a Retry-After header."
    return {
        "description": text,
        "headers": {
            "Retry-After": {
                "description": "Whole seconds to wait (at least 1).",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="RateLimited")}}},
    }


def _rate_limit(method: str, path: str, endpoint: str) -> str | None:
    if method == "GET" and path.startswith("/api/"):
        return "read"
    if method == "POST":
        return HTTP_LIMITS.get(endpoint)
    return None


def _operation(op: Op, method: str, path: str, endpoint: str, settings, schemas) -> dict:
    out: dict = {"summary": op.summary}
    if op.tags:
        out["tags"] = list(op.tags)
    texts = [op.description, op.auth and f"Bearer token: {op.auth}."]
    if any(texts):
        out["description"] = " ".join(filter(None, texts))
    if op.auth:
        out["security"] = [{"bearer": []}]
    if op.query is not None:
        out["parameters"] = _query_parameters(op.query, schemas)
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    responses = {str(status): _reply(reply) for status, reply in op.responses.items()}
    if op.auth and "401" not in responses:
        responses["401"] = _error(
            "No token, or an invalid or expired one (auth_required, token_invalid, token_expired)."
        )
    if op.body is not None and "413" not in responses:
        responses["413"] = _error(
            f"The body is larger than MAX_BODY_BYTES ({settings.max_body_bytes} bytes): "
            "payload_too_large."
        )
    limit = _rate_limit(method, path, endpoint)
    if limit is not None:
        responses["429"] = _too_many(limit, settings, path == "/api/sessions")
    out["responses"] = dict(sorted(responses.items()))
    return out


def operations(routes: dict[str, Op]) -> list[tuple[str, str]]:
    """``(METHOD, path)`` of every documented operation."""
    return [tuple(key.split(" ", 1)) for key in routes]


def build_document(rules, settings: Settings, routes: dict[str, Op], info: dict) -> dict:
    """The document of ``rules`` (``(rule, methods, endpoint)``) documented by ``routes``."""
    models = list(RESPONSE_MODELS) + list(REQUEST_MODELS) + list(QUERY_MODELS)
    schemas = _schemas(models, settings)
    paths: dict = {}
    seen = set()
    for rule, methods, endpoint in sorted(rules):
        if not rule.startswith("/api/"):
            continue
        path = openapi_path(rule)
        item = paths.setdefault(path, {})
        params = _path_parameters(rule)
        if params:
            item["parameters"] = params
        for method in sorted(set(methods) & set(_METHODS)):
            key = f"{method} {path}"
            if key not in routes:
                raise RuntimeError(f"{key} is a route but not documented (routes_doc.ROUTES)")
            seen.add(key)
            item[method.lower()] = _operation(
                routes[key], method, path, endpoint, settings, schemas
            )
    stale = sorted(set(routes) - seen)
    if stale:
        raise RuntimeError(f"documented but not routes: {stale}")
    for model in QUERY_MODELS:  # documented as parameters, not as components
        schemas.pop(model.__name__, None)
    return {
        "openapi": "3.1.0",
        "info": info,
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(schemas.items())),
        },
        "paths": dict(sorted(paths.items())),
    }


_EXTENSION = "goodmob.openapi"


def openapi_document(app: Flask) -> dict:
    """The app's document, made once per app (its routes and settings do not change)."""
    doc = app.extensions.get(_EXTENSION)
    if doc is None:
        rules = [(r.rule, tuple(r.methods or ()), r.endpoint) for r in app.url_map.iter_rules()]
        doc = build_document(rules, app.config["SETTINGS"], ROUTES, INFO)
        app.extensions[_EXTENSION] = doc
    return doc
