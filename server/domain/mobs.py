"""Domain operations on mobs and their tasks. Functions take a session and never commit."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta

import numpy as np
import shapely
from geoalchemy2 import Geography
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point, mapping
from sqlalchemy import cast, column, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import geo
from config import Settings
from server.domain import compute
from server.infra.errors import ApiError
from server.infra.models import (
    CLOSED_STATUSES,
    LISTED_STATUSES,
    LIVE_STATUSES,
    Mob,
    Organizer,
    Participant,
    Task,
    utcnow,
)

__all__ = [
    "zone_limits",
    "parse_zone_or_error",
    "create_mob",
    "update_mob",
    "publish_mob",
    "cancel_mob",
    "get_mob",
    "require_owner",
    "get_owned_mob",
    "nearby_mobs",
    "generate_tasks",
    "add_task",
    "delete_task",
    "update_task",
    "mob_zone",
    "task_feature",
    "zone_geojson",
]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LEN = 8


def zone_limits(settings: Settings) -> geo.ZoneLimits:
    return geo.ZoneLimits(
        max_vertices=settings.zone_max_vertices,
        max_area_m2=settings.zone_max_area_m2,
        min_area_m2=settings.zone_min_area_m2,
    )


def parse_zone_or_error(obj: object, settings: Settings):
    """The zone as a shapely geometry, or a 422 carrying geo's code, message and place."""
    try:
        return geo.parse_zone(obj, zone_limits(settings))
    except geo.GeoError as exc:
        where = {"field": "zone", **(exc.where or {})}
        raise ApiError(422, exc.code, exc.message, where) from None


def mob_zone(mob: Mob):
    return to_shape(mob.zone)


def _new_public_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LEN))


def _schedule(mob: Mob, go_at: datetime, duration_s: int, settings: Settings) -> None:
    mob.go_at = go_at
    mob.duration_s = duration_s
    mob.end_at = go_at + timedelta(seconds=duration_s)
    mob.gather_at = go_at - timedelta(seconds=settings.gather_lead_s)
    mob.countdown_at = go_at - timedelta(seconds=settings.countdown_lead_s)


def _check_go_at(go_at: datetime, now: datetime) -> None:
    if go_at <= now:
        raise ApiError(
            422,
            "go_at_in_past",
            f"go_at {go_at.isoformat()} is not in the future (server time is "
            f"{now.isoformat(timespec='seconds')}).",
            {"field": "go_at"},
        )


def create_mob(
    session: Session,
    organizer: Organizer,
    *,
    title: str,
    description: str,
    action: str,
    zone,
    go_at: datetime,
    duration_s: int,
    settings: Settings,
    rehearsal: bool = False,
    now: datetime | None = None,
) -> Mob:
    """A new draft mob owned by ``organizer`` with a fresh short public id."""
    _check_go_at(go_at, now or utcnow())
    mob = Mob(
        organizer=organizer,
        title=title,
        description=description,
        action=action,
        zone=from_shape(zone, srid=4326),
        status="draft",
        timeline_version=1,
        event_seq=0,
        rehearsal=rehearsal,
    )
    _schedule(mob, go_at, duration_s, settings)
    for _attempt in range(5):
        mob.id = _new_public_id()
        session.add(mob)
        try:
            with session.begin_nested():
                session.flush()
            return mob
        except IntegrityError:  # public id collision: draw again
            continue
    raise ApiError(503, "id_exhausted", "Could not allocate a mob id; try again.")


def _tasks_outside(session: Session, mob: Mob, zone) -> list[int]:
    """Ids of the mob's tasks not covered by ``zone`` (boundary counts as inside): one
    vectorized test against the prepared zone, so 2,000 tasks and a 2,000-vertex zone cost
    milliseconds, not a zone scan per task."""
    rows = session.execute(
        select(Task.id, func.ST_X(Task.point), func.ST_Y(Task.point))
        .where(Task.mob_pk == mob.pk)
        .order_by(Task.id)
    ).all()
    if not rows:
        return []
    ids = np.array([r[0] for r in rows])
    lon = np.array([r[1] for r in rows], dtype=float)
    lat = np.array([r[2] for r in rows], dtype=float)
    shapely.prepare(zone)
    return ids[~shapely.intersects_xy(zone, lon, lat)].tolist()


def _check_open(mob: Mob) -> None:
    if mob.status in CLOSED_STATUSES:
        raise ApiError(409, "mob_closed", f"The mob is {mob.status} and can no longer change.")


