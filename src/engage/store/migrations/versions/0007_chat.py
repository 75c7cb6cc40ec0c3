"""chat: the SMS inbox for the bot, and how far the Rasa event broker was read

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chat_inbox",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", _TIME, nullable=False),
        sa.Column("holding_sent", sa.Boolean(), nullable=False),
        sa.Column("answered_at", _TIME, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_chat_inbox_due", "chat_inbox", ["status", "next_at"])
    op.create_table(
        "chat_offsets",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:
    op.drop_table("chat_offsets")
    op.drop_index("ix_chat_inbox_due", table_name="chat_inbox")
    op.drop_table("chat_inbox")
