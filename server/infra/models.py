"""SQLAlchemy models: organizers, mobs (zone, schedule, prompts, status) and their tasks.

Models never commit; the request handler commits once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "Organizer",
    "OrganizerSession",
    "Mob",
    "Task",
    "Participant",
    "Deed",
    "MobEvent",
    "MOB_STATUSES",
    "LIVE_STATUSES",
    "CLOSED_STATUSES",
    "utcnow",
]

# draft → published → gathering → countdown → action → finished; cancelled before finished.
MOB_STATUSES = ("draft", "published", "gathering", "countdown", "action", "finished", "cancelled")
# A mob is live from gathering on: its zone no longer changes.
LIVE_STATUSES = ("gathering", "countdown", "action")
# Statuses that a nearby search shows (published, not finished or cancelled).
LISTED_STATUSES = ("published", *LIVE_STATUSES)
# Statuses after which nothing about the mob changes any more.
CLOSED_STATUSES = ("finished", "cancelled")
TASK_STATUSES = ("open", "closed")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: times must carry a zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Organizer(Base):
    __tablename__ = "organizers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    mobs: Mapped[list[Mob]] = relationship(back_populates="organizer")


class OrganizerSession(Base):
    """One log-in of an organizer: its token names it, and is refused once the row is gone
    (log-out deletes it, log-out-everywhere deletes all of the organizer's)."""

    __tablename__ = "organizer_sessions"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)  # random, never reused
    organizer_id: Mapped[int] = mapped_column(
        ForeignKey("organizers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class Mob(Base):
    __tablename__ = "mobs"
    __table_args__ = (
        CheckConstraint(f"status IN {MOB_STATUSES!r}", name="ck_mobs_status"),
        CheckConstraint("duration_s > 0", name="ck_mobs_duration"),
    )

    # INTEGER PRIMARY KEY: on SQLite this is the rowid the spatial index refers to.
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)  # public
    organizer_id: Mapped[int] = mapped_column(
        ForeignKey("organizers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    action: Mapped[str] = mapped_column(Text, nullable=False)  # the prompt shown at GO
    zone = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft", index=True)
    gather_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    countdown_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # indexed: reminders are found by their time before GO (server/domain/reminders.py)
    go_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    duration_s: Mapped[int] = mapped_column(Integer, nullable=False)
    # go_at + duration_s, stored so the scheduler can find due mobs with one indexed query.
    end_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    timeline_version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    # Highest sequence number given to a server→client event of this mob (see MobEvent).
    event_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Bumped by every change to the mob's tasks (added, moved, edited, removed): server
    # processes keep the task points in a k-d tree for matching and the tasks collection
    # (server/domain/views.py), and read them again on a change.
    tasks_version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # A rehearsal runs the whole timeline; its deeds are kept but never counted.
    rehearsal: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # When the raw participant positions were deleted (after the mob ended).
    positions_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    organizer: Mapped[Organizer] = relationship(back_populates="mobs")
    tasks: Mapped[list[Task]] = relationship(
        back_populates="mob", cascade="all, delete-orphan", order_by="Task.id"
    )


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("capacity > 0", name="ck_tasks_capacity"),
        CheckConstraint(f"status IN {TASK_STATUSES!r}", name="ck_tasks_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mob_pk: Mapped[int] = mapped_column(
        ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    point = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    label: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    prompt: Mapped[str] = mapped_column(Text, nullable=False, default="")
    capacity: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # How many participants hold this task; claimed atomically (assigned < capacity).
    assigned: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    mob: Mapped[Mob] = relationship(back_populates="tasks")


class Participant(Base):
    """Someone who joined a mob without an account. Only the latest fix is kept."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mob_pk: Mapped[int] = mapped_column(
        ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    nickname: Mapped[str] = mapped_column(String(40), nullable=False)
    nickname_chosen: Mapped[bool] = mapped_column(Boolean, nullable=False)
    ref_code: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="SET NULL"), nullable=True
    )
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True, index=True
    )
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    fix_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    zone_state: Mapped[str | None] = mapped_column(String(10), nullable=True)
    entered_zone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    mob: Mapped[Mob] = relationship()


class MobEvent(Base):
    """One numbered server→client event of a mob, kept so a reconnecting client can catch up.

    ``seq`` is allocated from ``Mob.event_seq`` in the same transaction as the change the event
    announces, so every process sees one gap-free order per mob.
    """

    __tablename__ = "mob_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mob_pk: Mapped[int] = mapped_column(ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


DEED_STATUSES = ("accepted", "flagged", "approved", "rejected")
# Statuses that count as a deed done.
COUNTED_DEED_STATUSES = ("accepted", "approved")


class Deed(Base):
    """A confirmed deed; ``deed_id`` is the client's UUID, so a replay never counts twice."""

    __tablename__ = "deeds"
    __table_args__ = (CheckConstraint(f"status IN {DEED_STATUSES!r}", name="ck_deeds_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deed_id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    mob_pk: Mapped[int] = mapped_column(ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), nullable=False
    )
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    distance_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# --- Growth (issue 6): campaigns, cascade, views, follows, pledges --------------------------
# Kept in tables of their own beside ``mobs``: on SQLite that table is never rebuilt (it would
# break SpatiaLite's spatial-index triggers), and a mob without growth data needs no row.

from datetime import date  # noqa: E402  (appended section: imports kept with it)

from sqlalchemy import Date, Index  # noqa: E402

FOLLOW_KINDS = ("organizer", "place")


class Campaign(Base):
    """Mobs in several zones that share one GO instant (each shown in its local time)."""

    __tablename__ = "campaigns"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)  # public
    organizer_id: Mapped[int] = mapped_column(
        ForeignKey("organizers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    go_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    organizer: Mapped[Organizer] = relationship()


class MobGrowth(Base):
    """A mob's growth attributes: its campaign, its IANA time zone, the organizer's share code."""

    __tablename__ = "mob_growth"

    mob_pk: Mapped[int] = mapped_column(ForeignKey("mobs.pk", ondelete="CASCADE"), primary_key=True)
    campaign_pk: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.pk", ondelete="SET NULL"), nullable=True, index=True
    )
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The referral code of the organizer's own share link (longer than participants' codes).
    share_code: Mapped[str | None] = mapped_column(String(16), nullable=True, unique=True)

    mob: Mapped[Mob] = relationship()
    campaign: Mapped[Campaign | None] = relationship()


class OrganizerReferral(Base):
    """A participant who joined through the organizer's share link."""

    __tablename__ = "organizer_referrals"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    mob_pk: Mapped[int] = mapped_column(
        ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False, index=True
    )


class MobViewDay(Base):
    """How many distinct clients viewed a mob's page on a day (UTC). No personal data."""

    __tablename__ = "mob_views"

    mob_pk: Mapped[int] = mapped_column(ForeignKey("mobs.pk", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    views: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Follower(Base):
    """Someone who follows organizers or places without an account (id + hashed secret)."""

    __tablename__ = "followers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    follows: Mapped[list[Follow]] = relationship(
        back_populates="follower", cascade="all, delete-orphan", order_by="Follow.id"
    )


class Follow(Base):
    """One thing a follower follows: an organizer, or a place (a circle of ``radius_m``)."""

    __tablename__ = "follows"
    __table_args__ = (
        CheckConstraint(f"kind IN {FOLLOW_KINDS!r}", name="ck_follows_kind"),
        Index("ix_follows_place", "kind", "lat", "lon"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follower_id: Mapped[int] = mapped_column(
        ForeignKey("followers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    organizer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizers.id", ondelete="CASCADE"), nullable=True, index=True
    )
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    radius_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    label: Mapped[str] = mapped_column(String(80), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    follower: Mapped[Follower] = relationship(back_populates="follows")
    organizer: Mapped[Organizer | None] = relationship()


class PushSubscription(Base):
    """A follower's Web Push subscription (one per follower: the device it came from)."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follower_id: Mapped[int] = mapped_column(
        ForeignKey("followers.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    endpoint: Mapped[str] = mapped_column(String(1024), nullable=False)
    p256dh: Mapped[str] = mapped_column(String(200), nullable=False)
    auth: Mapped[str] = mapped_column(String(64), nullable=False)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class PublishNotice(Base):
    """Followers were told about this mob's publication (claimed once, whichever process)."""

    __tablename__ = "publish_notices"

    mob_pk: Mapped[int] = mapped_column(ForeignKey("mobs.pk", ondelete="CASCADE"), primary_key=True)
    followers: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class Sponsor(Base):
    """Someone who pledges money per deed; identified by a token (id + hashed secret)."""

    __tablename__ = "sponsors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class Pledge(Base):
    """``amount_minor`` per verified deed of a mob or a campaign, up to ``cap_minor``, paid only
    when ``threshold_deeds`` (if set) is reached. Integers in the currency's minor unit."""

    __tablename__ = "pledges"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="ck_pledges_amount"),
        CheckConstraint("cap_minor IS NULL OR cap_minor > 0", name="ck_pledges_cap"),
        CheckConstraint(
            "threshold_deeds IS NULL OR threshold_deeds > 0", name="ck_pledges_threshold"
        ),
        CheckConstraint("(mob_pk IS NULL) <> (campaign_pk IS NULL)", name="ck_pledges_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sponsor_id: Mapped[int] = mapped_column(
        ForeignKey("sponsors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    mob_pk: Mapped[int | None] = mapped_column(
        ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=True, index=True
    )
    campaign_pk: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.pk", ondelete="CASCADE"), nullable=True, index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    cap_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    threshold_deeds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    sponsor: Mapped[Sponsor] = relationship()
    mob: Mapped[Mob | None] = relationship()
    campaign: Mapped[Campaign | None] = relationship()


__all__ += [
    "Campaign",
    "MobGrowth",
    "OrganizerReferral",
    "MobViewDay",
    "Follower",
    "Follow",
    "PushSubscription",
    "PublishNotice",
    "Sponsor",
    "Pledge",
    "FOLLOW_KINDS",
]


# --- reminders and notices (issue 19, docs/GROWTH.md "Reminders") ---

from sqlalchemy import UniqueConstraint  # noqa: E402

NOTICE_KINDS = ("postponed", "started_now", "rescheduled", "cancelled")


class ParticipantPushSubscription(Base):
    """A joined participant's Web Push subscription, for the mob's reminders and notices."""

    __tablename__ = "participant_push_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    endpoint: Mapped[str] = mapped_column(String(1024), nullable=False)
    p256dh: Mapped[str] = mapped_column(String(200), nullable=False)
    auth: Mapped[str] = mapped_column(String(64), nullable=False)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class ReminderOptIn(Base):
    """A follower asked for the reminders and notices of one mob."""

    __tablename__ = "reminder_optins"

    follower_id: Mapped[int] = mapped_column(
        ForeignKey("followers.id", ondelete="CASCADE"), primary_key=True
    )
    mob_pk: Mapped[int] = mapped_column(
        ForeignKey("mobs.pk", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class MobNotice(Base):
    """A change of a mob's timeline the scheduler tells its people about (an outbox row, written
    in the transaction of the change): postponed, started now, rescheduled, cancelled."""

    __tablename__ = "mob_notices"
    __table_args__ = (
        UniqueConstraint("mob_pk", "timeline_version", name="uq_mob_notices_version"),
        CheckConstraint(f"kind IN {NOTICE_KINDS!r}", name="ck_mob_notices_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mob_pk: Mapped[int] = mapped_column(
        ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    timeline_version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, index=True
    )


class PushClaim(Base):
    """One push of one kind to one recipient for one timeline of a mob, claimed (inserted)
    before it is sent: the unique key makes it exactly once across processes. ``recipient`` is
    ``f<follower id>`` or ``p<participant id>``; ``kind`` a reminder (``remind_<offset s>``) or
    a notice kind."""

    __tablename__ = "push_claims"
    __table_args__ = (
        UniqueConstraint(
            "mob_pk", "recipient", "kind", "timeline_version", name="uq_push_claims_once"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mob_pk: Mapped[int] = mapped_column(ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False)
    recipient: Mapped[str] = mapped_column(String(24), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    timeline_version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


__all__ += [
    "NOTICE_KINDS",
    "ParticipantPushSubscription",
    "ReminderOptIn",
    "MobNotice",
    "PushClaim",
]
