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
    go_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    duration_s: Mapped[int] = mapped_column(Integer, nullable=False)
    # go_at + duration_s, stored so the scheduler can find due mobs with one indexed query.
    end_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    timeline_version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    # Highest sequence number given to a server→client event of this mob (see MobEvent).
    event_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
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
