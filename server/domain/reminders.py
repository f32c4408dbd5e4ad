"""Reminders before GO and notices of a changed timeline, by Web Push (issue 19 item 3).

Who: the mob's joined participants who gave a push subscription
(``PUT /api/mobs/{id}/participants/me/push-subscription``) and the followers who asked for
this mob's reminders (``PUT /api/followers/me/reminders/{id}``) and have a subscription. One
device that is both is told once (as the participant).

What and when, decided by the phase scheduler of every process (``tick``):

* a *reminder* ``remind_<s>`` at each ``REMINDER_OFFSETS_S`` (default 24 h, 1 h, 10 min)
  before the current ``go_at``. Only the latest one that is due is sent, and only within
  ``REMINDER_LATE_MAX_S`` of its time and not before the timeline it belongs to was set (a
  reminder whose new time had already passed when the mob was postponed is not sent: the
  postpone notice told them);
* a *notice* for each timeline change written in the change's transaction
  (``timeline.record_notice``, the ``mob_notices`` outbox): ``postponed``, ``started_now``,
  ``rescheduled`` (a new ``go_at`` through PATCH), ``cancelled``; a notice superseded by a
  later change is not sent.

Exactly once: a push is claimed by inserting ``(mob, recipient, kind, timeline_version)`` into
``push_claims`` (unique) before it is sent; whichever process inserts the row sends it. A
claim is made when its push is due, from the current ``go_at``, so a postpone moves every
reminder not yet sent to its new time; the version in the key makes a notice once per change,
and a reminder already sent to someone is not sent to them again after a postpone (once per
person, mob and kind).
Rehearsals get nothing unless ``REMINDER_REHEARSALS``.

Sending runs in a background task (like the publish pushes of ``follows``), at most
``PUSH_RATE_PER_S`` pushes per second per process; a push service answering 404/410 has the
subscription deleted, 429/5xx and network errors are retried with a doubling back-off
(``Retry-After`` honoured, at most 60 s) up to ``PUSH_MAX_ATTEMPTS``. Payloads carry no
position and no token: a title, a body, the mob's id, URL, ``go_at_ms`` and a tag per mob.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from config import Settings
from server.domain import follows, ports, timeline
from server.infra.errors import ApiError
from server.infra.models import (
    Follower,
    Mob,
    MobNotice,
    Participant,
    ParticipantPushSubscription,
    PushClaim,
    PushSubscription,
    ReminderOptIn,
    utcnow,
)

__all__ = [
    "REMINDED_STATUSES",
    "set_participant_push",
    "clear_participant_push",
    "opt_in",
    "opt_out",
    "due_pushes",
    "claim",
    "notification",
    "tick",
]

log = logging.getLogger("goodmob.reminders")

# Reminders and postpone/start-now notices go to mobs not yet in action.
REMINDED_STATUSES = ("published", "gathering", "countdown")
RETRY_AFTER_MAX_S = 60.0
CLAIM_CHUNK = 500


# --- who asked -------------------------------------------------------------------------------


def set_participant_push(
    session: Session, participant: Participant, data: dict, settings: Settings
) -> ParticipantPushSubscription:
    """Store a joined participant's PushSubscription (replacing theirs) for this mob's
    reminders and notices."""
    endpoint, p256dh, auth = follows.parse_push_subscription(data, settings)
    clear_participant_push(session, participant)
    subscription = ParticipantPushSubscription(
        participant_id=participant.id, endpoint=endpoint, p256dh=p256dh, auth=auth, failures=0
    )
    session.add(subscription)
    session.flush()
    return subscription


def clear_participant_push(session: Session, participant: Participant) -> None:
    session.execute(
        delete(ParticipantPushSubscription).where(
            ParticipantPushSubscription.participant_id == participant.id
        )
    )


def opt_in(session: Session, follower: Follower, mob: Mob) -> bool:
    """The follower gets ``mob``'s reminders and notices (on their push subscription);
    True when this is new."""
    if mob.status == "draft":
        raise ApiError(404, "mob_not_found", f"No mob {mob.id}.")
    if session.get(ReminderOptIn, (follower.id, mob.pk)) is not None:
        return False
    session.add(ReminderOptIn(follower_id=follower.id, mob_pk=mob.pk))
    session.flush()
    return True


def opt_out(session: Session, follower: Follower, mob: Mob) -> None:
    session.execute(
        delete(ReminderOptIn).where(
            ReminderOptIn.follower_id == follower.id, ReminderOptIn.mob_pk == mob.pk
        )
    )


# --- what is due -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """One push of one kind due to everyone of one mob's timeline."""

    mob: Mob
    kind: str  # remind_<offset s> or a notice kind
    version: int
    offset_s: int | None = None  # reminders


