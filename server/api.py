"""The JSON REST API under /api: thin handlers (parse → domain operation → commit → serialize)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Blueprint, current_app, g, jsonify, request, url_for
from sqlalchemy import func, select

from server.domain import (
    accounts,
    campaigns,
    controls,
    follows,
    mobs,
    participants,
    ports,
    timeline,
)
from server.domain.views import iso as _iso
from server.domain.views import mob_json, tasks_built
from server.http import auth
from server.infra import ratelimit
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.infra.models import Deed, Mob, Task
from server.openapi import openapi_document
from server.validate import (
    get_bool,
    get_int,
    get_number,
    get_str,
    get_time,
    json_body,
    query_number,
    reject_unknown,
)

__all__ = ["api"]

api = Blueprint("api", __name__, url_prefix="/api")

_KIND = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _settings():
    return current_app.config["SETTINGS"]


def _task_count(session, mob: Mob) -> int:
    return session.scalar(select(func.count()).where(Task.mob_pk == mob.pk))


def _owned_mob(session, mob_id: str) -> Mob:
    return mobs.get_owned_mob(session, mob_id, g.organizer)


def _kind(data: dict) -> str:
    kind = get_str(data, "kind", max_len=40)
    if not _KIND.match(kind):
        raise ApiError(
            400,
            "field_invalid",
            "The field 'kind' must be lower-case letters, digits, '-' or '_' (e.g. 'litter').",
            {"field": "kind"},
        )
    return kind


def _capacity(data: dict) -> int:
    return get_int(
        data, "capacity", lo=1, hi=_settings().task_capacity_max, required=False, default=1
    )


# --- documentation -----------------------------------------------------------------------


@api.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


# --- organizers --------------------------------------------------------------------------


def _session_body(session, organizer) -> dict:
    return {
        "organizer": {"id": organizer.id, "email": organizer.email, "name": organizer.name},
        "token": accounts.issue_token(session, organizer),
        "token_type": "Bearer",
        "expires_in_s": _settings().organizer_token_max_age_s,
    }


@api.post("/organizers")
def create_organizer():
    data = json_body(request)
    reject_unknown(data, {"email", "password", "name"})
    email = get_str(data, "email", max_len=254)
    password = data.get("password")
    if password is None:
        raise ApiError(
            400, "field_missing", "The field 'password' is required.", {"field": "password"}
        )
    if not isinstance(password, str) or len(password) > 200:
        raise ApiError(
            400,
            "field_wrong_type",
            "The password must be a string of at most 200 characters.",
            {"field": "password"},
        )
    name = get_str(data, "name", max_len=80)
    session = db_session()
    organizer = accounts.sign_up(session, email, password, name)
    body = _session_body(session, organizer)
    session.commit()
    return jsonify(body), 201


@api.post("/sessions")
def create_session():
    data = json_body(request)
    reject_unknown(data, {"email", "password"})
    email = get_str(data, "email", max_len=254)
    password = data.get("password")
    if not isinstance(password, str):
        raise ApiError(
            400, "field_missing", "The field 'password' is required.", {"field": "password"}
        )
    refused = ratelimit.check_log_in(email)  # per account, before any password work
    if refused is not None:
        return refused
    session = db_session()
    organizer = accounts.log_in(session, email, password)
    body = _session_body(session, organizer)
    session.commit()
    return jsonify(body), 201


@api.delete("/sessions/current")
@auth.require_organizer
def delete_current_session():
    """Log out: this token is refused from now on, on every process; other sessions go on."""
    session = db_session()
    accounts.log_out(session, g.organizer_token)
    session.commit()
    return "", 204


@api.delete("/sessions")
@auth.require_organizer
def delete_all_sessions():
    """Log out everywhere: every token of this organizer, this one included, is refused."""
    session = db_session()
    accounts.log_out_everywhere(session, g.organizer)
    session.commit()
    return "", 204


@api.get("/organizers/me/mobs")
@auth.require_organizer
def my_mobs():
    session = db_session()
    rows = session.scalars(
        select(Mob).where(Mob.organizer_id == g.organizer.id).order_by(Mob.go_at.desc())
    ).all()
    return jsonify({"mobs": [mob_json(m, _task_count(session, m)) for m in rows]})


# --- mobs ---------------------------------------------------------------------------------

_MOB_FIELDS = {"title", "description", "action", "zone", "go_at", "duration_s", "rehearsal"}


def _mob_changes(data: dict, partial: bool) -> dict:
    s = _settings()
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


@api.post("/mobs")
@auth.require_organizer
def create_mob():
    data = json_body(request)
    reject_unknown(data, _MOB_FIELDS)
    changes = _mob_changes(data, partial=False)
    session = db_session()
    mob = mobs.create_mob(session, g.organizer, settings=_settings(), **changes)
    session.commit()
    response = jsonify(mob_json(mob, 0))
    response.headers["Location"] = url_for("api.get_mob", mob_id=mob.id)
    return response, 201


@api.get("/mobs")
def list_nearby():
    s = _settings()
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


@api.get("/mobs/<mob_id>")
def get_mob(mob_id: str):
    session = db_session()
    mob = mobs.get_mob(session, mob_id, auth.optional_organizer(session))
    body = mob_json(mob, _task_count(session, mob))
    body["counters"] = participants.counters(session, mob)
    return jsonify(body)


@api.patch("/mobs/<mob_id>")
@auth.require_organizer
def update_mob(mob_id: str):
    session = db_session()
    mob = _owned_mob(session, mob_id)
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
    mobs.update_mob(session, mob, changes, _settings())
    if mob.status != "draft" and (mob.timeline_version != version or "rehearsal" in changes):
        timeline.record_event(
            session, mob, "timeline", {"timeline": timeline.timeline_json(mob)}, _settings()
        )
    session.commit()
    return jsonify(mob_json(mob, _task_count(session, mob)))


@api.post("/mobs/<mob_id>/publish")
@auth.require_organizer
def publish_mob(mob_id: str):
    session = db_session()
    mob = _owned_mob(session, mob_id)
    mobs.publish_mob(session, mob)
    session.commit()
    follows.on_published(session, mob)  # followers told; a failure there is only logged
    return jsonify(mob_json(mob, _task_count(session, mob)))


@api.post("/mobs/<mob_id>/cancel")
@auth.require_organizer
def cancel_mob(mob_id: str):
    session = db_session()
    mob = _owned_mob(session, mob_id)
    controls.cancel(session, mob, _settings())
    session.commit()
    return jsonify(mob_json(mob, _task_count(session, mob)))


@api.post("/mobs/<mob_id>/start-now")
@auth.require_organizer
def start_now(mob_id: str):
    data = json_body(request)
    reject_unknown(data, {"lead_s"})
    lead_s = get_int(data, "lead_s", lo=1, hi=24 * 3600, required=False)
    session = db_session()
    mob = _owned_mob(session, mob_id)
    controls.start_now(session, mob, lead_s, _settings())
    session.commit()
    return jsonify(mob_json(mob, _task_count(session, mob)))


@api.post("/mobs/<mob_id>/postpone")
@auth.require_organizer
def postpone(mob_id: str):
    data = json_body(request)
    session = db_session()
    mob = _owned_mob(session, mob_id)
    controls.postpone(session, mob, data, _settings())
    session.commit()
    return jsonify(mob_json(mob, _task_count(session, mob)))


@api.post("/mobs/<mob_id>/announcements")
@auth.require_organizer
def announce(mob_id: str):
    data = json_body(request)
    text = controls.announcement_text(data, _settings())
    session = db_session()
    mob = _owned_mob(session, mob_id)
    event = controls.announce(session, mob, text, _settings())
    session.commit()
    return jsonify(event), 201


@api.get("/mobs/<mob_id>/events")
def list_events(mob_id: str):
    """The mob's numbered events after ``after`` (for clients that poll instead of listening)."""
    session = db_session()
    mob = mobs.get_mob(session, mob_id, auth.optional_organizer(session))
    after = int(query_number(request.args, "after", lo=0, hi=2**62, required=False, default=0))
    missed = timeline.missed_events(session, mob, after)
    if missed is None:
        raise ApiError(410, "events_gone", "Those events are no longer kept; load the mob afresh.")
    return jsonify({"seq": mob.event_seq, "events": missed})


