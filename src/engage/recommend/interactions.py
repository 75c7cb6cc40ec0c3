"""From events to interactions: which item an event is about, and how much it says about the shopper.

The recommend consumer folds every channel's events into `rec_interactions` as the stream delivers them,
so a click in an email counts for that shopper's next recommendation within one delivery, and training
reads one narrow table instead of the whole log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from engage.events.log import MERGE_EVENT, LoggedEvent
from engage.profiles.consumer import merged_into
from engage.store.codec import time_param

__all__ = ["Interaction", "interactions_of", "RecommendConsumer"]


@dataclass(frozen=True, slots=True)
class Interaction:
    item_id: str
    weight: float


def interactions_of(event: LoggedEvent, weights: Mapping[str, float]) -> list[Interaction]:
    """The items a track event is about (`properties.product_id`, or each `properties.products[]`'s),
    each with the event's weight; none for an event name without a weight."""
    weight = weights.get(event.event or "") if event.type == "track" else None
    if weight is None:
        return []
    return [Interaction(item, weight) for item in _items(event.properties)]


def _items(properties: Mapping[str, Any]) -> list[str]:
    found = []
    single = properties.get("product_id")
    if isinstance(single, str | int) and not isinstance(single, bool):
        found.append(str(single))
    products = properties.get("products")
    if isinstance(products, list):
        for product in products:
            if isinstance(product, Mapping):
                item = product.get("product_id")
                if isinstance(item, str | int) and not isinstance(item, bool):
                    found.append(str(item))
    return found


class RecommendConsumer:
    """Writes the interactions of each batch, and moves a merged profile's interactions to the profile it
    joined, in the stream's transaction."""

    name = "recommend"

    def __init__(self, weights: Mapping[str, float]):
        self.weights = dict(weights)

    def handle(self, connection: Connection, events: Sequence[LoggedEvent]) -> None:
        sqlite = connection.dialect.name == "sqlite"
        moved = merged_into(connection, {event.profile_id for event in events})
        rows: list[tuple[Any, ...]] = []
        for event in events:
            if event.type == "merge" and event.event == MERGE_EVENT:
                self._write(connection, rows, sqlite)
                rows = []
                source, target = event.properties["from_profile"], event.properties["into_profile"]
                moved[source] = target
                connection.execute(
                    text("UPDATE rec_interactions SET profile_id = :target WHERE profile_id = :source"),
                    {"source": source, "target": target},
                )
                continue
            profile_id = moved.get(event.profile_id, event.profile_id)
            at = time_param(event.timestamp, sqlite)
            rows.extend(
                (profile_id, found.item_id, event.event, event.channel, found.weight, at, event.seq)
                for found in interactions_of(event, self.weights)
            )
        self._write(connection, rows, sqlite)

    @staticmethod
    def _write(connection: Connection, rows: list[tuple[Any, ...]], sqlite: bool) -> None:
        if not rows:
            return
        marker = "?" if sqlite else "%s"
        connection.exec_driver_sql(
            "INSERT INTO rec_interactions (profile_id, item_id, event, channel, weight, at, seq) "
            f"VALUES ({', '.join([marker] * 7)})",
            rows,
        )
