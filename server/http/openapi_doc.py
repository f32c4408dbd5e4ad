"""The OpenAPI 3.1 document of the REST API, served at GET /api/openapi.json.

Hand-written dicts, moved as they were; issue 18 item 3 generates them from pydantic models.
"""

# size: the hand-written OpenAPI dicts of the core routes (one per path and schema); to be
# generated from pydantic models (issue 18 item 3).

from __future__ import annotations

from server.http.openapi_growth import growth_openapi

__all__ = ["openapi_document"]


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema_ref: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


def _body(schema_ref: str) -> dict:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_MOB_ID = {
    "name": "mob_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9]{8}$"},
    "description": "The mob's short public id.",
}
_AUTH = [{"bearer": []}]
_ROW_ID = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}  # 1 to 18 digits
_NON_BLANK = r"\S"  # strings are trimmed; a blank one is missing
_E400 = _error("Malformed request: invalid JSON, missing or wrongly typed field (see error.code).")
_E401 = _error(
    "No token, or an invalid or expired one (auth_required, token_invalid, token_expired)."
)
_E403 = _error("The mob belongs to another organizer (not_owner).")
_E404 = _error("No such mob or task (mob_not_found, task_not_found).")
_E409 = _error("The mob's state forbids this (mob_live, mob_closed, mob_not_draft, ...).")
_E413 = _error("The body is larger than the configured limit (payload_too_large).")
_E422 = _error("Well-formed but refused: zone or task rules (zone_self_intersects, ...).")

_ZONE_CODES = [
    "zone_malformed",
    "zone_wrong_type",
    "position_invalid",
    "coordinate_not_numeric",
    "coordinate_out_of_range",
    "ring_not_closed",
    "ring_too_few_positions",
    "zone_crosses_antimeridian",
    "zone_too_many_vertices",
    "zone_self_intersects",
    "zone_hole_outside_shell",
    "zone_nested_rings",
    "zone_interior_disconnected",
    "zone_duplicate_rings",
    "zone_invalid",
    "zone_too_large",
    "zone_too_small",
]


def openapi_document() -> dict:
    """The served OpenAPI document: the core routes and the growth routes (openapi_growth)."""
    doc = _core_document()
    extra = growth_openapi()
    clash = set(doc["paths"]) & set(extra["paths"])
    if clash:  # pragma: no cover - a programming error, caught by the OpenAPI tests
        raise RuntimeError(f"OpenAPI paths defined twice: {sorted(clash)}")
    doc["paths"].update(extra["paths"])
    doc["components"]["schemas"].update(extra["schemas"])
    return doc