# --- tasks --------------------------------------------------------------------------------


def _feature_collection(tasks, deeds_done: dict[int, int] | None = None) -> dict:
    """Tasks as GeoJSON; with ``deeds_done`` (task id → count) each carries its counter."""
    features = [
        mobs.task_feature(t, None if deeds_done is None else deeds_done.get(t.id, 0)) for t in tasks
    ]
    return {"type": "FeatureCollection", "features": features}


@api.get("/mobs/<mob_id>/tasks")
def list_tasks(mob_id: str):
    session = db_session()
    mob = mobs.get_mob(session, mob_id, auth.optional_organizer(session))
    return current_app.response_class(tasks_built(session, mob).body, mimetype="application/json")


@api.post("/mobs/<mob_id>/tasks/generate")
@auth.require_organizer
def generate_tasks(mob_id: str):
    s = _settings()
    session = db_session()
    mob = _owned_mob(session, mob_id)
    data = json_body(request)
    reject_unknown(data, {"spacing_m", "kind", "capacity", "grid", "label", "prompt", "replace"})
    spacing_m = get_number(data, "spacing_m", lo=s.task_spacing_min_m, hi=s.task_spacing_max_m)
    grid = get_str(data, "grid", required=False, default="hex", max_len=10)
    if grid not in ("hex", "square"):
        raise ApiError(
            400, "field_invalid", "The field 'grid' must be 'hex' or 'square'.", {"field": "grid"}
        )
    tasks = mobs.generate_tasks(
        session,
        mob,
        spacing_m=spacing_m,
        kind=_kind(data),
        capacity=_capacity(data),
        grid=grid,
        label=get_str(data, "label", required=False, max_len=100),
        prompt=get_str(data, "prompt", required=False, default="", max_len=500, min_len=0),
        replace=get_bool(data, "replace", default=True),
        settings=s,
    )
    session.commit()
    _tasks_changed(mob)
    body = _feature_collection(tasks)
    body["count"] = len(tasks)
    return jsonify(body), 201


