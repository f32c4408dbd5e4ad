"""Domain operations for participants: joining, location reports, task matching, deeds.

Functions take a session and never commit; claims that can race (a task slot, a deed id, a
review) are atomic in the database.
"""

# size: a participant's whole life in a mob (join, the location-report hot path on raw
# connections, task matching, deeds, counters) shares the private _Sql/_Zone/_State helpers;
# the hot path is measured as one unit (bench.locations). Splitting it is a later step.

from __future__ import annotations

import contextlib
import math
import re
import secrets
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import shapely
from geoalchemy2.shape import to_shape
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

import geo
from config import Settings
from server.domain import cascade, positions
from server.domain.fields import get_number
from server.infra.errors import ApiError
from server.infra.models import (
    COUNTED_DEED_STATUSES,
    LISTED_STATUSES,
    Deed,
    Mob,
    Participant,
    Task,
    utcnow,
)

__all__ = [
    "TOKEN_SALT",
    "issue_token",
    "participant_from_token",
    "participant_ids_from_token",
    "join_mob",
    "report_location",
    "report_location_by_id",
    "confirm_deed",
    "review_deed",
    "deed_state",
    "deeds_of",
    "holders_of",
    "rematch",
    "counters",
    "task_json",
]

TOKEN_SALT = "goodmob.participant.v1"
_NICK = re.compile(r"^[\w .'-]{2,24}$", re.UNICODE)
# A short list of words a friendly public nickname must not contain (lower case, substrings).
_BLOCKED = ("fuck", "shit", "cunt", "nigg", "fag", "whore", "slut", "rape", "nazi", "hitler")
_ADJECTIVES = (
    "Brave", "Bright", "Calm", "Clever", "Eager", "Gentle", "Happy", "Kind", "Lively", "Lucky",
    "Merry", "Nimble", "Quick", "Quiet", "Steady", "Sunny", "Swift", "Warm", "Wise", "Zesty",
)  # fmt: skip
_ANIMALS = (
    "Badger", "Beaver", "Crane", "Dolphin", "Falcon", "Fox", "Hedgehog", "Heron", "Lynx", "Otter",
    "Owl", "Panda", "Puffin", "Robin", "Seal", "Sparrow", "Squirrel", "Swan", "Turtle", "Wren",
)  # fmt: skip


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT)


def issue_token(participant: Participant, mob: Mob, secret_key: str) -> str:
    return _serializer(secret_key).dumps({"p": participant.id, "m": mob.id})


def _token_payload(token: object, secret_key: str, max_age_s: int):
    """What a participant token says (signature and age checked), or a 401 ApiError."""
    if not isinstance(token, str) or not token:
        raise ApiError(401, "auth_required", "Connect with {token} in the auth payload.")
    try:
        return _serializer(secret_key).loads(token, max_age=max_age_s)
    except SignatureExpired:
        raise ApiError(401, "token_expired", "Your participant token has expired.") from None
    except BadSignature:
        raise ApiError(401, "token_invalid", "The participant token is not valid.") from None


def participant_from_token(
    session: Session, token: object, secret_key: str, max_age_s: int
) -> tuple[Participant, Mob]:
    """The participant and mob a participant token names, or a 401 ApiError."""
    payload = _token_payload(token, secret_key, max_age_s)
    participant = session.get(Participant, payload.get("p")) if isinstance(payload, dict) else None
    if participant is None or participant.mob.id != payload.get("m"):
        raise ApiError(401, "token_invalid", "The participant token is not valid.")
    return participant, participant.mob


def participant_ids_from_token(
    engine: Engine, token: object, secret_key: str, max_age_s: int
) -> tuple[int, str]:
    """``participant_from_token`` for a socket connecting: ``(participant id, mob id)``, with
    one plain query instead of the ORM (thousands of phones connect within seconds)."""
    payload = _token_payload(token, secret_key, max_age_s)
    pid = payload.get("p") if isinstance(payload, dict) else None
    found = None
    if isinstance(pid, int) and not isinstance(pid, bool):
        raw = engine.raw_connection()
        try:
            found = (
                _Sql.of_dbapi(raw, engine.dialect)
                .run(
                    "SELECT m.id FROM participants p JOIN mobs m ON m.pk = p.mob_pk WHERE p.id = ?",
                    (pid,),
                )
                .fetchall()
            )
        finally:
            raw.close()
    if not found or found[0][0] != payload.get("m"):
        raise ApiError(401, "token_invalid", "The participant token is not valid.")
    return pid, found[0][0]


def _nickname(raw: str | None) -> tuple[str, bool]:
    if raw is None:
        return f"{secrets.choice(_ADJECTIVES)} {secrets.choice(_ANIMALS)}", False
    nick = " ".join(raw.split())
    if not _NICK.match(nick):
        raise ApiError(
            400,
            "nickname_invalid",
            "A nickname has 2 to 24 letters, digits, spaces, dots, dashes or apostrophes.",
            {"field": "nickname"},
        )
    if any(word in nick.lower().replace(" ", "") for word in _BLOCKED):
        raise ApiError(
            400, "nickname_refused", "Please choose a friendlier nickname.", {"field": "nickname"}
        )
    return nick, True


