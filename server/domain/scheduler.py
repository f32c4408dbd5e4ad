"""The phase scheduler: every server process runs it; the database decides who emits.

Each loop finds the mobs whose stored schedule says they are due for a later phase and moves
each with a compare-and-set (``UPDATE mobs SET status=:next WHERE pk=:pk AND status=:current
AND timeline_version=:seen``). Only the process whose update matched a row records and emits
the ``phase`` event, so each transition is announced exactly once, whichever process wins.
Nothing is kept in memory between loops: a process started late or restarted mid-mob reads
the schedule and catches up (a mob overdue by several phases jumps straight to the current
one, with one event).

Between loops the scheduler sleeps until the next due time, at most SCHEDULER_MAX_SLEEP_S,
so a transition is emitted within a few milliseconds of its time and a schedule changed by
another process is seen quickly.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from config import Settings
from server.domain import ports, positions, rebalance, reminders, timeline
from server.infra import metrics
from server.infra.models import Mob, Task, utcnow

__all__ = ["advance", "due_mobs", "next_due_at", "purge_ended", "tick", "run"]

log = logging.getLogger("goodmob.scheduler")

# Seconds the loop waits after an unexpected error (e.g. the database is unreachable).
_ERROR_BACKOFF_S = 1.0
# The last time (monotonic) a loop of this process completed, for readiness checks.
last_tick_monotonic: float | None = None


def _due_clause(now: datetime):
    return or_(
        and_(Mob.status == "published", Mob.gather_at <= now),
        and_(Mob.status == "gathering", Mob.countdown_at <= now),
        and_(Mob.status == "countdown", Mob.go_at <= now),
        and_(Mob.status == "action", Mob.end_at <= now),
    )


def due_mobs(session: Session, now: datetime) -> list[Mob]:
    """Mobs whose schedule says they should already be in a later phase."""
    return list(session.scalars(select(Mob).where(_due_clause(now)).order_by(Mob.pk)))


def next_due_at(session: Session) -> datetime | None:
    """The earliest upcoming phase change of any scheduled mob."""
    upcoming = case(
        (Mob.status == "published", Mob.gather_at),
        (Mob.status == "gathering", Mob.countdown_at),
        (Mob.status == "countdown", Mob.go_at),
        else_=Mob.end_at,
    )
    value = session.scalar(
        select(func.min(upcoming)).where(Mob.status.in_(timeline.SCHEDULED_STATUSES))
    )
    if isinstance(value, str):  # SQLite returns MIN() over a CASE as text
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def advance(session: Session, mob: Mob, now: datetime, settings: Settings) -> str | None:
    """Move ``mob`` to the phase its schedule gives at ``now``; the new phase if this call
    made the change, else None (nothing due, or another process was first)."""
    target = timeline.phase_at(mob, now)
    before = mob.status
    changed_at = mob.updated_at  # a mob published (or moved) after its phase was due
    if timeline.rank(target) <= timeline.rank(before):
        return None
    table = Mob.__table__
    claimed = session.execute(
        update(table)
        .where(
            table.c.pk == mob.pk,
            table.c.status == before,
            table.c.timeline_version == mob.timeline_version,
        )
        .values(status=target, updated_at=now)
    ).rowcount
    if not claimed:
        session.rollback()
        return None
    session.refresh(mob)
    crosses_countdown = timeline.rank(before) < timeline.rank("countdown") <= timeline.rank(target)
    moved: list = []
    if crosses_countdown and target != "finished":
        moved = rebalance.rebalance_mob(session, mob, arrived_m=settings.deed_radius_m)
    timeline.record_event(
        session,
        mob,
        "phase",
        {
            "phase": target,
            "timeline_version": mob.timeline_version,
            "at_ms": timeline.ms(timeline.phase_started_at(mob, target)),
        },
        settings,
    )
    session.commit()
    if moved:
        tasks = [(pid, session.get(Task, tid) if tid else None) for pid, tid in moved]
        ports.notifier().tasks_assigned(session, tasks)
    # How late the change came after it was due: its scheduled time, or the mob's last change
    # when that came later (a mob published with its countdown already running is not late).
    due = timeline.phase_started_at(mob, target)
    if changed_at is not None and changed_at > due:
        due = changed_at
    lateness_ms = (now - due).total_seconds() * 1000
    metrics.scheduler_lag(lateness_ms / 1000, target)
    log.info("mob %s: %s → %s (%.0f ms after its time)", mob.id, before, target, lateness_ms)
    return target


def purge_ended(session: Session, now: datetime, settings: Settings) -> int:
    """Delete the raw positions of mobs that ended (after the deed grace period) or were
    cancelled; returns how many mobs were purged."""
    grace = timedelta(seconds=settings.deed_grace_s)
    ended = session.scalars(
        select(Mob).where(
            Mob.positions_purged_at.is_(None),
            or_(
                Mob.status == "cancelled",
                and_(Mob.status == "finished", Mob.end_at <= now - grace),
            ),
        )
    ).all()
    for mob in ended:
        positions.purge_positions(session, mob)
        mob.positions_purged_at = now
    if ended:
        session.commit()
    return len(ended)


def tick(session: Session, settings: Settings, now: datetime | None = None) -> float:
    """One loop: advance every due mob, purge ended ones, claim and start the reminders and
    notices that are due (server.domain.reminders); returns seconds to sleep."""
    global last_tick_monotonic
    now = now or utcnow()
    for mob in due_mobs(session, now):
        try:
            advance(session, mob, now, settings)
        except Exception:
            session.rollback()
            log.exception("mob %s: phase change failed; retrying next loop", mob.id)
    purge_ended(session, now, settings)
    try:
        reminders.tick(session, settings, now)
    except Exception:
        session.rollback()
        log.exception("reminders failed; retrying next loop")
    upcoming = next_due_at(session)
    session.commit()  # end the read transaction so the next loop sees other processes' work
    last_tick_monotonic = time.monotonic()
    metrics.scheduler_ticked()
    wait = settings.scheduler_max_sleep_s
    if upcoming is not None:
        wait = min(wait, max(0.001, (upcoming - utcnow()).total_seconds()))
    return wait


def run(app, stop=lambda: False) -> None:
    """The loop; runs until ``stop()`` is true. Start it as a background task."""
    settings = app.config["SETTINGS"]
    sessions = app.extensions["goodmob.sessions"]
    log.info("phase scheduler started")
    while not stop():
        with app.app_context():
            session = sessions()
            try:
                wait = tick(session, settings)
            except Exception:
                session.rollback()
                log.exception("scheduler loop failed; retrying in %.1f s", _ERROR_BACKOFF_S)
                wait = _ERROR_BACKOFF_S
            finally:
                session.close()
        ports.host().sleep(wait)
