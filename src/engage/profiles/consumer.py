"""The profiles consumer: folds each profile's events into its traits, consent and activity.

Works a batch at a time: one read of the touched profiles and consents, changes in memory, one upsert of
each. A profile remembers the last `seq` applied, so a redelivered event changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, text

from engage.events.log import LoggedEvent
from engage.profiles.consent import ConsentChange, consent_changes
from engage.store.codec import json_param, json_value, list_param, listed, time_param, time_value
from engage.store.models import Address, Consent, Profile, ProfileMerge
from engage.store.upsert import upsert

__all__ = ["ProfilesConsumer", "merged_into", "addresses_of"]

SYSTEM_CHANNEL = "system"

profiles = Profile.__table__
consents = Consent.__table__
merges = ProfileMerge.__table__
addresses = Address.__table__
# Untyped statements, one per dialect: values come as the driver gives them, decoded by
# engage.store.codec, and the id list is one parameter.
_REDIRECTS = {
    sqlite: text(
        f"SELECT m.from_profile, m.into_profile FROM {listed('ids', sqlite)} "
        "JOIN profile_merges AS m ON m.from_profile = listed.value"
    )
    for sqlite in (True, False)
}
_PROFILES = {
    sqlite: text(
        "SELECT p.id, p.user_id, p.traits, p.first_seen, p.last_seen, p.event_count, p.last_seq "
        f"FROM {listed('ids', sqlite)} JOIN profiles AS p ON p.id = listed.value"
    )
    for sqlite in (True, False)
}
# Sent straight to the driver with positional rows (one per profile in every batch).
_ACTIVITY = (
    "INSERT INTO profiles (id, user_id, traits, first_seen, last_seen, event_count, last_seq) "
    "VALUES ({m}, {m}, '{{}}', {m}, {m}, {m}, {m}) "
    "ON CONFLICT (id) DO UPDATE SET user_id = COALESCE(excluded.user_id, profiles.user_id), "
    "first_seen = {least}(profiles.first_seen, excluded.first_seen), "
    "last_seen = {greatest}(profiles.last_seen, excluded.last_seen), "
    "event_count = profiles.event_count + excluded.event_count, "
    "last_seq = {greatest}(profiles.last_seq, excluded.last_seq)"
)
_ACTIVITY_SQLITE = _ACTIVITY.format(m="?", least="min", greatest="max")
_ACTIVITY_POSTGRES = _ACTIVITY.format(m="%s", least="LEAST", greatest="GREATEST")
_CONSENTS = {
    sqlite: text(
        "SELECT c.profile_id, c.channel, c.subscribed, c.source, c.updated_at, c.message_id "
        f"FROM {listed('ids', sqlite)} JOIN consents AS c ON c.profile_id = listed.value"
    )
    for sqlite in (True, False)
}


@dataclass
class _Batch:
    """The touched rows of one batch, loaded once and written once."""

    connection: Connection
    profiles: dict[str, dict[str, Any]]
    consents: dict[tuple[str, str], dict[str, Any]]
    redirects: dict[str, str]
    deleted: set[str]

    @classmethod
    def load(cls, connection: Connection, profile_ids: set[str], redirects: dict[str, str]) -> _Batch:
        batch = cls(connection, {}, {}, dict(redirects), set())
        batch._load_rows(sorted(profile_ids | set(redirects.values())))
        return batch

    def _load_rows(self, ids: list[str]) -> None:
        sqlite = self.connection.dialect.name == "sqlite"
        params = {"ids": list_param(ids, sqlite)}
        if ids:
            for row in self.connection.execute(_PROFILES[sqlite], params).mappings().fetchall():
                profile = dict(row)
                profile["traits"] = dict(json_value(profile["traits"]))
                profile["first_seen"] = time_value(profile["first_seen"])
                profile["last_seen"] = time_value(profile["last_seen"])
                self.profiles[profile["id"]] = profile
            for row in self.connection.execute(_CONSENTS[sqlite], params).mappings().fetchall():
                consent = dict(row)
                consent["subscribed"] = bool(consent["subscribed"])
                consent["updated_at"] = time_value(consent["updated_at"])
                self.consents[(consent["profile_id"], consent["channel"])] = consent

    def target(self, profile_id: str) -> str:
        return self.redirects.get(profile_id, profile_id)


def merged_into(connection: Connection, profile_ids: Collection[str]) -> dict[str, str]:
    """Where merged profiles went: an event may still name a profile merged after it was logged."""
    sqlite = connection.dialect.name == "sqlite"
    params = {"ids": list_param(profile_ids, sqlite)}
    return {source: target for source, target in connection.execute(_REDIRECTS[sqlite], params)}


def _needing_detail(events: Sequence[LoggedEvent], redirects: dict[str, str]) -> set[str]:
    """Profiles whose traits or consent change in this batch, or that merge: these are read and rewritten.

    Every other event only adds activity (counts, first and last seen), written without reading.
    """
    detailed: set[str] = set()
    for event in events:
        if event.type == "merge":
            detailed.update((event.properties["from_profile"], event.properties["into_profile"]))
        elif event.profile_id in redirects:
            detailed.update((event.profile_id, redirects[event.profile_id]))
        elif event.traits or event.context.get("traits") or consent_changes(event):
            detailed.add(event.profile_id)
    return detailed


def _record_activity(connection: Connection, events: list[LoggedEvent]) -> None:
    """Add each profile's activity in one upsert that reads nothing back."""
    if not events:
        return
    sqlite = connection.dialect.name == "sqlite"
    # profile -> [user_id, first_seen, last_seen, event_count, last_seq]
    activity: dict[str, list[Any]] = {}
    for event in events:
        seen = activity.get(event.profile_id)
        if seen is None:
            activity[event.profile_id] = [event.user_id, event.timestamp, event.timestamp, 1, event.seq]
            continue
        seen[0] = event.user_id or seen[0]
        seen[1] = min(seen[1], event.timestamp)
        seen[2] = max(seen[2], event.timestamp)
        seen[3] += 1
        seen[4] = event.seq
    rows = [
        (profile_id, user_id, time_param(first, sqlite), time_param(last, sqlite), count, seq)
        for profile_id, (user_id, first, last, count, seq) in activity.items()
    ]
    connection.exec_driver_sql(_ACTIVITY_SQLITE if sqlite else _ACTIVITY_POSTGRES, rows)


