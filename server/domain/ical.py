"""Calendar entries (RFC 5545) for mobs, built with the ``icalendar`` library.

One mob is one ``VEVENT``: its ``UID`` is stable per mob (``mob-<id>@goodmob``), ``DTSTART``
is GO (``go_at``, in UTC) and ``DTEND`` the end of the action, ``SEQUENCE`` is raised by every
change of the timeline (postpone, start now, cancel: ``timeline_version`` - 1), and a cancelled
mob has ``STATUS:CANCELLED``, so a calendar that imported or subscribed to it updates the
entry. No organizer e-mail and no position are in it: the title, the description, the times
and the URL of the mob's page.

An organizer's feed lists their published, upcoming mobs (and the cancelled ones that would
have been upcoming, so a subscribed calendar sees the cancellation); a place's feed lists the
mobs the nearby search finds there (a cancelled one drops out of it). Rehearsals are left out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.infra.models import LISTED_STATUSES, Mob, utcnow

__all__ = ["mob_calendar", "organizer_calendar", "place_calendar", "event_uid", "FEED_MAX"]

PRODID = "-//Good Mob//Good Mob//EN"
FEED_MAX = 200  # the most mobs one organizer feed lists
# How long after its end a mob stays in the organizer's feed.
FEED_KEEP_ENDED = timedelta(days=1)


def event_uid(mob: Mob) -> str:
    return f"mob-{mob.id}@goodmob"


def _calendar(name: str | None = None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name:
        cal.add("x-wr-calname", name)
    return cal


def _event(mob: Mob, base_url: str, now: datetime) -> Event:
    url = f"{base_url.rstrip('/')}/m/{mob.id}"
    event = Event()
    event.add("uid", event_uid(mob))
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", mob.go_at.astimezone(UTC))
    event.add("dtend", mob.end_at.astimezone(UTC))
    event.add("summary", mob.title)
    description = (mob.description or "").strip()
    event.add("description", f"{description}\n\n{url}" if description else url)
    event.add("url", url)
    event.add("sequence", max(0, mob.timeline_version - 1))
    event.add("status", "CANCELLED" if mob.status == "cancelled" else "CONFIRMED")
    event.add("created", mob.created_at.astimezone(UTC))
    event.add("last-modified", mob.updated_at.astimezone(UTC))
    return event


def mob_calendar(mob: Mob, base_url: str, now: datetime | None = None) -> bytes:
    """The ``.ics`` of one (non-draft) mob."""
    cal = _calendar()
    cal.add_component(_event(mob, base_url, now or utcnow()))
    return cal.to_ical()


def organizer_mobs(session: Session, organizer_id: int, now: datetime) -> list[Mob]:
    """The organizer's published upcoming (or running) mobs, and cancelled ones not yet past."""
    return list(
        session.scalars(
            select(Mob)
            .where(
                Mob.organizer_id == organizer_id,
                Mob.status.in_((*LISTED_STATUSES, "cancelled")),
                Mob.published_at.is_not(None),  # not a draft cancelled before publishing
                Mob.rehearsal.is_(False),
                Mob.end_at >= now - FEED_KEEP_ENDED,
            )
            .order_by(Mob.go_at, Mob.pk)
            .limit(FEED_MAX)
        )
    )


def organizer_calendar(
    session: Session, organizer_id: int, name: str, base_url: str, now: datetime | None = None
) -> bytes:
    """A subscribable feed of one organizer's mobs (see ``organizer_mobs``)."""
    now = now or utcnow()
    cal = _calendar(f"Good Mob: {name}")
    cal.add("refresh-interval;value=duration", "PT1H")
    cal.add("x-published-ttl", "PT1H")
    for mob in organizer_mobs(session, organizer_id, now):
        cal.add_component(_event(mob, base_url, now))
    return cal.to_ical()


def place_calendar(
    found: list[Mob], label: str, base_url: str, now: datetime | None = None
) -> bytes:
    """A subscribable feed of the mobs near a place (``found``: the nearby search's mobs)."""
    now = now or utcnow()
    cal = _calendar(f"Good Mob near {label}")
    cal.add("refresh-interval;value=duration", "PT1H")
    cal.add("x-published-ttl", "PT1H")
    for mob in found:
        if not mob.rehearsal:
            cal.add_component(_event(mob, base_url, now))
    return cal.to_ical()
