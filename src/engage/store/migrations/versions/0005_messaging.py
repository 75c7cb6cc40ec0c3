"""messaging: messages and their status history, and the addresses that find a profile

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("channel", "address"),
    )
    op.create_index("ix_addresses_profile_id", "addresses", ["profile_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("send_key", sa.String(length=300), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("transactional", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("links", _JSON, nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("send_key"),
    )
    op.create_index("ix_messages_due", "messages", ["status", "due_at"])
    op.create_index("ix_messages_profile", "messages", ["profile_id", "channel", "created_at"])
    op.create_index("ix_messages_provider", "messages", ["provider_id"])
    op.create_table(
        "message_statuses",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_message_statuses_message_id", "message_statuses", ["message_id"])
    _backfill_addresses()


def _backfill_addresses() -> None:
    """Profiles that existed before: their email and phone traits as addresses."""
    connection = op.get_bind()
    rows = []
    for profile_id, traits in connection.execute(sa.text("SELECT id, traits FROM profiles")):
        traits = json.loads(traits) if isinstance(traits, str) else traits or {}
        if isinstance(traits.get("email"), str):
            rows.append({"channel": "email", "address": traits["email"].lower(), "id": profile_id})
        if isinstance(traits.get("phone"), str):
            rows.append({"channel": "sms", "address": traits["phone"], "id": profile_id})
    if rows:
        unique = {(row["channel"], row["address"]): row for row in rows}  # one profile per address
        connection.execute(
            sa.text("INSERT INTO addresses (channel, address, profile_id) VALUES (:channel, :address, :id)"),
            list(unique.values()),
        )


def downgrade() -> None:
    op.drop_table("message_statuses")
    op.drop_table("messages")
    op.drop_table("addresses")
