"""The recommendations API: a shopper's recommendations by use case, an item's related items, a re-ranked
list. Every answer carries a recommendation id and is logged as shown on the `channel` given (see
`engage.recommend.service`). Read with an API token holding `recommendations:read` (or the operator's
session; `engage.web.auth`). Before the first training, every answer is a 503 (`engage.web.app` maps
NoModelError).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from engage.bootstrap import Engage
from engage.recommend.offers import Offer
from engage.recommend.service import Filters, Recommendations
from engage.web._responses import ID, json_errors, read_errors
from engage.web.auth import Readers

__all__ = ["recommendations_router"]

MAX_N = 100
MAX_WINDOW_HOURS = 366 * 24  # a year: a longer one overflowed the date arithmetic (a 500)
UseCase = Literal["for_you", "popular", "trending", "repurchase", "cart", "offer"]
Channel = Literal["web", "email", "sms", "chat"]  # where the answer is shown (its exposure's channel)


async def _filters(
    in_stock: bool = False,
    category: Annotated[list[str] | None, Query(description="Only these categories (repeatable).")] = None,
    exclude_category: Annotated[list[str] | None, Query(description="Not these categories.")] = None,
    min_price: float | None = Query(None, ge=0),
    max_price: float | None = Query(None, ge=0),
    exclude_purchased: bool = False,
    exclude_viewed: bool = False,
    promoted: int = Query(0, ge=0, le=MAX_N, description="Slots filled from promoted products."),
) -> Filters:
    return Filters(
        exclude_purchased=exclude_purchased,
        exclude_viewed=exclude_viewed,
        in_stock=in_stock,
        categories=tuple(category or ()),
        exclude_categories=tuple(exclude_category or ()),
        min_price=min_price,
        max_price=max_price,
        promoted=promoted,
    )


class RankRequest(BaseModel):
    user_id: str | None = Field(None, max_length=200, pattern=ID)
    items: list[Annotated[str, Field(max_length=200, pattern=ID)]] = Field(min_length=1, max_length=1000)
    channel: Channel = "web"


class ItemView(BaseModel):
    id: str
    score: float | None
    reason: str
    offer: dict[str, str] | None = None
    """For use_case=offer: its description, coupon, discount and scope."""


class RecommendationsView(BaseModel):
    recommendation_id: str
    use_case: str
    model_version: str | None
    items: list[ItemView]


def _view(answer: Recommendations, offers: Mapping[str, Offer] | None = None) -> Response:
    """The answer as JSON (`RecommendationsView`, serialized here rather than validated again by FastAPI);
    an offer's item carries what a page shows of it (its coupon, its discount)."""
    items = []
    for item in answer.items:
        view: dict[str, Any] = {"id": item.item_id, "score": item.score, "reason": item.reason}
        offer = offers.get(item.item_id) if offers is not None else None
        if offer is not None:
            view["offer"] = {
                "description": offer.description,
                "coupon": offer.coupon,
                "discount": str(offer.discount),
                "scope": str(offer.scope),
            }
        items.append(view)
    view = {
        "recommendation_id": answer.recommendation_id,
        "use_case": answer.use_case,
        "model_version": answer.model_version,
        "items": items,
    }
    return Response(orjson.dumps(view), media_type="application/json")


def recommendations_router(engage: Engage, readers: Readers) -> APIRouter:
    router = APIRouter(
        prefix="/v1", dependencies=[readers.scope("recommendations:read")], responses=read_errors(503)
    )
    recommender = engage.recommend.recommender

    @router.get("/recommendations/{user_id}", response_model=RecommendationsView)
    def recommendations(
        user_id: str = Path(max_length=200, pattern=ID),
        use_case: UseCase = "for_you",
        n: int = Query(10, ge=1, le=MAX_N),
        items: Annotated[list[str] | None, Query(description="The cart's items (use_case=cart).")] = None,
        window_hours: float = Query(
            24, gt=0, le=MAX_WINDOW_HOURS, description="The trending window (use_case=trending)."
        ),
        channel: Channel = "web",
        filters: Filters = Depends(_filters),
    ) -> Response:
        if use_case == "for_you":
            return _view(recommender.for_you(user_id, n, filters, channel=channel))
        if use_case == "popular":
            return _view(recommender.popular(n, filters, user=user_id, channel=channel))
        if use_case == "trending":
            window = timedelta(hours=window_hours)
            return _view(recommender.trending(n, window, filters, user=user_id, channel=channel))
        if use_case == "repurchase":
            return _view(recommender.repurchase(user_id, n, channel=channel))
        if use_case == "offer":
            return _view(recommender.offer(user_id, n, channel=channel), recommender.offers)
        if not items:
            message = "use_case=cart needs the cart's items: items=ID&items=ID"
            raise RequestValidationError([{"type": "missing", "loc": ("query", "items"), "msg": message}])
        return _view(recommender.cart(items, n, filters, user=user_id, channel=channel))

    @router.get("/related/{item_id}", response_model=RecommendationsView)
    def related(
        item_id: str = Path(max_length=200, pattern=ID),
        n: int = Query(10, ge=1, le=MAX_N),
        user_id: str | None = Query(None, max_length=200, pattern=ID),
        channel: Channel = "web",
        filters: Filters = Depends(_filters),
    ) -> Response:
        return _view(recommender.related(item_id, n, filters, user=user_id, channel=channel))

    @router.post("/rank", response_model=RecommendationsView, responses=json_errors(400))
    def rank(body: RankRequest) -> Response:
        return _view(recommender.rank(body.user_id, body.items, channel=body.channel))

    return router