def _reminder_of(mob: Mob, settings: Settings, set_at: datetime | None, now: datetime):
    """The latest reminder of ``mob`` due at ``now``, or None."""
    late = timedelta(seconds=settings.reminder_late_max_s)
    for offset in sorted(settings.reminder_offsets):  # smallest (latest) first
        due_at = mob.go_at - timedelta(seconds=offset)
        if due_at > now:
            continue
        if due_at < now - late or (set_at is not None and due_at < set_at):
            return None
        return Due(mob, f"remind_{offset}", mob.timeline_version, offset)
    return None


def due_pushes(
    session: Session, settings: Settings, now: datetime, handled=frozenset()
) -> list[Due]:
    """Every reminder and notice due at ``now`` (whether or not someone already claimed it),
    but those whose ``(mob pk, kind, version)`` is in ``handled``."""
    late = timedelta(seconds=settings.reminder_late_max_s)
    found: list[Due] = []
    windows = [
        and_(
            Mob.go_at >= now + timedelta(seconds=o) - late,
            Mob.go_at <= now + timedelta(seconds=o),
        )
        for o in settings.reminder_offsets
    ]
    rehearsal = [] if settings.reminder_rehearsals else [Mob.rehearsal.is_(False)]
    if windows:
        mobs = session.scalars(
            select(Mob).where(Mob.status.in_(REMINDED_STATUSES), or_(*windows), *rehearsal)
        ).all()
        for mob in mobs:
            due = _reminder_of(mob, settings, None, now)
            if due is None or (mob.pk, due.kind, due.version) in handled:
                continue
            set_at = mob.published_at
            notice_at = session.scalar(
                select(MobNotice.created_at).where(
                    MobNotice.mob_pk == mob.pk, MobNotice.timeline_version == mob.timeline_version
                )
            )
            if notice_at is not None and (set_at is None or notice_at > set_at):
                set_at = notice_at
            due = _reminder_of(mob, settings, set_at, now)
            if due is not None:
                found.append(due)
    rows = session.execute(
        select(MobNotice, Mob)
        .join(Mob, Mob.pk == MobNotice.mob_pk)
        .where(MobNotice.created_at >= now - late, MobNotice.created_at <= now, *rehearsal)
        .order_by(MobNotice.id)
    ).all()
    for notice, mob in rows:
        if notice.timeline_version != mob.timeline_version:
            continue  # superseded by a later change: that one is told
        if notice.kind != "cancelled" and mob.status not in REMINDED_STATUSES:
            continue
        if (mob.pk, notice.kind, notice.timeline_version) in handled:
            continue
        found.append(Due(mob, notice.kind, notice.timeline_version))
    return found


@dataclass(frozen=True)
class Target:
    recipient: str  # p<participant id> | f<follower id>
    table: str  # "p" | "f": which subscription table
    subscription_id: int
    endpoint: str
    keys: dict