class ProfilesConsumer:
    name = "profiles"

    def handle(self, connection: Connection, events: Sequence[LoggedEvent]) -> None:
        # What engage announces itself (SegmentEntered, …) is not the customer's activity; merges are, and
        # so are the traits a journey's `update` step sets (an identify on the system channel).
        events = [e for e in events if e.channel != SYSTEM_CHANNEL or e.type in ("merge", "identify")]
        if not events:
            return
        redirects = merged_into(connection, {event.profile_id for event in events})
        detailed = _needing_detail(events, redirects)
        if detailed:
            batch = _Batch.load(connection, detailed, redirects)
            for event in events:
                if event.type == "merge":
                    self._merge(batch, event)
                elif batch.target(event.profile_id) in detailed:
                    self._apply(batch, event)
            self._write(batch)
        _record_activity(connection, [event for event in events if event.profile_id not in detailed])

    def _apply(self, batch: _Batch, event: LoggedEvent) -> None:
        profile_id = batch.target(event.profile_id)
        profile = batch.profiles.get(profile_id)
        if profile is None:
            profile = batch.profiles[profile_id] = {
                "id": profile_id,
                "user_id": None,
                "traits": {},
                "first_seen": event.timestamp,
                "last_seen": event.timestamp,
                "event_count": 0,
                "last_seq": 0,
            }
        # A guard against replays; an event redirected by a merge may predate the target's latest.
        if event.seq <= profile["last_seq"] and profile_id == event.profile_id:
            return
        if event.channel == SYSTEM_CHANNEL:  # engage setting traits: not the customer's doing
            _update_traits(profile["traits"], event.traits)
            profile["last_seq"] = max(profile["last_seq"], event.seq)
            return
        if event.user_id:
            profile["user_id"] = event.user_id
        _update_traits(profile["traits"], event.traits)
        context_traits = event.context.get("traits")
        if isinstance(context_traits, dict):
            _update_traits(profile["traits"], context_traits)
        profile["first_seen"] = min(profile["first_seen"], event.timestamp)
        profile["last_seen"] = max(profile["last_seen"], event.timestamp)
        profile["event_count"] += 1
        profile["last_seq"] = max(profile["last_seq"], event.seq)
        for change in consent_changes(event):
            _apply_consent(batch, profile_id, change)

    def _merge(self, batch: _Batch, event: LoggedEvent) -> None:
        source_id = event.properties["from_profile"]
        target_id = event.properties["into_profile"]
        batch.redirects[source_id] = target_id
        source = batch.profiles.pop(source_id, None)
        if source is not None:
            batch.deleted.add(source_id)
        target = batch.profiles.get(target_id)
        if source is not None:
            if target is None:
                target = batch.profiles[target_id] = {**source, "id": target_id}
            else:
                target["traits"] = {**source["traits"], **target["traits"]}  # the known profile wins
                target["first_seen"] = min(target["first_seen"], source["first_seen"])
                target["last_seen"] = max(target["last_seen"], source["last_seen"])
                target["event_count"] += source["event_count"]
                target["user_id"] = target["user_id"] or source["user_id"]
                target["last_seq"] = max(target["last_seq"], source["last_seq"])
            for (owner, channel), consent in list(batch.consents.items()):
                if owner == source_id:
                    del batch.consents[(owner, channel)]
                    change = ConsentChange(
                        channel,
                        consent["subscribed"],
                        consent["source"],
                        consent["updated_at"],
                        consent["message_id"],
                    )
                    _apply_consent(batch, target_id, change)

    def _write(self, batch: _Batch) -> None:
        connection = batch.connection
        if batch.deleted:
            ids = sorted(batch.deleted)
            connection.execute(delete(profiles).where(profiles.c.id.in_(ids)))
            connection.execute(delete(consents).where(consents.c.profile_id.in_(ids)))
        sqlite = connection.dialect.name == "sqlite"
        upsert(
            connection,
            "profiles",
            [
                {
                    **profile,
                    "traits": json_param(profile["traits"]),
                    "first_seen": time_param(profile["first_seen"], sqlite),
                    "last_seen": time_param(profile["last_seen"], sqlite),
                }
                for profile in batch.profiles.values()
            ],
            key=["id"],
            update=["user_id", "traits", "first_seen", "last_seen", "event_count", "last_seq"],
        )
        _write_addresses(connection, batch)
        upsert(
            connection,
            "consents",
            [
                {**consent, "updated_at": time_param(consent["updated_at"], sqlite)}
                for consent in batch.consents.values()
            ],
            key=["profile_id", "channel"],
            update=["subscribed", "source", "updated_at", "message_id"],
        )


