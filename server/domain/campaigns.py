"""Campaigns: mobs in several zones (cities) that share one GO instant, each in its local time.

A campaign has one ``go_at``. Adding a mob to it (or copying a mob into it) sets the mob's GO to
the campaign's, through the same operations as a single mob's schedule change, so every
member's timeline carries the same ``go_at_ms`` and the scheduler moves them all at the same
instant. Schedule changes of a campaign (start now, postpone, a new ``go_at``) move every
member in one transaction with one ``now``, so they stay on one instant. A member's own schedule
should not change on its own (see :func:`guard_schedule_change`).

Each mob may carry an IANA time zone (``Europe/Berlin``), given by its organizer and validated
with :mod:`zoneinfo`; times are stored in UTC and only shown in local time.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from collections import Counter
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from geoalchemy2.shape import to_shape
from shapely.geometry import mapping
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import geo
from config import Settings
from server.domain import mobs, participants, tally, timeline
from server.domain.cascade import growth_row
from server.infra.errors import ApiError
from server.infra.models import (
    CLOSED_STATUSES,
    LIVE_STATUSES,
    Campaign,
    Mob,
    MobGrowth,
    Organizer,
    Pledge,
    Task,
    utcnow,
)

__all__ = [
    "COUNTER_KEYS",
    "validate_time_zone",
    "local_time_json",
    "time_zone_of",
    "set_time_zone",
    "create_campaign",
    "get_campaign",
    "require_owner",
    "mob_campaign",
    "members",
    "add_mob",
    "remove_mob",
    "update_campaign",
    "start_now",
    "postpone",
    "publish",
    "copy_mob",
    "guard_schedule_change",
    "campaign_json",
    "global_counters",
]

COUNTER_KEYS = ("joined", "in_zone", "matched", "deeds_done", "deeds_flagged")
MOBS_MAX = 100
_ID_ALPHABET = string.ascii_lowercase + string.digits
_TRAILING_NUMBER = re.compile(r"\s*\d+$")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- time zones ---


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def validate_time_zone(name: object) -> str:
    """An IANA time zone name known to zoneinfo (``Europe/Berlin``), else a 422."""
    if not isinstance(name, str) or name not in _zones():
        raise ApiError(
            422,
            "time_zone_invalid",
            f"{name!r} is not an IANA time zone name such as 'Europe/Berlin' or "
            "'America/New_York'.",
            {"field": "time_zone"},
        )
    return name


def local_time_json(moment: datetime, time_zone: str | None) -> dict:
    """``moment`` in a zone's local time (UTC when the mob has none).

    >>> from datetime import datetime, UTC
    >>> local_time_json(datetime(2026, 7, 1, 12, tzinfo=UTC), "Asia/Tokyo")["local_time"]
    '21:00'
    """
    zone = ZoneInfo(time_zone or "UTC")
    local = moment.astimezone(zone)
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return {
        "time_zone": time_zone,
        "local": local.isoformat(timespec="seconds"),
        "local_date": local.date().isoformat(),
        "local_time": local.strftime("%H:%M"),
        "utc_offset": f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
        "zone_abbreviation": local.tzname(),
    }


def time_zone_of(session: Session, mob: Mob) -> str | None:
    return session.scalar(select(MobGrowth.time_zone).where(MobGrowth.mob_pk == mob.pk))


def set_time_zone(session: Session, mob: Mob, time_zone: str) -> None:
    growth_row(session, mob).time_zone = validate_time_zone(time_zone)
    session.flush()


# --- campaigns ---


def _check_future(go_at: datetime, now: datetime) -> None:
    if go_at <= now:
        raise ApiError(
            422,
            "go_at_in_past",
            f"go_at {go_at.isoformat()} is not in the future (server time is "
            f"{now.isoformat(timespec='seconds')}).",
            {"field": "go_at"},
        )


def create_campaign(
    session: Session,
    organizer: Organizer,
    *,
    title: str,
    description: str,
    go_at: datetime,
    now: datetime | None = None,
) -> Campaign:
    now = now or utcnow()
    _check_future(go_at, now)
    campaign = Campaign(
        organizer_id=organizer.id,
        title=title,
        description=description,
        go_at=go_at,
        created_at=now,
        updated_at=now,
    )
    for _attempt in range(5):
        campaign.id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
        session.add(campaign)
        try:
            with session.begin_nested():
                session.flush()
            return campaign
        except IntegrityError:  # public id collision: draw again
            continue
    raise ApiError(503, "id_exhausted", "Could not allocate a campaign id; try again.")


def get_campaign(session: Session, public_id: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.id == public_id))
    if campaign is None:
        raise ApiError(404, "campaign_not_found", f"There is no campaign {public_id!r}.")
    return campaign


def require_owner(campaign: Campaign, organizer: Organizer) -> None:
    if campaign.organizer_id != organizer.id:
        raise ApiError(403, "not_owner", "Only the campaign's organizer may change it.")


def mob_campaign(session: Session, mob: Mob) -> Campaign | None:
    return session.scalar(
        select(Campaign)
        .join(MobGrowth, MobGrowth.campaign_pk == Campaign.pk)
        .where(MobGrowth.mob_pk == mob.pk)
    )


def members(session: Session, campaign: Campaign) -> list[tuple[Mob, str | None]]:
    """The campaign's mobs with their time zones, in the order they were added."""
    rows = session.execute(
        select(Mob, MobGrowth.time_zone)
        .join(MobGrowth, MobGrowth.mob_pk == Mob.pk)
        .where(MobGrowth.campaign_pk == campaign.pk)
        .order_by(Mob.pk)
    )
    return [(mob, tz) for mob, tz in rows]


