"""A mob's tasks: read (GeoJSON with deed counters, cached per change), generate, add, change,
delete; re-matched participants and live pages are told through the notifier."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request

from server.domain import mobs, participants, ports
from server.domain.views import tasks_built
from server.http import auth
from server.http.common import owned_mob, settings
from server.http.validate import get_bool, get_int, get_number, get_str, json_body, reject_unknown
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.infra.models import Mob

__all__ = ["blueprint"]

blueprint = Blueprint("tasks", __name__, url_prefix="/api")


_KIND = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


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
        data, "capacity", lo=1, hi=settings().task_capacity_max, required=False, default=1
    )


def _feature_collection(tasks, deeds_done: dict[int, int] | None = None) -> dict:
    """Tasks as GeoJSON; with ``deeds_done`` (task id → count) each carries its counter."""
    features = [
        mobs.task_feature(t, None if deeds_done is None else deeds_done.get(t.id, 0)) for t in tasks
    ]
    return {"type": "FeatureCollection", "features": features}


@blueprint.get("/mobs/<mob_id>/tasks")
def list_tasks(mob_id: str):
    session = db_session()
    mob = mobs.get_mob(session, mob_id, auth.optional_organizer(session))
    return current_app.response_class(tasks_built(session, mob).body, mimetype="application/json")


@blueprint.post("/mobs/<mob_id>/tasks/generate")
@auth.require_organizer
def generate_tasks(mob_id: str):
    s = settings()
    session = db_session()
    mob = owned_mob(session, mob_id)
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


@blueprint.post("/mobs/<mob_id>/tasks")
@auth.require_organizer
def add_task(mob_id: str):
    s = settings()
    session = db_session()
    mob = owned_mob(session, mob_id)
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


@blueprint.patch("/mobs/<mob_id>/tasks/<int:task_id>")
@auth.require_organizer
def update_task(mob_id: str, task_id: int):
    s = settings()
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
    mob = owned_mob(session, mob_id)
    task, displaced = mobs.update_task(session, mob, task_id, changes)
    moved = participants.rematch(session, mob, displaced)
    session.commit()
    ports.notifier().tasks_assigned(session, moved)
    _tasks_changed(mob)
    return jsonify(mobs.task_feature(task))


@blueprint.delete("/mobs/<mob_id>/tasks/<int:task_id>")
@auth.require_organizer
def delete_task(mob_id: str, task_id: int):
    session = db_session()
    mob = owned_mob(session, mob_id)
    holders = participants.holders_of(session, task_id)
    mobs.delete_task(session, mob, task_id)
    session.flush()
    moved = participants.rematch(session, mob, holders)
    session.commit()
    ports.notifier().tasks_assigned(session, moved)
    _tasks_changed(mob)
    return "", 204