def _write_addresses(connection: Connection, batch: _Batch) -> None:
    """The rewritten profiles' addresses as their traits now say (an address moves to the profile that
    claims it last; a trait removed takes its address away)."""
    touched = sorted(set(batch.profiles) | batch.deleted)
    connection.execute(delete(addresses).where(addresses.c.profile_id.in_(touched)))
    rows = []
    for profile_id, profile in batch.profiles.items():
        for channel, address in addresses_of(profile["traits"]).items():
            rows.append({"channel": channel, "address": address, "profile_id": profile_id})
    upsert(connection, "addresses", rows, key=["channel", "address"], update=["profile_id"])


def addresses_of(traits: dict[str, Any]) -> dict[str, str]:
    """Where traits say a profile is reached, by channel (an email in lower case, a phone in E.164)."""
    found = {}
    if isinstance(traits.get("email"), str) and traits["email"]:
        found["email"] = traits["email"].lower()
    if isinstance(traits.get("phone"), str) and traits["phone"]:
        found["sms"] = traits["phone"]
    return found


def _update_traits(traits: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            traits.pop(key, None)
        else:
            traits[key] = value


def _apply_consent(batch: _Batch, profile_id: str, change: ConsentChange) -> None:
    current = batch.consents.get((profile_id, change.channel))
    if current is not None and current["updated_at"] > change.at:
        return
    batch.consents[(profile_id, change.channel)] = {
        "profile_id": profile_id,
        "channel": change.channel,
        "subscribed": change.subscribed,
        "source": change.source,
        "updated_at": change.at,
        "message_id": change.message_id,
    }