def _core_document() -> dict:
    mob_write = {
        "title": {"type": "string", "maxLength": 120, "pattern": _NON_BLANK},
        "description": {"type": "string", "maxLength": 5000},
        "action": {
            "type": "string",
            "maxLength": 500,
            "pattern": _NON_BLANK,
            "description": "The prompt shown at GO.",
        },
        "zone": {"$ref": "#/components/schemas/Zone"},
        "go_at": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with a UTC offset, in the future.",
        },
        "duration_s": {"type": "integer", "minimum": 10, "maximum": 21600},
        "rehearsal": {
            "type": "boolean",
            "default": False,
            "description": "Run the whole timeline without counting deeds (set before live).",
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Good Mob API",
            "version": "0.1.0",
            "description": (
                "Organizers create mobs (an action zone, a schedule, a prompt) and their tasks; "
                "anyone finds published mobs nearby. Every error has the shape "
                '{"error": {"code", "message", "where"?}}. Coordinates are lon/lat (EPSG:4326), '
                "distances in metres."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string", "examples": _ZONE_CODES},
                                "message": {"type": "string"},
                                "where": {
                                    "type": "object",
                                    "description": "field, JSON path, or lon/lat of the problem",
                                },
                            },
                        }
                    },
                },
                "Zone": {
                    "type": "object",
                    "description": (
                        "A GeoJSON Polygon or MultiPolygon (RFC 7946): closed rings of at least "
                        "4 positions, valid, within ±180/±90, not crossing the antimeridian, at "
                        "most ZONE_MAX_VERTICES vertices and between ZONE_MIN_AREA_M2 and "
                        "ZONE_MAX_AREA_M2 in area. Never repaired: refusals carry one of the "
                        "codes listed in Error.code examples."
                    ),
                    "required": ["type", "coordinates"],
                    "properties": {
                        "type": {"enum": ["Polygon", "MultiPolygon"]},
                        "coordinates": {"type": "array"},
                    },
                },
                "SignUp": {
                    "type": "object",
                    "required": ["email", "password", "name"],
                    "additionalProperties": False,
                    "properties": {
                        "email": {"type": "string", "format": "email"},
                        "password": {"type": "string", "minLength": 8},
                        "name": {"type": "string", "maxLength": 80},
                    },
                },
                "LogIn": {
                    "type": "object",
                    "required": ["email", "password"],
                    "additionalProperties": False,
                    "properties": {
                        "email": {"type": "string"},
                        "password": {"type": "string"},
                    },
                },
                "Session": {
                    "type": "object",
                    "properties": {
                        "organizer": {"type": "object"},
                        "token": {"type": "string"},
                        "token_type": {"const": "Bearer"},
                        "expires_in_s": {"type": "integer"},
                    },
                },
                "MobCreate": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["title", "action", "zone", "go_at", "duration_s"],
                    "properties": mob_write,
                },
                "MobPatch": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": mob_write,
                },
                "Timeline": {
                    "type": "object",
                    "description": "The phases in epoch milliseconds of server time, the "
                    "current phase and the texts shown; version grows with every change.",
                    "properties": {
                        "version": {"type": "integer"},
                        "phase": {"type": "string"},
                        "gather_at_ms": {"type": "integer"},
                        "countdown_at_ms": {"type": "integer"},
                        "go_at_ms": {"type": "integer"},
                        "end_at_ms": {"type": "integer"},
                        "rehearsal": {"type": "boolean"},
                        "title": {"type": "string"},
                        "action": {"type": "string"},
                    },
                },
                "StartNow": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "lead_s": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 86400,
                            "description": "Seconds from now to GO (default START_NOW_LEAD_S, "
                            "at least START_NOW_MIN_LEAD_S).",
                        }
                    },
                },
                "Postpone": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "Exactly one of go_at (later than the current) or by_s.",
                    "oneOf": [{"required": ["go_at"]}, {"required": ["by_s"]}],
                    "properties": {
                        "go_at": {"type": "string", "format": "date-time"},
                        "by_s": {"type": "integer", "minimum": 1, "maximum": 604800},
                    },
                },
                "Announcement": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string", "maxLength": 280, "pattern": _NON_BLANK}
                    },
                },
                "MobEvent": {
                    "type": "object",
                    "description": "A numbered event (timeline, phase, announcement).",
                    "properties": {"mob": {"type": "string"}, "seq": {"type": "integer"}},
                },
                "Events": {
                    "type": "object",
                    "properties": {
                        "seq": {"type": "integer"},
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "event": {"type": "string"},
                                    "data": {"$ref": "#/components/schemas/MobEvent"},
                                },
                            },
                        },
                    },
                },
                "Mob": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "action": {"type": "string"},
                        "status": {
                            "enum": [
                                "draft",
                                "published",
                                "gathering",
                                "countdown",
                                "action",
                                "finished",
                                "cancelled",
                            ]
                        },
                        "zone": {"$ref": "#/components/schemas/Zone"},
                        "gather_at": {"type": "string", "format": "date-time"},
                        "countdown_at": {"type": "string", "format": "date-time"},
                        "go_at": {"type": "string", "format": "date-time"},
                        "end_at": {"type": "string", "format": "date-time"},
                        "duration_s": {"type": "integer"},
                        "rehearsal": {"type": "boolean"},
                        "timeline": {"$ref": "#/components/schemas/Timeline"},
                        "organizer": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                        },
                        "url": {"type": "string"},
                        "task_count": {"type": "integer"},
                        "distance_m": {
                            "type": "number",
                            "description": "Nearby search only: 0 when the point is inside.",
                        },
                    },
                },
                "NearbyMobs": {
                    "type": "object",
                    "properties": {
                        "center": {"type": "object"},
                        "radius_m": {"type": "number"},
                        "mobs": {"type": "array", "items": {"$ref": "#/components/schemas/Mob"}},
                    },
                },
                "GenerateTasks": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["spacing_m", "kind"],
                    "properties": {
                        "spacing_m": {"type": "number", "minimum": 5, "maximum": 5000},
                        "kind": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"},
                        "capacity": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 1,
                        },
                        "grid": {"enum": ["hex", "square"], "default": "hex"},
                        "label": {
                            "type": "string",
                            "maxLength": 100,
                            "pattern": _NON_BLANK,
                            "description": "Label prefix.",
                        },
                        "prompt": {"type": "string", "maxLength": 500},
                        "replace": {
                            "type": "boolean",
                            "default": True,
                            "description": "Delete the existing tasks first.",
                        },
                    },
                },
                "TaskCreate": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["lat", "lon", "kind"],
                    "properties": {
                        "lat": {"type": "number", "minimum": -90, "maximum": 90},
                        "lon": {"type": "number", "minimum": -180, "maximum": 180},
                        "kind": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"},
                        "label": {"type": "string", "maxLength": 120, "pattern": _NON_BLANK},
                        "prompt": {"type": "string", "maxLength": 500},
                        "capacity": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 1,
                        },
                    },
                },
                "TaskUpdate": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "description": "lat and lon go together (a move must stay inside the zone).",
                    "dependentRequired": {"lat": ["lon"], "lon": ["lat"]},
                    "properties": {
                        "lat": {"type": "number", "minimum": -90, "maximum": 90},
                        "lon": {"type": "number", "minimum": -180, "maximum": 180},
                        "kind": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"},
                        "label": {"type": "string", "maxLength": 120},
                        "prompt": {"type": "string", "maxLength": 500},
                        "capacity": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "status": {"enum": ["open", "closed"]},
                    },
                },
                "JoinMob": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "nickname": {
                            "type": "string",
                            "pattern": r"^[\w.'-][\w .'-]{0,22}[\w.'-]$",
                            "description": "2 to 24 letters, digits, spaces, dots, dashes or "
                            "apostrophes; friendly words only (nickname_refused).",
                        },
                        "ref": {
                            "type": "string",
                            "maxLength": 16,
                            "pattern": _NON_BLANK,
                            "description": "Referral code from a link.",
                        },
                    },
                },
                "Review": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["verdict"],
                    "properties": {"verdict": {"enum": ["approve", "reject"]}},
                },
                "TaskFeature": {
                    "type": "object",
                    "properties": {
                        "type": {"const": "Feature"},
                        "id": {"type": "integer"},
                        "geometry": {"type": "object"},
                        "properties": {"type": "object"},
                    },
                },
                "TaskCollection": {
                    "type": "object",
                    "properties": {
                        "type": {"const": "FeatureCollection"},
                        "features": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/TaskFeature"},
                        },
                        "count": {"type": "integer"},
                    },
                },
            },
        },
        "paths": {
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "The OpenAPI document"}},
                }
            },
            "/api/organizers": {
                "post": {
                    "summary": "Sign up as an organizer",
                    "requestBody": _body("SignUp"),
                    "responses": {
                        "201": _json("Session", "Signed up; a bearer token"),
                        "400": _E400,
                        "409": _error("The email is taken (email_taken)."),
                    },
                }
            },
            "/api/sessions": {
                "post": {
                    "summary": "Log in",
                    "requestBody": _body("LogIn"),
                    "responses": {
                        "201": _json("Session", "A new bearer token"),
                        "400": _E400,
                        "401": _error("Wrong email or password (credentials_invalid)."),
                    },
                },
                "delete": {
                    "summary": "Log out everywhere: every token of this organizer is refused",
                    "security": _AUTH,
                    "responses": {
                        "204": {"description": "Every session ended, this one included"},
                        "401": _E401,
                    },
                },
            },
            "/api/sessions/current": {
                "delete": {
                    "summary": "Log out: this token is refused from now on (other sessions go on)",
                    "security": _AUTH,
                    "responses": {"204": {"description": "This session ended"}, "401": _E401},
                }
            },
            "/api/organizers/me/mobs": {
                "get": {
                    "summary": "The organizer's own mobs, newest GO first",
                    "security": _AUTH,
                    "responses": {"200": {"description": "{mobs: [Mob]}"}, "401": _E401},
                }
            },
            "/api/mobs": {
                "get": {
                    "summary": "Published, unfinished mobs near a point, nearest first",
                    "parameters": [
                        {
                            "name": "lat",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "number", "minimum": -90, "maximum": 90},
                        },
                        {
                            "name": "lon",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "number", "minimum": -180, "maximum": 180},
                        },
                        {
                            "name": "radius_m",
                            "in": "query",
                            "schema": {
                                "type": "number",
                                "default": 5000,
                                "minimum": 0,
                                "maximum": 50000,
                            },
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "default": 100,
                                "minimum": 1,
                                "maximum": 100,
                            },
                        },
                    ],
                    "responses": {"200": _json("NearbyMobs", "Mobs with distance_m"), "400": _E400},
                },
                "post": {
                    "summary": "Create a draft mob",
                    "security": _AUTH,
                    "requestBody": _body("MobCreate"),
                    "responses": {
                        "201": _json("Mob", "The new draft"),
                        "400": _E400,
                        "401": _E401,
                        "413": _E413,
                        "422": _E422,
                    },
                },
            },
            "/api/mobs/{mob_id}": {
                "parameters": [_MOB_ID],
                "get": {
                    "summary": "One mob (drafts only for their organizer)",
                    "responses": {"200": _json("Mob", "The mob"), "404": _E404},
                },
                "patch": {
                    "summary": "Change a mob; the zone only before it is live",
                    "security": _AUTH,
                    "requestBody": _body("MobPatch"),
                    "responses": {
                        "200": _json("Mob", "The changed mob"),
                        "400": _E400,
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                        "422": _E422,
                    },
                },
            },
            "/api/mobs/{mob_id}/publish": {
                "parameters": [_MOB_ID],
                "post": {
                    "summary": "Publish a draft (needs a future go_at and at least one task)",
                    "security": _AUTH,
                    "responses": {
                        "200": _json("Mob", "Published"),
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                        "422": _E422,
                    },
                },
            },
            "/api/mobs/{mob_id}/cancel": {
                "parameters": [_MOB_ID],
                "post": {
                    "summary": "Cancel a mob before it is finished",
                    "security": _AUTH,
                    "responses": {
                        "200": _json("Mob", "Cancelled"),
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                    },
                },
            },
            "/api/mobs/{mob_id}/start-now": {
                "parameters": [_MOB_ID],
                "post": {
                    "summary": "GO in lead_s seconds (a new timeline version, broadcast)",
                    "security": _AUTH,
                    "requestBody": _body("StartNow"),
                    "responses": {
                        "200": _json("Mob", "Rescheduled"),
                        "400": _E400,
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                        "422": _E422,
                    },
                },
            },
            "/api/mobs/{mob_id}/postpone": {
                "parameters": [_MOB_ID],
                "post": {
                    "summary": "Move GO later (a new timeline version, broadcast)",
                    "security": _AUTH,
                    "requestBody": _body("Postpone"),
                    "responses": {
                        "200": _json("Mob", "Rescheduled"),
                        "400": _E400,
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                        "422": _E422,
                    },
                },
            },
            "/api/mobs/{mob_id}/announcements": {
                "parameters": [_MOB_ID],
                "post": {
                    "summary": "Send a message to everyone of the mob (an announcement event)",
                    "security": _AUTH,
                    "requestBody": _body("Announcement"),
                    "responses": {
                        "201": _json("MobEvent", "Sent"),
                        "400": _E400,
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                    },
                },
            },
            "/api/mobs/{mob_id}/events": {
                "parameters": [
                    _MOB_ID,
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 2**62,
                            "default": 0,
                        },
                        "description": "The last sequence number the client saw.",
                    },
                ],
                "get": {
                    "summary": "The mob's numbered events after a sequence number",
                    "responses": {
                        "200": _json("Events", "Events in order"),
                        "404": _E404,
                        "410": _error("Some were trimmed: reload the mob (events_gone)."),
                    },
                },
            },
            "/api/mobs/{mob_id}/tasks": {
                "parameters": [_MOB_ID],
                "get": {
                    "summary": "The mob's tasks as a GeoJSON FeatureCollection",
                    "description": "Each task's id, kind, label, prompt, capacity, status "
                    "and deeds_done; never how many hold it (the same for every caller). "
                    "Reads are limited per address (RATE_LIMIT_READ_ADDR): 429 rate_limited.",
                    "responses": {"200": _json("TaskCollection", "Tasks"), "404": _E404},
                },
                "post": {
                    "summary": "Place one task; it must lie inside the zone",
                    "security": _AUTH,
                    "requestBody": _body("TaskCreate"),
                    "responses": {
                        "201": _json("TaskFeature", "The task"),
                        "400": _E400,
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                        "422": _E422,
                    },
                },
            },
            "/api/mobs/{mob_id}/tasks/generate": {
                "parameters": [_MOB_ID],
                "post": {
                    "summary": "Fill the zone with a hex or square grid of tasks",
                    "security": _AUTH,
                    "requestBody": _body("GenerateTasks"),
                    "responses": {
                        "201": _json("TaskCollection", "The generated tasks"),
                        "400": _E400,
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                        "422": _E422,
                    },
                },
            },
            "/api/mobs/{mob_id}/participants": {
                "parameters": [_MOB_ID],
                "post": {
                    "summary": "Join a published mob without an account",
                    "description": (
                        "Body (optional): {nickname?, ref?}. Returns a participant token (use it "
                        "in the Socket.IO auth payload of the /participant namespace), the "
                        "participant's referral code and share_url. A nickname is generated "
                        "when none is given."
                    ),
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/JoinMob"}}
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "{participant, token, expires_in_s, share_url, mob}"
                        },
                        "400": _error("nickname_invalid, nickname_refused, field_unknown, ..."),
                        "404": _E404,
                        "409": _error("The mob is closed or full (mob_closed, mob_full)."),
                        "422": _error("The referral code is unknown (ref_unknown)."),
                    },
                },
            },
            "/api/mobs/{mob_id}/deeds": {
                "parameters": [_MOB_ID],
                "get": {
                    "summary": "The mob's deeds, e.g. ?status=flagged for the review queue",
                    "security": _AUTH,
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"enum": ["accepted", "flagged", "approved", "rejected"]},
                        }
                    ],
                    "responses": {
                        "200": {"description": "{deeds: [...]}"},
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                    },
                },
            },
            "/api/mobs/{mob_id}/deeds/{deed_id}/review": {
                "parameters": [
                    _MOB_ID,
                    {
                        "name": "deed_id",
                        "in": "path",
                        "required": True,
                        "schema": _ROW_ID,
                    },
                ],
                "post": {
                    "summary": "Approve or reject a flagged deed",
                    "security": _AUTH,
                    "requestBody": _body("Review"),
                    "responses": {
                        "200": {"description": "The reviewed deed"},
                        "400": _E400,
                        "401": _E401,
                        "403": _E403,
                        "404": _error("No such deed (deed_not_found)."),
                        "409": _error("The deed is not flagged (deed_not_flagged)."),
                    },
                },
            },
            "/api/mobs/{mob_id}/tasks/{task_id}": {
                "parameters": [
                    _MOB_ID,
                    {
                        "name": "task_id",
                        "in": "path",
                        "required": True,
                        "schema": _ROW_ID,
                    },
                ],
                "patch": {
                    "summary": "Move, relabel, resize, close or reopen a task; people who lose "
                    "it (closed, or capacity below its holders) are matched again",
                    "security": _AUTH,
                    "requestBody": _body("TaskUpdate"),
                    "responses": {
                        "200": _json("TaskFeature", "The task"),
                        "400": _E400,
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                        "422": _E422,
                    },
                },
                "delete": {
                    "summary": "Remove a task",
                    "security": _AUTH,
                    "responses": {
                        "204": {"description": "Removed"},
                        "401": _E401,
                        "403": _E403,
                        "404": _E404,
                        "409": _E409,
                    },
                },
            },
        },
    }
