"""REST routes of issue 6 (cascade, follows, pledges, campaigns, summaries) and the public
summary page ``/s/<mob id>``: thin handlers (parse → domain operation → commit → serialize).

Three kinds of bearer token meet here, each with its own prefix: organizer tokens (signed, from
``/api/sessions``), follower tokens (``flw.…``, from ``POST /api/followers``) and sponsor tokens
(``spn.…``, from the first ``POST /api/pledges``). Each route accepts exactly one kind.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select

from server.domain import campaigns, cascade, follows, mobs, pledges, summary
from server.domain.views import mob_json
from server.http import auth
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.infra.models import Campaign, Mob
from server.validate import (
    get_int,
    get_number,
    get_str,
    get_time,
    json_body,
    reject_unknown,
)

__all__ = ["growth", "growth_openapi"]

growth = Blueprint("growth", __name__, url_prefix="/api")


def _settings():
    return current_app.config["SETTINGS"]


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "token_invalid", "Send the token as 'Authorization: Bearer <token>'.")
    return token.strip()


def _body() -> dict:
    return json_body(request)


def _owned_mob(session, mob_id: str) -> Mob:
    return mobs.get_owned_mob(session, mob_id, g.organizer)


def _public_mob(session, mob_id: str) -> Mob:
    return mobs.get_mob(session, mob_id, auth.optional_organizer(session))


def _owned_campaign(session, campaign_id: str) -> Campaign:
    campaign = campaigns.get_campaign(session, campaign_id)
    campaigns.require_owner(campaign, g.organizer)
    return campaign


def _download(body: str, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- cascade and funnel ---


@growth.post("/mobs/<mob_id>/share-link")
@auth.require_organizer
def share_link(mob_id: str):
    """The organizer's share link with its referral code (the same code on every call)."""
    session = db_session()
    mob = _owned_mob(session, mob_id)
    link = cascade.share_link(session, mob)
    session.commit()
    return jsonify(link)


@growth.post("/mobs/<mob_id>/views")
def count_view(mob_id: str):
    """A page view beacon ``{client_id}`` (a random id the page made); no personal data kept."""
    session = db_session()
    mob = mobs.get_mob(session, mob_id)
    data = _body()
    reject_unknown(data, {"client_id"})
    counted = cascade.count_view(session, mob, data.get("client_id"), _settings())
    session.commit()
    return jsonify({"counted": counted})


@growth.get("/mobs/<mob_id>/funnel")
def funnel(mob_id: str):
    session = db_session()
    return jsonify(cascade.funnel(session, _public_mob(session, mob_id)))


@growth.get("/mobs/<mob_id>/cascade")
def get_cascade(mob_id: str):
    session = db_session()
    mob = _public_mob(session, mob_id)
    ref = request.args.get("ref") or None
    if ref is not None and len(ref) > 16:
        raise ApiError(400, "param_out_of_range", "ref is a referral code.", {"param": "ref"})
    return jsonify(cascade.cascade(session, mob, ref=ref))


@growth.get("/mobs/<mob_id>/growth")
def mob_growth(mob_id: str):
    """Everything the live and participant pages show beyond the counters, in one call."""
    session = db_session()
    mob = _public_mob(session, mob_id)
    campaign = campaigns.mob_campaign(session, mob)
    return jsonify(
        {
            "mob": mob.id,
            "funnel": cascade.funnel(session, mob),
            "cascade": cascade.cascade(session, mob, ref=request.args.get("ref") or None),
            "pledges": pledges.pledge_totals(session, mob),
            "campaign": {"id": campaign.id, "title": campaign.title} if campaign else None,
            "go_local": campaigns.local_time_json(mob.go_at, campaigns.time_zone_of(session, mob)),
        }
    )


# --- follows ---


def _follower(session):
    return follows.follower_from_token(session, _bearer())


@growth.post("/followers")
def create_follower():
    session = db_session()
    follower, token = follows.create_follower(session)
    session.commit()
    body = {"follower": follows.follower_json(session, follower), "follower_token": token}
    try:
        body["vapid_public_key"] = follows.vapid_public_key(_settings())
    except ApiError:
        body["vapid_public_key"] = None
    return jsonify(body), 201


