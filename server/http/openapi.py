"""``GET /api/openapi.json``: the OpenAPI document of the REST API, generated from the route
table and the models (``server.http.openapi_gen``)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from server.http.openapi_gen import openapi_document

__all__ = ["blueprint"]

blueprint = Blueprint("openapi", __name__, url_prefix="/api")


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(current_app))
