"""The organizer's controls of a published mob (start now, postpone, announce, cancel): the
same functions behind the REST routes (``server.http.mobs``) and the organizer's socket
(``server.realtime.organizer``). The caller commits."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from config import Settings
from server.domain import campaigns, timeline
from server.domain.fields import get_int, get_str, get_time, reject_unknown
from server.infra.errors import ApiError
from server.infra.models import Mob

__all__ = ["postpone_target", "announcement_text", "start_now", "postpone", "announce", "cancel"]


def postpone_target(data: dict, mob: Mob) -> datetime:
    """The new GO of a postpone request: ``go_at`` (ISO 8601) or ``by_s`` seconds later."""
    reject_unknown(data, {"mob", "go_at", "by_s"})
    if ("go_at" in data) == ("by_s" in data):
        raise ApiError(
            400, "field_missing", "Send exactly one of go_at or by_s.", {"field": "go_at"}
        )
    if "by_s" in data:
        return mob.go_at + timedelta(seconds=get_int(data, "by_s", lo=1, hi=7 * 24 * 3600))
    return get_time(data, "go_at")


def announcement_text(data: dict, settings: Settings) -> str:
    reject_unknown(data, {"mob", "text"})
    return get_str(data, "text", max_len=settings.announcement_max_chars)


def start_now(session: Session, mob: Mob, lead_s: int | None, settings: Settings) -> Mob:
    """GO in ``lead_s`` seconds (the settings' default lead when None)."""
    campaigns.guard_schedule_change(session, mob)
    return timeline.start_now(session, mob, lead_s, settings)


def postpone(session: Session, mob: Mob, data: dict, settings: Settings) -> Mob:
    """GO at the time ``data`` asks for (``go_at`` or ``by_s``, see ``postpone_target``)."""
    campaigns.guard_schedule_change(session, mob)
    return timeline.postpone(session, mob, postpone_target(data, mob), settings)


def announce(session: Session, mob: Mob, text: str, settings: Settings) -> dict:
    """A numbered ``announcement`` event to every audience; its payload."""
    return timeline.announce(session, mob, text, settings)


def cancel(session: Session, mob: Mob, settings: Settings) -> Mob:
    """Cancel the mob and tell everyone (``timeline.cancel``)."""
    return timeline.cancel(session, mob, settings)
