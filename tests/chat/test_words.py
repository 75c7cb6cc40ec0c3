"""How the bot reads amounts, positions, quantities and categories, however a customer writes them."""

from __future__ import annotations

import pytest

from engage.chat.words import CategoryWords, amount, position, quantity
from engage.recommend.catalog import load_catalog
from engage.workspace import example_workspace


@pytest.mark.parametrize(
    ("said", "expected"),
    [("$50", 50), ("under 50 bucks", 50), ("49.99", 49.99), ("fifty", 50), ("two hundred", 200),
     ("1k", 1000), ("a hundred", 100), ("a grand", 1000), ("1,200", 1200), ("seventy five", 75),
     ("nothing", None), ("", None)],
)  # fmt: skip
def test_amounts(said: str, expected: float | None) -> None:
    assert amount(said) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [("the first one", 0), ("2nd", 1), ("#3", 2), ("number 2", 1), ("the last one", 4), ("third", 2),
     ("the 9th", None), ("7", None), ("that one", None)],
)  # fmt: skip
def test_positions_in_a_list_of_five(said: str, expected: int | None) -> None:
    assert position(said, 5) == expected


@pytest.mark.parametrize(("said", "expected"), [("2", 2), ("two", 2), ("a couple", 2), (None, 1), ("500", 1)])
def test_quantities(said: str | None, expected: int) -> None:
    assert quantity(said) == expected


def test_everyday_words_name_the_catalog_categories() -> None:
    words = CategoryWords(load_catalog(example_workspace()))
    assert words.find("something for the kitchen") == ("housewares", None)
    assert words.find("sneakers") == ("footwear", "sneakers")
    assert words.find("kitchen tools") == ("housewares", "kitchen-tools")
    assert words.find("Books") == ("books", None)
    assert words.find("a gadget") == ("electronics", None)
    assert words.find("qwerty") is None
    assert set(words.categories) >= {"housewares", "footwear", "books", "toys"}
