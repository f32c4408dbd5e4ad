"""``GET /api/openapi.json``: the OpenAPI document of the REST API (``openapi_doc``)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from server.http.openapi_doc import openapi_document

__all__ = ["blueprint"]

blueprint = Blueprint("openapi", __name__, url_prefix="/api")


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
