"""Participants (latest fix only, assignment, referral) and deeds; task load for atomic claims.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from server.infra.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("assigned", sa.Integer, nullable=False, server_default="0"))
        batch.create_check_constraint("ck_tasks_assigned", "assigned >= 0 AND assigned <= capacity")
    op.create_table(
        "participants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "mob_pk", sa.Integer, sa.ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("nickname", sa.String(40), nullable=False),
        sa.Column("nickname_chosen", sa.Boolean, nullable=False),
        sa.Column("ref_code", sa.String(16), nullable=False, unique=True),
        sa.Column(
            "referred_by_id",
            sa.Integer,
            sa.ForeignKey("participants.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column(
            "task_id", sa.Integer, sa.ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("lat", sa.Float, nullable=True),
        sa.Column("lon", sa.Float, nullable=True),
        sa.Column("accuracy_m", sa.Float, nullable=True),
        sa.Column("fix_at", UTCDateTime, nullable=True),
        sa.Column("zone_state", sa.String(10), nullable=True),
        sa.Column("entered_zone_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_participants_mob_pk", "participants", ["mob_pk"])
    op.create_index("ix_participants_task_id", "participants", ["task_id"])
    op.create_table(
        "deeds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("deed_id", sa.String(36), nullable=False, unique=True),
        sa.Column(
            "mob_pk", sa.Integer, sa.ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "participant_id",
            sa.Integer,
            sa.ForeignKey("participants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "task_id", sa.Integer, sa.ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("distance_m", sa.Float, nullable=True),
        sa.Column("accuracy_m", sa.Float, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("reviewed_at", UTCDateTime, nullable=True),
        sa.CheckConstraint(
            "status IN ('accepted', 'flagged', 'approved', 'rejected')", name="ck_deeds_status"
        ),
    )
    op.create_index("ix_deeds_mob_pk_status", "deeds", ["mob_pk", "status"])


def downgrade() -> None:
    op.drop_table("deeds")
    op.drop_table("participants")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint("ck_tasks_assigned", type_="check")
        batch.drop_column("assigned")
