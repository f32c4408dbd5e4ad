"""Domain operations for participants: joining, location reports, task matching, deeds.

Functions take a session and never commit; claims that can race (a task slot, a deed id, a
review) are atomic in the database.
"""

from __future__ import annotations

import math
import re
import secrets
import uuid
from datetime import datetime, timedelta

from geoalchemy2.shape import to_shape
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import geo
from config import Settings
from server.errors import ApiError
from server.models import (
    COUNTED_DEED_STATUSES,
    LISTED_STATUSES,
    Deed,
    Mob,
    Participant,
    Task,
    utcnow,
)
from server.validate import get_number

__all__ = [
    "TOKEN_SALT",
    "issue_token",
    "participant_from_token",
    "join_mob",
    "report_location",
    "confirm_deed",
    "review_deed",
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


def participant_from_token(
    session: Session, token: object, secret_key: str, max_age_s: int
) -> tuple[Participant, Mob]:
    """The participant and mob a participant token names, or a 401 ApiError."""
    if not isinstance(token, str) or not token:
        raise ApiError(401, "auth_required", "Connect with {token} in the auth payload.")
    try:
        payload = _serializer(secret_key).loads(token, max_age=max_age_s)
    except SignatureExpired:
        raise ApiError(401, "token_expired", "Your participant token has expired.") from None
    except BadSignature:
        raise ApiError(401, "token_invalid", "The participant token is not valid.") from None
    participant = session.get(Participant, payload.get("p")) if isinstance(payload, dict) else None
    if participant is None or participant.mob.id != payload.get("m"):
        raise ApiError(401, "token_invalid", "The participant token is not valid.")
    return participant, participant.mob


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
    if ref is not None:
        referrer_id = session.scalar(select(Participant.id).where(Participant.ref_code == ref))
        if referrer_id is None:
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
    return participant


def task_json(task: Task, participant: Participant | None = None) -> dict:
    point = to_shape(task.point)
    data = {
        "id": task.id,
        "kind": task.kind,
        "label": task.label,
        "prompt": task.prompt,
        "lat": point.y,
        "lon": point.x,
    }
    if participant is not None and participant.lat is not None:
        data["distance_m"] = round(
            geo.distance_m(participant.lon, participant.lat, point.x, point.y), 1
        )
        data["bearing_deg"] = round(
            geo.bearing_deg(participant.lon, participant.lat, point.x, point.y), 1
        )
    return data


def _release(session: Session, task_id: int) -> None:
    session.execute(
        update(Task).where(Task.id == task_id, Task.assigned > 0).values(assigned=Task.assigned - 1)
    )


def _claim_nearest(session: Session, mob: Mob, lon: float, lat: float) -> Task | None:
    """Claim a slot on the nearest open task with room: an atomic compare-and-set per try."""
    # Order by distance in a local equirectangular frame: a degree of longitude is cos(lat)
    # of a degree of latitude. Exact enough to rank tasks within one zone.
    scale = max(0.01, math.cos(math.radians(lat)))
    dx = (func.ST_X(Task.point) - lon) * scale
    dy = func.ST_Y(Task.point) - lat
    for _attempt in range(5):
        candidates = session.scalars(
            select(Task.id)
            .where(Task.mob_pk == mob.pk, Task.status == "open", Task.assigned < Task.capacity)
            .order_by(dx * dx + dy * dy)
            .limit(8)
        ).all()
        if not candidates:
            return None
        for task_id in candidates:
            claimed = session.execute(
                update(Task)
                .where(Task.id == task_id, Task.status == "open", Task.assigned < Task.capacity)
                .values(assigned=Task.assigned + 1)
            ).rowcount
            if claimed:
                return session.get(Task, task_id)
    return None


def _ensure_task(session: Session, participant: Participant, mob: Mob) -> Task | None:
    """Keep the task being walked to while it is open; otherwise claim the nearest free one."""
    if participant.task_id is not None:
        task = session.get(Task, participant.task_id)
        if task is not None and task.status == "open":
            return task
        if task is not None:
            _release(session, task.id)
        participant.task_id = None
    task = _claim_nearest(session, mob, participant.lon, participant.lat)
    if task is not None:
        participant.task_id = task.id
    return task


def holders_of(session: Session, task_id: int) -> list[int]:
    """Ids of the participants who hold ``task_id``."""
    return list(session.scalars(select(Participant.id).where(Participant.task_id == task_id)))


def rematch(
    session: Session, mob: Mob, participant_ids: list[int]
) -> list[tuple[int, Task | None]]:
    """Match again the participants whose task was removed or closed (from their last fix)."""
    results = []
    for participant in session.scalars(
        select(Participant).where(Participant.id.in_(participant_ids)).order_by(Participant.id)
    ):
        task = None
        if participant.lat is not None:
            task = _ensure_task(session, participant, mob)
        results.append((participant.id, task))
    return results


def _fix_problem(
    participant: Participant,
    lon: float,
    lat: float,
    accuracy_m: float,
    settings: Settings,
    now: datetime,
) -> str | None:
    """Why this fix must not count, judged against the participant's last counted fix."""
    previous = None
    if participant.lat is not None and participant.fix_at is not None:
        previous = (participant.lon, participant.lat, participant.fix_at.timestamp())
    return geo.fix_problem(
        accuracy_m,
        settings.location_max_accuracy_m,
        previous,
        (lon, lat, now.timestamp()),
        settings.location_max_speed_mps,
    )


def report_location(
    session: Session,
    participant: Participant,
    mob: Mob,
    data: object,
    settings: Settings,
    now: datetime | None = None,
) -> dict:
    """Judge a fix (zone state, plausibility), keep it as the latest, match a task; the ack."""
    now = now or utcnow()
    if not isinstance(data, dict):
        raise ApiError(400, "body_not_object", "Send {lat, lon, accuracy_m, at}.")
    lat = get_number(data, "lat", lo=-90, hi=90)
    lon = get_number(data, "lon", lo=-180, hi=180)
    accuracy_m = get_number(data, "accuracy_m", lo=0, hi=1e7)
    problem = _fix_problem(participant, lon, lat, accuracy_m, settings, now)
    zone = to_shape(mob.zone)
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
    fix = geo.zone_status(zone, lon, lat, accuracy_m)
    participant.lat, participant.lon, participant.accuracy_m = lat, lon, accuracy_m
    participant.fix_at = now
    participant.zone_state = fix.state
    if fix.state == "inside" and participant.entered_zone_at is None:
        participant.entered_zone_at = now
    task = None
    if fix.state == "inside" or fix.distance_m <= settings.match_near_zone_m:
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
) -> dict:
    """Record a deed once per client UUID; doubtful deeds are stored as flagged."""
    now = now or utcnow()
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
        return _deed_answer(existing, counters(session, mob))
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
                "reason": "not_action_phase", "totals": counters(session, mob)}  # fmt: skip
    if participant.task_id != task_id:
        return {"deed_id": deed_id, "accepted": False, "status": None,
                "reason": "not_your_task", "totals": counters(session, mob)}  # fmt: skip

    task = session.get(Task, task_id)
    point = to_shape(task.point)
    distance = geo.distance_m(lon, lat, point.x, point.y)
    reason = _fix_problem(participant, lon, lat, accuracy_m, settings, now)
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
    return _deed_answer(deed, counters(session, mob))


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


def counters(session: Session, mob: Mob) -> dict:
    """joined, in zone, matched, deeds done (and flagged) for a mob."""
    p = Participant
    joined, in_zone, matched = session.execute(
        select(
            func.count(),
            func.count().filter(p.zone_state == "inside"),
            func.count(p.task_id),
        ).where(p.mob_pk == mob.pk)
    ).one()
    done, flagged = session.execute(
        select(
            func.count().filter(Deed.status.in_(COUNTED_DEED_STATUSES)),
            func.count().filter(Deed.status == "flagged"),
        ).where(Deed.mob_pk == mob.pk)
    ).one()
    return {
        "joined": joined,
        "in_zone": in_zone,
        "matched": matched,
        "deeds_done": done,
        "deeds_flagged": flagged,
    }