def join_mob(session: Session, mob: Mob, nickname: str | None, ref: str | None) -> Participant:
    """A new participant of ``mob``; ``ref`` is the referral code of who shared the link."""
    if mob.status not in LISTED_STATUSES:
        raise ApiError(409, "mob_closed", f"The mob is {mob.status}; it can no longer be joined.")
    nick, chosen = _nickname(nickname)
    referrer_id = None
    organizer_ref = False
    if ref is not None:
        referrer_id = session.scalar(select(Participant.id).where(Participant.ref_code == ref))
        organizer_ref = referrer_id is None and cascade.is_organizer_ref(session, mob, ref)
        if referrer_id is None and not organizer_ref:
            raise ApiError(
                422, "ref_unknown", "The referral code in the link is unknown.", {"field": "ref"}
            )
    capacity = session.scalar(
        select(func.coalesce(func.sum(Task.capacity), 0)).where(
            Task.mob_pk == mob.pk, Task.status == "open"
        )
    )
    joined = session.scalar(select(func.count()).where(Participant.mob_pk == mob.pk))
    if joined >= capacity:
        raise ApiError(
            409, "mob_full", f"All {capacity} places of this mob are taken.", {"capacity": capacity}
        )
    participant = Participant(
        mob_pk=mob.pk,
        nickname=nick,
        nickname_chosen=chosen,
        ref_code=secrets.token_urlsafe(6),
        referred_by_id=referrer_id,
    )
    session.add(participant)
    session.flush()
    if organizer_ref:  # brought by the organizer's own share link
        cascade.record_organizer_referral(session, mob, participant)
    return participant


def near_distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Metres between two lon/lat points: in a local frame on the WGS84 ellipsoid at their
    mean latitude when under 10 km apart (within 4e-6 of the geodesic there, about 50 times
    faster), else the geodesic (``geo.distance_m``)."""
    proj = geo.LocalProjection((lon1 + lon2) / 2, (lat1 + lat2) / 2)
    d = math.hypot((lon2 - lon1) * proj.k_lon, (lat2 - lat1) * proj.k_lat)
    return d if d < 10_000 else geo.distance_m(lon1, lat1, lon2, lat2)


def _task_fields(task_id, kind, label, prompt, lon, lat, here) -> dict:
    """A task as its holder sees it; distance and bearing from ``here`` = (lon, lat)."""
    data = {"id": task_id, "kind": kind, "label": label, "prompt": prompt, "lat": lat, "lon": lon}
    if here is not None:
        data["distance_m"] = round(near_distance_m(here[0], here[1], lon, lat), 1)
        data["bearing_deg"] = round(geo.bearing_deg(here[0], here[1], lon, lat), 1)
    return data


def _here(participant: Participant) -> tuple[float, float] | None:
    """The participant's latest known position: buffered in this process, else stored."""
    fix = positions.latest(
        participant.id, participant.mob_pk, participant.created_at, _stored_fix(participant)
    )
    return (fix.lon, fix.lat) if fix is not None else None


def _stored_fix(participant: Participant) -> positions.Fix | None:
    if participant.lat is None or participant.fix_at is None:
        return None
    return positions.Fix(
        participant.id,
        participant.mob_pk,
        participant.lat,
        participant.lon,
        participant.accuracy_m,
        participant.fix_at,
    )


def task_json(task: Task, participant: Participant | None = None) -> dict:
    point = to_shape(task.point)
    here = _here(participant) if participant is not None else None
    return _task_fields(task.id, task.kind, task.label, task.prompt, point.x, point.y, here)


def _release(sql: _Sql, task_id: int) -> None:
    sql.run("UPDATE tasks SET assigned = assigned - 1 WHERE id = ? AND assigned > 0", (task_id,))


@dataclass(frozen=True)
class _Tasks:
    """A mob's task points as this process keeps them: a k-d tree, keyed by the mob's
    ``tasks_version`` (bumped by every task added, moved or removed)."""

    version: int
    index: geo.TaskIndex


# mob id → its task points (by the public id: a pk may be reused after a mob is deleted,
# its id never); the database stays the truth for which tasks are open and have
# room (every claim reads that and is a compare-and-set).
_task_points: dict[str, _Tasks] = {}
_TASK_POINTS_MAX = 256
#: Nearest tasks checked for room per round; each round widens the search fourfold.
_CLAIM_FIRST_K = 8
#: Past this many candidates, one SQL query ranks every task with room instead.
_CLAIM_MAX_K = 512


def _task_index(sql: _Sql, mob_pk: int, mob_id: str, version: int) -> geo.TaskIndex:
    """The mob's task points in a k-d tree, read from the database once per tasks version."""
    cached = _task_points.get(mob_id)
    if cached is not None and cached.version == version:
        return cached.index
    rows = sql.run("SELECT id, ST_X(point), ST_Y(point) FROM tasks WHERE mob_pk = ?", (mob_pk,))
    rows = rows.fetchall()
    ids = [r[0] for r in rows]
    index = geo.TaskIndex.from_arrays(
        ids, [r[1] for r in rows], [r[2] for r in rows], capacity=[1] * len(ids)
    )
    if len(_task_points) >= _TASK_POINTS_MAX:
        _task_points.clear()
    _task_points[mob_id] = _Tasks(version, index)
    return index


class _TaskRow(NamedTuple):
    """A claimed task as its holder is told about it."""

    id: int
    kind: str
    label: str
    prompt: str
    lon: float
    lat: float


