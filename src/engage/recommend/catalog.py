"""The workspace's product catalog, `catalog/products.csv`, loaded into arrays a recommender scores over.

One row per product, a header naming the ten columns in any order:

    id,name,category,style,description,price,image_url,stock,promoted,created_at
    outdoors-0001,Trailhead Nylon Tent,outdoors,camping,A light tent for two.,189.99,https://…,12,false,2025-03-01T09:30:00Z

`id`, `name`, `category`, `price`, `stock` and `created_at` need a value; `style`, `description` and
`image_url` may be empty, and an empty `promoted` is false. `created_at` is ISO 8601 (a date alone, or a time
without an offset, is UTC). A workspace without the file has an empty catalog: it does not sell yet.

`load_catalog` raises one `ConfigError` listing every problem as `catalog/products.csv:LINE: column: …`;
`engage check` runs the same checks through `check_catalog_file`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engage.errors import ConfigError, Problem
from engage.workspace.check import CheckContext

__all__ = [
    "CATALOG_FILE",
    "COLUMNS",
    "Product",
    "Catalog",
    "load_catalog",
    "read_catalog",
    "parse_catalog",
    "parse_timestamp",
    "write_catalog",
    "check_catalog_file",
    "checked_catalog",
]

CATALOG_FILE = "catalog/products.csv"
COLUMNS = (
    "id", "name", "category", "style", "description", "price", "image_url", "stock", "promoted", "created_at",
)  # fmt: skip
REQUIRED = frozenset({"id", "name", "category", "price", "stock", "created_at"})
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0", ""})
_CHECKED = "catalog.checked"  # where check_catalog_file leaves the catalog in CheckContext.shared


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    category: str
    style: str
    description: str
    price: float
    image_url: str
    stock: int
    promoted: bool
    created_at: datetime
    """Timezone-aware, UTC."""


class Catalog:
    """Products in id order with numpy columns for vectorised scoring and filtering.

    Position `i` in every array is the product `products[i]`; `index` maps an id to its position. The
    arrays are read-only: a catalog changes by loading the file again.
    """

    def __init__(self, products: Iterable[Product]):
        self.products: tuple[Product, ...] = tuple(sorted(products, key=lambda p: p.id))
        self.index: dict[str, int] = {product.id: i for i, product in enumerate(self.products)}
        if len(self.index) != len(self.products):
            raise ValueError("product ids must be unique")
        self.categories: tuple[str, ...] = tuple(sorted({p.category for p in self.products}))
        """Category names; `category_codes[i]` is the position of product i's category in this tuple."""
        self.category_index: dict[str, int] = {name: i for i, name in enumerate(self.categories)}
        self.ids = _frozen(np.array([p.id for p in self.products], dtype=object))
        """Product ids by position (Python strings), e.g. `catalog.ids[top_positions]`."""
        self.price = _frozen(np.array([p.price for p in self.products], dtype=np.float64))
        self.stock = _frozen(np.array([p.stock for p in self.products], dtype=np.int64))
        self.promoted = _frozen(np.array([p.promoted for p in self.products], dtype=np.bool_))
        self.created_at = _frozen(
            np.array([int(p.created_at.timestamp()) for p in self.products], dtype=np.int64)
        )
        """Seconds since the Unix epoch."""
        self.category_codes = _frozen(
            np.array([self.category_index[p.category] for p in self.products], dtype=np.int32)
        )

    @classmethod
    def empty(cls) -> Catalog:
        return cls(())

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.index

    def __getitem__(self, product_id: str) -> Product:
        """The product with this id; KeyError when the catalog has none."""
        return self.products[self.index[product_id]]

    def get(self, product_id: str) -> Product | None:
        position = self.index.get(product_id)
        return None if position is None else self.products[position]

    def positions(self, product_ids: Iterable[str]) -> npt.NDArray[np.int64]:
        """The position of each id, -1 for an id the catalog does not hold."""
        index = self.index
        return np.fromiter((index.get(i, -1) for i in product_ids), dtype=np.int64)

    def in_categories(self, names: Iterable[str]) -> npt.NDArray[np.bool_]:
        """A mask over the products: True where the category is one of `names` (unknown names match none)."""
        codes = [self.category_index[name] for name in names if name in self.category_index]
        return np.isin(self.category_codes, np.array(codes, dtype=np.int32))

    def __repr__(self) -> str:
        return f"<Catalog of {len(self)} products in {len(self.categories)} categories>"


def load_catalog(workspace_root: Path) -> Catalog:
    """The catalog of the workspace at `workspace_root`; empty when it has no `catalog/products.csv`.

    Raises ConfigError with every problem of the file."""
    path = workspace_root / CATALOG_FILE
    if not path.exists():
        return Catalog.empty()
    catalog, problems = read_catalog(path)
    if catalog is None:
        raise ConfigError(problems)
    return catalog