@growth.get("/followers/me")
def get_follower():
    session = db_session()
    return jsonify(follows.follower_json(session, _follower(session)))


@growth.delete("/followers/me")
def delete_follower():
    session = db_session()
    follower = _follower(session)
    session.delete(follower)
    session.commit()
    return "", 204


@growth.post("/followers/me/follows")
def add_follow():
    session = db_session()
    follower = _follower(session)
    follow, created = follows.add_follow(session, follower, _body(), _settings())
    session.commit()
    return jsonify(follows.follow_json(follow)), 201 if created else 200


@growth.delete("/followers/me/follows/<int:follow_id>")
def remove_follow(follow_id: int):
    session = db_session()
    follows.remove_follow(session, _follower(session), follow_id)
    session.commit()
    return "", 204


@growth.put("/followers/me/push-subscription")
def set_push_subscription():
    session = db_session()
    follower = _follower(session)
    follows.set_push_subscription(session, follower, _body(), _settings())
    session.commit()
    return jsonify(follows.follower_json(session, follower))


@growth.delete("/followers/me/push-subscription")
def clear_push_subscription():
    session = db_session()
    follows.clear_push_subscription(session, _follower(session))
    session.commit()
    return "", 204


@growth.get("/push/public-key")
def push_public_key():
    return jsonify({"public_key": follows.vapid_public_key(_settings())})


# --- pledges ---


@growth.post("/pledges")
def create_pledge():
    """A pledge; without a sponsor token a new sponsor is made (``sponsor_name`` required)."""
    session = db_session()
    data = _body()
    reject_unknown(
        data,
        {
            "mob",
            "campaign",
            "amount_minor",
            "currency",
            "cap_minor",
            "threshold_deeds",
            "sponsor_name",
        },
    )
    token = _bearer()
    if token is not None:
        sponsor = pledges.sponsor_from_token(session, token)
    else:
        sponsor, token = pledges.create_sponsor(session, get_str(data, "sponsor_name", max_len=80))
    pledge = pledges.create_pledge(session, sponsor, data)
    session.commit()
    return jsonify(
        {
            "pledge": pledges.pledge_json(session, pledge),
            "sponsor": {"id": sponsor.public_id, "name": sponsor.name},
            "sponsor_token": token,
        }
    ), 201


@growth.delete("/pledges/<int:pledge_id>")
def withdraw_pledge(pledge_id: int):
    session = db_session()
    sponsor = pledges.sponsor_from_token(session, _bearer())
    pledges.withdraw_pledge(session, sponsor, pledge_id)
    session.commit()
    return "", 204


@growth.get("/sponsors/me")
def get_sponsor():
    session = db_session()
    sponsor = pledges.sponsor_from_token(session, _bearer())
    cache: dict = {}
    return jsonify(
        {
            "sponsor": {"id": sponsor.public_id, "name": sponsor.name},
            "pledges": [
                pledges.pledge_json(session, p, cache)
                for p in pledges.sponsor_pledges(session, sponsor)
            ],
        }
    )


@growth.get("/sponsors/me/statement.csv")
def sponsor_statement():
    session = db_session()
    sponsor = pledges.sponsor_from_token(session, _bearer())
    body = pledges.statement_csv(session, sponsor)
    return _download(body, "text/csv", f"goodmob-pledges-{sponsor.public_id}.csv")


@growth.get("/mobs/<mob_id>/pledges")
@auth.require_organizer
def mob_pledges(mob_id: str):
    """The organizer's view: every pledge on the mob (and its campaign) with sponsor names."""
    session = db_session()
    mob = _owned_mob(session, mob_id)
    return jsonify(
        {
            "totals": pledges.pledge_totals(session, mob),
            "pledges": summary.pledge_rows(session, mob),
        }
    )


