"""The OpenAPI paths and schemas of the growth routes (cascade, follows, pledges, campaigns,
summaries), as hand-written dicts; ``openapi_doc`` merges them into the served document."""

# size: hand-written OpenAPI dicts, moved as they were from growth.py; to be generated from
# pydantic models (issue 18 item 3).

from __future__ import annotations

from server.domain import summary

__all__ = ["growth_openapi"]

_BEARER = [{"bearer": []}]
# Strings are trimmed, so a blank one is missing (as in server/openapi.py).
_TITLE = {"type": "string", "maxLength": 120, "pattern": r"\S"}
_LABEL = {"type": "string", "maxLength": 80, "pattern": r"\S"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _err(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(schema: str | dict, description: str = "OK", media: str = "application/json") -> dict:
    body = _ref(schema) if isinstance(schema, str) else schema
    return {"description": description, "content": {media: {"schema": body}}}


def _path_param(name: str, schema: dict, description: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


_MOB = _path_param("mob_id", {"type": "string", "pattern": "^[a-z0-9]{8}$"}, "The mob's id.")
_CAMPAIGN = _path_param(
    "campaign_id", {"type": "string", "pattern": "^[a-z0-9]{8}$"}, "The campaign's id."
)
_R400 = _err("Malformed request (see error.code).")
_R401 = _err("No token, or an invalid one (auth_required, token_invalid, token_expired).")
_R403 = _err("Not yours (not_owner).")
_R404 = _err("No such mob, campaign, follow or pledge.")
_R409 = _err("The state forbids it (see error.code).")
_R422 = _err("Understood but refused (see error.code).")
_NO_CONTENT = {"description": "Done"}


def _op(
    summary_text: str,
    responses: dict,
    *,
    auth_kind: str | None = None,
    body=None,
    params=None,
    description: str | None = None,
) -> dict:
    op: dict = {"summary": summary_text, "tags": ["growth"], "responses": responses}
    if description or auth_kind:
        op["description"] = " ".join(
            filter(None, [description, auth_kind and f"Bearer token: {auth_kind}."])
        )
    if auth_kind:
        op["security"] = _BEARER
        responses.setdefault("401", _R401)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _obj(properties: dict, required: list | None = None, *, closed: bool = True) -> dict:
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema


_INT, _STR, _NUM, _BOOL = ({"type": t} for t in ("integer", "string", "number", "boolean"))
_TIME = {"type": "string", "format": "date-time"}
_FC = {
    "type": "object",
    "description": "GeoJSON FeatureCollection (RFC 7946)",
    "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}},
}


def _schemas() -> dict:
    currency_total = _obj(
        {
            "currency": _STR,
            "owed_minor": _INT,
            "owed": _STR,
            "per_deed_minor": _INT,
            "pledges": _INT,
            "waiting_for_threshold": _INT,
        },
        closed=False,
    )
    totals = {"type": "array", "items": _ref("CurrencyTotal")}
    return {
        "ShareLink": _obj({"ref_code": _STR, "url": _STR}, closed=False),
        "ViewBeacon": _obj(
            {
                "client_id": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{8,64}$",
                    "description": "A random id the page made (kept for a day).",
                }
            },
            ["client_id"],
        ),
        "ViewCounted": _obj({"counted": _BOOL}, closed=False),
        "Funnel": _obj(
            {k: _INT for k in ("viewed", "joined", "in_zone", "matched", "done", "deeds_done")},
            closed=False,
        ),
        "Sharer": _obj(
            {
                "rank": _INT,
                "name": {
                    "type": "string",
                    "description": "chosen nickname, the organizer's name, or 'anonymous'",
                },
                "kind": {"enum": ["participant", "organizer"]},
                "brought": _INT,
                "reach": _INT,
                "deeds_led_to": _INT,
            },
            closed=False,
        ),
        "Cascade": _obj(
            {
                "joined": _INT,
                "referred": _INT,
                "via_organizer": _INT,
                "direct": _INT,
                "deeds_via_shares": _INT,
                "depth": _INT,
                "generations": {"type": "array"},
                "sharer_count": _INT,
                "sharers": {"type": "array", "items": _ref("Sharer")},
                "you": {"oneOf": [_ref("Sharer"), {"type": "null"}]},
            },
            closed=False,
        ),
        "CurrencyTotal": currency_total,
        "PledgeTotals": _obj(
            {
                "deeds_counted": _INT,
                "totals": totals,
                "campaign": {
                    "oneOf": [
                        {
                            "type": "object",
                            "properties": {"id": _STR, "deeds_counted": _INT, "totals": totals},
                        },
                        {"type": "null"},
                    ]
                },
            },
            closed=False,
        ),
        "LocalTime": _obj(
            {
                "time_zone": {"type": ["string", "null"]},
                "local": _STR,
                "local_date": _STR,
                "local_time": _STR,
                "utc_offset": _STR,
                "zone_abbreviation": _STR,
            },
            closed=False,
        ),
        "Growth": _obj(
            {
                "mob": _STR,
                "funnel": _ref("Funnel"),
                "cascade": _ref("Cascade"),
                "pledges": _ref("PledgeTotals"),
                "campaign": {"type": ["object", "null"]},
                "go_local": _ref("LocalTime"),
            },
            closed=False,
        ),
        "Follow": _obj(
            {
                "id": _INT,
                "type": {"enum": ["organizer", "place"]},
                "label": _STR,
                "organizer": {"type": "object"},
                "lat": _NUM,
                "lon": _NUM,
                "radius_m": _NUM,
            },
            closed=False,
        ),
        "FollowCreate": {
            "oneOf": [
                _obj(
                    {
                        "type": {"const": "organizer"},
                        "mob": {
                            "type": "string",
                            "pattern": r"\S",
                            "description": "follow the organizer of this mob",
                        },
                        "label": _LABEL,
                    },
                    ["type", "mob"],
                ),
                _obj(
                    {
                        "type": {"const": "place"},
                        "lat": _NUM,
                        "lon": _NUM,
                        "radius_m": {"type": "number", "minimum": 100, "maximum": 50000},
                        "label": _LABEL,
                    },
                    ["type", "lat", "lon", "radius_m"],
                ),
            ]
        },
        "Follower": _obj(
            {"id": _STR, "follows": {"type": "array", "items": _ref("Follow")}, "push": _BOOL},
            closed=False,
        ),
        "FollowerCreated": _obj(
            {
                "follower": _ref("Follower"),
                "follower_token": _STR,
                "vapid_public_key": {"type": ["string", "null"]},
            },
            closed=False,
        ),
        "PushSubscription": _obj(
            {
                "endpoint": {"type": "string", "format": "uri", "maxLength": 1024},
                "keys": _obj({"p256dh": _STR, "auth": _STR}, ["p256dh", "auth"]),
                "expirationTime": {"type": ["number", "null"]},
            },
            ["endpoint", "keys"],
        ),
        "PledgeCreate": _obj(
            {
                "mob": _STR,
                "campaign": _STR,
                "amount_minor": {"type": "integer", "minimum": 1, "description": "per deed"},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"},
                "cap_minor": {"type": "integer", "minimum": 1},
                "threshold_deeds": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "paid only if the target reaches this",
                },
                "sponsor_name": {
                    "type": "string",
                    "maxLength": 80,
                    "pattern": r"\S",
                    "description": "required without a sponsor token",
                },
            },
            ["amount_minor", "currency"],
        ),
        "Pledge": _obj(
            {
                "id": _INT,
                "target": {"type": "object"},
                "amount_minor": _INT,
                "currency": _STR,
                "cap_minor": {"type": ["integer", "null"]},
                "threshold_deeds": {"type": ["integer", "null"]},
                "deeds_counted": _INT,
                "threshold_met": _BOOL,
                "owed_minor": _INT,
                "owed": _STR,
                "created_at": _TIME,
            },
            closed=False,
        ),
        "PledgeCreated": _obj(
            {"pledge": _ref("Pledge"), "sponsor": {"type": "object"}, "sponsor_token": _STR},
            closed=False,
        ),
        "CampaignCreate": _obj(
            {
                "title": _TITLE,
                "description": {"type": "string", "maxLength": 5000},
                "go_at": _TIME,
            },
            ["title", "go_at"],
        ),
        "CampaignPatch": {
            **_obj(
                {
                    "title": _TITLE,
                    "description": {"type": "string", "maxLength": 5000},
                    "go_at": _TIME,
                }
            ),  # fmt: skip
            "minProperties": 1,
        },
        "CampaignAddMob": _obj(
            {"mob": _STR, "time_zone": {"type": "string", "description": "IANA, e.g. Asia/Tokyo"}},
            ["mob"],
        ),
        "Campaign": _obj(
            {
                "id": _STR,
                "title": _STR,
                "description": _STR,
                "organizer": {"type": "object"},
                "go_at": _TIME,
                "go_at_ms": _INT,
                "in_sync": _BOOL,
                "mobs": {"type": "array", "items": {"type": "object"}},
                "counters": {"type": "object", "description": "sum of the mobs' counters"},
                "pledges": {"type": "object"},
                "map": _FC,
                "url": _STR,
            },
            closed=False,
        ),
        "MobCopy": _obj(
            {
                "zone": _ref("Zone"),
                "title": _STR,
                "go_at": _TIME,
                "time_zone": _STR,
                "campaign": _STR,
                "spacing_m": _NUM,
            },
            ["zone"],
        ),
        "TimeZone": _obj({"time_zone": _STR}, ["time_zone"]),
        "Summary": {"type": "object", "description": "The organizer's after-action summary."},
        "PublicSummary": {"type": "object", "description": "Counts only; no one's position."},
    }


def growth_openapi() -> dict:
    """``{"paths", "schemas"}`` of these routes, for server/openapi.py to merge."""
    org, flw, spn = "organizer", "follower (flw.…)", "sponsor (spn.…)"
    ref_q = {
        "name": "ref",
        "in": "query",
        "schema": _STR,
        "description": "your own referral code: adds `you`",
    }
    follow_id = _path_param("follow_id", _INT, "The follow's id.")
    pledge_id = _path_param("pledge_id", _INT, "The pledge's id.")
    table_q = {"name": "table", "in": "query", "schema": {"enum": list(summary.CSV_TABLES)}}
    csv_ok = _ok(_STR, "CSV", "text/csv")
    paths = {
        "/api/mobs/{mob_id}/share-link": {
            "parameters": [_MOB],
            "post": _op(
                "The organizer's share link with its referral code",
                {"200": _ok("ShareLink"), "403": _R403, "404": _R404},
                auth_kind=org,
            ),
        },
        "/api/mobs/{mob_id}/views": {
            "parameters": [_MOB],
            "post": _op(
                "Count a page view (once per client id and day; nothing personal is stored)",
                {"200": _ok("ViewCounted"), "400": _R400, "404": _R404},
                body=_ref("ViewBeacon"),
            ),
        },
        "/api/mobs/{mob_id}/funnel": {
            "parameters": [_MOB],
            "get": _op(
                "viewed → joined → in zone → matched → deed done",
                {"200": _ok("Funnel"), "404": _R404},
            ),
        },
        "/api/mobs/{mob_id}/cascade": {
            "parameters": [_MOB],
            "get": _op(
                "Who brought whom: top sharers, depth, generations",
                {"200": _ok("Cascade"), "404": _R404},
                params=[ref_q],
            ),
        },
        "/api/mobs/{mob_id}/growth": {
            "parameters": [_MOB],
            "get": _op(
                "Funnel, cascade, pledge totals, campaign and local time in one call",
                {"200": _ok("Growth"), "404": _R404},
                params=[ref_q],
            ),
        },
        "/api/followers": {
            "post": _op(
                "Become a follower (no account): returns the follower token once",
                {"201": _ok("FollowerCreated")},
            )
        },
        "/api/followers/me": {
            "get": _op("Your follows", {"200": _ok("Follower")}, auth_kind=flw),
            "delete": _op("Forget this follower", {"204": _NO_CONTENT}, auth_kind=flw),
        },
        "/api/followers/me/follows": {
            "post": _op(
                "Follow an organizer (via one of their mobs) or a place (circle)",
                {
                    "201": _ok("Follow", "Created"),
                    "200": _ok("Follow", "Already followed"),
                    "400": _R400,
                    "404": _R404,
                    "422": _R422,
                },
                auth_kind=flw,
                body=_ref("FollowCreate"),
            )
        },
        "/api/followers/me/follows/{follow_id}": {
            "parameters": [follow_id],
            "delete": _op("Unfollow", {"204": _NO_CONTENT, "404": _R404}, auth_kind=flw),
        },
        "/api/followers/me/push-subscription": {
            "put": _op(
                "Store the browser's Web Push subscription",
                {"200": _ok("Follower"), "400": _R400, "422": _R422},
                auth_kind=flw,
                body=_ref("PushSubscription"),
                description="Only push-service hosts are accepted (push_endpoint_refused).",
            ),
            "delete": _op("Stop Web Push", {"204": _NO_CONTENT}, auth_kind=flw),
        },
        "/api/push/public-key": {
            "get": _op(
                "The VAPID application server key (base64url) for pushManager.subscribe",
                {
                    "200": _ok(_obj({"public_key": _STR}, closed=False)),
                    "503": _err("push_not_configured"),
                },
            )
        },
        "/api/pledges": {
            "post": _op(
                "Pledge an amount per verified deed of a mob or a campaign",
                {"201": _ok("PledgeCreated"), "400": _R400, "404": _R404, "409": _R409},
                auth_kind=spn + ", optional: without one a new sponsor is made",
                body=_ref("PledgeCreate"),
            )
        },
        "/api/pledges/{pledge_id}": {
            "parameters": [pledge_id],
            "delete": _op(
                "Withdraw a pledge before GO",
                {"204": _NO_CONTENT, "404": _R404, "409": _R409},
                auth_kind=spn,
            ),
        },
        "/api/sponsors/me": {
            "get": _op(
                "Your pledges with what they owe now",
                {
                    "200": _ok(
                        _obj(
                            {
                                "sponsor": {"type": "object"},
                                "pledges": {"type": "array", "items": _ref("Pledge")},
                            },
                            closed=False,
                        )
                    )
                },
                auth_kind=spn,
            )
        },
        "/api/sponsors/me/statement.csv": {
            "get": _op(
                "Your statement (CSV) once every pledged mob has ended",
                {"200": csv_ok, "409": _err("statement_not_ready")},
                auth_kind=spn,
            )
        },
        "/api/mobs/{mob_id}/pledges": {
            "parameters": [_MOB],
            "get": _op(
                "Every pledge on the mob and its campaign, with sponsor names",
                {
                    "200": _ok(
                        _obj(
                            {"totals": _ref("PledgeTotals"), "pledges": {"type": "array"}},
                            closed=False,
                        )
                    ),
                    "403": _R403,
                    "404": _R404,
                },
                auth_kind=org,
            ),
        },
        "/api/mobs/{mob_id}/pledges/{pledge_id}": {
            "parameters": [_MOB, pledge_id],
            "delete": _op(
                "Decline (remove) a pledge made on your mob or its campaign",
                {"204": _NO_CONTENT, "403": _R403, "404": _R404},
                auth_kind=org,
            ),
        },
        "/api/mobs/{mob_id}/pledges/totals": {
            "parameters": [_MOB],
            "get": _op(
                "Live pledge totals per currency (no sponsor names)",
                {"200": _ok("PledgeTotals"), "404": _R404},
            ),
        },
        "/api/campaigns": {
            "post": _op(
                "A campaign: mobs in several zones with one GO instant",
                {"201": _ok("Campaign"), "400": _R400, "422": _R422},
                auth_kind=org,
                body=_ref("CampaignCreate"),
            )
        },
        "/api/organizers/me/campaigns": {
            "get": _op(
                "Your campaigns",
                {
                    "200": _ok(
                        _obj(
                            {"campaigns": {"type": "array", "items": _ref("Campaign")}},
                            closed=False,
                        )
                    )
                },
                auth_kind=org,
            )
        },
        "/api/campaigns/{campaign_id}": {
            "parameters": [_CAMPAIGN],
            "get": _op(
                "A campaign: its mobs in local time, global counters, world map",
                {"200": _ok("Campaign"), "404": _R404},
            ),
            "patch": _op(
                "Change title, description or go_at (moves every coming mob)",
                {
                    "200": _ok("Campaign"),
                    "400": _R400,
                    "403": _R403,
                    "404": _R404,
                    "409": _R409,
                    "422": _R422,
                },
                auth_kind=org,
                body=_ref("CampaignPatch"),
            ),
        },
        "/api/campaigns/{campaign_id}/mobs": {
            "parameters": [_CAMPAIGN],
            "post": _op(
                "Add one of your coming mobs: its GO becomes the campaign's",
                {
                    "201": _ok("Campaign"),
                    "400": _R400,
                    "403": _R403,
                    "404": _R404,
                    "409": _R409,
                    "422": _R422,
                },
                auth_kind=org,
                body=_ref("CampaignAddMob"),
            ),
        },
        "/api/campaigns/{campaign_id}/mobs/{mob_id}": {
            "parameters": [_CAMPAIGN, _MOB],
            "delete": _op(
                "Take a mob out of the campaign",
                {"204": _NO_CONTENT, "403": _R403, "404": _R404, "409": _R409},
                auth_kind=org,
            ),
        },
        "/api/campaigns/{campaign_id}/publish": {
            "parameters": [_CAMPAIGN],
            "post": _op(
                "Publish every draft mob of the campaign (all or none)",
                {"200": _ok("Campaign"), "403": _R403, "404": _R404, "409": _R409, "422": _R422},
                auth_kind=org,
            ),
        },
        "/api/campaigns/{campaign_id}/start-now": {
            "parameters": [_CAMPAIGN],
            "post": _op(
                "GO in lead_s seconds for every mob, at one instant",
                {
                    "200": _ok("Campaign"),
                    "400": _R400,
                    "403": _R403,
                    "404": _R404,
                    "409": _R409,
                    "422": _R422,
                },
                auth_kind=org,
                body=_ref("StartNow"),
            ),
        },
        "/api/campaigns/{campaign_id}/postpone": {
            "parameters": [_CAMPAIGN],
            "post": _op(
                "Move every mob's GO later, to one instant",
                {
                    "200": _ok("Campaign"),
                    "400": _R400,
                    "403": _R403,
                    "404": _R404,
                    "409": _R409,
                    "422": _R422,
                },
                auth_kind=org,
                body=_ref("Postpone"),
            ),
        },
        "/api/mobs/{mob_id}/copy": {
            "parameters": [_MOB],
            "post": _op(
                "Copy a mob as a template into a new zone (tasks of the same kind and density)",
                {"201": _ok("Mob"), "400": _R400, "403": _R403, "404": _R404, "422": _R422},
                auth_kind=org,
                body=_ref("MobCopy"),
            ),
        },
        "/api/mobs/{mob_id}/time-zone": {
            "parameters": [_MOB],
            "put": _op(
                "Set the mob's IANA time zone (for local times)",
                {"200": _ok("LocalTime"), "400": _R400, "403": _R403, "404": _R404, "422": _R422},
                auth_kind=org,
                body=_ref("TimeZone"),
            ),
        },
        "/api/mobs/{mob_id}/summary": {
            "parameters": [_MOB],
            "get": _op(
                "The after-action summary for the organizer",
                {"200": _ok("Summary"), "403": _R403, "404": _R404},
                auth_kind=org,
            ),
        },
        "/api/mobs/{mob_id}/summary.geojson": {
            "parameters": [_MOB],
            "get": _op(
                "Zone and tasks with their counts as RFC 7946 GeoJSON (no one's position)",
                {"200": _ok(_FC, "GeoJSON", "application/geo+json"), "403": _R403, "404": _R404},
                auth_kind=org,
            ),
        },
        "/api/mobs/{mob_id}/summary.csv": {
            "parameters": [_MOB],
            "get": _op(
                "A table of the summary as CSV",
                {"200": csv_ok, "400": _R400, "403": _R403, "404": _R404},
                auth_kind=org,
                params=[table_q],
            ),
        },
        "/api/mobs/{mob_id}/public-summary": {
            "parameters": [_MOB],
            "get": _op(
                "The privacy-safe summary anyone may see (page: /s/{mob_id})",
                {"200": _ok("PublicSummary"), "404": _R404},
            ),
        },
    }
    schemas = _schemas()
    _non_blank_inputs(paths, schemas)
    return {"paths": paths, "schemas": schemas}


def _non_blank_inputs(paths: dict, schemas: dict) -> None:
    """Plain string fields of request bodies get ``pattern: \\S``: the server trims strings
    and refuses a blank one (400), so the document must not call a blank one valid."""
    bodies = set()
    for item in paths.values():
        for op in item.values():
            ref = (
                (
                    op.get("requestBody", {}).get("content", {}).get("application/json", {})
                    if isinstance(op, dict)
                    else {}
                )
                .get("schema", {})
                .get("$ref", "")
            )
            if ref.startswith("#/components/schemas/"):
                bodies.add(ref.rsplit("/", 1)[1])
    for name in bodies & set(schemas):  # the others are core schemas (server/openapi.py)
        props = schemas[name].get("properties", {})
        for field, prop in list(props.items()):
            if prop is _STR:
                props[field] = {"type": "string", "pattern": r"\S"}
