"""Organizers, mobs with zones and schedule, tasks with points.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from server.infra.models import MOB_STATUSES, TASK_STATUSES, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "mobs",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("id", sa.String(16), nullable=False, unique=True),
        sa.Column(
            "organizer_id",
            sa.Integer,
            sa.ForeignKey("organizers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("zone", Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("gather_at", UTCDateTime, nullable=False),
        sa.Column("countdown_at", UTCDateTime, nullable=False),
        sa.Column("go_at", UTCDateTime, nullable=False),
        sa.Column("duration_s", sa.Integer, nullable=False),
        sa.Column("timeline_version", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=True),
        sa.Column("cancelled_at", UTCDateTime, nullable=True),
        sa.CheckConstraint(f"status IN {MOB_STATUSES!r}", name="ck_mobs_status"),
        sa.CheckConstraint("duration_s > 0", name="ck_mobs_duration"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "mob_pk",
            sa.Integer,
            sa.ForeignKey("mobs.pk", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("point", Geometry("POINT", srid=4326, spatial_index=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("capacity > 0", name="ck_tasks_capacity"),
        sa.CheckConstraint(f"status IN {TASK_STATUSES!r}", name="ck_tasks_status"),
    )


def downgrade() -> None:
    op.drop_table("tasks")
    op.drop_table("mobs")
    op.drop_table("organizers")
