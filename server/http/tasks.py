"""A mob's tasks: read (GeoJSON with deed counters, cached per change), generate, add, change,
delete; re-matched participants and live pages are told through the notifier."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from server.domain import mobs, participants, ports
from server.domain.views import tasks_built
from server.http import auth
from server.http.common import owned_mob, settings
from server.http.schemas.bodies import GenerateTasks, TaskCreate, TaskUpdate
from server.http.schemas.fields import body
from server.infra.db import db_session
from server.infra.models import Mob

__all__ = ["blueprint"]

blueprint = Blueprint("tasks", __name__, url_prefix="/api")


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
    tasks = mobs.generate_tasks(session, mob, **body(GenerateTasks).values(), settings=s)
    session.commit()
    _tasks_changed(mob)
    answer = _feature_collection(tasks)
    answer["count"] = len(tasks)
    return jsonify(answer), 201


@blueprint.post("/mobs/<mob_id>/tasks")
@auth.require_organizer
def add_task(mob_id: str):
    s = settings()
    session = db_session()
    mob = owned_mob(session, mob_id)
    task = mobs.add_task(session, mob, **body(TaskCreate).values(), settings=s)
    session.commit()
    _tasks_changed(mob)
    return jsonify(mobs.task_feature(task)), 201


def _tasks_changed(mob: Mob) -> None:
    """Spectators and the organizer's other screens see an edited task set (not drafts)."""
    if mob.status != "draft":
        ports.notifier().tasks_changed(mob)


@blueprint.patch("/mobs/<mob_id>/tasks/<int:task_id>")
@auth.require_organizer
def update_task(mob_id: str, task_id: int):
    changes = body(TaskUpdate).changes()
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
