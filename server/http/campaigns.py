"""Campaigns: several mobs with one GO across time zones; copying a mob; a mob's time zone."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from server.domain import campaigns, follows, mobs
from server.domain.views import mob_json
from server.http import auth
from server.http.common import json_object, owned_campaign, owned_mob, settings
from server.http.validate import get_int, get_number, get_str, get_time, reject_unknown
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.infra.models import Campaign

__all__ = ["blueprint"]

blueprint = Blueprint("campaigns", __name__, url_prefix="/api")


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


@blueprint.post("/campaigns")
@auth.require_organizer
def create_campaign():
    data = json_object()
    reject_unknown(data, {"title", "description", "go_at"})
    session = db_session()
    campaign = campaigns.create_campaign(
        session, g.organizer, **_campaign_changes(data, partial=False)
    )
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer)), 201


@blueprint.get("/organizers/me/campaigns")
@auth.require_organizer
def my_campaigns():
    session = db_session()
    rows = session.scalars(
        select(Campaign)
        .where(Campaign.organizer_id == g.organizer.id)
        .order_by(Campaign.go_at.desc())
    ).all()
    return jsonify({"campaigns": [campaigns.campaign_json(session, c, g.organizer) for c in rows]})


@blueprint.get("/campaigns/<campaign_id>")
def get_campaign(campaign_id: str):
    session = db_session()
    campaign = campaigns.get_campaign(session, campaign_id)
    return jsonify(campaigns.campaign_json(session, campaign, auth.optional_organizer(session)))


@blueprint.patch("/campaigns/<campaign_id>")
@auth.require_organizer
def update_campaign(campaign_id: str):
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    data = json_object()
    reject_unknown(data, {"title", "description", "go_at"})
    if not data:
        raise ApiError(400, "body_empty", "Send at least one of: description, go_at, title.")
    campaigns.update_campaign(session, campaign, _campaign_changes(data, True), settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@blueprint.post("/campaigns/<campaign_id>/mobs")
@auth.require_organizer
def add_campaign_mob(campaign_id: str):
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    data = json_object()
    reject_unknown(data, {"mob", "time_zone"})
    mob = owned_mob(session, get_str(data, "mob", max_len=16))
    time_zone = get_str(data, "time_zone", required=False, max_len=64)
    campaigns.add_mob(session, campaign, mob, time_zone, settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer)), 201


@blueprint.delete("/campaigns/<campaign_id>/mobs/<mob_id>")
@auth.require_organizer
def remove_campaign_mob(campaign_id: str, mob_id: str):
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    campaigns.remove_mob(session, campaign, owned_mob(session, mob_id))
    session.commit()
    return "", 204


@blueprint.post("/campaigns/<campaign_id>/publish")
@auth.require_organizer
def publish_campaign(campaign_id: str):
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    published = campaigns.publish(session, campaign)
    session.commit()
    for mob in published:
        follows.on_published(session, mob)
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@blueprint.post("/campaigns/<campaign_id>/start-now")
@auth.require_organizer
def start_campaign_now(campaign_id: str):
    data = json_object() if request.get_data(cache=True) else {}
    reject_unknown(data, {"lead_s"})
    lead_s = get_int(data, "lead_s", lo=1, hi=24 * 3600, required=False)
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    campaigns.start_now(session, campaign, lead_s, settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@blueprint.post("/campaigns/<campaign_id>/postpone")
@auth.require_organizer
def postpone_campaign(campaign_id: str):
    data = json_object()
    reject_unknown(data, {"go_at", "by_s"})
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    if ("go_at" in data) == ("by_s" in data):
        raise ApiError(
            400, "field_missing", "Send exactly one of go_at or by_s.", {"field": "go_at"}
        )
    if "by_s" in data:
        go_at = campaign.go_at + timedelta(seconds=get_int(data, "by_s", lo=1, hi=7 * 24 * 3600))
    else:
        go_at = get_time(data, "go_at")
    campaigns.postpone(session, campaign, go_at, settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@blueprint.post("/mobs/<mob_id>/copy")
@auth.require_organizer
def copy_mob(mob_id: str):
    """Copy a mob as a template into a new zone (and optionally into a campaign)."""
    s = settings()
    session = db_session()
    template = owned_mob(session, mob_id)
    data = json_object()
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


@blueprint.put("/mobs/<mob_id>/time-zone")
@auth.require_organizer
def set_time_zone(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)
    data = json_object()
    reject_unknown(data, {"time_zone"})
    campaigns.set_time_zone(session, mob, get_str(data, "time_zone", max_len=64))
    session.commit()
    return jsonify(campaigns.local_time_json(mob.go_at, campaigns.time_zone_of(session, mob)))