def update_mob(
    session: Session, mob: Mob, changes: dict, settings: Settings, now: datetime | None = None
) -> Mob:
    """Apply validated ``changes`` (title, description, action, zone, go_at, duration_s)."""
    _check_open(mob)
    if "zone" in changes and mob.status in LIVE_STATUSES:
        raise ApiError(
            409, "mob_live", "The zone cannot change once the mob is live.", {"field": "zone"}
        )
    if "rehearsal" in changes and mob.status in LIVE_STATUSES:
        raise ApiError(
            409,
            "mob_live",
            "Rehearsal mode is set before the mob goes live.",
            {"field": "rehearsal"},
        )
    for name in ("title", "description", "action", "rehearsal"):
        if name in changes:
            setattr(mob, name, changes[name])
    if "zone" in changes:
        zone = changes["zone"]
        outside = _tasks_outside(session, mob, zone)
        if outside:
            raise ApiError(
                409,
                "tasks_outside_zone",
                f"{len(outside)} task(s) would lie outside the new zone; delete or regenerate "
                "them first.",
                {"field": "zone", "tasks": outside[:50]},
            )
        mob.zone = from_shape(zone, srid=4326)
    if "go_at" in changes or "duration_s" in changes:
        if mob.status in LIVE_STATUSES:
            raise ApiError(
                409,
                "mob_live",
                "The schedule of a live mob changes through start-now or postpone, not PATCH.",
            )
        go_at = changes.get("go_at", mob.go_at)
        if "go_at" in changes:
            _check_go_at(go_at, now or utcnow())
        _schedule(mob, go_at, changes.get("duration_s", mob.duration_s), settings)
        mob.timeline_version += 1
    mob.updated_at = now or utcnow()
    session.flush()
    return mob


def publish_mob(session: Session, mob: Mob, now: datetime | None = None) -> Mob:
    now = now or utcnow()
    if mob.status == "published":
        return mob
    if mob.status != "draft":
        raise ApiError(
            409, "mob_not_draft", f"Only a draft can be published; this mob is {mob.status}."
        )
    _check_go_at(mob.go_at, now)
    if not session.scalar(select(func.count()).where(Task.mob_pk == mob.pk)):
        raise ApiError(
            422, "mob_has_no_tasks", "Add or generate at least one task before publishing."
        )
    # Compare-and-set: a concurrent publish or cancel cannot be overwritten.
    claimed = session.execute(
        Mob.__table__.update()
        .where(Mob.pk == mob.pk, Mob.status == "draft")
        .values(status="published", published_at=now, updated_at=now)
    ).rowcount
    session.refresh(mob)
    if not claimed and mob.status != "published":
        raise ApiError(409, "mob_not_draft", f"The mob became {mob.status} meanwhile.")
    return mob


def cancel_mob(session: Session, mob: Mob, now: datetime | None = None) -> Mob:
    now = now or utcnow()
    if mob.status == "cancelled":
        return mob
    if mob.status == "finished":
        raise ApiError(409, "mob_closed", "A finished mob cannot be cancelled.")
    claimed = session.execute(
        Mob.__table__.update()
        .where(Mob.pk == mob.pk, Mob.status.not_in(CLOSED_STATUSES))
        .values(
            status="cancelled",
            cancelled_at=now,
            updated_at=now,
            timeline_version=Mob.timeline_version + 1,
        )
    ).rowcount
    session.refresh(mob)
    if not claimed and mob.status != "cancelled":
        raise ApiError(409, "mob_closed", f"The mob became {mob.status} meanwhile.")
    return mob


def get_mob(session: Session, public_id: str, viewer: Organizer | None = None) -> Mob:
    """The mob with this public id; drafts are visible to their owner only (404 to anyone
    else, exactly as for an id that does not exist)."""
    mob = session.scalar(select(Mob).where(Mob.id == public_id))
    hidden = (
        mob is not None
        and mob.status == "draft"
        and (viewer is None or viewer.id != mob.organizer_id)
    )
    if mob is None or hidden:
        raise ApiError(404, "mob_not_found", f"There is no mob {public_id!r}.")
    return mob


def require_owner(mob: Mob, organizer: Organizer) -> None:
    if mob.organizer_id != organizer.id:
        raise ApiError(403, "not_owner", "Only the mob's organizer may change it.")


