"""The after-action summary of a mob: for its organizer, as exports, and as a public page.

* :func:`organizer_summary` — participants, the funnel, deeds by status, by task and per minute
  after GO, a map of the tasks with their deeds, pledges with sponsor names, the cascade.
* :func:`export_geojson` — an RFC 7946 FeatureCollection: the zone (rings closed, exterior
  counter-clockwise, holes clockwise) and one Point per task with its counts; lon/lat order,
  7 decimals, no ``crs``. Positions are the organizer's task spots only: nobody's position is in
  it (deeds store no position; participants' last fixes are never read here).
* :func:`export_csv` — the same figures as tables (tasks, minutes, funnel, pledges).
* :func:`public_summary` — what anyone may see: counts, the funnel, deeds per minute, tasks
  done, pledge totals without names, top sharers by chosen nickname only.

Verified deeds are ``accepted`` or ``approved``; a rehearsal counts none (its deeds appear only
as ``rehearsal_deeds``).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from geoalchemy2.shape import to_shape
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.polygon import orient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.domain import campaigns, cascade, pledges, timeline
from server.infra.models import COUNTED_DEED_STATUSES, Deed, Mob, Participant, Sponsor, Task

__all__ = [
    "CSV_TABLES",
    "deeds_by_task",
    "deeds_per_minute",
    "organizer_summary",
    "public_summary",
    "export_geojson",
    "export_csv",
    "pledge_rows",
    "rfc7946_geometry",
]

CSV_TABLES = ("tasks", "minutes", "funnel", "pledges")
_DIGITS = 7  # ~1 cm: more would only be noise


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _round_coords(coords):
    if isinstance(coords, (int, float)):
        return round(float(coords), _DIGITS)
    return [_round_coords(c) for c in coords]


def rfc7946_geometry(geometry) -> dict:
    """A shapely geometry as RFC 7946 GeoJSON: polygons oriented by the right-hand rule
    (exterior counter-clockwise, holes clockwise), lists not tuples, 7 decimals.

    >>> from shapely import box
    >>> rfc7946_geometry(box(0, 0, 1, 1).reverse())["coordinates"][0]
    [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    """
    if isinstance(geometry, Polygon):
        geometry = orient(geometry, sign=1.0)
    elif isinstance(geometry, MultiPolygon):
        geometry = MultiPolygon([orient(p, sign=1.0) for p in geometry.geoms])
    data = mapping(geometry)
    return {"type": data["type"], "coordinates": _round_coords(data["coordinates"])}


# --- figures ---


def _status_counts(session: Session, mob: Mob) -> dict[str, int]:
    counts = dict(
        session.execute(
            select(Deed.status, func.count()).where(Deed.mob_pk == mob.pk).group_by(Deed.status)
        ).all()
    )
    body = {s: counts.get(s, 0) for s in ("accepted", "flagged", "approved", "rejected")}
    done = body["accepted"] + body["approved"]
    body["done"] = 0 if mob.rehearsal else done
    if mob.rehearsal:
        body["rehearsal_deeds"] = sum(counts.values())
    return body


def deeds_by_task(session: Session, mob: Mob) -> dict[int, dict[str, int]]:
    """Task id → ``{done, flagged, rejected}`` (done: verified; none in a rehearsal)."""
    out: dict[int, dict[str, int]] = {}
    for task_id, status, n in session.execute(
        select(Deed.task_id, Deed.status, func.count())
        .where(Deed.mob_pk == mob.pk, Deed.task_id.is_not(None))
        .group_by(Deed.task_id, Deed.status)
    ):
        row = out.setdefault(task_id, {"done": 0, "flagged": 0, "rejected": 0})
        if status in COUNTED_DEED_STATUSES:
            row["done"] += 0 if mob.rehearsal else n
        elif status in row:
            row[status] += n
    return out


def deeds_per_minute(session: Session, mob: Mob) -> list[dict]:
    """Verified deeds per minute after GO, every minute from GO to the end (or the last deed),
    zeros included: ``[{minute, start, done}]`` (minute 0 starts at GO)."""
    times = (
        []
        if mob.rehearsal
        else session.scalars(
            select(Deed.created_at).where(
                Deed.mob_pk == mob.pk, Deed.status.in_(COUNTED_DEED_STATUSES)
            )
        ).all()
    )
    counts: dict[int, int] = {}
    for created in times:
        minute = max(0, int((created - mob.go_at).total_seconds() // 60))
        counts[minute] = counts.get(minute, 0) + 1
    last = max(counts, default=0)
    span = max(last, (mob.duration_s - 1) // 60)
    return [
        {"minute": i, "start": _iso(mob.go_at + timedelta(minutes=i)), "done": counts.get(i, 0)}
        for i in range(span + 1)
    ]


def _participants(session: Session, mob: Mob) -> dict:
    p = Participant
    joined, chosen, entered, matched = session.execute(
        select(
            func.count(),
            func.count().filter(p.nickname_chosen.is_(True)),
            func.count(p.entered_zone_at),
            func.count(p.task_id),
        ).where(p.mob_pk == mob.pk)
    ).one()
    return {"joined": joined, "with_nickname": chosen, "in_zone": entered, "matched": matched}


def _tasks(session: Session, mob: Mob) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.mob_pk == mob.pk).order_by(Task.id)))


def _task_feature(task: Task, counts: dict[str, int]) -> dict:
    point = to_shape(task.point)
    return {
        "type": "Feature",
        "id": task.id,
        "geometry": rfc7946_geometry(point),
        "properties": {
            "kind": "task",
            "task_id": task.id,
            "label": task.label,
            "task_kind": task.kind,
            "capacity": task.capacity,
            "status": task.status,
            "deeds_done": counts.get("done", 0),
            "deeds_flagged": counts.get("flagged", 0),
            "done": counts.get("done", 0) > 0,
        },
    }


def _tasks_map(session: Session, mob: Mob) -> dict:
    by_task = deeds_by_task(session, mob)
    return {
        "type": "FeatureCollection",
        "features": [_task_feature(t, by_task.get(t.id, {})) for t in _tasks(session, mob)],
    }


def _mob_head(session: Session, mob: Mob) -> dict:
    tz = campaigns.time_zone_of(session, mob)
    campaign = campaigns.mob_campaign(session, mob)
    return {
        "id": mob.id,
        "title": mob.title,
        "organizer": {"name": mob.organizer.name},
        "status": mob.status,
        "final": mob.status in ("finished", "cancelled"),
        "rehearsal": mob.rehearsal,
        "action": mob.action,
        "go_at": _iso(mob.go_at),
        "go_at_ms": timeline.ms(mob.go_at),
        "end_at": _iso(mob.end_at),
        "duration_s": mob.duration_s,
        "go_local": campaigns.local_time_json(mob.go_at, tz),
        "campaign": {"id": campaign.id, "title": campaign.title} if campaign else None,
        "url": f"/m/{mob.id}",
        "summary_url": f"/s/{mob.id}",
    }


def pledge_rows(session: Session, mob: Mob) -> list[dict]:
    cache: dict = {}
    rows = []
    for pledge in pledges.mob_pledges(session, mob):
        data = pledges.pledge_json(session, pledge, cache)
        data["sponsor"] = {"name": session.get(Sponsor, pledge.sponsor_id).name}
        rows.append(data)
    return rows


def organizer_summary(session: Session, mob: Mob) -> dict:
    """Everything the organizer needs after the mob (no one's position)."""
    return {
        "mob": _mob_head(session, mob),
        "participants": _participants(session, mob),
        "funnel": cascade.funnel(session, mob),
        "deeds": {
            **_status_counts(session, mob),
            "per_minute": deeds_per_minute(session, mob),
        },
        "tasks": _tasks_map(session, mob),
        "zone": rfc7946_geometry(to_shape(mob.zone)),
        "pledges": {
            "totals": pledges.pledge_totals(session, mob),
            "pledges": pledge_rows(session, mob),
        },
        "cascade": cascade.cascade(session, mob, top=20),
        "exports": {
            "geojson": f"/api/mobs/{mob.id}/summary.geojson",
            "csv": {t: f"/api/mobs/{mob.id}/summary.csv?table={t}" for t in CSV_TABLES},
        },
    }


def public_summary(session: Session, mob: Mob) -> dict:
    """What anyone may see: aggregate counts, tasks done, pledge totals, chosen nicknames."""
    people = _participants(session, mob)
    deeds = _status_counts(session, mob)
    return {
        "mob": _mob_head(session, mob),
        "zone": rfc7946_geometry(to_shape(mob.zone)),
        "counters": {
            "joined": people["joined"],
            "in_zone": people["in_zone"],
            "deeds_done": deeds["done"],
        },
        "funnel": cascade.funnel(session, mob),
        "per_minute": deeds_per_minute(session, mob),
        "tasks": _tasks_map(session, mob),
        "pledges": pledges.pledge_totals(session, mob),
        "cascade": cascade.cascade(session, mob, top=10),
    }


# --- exports ---


def export_geojson(session: Session, mob: Mob) -> dict:
    """The zone and the tasks with their counts, as an RFC 7946 FeatureCollection."""
    people = _participants(session, mob)
    deeds = _status_counts(session, mob)
    zone = {
        "type": "Feature",
        "id": mob.id,
        "geometry": rfc7946_geometry(to_shape(mob.zone)),
        "properties": {
            "kind": "zone",
            "mob": mob.id,
            "title": mob.title,
            "status": mob.status,
            "go_at": _iso(mob.go_at),
            "joined": people["joined"],
            "in_zone": people["in_zone"],
            "deeds_done": deeds["done"],
        },
    }
    return {"type": "FeatureCollection", "features": [zone, *_tasks_map(session, mob)["features"]]}


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(session: Session, mob: Mob, table: str) -> list[list]:
    if table == "tasks":
        by_task = deeds_by_task(session, mob)
        rows = [
            [
                "task_id",
                "label",
                "kind",
                "lat",
                "lon",
                "capacity",
                "status",
                "deeds_done",
                "deeds_flagged",
                "deeds_rejected",
            ]
        ]
        for t in _tasks(session, mob):
            point, counts = to_shape(t.point), by_task.get(t.id, {})
            rows.append(
                [
                    t.id,
                    _cell(t.label),
                    _cell(t.kind),
                    round(point.y, _DIGITS),
                    round(point.x, _DIGITS),
                    t.capacity,
                    t.status,
                    counts.get("done", 0),
                    counts.get("flagged", 0),
                    counts.get("rejected", 0),
                ]
            )
        return rows
    if table == "minutes":
        rows = [["minute", "start", "deeds_done"]]
        rows += [[m["minute"], m["start"], m["done"]] for m in deeds_per_minute(session, mob)]
        return rows
    if table == "funnel":
        return [["step", "count"], *cascade.funnel(session, mob).items()]
    rows = [
        [
            "pledge_id",
            "sponsor",
            "target_type",
            "target_id",
            "amount_per_deed_minor",
            "currency",
            "cap_minor",
            "threshold_deeds",
            "verified_deeds",
            "owed_minor",
            "owed",
        ]
    ]
    for p in pledge_rows(session, mob):
        rows.append(
            [
                p["id"],
                _cell(p["sponsor"]["name"]),
                p["target"]["type"],
                p["target"]["id"],
                p["amount_minor"],
                p["currency"],
                p["cap_minor"],
                p["threshold_deeds"],
                p["deeds_counted"],
                p["owed_minor"],
                p["owed"],
            ]
        )
    return rows


def export_csv(session: Session, mob: Mob, table: str = "tasks") -> str:
    """One table of the summary as CSV (``tasks``, ``minutes``, ``funnel`` or ``pledges``)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(_csv_rows(session, mob, table))
    return out.getvalue()
