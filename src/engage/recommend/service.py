"""The recommender's use cases, named like Personalize's recipes, over the current model version.

Every answer is computed from the shopper's latest interactions read at request time (`rec_interactions`,
written by the recommend consumer as events arrive), so a view, an add or a click in an email changes the
next `for_you`, `related` or `rank` answer without a retrain. Filters apply after scoring, promotions last.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from sqlalchemy import text

from engage.profiles.queries import find_profile_id
from engage.recommend.catalog import Catalog
from engage.recommend.config import RecommenderConfig
from engage.recommend.evaluation.metrics import top_items
from engage.recommend.models import Model
from engage.recommend.models.base import Remembers
from engage.recommend.models.recency import Histories
from engage.recommend.offers import Offer
from engage.recommend.registry import ModelStore, ModelVersion
from engage.store import Database
from engage.store.codec import list_param, listed, time_param

__all__ = ["Filters", "RecommendedItem", "Recommendations", "Recommender", "NoModelError"]

PURCHASE_EVENTS = frozenset({"OrderCompleted"})
_PURCHASES = ", ".join(f"'{event}'" for event in sorted(PURCHASE_EVENTS))  # constants, for SQL
SHOWN_EVENT = "RecommendationShown"
_HISTORY = (
    "SELECT profile_id, item_id, weight, event FROM rec_interactions WHERE profile_id = coalesce("
    "(SELECT profile_id FROM identities WHERE kind = 'user' AND value = :user), "
    "(SELECT profile_id FROM identities WHERE kind = 'anonymous' AND value = :user)) "
    "ORDER BY at DESC, id DESC LIMIT :limit"
)  # two scalar subqueries: one ordered subquery instead costs SQLite a millisecond more
_PROFILES = (
    "SELECT listed.value, i.profile_id FROM {listed} JOIN identities AS i ON i.value = listed.value "
    "AND i.kind IN ('user', 'anonymous') ORDER BY i.kind = 'user'"
)
_CHANGED = text("SELECT DISTINCT profile_id FROM rec_interactions WHERE id > :through")
_LATEST = (
    "SELECT profile_id, item_id, weight FROM (SELECT r.profile_id, r.item_id, r.weight, r.at, r.id, "
    "row_number() OVER (PARTITION BY r.profile_id ORDER BY r.at DESC, r.id DESC) AS n FROM {listed} "
    "JOIN rec_interactions AS r ON r.profile_id = listed.value) AS latest WHERE n <= :limit "
    "ORDER BY profile_id, at, id"
)
"""Each profile's latest interactions, oldest first."""
_BOUGHT = (
    "SELECT r.profile_id, r.item_id FROM {listed} JOIN rec_interactions AS r "
    f"ON r.profile_id = listed.value WHERE r.event IN ({_PURCHASES})"
)
_KINDS = "SELECT kind FROM identities WHERE kind IN ('user', 'anonymous') AND value = :value"
"""With the kinds named, the primary key (kind, value) finds them; by value alone it was a table scan."""
_SEGMENTS = text("SELECT segment FROM segment_memberships WHERE profile_id = :profile AND exited_at IS NULL")
_BATCH = 1_000
"""Shoppers scored at once by `for_many`: 1,000 × 10,000 items of scores is 40 MB."""
_THREADS = 2
"""`for_many` scores a batch in this many parts at once (sparse products and sorting release the GIL)."""
_EXPLAINING = 25
"""A reason is looked for among the 25 items most similar to the item recommended (on the bench data
every one of 30,000 found one there; a history holds up to 50 items): popular items are
among thousands of items' neighbours, and scanning all of them cost more than the scoring."""
_VERBS = {
    "ProductViewed": "viewed",
    "ProductAdded": "added to your cart",
    "OrderCompleted": "bought",
    "EmailClicked": "clicked in an email",
    "SmsClicked": "clicked in a text",
    "RecommendationClicked": "clicked",
}


class NoModelError(LookupError):
    """No model version has been trained yet (`engage recs train`)."""


@dataclass(frozen=True)
class Filters:
    exclude_purchased: bool = False
    exclude_viewed: bool = False
    """Exclude every item in the shopper's history (viewed, added, bought, clicked)."""
    in_stock: bool = False
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    promoted: int = 0
    """Slots (of the n) filled from the catalog's promoted products, best-scored first, as Personalize's
    promotions: placed at evenly spaced positions."""


class RecommendedItem(NamedTuple):  # a campaign builds millions: a tuple costs a fraction of a dataclass
    item_id: str
    score: float | None
    """None for an item the model does not know (`rank` returns them last, unscored)."""
    reason: str


_ids = random.Random(os.urandom(32))


