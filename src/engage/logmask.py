"""Customers' email addresses and phone numbers never reach the logs whole.

`MaskFilter` masks, in each record's message and in its args, what looks like an address
(`ann@example.com` → `a***@example.com`) or a phone number in E.164 or a common national form
(`+14155550123` → `+1415****123`, `(415) 555-0123` → `415****123`); a traceback attached to the record
is masked the same way. `install()` puts the filter on the root logger's handlers (every logger that
propagates) and on uvicorn's loggers, which keep handlers of their own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

__all__ = ["MaskFilter", "install", "mask"]

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_EMAIL = re.compile(r"(?<![\w.%+-])([A-Za-z0-9][A-Za-z0-9._%+-]*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_PHONE = re.compile(
    r"(?<![\w+])\+\d[\d ().-]{6,18}\d(?![\w])"  # +1 415 555 0123, +44 (20) 7946-0958, +14155550123
    r"|(?<![\w.+-])\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}(?![\w-])"  # (415) 555-0123, 415-555-0123, 415.555.0123
)


def _email(match: re.Match[str]) -> str:
    return f"{match[1][0]}***@{match[2]}"


def _phone(match: re.Match[str]) -> str:
    text = match[0]
    digits = re.sub(r"\D", "", text)
    if not 8 <= len(digits) <= 15:
        return text
    if text.startswith("+"):
        return f"+{digits[:4]}{'*' * (len(digits) - 7)}{digits[-3:]}"
    return f"{digits[:3]}{'*' * (len(digits) - 6)}{digits[-3:]}"


def mask(text: str) -> str:
    """`text` with every email address and phone number masked."""
    if "@" in text:
        text = _EMAIL.sub(_email, text)
    return _PHONE.sub(_phone, text)


class MaskFilter(logging.Filter):
    """Masks addresses and phone numbers in the message and its args; never drops a record. Args keep
    their place (uvicorn's access formatter unpacks them): a string arg is masked, any other arg whose text
    holds an address is replaced by its masked text, numbers are left alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        elif record.msg is not None and _masked(str(record.msg)) is not None:
            record.msg = mask(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_arg(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _mask_arg(value) for key, value in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def _masked(text: str) -> str | None:
    masked = mask(text)
    return masked if masked != text else None


def _mask_arg(arg: object) -> object:
    if arg is None or isinstance(arg, (bool, int, float)):
        return arg
    if isinstance(arg, str):
        return mask(arg)
    try:
        masked = _masked(str(arg))
    except Exception:  # an object whose str() fails: logging reports it when it renders the record
        return arg
    return arg if masked is None else masked


def install(loggers: tuple[str, ...] = UVICORN_LOGGERS) -> None:
    """Add a `MaskFilter` to the root logger's handlers and to the named loggers, unless one is there."""
    for owner in (*logging.getLogger().handlers, *(logging.getLogger(name) for name in loggers)):
        if not any(isinstance(found, MaskFilter) for found in owner.filters):
            owner.addFilter(MaskFilter())
