"""journeys: versions, instances and their steps; campaign runs and who they reached

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "journey_versions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("journey", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("loaded_at", _TIME, nullable=False),
        sa.Column("retired_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "journey_instances",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("journey", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("due_at", _TIME, nullable=True),
        sa.Column("waiting_since", _TIME, nullable=True),
        sa.Column("waiting_for", sa.String(length=200), nullable=True),
        sa.Column("trigger", _JSON, nullable=False),
        sa.Column("arm", sa.String(length=200), nullable=True),
        sa.Column("entered_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
        sa.Column("exit_reason", sa.String(length=300), nullable=True),
        sa.Column("goal_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_journey_instances_due", "journey_instances", ["status", "due_at"])
    op.create_index("ix_journey_instances_profile", "journey_instances", ["profile_id", "status"])
    op.create_index("ix_journey_instances_key", "journey_instances", ["journey", "profile_id", "key"])
    op.create_index(
        "ix_journey_instances_running",
        "journey_instances",
        ["journey", "profile_id", "key"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "journey_steps",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("journey", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_journey_steps_instance", "journey_steps", ["instance_id"])
    op.create_index("ix_journey_steps_journey", "journey_steps", ["journey", "kind"])
    op.create_table(
        "campaign_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("scheduled_for", _TIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("heartbeat_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("audience", sa.Integer(), nullable=False),
        sa.Column("holdout", sa.Integer(), nullable=False),
        sa.Column("recorded", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_campaign_runs_scheduled", "campaign_runs", ["campaign", "scheduled_for"], unique=True)
    op.create_table(
        "campaign_members",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "profile_id"),
    )


def downgrade() -> None:
    for table in (
        "campaign_members",
        "campaign_runs",
        "journey_steps",
        "journey_instances",
        "journey_versions",
    ):
        op.drop_table(table)
