"""Mobs: create, find nearby, read, change, publish, and the organizer's controls (start now,
postpone, announce, cancel: the same ``server.domain.controls`` as the organizer's socket);
the numbered events for clients that poll."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request, url_for

from server.domain import campaigns, controls, follows, mobs, participants, timeline
from server.domain.views import mob_json
from server.http import auth
from server.http.common import owned_mob, settings, task_count
from server.http.validate import (
    get_bool,
    get_int,
    get_str,
    get_time,
    json_body,
    query_number,
    reject_unknown,
)
from server.infra.db import db_session
from server.infra.errors import ApiError

__all__ = ["blueprint"]

blueprint = Blueprint("mobs", __name__, url_prefix="/api")


_MOB_FIELDS = {"title", "description", "action", "zone", "go_at", "duration_s", "rehearsal"}


def _mob_changes(data: dict, partial: bool) -> dict:
    s = settings()
    req = not partial
    changes: dict = {}
    if not partial or "title" in data:
        changes["title"] = get_str(data, "title", max_len=120)
    if not partial or "description" in data:
        changes["description"] = get_str(
            data, "description", required=False, default="", max_len=5000, min_len=0
        )
    if not partial or "action" in data:
        changes["action"] = get_str(data, "action", max_len=500)
    if not partial or "zone" in data:
        if "zone" not in data or data["zone"] is None:
            raise ApiError(400, "field_missing", "The field 'zone' is required.", {"field": "zone"})
        changes["zone"] = mobs.parse_zone_or_error(data["zone"], s)
    if not partial or "go_at" in data:
        changes["go_at"] = get_time(data, "go_at", required=req)
    if not partial or "duration_s" in data:
        changes["duration_s"] = get_int(
            data, "duration_s", lo=s.duration_min_s, hi=s.duration_max_s, required=req
        )
    if "rehearsal" in data:
        changes["rehearsal"] = get_bool(data, "rehearsal", default=False)
    return changes


@blueprint.post("/mobs")
@auth.require_organizer
def create_mob():
    data = json_body(request)
    reject_unknown(data, _MOB_FIELDS)
    changes = _mob_changes(data, partial=False)
    session = db_session()
    mob = mobs.create_mob(session, g.organizer, settings=settings(), **changes)
    session.commit()
    response = jsonify(mob_json(mob, 0))
    response.headers["Location"] = url_for("mobs.get_mob", mob_id=mob.id)
    return response, 201


@blueprint.get("/mobs")
def list_nearby():
    s = settings()
    lat = query_number(request.args, "lat", lo=-90, hi=90)
    lon = query_number(request.args, "lon", lo=-180, hi=180)
    radius_m = query_number(
        request.args,
        "radius_m",
        lo=0,
        hi=s.nearby_max_radius_m,
        required=False,
        default=s.nearby_default_radius_m,
    )
    limit = int(
        query_number(
            request.args, "limit", lo=1, hi=s.nearby_limit, required=False, default=s.nearby_limit
        )
    )
    session = db_session()
    found = mobs.nearby_mobs(session, lon, lat, radius_m, limit)
    return jsonify(
        {
            "center": {"lat": lat, "lon": lon},
            "radius_m": radius_m,
            "mobs": [mob_json(mob, distance_m=d) for mob, d in found],
        }
    )


@blueprint.get("/mobs/<mob_id>")
def get_mob(mob_id: str):
    session = db_session()
    mob = mobs.get_mob(session, mob_id, auth.optional_organizer(session))
    body = mob_json(mob, task_count(session, mob))
    body["counters"] = participants.counters(session, mob)
    return jsonify(body)


@blueprint.patch("/mobs/<mob_id>")
@auth.require_organizer
def update_mob(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)
    data = json_body(request)
    reject_unknown(data, _MOB_FIELDS)
    if not data:
        raise ApiError(
            400, "body_empty", f"Send at least one of: {', '.join(sorted(_MOB_FIELDS))}."
        )
    changes = _mob_changes(data, partial=True)
    if "go_at" in changes and mob.status != "draft":
        campaigns.guard_schedule_change(session, mob)
    version = mob.timeline_version
    mobs.update_mob(session, mob, changes, settings())
    if mob.status != "draft" and (mob.timeline_version != version or "rehearsal" in changes):
        timeline.record_event(
            session, mob, "timeline", {"timeline": timeline.timeline_json(mob)}, settings()
        )
    session.commit()
    return jsonify(mob_json(mob, task_count(session, mob)))


@blueprint.post("/mobs/<mob_id>/publish")
@auth.require_organizer
def publish_mob(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)
    mobs.publish_mob(session, mob)
    session.commit()
    follows.on_published(session, mob)  # followers told; a failure there is only logged
    return jsonify(mob_json(mob, task_count(session, mob)))


@blueprint.post("/mobs/<mob_id>/cancel")
@auth.require_organizer
def cancel_mob(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)
    controls.cancel(session, mob, settings())
    session.commit()
    return jsonify(mob_json(mob, task_count(session, mob)))


@blueprint.post("/mobs/<mob_id>/start-now")
@auth.require_organizer
def start_now(mob_id: str):
    data = json_body(request)
    reject_unknown(data, {"lead_s"})
    lead_s = get_int(data, "lead_s", lo=1, hi=24 * 3600, required=False)
    session = db_session()
    mob = owned_mob(session, mob_id)
    controls.start_now(session, mob, lead_s, settings())
    session.commit()
    return jsonify(mob_json(mob, task_count(session, mob)))


@blueprint.post("/mobs/<mob_id>/postpone")
@auth.require_organizer
def postpone(mob_id: str):
    data = json_body(request)
    session = db_session()
    mob = owned_mob(session, mob_id)
    controls.postpone(session, mob, data, settings())
    session.commit()
    return jsonify(mob_json(mob, task_count(session, mob)))


@blueprint.post("/mobs/<mob_id>/announcements")
@auth.require_organizer
def announce(mob_id: str):
    data = json_body(request)
    text = controls.announcement_text(data, settings())
    session = db_session()
    mob = owned_mob(session, mob_id)
    event = controls.announce(session, mob, text, settings())
    session.commit()
    return jsonify(event), 201


@blueprint.get("/mobs/<mob_id>/events")
def list_events(mob_id: str):
    """The mob's numbered events after ``after`` (for clients that poll instead of listening)."""
    session = db_session()
    mob = mobs.get_mob(session, mob_id, auth.optional_organizer(session))
    after = int(query_number(request.args, "after", lo=0, hi=2**62, required=False, default=0))
    missed = timeline.missed_events(session, mob, after)
    if missed is None:
        raise ApiError(410, "events_gone", "Those events are no longer kept; load the mob afresh.")
    return jsonify({"seq": mob.event_seq, "events": missed})
