"""segments: definitions, per-profile engine state, memberships with history

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_CURRENT = sa.text("exited_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "segment_definitions",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("trackers", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "segment_states",
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("profile_id"),
    )
    op.create_index("ix_segment_states_due_at", "segment_states", ["due_at"])
    op.create_table(
        "segment_memberships",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exited_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_segment_memberships_current",
        "segment_memberships",
        ["segment", "profile_id"],
        unique=True,
        sqlite_where=_CURRENT,
        postgresql_where=_CURRENT,
    )
    op.create_index("ix_segment_memberships_profile", "segment_memberships", ["profile_id"])


def downgrade() -> None:
    op.drop_table("segment_memberships")
    op.drop_table("segment_states")
    op.drop_table("segment_definitions")
