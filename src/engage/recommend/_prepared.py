"""The catalog aligned with one model version's item positions: what filtering, offers, exploration and
explanations need at every request, prepared once per version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
from scipy import sparse

from engage.recommend._history import PURCHASE_EVENTS, History
from engage.recommend.answers import Filters
from engage.recommend.catalog import Catalog
from engage.recommend.offers import Offer
from engage.recommend.registry import ModelVersion

__all__ = ["Prepared"]

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


class Prepared:
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

    def allowed(self, filters: Filters, history: History) -> np.ndarray:
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
