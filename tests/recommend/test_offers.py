"""The offers file: the shipped example, each mistake reported at the line of its key, and the checks against
the workspace's catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest

from engage.cli.main import main
from engage.errors import ConfigError
from engage.recommend.catalog import CATALOG_FILE, Catalog, load_catalog
from engage.recommend.offers import OFFERS_FILE, Discount, Offer, Scope, load_offers, parse_offers
from engage.workspace import example_workspace, init_workspace
from engage.workspace.yaml import parse_yaml

# Line 2 is the first offer, line 9 the second (the fallback).
VALID = """\
offers:
  - id: trail-15
    description: 15% off outdoor gear
    coupon: TRAIL15
    discount: {percent: 15}
    scope: {category: outdoors}
    preference: 0.8

  - id: welcome-10
    description: 10% off anything
    coupon: WELCOME10
    discount: {amount: 10}
    scope: all
    fallback: true
    priority: 1
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(example_workspace())


def parse(text: str, catalog: Catalog | None = None) -> tuple[list[Offer], list[str]]:
    doc, problems = parse_yaml(dedent(text), OFFERS_FILE)
    assert doc is not None and problems == []
    offers, found = parse_offers(doc, catalog)
    return offers, [str(problem) for problem in found]


def problems_of(text: str, catalog: Catalog | None = None) -> list[str]:
    _, problems = parse(text, catalog)
    assert problems, "expected problems"
    return problems


# ----------------------------------------------------------------------------------------- shipped offers


def test_the_shipped_offers_load_against_the_shipped_catalog(catalog: Catalog) -> None:
    offers = load_offers(example_workspace())
    assert 6 <= len(offers) <= 8
    assert len({offer.id for offer in offers}) == len(offers)
    categories = {offer.scope.category for offer in offers if offer.scope.kind == "category"}
    assert {"outdoors", "books", "apparel", "electronics"} <= categories <= set(catalog.categories)
    listed = [p for offer in offers for p in offer.scope.products]
    assert listed and all(p in catalog for p in listed)
    fallbacks = sorted((o for o in offers if o.fallback), key=lambda o: o.priority or 0)
    assert any(o.applies_to_everyone for o in fallbacks)
    assert all(0 < offer.preference <= 1 for offer in offers)


def test_a_valid_file_parses_into_offers(catalog: Catalog) -> None:
    offers, problems = parse(VALID, catalog)
    assert problems == []
    trail, welcome = offers
    assert trail.discount == Discount(percent=15) and str(trail.discount) == "15% off"
    assert trail.scope == Scope("category", category="outdoors") and trail.preference == 0.8
    assert (trail.fallback, trail.priority, trail.starts, trail.ends) == (False, None, None, None)
    assert welcome.scope == Scope("all") and welcome.preference == 1.0 and welcome.priority == 1
    assert welcome.applies_to_everyone and not trail.applies_to_everyone
    assert str(welcome.discount) == "10.00 off"
    assert trail.discount.apply(80.0) == 68.0 and welcome.discount.apply(8.0) == 0.0