# The statements of a location report that changes something run as plain SQL on one
# connection: SQLAlchemy's statement building, caching and ORM synchronisation would cost
# several times the statements themselves (measured in-process: 2.7 ms a first fix through
# the ORM, 0.35 ms so). Written with ``?``; ``_Sql`` swaps in the driver's own marker.
_CLAIM_SQL = (
    "UPDATE tasks SET assigned = assigned + 1 "
    "WHERE id = ? AND status = 'open' AND assigned < capacity"
)
# By primary key only (the ids come from the mob's own tasks): with ``mob_pk = ?`` SQLite
# would walk the mob's index over all its tasks instead.
_WITH_ROOM_SQL = (
    "SELECT id, kind, label, prompt, ST_X(point), ST_Y(point) FROM tasks "
    "WHERE status = 'open' AND assigned < capacity AND id IN "
)
_NEAREST_WITH_ROOM_SQL = (
    "SELECT id FROM tasks WHERE mob_pk = ? AND status = 'open' AND assigned < capacity "
    "ORDER BY ((ST_X(point) - ?) * ?) * ((ST_X(point) - ?) * ?) "
    "+ (ST_Y(point) - ?) * (ST_Y(point) - ?) LIMIT 8"
)


class _Sql:
    """Plain SQL with ``?`` markers on one connection, in its transaction: a session's, or
    a DBAPI connection from the pool. ``run`` returns a cursor (``rowcount``, ``fetchall``)."""

    def __init__(self, execute, dialect) -> None:
        self._execute = execute
        self._qmark = dialect.paramstyle == "qmark"
        self.sqlite = dialect.name == "sqlite"

    @classmethod
    def of_session(cls, session: Session) -> _Sql:
        conn = session.connection()
        return cls(conn.exec_driver_sql, conn.dialect)

    @classmethod
    def of_dbapi(cls, raw, dialect) -> _Sql:
        def execute(statement, params):
            cursor = raw.cursor()
            cursor.execute(statement, params)
            return cursor

        return cls(execute, dialect)

    def run(self, statement: str, params: tuple):
        return self._execute(statement if self._qmark else statement.replace("?", "%s"), params)

    def time(self, at: datetime):
        """A time as UTCDateTime stores it: naive UTC text on SQLite, aware on PostgreSQL."""
        return positions.sqlite_time(at) if self.sqlite else at


def _claim(sql: _Sql, task_id: int) -> bool:
    """Take a slot on ``task_id``: a compare-and-set, never over its capacity."""
    return bool(sql.run(_CLAIM_SQL, (task_id,)).rowcount)


def _open_with_room(sql: _Sql, task_ids: list[int]) -> dict[int, _TaskRow]:
    """Which of ``task_ids`` are open with room, with what their holder is told."""
    marks = "(" + ", ".join("?" * len(task_ids)) + ")"
    rows = sql.run(_WITH_ROOM_SQL + marks, tuple(task_ids)).fetchall()
    return {r[0]: _TaskRow._make(r) for r in rows}


def _claim_nearest(
    sql: _Sql, mob_pk: int, mob_id: str, tasks_version: int, lon: float, lat: float
) -> _TaskRow | None:
    """Claim a slot on the nearest open task with room: an atomic compare-and-set per try.

    The nearest tasks come from this process's k-d tree of the mob's task points; the
    database says which of them are open with room. When every one of the few hundred
    nearest is full, one query ranks all tasks with room (a mob nearly full)."""
    index = _task_index(sql, mob_pk, mob_id, tasks_version)
    tried: set[int] = set()
    k = _CLAIM_FIRST_K
    while k <= _CLAIM_MAX_K:
        candidates = [t for t in index.nearest(lon, lat, k) if t not in tried]
        if candidates:
            with_room = _open_with_room(sql, candidates)
            for task_id in candidates:
                if task_id in with_room and _claim(sql, task_id):
                    return with_room[task_id]
                tried.add(task_id)
        if k >= len(index):
            return None  # every task checked: none has room
        k *= 4
    # Order by distance in a local equirectangular frame: a degree of longitude is cos(lat)
    # of a degree of latitude. Exact enough to rank tasks within one zone.
    scale = max(0.01, math.cos(math.radians(lat)))
    for _attempt in range(5):
        params = (mob_pk, lon, scale, lon, scale, lat, lat)
        candidates = [r[0] for r in sql.run(_NEAREST_WITH_ROOM_SQL, params).fetchall()]
        if not candidates:
            return None
        with_room = _open_with_room(sql, candidates)
        for task_id in candidates:
            if task_id in with_room and _claim(sql, task_id):
                return with_room[task_id]
    return None


def _ensure_task(session: Session, participant: Participant, mob: Mob) -> Task | None:
    """Keep the task being walked to while it is open; otherwise claim the nearest free one."""
    if participant.task_id is not None:
        task = session.get(Task, participant.task_id)
        if task is not None and task.status == "open":
            return task
        if task is not None:
            _release(_Sql.of_session(session), task.id)
            session.expire(task, ["assigned"])  # changed in SQL: read it again if asked
        participant.task_id = None
    claimed = _claim_nearest(
        _Sql.of_session(session),
        mob.pk,
        mob.id,
        mob.tasks_version,
        participant.lon,
        participant.lat,
    )
    if claimed is None:
        return None
    participant.task_id = claimed.id
    task = session.get(Task, claimed.id)
    session.expire(task, ["assigned"])  # changed in SQL: read it again if asked
    return task


def holders_of(session: Session, task_id: int) -> list[int]:
    """Ids of the participants who hold ``task_id``."""
    return list(session.scalars(select(Participant.id).where(Participant.task_id == task_id)))


