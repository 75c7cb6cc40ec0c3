"""The recommender's use cases, named like Personalize's recipes, over the current model version.

Every answer is computed from the shopper's latest interactions read at request time (`rec_interactions`,
written by the recommend consumer as events arrive), so a view, an add or a click in an email changes the
next `for_you`, `related` or `rank` answer without a retrain. Filters apply after scoring, promotions last.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy import sparse
from sqlalchemy import text

from engage.profiles.queries import find_profile_id
from engage.recommend.catalog import Catalog
from engage.recommend.config import RecommenderConfig
from engage.recommend.registry import ModelStore, ModelVersion
from engage.store import Database
from engage.store.codec import time_param

__all__ = ["Filters", "RecommendedItem", "Recommendations", "Recommender", "NoModelError"]

PURCHASE_EVENTS = frozenset({"OrderCompleted"})
_PURCHASES = ", ".join(f"'{event}'" for event in sorted(PURCHASE_EVENTS))  # constants, for SQL
SHOWN_EVENT = "RecommendationShown"
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


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    score: float | None
    """None for an item the model does not know (`rank` returns them last, unscored)."""
    reason: str


@dataclass(frozen=True)
class Recommendations:
    use_case: str
    items: list[RecommendedItem]
    model_version: str | None
    profile_id: str | None = None
    recommendation_id: str = field(default_factory=lambda: uuid.uuid4().hex)

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

    def row(self, size: int) -> sparse.csr_matrix:
        matrix = sparse.csr_matrix(
            (self.weights.astype(np.float32), (np.zeros(len(self.items), dtype=np.int64), self.items)),
            shape=(1, size),
        )
        matrix.sum_duplicates()
        return matrix


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
    ):
        self.database = database
        self.store = store
        self.config = config
        self.catalog = catalog
        self.clock = clock
        self.record = record
        self._prepared: tuple[str, _Prepared] | None = None

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
        """Personalized for a user id or anonymous id; popular items (filtered) when there is no history."""
        version, prepared = self._version()
        profile_id, history = self._history(user, version)
        if not len(history.items):
            return self._answer("for_you", version, profile_id, prepared, version.popularity.counts, n,
                                filters, history, _always("popular"))  # fmt: skip
        scores = version.model.score(history.row(len(version.items)))[0]
        return self._answer("for_you", version, profile_id, prepared, scores, n, filters, history,
                            lambda top: prepared.reasons(top, history))  # fmt: skip

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
            mine = version.model.score(history.row(len(version.items)))[0]
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
            scores = version.model.score(history.row(len(version.items)))[0]
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

    def _is_user_id(self, user: str) -> bool:
        """Whether `user` is a known user id (else it is taken as an anonymous id, if known, or a user id)."""
        with self.database.read() as connection:
            kinds = {
                kind
                for (kind,) in connection.execute(
                    text("SELECT kind FROM identities WHERE value = :value"), {"value": user}
                )
            }
        return "user" in kinds or "anonymous" not in kinds

    def _profile(self, user: str | None) -> str | None:
        if user is None:
            return None
        with self.database.read() as connection:
            return find_profile_id(connection, user)

    def _history(self, user: str | None, version: ModelVersion) -> tuple[str | None, _History]:
        profile_id = self._profile(user)
        if profile_id is None:
            return None, _History.empty()
        with self.database.read() as connection:
            rows = connection.execute(
                text(
                    "SELECT item_id, weight, event FROM rec_interactions WHERE profile_id = :profile "
                    "ORDER BY at DESC, id DESC LIMIT :limit"
                ),
                {"profile": profile_id, "limit": self.config.serving.history},
            ).fetchall()
        index = version.item_index
        known = [(index[item], weight, event) for item, weight, event in rows if item in index]
        return profile_id, _History(
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
    ) -> Recommendations:
        allowed = prepared.allowed(filters, history)
        if exclude is not None and len(exclude):
            allowed[exclude] = False
        if only_positive:
            allowed &= scores > 0
        top = _top(scores, allowed, n)
        if filters.promoted:
            promoted = _top(scores, allowed & prepared.promoted, filters.promoted)
            top = _with_promotions(top, promoted, n)
        reasons = explain(top)
        items = [
            RecommendedItem(
                str(version.items[position]),
                float(scores[position]),
                "promoted" if prepared.promoted[position] and filters.promoted else why,
            )
            for position, why in zip(top, reasons, strict=True)
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
        self._by_column = version.neighbours.tocsc()
        """The similarities by recommended item: explaining ten items reads ten columns."""
        self.category = column(np.asarray(catalog.categories, dtype=object)[catalog.category_codes]
                               if len(catalog) else np.zeros(0, dtype=object), None, object)  # fmt: skip

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

    def reasons(self, top: np.ndarray, history: _History) -> list[str]:
        """'because you viewed X' for each recommended item: the history item most similar to it (the
        answer's columns, then the history's rows: indexing item by item costs more than the scoring)."""
        if not len(top):
            return []
        similar = self._by_column[:, top].tocsr()[history.items].toarray()
        best = similar.argmax(axis=0)
        reasons = []
        for column, row in enumerate(best):
            if similar[row, column] <= 0:
                reasons.append("picked for you")
                continue
            item = str(self.version.items[history.items[row]])
            name = self.catalog[item].name if item in self.catalog else item
            reasons.append(f"because you {_VERBS.get(history.events[row], 'looked at')} {name}")
        return reasons


def _always(reason: str) -> Callable[[np.ndarray], list[str]]:
    return lambda top: [reason] * len(top)


def _unit(scores: np.ndarray) -> np.ndarray:
    spread = float(scores.max() - scores.min()) if scores.size else 0.0
    return (scores - scores.min()) / spread if spread > 0 else np.zeros_like(scores)


def _top(scores: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n best allowed scores, best first (ties by position, so answers are stable)."""
    candidates = np.flatnonzero(allowed)
    if n <= 0 or not len(candidates):
        return np.zeros(0, dtype=np.int64)
    values = scores[candidates]
    if len(candidates) > n:
        threshold = values[np.argpartition(-values, n - 1)[n - 1]]
        above = candidates[values > threshold]
        tied = candidates[values == threshold][: n - len(above)]  # the first positions among equals
        candidates = np.concatenate([above, tied])
        values = scores[candidates]
    order = np.lexsort((candidates, -values))
    return candidates[order]


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