def read_catalog(path: Path, file: str = CATALOG_FILE) -> tuple[Catalog | None, list[Problem]]:
    """Read and check the catalog at `path` (`file` is the name shown in problems): the catalog, or None
    and every problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [Problem(file, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    except OSError as exc:
        return None, [Problem(file, 0, f"cannot read: {exc.strerror or exc}")]
    return parse_catalog(text, file)


def parse_catalog(text: str, file: str = CATALOG_FILE) -> tuple[Catalog | None, list[Problem]]:
    """Check the CSV `text`: the catalog when every row is valid, otherwise None and every problem."""
    rows, unreadable = _rows(text, file)
    if not rows:
        return None, [unreadable or Problem(file, 0, f"empty file: write a header row {','.join(COLUMNS)}")]
    header_line, names = rows[0][0], [name.strip() for name in rows[0][1]]
    problems = _header_problems(file, header_line, names)
    if problems:
        return None, problems
    products: list[Product] = []
    first_line: dict[str, int] = {}
    for line, cells in rows[1:]:
        if len(cells) != len(names):
            problems.append(Problem(file, line, f"expected {len(names)} columns, found {len(cells)}"))
            continue
        product, found = _product(file, line, dict(zip(names, (cell.strip() for cell in cells), strict=True)))
        problems += found
        if product is None:
            continue
        if product.id in first_line:
            message = f"id: '{product.id}' is already the id of line {first_line[product.id]}"
            problems.append(Problem(file, line, message))
            continue
        first_line[product.id] = line
        products.append(product)
    if unreadable is not None:
        problems.append(unreadable)
    if problems:
        return None, problems
    return Catalog(products), []


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 date or time as an aware UTC datetime; a date alone, or a time without an offset, is
    UTC. ValueError when `text` is not one."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def write_catalog(products: Iterable[Product], path: Path) -> None:
    """Write `products` as a catalog file, in the given order, that `read_catalog` reads back the same."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for p in products:
            created_at = p.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
            promoted = "true" if p.promoted else "false"
            writer.writerow(
                (p.id, p.name, p.category, p.style, p.description, _price_text(p.price), p.image_url, p.stock)
                + (promoted, created_at)
            )


# ------------------------------------------------------------------------------------------ engage check


def check_catalog_file(path: Path, ctx: CheckContext) -> list[Problem]:
    """The catalog's rows; the catalog (None when it has problems) is kept for `checked_catalog`."""
    catalog, problems = read_catalog(path, ctx.name_of(path))
    ctx.shared[_CHECKED] = catalog
    return problems


def checked_catalog(ctx: CheckContext) -> Catalog | None:
    """The catalog of the workspace being checked, for the checks of files that refer to its products:
    None when the catalog has problems (they are reported on their own), empty when there is no file."""
    if _CHECKED not in ctx.shared:
        path = ctx.root / CATALOG_FILE
        ctx.shared[_CHECKED] = read_catalog(path)[0] if path.exists() else Catalog.empty()
    catalog: Catalog | None = ctx.shared[_CHECKED]
    return catalog


# -------------------------------------------------------------------------------------------- internals


def _rows(text: str, file: str) -> tuple[list[tuple[int, list[str]]], Problem | None]:
    """`(line, cells)` of each non-blank record, `line` being where the record starts (a quoted cell may
    span lines), up to the first place where the text stops being CSV, reported as a Problem."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as exc:
        return rows, Problem(file, reader.line_num, f"invalid CSV: {exc}")
    return rows, None


def _header_problems(file: str, line: int, names: Sequence[str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(Problem(file, line, f"column '{name}' appears twice in the header"))
        elif name not in COLUMNS:
            message = f"unknown column '{name}'; the columns are {', '.join(COLUMNS)}"
            problems.append(Problem(file, line, message))
        seen.add(name)
    missing = [name for name in COLUMNS if name not in seen]
    if missing:
        problems.append(
            Problem(file, line, f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        )
    return problems


def _product(file: str, line: int, cells: dict[str, str]) -> tuple[Product | None, list[Problem]]:
    problems: list[Problem] = []

    def problem(column: str, message: str) -> None:
        problems.append(Problem(file, line, f"{column}: {message}"))

    for column in COLUMNS:
        if column in REQUIRED and not cells[column]:
            problem(column, "required but empty")
    price = _number(cells["price"], float, "price", problem)
    stock = _number(cells["stock"], int, "stock", problem)
    promoted = cells["promoted"].lower()
    if promoted not in _TRUE | _FALSE:
        problem("promoted", f"'{cells['promoted']}' is not a boolean: write true or false")
    created_at: datetime | None = None
    if cells["created_at"]:
        try:
            created_at = parse_timestamp(cells["created_at"])
        except ValueError:
            problem(
                "created_at",
                f"'{cells['created_at']}' is not an ISO 8601 date or time, e.g. 2025-03-01T09:30:00Z",
            )
    if problems or price is None or stock is None or created_at is None:
        return None, problems
    product = Product(
        id=cells["id"],
        name=cells["name"],
        category=cells["category"],
        style=cells["style"],
        description=cells["description"],
        price=price,
        image_url=cells["image_url"],
        stock=stock,
        promoted=promoted in _TRUE,
        created_at=created_at,
    )
    return product, []


def _number(
    text: str, kind: Callable[[str], int | float], column: str, problem: Callable[[str, str], None]
) -> Any:
    """`text` read by `kind` (int or float) when it is a finite, non-negative number; otherwise None, and
    the problem reported."""
    if not text:
        return None  # reported as required
    try:
        value = kind(text.replace("_", "?"))  # int() and float() take "1_000"; a catalog does not
    except ValueError:
        problem(column, f"'{text}' is not {'a whole number' if kind is int else 'a number'}")
        return None
    if not math.isfinite(value):
        problem(column, f"'{text}' is not a finite number")
        return None
    if value < 0:
        problem(column, f"{text} is negative")
        return None
    return value


def _price_text(price: float) -> str:
    cents = f"{price:.2f}"
    return cents if float(cents) == price else repr(price)


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.flags.writeable = False
    return array
