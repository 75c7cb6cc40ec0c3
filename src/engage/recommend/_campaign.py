"""A campaign's audience ranked a thousand at a time: who each shopper is, their histories (their row of
the version's training data, or read again when they did anything since), and their best items with the
history item that explains each, ranked on a thread pool while the previous batch's answers are written."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sqlalchemy import text

from engage.recommend._history import PURCHASE_EVENTS, History
from engage.recommend._prepared import Prepared
from engage.recommend._ranking import rank_rows, select_rows
from engage.recommend.answers import Filters
from engage.recommend.models.recency import Histories
from engage.recommend.registry import ModelVersion
from engage.store import Database
from engage.store.codec import list_param, listed

__all__ = ["BATCH", "THREADS", "Batch"]

BATCH = 1_000
"""Shoppers ranked at once: 1,000 × 10,000 items of scores is 40 MB."""
THREADS = 2
"""A batch is ranked in this many parts at once (matrix products and sorting release the GIL)."""

_CHANGED = (
    "SELECT DISTINCT r.profile_id FROM rec_interactions AS r "
    "WHERE r.id > :through AND r.profile_id IN (SELECT listed.value FROM {listed})"
)
"""Which of these profiles did anything since training: by the newest ids or by the profiles' own rows,
whichever the planner finds fewer. Asked of the whole log instead, a welcome email's two shoppers read every
interaction since training, which grows for as long as the model is not retrained."""
_PROFILES = (
    "SELECT listed.value, i.profile_id FROM {listed} JOIN identities AS i ON i.value = listed.value "
    "AND i.kind IN ('user', 'anonymous') ORDER BY i.kind = 'user'"
)
_LATEST = (
    "SELECT profile_id, item_id, weight FROM (SELECT r.profile_id, r.item_id, r.weight, r.at, r.id, "
    "row_number() OVER (PARTITION BY r.profile_id ORDER BY r.at DESC, r.id DESC) AS n FROM {listed} "
    "JOIN rec_interactions AS r ON r.profile_id = listed.value) AS latest WHERE n <= :limit "
    "ORDER BY profile_id, at, id"
)
"""Each profile's latest interactions, oldest first."""
_BOUGHT = (
    "SELECT r.profile_id, r.item_id FROM {listed} JOIN rec_interactions AS r ON r.profile_id = listed.value "
    f"WHERE r.event IN ({', '.join(repr(event) for event in sorted(PURCHASE_EVENTS))})"
)

Ranked = tuple[np.ndarray, np.ndarray, np.ndarray]
"""A row's scores (-inf where not allowed), its best positions (-1 past the allowed ones) and, for each,
the history item that explains it (-1 for none)."""


@dataclass
class Batch:
    users: list[str]
    profiles: dict[str, str]
    """Each user's profile (a user id before an anonymous id of the same value)."""
    row_of: dict[str, int]
    histories: sparse.csr_matrix
    """One row per profile, weighted as the model asks."""
    parts: list[tuple[np.ndarray, Future[Ranked]]]

    @classmethod
    def start(
        cls,
        database: Database,
        history: int,
        pool: ThreadPoolExecutor,
        version: ModelVersion,
        prepared: Prepared,
        users: list[str],
        n: int,
        filters: Filters,
    ) -> Batch:
        """Read `users`' profiles and histories (the latest `history` interactions of those who changed),
        then start ranking them on `pool`."""
        sqlite = database.is_sqlite
        with database.read() as connection:
            found = connection.execute(text(_PROFILES.format(listed=listed("users", sqlite))),
                                       {"users": list_param(users, sqlite)}).all()  # fmt: skip
            profiles = dict(found)  # a user id's row comes last and wins
            shoppers = sorted(set(profiles.values()))
            bought = []
            if filters.exclude_purchased:
                bought = connection.execute(text(_BOUGHT.format(listed=listed("profiles", sqlite))),
                                            {"profiles": list_param(shoppers, sqlite)}).all()  # fmt: skip
            changed = set(connection.execute(
                text(_CHANGED.format(listed=listed("profiles", sqlite))),
                {"profiles": list_param(shoppers, sqlite), "through": version.manifest.get("through_id", 0)},
            ).scalars())  # fmt: skip
            fresh = [profile for profile in shoppers if profile in changed]
            latest = connection.execute(
                text(_LATEST.format(listed=listed("profiles", sqlite))),
                {"profiles": list_param(fresh, sqlite), "limit": history},
            ).all() if fresh else []  # fmt: skip
        row_of = {profile: row for row, profile in enumerate(shoppers)}
        known = np.array(  # a shopper with nothing new since training is exactly their training row
            [-1 if profile in changed else version.user_index.get(profile, -1) for profile in shoppers],
            dtype=np.int64,
        )
        histories = select_rows(version.histories, known.tolist())
        read = [(row_of[profile], version.item_index[item], weight) for profile, item, weight in latest
                if item in version.item_index]  # fmt: skip
        if read:
            rows, columns, weights = (np.array(column) for column in zip(*read, strict=True))
            histories = histories + Histories.in_order(rows, columns, weights, histories.shape).weighted(
                version.model.half_life
            )
        excluded = histories if filters.exclude_viewed else None
        purchases = [(row_of[profile], version.item_index[item]) for profile, item in bought
                     if item in version.item_index]  # fmt: skip
        allowed = prepared.allowed(filters, History.empty())

        def rank(rows: np.ndarray) -> Ranked:
            part = histories[rows]
            mine = [(row - rows[0], item) for row, item in purchases if rows[0] <= row <= rows[-1]]
            scores, best = rank_rows(version.model, part, known[rows], allowed, n,
                                     excluded[rows] if excluded is not None else None, mine)  # fmt: skip
            return scores, best, prepared.explain_block(part, best)

        parts = [(rows, pool.submit(rank, rows)) for rows in np.array_split(np.arange(len(shoppers)), THREADS)
                 if len(rows)]  # fmt: skip
        return cls(users, profiles, row_of, histories, parts)

    def row(self, user: str) -> tuple[str | None, Ranked | None]:
        """`user`'s profile and ranked row (waiting for its part), None for a shopper without history."""
        profile = self.profiles.get(user)
        row = self.row_of.get(profile, -1) if profile is not None else -1
        if row < 0 or self.histories.indptr[row] == self.histories.indptr[row + 1]:
            return profile, None
        for rows, future in self.parts:
            if rows[0] <= row <= rows[-1]:
                scores, best, because = future.result()
                local = row - rows[0]
                return profile, (scores[local], best[local], because[local])
        raise AssertionError(f"row {row} is in no part")

    def history(self, profile: str) -> History:
        """`profile`'s history as its row knows it (summed weights, the heaviest first)."""
        row = self.row_of[profile]
        start, end = self.histories.indptr[row], self.histories.indptr[row + 1]
        return History.weighted(self.histories.indices[start:end], self.histories.data[start:end])
