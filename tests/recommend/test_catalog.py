"""The product catalog: the shipped demo file, the generator that made it, and every bad row reported at
its line and column."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from engage.cli.main import main
from engage.errors import ConfigError
from engage.recommend import demo_catalog
from engage.recommend.catalog import (
    CATALOG_FILE,
    COLUMNS,
    Catalog,
    Product,
    load_catalog,
    parse_catalog,
    read_catalog,
    write_catalog,
)
from engage.workspace import example_workspace, init_workspace

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "src" / "engage" / "example" / CATALOG_FILE
GOOD = {
    "id": "outdoors-0001",
    "name": "Trail Tent",
    "category": "outdoors",
    "style": "camping",
    "description": "A light tent for two, with a porch.",
    "price": "189.99",
    "image_url": "https://shop.example/images/outdoors-0001.jpg",
    "stock": "12",
    "promoted": "false",
    "created_at": "2025-03-01T09:30:00Z",
}


def csv_text(*rows: dict[str, str], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def row(number: int, **changes: str) -> dict[str, str]:
    return {**GOOD, "id": f"outdoors-{number:04d}", **changes}


def problems_of(text: str) -> list[str]:
    catalog, problems = parse_catalog(text)
    assert catalog is None
    return [str(problem) for problem in problems]


# ---------------------------------------------------------------------------------------- shipped catalog


def test_the_shipped_catalog_loads_with_its_categories() -> None:
    catalog = load_catalog(example_workspace())
    assert len(catalog) == 2500
    assert len(catalog.categories) == 20
    assert {"apparel", "books", "electronics", "outdoors", "homedecor", "housewares"} <= set(
        catalog.categories
    )
    per_category = np.bincount(catalog.category_codes)
    assert per_category.min() >= 50 and per_category.sum() == 2500
    assert all(len({p.style for p in catalog if p.category == name}) >= 3 for name in catalog.categories)
    assert 0.01 < catalog.promoted.mean() < 0.05
    assert 0 < (catalog.stock == 0).sum() < 0.15 * len(catalog)
    assert catalog.price.min() > 0 and np.all(np.round(catalog.price, 2) == catalog.price)
    newest = int(demo_catalog.CATALOG_DATE.timestamp())
    assert newest - 2 * 366 * 86400 < catalog.created_at.min() and catalog.created_at.max() <= newest
    product = catalog["apparel-0001"]
    assert product.image_url == "https://shop.example/images/apparel-0001.jpg"
    assert product.description.endswith(".") and product.name


def test_the_shipped_catalog_is_what_the_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "products.csv"
    assert demo_catalog.main([str(out)]) == 0
    assert out.read_bytes() == SHIPPED.read_bytes(), (
        "regenerate it: python -m engage.recommend.demo_catalog catalog/products.csv"
    )


def test_another_seed_makes_another_catalog_of_the_same_shape() -> None:
    first, other = demo_catalog.demo_products(), demo_catalog.demo_products(seed=8)
    assert [p.id for p in first] == [p.id for p in other]
    assert [p.name for p in first] != [p.name for p in other]


def test_a_workspace_without_a_catalog_has_an_empty_one(tmp_path: Path) -> None:
    catalog = load_catalog(tmp_path)
    assert len(catalog) == 0 and catalog.categories == () and catalog.price.shape == (0,)
    assert catalog.positions(["x"]).tolist() == [-1]


# ----------------------------------------------------------------------------------------------- the API


def test_products_are_in_id_order_with_aligned_columns() -> None:
    text = csv_text(
        row(3, category="books", price="9.5", stock="0", promoted="true"),
        row(1, created_at="2025-01-01"),
        row(2, category="apparel", created_at="2025-01-01T12:00:00+02:00"),
    )
    catalog, problems = parse_catalog(text)
    assert problems == [] and catalog is not None
    assert catalog.ids.tolist() == ["outdoors-0001", "outdoors-0002", "outdoors-0003"]
    assert catalog.index == {"outdoors-0001": 0, "outdoors-0002": 1, "outdoors-0003": 2}
    assert catalog.price.tolist() == [189.99, 189.99, 9.5]
    assert catalog.stock.tolist() == [12, 12, 0]
    assert catalog.promoted.tolist() == [False, False, True]
    assert catalog.categories == ("apparel", "books", "outdoors")
    assert [catalog.categories[code] for code in catalog.category_codes] == ["outdoors", "apparel", "books"]
    # a date alone, and a time without an offset, are UTC
    assert catalog.created_at[0] == datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    assert catalog.created_at[1] == datetime(2025, 1, 1, 10, tzinfo=UTC).timestamp()
    assert catalog.positions(["outdoors-0003", "nope", "outdoors-0001"]).tolist() == [2, -1, 0]
    assert catalog.in_categories(["books", "apparel", "unknown"]).tolist() == [False, True, True]
    assert catalog["outdoors-0003"].price == 9.5 and catalog.get("nope") is None
    assert "outdoors-0002" in catalog and "nope" not in catalog
    with pytest.raises(ValueError):
        catalog.price[0] = 1.0  # read-only: a catalog changes by loading the file again


def test_columns_may_come_in_any_order_and_optional_values_be_empty() -> None:
    columns = tuple(reversed(COLUMNS))
    catalog, problems = parse_catalog(
        csv_text(row(1, style="", description="", image_url="", promoted=""), columns=columns)
    )
    assert problems == [] and catalog is not None
    product = catalog["outdoors-0001"]
    assert (product.style, product.description, product.image_url, product.promoted) == ("", "", "", False)


def test_written_products_read_back_the_same(tmp_path: Path) -> None:
    products = demo_catalog.demo_products()[:50]
    write_catalog(products, tmp_path / CATALOG_FILE)
    catalog = load_catalog(tmp_path)
    assert list(catalog) == sorted(products, key=lambda p: p.id)


def test_a_catalog_can_be_built_in_code() -> None:
    when = datetime(2025, 6, 1, tzinfo=UTC)
    products = [
        Product(f"p{i}", f"P{i}", "toys", "", "", float(i), "", i, i == 2, when - timedelta(days=i))
        for i in range(3)
    ]
    catalog = Catalog(products)
    assert catalog.promoted.tolist() == [False, False, True]
    assert catalog.created_at.tolist() == [int((when - timedelta(days=i)).timestamp()) for i in range(3)]
    with pytest.raises(ValueError, match="unique"):
        Catalog(products + products[:1])


# ------------------------------------------------------------------------------------------------ bad rows

BAD_ROWS = {
    "missing_value": ({"name": ""}, "name: required but empty"),
    "bad_price": ({"price": "twelve"}, "price: 'twelve' is not a number"),
    "price_with_currency": ({"price": "$12"}, "price: '$12' is not a number"),
    "not_finite_price": ({"price": "nan"}, "price: 'nan' is not a finite number"),
    "negative_price": ({"price": "-1.50"}, "price: -1.50 is negative"),
    "fractional_stock": ({"stock": "2.5"}, "stock: '2.5' is not a whole number"),
    "negative_stock": ({"stock": "-3"}, "stock: -3 is negative"),
    "bad_boolean": ({"promoted": "maybe"}, "promoted: 'maybe' is not a boolean: write true or false"),
    "bad_timestamp": (
        {"created_at": "last week"},
        "created_at: 'last week' is not an ISO 8601 date or time, e.g. 2025-03-01T09:30:00Z",
    ),
}


@pytest.mark.parametrize("changes, message", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_bad_value_is_reported_at_its_line_and_column(changes: dict[str, str], message: str) -> None:
    text = csv_text(row(1), row(2), row(3, **changes), row(4))
    assert problems_of(text) == [f"catalog/products.csv:4: {message}"]


def test_every_problem_of_every_row_is_reported() -> None:
    text = csv_text(row(1, price="", stock="x"), row(2), row(1), row(4, category="", promoted="2"))
    assert problems_of(text) == [
        "catalog/products.csv:2: price: required but empty",
        "catalog/products.csv:2: stock: 'x' is not a whole number",
        "catalog/products.csv:5: category: required but empty",
        "catalog/products.csv:5: promoted: '2' is not a boolean: write true or false",
    ]  # row 1 being invalid, line 4 does not repeat its id


def test_a_duplicate_id_names_the_first_line() -> None:
    text = csv_text(row(1), row(2), row(1))
    assert problems_of(text) == ["catalog/products.csv:4: id: 'outdoors-0001' is already the id of line 2"]


def test_lines_count_quoted_line_breaks_and_blank_lines() -> None:
    first = csv_text(row(1, description="Two lines:\nstill one cell."), row(2))
    text = first + "\n" + csv_text(row(3, stock="-1")).split("\n", 1)[1]
    # the header, row 1 over lines 2-3, row 2 on line 4, a blank line 5, row 3 on line 6
    assert problems_of(text) == ["catalog/products.csv:6: stock: -1 is negative"]


def test_a_row_with_too_many_cells() -> None:
    text = csv_text(row(1)) + "outdoors-0002,Tent,outdoors,camping,A tent, unquoted.,1,,1,false,2025-01-01\n"
    assert problems_of(text) == ["catalog/products.csv:3: expected 10 columns, found 11"]


def test_unknown_and_missing_columns_are_reported_on_the_header() -> None:
    columns = tuple(c for c in COLUMNS if c not in ("stock", "promoted")) + ("colour",)
    assert problems_of(csv_text(row(1), columns=columns)) == [
        "catalog/products.csv:1: unknown column 'colour'; the columns are " + ", ".join(COLUMNS),
        "catalog/products.csv:1: missing columns: stock, promoted",
    ]


def test_an_empty_file_and_broken_quoting() -> None:
    assert problems_of("") == [f"catalog/products.csv: empty file: write a header row {','.join(COLUMNS)}"]
    text = csv_text(row(1)) + 'outdoors-0002,"Tent"x,outdoors\n'
    assert problems_of(text) == ["catalog/products.csv:3: invalid CSV: ',' expected after '\"'"]


def test_load_catalog_raises_one_error_listing_every_problem(tmp_path: Path) -> None:
    (tmp_path / "catalog").mkdir()
    (tmp_path / CATALOG_FILE).write_text(csv_text(row(1, price="-1"), row(2, stock="")))
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path)
    assert str(caught.value).splitlines() == [
        "catalog/products.csv:2: price: -1 is negative",
        "catalog/products.csv:3: stock: required but empty",
    ]
    (tmp_path / CATALOG_FILE).write_bytes(b"\xff\xfe")
    assert [str(p) for p in read_catalog(tmp_path / CATALOG_FILE)[1]] == [
        "catalog/products.csv: not UTF-8 text (invalid start byte at byte 0)"
    ]


# ------------------------------------------------------------------------------------------- engage check


def test_engage_check_reports_a_bad_catalog_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    init_workspace(ws)
    path = ws / CATALOG_FILE
    lines = path.read_text().splitlines(keepends=True)
    lines[41] = lines[41].replace(",false,", ",sometimes,").replace(",true,", ",sometimes,")
    path.write_text("".join(lines))
    assert main(["check", "-w", str(ws)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "catalog/products.csv:42: promoted: 'sometimes' is not a boolean: write true or false"
    ]
    assert err.splitlines()[-1] == "error: 1 problem in 1 file"


def test_engage_check_counts_the_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    init_workspace(ws)
    assert main(["check", "-w", str(ws)]) == 0
    assert ", catalog/products.csv, " in capsys.readouterr().out
    (ws / CATALOG_FILE).unlink()
    (ws / "offers.yml").unlink()
    assert main(["check", "-w", str(ws)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(", no catalog, no offers, recommender.yml")
