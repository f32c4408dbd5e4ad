"""Timeline: stored end time, event sequence and log, rehearsal flag, position purge time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from server.infra.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): rebuilding the table on SQLite would break the
    # SpatiaLite triggers that keep the zone's spatial index.
    op.add_column("mobs", sa.Column("end_at", UTCDateTime, nullable=True))
    op.add_column("mobs", sa.Column("event_seq", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column(
        "mobs", sa.Column("rehearsal", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("mobs", sa.Column("positions_purged_at", UTCDateTime, nullable=True))
    # Existing mobs: end_at = go_at + duration_s, computed in Python (portable across backends).
    mobs = sa.table(
        "mobs",
        sa.column("pk", sa.Integer),
        sa.column("go_at", UTCDateTime),
        sa.column("duration_s", sa.Integer),
        sa.column("end_at", UTCDateTime),
    )
    bind = op.get_bind()
    from datetime import timedelta

    for pk, go_at, duration_s in bind.execute(
        sa.select(mobs.c.pk, mobs.c.go_at, mobs.c.duration_s)
    ):
        bind.execute(
            mobs.update()
            .where(mobs.c.pk == pk)
            .values(end_at=go_at + timedelta(seconds=duration_s))
        )
    if bind.dialect.name == "postgresql":
        # SQLite would rebuild the table for this, losing SpatiaLite's geometry registration;
        # there the model (which always sets end_at) keeps the rule.
        op.alter_column("mobs", "end_at", existing_type=UTCDateTime, nullable=False)
    op.create_index("ix_mobs_status_end_at", "mobs", ["status", "end_at"])
    op.create_table(
        "mob_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "mob_pk", sa.Integer, sa.ForeignKey("mobs.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("mob_pk", "seq", name="uq_mob_events_mob_seq"),
    )


def downgrade() -> None:
    op.drop_table("mob_events")
    op.drop_index("ix_mobs_status_end_at", "mobs")
    for name in ("positions_purged_at", "rehearsal", "event_seq", "end_at"):
        op.drop_column("mobs", name)