def _move_go(session: Session, mob: Mob, go_at: datetime, settings: Settings) -> None:
    """Set a not-yet-live mob's GO as PATCH /api/mobs/{id} would (and announce it)."""
    if mob.go_at == go_at:
        return
    mobs.update_mob(session, mob, {"go_at": go_at}, settings)
    if mob.status != "draft":
        timeline.record_event(
            session, mob, "timeline", {"timeline": timeline.timeline_json(mob)}, settings
        )


def add_mob(
    session: Session,
    campaign: Campaign,
    mob: Mob,
    time_zone: str | None,
    settings: Settings,
) -> Mob:
    """Make ``mob`` (same organizer, not live) a member: its GO becomes the campaign's."""
    if mob.organizer_id != campaign.organizer_id:
        raise ApiError(403, "not_owner", "Only your own mobs can join your campaign.")
    if time_zone is not None:
        validate_time_zone(time_zone)
    row = growth_row(session, mob)
    if row.campaign_pk not in (None, campaign.pk):
        raise ApiError(409, "mob_in_campaign", "The mob already belongs to another campaign.")
    if row.campaign_pk is None:
        if mob.status in CLOSED_STATUSES or mob.status in LIVE_STATUSES:
            raise ApiError(409, "mob_live", f"The mob is {mob.status}; only a coming mob can join.")
        if len(members(session, campaign)) >= MOBS_MAX:
            raise ApiError(422, "too_many_mobs", f"A campaign has at most {MOBS_MAX} mobs.")
        _move_go(session, mob, campaign.go_at, settings)
        row.campaign_pk = campaign.pk
    if time_zone is not None:
        row.time_zone = time_zone
    session.flush()
    return mob


def remove_mob(session: Session, campaign: Campaign, mob: Mob) -> None:
    row = session.get(MobGrowth, mob.pk)
    if row is None or row.campaign_pk != campaign.pk:
        raise ApiError(404, "mob_not_in_campaign", f"The mob {mob.id} is not in this campaign.")
    if mob.status in LIVE_STATUSES:
        raise ApiError(409, "mob_live", "A live mob stays in its campaign.")
    row.campaign_pk = None
    session.flush()


def _live_members(session: Session, campaign: Campaign) -> list[Mob]:
    return [m for m, _tz in members(session, campaign) if m.status in LIVE_STATUSES]


