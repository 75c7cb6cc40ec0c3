"""Normalising the traits engage understands; any other trait passes through unchanged.

Segment's reserved traits are camelCase (`firstName`); templates read snake_case (`user.first_name`),
so the reserved ones are stored snake_case.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email

__all__ = ["InvalidTrait", "normalize_traits", "RESERVED_TRAITS"]

RESERVED_TRAITS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "createdAt": "created_at",
}
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


class InvalidTrait(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _email(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidTrait("email", "must be a string")
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidTrait("email", f"not a valid email address: {exc}") from None


def _phone(value: Any, region: str) -> str:
    if not isinstance(value, str | int):
        raise InvalidTrait("phone", "must be a string")
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidTrait("phone", f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidTrait("phone", f"not a valid phone number: {value!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or value not in _timezones():
        raise InvalidTrait("timezone", f"not an IANA time zone: {value!r}")
    return value


def _locale(value: Any) -> str:
    if not isinstance(value, str) or not _LOCALE.match(value):
        raise InvalidTrait("locale", f"not a locale such as en-US: {value!r}")
    return value.replace("_", "-")


def normalize_traits(traits: dict[str, Any], phone_region: str) -> dict[str, Any]:
    """Validated and normalised copy of `traits`; raises InvalidTrait naming the trait."""
    if not traits:
        return {}
    out: dict[str, Any] = {}
    for key, value in traits.items():
        key = RESERVED_TRAITS.get(key, key)
        if value is None:
            out[key] = None  # an explicit null clears the trait
        elif key == "email":
            out[key] = _email(value)
        elif key == "phone":
            out[key] = _phone(value, phone_region)
        elif key == "timezone":
            out[key] = _timezone(value)
        elif key == "locale":
            out[key] = _locale(value)
        else:
            out[key] = value
    return out
