"""The demo's shoppers, as the Retail Demo Store generates them.

Each shopper has a persona: two or three favourite categories of the catalog with affinity weights about
0.6 / 0.25 / 0.15, a discount persona, the channel they prefer to hear from the shop on, a time zone, an
email address and sometimes a phone number. Most joined during the history; some sign up during the live
period. Everything is deterministic for a seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["AFFINITY", "DISCOUNT_PERSONAS", "Persona", "Season", "Shopper", "make_shoppers"]

AFFINITY = (0.6, 0.25, 0.15)
DISCOUNT_PERSONAS = ("indifferent", "all_discounts", "lower_priced")
FIRST_NAMES = [
    "Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivan", "Jin", "Kofi", "Lea", "Mara", "Noor",
    "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vik", "Wen", "Yara", "Zoe",
]  # fmt: skip
TIMEZONES = [
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Europe/London",
    "Europe/Berlin",
]  # fmt: skip


@dataclass(frozen=True)
class Persona:
    categories: tuple[str, ...]
    discount: str
    channel: str
    """Where they would rather hear from the shop: email or sms."""

    @property
    def name(self) -> str:
        return "_".join(self.categories)

    def affinity(self, category: str) -> float:
        """How much of their attention `category` gets (0 outside their favourites)."""
        if category in self.categories:
            return AFFINITY[self.categories.index(category)]
        return 0.0


@dataclass(frozen=True)
class Season:
    """The holiday season: from `start`, every shopper also shops for gifts in `category` (a share of their
    views), with an interest in it like a second favourite's. What the history taught the recommender
    about that category is thin; what the season's clicks teach it is what retraining adds."""

    start: datetime
    category: str = "seasonal"
    share: float = 0.3
    affinity: float = 0.4

    def on(self, when: datetime) -> bool:
        return when >= self.start


@dataclass(frozen=True)
class Shopper:
    number: int
    persona: Persona
    anonymous_id: str
    first_name: str
    timezone: str
    phone: str | None
    joined: datetime
    activity: float
    """Visits to the shop per day."""

    def interest(self, category: str, when: datetime, season: Season) -> float:
        """How much `category` draws them at `when`: their persona's affinity, or the season's."""
        if season.on(when) and category == season.category:
            return max(season.affinity, self.persona.affinity(category))
        return self.persona.affinity(category)

    @property
    def user_id(self) -> str:
        return f"user-{self.number:05d}"

    @property
    def email(self) -> str:
        return f"{self.user_id}@shop.example.com"


def make_shoppers(
    count: int, seed: int, categories: Sequence[str], history_start: datetime, live_start: datetime,
    live_end: datetime,
) -> list[Shopper]:  # fmt: skip
    """`count` shoppers; about one in six signs up during the live period, the rest during the history."""
    rng = random.Random(seed)
    shoppers = []
    for number in range(1, count + 1):
        favourites = tuple(rng.sample(sorted(categories), rng.choice((2, 3))))
        discount = rng.choices(DISCOUNT_PERSONAS, weights=(0.6, 0.25, 0.15))[0]
        has_phone = rng.random() < 0.45
        channel = "sms" if has_phone and rng.random() < 0.6 else "email"
        if rng.random() < 1 / 6:
            joined = live_start + (live_end - live_start) * rng.random() * 0.8
        else:
            joined = history_start + (live_start - history_start) * rng.random()
        shoppers.append(
            Shopper(
                number=number,
                persona=Persona(favourites, discount, channel),
                anonymous_id=str(uuid.UUID(int=rng.getrandbits(128))),
                first_name=rng.choice(FIRST_NAMES),
                timezone=rng.choice(TIMEZONES),
                phone=f"+1415555{number % 10000:04d}" if has_phone else None,
                joined=joined.replace(microsecond=0) + timedelta(seconds=rng.randrange(60)),
                activity=rng.lognormvariate(-1.6, 0.6),
            )
        )
    return shoppers