def test_a_window_of_dates_lasts_through_its_last_day() -> None:
    offers, problems = parse(
        VALID.replace("    preference: 0.8\n", "    starts: 2026-03-01\n    ends: 2026-03-31\n")
    )
    assert problems == []
    offer = offers[0]
    assert offer.starts == datetime(2026, 3, 1, tzinfo=UTC) and offer.ends == datetime(2026, 4, 1, tzinfo=UTC)
    assert not offer.is_active(datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    assert offer.is_active(datetime(2026, 3, 1, tzinfo=UTC))
    assert offer.is_active(datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert not offer.is_active(datetime(2026, 4, 1, tzinfo=UTC))
    timed, _ = parse(VALID.replace("    preference: 0.8\n", "    ends: '2026-03-31T12:00:00+02:00'\n"))
    assert timed[0].ends == datetime(2026, 3, 31, 10, tzinfo=UTC)


def test_scopes_cover_their_products(catalog: Catalog) -> None:
    offers = {offer.id: offer for offer in load_offers(example_workspace(), catalog)}
    outdoors = offers["trail-15"].scope.mask(catalog)
    assert outdoors.sum() == sum(p.category == "outdoors" for p in catalog) > 0
    assert all(catalog.products[i].category == "outdoors" for i in outdoors.nonzero()[0])
    listed = offers["audio-25"].scope
    assert sorted(catalog.ids[listed.mask(catalog)]) == sorted(listed.products)
    assert offers["welcome-10"].scope.mask(catalog).all()
    assert offers["trail-15"].scope.covers(catalog[catalog.ids[outdoors.argmax()]])
    assert not offers["trail-15"].scope.covers(catalog["books-0001"])


def test_no_offers_file_is_no_offers(tmp_path: Path) -> None:
    assert load_offers(tmp_path) == []


# ------------------------------------------------------------------------------------------ bad offers

BAD_OFFERS = {
    "unknown_key": (
        ("    preference: 0.8", "    weight: 0.8"),
        "offers.yml:7: unknown key 'weight'; known keys: id, description, coupon, discount, scope, "
        "preference, starts, ends, fallback, priority",
    ),
    "missing_coupon": (("    coupon: TRAIL15\n", ""), "offers.yml:2: offers[0].coupon: required but missing"),
    "bad_id": (("id: trail-15", "id: trail 15"), "offers.yml:2: offers[0].id: 'trail 15' is not an id"),
    "numeric_coupon": (
        ("coupon: TRAIL15", "coupon: 1234"),
        "offers.yml:4: offers[0].coupon: Input should be",
    ),
    "percent_and_amount": (
        ("{percent: 15}", "{percent: 15, amount: 5}"),
        "offers.yml:5: offers[0].discount: write either `percent: 15` or `amount: 10`",
    ),
    "percent_over_100": (
        ("{percent: 15}", "{percent: 150}"),
        "offers.yml:5: offers[0].discount.percent: Input",
    ),
    "negative_amount": (("{amount: 10}", "{amount: -5}"), "offers.yml:12: offers[1].discount.amount: Input"),
    "unknown_discount_key": (("{percent: 15}", "{percentage: 15}"), "offers.yml:5: unknown key 'percentage'"),
    "zero_preference": (
        ("preference: 0.8", "preference: 0"),
        "offers.yml:7: offers[0].preference: Input should",
    ),
    "preference_as_text": (
        ("preference: 0.8", "preference: high"),
        "offers.yml:7: offers[0].preference: Input should be a valid number",
    ),
    "scope_form": (
        ("{category: outdoors}", "{categories: [outdoors]}"),
        "offers.yml:6: offers[0].scope: unknown key 'categories': write `all`, `{category: NAME}` or "
        "`{products: [ID, ...]}`",
    ),
    "scope_everything": (
        ("scope: all", "scope: everything"),
        "offers.yml:13: offers[1].scope: expected one of three forms",
    ),
    "empty_product_list": (
        ("{category: outdoors}", "{products: []}"),
        "offers.yml:6: offers[0].scope: products:",
    ),
    "bad_date": (
        ("    preference: 0.8", "    preference: 0.8\n    starts: next monday"),
        "offers.yml:8: offers[0].starts: 'next monday' is not a date or time, e.g. 2026-03-01",
    ),
    "ends_before_starts": (
        ("    preference: 0.8", "    starts: 2026-03-10\n    ends: 2026-03-01"),
        "offers.yml:8: offers[0].ends: must be after starts",
    ),
    "fallback_as_text": (
        ("fallback: true", "fallback: yes"),
        "offers.yml:14: offers[1].fallback: Input should",
    ),
    "priority_without_fallback": (
        ("    preference: 0.8", "    priority: 2"),
        "offers.yml:7: offers[0].priority: only a fallback has a priority",
    ),
}


@pytest.mark.parametrize("edit, message", BAD_OFFERS.values(), ids=BAD_OFFERS.keys())
def test_a_bad_offer_is_reported_at_the_line_of_its_key(edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in VALID
    problems = problems_of(VALID.replace(old, new, 1))
    assert len(problems) == 1, problems
    assert problems[0].startswith(message), problems[0]


def test_a_fallback_needs_a_priority() -> None:
    assert problems_of(VALID.replace("    priority: 1\n", "")) == [
        "offers.yml:9: offers[1].priority: required with `fallback: true` "
        "(the lowest number is offered first)"
    ]


def test_some_fallback_must_apply_to_everyone() -> None:
    message = (
        "offers.yml:1: offers: no fallback applies to everyone: add one with `fallback: true`, `scope: all` "
        "and no window"
    )
    assert problems_of(VALID.replace("    fallback: true\n    priority: 1\n", "")) == [message]
    assert problems_of(VALID.replace("    priority: 1\n", "    priority: 1\n    ends: 2026-06-30\n")) == [
        message
    ]
    assert problems_of(VALID.replace("scope: all", "scope: {category: books}")) == [message]


def test_ids_coupons_and_priorities_are_unique() -> None:
    third = (
        "  - id: trail-15\n    description: again\n    coupon: welcome10\n    discount: {percent: 5}\n"
        "    scope: all\n    fallback: true\n    priority: 1\n"
    )
    assert problems_of(VALID + third) == [
        "offers.yml:16: offers[2].id: 'trail-15' is already the id of the offer on line 2",
        "offers.yml:18: offers[2].coupon: 'welcome10' is already the coupon of offer 'welcome-10' (line 9)",
        "offers.yml:22: offers[2].priority: 1 is already the priority of fallback 'welcome-10' (line 9)",
    ]


def test_the_file_must_hold_a_list_of_offers() -> None:
    assert problems_of("offer:\n  - id: x\n") == ["offers.yml:1: expected a mapping with a list of `offers:`"]
    assert problems_of("offers: []\n") == ["offers.yml:1: offers: expected a list of offers"]
    assert problems_of(VALID + "threshold: 0.3\n") == [
        "offers.yml:16: unknown key 'threshold'; known keys: offers"
    ]


# -------------------------------------------------------------------------------------- with the catalog


def test_scopes_must_name_the_catalogs_categories_and_products(catalog: Catalog) -> None:
    text = VALID.replace("{category: outdoors}", "{category: camping}") + (
        "  - id: two\n    description: two products\n    coupon: TWO\n    discount: {amount: 5}\n"
        "    scope:\n      products:\n        - books-0001\n        - books-9999\n"
    )
    known = ", ".join(catalog.categories)
    assert parse(text, catalog)[1] == [
        "offers.yml:6: offers[0].scope.category: unknown category 'camping'; the catalog's categories: "
        + known,
        "offers.yml:23: offers[2].scope.products[1]: no product 'books-9999' in the catalog",
    ]
    # without a catalog (a workspace that does not sell yet) the same file has no problem
    assert parse(text)[1] == []


def test_load_offers_raises_one_error_with_every_problem(tmp_path: Path) -> None:
    unknown_category = VALID.replace("{category: outdoors}", "{category: camping}")
    (tmp_path / OFFERS_FILE).write_text(unknown_category)
    assert load_offers(tmp_path)[0].scope.category == "camping"  # no catalog: categories are not checked
    ws = tmp_path / "ws"
    init_workspace(ws)
    (ws / OFFERS_FILE).write_text(unknown_category.replace("preference: 0.8", "preference: 2"))
    with pytest.raises(ConfigError) as caught:
        load_offers(ws)
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == ["offers.yml:6", "offers.yml:7"]
    assert "unknown category 'camping'" in lines[0] and "preference" in lines[1]


# ------------------------------------------------------------------------------------------- engage check


def run_check(ws: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["check", "-w", str(ws)])
    return code, capsys.readouterr().out.splitlines()


def test_engage_check_reports_offers_against_the_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    init_workspace(ws)
    path = ws / OFFERS_FILE
    text = path.read_text()
    line = text[: text.index("{category: books}")].count("\n") + 1
    path.write_text(text.replace("{category: books}", "{category: novels}"))
    code, out = run_check(ws, capsys)
    assert code == 1
    assert len(out) == 1 and out[0].startswith(
        f"offers.yml:{line}: offers[1].scope.category: unknown category 'novels'"
    )

    # a broken catalog is reported on its own, not as offers naming products it lost
    path.write_text(text)
    catalog = ws / CATALOG_FILE
    rows = catalog.read_text().splitlines(keepends=True)
    number = next(n for n, row in enumerate(rows) if row.startswith("electronics-0014,"))
    rows[number] = rows[number].replace(",electronics,", ",,")
    catalog.write_text("".join(rows))
    code, out = run_check(ws, capsys)
    assert (code, out) == (1, [f"catalog/products.csv:{number + 1}: category: required but empty"])