def get_owned_mob(session: Session, public_id: str, organizer: Organizer) -> Mob:
    """The organizer's own mob: 404 for another organizer's draft (its existence is not
    revealed), 403 ``not_owner`` for another organizer's published mob (public anyway)."""
    mob = get_mob(session, public_id, organizer)
    require_owner(mob, organizer)
    return mob


def nearby_mobs(
    session: Session, lon: float, lat: float, radius_m: float, limit: int
) -> list[tuple[Mob, float]]:
    """Listed mobs whose zone lies within ``radius_m`` of (lon, lat), nearest first.

    The spatial index narrows the candidates to a bounding box; the database measures the
    geodesic distance (0 inside the zone) and sorts.
    """
    lon, lat, radius_m = float(lon), float(lat), float(radius_m)
    min_lon, min_lat, max_lon, max_lat = map(float, geo.bbox_around(lon, lat, radius_m))
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
        distance = func.ST_Distance(cast(Mob.zone, Geography), cast(point, Geography))
        in_box = Mob.zone.op("&&")(func.ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326))
    else:
        point = func.MakePoint(lon, lat, 4326)
        distance = func.ST_Distance(Mob.zone, point, 1)
        in_box = Mob.pk.in_(
            text(
                "SELECT ROWID FROM SpatialIndex WHERE f_table_name = 'mobs' "
                "AND f_geometry_column = 'zone' "
                "AND search_frame = BuildMbr(:min_lon, :min_lat, :max_lon, :max_lat, 4326)"
            )
            .bindparams(min_lon=min_lon, min_lat=min_lat, max_lon=max_lon, max_lat=max_lat)
            .columns(column("ROWID"))
        )
    distance = distance.label("distance_m")
    inner = select(Mob.pk, distance).where(Mob.status.in_(LISTED_STATUSES), in_box).subquery()
    rows = session.execute(
        select(Mob, inner.c.distance_m)
        .join(inner, inner.c.pk == Mob.pk)
        .where(inner.c.distance_m <= radius_m)
        .order_by(inner.c.distance_m, Mob.go_at)
        .limit(limit)
    ).all()
    return [(mob, float(d)) for mob, d in rows]


def _tasks_placed(session: Session, mob: Mob) -> None:
    """Count a change to the mob's tasks (added, moved, removed, edited): the processes'
    k-d trees of task points (server.domain.participants) and tasks collections
    (server.domain.views) are read again. Atomic in SQL, so two edits at once both count."""
    session.execute(update(Mob).where(Mob.pk == mob.pk).values(tasks_version=Mob.tasks_version + 1))
    session.expire(mob, ["tasks_version"])


def generate_tasks(
    session: Session,
    mob: Mob,
    *,
    spacing_m: float,
    kind: str,
    capacity: int,
    grid: str,
    label: str | None,
    prompt: str,
    replace: bool,
    settings: Settings,
) -> list[Task]:
    """Fill the zone with a grid of tasks; with ``replace`` the old tasks go first."""
    _check_open(mob)
    if mob.status in LIVE_STATUSES and replace:
        raise ApiError(
            409, "mob_live", "A live mob's tasks cannot all be replaced; add or remove them singly."
        )
    existing = 0 if replace else session.scalar(select(func.count()).where(Task.mob_pk == mob.pk))
    room = settings.tasks_max_per_mob - existing
    try:
        # Seconds of CPU for a hostile zone: in a worker process, off the event loop.
        points = compute.run(
            settings,
            geo.generate_task_points,
            mob_zone(mob),
            spacing_m,
            grid=grid,
            max_tasks=max(room, 0),
        )
    except geo.GeoError as exc:
        raise ApiError(422, exc.code, exc.message, exc.where) from None
    if replace:
        session.execute(delete(Task).where(Task.mob_pk == mob.pk))
        session.expire(mob, ["tasks"])
    prefix = label or kind.replace("_", " ").capitalize()
    tasks = [
        Task(
            mob_pk=mob.pk,
            point=from_shape(Point(lon, lat), srid=4326),
            kind=kind,
            label=f"{prefix} {existing + i + 1}",
            prompt=prompt,
            capacity=capacity,
            status="open",
        )
        for i, (lon, lat) in enumerate(points)
    ]
    session.add_all(tasks)
    session.flush()
    _tasks_placed(session, mob)
    return tasks


