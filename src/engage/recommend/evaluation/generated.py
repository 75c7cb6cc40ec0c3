"""A generated interaction dataset whose structure is known, for tests and quick comparisons.

Items belong to latent categories, and their popularity falls off as a power law. Each user has 2 or 3
favourite categories and takes most of their items there, the rest from the whole catalog, always in
proportion to popularity; their interactions come at increasing times. Popularity explains part of what
users do and their favourite categories the rest, so a model that learns which items go together clearly
beats one that recommends what is popular.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["generated_interactions"]

_START = 1_767_225_600  # 2026-01-01, in seconds
_SPAN = 90 * 86_400


def generated_interactions(
    users: int = 1_000,
    items: int = 500,
    categories: int = 20,
    *,
    mean_interactions: float = 20.0,
    focus: float = 0.8,
    skew: float = 0.8,
    seed: int = 0,
) -> pd.DataFrame:
    """Interactions (user, item, weight, timestamp) of `users` users with `items` items spread over
    `categories` categories: user and item ids are integers from 0, every weight 1.0, timestamps seconds.

    A user draws at least 3 interactions, `mean_interactions` on average (geometrically distributed), a
    share `focus` of them in their favourite categories, an item's chance proportional to rank^-`skew`
    (ranks shuffled); an item a user draws twice counts once, at its first time."""
    if users < 1 or items < 1 or categories < 1:
        raise ValueError("users, items and categories must be at least 1")
    if mean_interactions <= 3:
        raise ValueError(f"mean_interactions must be over 3, not {mean_interactions}")
    rng = np.random.default_rng(seed)
    popularity = np.arange(1, items + 1, dtype=np.float64) ** -skew
    rng.shuffle(popularity)
    category = rng.integers(categories, size=items)
    # Items laid out category after category: a draw within category c is a uniform point between the
    # cumulative popularity before c's first item and after its last, found back with searchsorted.
    layout = np.argsort(category, kind="stable")
    cumulative = np.cumsum(popularity[layout])
    before = np.concatenate([[0.0], cumulative])
    low = before[np.searchsorted(category[layout], np.arange(categories), side="left")]
    high = before[np.searchsorted(category[layout], np.arange(categories), side="right")]

    counts = np.minimum(2 + rng.geometric(1.0 / (mean_interactions - 2.0), size=users), items)
    user = np.repeat(np.arange(users), counts)
    favourites = np.argsort(rng.random((users, categories)), axis=1)[:, :3]
    favourite_count = np.minimum(rng.integers(2, 4, size=users), favourites.shape[1])
    picked = favourites[user, (rng.random(user.size) * favourite_count[user]).astype(np.int64)]
    in_favourite = (rng.random(user.size) < focus) & (high[picked] > low[picked])
    lower = np.where(in_favourite, low[picked], 0.0)
    upper = np.where(in_favourite, high[picked], cumulative[-1])
    position = np.searchsorted(cumulative, lower + rng.random(user.size) * (upper - lower), side="right")
    item = layout[np.minimum(position, items - 1)]

    gaps = rng.integers(60, 3 * 86_400, size=user.size)
    elapsed = np.cumsum(gaps)
    first = np.cumsum(counts) - counts
    elapsed -= np.repeat(elapsed[first] - gaps[first], counts)  # restart the clock at each user
    timestamp = np.repeat(_START + rng.integers(_SPAN, size=users), counts) + elapsed
    frame = pd.DataFrame({"user": user, "item": item, "weight": 1.0, "timestamp": timestamp})
    return frame.drop_duplicates(["user", "item"], keep="first").reset_index(drop=True)