def rematch(
    session: Session, mob: Mob, participant_ids: list[int]
) -> list[tuple[int, Task | None]]:
    """Match again the participants whose task was removed or closed (from their last fix);
    as for a location report, a task is claimed only by someone inside the zone (the others
    lose theirs and claim one when they step in)."""
    results = []
    for participant in session.scalars(
        select(Participant).where(Participant.id.in_(participant_ids)).order_by(Participant.id)
    ):
        task = None
        positions.overlay(participant)
        if participant.lat is not None and participant.zone_state == "inside":
            task = _ensure_task(session, participant, mob)  # claimed only from inside
        elif participant.task_id is not None:
            _release(_Sql.of_session(session), participant.task_id)
            participant.task_id = None
        results.append((participant.id, task))
    return results


def _fix_problem(
    previous: positions.Fix | None,
    lon: float,
    lat: float,
    accuracy_m: float,
    settings: Settings,
    now: datetime,
) -> str | None:
    """Why this fix must not count, judged against the participant's last counted fix.

    ``geo.fix_problem`` decides; a move clearly below the speed limit (by the fast local
    distance) skips its geodesic."""
    before = None
    if previous is not None:
        before = (previous.lon, previous.lat, previous.fix_at.timestamp())
        dt = max(now.timestamp() - before[2], 1.0)
        if (
            near_distance_m(before[0], before[1], lon, lat) / dt
            < 0.99 * settings.location_max_speed_mps
        ):
            before = None  # plausible beyond doubt: only the accuracy is left to judge
    return geo.fix_problem(
        accuracy_m,
        settings.location_max_accuracy_m,
        before,
        (lon, lat, now.timestamp()),
        settings.location_max_speed_mps,
    )


def _parse_fix(data: object) -> tuple[float, float, float]:
    """(lat, lon, accuracy_m) of a report_location body, or a 400."""
    if not isinstance(data, dict):
        raise ApiError(400, "body_not_object", "Send {lat, lon, accuracy_m, at}.")
    lat = get_number(data, "lat", lo=-90, hi=90)
    lon = get_number(data, "lon", lo=-180, hi=180)
    accuracy_m = get_number(data, "accuracy_m", lo=0, hi=1e7)
    return lat, lon, accuracy_m


def report_location(
    session: Session,
    participant: Participant,
    mob: Mob,
    data: object,
    settings: Settings,
    now: datetime | None = None,
) -> dict:
    """Judge a fix (zone state, plausibility), keep it as the latest, match a task; the ack.

    Everything is written in the caller's transaction (the slow path of
    ``report_location_by_id``, which defers unchanged fixes)."""
    now = now or utcnow()
    lat, lon, accuracy_m = _parse_fix(data)
    positions.overlay(participant)  # the previous fix may still be in this process's buffer
    problem = _fix_problem(_stored_fix(participant), lon, lat, accuracy_m, settings, now)
    if problem is not None:
        # The fix does not count: not stored, and the participant is not "inside" on its word.
        participant.zone_state = "uncertain"
        task = session.get(Task, participant.task_id) if participant.task_id else None
        return {
            "zone": "uncertain",
            "counted": False,
            "reason": problem,
            "task": task_json(task, participant) if task else None,
        }
    fix = _zone_status(_zone(session.get_bind(), mob.pk, mob.updated_at), lon, lat, accuracy_m)
    participant.lat, participant.lon, participant.accuracy_m = lat, lon, accuracy_m
    participant.fix_at = now
    participant.zone_state = fix.state
    if fix.state == "inside" and participant.entered_zone_at is None:
        participant.entered_zone_at = now
    task = None
    if fix.state == "inside":  # a task is claimed only from inside the zone
        task = _ensure_task(session, participant, mob)
    elif participant.task_id is not None:
        task = session.get(Task, participant.task_id)
    ack = {
        "zone": fix.state,
        "counted": True,
        "distance_m": round(fix.distance_m, 1),
        "task": task_json(task, participant) if task else None,
    }
    if fix.bearing_deg is not None:
        ack["bearing_deg"] = round(fix.bearing_deg, 1)
    return ack


@dataclass(frozen=True)
class _Zone:
    """A mob's zone as this process caches it: keyed by the mob's ``updated_at``."""

    updated_at: datetime
    shape: shapely.Geometry
    # (depth m, prepared lon/lat polygon of the points at least that deep inside the zone)
    inner: tuple[tuple[float, shapely.Geometry], ...]


# mob pk → its zone; every zone change bumps Mob.updated_at, so a stale entry is never used.
_zones: dict[int, _Zone] = {}
_ZONES_MAX = 1024
# Depths (metres) of the inner zones kept per zone: a fix inside the inner zone of a depth
# at least its accuracy is "inside" with one point-in-polygon test.
_INNER_DEPTHS_M = (10.0, 25.0, 50.0, 100.0)


def _zone(source: Engine | _Sql, mob_pk: int, updated_at: datetime) -> _Zone:
    """The mob's zone (shapely, prepared), read from the database once per zone version:
    on a connection of ``source``'s pool, or on the connection ``source`` already holds
    (a location report must not wait for a second connection while it holds one)."""
    cached = _zones.get(mob_pk)
    if cached is not None and cached.updated_at == updated_at:
        return cached
    if isinstance(source, _Sql):
        as_wkb = "AsBinary" if source.sqlite else "ST_AsBinary"
        found = source.run(f"SELECT {as_wkb}(zone) FROM mobs WHERE pk = ?", (mob_pk,)).fetchall()
        shape = shapely.from_wkb(bytes(found[0][0]))
    else:
        with source.connect() as conn:
            shape = to_shape(conn.scalar(select(Mob.zone).where(Mob.pk == mob_pk)))
    if len(_zones) >= _ZONES_MAX:
        _zones.clear()
    _zones[mob_pk] = zone = _Zone(updated_at, shape, _inner_zones(shape))
    return zone


