"""Tasks version: a counter on mobs bumped by every change to where a mob's tasks are.

Server processes keep each mob's task points in a k-d tree for matching; the version tells
them when to read the points again (a task added, moved or removed, here or in another
process).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): rebuilding the table on SQLite would break the
    # SpatiaLite triggers that keep the zone's spatial index.
    op.add_column(
        "mobs", sa.Column("tasks_version", sa.BigInteger, nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("mobs", "tasks_version")
