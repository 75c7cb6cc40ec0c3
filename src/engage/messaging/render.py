"""Rendering messages, one or a batch: each customer's context, and for a batch of one template the
recommendations its first message asked for computed for all the others at once (`Recommender.for_many`,
a thousand shoppers per matrix) instead of one request each."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engage.messaging.cart import CartItem, current_cart
from engage.messaging.config import ShopConfig
from engage.messaging.context import Answers, MessageContext, Prefetched, Recipient, RecommenderAnswers
from engage.messaging.links import LinkSigner
from engage.messaging.templates import Rendered, TemplateError, Templates
from engage.recommend.answers import Recommendations
from engage.recommend.catalog import Catalog
from engage.recommend.service import Recommender
from engage.store import Database

__all__ = ["Renderer", "Job", "Result"]


@dataclass(frozen=True)
class Job:
    """One message to render."""

    send_id: str
    template: str
    recipient: Recipient
    event: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    job: Job
    rendered: Rendered | None
    error: TemplateError | None
    links: list[dict[str, Any]]
    exposures: list[Recommendations]
    asked: list[tuple[Any, ...]]
    """What it asked the recommender (`context.prefetch_key`), for a batch to ask for the others at once."""


class Renderer:
    def __init__(
        self,
        templates: Templates,
        recommender: Recommender | None,
        catalog: Catalog,
        signer: LinkSigner,
        shop: ShopConfig,
        database: Database | None,
        answers: Answers | None = None,
        cart_of: Callable[[str], list[CartItem]] | None = None,
    ):
        if answers is None:
            if recommender is None:
                raise ValueError("a renderer needs a recommender or answers")
            answers = RecommenderAnswers(recommender)
        self.templates = templates
        self.recommender = recommender
        """None to render with `answers` alone (samples), without batch prefetching."""
        self.answers = answers
        self.catalog = catalog
        self.signer = signer
        self.shop = shop
        self.database = database
        self.cart_of = cart_of or self._cart

    def render(self, job: Job, prefetched: Prefetched | None = None) -> Result:
        channel = job.template.partition("/")[0]
        context = MessageContext(
            job.send_id, channel, job.recipient, self.answers, self.catalog, self.signer, self.shop,
            self.cart_of, job.event, job.data, prefetched or {},
        )  # fmt: skip
        try:
            rendered = self.templates.render(job.template, context.variables())
        except TemplateError as exc:
            return Result(job, None, exc, [], [], context.asked)
        return Result(job, rendered, None, context.links, context.exposures, context.asked)

    def render_batch(self, jobs: Sequence[Job]) -> list[Result]:
        """Each job rendered; per template, what the first one asked the recommender for `for_you` is asked
        for the rest of that template's jobs at once."""
        results: dict[str, Result] = {}
        by_template: dict[str, list[Job]] = {}
        for job in jobs:
            by_template.setdefault(job.template, []).append(job)
        for first, *rest in by_template.values():
            probe = results[first.send_id] = self.render(first)
            prefetched: Prefetched = {}
            if rest and probe.exposures and self.recommender is not None:  # a model answered
                for key in dict.fromkeys(probe.asked):
                    use_case, n, filters = key
                    if use_case == "for_you":
                        prefetched[key] = self.recommender.for_many(
                            [job.recipient.identity for job in rest], n, filters
                        )
            for job in rest:
                results[job.send_id] = self.render(job, prefetched)
        return [results[job.send_id] for job in jobs]

    def _cart(self, profile_id: str) -> list[CartItem]:
        if self.database is None or not profile_id:
            return []
        with self.database.read() as connection:
            return current_cart(connection, profile_id)
