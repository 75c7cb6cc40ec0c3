"""What a customer's words mean to the shop: an amount, a position in the list just shown, a quantity, a
category of the catalog. Rasa extracts the entities; these read their values (and the whole message when an
entity was missed), however they were written: "$50", "50 bucks", "fifty", "the 2nd one", "kitchen"."""

from __future__ import annotations

import re
from collections.abc import Iterable

from engage.recommend.catalog import Catalog

__all__ = ["amount", "position", "quantity", "CategoryWords"]

_NUMBERS = {
    "zero": 0, "one": 1, "a": 1, "an": 1, "two": 2, "couple": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "k": 1000, "grand": 1000}
_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5,
    "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "eighth": 8, "8th": 8, "ninth": 9, "9th": 9,
    "tenth": 10, "10th": 10,
}  # fmt: skip
_LAST = {"last", "final", "bottom"}
_NUMBER = re.compile(r"(\d+(?:[.,]\d{1,2})?)\s*(k\b)?", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9']+")


def amount(text: str | None) -> float | None:
    """The amount of money in `text` ("$50", "50 dollars", "49.99", "fifty", "two hundred", "1k"); None if
    there is none."""
    if not text:
        return None
    found = _NUMBER.search(text.replace(",", "") if re.search(r"\d,\d{3}", text) else text)
    if found:
        value = float(found.group(1).replace(",", "."))
        return value * 1000 if found.group(2) else value
    total, current, seen, previous = 0, 0, False, ""
    for word in _WORD.findall(text.lower().replace("-", " ")):
        if word in _NUMBERS and word not in ("a", "an"):
            current += _NUMBERS[word]
            seen = True
        elif word in _SCALES and (seen or word == "grand" or previous in ("a", "an")):  # "a hundred"
            current = max(current, 1) * _SCALES[word]
            total, current = total + current, 0
            seen = True
        previous = word
    return float(total + current) if seen else None


def position(text: str | None, shown: int) -> int | None:
    """The 0-based index in a list of `shown` items that `text` points at ("the second one", "2nd", "#2",
    "number 2", "last"); None when it points at nothing in the list."""
    if not text or shown <= 0:
        return None
    words = _WORD.findall(text.lower())
    if any(word in _LAST for word in words):
        return shown - 1
    for word in words:
        if word in _ORDINALS:
            index = _ORDINALS[word] - 1
            return index if index < shown else None
    digits = re.search(r"\d+", text)
    if digits:
        index = int(digits.group()) - 1
        return index if 0 <= index < shown else None
    return None


def quantity(text: str | None) -> int:
    """How many ("2", "two", "a couple"); 1 when not said or not sensible."""
    if not text:
        return 1
    digits = re.search(r"\d+", text)
    if digits:
        value = int(digits.group())
    else:
        said = [_NUMBERS[w] for w in _WORD.findall(text.lower()) if w in _NUMBERS and w not in ("a", "an")]
        value = said[0] if said else 1
    return value if 1 <= value <= 99 else 1


class CategoryWords:
    """Words for the catalog's categories: each category's own name, its styles (and their singular), and
    everyday words for them ("kitchen" is housewares). A word maps to (category, style or None)."""

    EVERYDAY = {
        "kitchen": ("housewares", None), "cooking": ("housewares", "cookware"), "home": ("homedecor", None),
        "decor": ("homedecor", None), "decoration": ("homedecor", None), "furniture": ("furnishing", None),
        "shoe": ("footwear", None), "shoes": ("footwear", None), "clothes": ("apparel", None),
        "clothing": ("apparel", None), "fashion": ("apparel", None), "shirt": ("apparel", "tops"),
        "shirts": ("apparel", "tops"), "makeup": ("beauty", "makeup"), "cosmetics": ("beauty", None),
        "gadget": ("electronics", None), "gadgets": ("electronics", None), "tech": ("electronics", None),
        "headphones": ("electronics", "audio"), "music": ("instruments", None),
        "guitar": ("instruments", "strings"), "drum": ("instruments", "percussion"),
        "camping": ("outdoors", "camping"), "hiking": ("outdoors", "hiking"), "outdoor": ("outdoors", None),
        "dog": ("pets", "dogs"), "cat": ("pets", "cats"), "pet": ("pets", None), "food": ("groceries", None),
        "coffee": ("groceries", "coffee-tea"), "tea": ("groceries", "coffee-tea"),
        "snack": ("groceries", "snacks"), "game": ("toys", "games"), "games": ("toys", "games"),
        "kids": ("toys", None), "toy": ("toys", None),
        "gardening": ("garden", None), "plants": ("garden", "planters"), "tool": ("tools", None),
        "diy": ("tools", None), "fitness": ("sports", "fitness"), "gym": ("sports", "fitness"),
        "bike": ("sports", "cycling"), "cycling": ("sports", "cycling"), "jewellery": ("jewelry", None),
        "book": ("books", None), "reading": ("books", None), "novel": ("books", "fiction"),
        "stationery": ("office", "stationery"), "desk": ("office", "desk"), "work": ("office", None),
        "christmas": ("seasonal", "holidays"), "holiday": ("seasonal", "holidays"),
        "lamp": ("homedecor", "lighting"),
    }  # fmt: skip

    def __init__(self, catalog: Catalog):
        words: dict[str, tuple[str, str | None]] = dict(self.EVERYDAY)
        for product in catalog.products:
            for style in {product.style, product.style.replace("-", " "), product.style.rstrip("s")}:
                words.setdefault(style, (product.category, product.style))
        for product in catalog.products:
            words[product.category] = (product.category, None)
            words[product.category.rstrip("s")] = (product.category, None)
        self.categories = sorted({category for category, _ in words.values()})
        self._words = words

    def find(self, *texts: str | None) -> tuple[str, str | None] | None:
        """The first category (and style) any of `texts` names: a whole text first ("home decor", "kitchen
        tools"), then each word, then pairs of words."""
        for text in texts:
            if not text:
                continue
            lowered = text.lower().strip()
            if lowered.replace(" ", "") in self._words:
                return self._words[lowered.replace(" ", "")]
            if lowered in self._words:
                return self._words[lowered]
            words = _WORD.findall(lowered)
            for pair in _pairs(words):
                if pair in self._words:
                    return self._words[pair]
            for word in words:
                if word in self._words:
                    return self._words[word]
        return None


def _pairs(words: list[str]) -> Iterable[str]:
    for first, second in zip(words, words[1:], strict=False):
        yield f"{first}-{second}"
        yield f"{first} {second}"
