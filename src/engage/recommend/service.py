"""The recommender's use cases, named like Personalize's recipes, over the current model version.

Every answer is computed from the shopper's latest interactions read at request time (`rec_interactions`,
written by the recommend consumer as events arrive), so a view, an add or a click in an email changes the
next `for_you`, `related` or `rank` answer without a retrain. Filters apply after scoring, promotions last.
"""

from __future__ import annotations

import functools
import inspect
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import text

from engage.profiles.queries import find_profile_id
from engage.recommend._campaign import BATCH, THREADS, Batch
from engage.recommend._history import PURCHASE_EVENTS, History
from engage.recommend._prepared import Prepared
from engage.recommend._ranking import share, top_allowed, unit, with_promotions
from engage.recommend.answers import Filters, NoModelError, Recommendations, RecommendedItem
from engage.recommend.catalog import Catalog
from engage.recommend.config import RecommenderConfig
from engage.recommend.offers import Offer
from engage.recommend.registry import ModelStore, ModelVersion
from engage.store import Database
from engage.store.codec import time_param

__all__ = ["Filters", "RecommendedItem", "Recommendations", "Recommender", "NoModelError", "exposure"]

_PURCHASES = ", ".join(f"'{event}'" for event in sorted(PURCHASE_EVENTS))  # constants, for SQL
SHOWN_EVENT = "RecommendationShown"
_HISTORY = (
    "SELECT profile_id, item_id, weight, event FROM rec_interactions WHERE profile_id = coalesce("
    "(SELECT profile_id FROM identities WHERE kind = 'user' AND value = :user), "
    "(SELECT profile_id FROM identities WHERE kind = 'anonymous' AND value = :user)) "
    "ORDER BY at DESC, id DESC LIMIT :limit"
)  # two scalar subqueries: one ordered subquery instead costs SQLite a millisecond more
_KINDS = "SELECT kind FROM identities WHERE kind IN ('user', 'anonymous') AND value = :value"
"""With the kinds named, the primary key (kind, value) finds them; by value alone it was a table scan."""
_SEGMENTS = text("SELECT segment FROM segment_memberships WHERE profile_id = :profile AND exited_at IS NULL")


