"""JSON views shared by the REST API and the socket namespaces: a mob as clients see it, and
a mob's tasks as GeoJSON with their deed counters (built once per change, see
``tasks_built``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from server.domain import mobs, timeline
from server.infra.models import COUNTED_DEED_STATUSES, Deed, Mob, Task

__all__ = ["iso", "mob_json", "tasks_built", "tasks_feature_collection"]


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mob_json(mob: Mob, task_count: int | None = None, distance_m: float | None = None) -> dict:
    data = {
        "id": mob.id,
        "title": mob.title,
        "description": mob.description,
        "action": mob.action,
        "status": mob.status,
        "zone": mobs.zone_geojson(mob),
        "gather_at": iso(mob.gather_at),
        "countdown_at": iso(mob.countdown_at),
        "go_at": iso(mob.go_at),
        "end_at": iso(mob.end_at),
        "duration_s": mob.duration_s,
        "rehearsal": mob.rehearsal,
        "timeline": timeline.timeline_json(mob),
        "organizer": {"name": mob.organizer.name},
        "url": f"/m/{mob.id}",
        "created_at": iso(mob.created_at),
        "updated_at": iso(mob.updated_at),
        "published_at": iso(mob.published_at),
    }
    if task_count is not None:
        data["task_count"] = task_count
    if distance_m is not None:
        data["distance_m"] = round(distance_m, 1)
    return data


@dataclass(frozen=True)
class _BuiltTasks:
    """A mob's tasks collection as this process built it, for one (tasks version, counted
    deeds): the dict (snapshots, pushes) and its JSON (REST)."""

    key: tuple[int, int]
    collection: dict
    body: bytes


# mob id → its collection. The same for every audience: no task feature carries anything
# that varies by who asks (no holder count, issue 15 §1).
_built_tasks: dict[str, _BuiltTasks] = {}
_BUILT_TASKS_MAX = 256


def _counted_deeds(session, mob: Mob) -> int:
    return session.scalar(
        select(func.count()).where(Deed.mob_pk == mob.pk, Deed.status.in_(COUNTED_DEED_STATUSES))
    )


def tasks_built(session, mob: Mob) -> _BuiltTasks:
    """The mob's collection, built once per (``mobs.tasks_version``, counted deeds): every
    task edit bumps the version and counted deeds only ever grow, so the key changes with
    every change of the collection and a reader never gets a stale one (issue 15 §6)."""
    key = (mob.tasks_version, _counted_deeds(session, mob))
    cached = _built_tasks.get(mob.id)
    if cached is not None and cached.key == key:
        return cached
    collection = _build_tasks(session, mob)
    body = json.dumps(collection, separators=(",", ":")).encode()
    if len(_built_tasks) >= _BUILT_TASKS_MAX:
        _built_tasks.clear()
    _built_tasks[mob.id] = built = _BuiltTasks(key, collection, body)
    return built


def tasks_feature_collection(session, mob: Mob) -> dict:
    """The mob's tasks as GeoJSON with per-task deed counters (no participant in it), from
    this process's cache (``_tasks_built``). Callers must not change it."""
    return tasks_built(session, mob).collection


def _build_tasks(session, mob: Mob) -> dict:
    """Read as plain rows (coordinates by ST_X/ST_Y in the database), not as ORM objects with
    their geometry parsed in Python: a mob has up to TASKS_MAX_PER_MOB tasks."""
    rows = session.execute(
        select(
            Task.id,
            Task.kind,
            Task.label,
            Task.prompt,
            Task.capacity,
            Task.status,
            func.ST_X(Task.point),
            func.ST_Y(Task.point),
        )
        .where(Task.mob_pk == mob.pk)
        .order_by(Task.id)
    ).all()
    done = dict(
        session.execute(
            select(Deed.task_id, func.count())
            .where(Deed.mob_pk == mob.pk, Deed.status.in_(COUNTED_DEED_STATUSES))
            .group_by(Deed.task_id)
        ).all()
    )
    features = [mobs.task_feature_of(*row, deeds_done=done.get(row[0], 0)) for row in rows]
    return {"type": "FeatureCollection", "features": features}
