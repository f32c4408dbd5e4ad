"""The served OpenAPI document is valid and describes every API route."""

import re

from openapi_spec_validator import validate


def test_openapi_document_is_valid_and_complete(app, client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    validate(spec)
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in spec["paths"], f"{path} is not documented"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {path} is not documented"


def test_errors_have_one_shape(client, db):
    for method, url, status in (
        ("GET", "/api/nowhere", 404),
        ("POST", "/api/nowhere", 404),  # not the page catch-all's 405
        ("DELETE", "/api/mobs/zzz/tasks", 405),
        ("PUT", "/api/mobs", 405),
        ("GET", "/api/mobs/zzz", 404),
    ):
        r = client.open(url, method=method)
        assert r.status_code == status, (method, url)
        if status == 405:
            assert "POST" in r.headers["Allow"]
        error = r.get_json()["error"]
        assert set(error) <= {"code", "message", "where"} and error["code"] and error["message"]
