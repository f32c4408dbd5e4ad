"""Mobs: create, find nearby, read, change, publish, and the organizer's controls (start now,
postpone, announce, cancel: the same ``server.domain.controls`` as the organizer's socket);
the numbered events for clients that poll."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request, url_for

from server.domain import campaigns, controls, follows, ical, mobs, participants, timeline
from server.domain.views import mob_json
from server.http import auth
from server.http.common import owned_mob, public_mob, settings, task_count
from server.http.schemas.bodies import MobCreate, MobPatch, StartNow
from server.http.schemas.fields import body
from server.http.schemas.queries import EventsQuery, NearbyQuery, parse_query
from server.http.validate import json_body
from server.infra.db import db_session
from server.infra.errors import ApiError

__all__ = ["blueprint"]

blueprint = Blueprint("mobs", __name__, url_prefix="/api")


@blueprint.post("/mobs")
@auth.require_organizer
def create_mob():
    fields = body(MobCreate).values()
    session = db_session()
    mob = mobs.create_mob(session, g.organizer, settings=settings(), **fields)
    session.commit()
    response = jsonify(mob_json(mob, 0))
    response.headers["Location"] = url_for("mobs.get_mob", mob_id=mob.id)
    return response, 201


@blueprint.get("/mobs")
def list_nearby():
    query = parse_query(NearbyQuery, request.args)
    session = db_session()
    found = mobs.nearby_mobs(session, query.lon, query.lat, query.radius_m, query.limit)
    return jsonify(
        {
            "center": {"lat": query.lat, "lon": query.lon},
            "radius_m": query.radius_m,
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


def _calendar(body: bytes, filename: str, attachment: bool) -> Response:
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = (
        f'{"attachment" if attachment else "inline"}; filename="{filename}"'
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/mobs.ics")
def nearby_ics():
    """A subscribable feed of the mobs near a place (the nearby search as a calendar)."""
    query = parse_query(NearbyQuery, request.args)
    found = mobs.nearby_mobs(db_session(), query.lon, query.lat, query.radius_m, query.limit)
    label = f"{query.lat:.4f}, {query.lon:.4f}"
    body = ical.place_calendar([mob for mob, _ in found], label, request.url_root)
    return _calendar(body, "goodmob-nearby.ics", False)


@blueprint.get("/mobs/<mob_id>.ics")
def mob_ics(mob_id: str):
    """The mob as a calendar entry (RFC 5545): GO, its page, SEQUENCE and STATUS."""
    mob = public_mob(db_session(), mob_id)
    return _calendar(ical.mob_calendar(mob, request.url_root), f"goodmob-{mob.id}.ics", True)


@blueprint.get("/mobs/<mob_id>/organizer/mobs.ics")
def organizer_ics(mob_id: str):
    """A subscribable feed of the upcoming mobs of this mob's organizer."""
    session = db_session()
    mob = public_mob(session, mob_id)
    body = ical.organizer_calendar(session, mob.organizer_id, mob.organizer.name, request.url_root)
    return _calendar(body, "goodmob-organizer.ics", False)


@blueprint.patch("/mobs/<mob_id>")
@auth.require_organizer
def update_mob(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)
    changes = body(MobPatch).changes()
    if "go_at" in changes and mob.status != "draft":
        campaigns.guard_schedule_change(session, mob)
    version = mob.timeline_version
    mobs.update_mob(session, mob, changes, settings())
    if mob.status != "draft" and (mob.timeline_version != version or "rehearsal" in changes):
        timeline.record_event(
            session, mob, "timeline", {"timeline": timeline.timeline_json(mob)}, settings()
        )
        if mob.timeline_version != version:
            timeline.record_notice(session, mob, "rescheduled")
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
    lead_s = body(StartNow).lead_s
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
    after = parse_query(EventsQuery, request.args).after
    missed = timeline.missed_events(session, mob, after)
    if missed is None:
        raise ApiError(410, "events_gone", "Those events are no longer kept; load the mob afresh.")
    return jsonify({"seq": mob.event_seq, "events": missed})
