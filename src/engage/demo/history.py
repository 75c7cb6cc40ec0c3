"""The shop's past: about 90 days of storefront traffic, imported the way a shop moving to engage imports
its history (`/v1/import`'s path, in process), before any journey exists, so nobody gets a message about
last month."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from engage.bootstrap import Engage
from engage.demo.shoppers import Shopper
from engage.demo.storefront import Cart, Storefront, signup

__all__ = ["history_calls", "import_history"]

BATCH = 500


def history_calls(
    shoppers: list[Shopper], storefront: Storefront, start: datetime, end: datetime, seed: int
) -> Iterator[list[dict[str, Any]]]:
    """Each shopper's calls before `end`, in time order: anonymous visits in the week before they sign up,
    the sign-up, then signed-in visits at their own pace."""
    rng = random.Random(seed + 1)
    for shopper in shoppers:
        if shopper.joined >= end:
            continue
        calls: list[dict[str, Any]] = []
        when = max(start, shopper.joined - timedelta(days=rng.uniform(0, 7)))
        carts = 0
        while when < shopper.joined:
            cart = Cart(f"cart-{shopper.number}-{carts}")
            visit, when = storefront.visit(rng, shopper, when, cart, signed_in=False)
            calls += visit
            carts += 1
            when += timedelta(days=rng.expovariate(1.5))
        calls += signup(rng, shopper, shopper.joined)
        when = shopper.joined
        while True:
            when += timedelta(days=rng.expovariate(shopper.activity))
            if when >= end:
                break
            carts += 1
            cart = Cart(f"cart-{shopper.number}-{carts}")
            visit, when = storefront.visit(rng, shopper, when, cart, signed_in=True)
            calls += visit
        yield calls


def import_history(
    engage: Engage, batches: Iterator[list[dict[str, Any]]], advance: Callable[[int], None]
) -> int:
    """Ingest the calls and let the consumers take them in; how many were stored."""
    stored = 0
    pending: list[dict[str, Any]] = []
    for calls in batches:
        pending += calls
        advance(1)
        if len(pending) >= BATCH:
            stored += _ingest(engage, pending)
            pending = []
    if pending:
        stored += _ingest(engage, pending)
    engage.stream.drain(engage.consumers)
    return stored


def _ingest(engage: Engage, calls: list[dict[str, Any]]) -> int:
    result = engage.ingestor.batch({"batch": calls}, 0)
    engage.stream.drain(engage.consumers)
    return result.accepted
