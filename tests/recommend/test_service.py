"""The recommender's use cases through its Python API, on a trained model, on SQLite and PostgreSQL.

Shoppers' events go in through the ingestor and the stream, as in production; the model is trained from
what the recommend consumer wrote; nothing is mocked.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from engage.bootstrap import Engage, bootstrap
from engage.recommend.catalog import Product, write_catalog
from engage.recommend.config import load_recommender_config
from engage.recommend.registry import ModelStore
from engage.recommend.service import Filters
from engage.recommend.training import load_interactions
from engage.workspace import Workspace
from tests.conftest import MakeWorkspace
from tests.helpers import Clock, identify, send, track

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
CATEGORIES = ("apparel", "books", "electronics", "outdoors", "home")
PER_CATEGORY = 20


def product(category: str, number: int, **overrides: object) -> Product:
    fields: dict[str, object] = {
        "id": f"{category}-{number:02d}",
        "name": f"{category.title()} thing {number}",
        "category": category,
        "style": "plain",
        "description": "A thing.",
        "price": 10.0 + number,
        "image_url": "",
        "stock": 0 if number == 3 else 5,
        "promoted": number == 19,
        "created_at": NOW - timedelta(days=100),
    }
    return Product(**{**fields, **overrides})  # type: ignore[arg-type]


OFFERS = """
offers:
  - {id: books-20, description: 20% off books, coupon: BOOKS20, discount: {percent: 20},
     scope: {category: books}, preference: 0.9}
  - {id: outdoors-10, description: 10 off outdoors, coupon: OUT10, discount: {amount: 10},
     scope: {category: outdoors}, preference: 0.8}
  - {id: gone, description: over, coupon: GONE, discount: {percent: 50}, scope: {category: books},
     ends: 2026-01-01}
  - {id: welcome, description: 10% off, coupon: WELCOME10, discount: {percent: 10}, scope: all,
     fallback: true, priority: 1}
"""
BOOKWORMS = """
name: bookworms
description: Shoppers whose persona is bookworm.
condition:
  trait: persona
  eq: bookworm