def update_campaign(
    session: Session, campaign: Campaign, changes: dict, settings: Settings
) -> Campaign:
    """Title, description, or ``go_at`` (moves every coming member)."""
    for name in ("title", "description"):
        if name in changes:
            setattr(campaign, name, changes[name])
    if "go_at" in changes and changes["go_at"] != campaign.go_at:
        _check_future(changes["go_at"], utcnow())
        if _live_members(session, campaign):
            raise ApiError(
                409,
                "campaign_live",
                "Mobs of the campaign are live: use start-now or postpone to move GO.",
            )
        campaign.go_at = changes["go_at"]
        for mob, _tz in members(session, campaign):
            if mob.status not in CLOSED_STATUSES:
                _move_go(session, mob, campaign.go_at, settings)
    campaign.updated_at = utcnow()
    session.flush()
    return campaign


def _scheduled_members(session: Session, campaign: Campaign, what: str) -> list[Mob]:
    """Members that a campaign-wide control moves (cancelled ones are left alone)."""
    moving = [m for m, _tz in members(session, campaign) if m.status != "cancelled"]
    if not moving:
        raise ApiError(409, "campaign_empty", f"The campaign has no mob to {what}.")
    drafts = [m.id for m in moving if m.status == "draft"]
    if drafts:
        raise ApiError(
            409,
            "mob_not_published",
            f"Publish every mob of the campaign before you {what} ({', '.join(drafts)}).",
            {"mobs": drafts},
        )
    return moving


def start_now(
    session: Session,
    campaign: Campaign,
    lead_s: int | None,
    settings: Settings,
    now: datetime | None = None,
) -> Campaign:
    """GO in ``lead_s`` seconds for every member: one ``now`` for all, so one instant."""
    now = now or utcnow()
    for mob in _scheduled_members(session, campaign, "start it now"):
        timeline.start_now(session, mob, lead_s, settings, now=now)
        campaign.go_at = mob.go_at
    campaign.updated_at = now
    session.flush()
    return campaign


def postpone(
    session: Session,
    campaign: Campaign,
    go_at: datetime,
    settings: Settings,
    now: datetime | None = None,
) -> Campaign:
    now = now or utcnow()
    for mob in _scheduled_members(session, campaign, "postpone it"):
        timeline.postpone(session, mob, go_at, settings, now=now)
    campaign.go_at = go_at
    campaign.updated_at = now
    session.flush()
    return campaign


def publish(session: Session, campaign: Campaign) -> list[Mob]:
    """Publish every draft member (all or none); returns the mobs that were published now."""
    drafts = [m for m, _tz in members(session, campaign) if m.status == "draft"]
    if not drafts and not members(session, campaign):
        raise ApiError(409, "campaign_empty", "Add mobs to the campaign first.")
    for mob in drafts:
        mobs.publish_mob(session, mob)
    return drafts


def guard_schedule_change(session: Session, mob: Mob) -> None:
    """409 for a schedule change of one member on its own (it would leave the shared GO)."""
    campaign = mob_campaign(session, mob)
    if campaign is not None:
        raise ApiError(
            409,
            "mob_in_campaign",
            f"The mob shares GO with campaign {campaign.id}: change the campaign's schedule.",
            {"campaign": campaign.id},
        )


# --- copy a mob as a template ---


def _template_tasks(session: Session, template: Mob, spacing_m: float | None, settings):
    """Task parameters for the copy: the template's most common kind/prompt/capacity and a
    spacing that gives a similar density (hex cells of the template's area per task)."""
    tasks = list(session.scalars(select(Task).where(Task.mob_pk == template.pk)))
    if not tasks:
        return None
    kind, prompt, capacity = Counter((t.kind, t.prompt, t.capacity) for t in tasks).most_common(1)[
        0
    ][0]
    label = _TRAILING_NUMBER.sub("", tasks[0].label) or None
    if spacing_m is None:
        area = geo.zone_area_m2(mobs.mob_zone(template))
        spacing_m = math.sqrt(2 * area / (math.sqrt(3) * len(tasks)))
    spacing_m = min(max(spacing_m, settings.task_spacing_min_m), settings.task_spacing_max_m)
    return {
        "kind": kind,
        "prompt": prompt,
        "capacity": capacity,
        "label": label,
        "spacing_m": spacing_m,
    }