@api.post("/mobs/<mob_id>/tasks")
@auth.require_organizer
def add_task(mob_id: str):
    s = _settings()
    session = db_session()
    mob = _owned_mob(session, mob_id)
    data = json_body(request)
    reject_unknown(data, {"lat", "lon", "kind", "label", "prompt", "capacity"})
    task = mobs.add_task(
        session,
        mob,
        lat=get_number(data, "lat", lo=-90, hi=90),
        lon=get_number(data, "lon", lo=-180, hi=180),
        kind=_kind(data),
        label=get_str(data, "label", required=False, max_len=120),
        prompt=get_str(data, "prompt", required=False, default="", max_len=500, min_len=0),
        capacity=_capacity(data),
        settings=s,
    )
    session.commit()
    _tasks_changed(mob)
    return jsonify(mobs.task_feature(task)), 201


def _tasks_changed(mob: Mob) -> None:
    """Spectators and the organizer's other screens see an edited task set (not drafts)."""
    if mob.status != "draft":
        ports.notifier().tasks_changed(mob)


_TASK_UPDATE_FIELDS = {"lat", "lon", "kind", "label", "prompt", "capacity", "status"}


@api.patch("/mobs/<mob_id>/tasks/<int:task_id>")
@auth.require_organizer
def update_task(mob_id: str, task_id: int):
    s = _settings()
    data = json_body(request)
    reject_unknown(data, _TASK_UPDATE_FIELDS)
    if not data:
        raise ApiError(
            400, "body_empty", f"Send at least one of: {', '.join(sorted(_TASK_UPDATE_FIELDS))}."
        )
    changes: dict = {}
    if "lat" in data or "lon" in data:
        changes["lat"] = get_number(data, "lat", lo=-90, hi=90)
        changes["lon"] = get_number(data, "lon", lo=-180, hi=180)
    if "kind" in data:
        changes["kind"] = _kind(data)
    if "label" in data:
        changes["label"] = get_str(data, "label", max_len=120)
    if "prompt" in data:
        changes["prompt"] = get_str(data, "prompt", max_len=500, min_len=0)
    if "capacity" in data:
        changes["capacity"] = get_int(data, "capacity", lo=1, hi=s.task_capacity_max)
    if "status" in data:
        changes["status"] = get_str(data, "status", max_len=10)
        if changes["status"] not in ("open", "closed"):
            raise ApiError(
                400, "status_invalid", "status is 'open' or 'closed'.", {"field": "status"}
            )
    session = db_session()
    mob = _owned_mob(session, mob_id)
    task, displaced = mobs.update_task(session, mob, task_id, changes)
    moved = participants.rematch(session, mob, displaced)
    session.commit()
    ports.notifier().tasks_assigned(session, moved)
    _tasks_changed(mob)
    return jsonify(mobs.task_feature(task))