def _targets(session: Session, mob: Mob) -> list[Target]:
    out: list[Target] = []
    endpoints: set[str] = set()
    rows = session.execute(
        select(ParticipantPushSubscription, Participant.id)
        .join(Participant, Participant.id == ParticipantPushSubscription.participant_id)
        .where(Participant.mob_pk == mob.pk)
        .order_by(ParticipantPushSubscription.id)
    ).all()
    for sub, pid in rows:
        if sub.endpoint not in endpoints:
            endpoints.add(sub.endpoint)
            keys = {"p256dh": sub.p256dh, "auth": sub.auth}
            out.append(Target(f"p{pid}", "p", sub.id, sub.endpoint, keys))
    subs = session.scalars(
        select(PushSubscription)
        .join(ReminderOptIn, ReminderOptIn.follower_id == PushSubscription.follower_id)
        .where(ReminderOptIn.mob_pk == mob.pk)
        .order_by(PushSubscription.id)
    ).all()
    for sub in subs:
        if sub.endpoint not in endpoints:
            endpoints.add(sub.endpoint)
            keys = {"p256dh": sub.p256dh, "auth": sub.auth}
            out.append(Target(f"f{sub.follower_id}", "f", sub.id, sub.endpoint, keys))
    return out


def _insert(session: Session):
    return (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert


def claim(session: Session, due: Due, now: datetime) -> list[Target]:
    """Claim ``due`` for every target not yet claimed (by any process); the targets this call
    claimed, to be sent. Does not commit."""
    targets = _targets(session, due.mob)
    if targets and due.offset_s is not None:  # a reminder sent before a postpone is not repeated
        sent = set(
            session.scalars(
                select(PushClaim.recipient).where(
                    PushClaim.mob_pk == due.mob.pk, PushClaim.kind == due.kind
                )
            )
        )
        targets = [t for t in targets if t.recipient not in sent]
    if not targets:
        return []
    table = PushClaim.__table__
    won: set[str] = set()
    for i in range(0, len(targets), CLAIM_CHUNK):
        rows = [
            {
                "mob_pk": due.mob.pk,
                "recipient": t.recipient,
                "kind": due.kind,
                "timeline_version": due.version,
                "claimed_at": now,
            }
            for t in targets[i : i + CLAIM_CHUNK]
        ]
        stmt = (
            _insert(session)(table)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(table.c.recipient)
        )
        won.update(session.execute(stmt).scalars())
    return [t for t in targets if t.recipient in won]


# --- telling them ----------------------------------------------------------------------------


def _human(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds >= 2 * 86400 - 1800:
        return f"{round(seconds / 86400)} days"
    if seconds >= 86400 - 1800:
        return "24 hours"
    if seconds >= 3600 - 30:
        hours = round(seconds / 3600)
        return "1 hour" if hours == 1 else f"{hours} hours"
    if seconds >= 60:
        minutes = round(seconds / 60)
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return "1 second" if seconds == 1 else f"{seconds} seconds"


def notification(due: Due, now: datetime) -> dict:
    """What the service worker shows: no position, no token."""
    mob = due.mob
    until = _human((mob.go_at - now).total_seconds())
    if due.offset_s is not None:
        title, body = f"GO in {_human(due.offset_s)}: {mob.title}", "Open the mob to get ready."
    elif due.kind == "cancelled":
        title, body = f"Called off: {mob.title}", "The organizer cancelled this mob."
    elif due.kind == "started_now":
        title, body = f"Starting now: {mob.title}", f"GO in {until}. Open the mob."
    elif due.kind == "postponed":
        title, body = f"Postponed: {mob.title}", f"GO is now in {until}."
    else:
        title, body = f"New time: {mob.title}", f"GO is now in {until}."
    return {
        "type": "reminder" if due.offset_s is not None else "notice",
        "kind": due.kind,
        "title": title,
        "body": body,
        "tag": f"mob-{mob.id}",
        "url": f"/m/{mob.id}",
        "mob": {
            "id": mob.id,
            "url": f"/m/{mob.id}",
            "status": mob.status,
            "go_at_ms": timeline.ms(mob.go_at),
            "timeline_version": mob.timeline_version,
        },
    }


class RateGate:
    """At most ``rate`` passes per second, shared by every sender of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self, rate: float) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / rate
        if slot > now:
            ports.host().sleep(slot - now)


gate = RateGate()


def _retry_delay(exc, attempt: int, settings: Settings) -> float:
    delay = settings.push_retry_base_s * (2**attempt)
    after = getattr(exc, "retry_after", None)
    if after:
        with contextlib.suppress(ValueError):  # an HTTP date: keep the back-off
            delay = max(delay, float(after))
    return min(delay, RETRY_AFTER_MAX_S)


def send_all(sessions, batch: list[tuple[Target, str, int]], settings: Settings) -> dict:
    """Send ``(target, data, ttl_s)`` pushes; retry 429/5xx and network errors; delete the
    subscriptions that are gone (404/410). Returns counts."""
    from pywebpush import WebPushException  # heavy: loaded when a push is sent

    try:
        key = follows.vapid_key(settings)
    except ApiError as exc:
        log.warning("reminders not sent: %s", exc.message)
        return {"sent": 0, "gone": 0, "failed": len(batch)}
    subject = settings.vapid_subject or follows.VAPID_SUBJECT_DEFAULT
    pending = list(batch)
    sent, gone, failed = 0, [], []
    for attempt in range(settings.push_max_attempts):
        retry: list = []
        delay = 0.0
        for item in pending:
            target, data, ttl_s = item
            gate.wait(settings.push_rate_per_s)
            sub = {"endpoint": target.endpoint, "keys": target.keys}
            try:
                follows.send_push(sub, data, key, subject, ttl_s)
                sent += 1
            except WebPushException as exc:
                status = exc.status_code
                if status in (404, 410):
                    gone.append(target)
                elif status == 429 or (status is not None and status >= 500):
                    retry.append(item)
                    delay = max(delay, _retry_delay(exc, attempt, settings))
                else:
                    failed.append(target)
                log.info("push %s to %s: %s", attempt + 1, target.recipient, status)
            except Exception:  # network error
                retry.append(item)
                delay = max(delay, _retry_delay(None, attempt, settings))
                log.info("push %s to %s failed", attempt + 1, target.recipient, exc_info=True)
        pending = retry
        if not pending:
            break
        if attempt + 1 < settings.push_max_attempts:
            ports.host().sleep(delay)
    failed += [t for t, _, _ in pending]
    if gone or failed:
        _forget(sessions, gone, failed)
    return {"sent": sent, "gone": len(gone), "failed": len(failed)}


def _forget(sessions, gone: list[Target], failed: list[Target]) -> None:
    tables = {"p": ParticipantPushSubscription, "f": PushSubscription}
    session = sessions()
    try:
        for letter, model in tables.items():
            ids = [t.subscription_id for t in gone if t.table == letter]
            if ids:
                session.execute(delete(model).where(model.id.in_(ids)))
            ids = [t.subscription_id for t in failed if t.table == letter]
            if ids:
                session.execute(
                    update(model).where(model.id.in_(ids)).values(failures=model.failures + 1)
                )
        session.commit()
    finally:
        session.close()


# --- the scheduler's pass --------------------------------------------------------------------

# (mob pk, kind, version) → monotonic time until which this process need not look again
_handled: dict[tuple[int, str, int], float] = {}


def _ttl_s(due: Due, now: datetime) -> int:
    if due.kind == "cancelled":
        return 6 * 3600
    return int(min(follows.PUSH_TTL_MAX_S, max(60, (due.mob.go_at - now).total_seconds())))


def tick(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Claim what is due and start sending it in the background; returns how many pushes this
    process claimed. Commits its claims."""
    now = now or utcnow()
    mono = time.monotonic()
    for key in [k for k, until in _handled.items() if until < mono]:
        del _handled[key]
    batch: list[tuple[Target, str, int]] = []
    for due in due_pushes(session, settings, now, _handled):
        key = (due.mob.pk, due.kind, due.version)
        targets = claim(session, due, now)
        session.commit()
        _handled[key] = mono + settings.reminder_late_max_s + 1
        if targets:
            data = json.dumps(notification(due, now))
            batch += [(t, data, _ttl_s(due, now)) for t in targets]
            log.info("mob %s: %s to %d people", due.mob.id, due.kind, len(targets))
    session.commit()
    if batch:
        app = ports.host().app()
        if app is None:
            log.warning("reminders claimed without an app: not sent (%d)", len(batch))
            return len(batch)
        sessions = app.extensions["goodmob.sessions"]
        ports.host().spawn(send_all, sessions, batch, settings)
    return len(batch)
