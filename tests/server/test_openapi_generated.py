"""The OpenAPI document generated from the route table and the models (server/http/
openapi_gen.py): valid, every route documented, nothing of the hand-written document lost
(tests/server/data/openapi_before.json, the document served before the models, issue 18
item 3), limits read from the settings, the 429 answers listed."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from config import load_settings
from server.http.openapi_gen import build_document
from server.http.routes_doc import INFO, ROUTES
from server.http.schemas import bodies as b

BEFORE = json.loads((Path(__file__).parent / "data" / "openapi_before.json").read_text())
S = load_settings(env="test")


# Routes added since the before-document (issue 19: calendar, reminders).
ADDED_SINCE = [
    ("/api/mobs.ics", ("GET",), ""),
    ("/api/mobs/<mob_id>.ics", ("GET",), ""),
    ("/api/mobs/<mob_id>/organizer/mobs.ics", ("GET",), ""),
    ("/api/followers/me/reminders/<mob_id>", ("PUT", "DELETE"), ""),
    ("/api/mobs/<mob_id>/participants/me/push-subscription", ("PUT", "DELETE"), ""),
]

# Answers removed on purpose since the before-document: a sign-up no longer tells whether the
# email has an account (issue 15 §9), so no 201 with a token and no 409 email_taken; 202.
REMOVED_SINCE = {("post", "/api/organizers", "201"), ("post", "/api/organizers", "409")}


def _rules_of(doc: dict) -> list[tuple[str, tuple, str]]:
    """The route table the before-document describes, as (rule, methods, endpoint), and the
    routes added since."""
    rules = list(ADDED_SINCE)
    converters = {"task_id", "deed_id", "follow_id", "pledge_id"}
    for path, item in doc["paths"].items():
        rule = re.sub(
            r"{(\w+)}", lambda m: f"<int:{m[1]}>" if m[1] in converters else f"<{m[1]}>", path
        )
        methods = tuple(m.upper() for m in item if m != "parameters")
        rules.append((rule, methods, ""))
    return rules


@pytest.fixture(scope="module")
def doc():
    return json.loads(json.dumps(build_document(_rules_of(BEFORE), S, ROUTES, INFO)))


def _statuses(d: dict) -> set[tuple[str, str, str]]:
    return {
        (method, path, status)
        for path, item in d["paths"].items()
        for method, op in item.items()
        if method != "parameters"
        for status in op["responses"]
    }


def test_the_generated_document_is_valid(doc):
    validate(doc)


def test_no_path_method_or_status_of_the_hand_written_document_is_lost(doc):
    assert set(BEFORE["paths"]) <= set(doc["paths"])
    assert not _statuses(BEFORE) - REMOVED_SINCE - _statuses(doc)
    assert not REMOVED_SINCE & _statuses(doc)


def test_request_schemas_keep_their_fields_and_required_ones(doc):
    schemas, before = doc["components"]["schemas"], BEFORE["components"]["schemas"]
    for name, old in before.items():
        new = schemas[name]
        assert set(old.get("properties", {})) <= set(new.get("properties", {})), name
        assert set(old.get("required", [])) == set(new.get("required", [])), name
        assert old.get("additionalProperties") == new.get("additionalProperties"), name


def test_limits_come_from_the_settings():
    s = replace(S, duration_max_s=7200, announcement_max_chars=99, nearby_limit=20)
    doc = build_document(_rules_of(BEFORE), s, ROUTES, INFO)
    schemas = doc["components"]["schemas"]
    assert schemas["MobCreate"]["properties"]["duration_s"]["maximum"] == 7200
    assert schemas["MobPatch"]["properties"]["duration_s"]["maximum"] == 7200
    assert schemas["Announcement"]["properties"]["text"]["maxLength"] == 99
    limit = next(p for p in doc["paths"]["/api/mobs"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 20 and limit["schema"]["default"] == 20


def test_rate_limited_answers_are_listed(doc):
    for path, item in doc["paths"].items():
        if "get" in item:
            answer = item["get"]["responses"]["429"]
            assert "RATE_LIMIT_READ_ADDR" in answer["description"], path
            assert answer["headers"]["Retry-After"]["required"] is True
    doc_with_endpoints = build_document(
        [("/api/mobs/<mob_id>/participants", ("POST",), "participants.join_mob")]
        + [r for r in _rules_of(BEFORE) if r[0] != "/api/mobs/<mob_id>/participants"],
        S,
        ROUTES,
        INFO,
    )
    join = doc_with_endpoints["paths"]["/api/mobs/{mob_id}/participants"]["post"]
    assert "RATE_LIMIT_JOIN_ADDR" in join["responses"]["429"]["description"]


def test_an_undocumented_route_is_refused():
    with pytest.raises(RuntimeError, match="not documented"):
        build_document(_rules_of(BEFORE) + [("/api/new", ("GET",), "x")], S, ROUTES, INFO)
    with pytest.raises(RuntimeError, match="not routes"):
        build_document(_rules_of(BEFORE)[1:], S, ROUTES, INFO)


# The bodies the domain still checks field by field (follows, push subscriptions, pledges):
# their models must name exactly the fields the server accepts, or the document drifts.
_DOMAIN_CHECKED = [
    ("POST", "/api/followers/me/follows", {"type": "organizer"}, b.FollowOrganizer, "follower"),
    ("POST", "/api/followers/me/follows", {"type": "place"}, b.FollowPlace, "follower"),
    ("PUT", "/api/followers/me/push-subscription", {}, b.PushSubscription, "follower"),
    ("POST", "/api/pledges", {}, b.PledgeCreate, None),
]


@pytest.mark.parametrize("method, url, base, model, token", _DOMAIN_CHECKED)
def test_domain_checked_bodies_accept_the_fields_of_their_models(
    client, method, url, base, model, token
):
    headers = {}
    if token == "follower":
        r = client.post("/api/followers")
        headers = {"Authorization": f"Bearer {r.get_json()['follower_token']}"}
    r = client.open(url, method=method, json={**base, "zzz_unknown": 1}, headers=headers)
    error = r.get_json()["error"]
    assert (r.status_code, error["code"], error["where"]) == (
        400,
        "field_unknown",
        {"field": "zzz_unknown"},
    )
    allowed = error["message"].split("allowed fields are ", 1)[1].rstrip(".").split(", ")
    assert set(allowed) == set(model.model_fields), model.__name__
