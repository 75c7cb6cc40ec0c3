"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 23:49:20.921278
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "consents",
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("profile_id", "channel"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "seq"),
    )
    op.create_table(
        "event_log",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("anonymous_id", sa.String(length=200), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "traits",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("message_id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.create_index("ix_event_log_profile", ["profile_id"], unique=False)

    op.create_table(
        "identities",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value"),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index("ix_identities_profile", ["profile_id"], unique=False)

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "profile_merges",
        sa.Column("from_profile", sa.String(length=32), nullable=False),
        sa.Column("into_profile", sa.String(length=32), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("from_profile"),
    )
    with op.batch_alter_table("profile_merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_profile_merges_into_profile"), ["into_profile"], unique=False)

    op.create_table(
        "profiles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column(
            "traits",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_profiles_user_id"), ["user_id"], unique=False)

    op.create_table(
        "stream_offsets",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "partition"),
    )


def downgrade() -> None:

    op.drop_table("stream_offsets")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_user_id"))

    op.drop_table("profiles")
    with op.batch_alter_table("profile_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_merges_into_profile"))

    op.drop_table("profile_merges")
    op.drop_table("leases")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_profile")

    op.drop_table("identities")
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.drop_index("ix_event_log_profile")

    op.drop_table("event_log")
    op.drop_table("dead_letters")
    op.drop_table("consents")