def _new_id() -> str:
    """32 random hex digits (a campaign needs thousands a second: not a system call each)."""
    return f"{_ids.getrandbits(128):032x}"


@dataclass(frozen=True)
class Recommendations:
    use_case: str
    items: list[RecommendedItem]
    model_version: str | None
    profile_id: str | None = None
    recommendation_id: str = field(default_factory=_new_id)

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]


@dataclass(frozen=True)
class _History:
    items: np.ndarray
    """Model positions, latest first (an item once per interaction)."""
    weights: np.ndarray
    events: list[str]

    @classmethod
    def empty(cls) -> _History:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0), [])

    @classmethod
    def weighted(cls, items: np.ndarray, weights: np.ndarray) -> _History:
        """A history known only by its summed weights (the training data's): the heaviest first."""
        order = np.argsort(-weights, kind="stable")
        return cls(items[order].astype(np.int64), weights[order].astype(np.float64), ["history"] * len(items))

    def latest_events(self) -> dict[int, str]:
        """Each item's latest event (the history is newest first)."""
        events: dict[int, str] = {}
        for item, event in zip(self.items.tolist(), self.events, strict=True):
            events.setdefault(item, event)
        return events

    def row(self, size: int, half_life: float | None) -> sparse.csr_matrix:
        """The history as one row of item weights, an item's interactions summed (as in training) and
        decayed by their recency over `half_life` (`engage.recommend.models.recency`)."""
        return Histories.latest_first(self.items, self.weights, size).weighted(half_life)