@api.delete("/mobs/<mob_id>/tasks/<int:task_id>")
@auth.require_organizer
def delete_task(mob_id: str, task_id: int):
    session = db_session()
    mob = _owned_mob(session, mob_id)
    holders = participants.holders_of(session, task_id)
    mobs.delete_task(session, mob, task_id)
    session.flush()
    moved = participants.rematch(session, mob, holders)
    session.commit()
    ports.notifier().tasks_assigned(session, moved)
    _tasks_changed(mob)
    return "", 204


# --- participants and deeds -----------------------------------------------------------------


@api.post("/mobs/<mob_id>/participants")
def join_mob(mob_id: str):
    session = db_session()
    mob = mobs.get_mob(session, mob_id)
    data = json_body(request) if request.get_data(cache=True) else {}
    reject_unknown(data, {"nickname", "ref"})
    participant = participants.join_mob(
        session,
        mob,
        nickname=get_str(data, "nickname", required=False, max_len=100),
        ref=get_str(data, "ref", required=False, max_len=16),
    )
    session.commit()
    token = participants.issue_token(participant, mob, current_app.config["SECRET_KEY"])
    body = {
        "participant": {
            "id": participant.id,
            "nickname": participant.nickname,
            "ref_code": participant.ref_code,
        },
        "token": token,
        "expires_in_s": _settings().participant_token_max_age_s,
        "share_url": f"/m/{mob.id}?ref={participant.ref_code}",
        "mob": mob_json(mob),
    }
    return jsonify(body), 201


def _deed_json(deed: Deed) -> dict:
    return {
        "id": deed.id,
        "deed_id": deed.deed_id,
        "task": deed.task_id,
        "status": deed.status,
        "reason": deed.reason,
        "distance_m": deed.distance_m,
        "accuracy_m": deed.accuracy_m,
        "created_at": _iso(deed.created_at),
        "reviewed_at": _iso(deed.reviewed_at),
    }


@api.get("/mobs/<mob_id>/deeds")
@auth.require_organizer
def list_deeds(mob_id: str):
    session = db_session()
    mob = _owned_mob(session, mob_id)
    query = select(Deed).where(Deed.mob_pk == mob.pk).order_by(Deed.id)
    status = request.args.get("status")
    if status is not None:
        if status not in ("accepted", "flagged", "approved", "rejected"):
            raise ApiError(
                400,
                "param_out_of_range",
                "status must be accepted, flagged, approved or rejected.",
                {"param": "status"},
            )
        query = query.where(Deed.status == status)
    return jsonify({"deeds": [_deed_json(d) for d in session.scalars(query)]})


@api.post("/mobs/<mob_id>/deeds/<int:deed_id>/review")
@auth.require_organizer
def review_deed(mob_id: str, deed_id: int):
    session = db_session()
    mob = _owned_mob(session, mob_id)
    data = json_body(request)
    reject_unknown(data, {"verdict"})
    verdict = get_str(data, "verdict", max_len=10)
    deed = participants.review_deed(session, mob, deed_id, verdict, datetime.now(UTC))
    session.commit()
    notifier = ports.notifier()
    notifier.deed_reviewed(mob, deed)  # the deed's owner sees the verdict on their phone
    notifier.stats_changed(mob)  # the counters (and pledge totals) moved: live pages update
    notifier.tasks_changed(mob)  # an approved deed counts for its task
    return jsonify(_deed_json(deed))
