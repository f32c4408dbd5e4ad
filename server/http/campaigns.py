"""Campaigns: several mobs with one GO across time zones; copying a mob; a mob's time zone."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, g, jsonify
from sqlalchemy import select

from server.domain import campaigns, follows
from server.domain.views import mob_json
from server.http import auth
from server.http.common import json_object, owned_campaign, owned_mob, settings
from server.http.schemas.bodies import (
    CampaignAddMob,
    CampaignCreate,
    CampaignPatch,
    MobCopy,
    Postpone,
    StartNow,
    TimeZone,
)
from server.http.schemas.fields import body, check_field, check_unknown, parse
from server.infra.db import db_session
from server.infra.models import Campaign

__all__ = ["blueprint"]

blueprint = Blueprint("campaigns", __name__, url_prefix="/api")


@blueprint.post("/campaigns")
@auth.require_organizer
def create_campaign():
    fields = body(CampaignCreate).values()
    session = db_session()
    campaign = campaigns.create_campaign(session, g.organizer, **fields)
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
    changes = body(CampaignPatch).changes()
    campaigns.update_campaign(session, campaign, changes, settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@blueprint.post("/campaigns/<campaign_id>/mobs")
@auth.require_organizer
def add_campaign_mob(campaign_id: str):
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    data = json_object()
    check_unknown(CampaignAddMob, data)
    mob = owned_mob(session, check_field(CampaignAddMob, data, "mob"))  # before time_zone
    time_zone = check_field(CampaignAddMob, data, "time_zone")
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
    lead_s = body(StartNow, optional=True).lead_s
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    campaigns.start_now(session, campaign, lead_s, settings())
    session.commit()
    return jsonify(campaigns.campaign_json(session, campaign, g.organizer))


@blueprint.post("/campaigns/<campaign_id>/postpone")
@auth.require_organizer
def postpone_campaign(campaign_id: str):
    data = json_object()
    check_unknown(Postpone, data)  # unknown fields first, then the campaign, then the rest
    session = db_session()
    campaign = owned_campaign(session, campaign_id)
    later = parse(Postpone, data)
    if later.by_s is not None:
        go_at = campaign.go_at + timedelta(seconds=later.by_s)
    else:
        go_at = later.go_at
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
    check_unknown(MobCopy, data)
    # every field but spacing_m, then the campaign (404), then spacing_m: the old order
    copy = parse(MobCopy, {k: v for k, v in data.items() if k != "spacing_m"})
    campaign = campaigns.get_campaign(session, copy.campaign) if copy.campaign else None
    spacing_m = check_field(MobCopy, data, "spacing_m")
    mob = campaigns.copy_mob(
        session,
        g.organizer,
        template,
        zone=copy.zone,
        settings=s,
        title=copy.title,
        go_at=copy.go_at,
        time_zone=copy.time_zone,
        campaign=campaign,
        spacing_m=spacing_m,
    )
    session.commit()
    answer = mob_json(mob, len(mob.tasks))
    answer["go_local"] = campaigns.local_time_json(mob.go_at, campaigns.time_zone_of(session, mob))
    return jsonify(answer), 201


@blueprint.put("/mobs/<mob_id>/time-zone")
@auth.require_organizer
def set_time_zone(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)
    campaigns.set_time_zone(session, mob, body(TimeZone).time_zone)
    session.commit()
    return jsonify(campaigns.local_time_json(mob.go_at, campaigns.time_zone_of(session, mob)))