@growth.delete("/mobs/<mob_id>/pledges/<int:pledge_id>")
@auth.require_organizer
def decline_pledge(mob_id: str, pledge_id: int):
    """The organizer removes a pledge on their mob (or its campaign)."""
    session = db_session()
    mob = _owned_mob(session, mob_id)
    pledges.decline_pledge(session, mob, pledge_id)
    session.commit()
    return "", 204


@growth.get("/mobs/<mob_id>/pledges/totals")
def pledge_totals(mob_id: str):
    session = db_session()
    return jsonify(pledges.pledge_totals(session, _public_mob(session, mob_id)))


# --- campaigns ---


def _campaign_changes(data: dict, partial: bool) -> dict:
    changes: dict = {}
    if not partial or "title" in data:
        changes["title"] = get_str(data, "title", max_len=120)
    if not partial or "description" in data:
        changes["description"] = get_str(
            data, "description", required=False, default="", max_len=5000, min_len=0
        )
    if not partial or "go_at" in data:
        changes["go_at"] = get_time(data, "go_at")
    return changes


@growth.post("/campaigns")
@auth.require_organizer
def create_campaign():
    data = _body()
    reject_unknown(data, {"title", "description", "go_at"})
    session = db_session()
    campaign = campaigns.create_campaign(
        session, g.organizer, **_campaign_changes(data, partial=False)
    )
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer)), 201


@growth.get("/organizers/me/campaigns")
@auth.require_organizer
def my_campaigns():
    session = db_session()
    rows = session.scalars(
        select(Campaign)
        .where(Campaign.organizer_id == g.organizer.id)
        .order_by(Campaign.go_at.desc())
    ).all()
    return jsonify({"campaigns": [campaigns.campaign_json(session, c, g.organizer) for c in rows]})


@growth.get("/campaigns/<campaign_id>")
def get_campaign(campaign_id: str):
    session = db_session()
    campaign = campaigns.get_campaign(session, campaign_id)
    return jsonify(campaigns.campaign_json(session, campaign, auth.optional_organizer(session)))


@growth.patch("/campaigns/<campaign_id>")
@auth.require_organizer
def update_campaign(campaign_id: str):
    session = db_session()
    campaign = _owned_campaign(session, campaign_id)
    data = _body()
    reject_unknown(data, {"title", "description", "go_at"})
    if not data:
        raise ApiError(400, "body_empty", "Send at least one of: description, go_at, title.")
    campaigns.update_campaign(session, campaign, _campaign_changes(data, True), _settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@growth.post("/campaigns/<campaign_id>/mobs")
@auth.require_organizer
def add_campaign_mob(campaign_id: str):
    session = db_session()
    campaign = _owned_campaign(session, campaign_id)
    data = _body()
    reject_unknown(data, {"mob", "time_zone"})
    mob = _owned_mob(session, get_str(data, "mob", max_len=16))
    time_zone = get_str(data, "time_zone", required=False, max_len=64)
    campaigns.add_mob(session, campaign, mob, time_zone, _settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer)), 201


@growth.delete("/campaigns/<campaign_id>/mobs/<mob_id>")
@auth.require_organizer
def remove_campaign_mob(campaign_id: str, mob_id: str):
    session = db_session()
    campaign = _owned_campaign(session, campaign_id)
    campaigns.remove_mob(session, campaign, _owned_mob(session, mob_id))
    session.commit()
    return "", 204


