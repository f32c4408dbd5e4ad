"""Growth: campaigns, per-mob growth data (campaign, time zone, share code), organizer referrals,
view counts, followers and their follows and Web Push subscriptions, publish notices, sponsors
and pledges.

Nothing is added to ``mobs`` itself (new tables only): on SQLite a rebuilt ``mobs`` table would
lose SpatiaLite's spatial-index triggers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from server.infra.models import FOLLOW_KINDS, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _fk(column: str, target: str, ondelete: str = "CASCADE", **kw) -> sa.Column:
    return sa.Column(column, sa.Integer, sa.ForeignKey(target, ondelete=ondelete), **kw)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("id", sa.String(16), nullable=False, unique=True),
        _fk("organizer_id", "organizers.id", nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("go_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_campaigns_organizer_id", "campaigns", ["organizer_id"])
    op.create_table(
        "mob_growth",
        _fk("mob_pk", "mobs.pk", primary_key=True),
        _fk("campaign_pk", "campaigns.pk", ondelete="SET NULL", nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=True),
        sa.Column("share_code", sa.String(16), nullable=True, unique=True),
    )
    op.create_index("ix_mob_growth_campaign_pk", "mob_growth", ["campaign_pk"])
    op.create_table(
        "organizer_referrals",
        _fk("participant_id", "participants.id", primary_key=True),
        _fk("mob_pk", "mobs.pk", nullable=False),
    )
    op.create_index("ix_organizer_referrals_mob_pk", "organizer_referrals", ["mob_pk"])
    op.create_table(
        "mob_views",
        _fk("mob_pk", "mobs.pk", primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("views", sa.Integer, nullable=False),
    )
    op.create_table(
        "followers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("public_id", sa.String(16), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer, primary_key=True),
        _fk("follower_id", "followers.id", nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        _fk("organizer_id", "organizers.id", nullable=True),
        sa.Column("lat", sa.Float, nullable=True),
        sa.Column("lon", sa.Float, nullable=True),
        sa.Column("radius_m", sa.Float, nullable=True),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(f"kind IN {FOLLOW_KINDS!r}", name="ck_follows_kind"),
    )
    op.create_index("ix_follows_follower_id", "follows", ["follower_id"])
    op.create_index("ix_follows_organizer_id", "follows", ["organizer_id"])
    op.create_index("ix_follows_place", "follows", ["kind", "lat", "lon"])
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        _fk("follower_id", "followers.id", nullable=False, unique=True),
        sa.Column("endpoint", sa.String(1024), nullable=False),
        sa.Column("p256dh", sa.String(200), nullable=False),
        sa.Column("auth", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "publish_notices",
        _fk("mob_pk", "mobs.pk", primary_key=True),
        sa.Column("followers", sa.Integer, nullable=False),
        sa.Column("notified_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "sponsors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("public_id", sa.String(16), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "pledges",
        sa.Column("id", sa.Integer, primary_key=True),
        _fk("sponsor_id", "sponsors.id", nullable=False),
        _fk("mob_pk", "mobs.pk", nullable=True),
        _fk("campaign_pk", "campaigns.pk", nullable=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("cap_minor", sa.BigInteger, nullable=True),
        sa.Column("threshold_deeds", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("amount_minor > 0", name="ck_pledges_amount"),
        sa.CheckConstraint("cap_minor IS NULL OR cap_minor > 0", name="ck_pledges_cap"),
        sa.CheckConstraint(
            "threshold_deeds IS NULL OR threshold_deeds > 0", name="ck_pledges_threshold"
        ),
        sa.CheckConstraint("(mob_pk IS NULL) <> (campaign_pk IS NULL)", name="ck_pledges_target"),
    )
    op.create_index("ix_pledges_sponsor_id", "pledges", ["sponsor_id"])
    op.create_index("ix_pledges_mob_pk", "pledges", ["mob_pk"])
    op.create_index("ix_pledges_campaign_pk", "pledges", ["campaign_pk"])


def downgrade() -> None:
    for table in (
        "pledges",
        "sponsors",
        "publish_notices",
        "push_subscriptions",
        "follows",
        "followers",
        "mob_views",
        "organizer_referrals",
        "mob_growth",
        "campaigns",
    ):
        op.drop_table(table)
