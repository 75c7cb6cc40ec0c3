"""The tables engage keeps.

Table names avoid `events`, which Rasa's SQL tracker store and SQL event broker use, so engage and Rasa
can share one database.

Ownership follows the loop: ingestion writes `event_log` and `identities`; the profiles consumer writes
`profiles` and `consents`; the segments consumer writes `segment_definitions`, `segment_states` and
`segment_memberships`; the recommend consumer writes `rec_interactions`; the stream writes
`stream_offsets`, `dead_letters` and `leases`. The profiles consumer keeps `addresses`; messaging writes
`messages` and `message_statuses`; journeys write `journey_versions`, `journey_instances`, `journey_steps`,
`campaign_runs` and `campaign_members`. `engage tokens` writes `api_tokens`, and the HTTP API notes
when each was last used.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "EventRecord",
    "Identity",
    "ProfileMerge",
    "Profile",
    "Consent",
    "StreamOffset",
    "DeadLetter",
    "Lease",
    "SegmentDefinition",
    "SegmentState",
    "SegmentMembership",
    "RecInteraction",
    "Address",
    "Message",
    "MessageStatus",
    "JourneyVersion",
    "JourneyInstance",
    "JourneyStepRecord",
    "CampaignRun",
    "CampaignMember",
    "ApiTokenRecord",
]

# BIGINT on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is the rowid, which AUTOINCREMENT needs.
SequenceId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class EventRecord(Base):
    """One accepted event, in the order it was appended. `seq` is the stream position."""

    __tablename__ = "event_log"
    __table_args__ = (
        # profile_id alone: a profile's events are few enough to sort, and the narrower index makes every
        # append cheaper (bench/ingest.py). SQLite appends the rowid (seq) to each entry anyway.
        Index("ix_event_log_profile", "profile_id"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    profile_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(200))
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    traits: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Identity(Base):
    """An identifier seen on events (`user` or `anonymous`) and the profile it belongs to."""

    __tablename__ = "identities"
    __table_args__ = (Index("ix_identities_profile", "profile_id"),)

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProfileMerge(Base):
    """A profile folded into another (an anonymous visitor who signed in to a known account)."""

    __tablename__ = "profile_merges"

    from_profile: Mapped[str] = mapped_column(String(32), primary_key=True)
    into_profile: Mapped[str] = mapped_column(String(32), index=True)
    merged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Profile(Base):
    __tablename__ = "profiles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(200), index=True)
    traits: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    # The last event applied: a redelivered event at or below it changes nothing.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Consent(Base):
    __tablename__ = "consents"

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    subscribed: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str | None] = mapped_column(String(200))


class StreamOffset(Base):
    """How far a consumer has got in one partition of the stream."""

    __tablename__ = "stream_offsets"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeadLetter(Base):
    """An event a consumer failed on repeatedly: set aside so the stream moves on, never dropped."""

    __tablename__ = "dead_letters"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Lease(Base):
    """A named role held by one process at a time (the stream relay), renewed while it lives."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SegmentDefinition(Base):
    """A segment as last applied: when its fingerprint changes, it is backfilled from the log."""

    __tablename__ = "segment_definitions"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    file: Mapped[str] = mapped_column(String(500), default="")
    # The tracker keys its event conditions use (a JSON list): state for a new key is rebuilt from the log.
    trackers: Mapped[str] = mapped_column(Text, default="[]")
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # None while the segment is defined; set when its file was removed and its members let go.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SegmentState(Base):
    """One profile's state for the real-time segment engine: tracker states and current memberships."""

    __tablename__ = "segment_states"

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    # When (µs since the epoch) a window of this profile's runs out: the segment clock re-evaluates it then.
    due_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)


