"""Reminders and notices by Web Push (issue 19): participants' push subscriptions, followers'
reminder opt-ins, the notice outbox and the push claims (exactly once across processes).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from server.infra.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "participant_push_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "participant_id",
            sa.Integer,
            sa.ForeignKey("participants.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("endpoint", sa.String(1024), nullable=False),
        sa.Column("p256dh", sa.String(200), nullable=False),
        sa.Column("auth", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "reminder_optins",
        sa.Column(
            "follower_id",
            sa.Integer,
            sa.ForeignKey("followers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "mob_pk", sa.Integer, sa.ForeignKey("mobs.pk", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_reminder_optins_mob_pk", "reminder_optins", ["mob_pk"])
    op.create_table(
        "mob_notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "mob_pk", sa.Integer, sa.ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("timeline_version", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("mob_pk", "timeline_version", name="uq_mob_notices_version"),
        sa.CheckConstraint(
            "kind IN ('postponed', 'started_now', 'rescheduled', 'cancelled')",
            name="ck_mob_notices_kind",
        ),
    )
    op.create_index("ix_mob_notices_mob_pk", "mob_notices", ["mob_pk"])
    op.create_index("ix_mob_notices_created_at", "mob_notices", ["created_at"])
    op.create_table(
        "push_claims",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "mob_pk", sa.Integer, sa.ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("recipient", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("timeline_version", sa.BigInteger, nullable=False),
        sa.Column("claimed_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint(
            "mob_pk", "recipient", "kind", "timeline_version", name="uq_push_claims_once"
        ),
    )
    # GO is what reminders are found by
    op.create_index("ix_mobs_go_at", "mobs", ["go_at"])


def downgrade() -> None:
    op.drop_index("ix_mobs_go_at", table_name="mobs")
    op.drop_table("push_claims")
    op.drop_index("ix_mob_notices_created_at", table_name="mob_notices")
    op.drop_index("ix_mob_notices_mob_pk", table_name="mob_notices")
    op.drop_table("mob_notices")
    op.drop_index("ix_reminder_optins_mob_pk", table_name="reminder_optins")
    op.drop_table("reminder_optins")
    op.drop_table("participant_push_subscriptions")