@growth.post("/campaigns/<campaign_id>/publish")
@auth.require_organizer
def publish_campaign(campaign_id: str):
    session = db_session()
    campaign = _owned_campaign(session, campaign_id)
    published = campaigns.publish(session, campaign)
    session.commit()
    for mob in published:
        follows.on_published(session, mob)
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@growth.post("/campaigns/<campaign_id>/start-now")
@auth.require_organizer
def start_campaign_now(campaign_id: str):
    data = _body() if request.get_data(cache=True) else {}
    reject_unknown(data, {"lead_s"})
    lead_s = get_int(data, "lead_s", lo=1, hi=24 * 3600, required=False)
    session = db_session()
    campaign = _owned_campaign(session, campaign_id)
    campaigns.start_now(session, campaign, lead_s, _settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@growth.post("/campaigns/<campaign_id>/postpone")
@auth.require_organizer
def postpone_campaign(campaign_id: str):
    data = _body()
    reject_unknown(data, {"go_at", "by_s"})
    session = db_session()
    campaign = _owned_campaign(session, campaign_id)
    if ("go_at" in data) == ("by_s" in data):
        raise ApiError(
            400, "field_missing", "Send exactly one of go_at or by_s.", {"field": "go_at"}
        )
    if "by_s" in data:
        go_at = campaign.go_at + timedelta(seconds=get_int(data, "by_s", lo=1, hi=7 * 24 * 3600))
    else:
        go_at = get_time(data, "go_at")
    campaigns.postpone(session, campaign, go_at, _settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@growth.post("/mobs/<mob_id>/copy")
@auth.require_organizer
def copy_mob(mob_id: str):
    """Copy a mob as a template into a new zone (and optionally into a campaign)."""
    s = _settings()
    session = db_session()
    template = _owned_mob(session, mob_id)
    data = _body()
    reject_unknown(data, {"zone", "title", "go_at", "time_zone", "campaign", "spacing_m"})
    if data.get("zone") is None:
        raise ApiError(400, "field_missing", "The field 'zone' is required.", {"field": "zone"})
    campaign_id = get_str(data, "campaign", required=False, max_len=16)
    mob = campaigns.copy_mob(
        session,
        g.organizer,
        template,
        zone=mobs.parse_zone_or_error(data["zone"], s),
        settings=s,
        title=get_str(data, "title", required=False, max_len=120),
        go_at=get_time(data, "go_at", required=False),
        time_zone=get_str(data, "time_zone", required=False, max_len=64),
        campaign=campaigns.get_campaign(session, campaign_id) if campaign_id else None,
        spacing_m=get_number(
            data, "spacing_m", lo=s.task_spacing_min_m, hi=s.task_spacing_max_m, required=False
        ),
    )
    session.commit()
    body = mob_json(mob, len(mob.tasks))
    body["go_local"] = campaigns.local_time_json(mob.go_at, campaigns.time_zone_of(session, mob))
    return jsonify(body), 201


@growth.put("/mobs/<mob_id>/time-zone")
@auth.require_organizer
def set_time_zone(mob_id: str):
    session = db_session()
    mob = _owned_mob(session, mob_id)
    data = _body()
    reject_unknown(data, {"time_zone"})
    campaigns.set_time_zone(session, mob, get_str(data, "time_zone", max_len=64))
    session.commit()
    return jsonify(campaigns.local_time_json(mob.go_at, campaigns.time_zone_of(session, mob)))


# --- summaries ---


@growth.get("/mobs/<mob_id>/summary")
@auth.require_organizer
def organizer_summary(mob_id: str):
    session = db_session()
    return jsonify(summary.organizer_summary(session, _owned_mob(session, mob_id)))


@growth.get("/mobs/<mob_id>/summary.geojson")
@auth.require_organizer
def summary_geojson(mob_id: str):
    session = db_session()
    mob = _owned_mob(session, mob_id)
    import json

    body = json.dumps(summary.export_geojson(session, mob), ensure_ascii=False)
    return _download(body, "application/geo+json", f"goodmob-{mob.id}.geojson")


@growth.get("/mobs/<mob_id>/summary.csv")
@auth.require_organizer
def summary_csv(mob_id: str):
    session = db_session()
    mob = _owned_mob(session, mob_id)
    table = request.args.get("table", "tasks")
    if table not in summary.CSV_TABLES:
        raise ApiError(
            400,
            "param_out_of_range",
            f"table must be one of {', '.join(summary.CSV_TABLES)}.",
            {"param": "table"},
        )
    body = summary.export_csv(session, mob, table)
    return _download(body, "text/csv", f"goodmob-{mob.id}-{table}.csv")


@growth.get("/mobs/<mob_id>/public-summary")
def public_summary(mob_id: str):
    session = db_session()
    mob = mobs.get_mob(session, mob_id)  # drafts have no public summary
    return jsonify(summary.public_summary(session, mob))


# --- OpenAPI ---

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