def add_task(
    session: Session,
    mob: Mob,
    *,
    lon: float,
    lat: float,
    kind: str,
    label: str | None,
    prompt: str,
    capacity: int,
    settings: Settings,
) -> Task:
    """One task placed by hand; it must lie inside the zone (boundary included)."""
    _check_open(mob)
    if not mob_zone(mob).covers(shapely.Point(lon, lat)):
        raise ApiError(
            422,
            "task_outside_zone",
            f"The task at lon {lon}, lat {lat} lies outside the mob's zone.",
            {"lon": lon, "lat": lat},
        )
    count = session.scalar(select(func.count()).where(Task.mob_pk == mob.pk))
    if count >= settings.tasks_max_per_mob:
        raise ApiError(
            422,
            "too_many_tasks",
            f"A mob has at most {settings.tasks_max_per_mob} tasks.",
        )
    task = Task(
        mob_pk=mob.pk,
        point=from_shape(Point(lon, lat), srid=4326),
        kind=kind,
        label=label or f"{kind.replace('_', ' ').capitalize()} {count + 1}",
        prompt=prompt,
        capacity=capacity,
        status="open",
    )
    session.add(task)
    session.flush()
    _tasks_placed(session, mob)
    return task


def update_task(session: Session, mob: Mob, task_id: int, changes: dict) -> tuple[Task, list[int]]:
    """Move, relabel, resize, close or reopen a task; returns it and the ids of the
    participants who lost it (the caller matches them again).

    Closing a task frees all its holders; lowering the capacity below the number of holders
    frees the most recent ones. The task row is locked (PostgreSQL) so no claim slips in.
    """
    _check_open(mob)
    query = select(Task).where(Task.mob_pk == mob.pk, Task.id == task_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    task = session.scalar(query)
    if task is None:
        raise ApiError(404, "task_not_found", f"The mob has no task {task_id}.")
    if "lon" in changes:
        lon, lat = changes["lon"], changes["lat"]
        if not mob_zone(mob).covers(shapely.Point(lon, lat)):
            raise ApiError(
                422,
                "task_outside_zone",
                f"The task at lon {lon}, lat {lat} would lie outside the mob's zone.",
                {"lon": lon, "lat": lat},
            )
        task.point = from_shape(Point(lon, lat), srid=4326)
        _tasks_placed(session, mob)
    for name in ("kind", "label", "prompt"):
        if name in changes:
            setattr(task, name, changes[name])
    if "status" in changes:
        task.status = changes["status"]
    keep = 0 if task.status == "closed" else changes.get("capacity", task.capacity)
    holders = list(
        session.scalars(
            select(Participant.id)
            .where(Participant.task_id == task.id)
            .order_by(Participant.id.desc())
        )
    )
    displaced = holders[: max(0, len(holders) - keep)]
    if displaced:
        session.execute(
            update(Participant).where(Participant.id.in_(displaced)).values(task_id=None)
        )
    if "capacity" in changes:
        task.capacity = changes["capacity"]
    task.assigned = len(holders) - len(displaced)
    session.flush()
    _tasks_placed(session, mob)  # any edit: the cached collection (server.domain.views) is rebuilt
    return task, displaced


def delete_task(session: Session, mob: Mob, task_id: int) -> None:
    _check_open(mob)
    deleted = session.execute(
        delete(Task).where(Task.mob_pk == mob.pk, Task.id == task_id)
    ).rowcount
    if not deleted:
        raise ApiError(404, "task_not_found", f"The mob has no task {task_id}.")
    _tasks_placed(session, mob)
    session.expire(mob, ["tasks"])


def task_feature(task: Task, deeds_done: int | None = None) -> dict:
    point = to_shape(task.point)
    return task_feature_of(
        task.id,
        task.kind,
        task.label,
        task.prompt,
        task.capacity,
        task.status,
        point.x,
        point.y,
        deeds_done,
    )


def task_feature_of(
    task_id, kind, label, prompt, capacity, status, lon, lat, deeds_done=None
) -> dict:
    """A task as a GeoJSON feature, from its fields (``task_feature`` from an ORM task).

    Never how many hold it: with few people a holder count is a location oracle (a first fix
    claims the nearest free task; see docs/SECURITY.md, issue 15 §1). Only the holder is
    told their task; everyone else sees open, closed and deeds done."""
    feature = {
        "type": "Feature",
        "id": task_id,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "id": task_id,
            "kind": kind,
            "label": label,
            "prompt": prompt,
            "capacity": capacity,
            "status": status,
        },
    }
    if deeds_done is not None:
        feature["properties"]["deeds_done"] = deeds_done
    return feature


def zone_geojson(mob: Mob) -> dict:
    return mapping(mob_zone(mob))
