"""The cascade and the funnel: share links, page-view beacons, who brought whom, and the
growth summary the live and participant pages show."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from server.domain import campaigns, cascade, mobs, pledges
from server.http import auth
from server.http.common import owned_mob, public_mob, settings
from server.http.schemas.bodies import ViewBeacon
from server.http.schemas.fields import body
from server.infra.db import db_session
from server.infra.errors import ApiError

__all__ = ["blueprint"]

blueprint = Blueprint("cascade", __name__, url_prefix="/api")


@blueprint.post("/mobs/<mob_id>/share-link")
@auth.require_organizer
def share_link(mob_id: str):
    """The organizer's share link with its referral code (the same code on every call)."""
    session = db_session()
    mob = owned_mob(session, mob_id)
    link = cascade.share_link(session, mob)
    session.commit()
    return jsonify(link)


@blueprint.post("/mobs/<mob_id>/views")
def count_view(mob_id: str):
    """A page view beacon ``{client_id}`` (a random id the page made); no personal data kept."""
    session = db_session()
    mob = mobs.get_mob(session, mob_id)
    beacon = body(ViewBeacon)  # client_id is checked by count_view
    counted = cascade.count_view(session, mob, beacon.client_id, settings())
    session.commit()
    return jsonify({"counted": counted})


@blueprint.get("/mobs/<mob_id>/funnel")
def funnel(mob_id: str):
    session = db_session()
    return jsonify(cascade.funnel(session, public_mob(session, mob_id)))


@blueprint.get("/mobs/<mob_id>/cascade")
def get_cascade(mob_id: str):
    session = db_session()
    mob = public_mob(session, mob_id)
    ref = request.args.get("ref") or None
    if ref is not None and len(ref) > 16:
        raise ApiError(400, "param_out_of_range", "ref is a referral code.", {"param": "ref"})
    return jsonify(cascade.cascade(session, mob, ref=ref))


@blueprint.get("/mobs/<mob_id>/growth")
def mob_growth(mob_id: str):
    """Everything the live and participant pages show beyond the counters, in one call."""
    session = db_session()
    mob = public_mob(session, mob_id)
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