def _inner_zones(shape: shapely.Geometry) -> tuple[tuple[float, shapely.Geometry], ...]:
    """The zone shrunk by each depth, never larger than the exact rule allows.

    ``geo.zone_status`` measures in a frame centred on the fix; the shrinking happens in one
    centred on the zone, whose scales differ from any fix's by the ratio ``r`` of the
    metres per degree at the two latitudes (smallest at the zone's extreme latitudes). So
    the shrink is ``depth / r``, plus 2 % for the chords that approximate the offset arcs
    (at most 1.9 % of the distance with shapely's default 8 segments a quarter) and 0.5 m.
    """
    centre = geo.LocalProjection.for_geometry(shape)
    _w, south, _e, north = shape.bounds
    lats = [south, north] + ([0.0] if south < 0 < north else [])
    r = min(
        min(p.k_lon / centre.k_lon, p.k_lat / centre.k_lat)
        for p in (geo.LocalProjection(centre.lon0, lat) for lat in lats)
    )
    if r < 0.5:  # a zone spanning many degrees of latitude: always ask geo
        return ()
    local = centre.forward(shape)
    inner = []
    for depth in _INNER_DEPTHS_M:
        shrunk = centre.inverse(local.buffer(-(depth / r * 1.02 + 0.5)))
        shapely.prepare(shrunk)
        inner.append((depth, shrunk))
    return tuple(inner)


def _zone_status(zone: _Zone, lon: float, lat: float, accuracy_m: float) -> geo.ZoneFix:
    """``geo.zone_status``, with a shortcut for a fix whose accuracy circle is clearly inside:
    deep enough in the zone (see ``_inner_zones``), the answer is "inside", as geo would say;
    anywhere else geo decides."""
    for depth, inner in zone.inner:
        if accuracy_m <= depth:
            if shapely.contains_xy(inner, lon, lat):
                return geo.ZoneFix("inside", 0.0, None)
            break
    return geo.zone_status(zone.shape, lon, lat, accuracy_m)


class _State(NamedTuple):
    """What a location report needs about its participant, their mob and their task."""

    id: int
    mob_pk: int
    mob_id: str
    tasks_version: int
    task_id: int | None
    zone_state: str | None
    entered_zone: bool
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    fix_at: datetime | None
    created_at: datetime
    mob_updated_at: datetime
    positions_purged: bool
    task_status: str | None
    task_kind: str | None
    task_label: str | None
    task_prompt: str | None
    task_lon: float | None
    task_lat: float | None
    event_seq: int  # the mob's latest event number, for the ack (a phone notices a gap)


# One read, on the driver directly: this runs for every walking fix, and SQLAlchemy's
# statement machinery would cost several times the query itself.
_STATE_SQL = (
    "SELECT p.id, p.mob_pk, m.id, m.tasks_version, p.task_id, p.zone_state, "
    "p.entered_zone_at IS NOT NULL, "
    "p.lat, p.lon, p.accuracy_m, p.fix_at, p.created_at, m.updated_at, "
    "m.positions_purged_at IS NOT NULL, t.status, t.kind, t.label, t.prompt, "
    "ST_X(t.point), ST_Y(t.point), m.event_seq "
    "FROM participants p JOIN mobs m ON m.pk = p.mob_pk "
    "LEFT JOIN tasks t ON t.id = p.task_id WHERE p.id = "
)
_PARAM = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _utc(value) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite keeps naive UTC text, PostgreSQL
    returns aware datetimes); see models.UTCDateTime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _read_state(raw, paramstyle: str, participant_id: int) -> _State | None:
    cursor = raw.cursor()
    cursor.execute(_STATE_SQL + _PARAM[paramstyle], (participant_id,))
    found = cursor.fetchone()
    cursor.close()
    if found is None:
        return None
    row = _State._make(found)
    return row._replace(
        entered_zone=bool(row.entered_zone),
        positions_purged=bool(row.positions_purged),
        fix_at=_utc(row.fix_at),
        created_at=_utc(row.created_at),
        mob_updated_at=_utc(row.mob_updated_at),
    )


def report_location_by_id(
    engine: Engine,
    get_session: Callable[[], Session],
    participant_id: object,
    data: object,
    settings: Settings,
    now: datetime | None = None,
) -> tuple[dict, str | None]:
    """A socket's location report: ``(ack, mob_id)``; ``mob_id`` is set when the fix was
    written (and counters or tasks may have moved). The caller commits ``get_session()``
    then: a report whose task was changed meanwhile by someone else is judged again there.

    Everything is judged from one read on a connection kept for reports
    (``_ReportConnections``; from ``engine``'s pool when they are all busy). The common
    fix (plausible, same zone state, same task kept) is kept in this process's write-behind
    buffer (``server.domain.positions``): no session is opened and nothing is written. Any other
    fix (zone entry or exit, a task to claim, a fix that does not count where the state was
    not uncertain yet) is written and committed at once on the same connection, in plain
    SQL statements (``_write_changed``).
    """
    now = now or utcnow()
    lat, lon, accuracy_m = _parse_fix(data)
    if not isinstance(participant_id, int):
        raise ApiError(401, "participant_gone", "This participant no longer exists.")
    try:
        answer = _report_on_kept(engine, participant_id, lat, lon, accuracy_m, settings, now)
    except _StaleConnection:  # the database restarted: the other idle ones are dead too
        _kept_for(engine).close_idle()
        answer = _report_on_kept(engine, participant_id, lat, lon, accuracy_m, settings, now)
    if answer is None:  # the task changed meanwhile (a re-match): judge it again, in the ORM
        return _report_changed(get_session(), participant_id, data, settings, now)
    return answer