def _exposed(method: Callable[..., Recommendations]) -> Callable[..., Recommendations]:
    """The use case, plus `channel=` (default web): its answer is logged as shown to its `user` on that
    channel; `channel=None` for a preview nobody is shown (nothing logged)."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def use_case(
        self: Recommender, *args: Any, channel: str | None = "web", **kwargs: Any
    ) -> Recommendations:
        answer = method(self, *args, **kwargs)
        user = signature.bind(self, *args, **kwargs).arguments.get("user")
        return self.shown(answer, user, channel)

    return use_case


Record = Callable[[dict[str, Any]], None]
"""Takes one Segment-style track call (the exposure) into the event log."""


class Recommender:
    """Each use case takes the shopper (`user`: a user id or an anonymous id) and the `channel` the answer
    is shown on, and logs what it served as a `RecommendationShown` event of that shopper on that channel,
    so a later `RecommendationClicked` carrying the recommendation id attributes back. An answer for no
    shopper (popular items on a landing page) is not logged: there is no one to attribute a click to."""

    def __init__(
        self,
        database: Database,
        store: ModelStore,
        config: RecommenderConfig,
        catalog: Catalog,
        clock: Callable[[], datetime],
        record: Record | None = None,
        offers: Sequence[Offer] = (),
    ):
        self.offers = {offer.id: offer for offer in offers}
        self.database = database
        self.store = store
        self.config = config
        self.catalog = catalog
        self.clock = clock
        self.record = record
        self._prepared: tuple[str, _Prepared] | None = None
        self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="engage-recommend")

    def shown(self, answer: Recommendations, user: str | None, channel: str | None) -> Recommendations:
        """Log `answer` as shown to `user` on `channel` (when there are a shopper, a channel, a recorder)."""
        if user is None or channel is None or self.record is None or not answer.items:
            return answer
        identity = "userId" if self._is_user_id(user) else "anonymousId"
        self.record(
            {
                "type": "track",
                "event": SHOWN_EVENT,
                identity: user,
                "messageId": f"rec-{answer.recommendation_id}",
                "properties": {
                    "recommendation_id": answer.recommendation_id,
                    "use_case": answer.use_case,
                    "items": answer.item_ids,
                    "model_version": answer.model_version,
                },
                "context": {"channel": channel},
            }
        )
        return answer

    # -- use cases --------------------------------------------------------------------------------

    @_exposed
    def for_you(self, user: str | None, n: int = 10, filters: Filters = Filters()) -> Recommendations:
        """Personalized for a user id or anonymous id from their latest interactions. A shopper with no
        history gets what is popular in their segments, or popular items. One slot of five or more goes to
        a new product the model cannot know yet (`serving.exploration`)."""
        version, prepared = self._version()
        profile_id, history = self._history(user, version)
        explore = self._exploration(profile_id, history, prepared, n)
        if len(history.items):
            row = history.row(len(version.items), version.model.half_life)  # scored, then read to explain
            scores = version.model.score(row)[0]

            def explain(top: np.ndarray) -> list[str]:
                return prepared.reasons(prepared.explain_block(row, top[None, :])[0].tolist(),
                                        history.latest_events())  # fmt: skip

        else:
            scores, explain = self._cold_start(profile_id, version)
        return self._answer("for_you", version, profile_id, prepared, scores, n, filters, history, explain,
                            explore=explore)  # fmt: skip

    def for_many(
        self, users: Sequence[str], n: int = 10, filters: Filters = Filters()
    ) -> dict[str, Recommendations]:
        """`for_you` for a whole audience (a campaign), by user id or anonymous id: a shopper's history is
        their row of the version's training data, or read again if they did anything since, and shoppers
        are scored as one matrix per thousand. Not logged: the caller logs with `shown` what it actually
        sends. Shoppers with no history get their `for_you` one by one (cold starts are few and cheap)."""
        version, prepared = self._version()
        with self.database.read() as connection:
            through = version.manifest.get("through_id", 0)
            changed = {profile for (profile,) in connection.execute(_CHANGED, {"through": through})}
        answers: dict[str, Recommendations] = {}
        pending: Callable[[], dict[str, Recommendations]] | None = None
        for start in range(0, len(users), _BATCH):
            batch = list(users[start : start + _BATCH])
            scoring = self._score_batch(batch, n, filters, version, prepared, changed)
            if pending is not None:  # while the next batch is scored
                answers.update(pending())
            pending = scoring
        if pending is not None:
            answers.update(pending())
        return answers

    @_exposed
    def related(
        self, item_id: str, n: int = 10, filters: Filters = Filters(), user: str | None = None
    ) -> Recommendations:
        """Items bought or viewed with `item_id` (cosine co-occurrence: shared shoppers discounted by
        popularity), blended with the shopper's own scores when a user is given; popular when the item
        has no co-occurrence yet."""
        version, prepared = self._version()
        profile_id, history = self._history(user, version)
        position = version.item_index.get(item_id)
        scores = prepared.neighbours(position) if position is not None else None
        exclude = np.array([position] if position is not None else [], dtype=np.int64)
        if scores is None or not scores.any():
            return self._answer("related", version, profile_id, prepared, version.popularity.counts, n,
                                filters, history, _always("popular"), exclude)  # fmt: skip
        if len(history.items):
            mine = version.model.score(history.row(len(version.items), version.model.half_life))[0]
            scores = 0.7 * _unit(scores) + 0.3 * _unit(mine)
        name = self.catalog[item_id].name if item_id in self.catalog else item_id
        return self._answer("related", version, profile_id, prepared, scores, n, filters, history,
                            _always(f"often together with {name}"), exclude)  # fmt: skip

    @_exposed
    def cart(
        self, item_ids: Sequence[str], n: int = 10, filters: Filters = Filters(), user: str | None = None
    ) -> Recommendations:
        """Complements of a cart: the summed co-occurrence of its items, the cart's items left out."""
        version, prepared = self._version()
        positions = [version.item_index[item] for item in item_ids if item in version.item_index]
        scores = np.zeros(len(version.items), dtype=np.float32)
        for position in positions:
            scores += prepared.neighbours(position)
        empty = _History.empty()
        if not scores.any():
            return self._answer("cart", version, None, prepared, version.popularity.counts, n, filters,
                                empty, _always("popular"), np.array(positions, dtype=np.int64))  # fmt: skip
        return self._answer("cart", version, None, prepared, scores, n, filters, empty,
                            _always("goes with your cart"), np.array(positions, dtype=np.int64))  # fmt: skip

    @_exposed
    def popular(self, n: int = 10, filters: Filters = Filters(), user: str | None = None) -> Recommendations:
        version, prepared = self._version()
        empty = _History.empty()
        return self._answer("popular", version, None, prepared, version.popularity.counts, n, filters,
                            empty, _always("popular"))  # fmt: skip

    @_exposed
    def rank(self, user: str | None, item_ids: Sequence[str]) -> Recommendations:
        """`item_ids` re-ranked for the user; items the model does not know come last, unscored, in the
        order given."""
        version, prepared = self._version()
        profile_id, history = self._history(user, version)
        if len(history.items):
            scores = version.model.score(history.row(len(version.items), version.model.half_life))[0]
        else:
            scores = version.popularity.counts
        known = [
            (item, float(scores[version.item_index[item]])) for item in item_ids if item in version.item_index
        ]
        known.sort(key=lambda pair: -pair[1])
        items = [RecommendedItem(item, score, "ranked for you") for item, score in known]
        items += [RecommendedItem(item, None, "unknown to the model") for item in item_ids
                  if item not in version.item_index]  # fmt: skip
        return Recommendations("rank", items, version.version, profile_id)

    @_exposed
    def repurchase(self, user: str | None, n: int = 10) -> Recommendations:
        """Items the shopper bought before, most often first (retail has repeat purchases)."""
        version, _ = self._version()
        profile_id = self._profile(user)
        if profile_id is None:
            return Recommendations("repurchase", [], version.version, None)
        with self.database.read() as connection:
            rows = connection.execute(
                text(
                    "SELECT item_id, count(*) AS times, max(at) AS latest FROM rec_interactions "
                    f"WHERE profile_id = :profile AND event IN ({_PURCHASES}) "
                    "GROUP BY item_id ORDER BY times DESC, latest DESC LIMIT :n"
                ),
                {"profile": profile_id, "n": n},
            ).fetchall()
        items = [
            RecommendedItem(item, float(times), f"you bought it {times} times") for item, times, _ in rows
        ]
        return Recommendations("repurchase", items, version.version, profile_id)

    @_exposed
    def offer(self, user: str | None, n: int = 1) -> Recommendations:
        """The shopper's best offers (item ids are offer ids of `offers.yml`). An active offer's score is
        the mean of the shopper's scores for its three best products (their best item scoring 1) × its
        preference; offers reaching `serving.offers.threshold` come first, best first, then the fallbacks
        by priority, which are all a shopper without history gets."""
        version, prepared = self._version()
        now = self.clock()
        active = [offer for offer in self.offers.values() if offer.is_active(now)]
        profile_id, history = self._history(user, version)
        chosen: list[RecommendedItem] = []
        if len(history.items):
            scores = version.model.score(history.row(len(version.items), version.model.half_life))[0]
            best = float(scores.max())
            scaled = np.clip(scores / best, 0, None) if best > 0 else np.zeros_like(scores)
            for offer in active:
                if offer.fallback:
                    continue
                mine = scaled[prepared.offer_scope(offer)]
                score = float(np.sort(mine)[-3:].mean()) * offer.preference if mine.size else 0.0
                if score >= self.config.serving.offers.threshold:
                    chosen.append(RecommendedItem(offer.id, score, f"for what you like: {offer.scope}"))
            chosen.sort(key=lambda item: -(item.score or 0.0))
        fallbacks = sorted((o for o in active if o.fallback), key=lambda offer: offer.priority or 0)
        chosen += [RecommendedItem(offer.id, None, "our offer for everyone") for offer in fallbacks]
        return Recommendations("offer", chosen[:n], version.version, profile_id)

    @_exposed
    def trending(
        self,
        n: int = 10,
        window: timedelta = timedelta(days=1),
        filters: Filters = Filters(),
        user: str | None = None,
    ) -> Recommendations:
        """Fastest rise in distinct shoppers: the last `window` against the one before it."""
        version, prepared = self._version()
        now = self.clock()
        sqlite = self.database.is_sqlite
        with self.database.read() as connection:
            rows = connection.execute(
                text(
                    "SELECT item_id, count(DISTINCT CASE WHEN at >= :middle THEN profile_id END), "
                    "count(DISTINCT CASE WHEN at < :middle THEN profile_id END) FROM rec_interactions "
                    "WHERE at >= :start AND at <= :now GROUP BY item_id"
                ),
                {
                    "start": time_param(now - 2 * window, sqlite),
                    "middle": time_param(now - window, sqlite),
                    "now": time_param(now, sqlite),
                },
            ).fetchall()
        scores = np.zeros(len(version.items), dtype=np.float32)
        for item, recent, before in rows:
            position = version.item_index.get(item)
            if position is not None and recent > before:
                scores[position] = (recent - before) / (before + 1.0)
        empty = _History.empty()
        return self._answer("trending", version, None, prepared, scores, n, filters, empty,
                            _always("trending"), only_positive=True)  # fmt: skip

    # -- shared steps ------------------------------------------------------------------------------

    def _version(self) -> tuple[ModelVersion, _Prepared]:
        version = self.store.current()
        if version is None:
            raise NoModelError("no recommendation model yet: run `engage recs train`")
        if self._prepared is None or self._prepared[0] != version.version:
            self._prepared = (version.version, _Prepared(version, self.catalog))
        return version, self._prepared[1]

    def _cold_start(
        self, profile_id: str | None, version: ModelVersion
    ) -> tuple[np.ndarray, Callable[[np.ndarray], list[str]]]:
        """What is popular among the members of the shopper's segments (each segment's popularity as
        shares, summed), else what is popular."""
        segments: list[str] = []
        if profile_id is not None and version.segment_popularity:
            with self.database.read() as connection:
                segments = [
                    segment
                    for (segment,) in connection.execute(_SEGMENTS, {"profile": profile_id})
                    if segment in version.segment_popularity
                ]
        if not segments:
            return version.popularity.counts, _always("popular")
        shares = np.stack([_share(version.segment_popularity[segment]) for segment in segments])

        def explain(top: np.ndarray) -> list[str]:
            return [f"popular with {segments[row]}" for row in shares[:, top].argmax(axis=0)]

        return shares.sum(axis=0), explain

    def _exploration(
        self, profile_id: str | None, history: _History, prepared: _Prepared, n: int
    ) -> np.ndarray:
        """New products to explore with, in the order to use them: drawn at random, three times as likely
        from a category of the shopper's history; the same for one shopper on one day."""
        slots = self.config.serving.exploration.slots
        if slots == 0 or n < 5:
            return np.zeros(0, dtype=np.int64)
        now = self.clock()
        new = prepared.new_since(now - self.config.serving.exploration.new_for)
        if not len(new):
            return new
        weight = np.ones(len(new))
        if len(history.items):
            weight[np.isin(prepared.category[new], prepared.category[history.items])] = 3.0
        seed = zlib.crc32(f"{profile_id}:{now.date().isoformat()}".encode())
        rng = np.random.default_rng(seed)
        return new[rng.choice(len(new), size=len(new), replace=False, p=weight / weight.sum())]

    def _score_batch(
        self,
        users: list[str],
        n: int,
        filters: Filters,
        version: ModelVersion,
        prepared: _Prepared,
        changed: set[str],
    ) -> Callable[[], dict[str, Recommendations]]:
        """Start scoring `users` on the pool; the answers come from calling what is returned."""
        sqlite = self.database.is_sqlite
        with self.database.read() as connection:
            found = connection.execute(text(_PROFILES.format(listed=listed("users", sqlite))),
                                       {"users": list_param(users, sqlite)}).all()  # fmt: skip
            profiles = dict(found)  # a user id wins over an anonymous id of the same value: it comes last
            shoppers = sorted(set(profiles.values()))
            bought = []
            if filters.exclude_purchased:
                bought = connection.execute(text(_BOUGHT.format(listed=listed("profiles", sqlite))),
                                            {"profiles": list_param(shoppers, sqlite)}).all()  # fmt: skip
            fresh = [profile for profile in shoppers if profile in changed]
            latest = connection.execute(
                text(_LATEST.format(listed=listed("profiles", sqlite))),
                {"profiles": list_param(fresh, sqlite), "limit": self.config.serving.history},
            ).all() if fresh else []  # fmt: skip
        row_of = {profile: row for row, profile in enumerate(shoppers)}
        known = np.array(  # a shopper with nothing new since training is exactly their training row
            [-1 if profile in changed else version.user_index.get(profile, -1) for profile in shoppers],
            dtype=np.int64,
        )
        histories = _select(version.histories, known.tolist())
        if latest:
            read = [(row_of[profile], version.item_index[item], weight) for profile, item, weight in latest
                    if item in version.item_index]  # fmt: skip
            rows, columns, weights = (
                (np.array(column) for column in zip(*read, strict=True)) if read else ([],) * 3
            )
            histories = histories + Histories.in_order(rows, columns, weights, histories.shape).weighted(
                version.model.half_life
            )
        excluded = histories if filters.exclude_viewed else None
        purchases = [(row_of[profile], version.item_index[item]) for profile, item in bought
                     if item in version.item_index]  # fmt: skip
        allowed = prepared.allowed(filters, _History.empty())
        halves = [rows for rows in np.array_split(np.arange(len(shoppers)), _THREADS) if len(rows)]

        def rank(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            part = histories[rows]
            mine = [(row - rows[0], item) for row, item in purchases if rows[0] <= row <= rows[-1]]
            scores, best = _rank_rows(version.model, part, known[rows], allowed, n,
                                      excluded[rows] if excluded is not None else None, mine)  # fmt: skip
            return scores, best, prepared.explain_block(part, best)

        futures = [self._pool.submit(rank, rows) for rows in halves]
        half = np.concatenate([np.full(len(rows), i) for i, rows in enumerate(halves)] or [np.zeros(0, int)])
        local = np.concatenate([np.arange(len(rows)) for rows in halves] or [np.zeros(0, int)])

        def answers() -> dict[str, Recommendations]:
            ranked = [future.result() for future in futures]  # (scores, best, because) of each half
            exploring = len(prepared.new_since(self.clock() - self.config.serving.exploration.new_for)) > 0
            result = {}
            for user in users:
                row = row_of.get(profiles.get(user), -1)  # type: ignore[arg-type]
                if row < 0 or histories.indptr[row] == histories.indptr[row + 1]:
                    result[user] = self.for_you(user, n, filters, channel=None)
                    continue
                scores, best, because = (part[local[row]] for part in ranked[half[row]])
                explained = dict(zip(best.tolist(), because.tolist(), strict=True))
                explore = None
                if exploring:
                    start, end = histories.indptr[row], histories.indptr[row + 1]
                    history = _History.weighted(histories.indices[start:end], histories.data[start:end])
                    explore = self._exploration(profiles[user], history, prepared, n)
                result[user] = self._finish(
                    "for_you", version, profiles[user], prepared, scores, n, filters, best[best >= 0],
                    lambda top, e=explained: prepared.reasons([e.get(p, -1) for p in top.tolist()]), explore,
                )  # fmt: skip
            return result

        return answers

    def _is_user_id(self, user: str) -> bool:
        """Whether `user` is a known user id (else it is taken as an anonymous id, if known, or a user id)."""
        kinds = {kind for (kind,) in self.database.fetch(_KINDS, {"value": user})}
        return "user" in kinds or "anonymous" not in kinds

    def _profile(self, user: str | None) -> str | None:
        if user is None:
            return None
        with self.database.read() as connection:
            return find_profile_id(connection, user)

    def _history(self, user: str | None, version: ModelVersion) -> tuple[str | None, _History]:
        """The shopper's profile and latest interactions, in one round trip when they have any (a user id
        before an anonymous id of the same value, as `find_profile_id`)."""
        if user is None:
            return None, _History.empty()
        rows = self.database.fetch(_HISTORY, {"user": user, "limit": self.config.serving.history})
        if not rows:
            return self._profile(user), _History.empty()
        index = version.item_index
        known = [(index[item], weight, event) for _, item, weight, event in rows if item in index]
        return rows[0][0], _History(
            np.array([position for position, _, _ in known], dtype=np.int64),
            np.array([weight for _, weight, _ in known], dtype=np.float64),
            [event for _, _, event in known],
        )

    def _answer(
        self,
        use_case: str,
        version: ModelVersion,
        profile_id: str | None,
        prepared: _Prepared,
        scores: np.ndarray,
        n: int,
        filters: Filters,
        history: _History,
        explain: Callable[[np.ndarray], list[str]],
        exclude: np.ndarray | None = None,
        only_positive: bool = False,
        explore: np.ndarray | None = None,
    ) -> Recommendations:
        allowed = prepared.allowed(filters, history)
        if exclude is not None and len(exclude):
            allowed[exclude] = False
        if only_positive:
            allowed &= scores > 0
        top = _top(scores, allowed, n)
        return self._finish(use_case, version, profile_id, prepared, scores, n, filters, top, explain,
                            explore, allowed)  # fmt: skip

    def _finish(
        self,
        use_case: str,
        version: ModelVersion,
        profile_id: str | None,
        prepared: _Prepared,
        scores: np.ndarray,
        n: int,
        filters: Filters,
        top: np.ndarray,
        explain: Callable[[np.ndarray], list[str]],
        explore: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
    ) -> Recommendations:
        """The answer from the best-scored `top`: promoted slots, then exploration slots, then reasons."""
        if allowed is None and (filters.promoted or (explore is not None and len(explore))):
            allowed = np.isfinite(scores)
        if filters.promoted:
            promoted = _top(scores, allowed & prepared.promoted, filters.promoted)
            top = _with_promotions(top, promoted, n)
        exploring: set[int] = set()
        if explore is not None and len(explore) and len(top) >= 5:
            slots = self.config.serving.exploration.slots
            explore = explore[allowed[explore]]  # type: ignore[index]
            fresh = explore[~np.isin(explore, top)][:slots]
            if len(fresh):
                top = np.concatenate([top[: min(len(top), n - len(fresh))], fresh])
                exploring = set(fresh.tolist())
        reasons = explain(top)
        promoted = prepared.promoted[top].tolist() if filters.promoted else [False] * len(top)
        items = [
            RecommendedItem(
                version.items[position],
                score,
                "promoted" if shown_as_promoted else "new arrival" if position in exploring else why,
            )
            for position, score, shown_as_promoted, why in zip(
                top.tolist(), scores[top].tolist(), promoted, reasons, strict=True
            )
        ]
        return Recommendations(use_case, items, version.version, profile_id)


class _Prepared:
    """What filtering and explaining need, aligned with one version's item positions."""

    def __init__(self, version: ModelVersion, catalog: Catalog):
        self.version = version
        self.catalog = catalog
        positions = catalog.positions(version.items) if len(catalog) else np.zeros(0, dtype=np.int64)
        known = positions >= 0
        size = len(version.items)
        self.recommendable = known if len(catalog) else np.ones(size, dtype=bool)
        """Only products the catalog holds are recommended (interactions may name retired ones)."""

        def column(values: np.ndarray, missing: object, dtype: object) -> np.ndarray:
            result = np.full(size, missing, dtype=dtype)
            if len(catalog):
                result[known] = values[positions[known]]
            return result

        self.price = column(catalog.price, np.nan, np.float64)
        self.stock = column(catalog.stock, 0, np.int64)
        self.promoted = column(catalog.promoted, False, np.bool_)
        self._columns = _strongest_by_column(version.neighbours, _EXPLAINING)
        self._names: dict[int, str] = {}
        self._reasons: dict[tuple[str, int], str] = {}
        self.category = column(np.asarray(catalog.categories, dtype=object)[catalog.category_codes]
                               if len(catalog) else np.zeros(0, dtype=object), None, object)  # fmt: skip
        self.created = column(catalog.created_at, np.iinfo(np.int64).min, np.int64)
        """Seconds since the epoch."""
        self._new: tuple[int, np.ndarray] | None = None
        self._positions, self._known = positions, known
        self._scopes: dict[str, np.ndarray] = {}

    def offer_scope(self, offer: Offer) -> np.ndarray:
        """Positions of the recommendable products `offer` applies to."""
        if offer.id not in self._scopes:
            mask = self.recommendable.copy()
            if len(self.catalog):
                mask[self._known] &= offer.scope.mask(self.catalog)[self._positions[self._known]]
            elif offer.scope.kind != "all":
                mask[:] = False
            self._scopes[offer.id] = np.flatnonzero(mask)
        return self._scopes[offer.id]

    def new_since(self, moment: datetime) -> np.ndarray:
        """Positions of recommendable products created at or after `moment` (kept for the minute)."""
        key = int(moment.timestamp()) // 60
        if self._new is None or self._new[0] != key:
            self._new = (key, np.flatnonzero(self.recommendable & (self.created >= key * 60)))
        return self._new[1]

    def allowed(self, filters: Filters, history: _History) -> np.ndarray:
        allowed = self.recommendable.copy()
        if filters.in_stock:
            allowed &= self.stock > 0
        if filters.categories:
            allowed &= np.isin(self.category, list(filters.categories))
        if filters.exclude_categories:
            allowed &= ~np.isin(self.category, list(filters.exclude_categories))
        if filters.min_price is not None:
            allowed &= self.price >= filters.min_price
        if filters.max_price is not None:
            allowed &= self.price <= filters.max_price
        if filters.exclude_viewed and len(history.items):
            allowed[history.items] = False
        if filters.exclude_purchased and len(history.items):
            bought = [item for item, event in zip(history.items, history.events, strict=True)
                      if event in PURCHASE_EVENTS]  # fmt: skip
            allowed[np.array(bought, dtype=np.int64)] = False
        return allowed

    def neighbours(self, position: int) -> np.ndarray:
        return np.asarray(self.version.neighbours[position].toarray()).ravel()

    def explain_block(self, histories: sparse.csr_matrix, top: np.ndarray) -> np.ndarray:
        """For each row's recommended items (`top`, -1 for none), the item of that row's history most
        similar to it (the heaviest among equals) among the `_EXPLAINING` most similar, or -1; a batch's
        at once, from the recommended items' columns and a sorted lookup in the histories (sparse
        slicing, or a loop over the answer, would cost more than the scoring)."""
        size = len(self.version.items)
        indptr, candidates, similarities = self._columns
        result = np.full(top.shape, -1, dtype=np.int64)
        slots = np.flatnonzero(top.ravel() >= 0)
        items = top.ravel()[slots]
        starts, lengths = indptr[items], indptr[items + 1] - indptr[items]
        if not lengths.sum():
            return result
        pair = np.repeat(np.arange(len(items)), lengths)
        entries = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        candidate, similarity = candidates[entries], similarities[entries]
        if not histories.has_sorted_indices:
            histories = histories.sorted_indices()
        owned = np.repeat(np.arange(histories.shape[0], dtype=np.int64), np.diff(histories.indptr))
        held = owned * size + histories.indices  # sorted: rows in order, items sorted within a row
        keys = (slots[pair] // top.shape[1]) * size + candidate
        found = np.minimum(np.searchsorted(held, keys), len(held) - 1)
        mine = (held[found] == keys) & (similarity > 0) if len(held) else np.zeros(len(keys), dtype=np.bool_)
        pair, candidate = pair[mine], candidate[mine]
        order = np.lexsort((-histories.data[found[mine]], -similarity[mine], pair))
        pair, candidate = pair[order], candidate[order]
        first = np.ones(len(pair), dtype=np.bool_)
        first[1:] = pair[1:] != pair[:-1]
        result.ravel()[slots[pair[first]]] = candidate[first]
        return result

    def name(self, position: int) -> str:
        if position not in self._names:
            item = str(self.version.items[position])
            self._names[position] = self.catalog[item].name if item in self.catalog else item
        return self._names[position]

    def reasons(self, explained: Sequence[int], events: Mapping[int, str] | None = None) -> list[str]:
        """'because you viewed X' from `explain_block`'s answer for each recommended item, with the verb
        of the shopper's latest interaction with X (`events` by position; without: 'looked at'). Each
        sentence is made once: a campaign writes millions of them."""
        result = []
        for because in explained:
            verb = "looked at" if events is None else _VERBS.get(events.get(because, ""), "looked at")
            reason = self._reasons.get((verb, because))
            if reason is None:
                reason = "picked for you" if because < 0 else f"because you {verb} {self.name(because)}"
                self._reasons[(verb, because)] = reason
            result.append(reason)
        return result


def _strongest_by_column(
    similarity: sparse.csr_matrix, keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSC arrays (indptr, indices, data) of `similarity` keeping each column's `keep` largest entries,
    largest first."""
    by_column = similarity.tocsc()
    lengths = np.diff(by_column.indptr)
    column = np.repeat(np.arange(by_column.shape[1]), lengths)
    order = np.lexsort((-by_column.data, column))
    rank = np.arange(by_column.nnz) - np.repeat(by_column.indptr[:-1], lengths)
    kept = order[rank < keep]
    indptr = np.concatenate([[0], np.cumsum(np.minimum(lengths, keep))])
    return indptr, by_column.indices[kept], by_column.data[kept]


def _rank_rows(
    model: Model,
    histories: sparse.csr_matrix,
    known: np.ndarray,
    allowed: np.ndarray,
    n: int,
    excluded: sparse.csr_matrix | None,
    purchases: list[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of `histories` (-inf where not allowed) and each row's n best positions, best first (-1 where
    fewer are allowed)."""
    if isinstance(model, Remembers):
        scores = np.asarray(model.score_known(histories, known), dtype=np.float32)
    else:
        scores = np.array(model.score(histories), dtype=np.float32)
    if not allowed.all():  # a column mask costs a pass over the scores even when it selects nothing
        scores[:, ~allowed] = -np.inf
    if excluded is not None:  # by the entries: a long-ago item's weight may have decayed to almost 0
        scores[np.repeat(np.arange(excluded.shape[0]), np.diff(excluded.indptr)), excluded.indices] = -np.inf
    for row, item in purchases:
        scores[row, item] = -np.inf
    return scores, top_items(scores, n)


def _select(matrix: sparse.csr_matrix, rows: Sequence[int]) -> sparse.csr_matrix:
    """`matrix`'s `rows` in that order, an empty row for -1."""
    picked = np.asarray(rows, dtype=np.int64)
    present = np.flatnonzero(picked >= 0)
    selector = sparse.csr_matrix(
        (np.ones(len(present), dtype=np.float32), (present, picked[present])),
        shape=(len(picked), matrix.shape[0]),
    )
    return selector @ matrix


def _share(counts: np.ndarray) -> np.ndarray:
    total = float(counts.sum())
    return counts / total if total > 0 else counts


def _always(reason: str) -> Callable[[np.ndarray], list[str]]:
    return lambda top: [reason] * len(top)


def _unit(scores: np.ndarray) -> np.ndarray:
    spread = float(scores.max() - scores.min()) if scores.size else 0.0
    return (scores - scores.min()) / spread if spread > 0 else np.zeros_like(scores)


def _top(scores: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n best allowed scores, best first (ties by position, so answers are stable)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = top_items(np.where(allowed, scores, -np.inf)[None, :], n)[0]
    return top[top >= 0]


def _with_promotions(top: np.ndarray, promoted: np.ndarray, n: int) -> np.ndarray:
    """`promoted` placed at evenly spaced slots among the first n of `top` (without repeating an item)."""
    promoted = promoted[:n]
    if not len(promoted):
        return top
    rest = [position for position in top if position not in set(promoted.tolist())]
    slots = {round(i * n / len(promoted)) for i in range(len(promoted))}
    result: list[int] = []
    promoted_iter, rest_iter = iter(promoted.tolist()), iter(rest)
    for slot in range(n):
        source = promoted_iter if slot in slots else rest_iter
        chosen = next(source, None)
        if chosen is None:
            chosen = next(rest_iter if source is promoted_iter else promoted_iter, None)
        if chosen is None:
            break
        result.append(chosen)
    return np.array(result, dtype=np.int64)