class SegmentMembership(Base):
    """A stay in a segment: entered, and exited (None while still a member). History is kept."""

    __tablename__ = "segment_memberships"
    __table_args__ = (
        Index("ix_segment_memberships_current", "segment", "profile_id", unique=True,
              sqlite_where=text("exited_at IS NULL"), postgresql_where=text("exited_at IS NULL")),
        Index("ix_segment_memberships_profile", "profile_id"),
        {"sqlite_autoincrement": True},
    )  # fmt: skip

    id: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    segment: Mapped[str] = mapped_column(String(200))
    profile_id: Mapped[str] = mapped_column(String(32))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    exited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RecInteraction(Base):
    """One interaction the recommender learns from: a profile and an item, weighted by what happened (a
    view, an add, a purchase, a click in an email, ...) and tagged with the channel it came from."""

    __tablename__ = "rec_interactions"
    __table_args__ = (
        # A shopper's latest interactions read from the index alone, at every request.
        Index("ix_rec_interactions_history", "profile_id", "at", "id", "item_id", "weight", "event"),
        Index("ix_rec_interactions_at", "at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    weight: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(BigInteger)
    """The event's place in the log."""


class Address(Base):
    """Where a profile is reached on a channel: its `email` and `phone` traits, kept by the profiles
    consumer, so that a provider's webhook or an inbound SMS finds its profile by address."""

    __tablename__ = "addresses"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    """An email address in lower case, or a phone number in E.164."""
    profile_id: Mapped[str] = mapped_column(String(32), index=True)


class Message(Base):
    """One message to one customer: recorded before any provider is called, with its send key (the same
    journey step or campaign send is recorded once), what it said once rendered and where it stands. The
    messaging stage writes it; providers' webhooks move its status on."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_due", "status", "due_at"),
        Index("ix_messages_profile", "profile_id", "channel", "created_at"),
        Index("ix_messages_provider", "provider_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    send_key: Mapped[str] = mapped_column(String(300), unique=True)
    profile_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(200))
    transactional: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When it may be sent (after quiet hours, after a retry's wait)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    address: Mapped[str | None] = mapped_column(String(320))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    """The HTML of an email, the text of an SMS."""
    text: Mapped[str | None] = mapped_column(Text)
    """The plain-text part of an email."""
    links: Mapped[list[Any]] = mapped_column(Json, default=list)
    """Each tracked link's destination, item and recommendation, in the order the tokens number them."""
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """What the sender passed: the event that triggered it, the journey or campaign, extra variables."""
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MessageStatus(Base):
    """A message's status history: each step (queued, deferred, sent, delivered, opened, …) and why."""

    __tablename__ = "message_statuses"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str | None] = mapped_column(Text)


class JourneyVersion(Base):
    """A journey or campaign file as it was when loaded: running instances finish on their version's
    definition even after the file changed."""

    __tablename__ = "journey_versions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    journey: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(32))
    file: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(Text)
    """The file's text."""
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set when its file was removed (or replaced): no new instance starts on it."""


class JourneyInstance(Base):
    """One customer's way through one journey: where they are, until when they wait, and how it ended."""

    __tablename__ = "journey_instances"
    __table_args__ = (
        Index("ix_journey_instances_due", "status", "due_at"),
        Index("ix_journey_instances_profile", "profile_id", "status"),
        Index("ix_journey_instances_key", "journey", "profile_id", "key"),
        Index("ix_journey_instances_running", "journey", "profile_id", "key", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    )  # fmt: skip

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    journey: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(32))
    profile_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    """The instance key's value ('' for one instance per customer)."""
    status: Mapped[str] = mapped_column(String(16))
    """active, completed or exited."""
    step: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the current step is due (now, a wait's end, a wait_for's timeout); None once it ended."""
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set while the current step (a wait, a wait_for) waits: when due, the wait is over."""
    waiting_for: Mapped[str | None] = mapped_column(String(200))
    """The event a `wait_for` waits for (its filters are in the definition)."""
    trigger: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    arm: Mapped[str | None] = mapped_column(String(200))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exit_reason: Mapped[str | None] = mapped_column(String(300))
    goal_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the journey's goal event came (conversion)."""


class JourneyStepRecord(Base):
    """An instance's history: each step it went through, when and how."""

    __tablename__ = "journey_steps"
    __table_args__ = (
        Index("ix_journey_steps_instance", "instance_id"),
        Index("ix_journey_steps_journey", "journey", "kind"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    journey: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(32))
    """A send's message."""


class CampaignRun(Base):
    """One scheduled run of a campaign, recorded once per scheduled time: a restart never sends it again."""

    __tablename__ = "campaign_runs"
    __table_args__ = (Index("ix_campaign_runs_scheduled", "campaign", "scheduled_for", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(32))
    scheduled_for: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    """running, finished, or skipped (missed for too long while engage was down)."""
    detail: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """A running run's worker moves it on after each batch; one that stopped moving was left by a worker
    that died, and another worker finishes it."""
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    audience: Mapped[int] = mapped_column(Integer, default=0)
    holdout: Mapped[int] = mapped_column(Integer, default=0)
    recorded: Mapped[int] = mapped_column(Integer, default=0)
    """Messages recorded (sent, deferred, or suppressed by a policy)."""


class CampaignMember(Base):
    """Who a run reached or held out, for its conversions against the holdout."""

    __tablename__ = "campaign_members"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holdout: Mapped[bool] = mapped_column(Boolean)
    message_id: Mapped[str | None] = mapped_column(String(32))


class ChatInbox(Base):
    """A customer's SMS for the bot, kept until Rasa has answered it: if Rasa is down it waits, with the
    customer told once that an answer is coming, and is tried again."""

    __tablename__ = "chat_inbox"
    __table_args__ = (Index("ix_chat_inbox_due", "status", "next_at"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    """The `SmsReplied` event's message id (Twilio's message SID): a redelivered webhook is kept once."""
    profile_id: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    """pending, answered, or failed (Rasa refused it for good)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    holding_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class ChatOffset(Base):
    """How far engage has read a Rasa event broker that it polls (the SQL broker's table)."""

    __tablename__ = "chat_offsets"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiTokenRecord(Base):
    """A scoped API token for the HTTP API (`engage.tokens`): its public id, the SHA-256 of its secret (the
    secret itself is never stored), what it may read, and when it was made, last used and revoked."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        # A name is unique among live tokens; a revoked token keeps its name, and the name can be used again.
        Index("ix_api_tokens_live_name", "name", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
    )  # fmt: skip

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """Public: the token's second part (`engage_<id>_<secret>`), shown by `engage tokens list`."""
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(500))
    """Space-separated, as OAuth 2 writes scopes."""
    secret_hash: Mapped[str] = mapped_column(String(64))
    """The SHA-256 of the secret, in hex."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Moved on at most once a minute (`engage.tokens.TOUCH_INTERVAL`), so reads do not each write."""
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