"""


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def shop(make_workspace: MakeWorkspace, database_url: str, clock: Clock) -> Iterator[Engage]:
    """A workspace with 100 products in 5 categories and 60 shoppers who each browse two favourite
    categories (and buy a little), trained once."""
    workspace = make_workspace(database_url=database_url)
    new = [product("home", n, created_at=NOW - timedelta(days=2)) for n in (20, 21)]
    write_catalog(
        [product(c, n) for c in CATEGORIES for n in range(PER_CATEGORY)] + new,
        workspace.root / "catalog" / "products.csv",
    )
    (workspace.root / "offers.yml").write_text(OFFERS)
    config = workspace.root / "recommender.yml"  # one model, not auto's search at every training: the use
    config.write_text(config.read_text().replace("model: auto", "model: ease"))  # cases are the subject
    (workspace.root / "segments" / "bookworms.yml").write_text(BOOKWORMS)
    engage = bootstrap(workspace, clock=clock)
    rng = random.Random(7)
    calls = []
    for shopper in range(60):
        favourites = rng.sample(CATEGORIES, 2)
        for step in range(25):
            category = rng.choice(favourites)
            item = f"{category}-{rng.randrange(PER_CATEGORY):02d}"
            at = (NOW - timedelta(days=30) + timedelta(hours=shopper + step)).isoformat()
            calls.append(track(f"s{shopper}", "ProductViewed", at, product_id=item))
            if step % 10 == 9:
                calls.append(track(f"s{shopper}", "OrderCompleted", at, products=[{"product_id": item}]))
    for start in range(0, len(calls), 400):
        send(engage, *calls[start : start + 400])
    engage.recommend.train()
    yield engage
    engage.close()


def categories_of(items: list[str]) -> list[str]:
    return [item.split("-")[0] for item in items]


def test_a_new_visitor_who_views_three_products_of_a_category_gets_that_category(shop: Engage) -> None:
    recommender = shop.recommend.recommender
    assert recommender.for_you("newcomer").items[0].reason == "popular"  # no history: popular
    send(shop, *(track("newcomer", "ProductViewed", product_id=f"books-{n:02d}") for n in (1, 5, 9)))
    top = recommender.for_you("newcomer", n=10, filters=Filters(exclude_viewed=True))
    assert len(top.items) == 10
    assert categories_of(top.item_ids).count("books") >= 6
    assert top.items[0].reason.startswith("because you viewed Books thing")


def test_a_new_interaction_changes_the_next_answer_without_a_retrain(shop: Engage) -> None:
    recommender = shop.recommend.recommender
    version = shop.recommend.store.current()
    before = recommender.for_you("s1", n=10).item_ids
    target = min(CATEGORIES, key=categories_of(before).count)  # a category s1 has not been shown much
    send(shop, *(track("s1", "ProductAdded", product_id=f"{target}-{n:02d}") for n in range(12)))
    after = recommender.for_you("s1", n=10).item_ids
    assert after != before
    assert categories_of(after).count(target) > categories_of(before).count(target)
    assert shop.recommend.store.current() is version  # the same model answered both


def test_with_a_half_life_what_a_shopper_did_last_leads_in_every_channel(shop: Engage, clock: Clock) -> None:
    config = shop.workspace.root / "recommender.yml"
    config.write_text(config.read_text().replace("half_life: auto", "half_life: 2"))
    engage = bootstrap(Workspace.load(shop.workspace.root), clock=clock)
    try:
        version = engage.recommend.train()
        assert version.model.half_life == 2.0 and version.manifest["half_life"] == 2.0
        recommender = engage.recommend.recommender
        favourites = set(categories_of(recommender.for_you("s3", n=10, channel=None).item_ids))
        latest = next(category for category in CATEGORIES if category not in favourites)
        send(engage, *(track("s3", "ProductAdded", product_id=f"{latest}-{n:02d}") for n in (4, 8, 12)))
        unseen = Filters(exclude_viewed=True)
        top = recommender.for_you("s3", n=4, filters=unseen, channel=None)
        assert categories_of(top.item_ids).count(latest) >= 3, "three adds now outweigh 25 views before"
        summed = shop.recommend.recommender.for_you("s3", n=4, filters=unseen, channel=None)  # no half-life
        assert categories_of(summed.item_ids).count(latest) < categories_of(top.item_ids).count(latest)

        audience = ["s3", "s4"]  # s3 changed since training, s4 is their training row
        answers = recommender.for_many(audience, n=8)
        for user in audience:
            assert answers[user].item_ids == recommender.for_you(user, n=8, channel=None).item_ids, user
    finally:
        engage.close()


def test_filters_narrow_every_answer(shop: Engage) -> None:
    recommender = shop.recommend.recommender
    answer = recommender.for_you(
        "s2", n=50, filters=Filters(in_stock=True, categories=("books", "home"), min_price=12, max_price=25)
    )
    assert answer.items
    assert set(categories_of(answer.item_ids)) <= {"books", "home"}
    assert not any(item.endswith("-03") for item in answer.item_ids)  # out of stock
    assert all(12 <= 10 + int(item.split("-")[1]) <= 25 for item in answer.item_ids)
    assert "books" not in categories_of(
        recommender.popular(n=30, filters=Filters(exclude_categories=("books",))).item_ids
    )
    bought = {f"apparel-{n:02d}" for n in range(4)}
    send(shop, track("buyer", "OrderCompleted", products=[{"product_id": item} for item in bought]))
    assert bought & set(recommender.for_you("buyer", n=100).item_ids)
    assert not bought & set(
        recommender.for_you("buyer", n=100, filters=Filters(exclude_purchased=True)).item_ids
    )


def test_promoted_slots_come_from_the_promoted_products(shop: Engage) -> None:
    answer = shop.recommend.recommender.for_you("s3", n=10, filters=Filters(promoted=2))
    promoted = [item for item in answer.items if item.reason == "promoted"]
    assert len(answer.items) == 10 and len(promoted) == 2
    assert all(item.item_id.endswith("-19") for item in promoted)
    assert len(set(answer.item_ids)) == 10


def test_rank_puts_unknown_items_last_unscored(shop: Engage) -> None:
    answer = shop.recommend.recommender.rank("s4", ["books-01", "not-a-product", "home-02", "apparel-05"])
    assert answer.item_ids[-1] == "not-a-product" and answer.items[-1].score is None
    scores = [item.score for item in answer.items[:-1]]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


def test_related_cart_popular_trending_and_repurchase(shop: Engage, clock: Clock) -> None:
    recommender = shop.recommend.recommender
    related = recommender.related("books-04", n=10)
    assert "books-04" not in related.item_ids
    assert categories_of(related.item_ids).count("books") >= 3
    assert related.items[0].reason == "often together with Books thing 4"
    cart = recommender.cart(["outdoors-01", "outdoors-02"], n=5)
    assert not {"outdoors-01", "outdoors-02"} & set(cart.item_ids)
    assert len(recommender.popular(n=7).items) == 7
    send(shop, *(track(f"fan{n}", "ProductViewed", product_id="home-11") for n in range(5)))
    assert recommender.trending(n=3, window=timedelta(hours=1)).item_ids[0] == "home-11"
    send(shop, *(track("loyal", "OrderCompleted", products=[{"product_id": "home-07"}]) for _ in range(3)))
    send(shop, track("loyal", "OrderCompleted", products=[{"product_id": "books-02"}]))
    repurchase = recommender.repurchase("loyal")
    assert repurchase.item_ids == ["home-07", "books-02"]
    assert repurchase.items[0].reason == "you bought it 3 times"


def test_auto_trains_the_model_its_validation_chooses(shop: Engage) -> None:
    config = shop.workspace.root / "recommender.yml"
    config.write_text(config.read_text().replace("model: ease", "model: auto"))
    shop.recommend.config = load_recommender_config(shop.workspace.root)
    version = shop.recommend.train()
    choice = version.manifest["choice"]
    assert version.manifest["model"] == "auto" and choice["reason"] == "validation"
    best = max(choice["candidates"], key=lambda candidate: candidate["ndcg_at_10"])
    assert (choice["model"], choice["params"]) == (best["model"], best["params"])
    assert {candidate["model"] for candidate in choice["candidates"]} >= {"popularity", "ease", "als"}
    recommender = shop.recommend.recommender
    audience = [f"s{n}" for n in range(10)]
    answers = recommender.for_many(audience, n=10)  # what training remembered gives for_you's answers
    assert all(answers[user].item_ids == recommender.for_you(user, n=10).item_ids for user in audience)


def test_a_new_version_is_swapped_in_by_every_process(shop: Engage, clock: Clock) -> None:
    other_process = ModelStore(shop.recommend.store.folder)
    first = other_process.wait()
    assert first is not None and first.version == shop.recommend.store.current().version  # type: ignore[union-attr]
    clock.advance(hours=1)
    newer = shop.recommend.train()
    assert shop.recommend.store.current() is newer
    assert other_process.wait().version == newer.version  # type: ignore[union-attr]
    assert [m["version"] for m in shop.recommend.store.manifests()] == [first.version, newer.version]


def test_every_answer_for_a_shopper_is_logged_and_its_clicks_come_back_as_interactions(shop: Engage) -> None:
    recommender = shop.recommend.recommender
    answer = recommender.for_you("s6", n=4, channel="email")
    recommender.popular(n=4)  # for no shopper: nothing to attribute, not logged
    send(shop)
    shown = [event for event in shop.log.read(0, limit=100_000) if event.event == "RecommendationShown"]
    assert len(shown) == 1
    assert shown[0].channel == "email" and shown[0].user_id == "s6"
    assert shown[0].properties["recommendation_id"] == answer.recommendation_id
    assert shown[0].properties["items"] == answer.item_ids
    clicked = answer.item_ids[0]
    send(
        shop,
        {
            "type": "track",
            "userId": "s6",
            "event": "RecommendationClicked",
            "properties": {"recommendation_id": answer.recommendation_id, "product_id": clicked},
            "context": {"channel": "email"},
        },
    )
    frame = load_interactions(shop.database)
    click = frame[(frame["event"] == "RecommendationClicked")]
    assert click[["item_id", "channel", "weight"]].values.tolist() == [[clicked, "email", 2.0]]


def test_retraining_is_scheduled_with_missed_runs_coalesced(shop: Engage, clock: Clock) -> None:
    scheduler = BackgroundScheduler(timezone=UTC)
    shop.recommend.schedule(scheduler)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("recommend-train")
        assert job.trigger.interval == timedelta(hours=6)  # training.every, the default
        assert job.coalesce and job.max_instances == 1
        assert job.trigger.start_date == NOW + timedelta(hours=6)  # a version exists: the next one in 6 h
        before = shop.recommend.store.current()
        clock.advance(hours=6)
        job.func()
        assert shop.recommend.store.current() is not before
    finally:
        scheduler.shutdown(wait=False)


def test_the_offer_follows_what_the_shopper_likes_and_falls_back_by_rule(shop: Engage) -> None:
    recommender = shop.recommend.recommender
    send(shop, *(track("reader", "ProductViewed", product_id=f"books-{n:02d}") for n in range(6)))
    offers = recommender.offer("reader", n=3, channel="web")
    assert offers.item_ids[0] == "books-20"
    assert offers.items[0].reason == "for what you like: category books"
    assert offers.item_ids[-1] == "welcome"  # the fallback always closes the list
    assert "gone" not in offers.item_ids  # ended
    stranger = recommender.offer("nobody-knows-me", channel=None)
    assert stranger.item_ids == ["welcome"] and stranger.items[0].reason == "our offer for everyone"
    send(shop)
    shown = [event for event in shop.log.read(0, limit=100_000) if event.event == "RecommendationShown"]
    assert [(e.properties["use_case"], e.properties["items"]) for e in shown] == [("offer", offers.item_ids)]


def test_a_new_product_gets_an_exploration_slot(shop: Engage) -> None:
    recommender = shop.recommend.recommender
    answer = recommender.for_you("s7", n=10)
    assert len(answer.items) == 10
    assert answer.items[-1].item_id in {"home-20", "home-21"}
    assert answer.items[-1].reason == "new arrival"
    assert [item.reason for item in answer.items].count("new arrival") == 1
    assert recommender.for_you("s7", n=10).item_ids == answer.item_ids  # the same for the day
    assert not {"home-20", "home-21"} & set(recommender.for_you("s7", n=4).item_ids)  # too few slots
    books_only = recommender.for_you("s7", n=10, filters=Filters(categories=("books",)))
    assert set(categories_of(books_only.item_ids)) == {"books"}  # filters hold for the slot too


def test_a_shopper_with_no_history_gets_what_is_popular_in_their_segment(shop: Engage) -> None:
    # Bookworms read: the readers among the trained shoppers say what bookworms like.
    send(shop, *(identify(f"s{n}", persona="bookworm") for n in range(60)
                 if n % 3 == 0))  # fmt: skip
    readers = [f"r{n}" for n in range(25)]
    send(shop, *(identify(reader, persona="bookworm") for reader in readers))
    send(shop, *(track(reader, "ProductViewed", product_id=f"books-{n:02d}") for reader in readers
                 for n in (2, 4, 6)))  # fmt: skip
    shop.recommend.train()
    send(shop, identify("bookish-newcomer", persona="bookworm"))
    answer = shop.recommend.recommender.for_you("bookish-newcomer", n=5)
    assert set(answer.item_ids[:3]) == {"books-02", "books-04", "books-06"}
    assert answer.items[0].reason == "popular with bookworms"
    assert shop.recommend.recommender.for_you("plain-newcomer", n=5).items[0].reason == "popular"


def test_a_campaign_scores_its_audience_in_one_pass_with_the_same_answers(shop: Engage) -> None:
    recommender = shop.recommend.recommender
    before = recommender.for_many(["s8"], n=8)["s8"]
    target = min(CATEGORIES, key=categories_of(before.item_ids).count)
    send(shop, *(track("s8", "ProductAdded", product_id=f"{target}-{n:02d}") for n in range(12)))
    audience = ["s8", "s9", "s10", "nobody-knows-me"]
    answers = recommender.for_many(audience, n=8, filters=Filters(in_stock=True))
    assert list(answers) == audience
    for user in audience:
        one = recommender.for_you(user, n=8, filters=Filters(in_stock=True), channel=None)
        assert answers[user].item_ids == one.item_ids, user
    after = categories_of(answers["s8"].item_ids).count(target)
    assert after > categories_of(before.item_ids).count(target)  # what they did since training counts
    assert answers["s9"].items[0].reason.startswith("because you looked at")
    send(shop)
    assert not [e for e in shop.log.read(0, limit=100_000) if e.event == "RecommendationShown"]