def copy_mob(
    session: Session,
    organizer: Organizer,
    template: Mob,
    *,
    zone,
    settings: Settings,
    title: str | None = None,
    go_at: datetime | None = None,
    time_zone: str | None = None,
    campaign: Campaign | None = None,
    spacing_m: float | None = None,
) -> Mob:
    """A new draft like ``template`` (texts, duration, rehearsal, task kind and density) in a
    new ``zone``; in ``campaign`` (its GO) or at ``go_at``."""
    if time_zone is not None:
        validate_time_zone(time_zone)
    if campaign is not None:
        require_owner(campaign, organizer)
        go_at = campaign.go_at
    if go_at is None:
        raise ApiError(
            400, "field_missing", "Send go_at, or a campaign to join.", {"field": "go_at"}
        )
    params = _template_tasks(session, template, spacing_m, settings)
    mob = mobs.create_mob(
        session,
        organizer,
        title=title or template.title,
        description=template.description,
        action=template.action,
        zone=zone,
        go_at=go_at,
        duration_s=template.duration_s,
        settings=settings,
        rehearsal=template.rehearsal,
    )
    if params is not None:
        mobs.generate_tasks(session, mob, grid="hex", replace=True, settings=settings, **params)
    row = growth_row(session, mob)
    row.time_zone = time_zone or time_zone_of(session, template)
    if campaign is not None:
        add_mob(session, campaign, mob, None, settings)
    session.flush()
    return mob


# --- views ---


def global_counters(per_mob: list[dict]) -> dict:
    """The campaign's counters: the sum of its mobs' (deeds: verified only, no rehearsals)."""
    return {key: sum(c.get(key, 0) for c in per_mob) for key in COUNTER_KEYS}


def _member_json(session: Session, mob: Mob, time_zone: str | None, counters: dict) -> dict:
    centre = to_shape(mob.zone).representative_point()
    return {
        "id": mob.id,
        "title": mob.title,
        "status": mob.status,
        "rehearsal": mob.rehearsal,
        "url": f"/m/{mob.id}",
        "live_url": f"/live/{mob.id}",
        "go_at": _iso(mob.go_at),
        "go_local": local_time_json(mob.go_at, time_zone),
        "timeline": timeline.timeline_json(mob),
        "counters": counters,
        "center": {"lat": round(centre.y, 6), "lon": round(centre.x, 6)},
    }


def campaign_json(session: Session, campaign: Campaign, viewer: Organizer | None = None) -> dict:
    """The campaign for everyone: members (drafts only for the owner) each in local time with
    counters, the global counters, and a world map of the zones (no one's position)."""
    owner = viewer is not None and viewer.id == campaign.organizer_id
    rows, all_counters, features = [], [], []
    for mob, tz in members(session, campaign):
        counters = participants.counters(session, mob)
        all_counters.append(counters)
        if mob.status == "draft" and not owner:
            continue
        member = _member_json(session, mob, tz, counters)
        rows.append(member)
        features.append(
            {
                "type": "Feature",
                "id": mob.id,
                "geometry": mapping(to_shape(mob.zone)),
                "properties": {
                    "id": mob.id,
                    "title": mob.title,
                    "status": mob.status,
                    "time_zone": tz,
                    "local_time": member["go_local"]["local_time"],
                    "joined": counters["joined"],
                    "deeds_done": counters["deeds_done"],
                },
            }
        )
    live = [m for m in rows if m["status"] != "cancelled"]
    return {
        "id": campaign.id,
        "title": campaign.title,
        "description": campaign.description,
        "organizer": {"name": campaign.organizer.name},
        "go_at": _iso(campaign.go_at),
        "go_at_ms": timeline.ms(campaign.go_at),
        "in_sync": all(m["timeline"]["go_at_ms"] == timeline.ms(campaign.go_at) for m in live),
        "mobs": rows,
        "counters": global_counters(all_counters),
        "pledges": _campaign_pledges(session, campaign),
        "map": {"type": "FeatureCollection", "features": features},
        "url": f"/api/campaigns/{campaign.id}",
    }


def _campaign_pledges(session: Session, campaign: Campaign) -> dict:
    deeds = tally.campaign_deeds(session, campaign)
    pledges = list(session.scalars(select(Pledge).where(Pledge.campaign_pk == campaign.pk)))
    return {"deeds_counted": deeds, "totals": tally.totals_by_currency(pledges, deeds)}
