"""Organizer sessions: one row per log-in, named by its token, deleted by log-out.

Organizer tokens issued before this migration name no session and are refused: organizers
log in again once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from server.infra.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizer_sessions",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column(
            "organizer_id",
            sa.Integer,
            sa.ForeignKey("organizers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_organizer_sessions_organizer_id", "organizer_sessions", ["organizer_id"])


def downgrade() -> None:
    op.drop_index("ix_organizer_sessions_organizer_id", table_name="organizer_sessions")
    op.drop_table("organizer_sessions")
