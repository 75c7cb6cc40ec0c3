"""Every template rendered against sample customers, as `engage templates check` and `engage check` do: a
variable a template uses without a default fails with its file and line, an SMS longer than its budget
is a warning, before any customer gets either.

The samples are a customer with every trait a template usually reads and one with only an address, an
event carrying the usual properties, a cart of two products and the catalog's first products standing in
for recommendations: no database and no trained model needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engage.errors import EngageError, Problem
from engage.messaging.cart import CartItem
from engage.messaging.config import (
    MessagingConfig,
    TemplateSettings,
    load_messaging_config,
    load_template_settings,
)
from engage.messaging.context import Recipient
from engage.messaging.links import LinkSigner
from engage.messaging.render import Job, Renderer, Result
from engage.messaging.templates import Templates
from engage.recommend.answers import Filters, Recommendations, RecommendedItem
from engage.recommend.catalog import Catalog, load_catalog
from engage.recommend.offers import Offer, load_offers
from engage.workspace.check import CheckContext

__all__ = ["SAMPLES", "SampleCheck", "check_samples", "check_rendered_templates"]

SAMPLES: dict[str, Recipient] = {
    "a customer with every trait": Recipient(
        "sample-full",
        "sample-user",
        True,
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "phone": "+14155550123",
            "timezone": "America/New_York",
        },
    ),
    "a customer with only an address": Recipient(
        "sample-minimal", "sample-visitor", False, {"email": "someone@example.com", "phone": "+14155550199"}
    ),
}


@dataclass(frozen=True)
class SampleCheck:
    template: str
    sample: str
    result: Result
    settings: TemplateSettings

    @property
    def problem(self) -> Problem | None:
        error = self.result.error
        return (
            Problem(error.file, error.line, f"{error.message} (rendering for {self.sample})")
            if error
            else None
        )


class _SampleAnswers:
    def __init__(self, catalog: Catalog, offers: list[Offer]):
        self.catalog = catalog
        self.offers = offers

    def recommend(
        self, use_case: str, user: str, n: int, filters: Filters, item: str | None, cart: list[str]
    ) -> Recommendations:
        picks = [product.id for product in list(self.catalog)[: n + 1] if product.id != item][:n]
        return Recommendations(
            use_case, [RecommendedItem(pick, 1.0, "a sample pick") for pick in picks], "sample"
        )

    def offer(self, user: str) -> tuple[Recommendations, Offer | None]:
        chosen = self.offers[0] if self.offers else None
        items = [RecommendedItem(chosen.id, 1.0, "a sample offer")] if chosen else []
        return Recommendations("offer", items, "sample"), chosen


def check_samples(
    templates: Templates, catalog: Catalog, offers: list[Offer], config: MessagingConfig
) -> Iterator[SampleCheck]:
    """Each template rendered for each sample customer."""
    products = list(catalog)[:2]
    event: dict[str, Any] = {
        "name": "Sample",
        "properties": {"order_id": "sample-order", "revenue": 42.0, "cart_id": "sample-cart"}
        | ({"product_id": products[0].id} if products else {}),
    }
    cart = [CartItem(product.id, quantity, None) for quantity, product in enumerate(products, start=1)]
    renderer = Renderer(
        templates,
        None,
        catalog,
        LinkSigner(b"samples", "https://engage.example.com"),
        config.shop,
        None,
        answers=_SampleAnswers(catalog, offers),
        cart_of=lambda profile_id: cart,
    )
    for name in templates.names():
        for label, recipient in SAMPLES.items():
            job = Job("00" * 16, name, recipient, event)
            yield SampleCheck(name, label, renderer.render(job), templates.settings(name))


def check_rendered_templates(ctx: CheckContext) -> list[Problem]:
    """`engage check`: each template rendered for the samples (an error names the file, line and variable),
    and a warning for an SMS over its segment budget. Skipped while the catalog, offers, messaging.yml or
    templates.yml have problems of their own (reported with those files)."""
    try:
        catalog = load_catalog(ctx.root)
        offers = load_offers(ctx.root, catalog)
        config = load_messaging_config(ctx.root)
        templates = Templates(ctx.root, load_template_settings(ctx.root))
    except (EngageError, OSError):
        return []
    problems: list[Problem] = []
    seen: set[tuple[str, int, str]] = set()
    for check in check_samples(templates, catalog, offers, config):
        error = check.result.error
        if error is not None:
            where = (error.file, error.line, error.message)
            if not error.message.startswith("syntax:") and where not in seen:  # a syntax error is the file's
                seen.add(where)
                problems.append(check.problem)  # type: ignore[arg-type]
            continue
        rendered = check.result.rendered
        if rendered is None or rendered.channel != "sms":
            continue
        budget = check.settings.max_segments or config.sms.max_segments
        length = rendered.sms_length
        if length.segments > budget:
            file = templates.files(check.template)[0]
            ctx.warn(Problem(file, 0, f"renders as {length} for {check.sample}; the budget is {budget}"))
    return sorted(set(problems))
