"""The customers messages go to: their profile, the identity their events carry, traits and consent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from engage.messaging.context import Recipient
from engage.messaging.policy import Reachability, reachability
from engage.store.codec import json_value, list_param, listed

__all__ = ["Customer", "load_customers", "profiles_of"]

_PROFILES = (
    "SELECT p.id, p.user_id, p.traits, (SELECT min(i.value) FROM identities AS i WHERE i.profile_id = p.id "
    "AND i.kind = 'anonymous') FROM {listed} JOIN profiles AS p ON p.id = listed.value"
)
_CONSENTS = (
    "SELECT c.profile_id, c.channel, c.subscribed FROM {listed} JOIN consents AS c "
    "ON c.profile_id = listed.value"
)
_IDENTITIES = (
    "SELECT listed.value, i.profile_id FROM {listed} JOIN identities AS i ON i.value = listed.value "
    "AND i.kind IN ('user', 'anonymous') ORDER BY i.kind = 'user'"
)


@dataclass(frozen=True)
class Customer:
    recipient: Recipient
    consents: Mapping[str, Mapping[str, Any]]
    """The consent rows that exist, by channel."""

    @property
    def profile_id(self) -> str:
        return self.recipient.profile_id

    def reach(self, channel: str, email_default: bool) -> Reachability:
        return reachability(channel, self.recipient.traits, self.consents.get(channel), email_default)


def profiles_of(connection: Connection, users: Iterable[str]) -> dict[str, str]:
    """The profile of each user id or anonymous id that has one (a user id before an anonymous one)."""
    sqlite = connection.dialect.name == "sqlite"
    rows = connection.execute(
        text(_IDENTITIES.format(listed=listed("users", sqlite))), {"users": list_param(list(users), sqlite)}
    )
    return dict(rows.all())  # a user id's row comes last and wins


def load_customers(connection: Connection, profile_ids: Iterable[str]) -> dict[str, Customer]:
    sqlite = connection.dialect.name == "sqlite"
    params = {"ids": list_param(sorted(set(profile_ids)), sqlite)}
    consents: dict[str, dict[str, dict[str, Any]]] = {}
    for profile_id, channel, subscribed in connection.execute(
        text(_CONSENTS.format(listed=listed("ids", sqlite))), params
    ):
        consents.setdefault(profile_id, {})[channel] = {"subscribed": bool(subscribed)}
    customers = {}
    for profile_id, user_id, traits, anonymous_id in connection.execute(
        text(_PROFILES.format(listed=listed("ids", sqlite))), params
    ):
        identity = user_id or anonymous_id or profile_id
        recipient = Recipient(profile_id, identity, bool(user_id), dict(json_value(traits)))
        customers[profile_id] = Customer(recipient, consents.get(profile_id, {}))
    return customers
