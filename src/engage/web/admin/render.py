"""Turning a template and its values into the dashboard's HTML responses (Jinja2, autoescaped).

Every page is sent with a Content-Security-Policy that lets nothing load from anywhere, this server
included, except inline styles and data: images. That keeps a message shown in the dashboard from
fetching its images or its open pixel (viewing a message would otherwise count as the customer opening
it), and keeps any page from being framed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

__all__ = ["render", "HEADERS"]

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'none'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else "–"


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4f}"


def _percent(rate: float | None) -> str:
    return f"{rate:.1%}" if rate is not None else "–"


_environment = Environment(
    loader=PackageLoader("engage.web.admin", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(when=_when, number=_number, percent=_percent)


def render(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    page = _environment.get_template(template).render(**values)
    return HTMLResponse(page, status_code=status, headers=HEADERS)