def exposure(answer: Recommendations, user: str, channel: str, *, user_id: bool) -> dict[str, Any]:
    """The `RecommendationShown` track call of `answer` shown to `user` (a user id when `user_id`, else an
    anonymous id) on `channel`; its messageId is the recommendation's, so it is logged once."""
    return {
        "type": "track",
        "event": SHOWN_EVENT,
        "userId" if user_id else "anonymousId": user,
        "messageId": f"rec-{answer.recommendation_id}",
        "properties": {
            "recommendation_id": answer.recommendation_id,
            "use_case": answer.use_case,
            "items": answer.item_ids,
            "model_version": answer.model_version,
        },
        "context": {"channel": channel},
    }


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
        self._prepared: tuple[str, Prepared] | None = None
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="engage-recommend")

    def shown(self, answer: Recommendations, user: str | None, channel: str | None) -> Recommendations:
        """Log `answer` as shown to `user` on `channel` (when there are a shopper, a channel, a recorder)."""
        if user is None or channel is None or self.record is None or not answer.items:
            return answer
        self.record(exposure(answer, user, channel, user_id=self._is_user_id(user)))
        return answer

    # -- use cases --------------------------------------------------------------------------------

    @_exposed
    def for_you(self, user: str | None, n: int = 10, filters: Filters = Filters()) -> Recommendations:
        """Personalized for a user id or anonymous id from their latest interactions. A shopper with no
        history gets what is popular in their segments, or popular items. One slot of five or more goes to
        a new product the model cannot know yet (`serving.exploration`)."""
        version, prepared = self._version()
        profile_id, history = self._history(user, version)
        explore = self._exploration(user, history, prepared, n)
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
        answers: dict[str, Recommendations] = {}
        pending: Batch | None = None
        for start in range(0, len(users), BATCH):
            batch = Batch.start(self.database, self.config.serving.history, self._pool, version, prepared,
                                list(users[start : start + BATCH]), n, filters)  # fmt: skip
            if pending is not None:  # while the next batch is ranked
                answers.update(self._campaign_answers(pending, n, filters, version, prepared))
            pending = batch
        if pending is not None:
            answers.update(self._campaign_answers(pending, n, filters, version, prepared))
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
            scores = 0.7 * unit(scores) + 0.3 * unit(mine)
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
        empty = History.empty()
        if not scores.any():
            return self._answer("cart", version, None, prepared, version.popularity.counts, n, filters,
                                empty, _always("popular"), np.array(positions, dtype=np.int64))  # fmt: skip
        return self._answer("cart", version, None, prepared, scores, n, filters, empty,
                            _always("goes with your cart"), np.array(positions, dtype=np.int64))  # fmt: skip

    @_exposed
    def popular(self, n: int = 10, filters: Filters = Filters(), user: str | None = None) -> Recommendations:
        version, prepared = self._version()
        empty = History.empty()
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
        empty = History.empty()
        return self._answer("trending", version, None, prepared, scores, n, filters, empty,
                            _always("trending"), only_positive=True)  # fmt: skip

    # -- shared steps ------------------------------------------------------------------------------

    def _version(self) -> tuple[ModelVersion, Prepared]:
        version = self.store.current()
        if version is None:
            raise NoModelError("no recommendation model yet: run `engage recs train`")
        if self._prepared is None or self._prepared[0] != version.version:
            self._prepared = (version.version, Prepared(version, self.catalog))
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
        shares = np.stack([share(version.segment_popularity[segment]) for segment in segments])

        def explain(top: np.ndarray) -> list[str]:
            return [f"popular with {segments[row]}" for row in shares[:, top].argmax(axis=0)]

        return shares.sum(axis=0), explain

    def _exploration(self, who: str | None, history: History, prepared: Prepared, n: int) -> np.ndarray:
        """New products to explore with, in the order to use them: drawn at random, three times as likely
        from a category of the shopper's history; the same for one shopper (`who`: the id the shop knows
        them by) on one day."""
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
        seed = zlib.crc32(f"{who}:{now.date().isoformat()}".encode())
        rng = np.random.default_rng(seed)
        return new[rng.choice(len(new), size=len(new), replace=False, p=weight / weight.sum())]

    def _campaign_answers(
        self, batch: Batch, n: int, filters: Filters, version: ModelVersion, prepared: Prepared
    ) -> dict[str, Recommendations]:
        """`batch`'s answers once ranked: each from its row, a shopper without history by `for_you`."""
        exploring = len(prepared.new_since(self.clock() - self.config.serving.exploration.new_for)) > 0
        result = {}
        for user in batch.users:
            profile, row = batch.row(user)
            if profile is None or row is None:
                result[user] = self.for_you(user, n, filters, channel=None)
                continue
            scores, best, because = row
            explained = dict(zip(best.tolist(), because.tolist(), strict=True))
            explore = None
            if exploring:
                explore = self._exploration(user, batch.history(profile), prepared, n)
            result[user] = self._finish(
                "for_you", version, profile, prepared, scores, n, filters, best[best >= 0],
                lambda top, e=explained: prepared.reasons([e.get(p, -1) for p in top.tolist()]), explore,
            )  # fmt: skip
        return result

    def _is_user_id(self, user: str) -> bool:
        """Whether `user` is a known user id (else it is taken as an anonymous id, if known, or a user id)."""
        kinds = {kind for (kind,) in self.database.fetch(_KINDS, {"value": user})}
        return "user" in kinds or "anonymous" not in kinds

    def _profile(self, user: str | None) -> str | None:
        if user is None:
            return None
        with self.database.read() as connection:
            return find_profile_id(connection, user)

    def _history(self, user: str | None, version: ModelVersion) -> tuple[str | None, History]:
        """The shopper's profile and latest interactions, in one round trip when they have any (a user id
        before an anonymous id of the same value, as `find_profile_id`)."""
        if user is None:
            return None, History.empty()
        rows = self.database.fetch(_HISTORY, {"user": user, "limit": self.config.serving.history})
        if not rows:
            return self._profile(user), History.empty()
        index = version.item_index
        known = [(index[item], weight, event) for _, item, weight, event in rows if item in index]
        return rows[0][0], History(
            np.array([position for position, _, _ in known], dtype=np.int64),
            np.array([weight for _, weight, _ in known], dtype=np.float64),
            [event for _, _, event in known],
        )

    def _answer(
        self,
        use_case: str,
        version: ModelVersion,
        profile_id: str | None,
        prepared: Prepared,
        scores: np.ndarray,
        n: int,
        filters: Filters,
        history: History,
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
        top = top_allowed(scores, allowed, n)
        return self._finish(use_case, version, profile_id, prepared, scores, n, filters, top, explain,
                            explore, allowed)  # fmt: skip

    def _finish(
        self,
        use_case: str,
        version: ModelVersion,
        profile_id: str | None,
        prepared: Prepared,
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
            promoted = top_allowed(scores, allowed & prepared.promoted, filters.promoted)
            top = with_promotions(top, promoted, n)
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


def _always(reason: str) -> Callable[[np.ndarray], list[str]]:
    return lambda top: [reason] * len(top)