# engine → the DBAPI connections kept for location reports (see _reports_connection).
_kept_reports: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_KEPT_MOST = {"sqlite": 1, "postgresql": 8}


class _StaleConnection(Exception):
    """A kept connection that had been idle turned out dead (the database restarted)."""


class _ReportConnections:
    """DBAPI connections kept for location reports, out of the engine's pool.

    On SQLite one: a report runs start to end without yielding to another greenlet (SQLite
    calls block), and the pool's checkout and return cost about a tenth of a walking fix.
    On PostgreSQL up to eight, in autocommit while they read: a walking fix is then one
    round trip (its read), where a pooled connection cost four or five (the pool's ping,
    BEGIN, the read, the ROLLBACK on return). What a report writes is one transaction
    (``_begin_writes``). A report that finds them all in use takes one from the pool."""

    def __init__(self, most: int, autocommit: bool):
        self.most = most
        self.autocommit = autocommit
        self.idle: list = []
        self.count = 0
        self.disposed = False
        self.lock = threading.Lock()

    def take(self, engine: Engine):
        """``(connection, reused)``, or ``(None, False)`` when all are in use."""
        with self.lock:
            if self.idle:
                return self.idle.pop(), True
            if self.count >= self.most:
                return None, False
            self.count += 1
        try:
            fairy = engine.raw_connection()
            fairy.detach()  # ours now; closed when the engine is disposed
            if self.autocommit:
                fairy.rollback()
                fairy.dbapi_connection.autocommit = True
        except BaseException:
            with self.lock:
                self.count -= 1
            raise
        return fairy, False

    def give_back(self, fairy, healthy: bool) -> None:
        if healthy and not self.disposed:
            try:
                fairy.rollback()  # whatever was left uncommitted; a no-op after a commit
                if self.autocommit:
                    fairy.dbapi_connection.autocommit = True
            except Exception:
                healthy = False
        with self.lock:
            if healthy and not self.disposed:
                self.idle.append(fairy)
                return
            self.count -= 1
        with contextlib.suppress(Exception):
            fairy.close()

    def close_idle(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
            self.count -= len(idle)
        for fairy in idle:
            with contextlib.suppress(Exception):
                fairy.close()


def _kept_for(engine: Engine) -> _ReportConnections:
    kept = _kept_reports.get(engine)
    if kept is None:
        name = engine.dialect.name
        kept = _ReportConnections(_KEPT_MOST.get(name, 0), autocommit=name == "postgresql")
        _kept_reports[engine] = kept
        event.listen(engine, "engine_disposed", _forget_reports_connections)
    return kept


def _forget_reports_connections(engine: Engine) -> None:
    kept = _kept_reports.pop(engine, None)
    if kept is not None:
        kept.disposed = True
        kept.close_idle()


def _begin_writes(raw) -> None:
    """From here on, what this report's connection does is one transaction (committed or
    rolled back by the caller): a kept PostgreSQL connection leaves autocommit."""
    dbapi = raw.dbapi_connection
    if getattr(dbapi, "autocommit", None) is True:
        dbapi.autocommit = False


@contextlib.contextmanager
def _reports_connection(engine: Engine):
    """A DBAPI connection for one location report (see ``_ReportConnections``); whatever it
    leaves uncommitted is rolled back. A DBAPI error comes out as SQLAlchemy's (so a lost
    database answers 503); a kept connection found dead after being idle raises
    ``_StaleConnection``, and the caller runs the report again (it is judged from what the
    database holds then, so running it twice does no harm)."""
    kept = _kept_for(engine)
    fairy, reused = kept.take(engine)
    pooled = fairy is None
    if pooled:
        fairy = engine.raw_connection()  # close() gives it back (rolled back)
    healthy = True
    try:
        yield fairy
    except engine.dialect.dbapi.Error as exc:
        healthy = not engine.dialect.is_disconnect(exc, fairy.dbapi_connection, None)
        if not healthy and reused:
            raise _StaleConnection from exc
        raise DBAPIError.instance(
            None, None, exc, engine.dialect.dbapi.Error, connection_invalidated=not healthy
        ) from exc
    finally:
        if not pooled:
            kept.give_back(fairy, healthy)
        else:
            if not healthy:
                fairy.invalidate()
            fairy.close()


def _report_on_kept(engine, participant_id, lat, lon, accuracy_m, settings, now):
    with _reports_connection(engine) as raw:
        answer = _report(raw, engine, participant_id, lat, lon, accuracy_m, settings, now)
        if answer is not None and answer[1] is not None:
            raw.commit()
    return answer


def _report(raw, engine, participant_id, lat, lon, accuracy_m, settings, now):
    """``report_location_by_id`` on the DBAPI connection ``raw``; None on a conflict. The
    ack carries the mob's latest event number (``seq``), read in the same row."""
    row = _read_state(raw, engine.dialect.paramstyle, participant_id)
    if row is None:
        raise ApiError(401, "participant_gone", "This participant no longer exists.")
    answer = _judge(raw, engine, row, lat, lon, accuracy_m, settings, now)
    if answer is not None:
        answer[0]["seq"] = row.event_seq
    return answer


def _judge(raw, engine, row, lat, lon, accuracy_m, settings, now):
    """``_report`` past its read."""
    if row.positions_purged:  # the mob is over: no position is kept any more
        return {"zone": "uncertain", "counted": False, "reason": "mob_ended", "task": None}, None
    stored = None
    if row.lat is not None and row.fix_at is not None:
        stored = positions.Fix(row.id, row.mob_pk, row.lat, row.lon, row.accuracy_m, row.fix_at)
    previous = positions.latest(row.id, row.mob_pk, row.created_at, stored)
    problem = _fix_problem(previous, lon, lat, accuracy_m, settings, now)
    if problem is not None:
        # The fix does not count: not stored, and the participant is not "inside" on its word.
        here = (previous.lon, previous.lat) if previous is not None else None
        ack = {"zone": "uncertain", "counted": False, "reason": problem, "task": None}
        ack["task"] = _row_task(row, here)
        if row.zone_state == "uncertain":
            return ack, None
        _begin_writes(raw)
        sql = _Sql.of_dbapi(raw, engine.dialect)
        sql.run("UPDATE participants SET zone_state = 'uncertain' WHERE id = ?", (row.id,))
        return ack, row.mob_id
    sql = _Sql.of_dbapi(raw, engine.dialect)
    fix = _zone_status(_zone(sql, row.mob_pk, row.mob_updated_at), lon, lat, accuracy_m)
    wants_task = fix.state == "inside"  # a task is claimed only from inside the zone
    unchanged = (
        fix.state == row.zone_state
        and (fix.state != "inside" or row.entered_zone)
        and (not wants_task or (row.task_id is not None and row.task_status == "open"))
    )
    if unchanged:
        positions.keep(positions.Fix(row.id, row.mob_pk, lat, lon, accuracy_m, now))
        task = _row_task(row, (lon, lat))
        changed = None
    else:
        _begin_writes(raw)
        task = _write_changed(sql, row, fix, wants_task, lat, lon, accuracy_m, now)
        if task is _CONFLICT:
            raw.rollback()
            return None
        changed = row.mob_id
    ack = {
        "zone": fix.state,
        "counted": True,
        "distance_m": round(fix.distance_m, 1),
        "task": task,
    }
    if fix.bearing_deg is not None:
        ack["bearing_deg"] = round(fix.bearing_deg, 1)
    return ack, changed


_CONFLICT: dict = {}  # _write_changed: the participant's task changed since it was read


def _write_changed(sql: _Sql, row, fix, wants_task, lat, lon, accuracy_m, now) -> dict | None:
    """Write a fix that changes the zone state or the task, as ``report_location`` would:
    the position, the zone state, the zone entry time, and (when the participant is inside
    or near) the task kept while open, else released and the nearest free one claimed.
    Returns the task as its holder sees it, or ``_CONFLICT`` when the participant's task
    was changed by someone else since ``row`` was read (nothing is then to be committed)."""
    at = sql.time(now)
    values: dict = {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "fix_at": at}
    values["zone_state"] = fix.state
    if fix.state == "inside" and not row.entered_zone:
        values["entered_zone_at"] = at
    task = _row_task(row, (lon, lat))
    if wants_task and (row.task_id is None or row.task_status != "open"):
        if row.task_id is not None and row.task_status is not None:  # closed: let it go
            _release(sql, row.task_id)
        claimed = _claim_nearest(sql, row.mob_pk, row.mob_id, row.tasks_version, lon, lat)
        values["task_id"] = claimed.id if claimed is not None else None
        task = None if claimed is None else _task_fields(*claimed, (lon, lat))
    sets = ", ".join(f"{name} = ?" for name in values)
    if row.task_id is None:
        update_sql, params = f"UPDATE participants SET {sets} WHERE id = ? AND task_id IS NULL", ()
    else:
        update_sql = f"UPDATE participants SET {sets} WHERE id = ? AND task_id = ?"
        params = (row.task_id,)
    written = sql.run(update_sql, (*values.values(), row.id, *params)).rowcount
    return task if written else _CONFLICT


def _row_task(row, here) -> dict | None:
    if row.task_id is None or row.task_lon is None:
        return None
    return _task_fields(
        row.task_id,
        row.task_kind,
        row.task_label,
        row.task_prompt,
        row.task_lon,
        row.task_lat,
        here,
    )


def _report_changed(session, participant_id, data, settings, now) -> tuple[dict, str]:
    """With the ORM participant and mob, every change written in this transaction."""
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise ApiError(401, "participant_gone", "This participant no longer exists.")
    mob = participant.mob
    ack = report_location(session, participant, mob, data, settings, now)
    return {**ack, "seq": mob.event_seq}, mob.id


def _deed_answer(deed: Deed, totals: dict) -> dict:
    return {
        "deed_id": deed.deed_id,
        "accepted": deed.status in COUNTED_DEED_STATUSES,
        "status": deed.status,
        "reason": deed.reason,
        "totals": totals,
    }


def confirm_deed(
    session: Session,
    participant: Participant,
    mob: Mob,
    data: object,
    settings: Settings,
    now: datetime | None = None,
    known: dict | None = None,
) -> dict:
    """Record a deed once per client UUID; doubtful deeds are stored as flagged.

    The answer's ``totals`` count the deeds afresh; ``known`` may give the participant
    counters (``PARTICIPANT_COUNTERS``, which a deed does not change) from a recent count."""
    now = now or utcnow()

    def totals() -> dict:
        if known is None:
            return counters(session, mob)
        return {**{k: known[k] for k in PARTICIPANT_COUNTERS}, **deed_counters(session, mob)}

    if not isinstance(data, dict):
        raise ApiError(400, "body_not_object", "Send {deed_id, task, lat, lon, accuracy_m}.")
    raw_id = data.get("deed_id")
    try:
        deed_id = str(uuid.UUID(str(raw_id))) if isinstance(raw_id, str) else None
    except ValueError:
        deed_id = None
    if deed_id is None:
        raise ApiError(400, "deed_id_invalid", "deed_id must be a UUID made by the client.")
    existing = session.scalar(select(Deed).where(Deed.deed_id == deed_id))
    if existing is not None:
        if existing.participant_id != participant.id:
            raise ApiError(409, "deed_id_taken", "This deed_id belongs to someone else.")
        return _deed_answer(existing, totals())
    task_id = data.get("task")
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise ApiError(
            400, "field_wrong_type", "task must be the id of your task.", {"field": "task"}
        )
    lat = get_number(data, "lat", lo=-90, hi=90)
    lon = get_number(data, "lon", lo=-180, hi=180)
    accuracy_m = get_number(data, "accuracy_m", lo=0, hi=1e7)

    end_at = mob.go_at + timedelta(seconds=mob.duration_s)
    if mob.status == "cancelled" or not (
        mob.go_at <= now <= end_at + timedelta(seconds=settings.deed_grace_s)
    ):
        return {"deed_id": deed_id, "accepted": False, "status": None,
                "reason": "not_action_phase", "totals": totals()}  # fmt: skip
    if participant.task_id != task_id:
        return {"deed_id": deed_id, "accepted": False, "status": None,
                "reason": "not_your_task", "totals": totals()}  # fmt: skip

    task = session.get(Task, task_id)
    point = to_shape(task.point)
    distance = geo.distance_m(lon, lat, point.x, point.y)
    positions.overlay(participant)
    reason = _fix_problem(_stored_fix(participant), lon, lat, accuracy_m, settings, now)
    if reason is None and distance > settings.deed_radius_m + accuracy_m:
        reason = "far_from_task"
    deed = Deed(
        deed_id=deed_id,
        mob_pk=mob.pk,
        participant_id=participant.id,
        task_id=task_id,
        status="flagged" if reason else "accepted",
        reason=reason,
        distance_m=round(distance, 1),
        accuracy_m=accuracy_m,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(deed)
            session.flush()
    except IntegrityError:  # the same deed_id raced in from a second connection
        deed = session.scalar(select(Deed).where(Deed.deed_id == deed_id))
    return _deed_answer(deed, totals())


def review_deed(session: Session, mob: Mob, deed_pk: int, verdict: str, now: datetime) -> Deed:
    """Approve or reject a flagged deed (compare-and-set on ``flagged``)."""
    status = {"approve": "approved", "reject": "rejected"}.get(verdict)
    if status is None:
        raise ApiError(
            400, "field_invalid", "verdict must be 'approve' or 'reject'.", {"field": "verdict"}
        )
    deed = session.scalar(select(Deed).where(Deed.id == deed_pk, Deed.mob_pk == mob.pk))
    if deed is None:
        raise ApiError(404, "deed_not_found", f"The mob has no deed {deed_pk}.")
    done = session.execute(
        update(Deed)
        .where(Deed.id == deed.id, Deed.status == "flagged")
        .values(status=status, reviewed_at=now)
    ).rowcount
    session.refresh(deed)
    if not done:
        raise ApiError(409, "deed_not_flagged", f"The deed is {deed.status}, not flagged.")
    return deed


def deed_state(deed: Deed) -> dict:
    """What a deed's owner is told about it: ``{deed_id, status, accepted}``."""
    return {
        "deed_id": deed.deed_id,
        "status": deed.status,
        "accepted": deed.status in COUNTED_DEED_STATUSES,
    }


def deeds_of(session: Session, participant: Participant) -> list[dict]:
    """The participant's own deeds, oldest first, with their status now (a flagged deed's
    verdict included) and why it was flagged."""
    deeds = session.scalars(
        select(Deed).where(Deed.participant_id == participant.id).order_by(Deed.id)
    )
    return [{**deed_state(d), "reason": d.reason} for d in deeds]


PARTICIPANT_COUNTERS = ("joined", "in_zone", "matched")


def counters(session: Session, mob: Mob) -> dict:
    """joined, in zone, matched, deeds done (and flagged) for a mob."""
    return {**participant_counters(session, mob), **deed_counters(session, mob)}


def participant_counters(session: Session, mob: Mob) -> dict:
    """joined, in zone and matched (``PARTICIPANT_COUNTERS``): one aggregate over the mob's
    participants."""
    p = Participant
    joined, in_zone, matched = session.execute(
        select(
            func.count(),
            func.count().filter(p.zone_state == "inside"),
            func.count(p.task_id),
        ).where(p.mob_pk == mob.pk)
    ).one()
    return {"joined": joined, "in_zone": in_zone, "matched": matched}


def deed_counters(session: Session, mob: Mob) -> dict:
    """Deeds done and flagged (a rehearsal's as ``rehearsal_deeds``, never counted)."""
    done, flagged = session.execute(
        select(
            func.count().filter(Deed.status.in_(COUNTED_DEED_STATUSES)),
            func.count().filter(Deed.status == "flagged"),
        ).where(Deed.mob_pk == mob.pk)
    ).one()
    if mob.rehearsal:
        return {"deeds_done": 0, "deeds_flagged": 0, "rehearsal_deeds": done + flagged}
    return {"deeds_done": done, "deeds_flagged": flagged}
