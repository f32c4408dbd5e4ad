"""The mob's timeline: phases at absolute server times, numbered events, organizer controls.

Every server→client event of a mob (``timeline``, ``phase``, ``announcement``) gets the next
number of the mob's sequence, allocated in the database in the same transaction as the change
it announces, and is stored in ``mob_events`` so a reconnecting client can catch up on any
process. Events are emitted only after that transaction commits (see ``install``): a rolled
back change is never announced.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from config import Settings
from server.domain import mobs, ports
from server.infra.errors import ApiError
from server.infra.models import CLOSED_STATUSES, Mob, MobEvent, MobNotice, utcnow

__all__ = [
    "record_notice",
    "SCHEDULED_STATUSES",
    "ms",
    "phase_at",
    "phase_started_at",
    "timeline_json",
    "record_event",
    "missed_events",
    "SNAPSHOT_ANNOUNCEMENTS",
    "recent_announcements",
    "start_now",
    "postpone",
    "announce",
    "cancel",
    "install",
]

# Statuses the scheduler moves forward, in order.
SCHEDULED_STATUSES = ("published", "gathering", "countdown", "action")
_ORDER = ("draft", "published", "gathering", "countdown", "action", "finished")
_RANK = {name: i for i, name in enumerate(_ORDER)}
# Keep the event log short: trim it once every this many events.
_TRIM_EVERY = 20
#: Announcements a join or watch snapshot carries (the latest ones still in the event log).
SNAPSHOT_ANNOUNCEMENTS = 5


def ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(value.timestamp() * 1000)


def rank(status: str) -> int:
    """Position of a status in the lifecycle (cancelled ranks after everything)."""
    return _RANK.get(status, len(_ORDER))


def phase_at(mob: Mob, now: datetime) -> str:
    """The phase the stored schedule gives at ``now`` (for a mob that has been published)."""
    if now >= mob.end_at:
        return "finished"
    if now >= mob.go_at:
        return "action"
    if now >= mob.countdown_at:
        return "countdown"
    if now >= mob.gather_at:
        return "gathering"
    return "published"


def phase_started_at(mob: Mob, phase: str) -> datetime | None:
    """The scheduled start of ``phase`` (None for phases without one)."""
    return {
        "gathering": mob.gather_at,
        "countdown": mob.countdown_at,
        "action": mob.go_at,
        "finished": mob.end_at,
        "cancelled": mob.cancelled_at,
        "published": mob.published_at,
    }.get(phase)


def timeline_json(mob: Mob) -> dict:
    """Every phase in server epoch ms, with the texts shown at them and a version."""
    return {
        "version": mob.timeline_version,
        "phase": mob.status,
        "gather_at_ms": ms(mob.gather_at),
        "countdown_at_ms": ms(mob.countdown_at),
        "go_at_ms": ms(mob.go_at),
        "end_at_ms": ms(mob.end_at),
        "rehearsal": mob.rehearsal,
        "title": mob.title,
        "action": mob.action,
    }


# --- numbered events ------------------------------------------------------------------------


def record_event(session: Session, mob: Mob, name: str, data: dict, settings: Settings) -> dict:
    """Give ``name`` the mob's next sequence number, store it, and queue it for emission.

    The number comes from an atomic ``UPDATE … SET event_seq = event_seq + 1 RETURNING``, so
    events of one mob are numbered without gaps or repeats whichever process records them.
    Returns the payload (``{"mob", "seq", **data}``).
    """
    seq = session.execute(
        update(Mob.__table__)
        .where(Mob.__table__.c.pk == mob.pk)
        .values(event_seq=Mob.__table__.c.event_seq + 1)
        .returning(Mob.__table__.c.event_seq)
    ).scalar_one()
    set_committed_value(mob, "event_seq", seq)
    payload = {"mob": mob.id, "seq": seq, **data}
    session.add(MobEvent(mob_pk=mob.pk, seq=seq, event=name, payload=payload))
    if seq % _TRIM_EVERY == 0:
        session.execute(
            delete(MobEvent).where(
                MobEvent.mob_pk == mob.pk, MobEvent.seq <= seq - settings.event_replay_max
            )
        )
    session.info.setdefault("goodmob.emits", []).append((mob.id, name, payload))
    return payload


def missed_events(session: Session, mob: Mob, last_seq) -> list[dict] | None:
    """The events after ``last_seq`` in order, or None when they cannot all be replayed.

    None (the caller sends a fresh snapshot) when no number was given, when it is not one
    this mob gave out, or when some of the events were already trimmed from the log.
    """
    if isinstance(last_seq, bool) or not isinstance(last_seq, int):
        return None
    if last_seq < 0 or last_seq > mob.event_seq:
        return None
    rows = session.execute(
        select(MobEvent.event, MobEvent.payload)
        .where(
            MobEvent.mob_pk == mob.pk,
            MobEvent.seq > last_seq,
            # Up to the number read with the mob: an event committed since (the scheduler
            # moving the mob on) would otherwise make the count differ and look trimmed.
            MobEvent.seq <= mob.event_seq,
        )
        .order_by(MobEvent.seq)
    ).all()
    if len(rows) != mob.event_seq - last_seq:
        return None
    return [{"event": name, "data": payload} for name, payload in rows]


def recent_announcements(
    session: Session, mob: Mob, limit: int = SNAPSHOT_ANNOUNCEMENTS
) -> list[dict]:
    """The mob's latest ``limit`` announcements still in the event log, oldest first (each
    the ``announcement`` event's payload: ``{mob, seq, text, at_ms}``), so a page opened
    after the organizer spoke still shows what was said."""
    rows = session.scalars(
        select(MobEvent.payload)
        .where(MobEvent.mob_pk == mob.pk, MobEvent.event == "announcement")
        .order_by(MobEvent.seq.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


def install(session_factory) -> None:
    """Emit queued events through the notifier (``ports.notifier().mob_event``) after each
    commit; drop them on rollback."""

    @event.listens_for(session_factory, "after_commit")
    def _after_commit(session):
        queued = session.info.pop("goodmob.emits", None)
        for mob_id, name, payload in queued or ():
            ports.notifier().mob_event(mob_id, name, payload)

    @event.listens_for(session_factory, "after_rollback")
    def _after_rollback(session):
        session.info.pop("goodmob.emits", None)


# --- organizer controls ---------------------------------------------------------------------


def _require_scheduled(mob: Mob, what: str) -> None:
    if mob.status == "draft":
        raise ApiError(409, "mob_not_published", f"Publish the mob before you {what}.")
    if mob.status == "action":
        raise ApiError(409, "mob_started", f"The action has started; it is too late to {what}.")
    if mob.status in CLOSED_STATUSES:
        raise ApiError(409, "mob_closed", f"The mob is {mob.status}; it can no longer change.")


def _reschedule(
    session: Session, mob: Mob, go_at: datetime, settings: Settings, now: datetime
) -> None:
    """Move GO to ``go_at`` with a compare-and-set on the version and status seen."""
    gather_at = go_at - timedelta(seconds=settings.gather_lead_s)
    countdown_at = go_at - timedelta(seconds=settings.countdown_lead_s)
    end_at = go_at + timedelta(seconds=mob.duration_s)
    # The phase the new schedule gives now; a postponed countdown goes back to gathering.
    probe = SimpleNamespace(
        gather_at=gather_at, countdown_at=countdown_at, go_at=go_at, end_at=end_at
    )
    status = phase_at(probe, now)
    if rank(status) < rank("published"):
        status = "published"
    if rank(status) > rank(mob.status):
        status = mob.status  # moving forward is the scheduler's job: it emits the phase
    table = Mob.__table__
    claimed = session.execute(
        update(table)
        .where(
            table.c.pk == mob.pk,
            table.c.status == mob.status,
            table.c.timeline_version == mob.timeline_version,
        )
        .values(
            go_at=go_at,
            gather_at=gather_at,
            countdown_at=countdown_at,
            end_at=end_at,
            status=status,
            timeline_version=table.c.timeline_version + 1,
            updated_at=now,
        )
    ).rowcount
    session.refresh(mob)
    if not claimed:
        raise ApiError(
            409,
            "timeline_changed",
            f"The timeline changed meanwhile (now version {mob.timeline_version}, "
            f"{mob.status}); look again and retry.",
        )
    record_event(session, mob, "timeline", {"timeline": timeline_json(mob)}, settings)


def record_notice(session: Session, mob: Mob, kind: str, now: datetime | None = None) -> None:
    """Queue a push notice about a new timeline of ``mob`` (its current version) in the same
    transaction; the scheduler sends it to the people who asked (server.domain.reminders)."""
    if mob.status == "draft":
        return
    notice = MobNotice(
        mob_pk=mob.pk, kind=kind, timeline_version=mob.timeline_version, created_at=now or utcnow()
    )
    try:
        with session.begin_nested():  # a concurrent cancel of the same version recorded it
            session.add(notice)
    except IntegrityError:
        pass


def start_now(
    session: Session,
    mob: Mob,
    lead_s: int | None,
    settings: Settings,
    now: datetime | None = None,
) -> Mob:
    """GO in ``lead_s`` seconds (default START_NOW_LEAD_S), long enough for every phone."""
    now = now or utcnow()
    _require_scheduled(mob, "start it now")
    lead_s = settings.start_now_lead_s if lead_s is None else lead_s
    if lead_s < settings.start_now_min_lead_s:
        raise ApiError(
            422,
            "lead_too_short",
            f"lead_s must be at least {settings.start_now_min_lead_s} s so that every phone "
            "hears about GO in time.",
            {"field": "lead_s"},
        )
    _reschedule(session, mob, now + timedelta(seconds=lead_s), settings, now)
    record_notice(session, mob, "started_now", now)
    return mob


def postpone(
    session: Session, mob: Mob, go_at: datetime, settings: Settings, now: datetime | None = None
) -> Mob:
    """Move GO later, to ``go_at``."""
    now = now or utcnow()
    _require_scheduled(mob, "postpone it")
    if go_at <= mob.go_at:
        raise ApiError(
            422,
            "postpone_not_later",
            f"The new go_at {go_at.isoformat()} is not later than the current one "
            f"{mob.go_at.isoformat()}; use start-now to bring GO forward.",
            {"field": "go_at"},
        )
    if go_at < now + timedelta(seconds=settings.start_now_min_lead_s):
        raise ApiError(
            422,
            "lead_too_short",
            f"The new go_at must be at least {settings.start_now_min_lead_s} s from now.",
            {"field": "go_at"},
        )
    _reschedule(session, mob, go_at, settings, now)
    record_notice(session, mob, "postponed", now)
    return mob


def announce(
    session: Session, mob: Mob, text: str, settings: Settings, now: datetime | None = None
) -> dict:
    """Send an organizer's message to everyone of the mob; returns the event payload."""
    now = now or utcnow()
    if mob.status == "draft":
        raise ApiError(409, "mob_not_published", "Publish the mob before you announce.")
    if mob.status in CLOSED_STATUSES:
        raise ApiError(409, "mob_closed", f"The mob is {mob.status}.")
    return record_event(session, mob, "announcement", {"text": text, "at_ms": ms(now)}, settings)


def cancel(session: Session, mob: Mob, settings: Settings, now: datetime | None = None) -> Mob:
    """Cancel the mob (see ``mobs.cancel_mob``) and tell everyone: timeline and phase."""
    before = mob.status
    mobs.cancel_mob(session, mob, now)
    if before != "cancelled":
        if before != "draft":
            record_notice(session, mob, "cancelled", mob.cancelled_at)
        record_event(session, mob, "timeline", {"timeline": timeline_json(mob)}, settings)
        record_event(
            session,
            mob,
            "phase",
            {
                "phase": "cancelled",
                "timeline_version": mob.timeline_version,
                "at_ms": ms(mob.cancelled_at),
            },
            settings,
        )
    return mob
