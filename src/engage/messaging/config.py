"""`messaging.yml`, the shop a message speaks for and the policies every send passes, and
`templates/templates.yml`, what each template is (transactional or marketing, its SMS length budget).

    shop:
      name: Retail Demo Store
      url: https://shop.example.com
      product_url: https://shop.example.com/products/{product_id}
      cart_url: https://shop.example.com/cart
    timezone: America/New_York          # for customers without a `timezone` trait
    quiet_hours:                        # marketing waits for the end of them, in the customer's time
      sms: {start: "21:00", end: "09:00"}
    frequency_caps:                     # marketing messages a customer gets at most; transactional ones
      email: {max: 3, per: 7d}          #   neither count nor wait
      sms: {max: 4, per: 30d}
    sms:
      max_segments: 2                   # engage check warns when a template renders longer
      help: "Retail Demo Store: help at shop.example.com/help. Reply STOP to opt out."
    links:
      expire: 90d                       # tracked links redirect to the shop's home page afterwards
    retries: {attempts: 8, first: 30s, longest: 1h}
"""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engage.errors import Problem
from engage.segments.durations import parse_duration
from engage.workspace.check import CheckContext, yaml_validator
from engage.workspace.yaml import YamlFile, load_file, validate_model, validation_problems

__all__ = [
    "MESSAGING_FILE",
    "TEMPLATES_FILE",
    "CHANNELS",
    "MessagingConfig",
    "TemplateSettings",
    "load_messaging_config",
    "load_template_settings",
    "check_messaging_file",
    "check_templates_file",
]

MESSAGING_FILE = "messaging.yml"
TEMPLATES_FILE = "templates/templates.yml"
CHANNELS = ("email", "sms")

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _clock_time(value: object) -> time:
    if isinstance(value, int) and 0 <= value < 24 * 60:  # YAML 1.1 reads 21:00 as sexagesimal minutes
        return time(value // 60, value % 60)
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f'{value!r} is not a time of day such as "21:00"')


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShopConfig(_Section):
    name: str = Field(default="Our shop", min_length=1)
    url: str = "https://shop.example.com"
    product_url: str = "https://shop.example.com/products/{product_id}"
    """Where a product's page is; `{product_id}` is replaced by its id."""
    cart_url: str = "https://shop.example.com/cart"
    support_email: str | None = None
    address: str | None = None
    """The shop's postal address, which marketing emails must show in many countries."""

    @field_validator("url", "product_url", "cart_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"'{url}' is not an http:// or https:// URL")
        return url

    @field_validator("product_url")
    @classmethod
    def _names_the_product(cls, url: str) -> str:
        if "{product_id}" not in url:
            raise ValueError("must contain {product_id}, e.g. https://shop.example.com/products/{product_id}")
        return url


class QuietHours(_Section):
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same time: remove the quiet hours instead")
        return self

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # across midnight


class FrequencyCap(_Section):
    max: int = Field(ge=1)
    per: Duration


class SmsConfig(_Section):
    max_segments: int = Field(default=2, ge=1, le=10)
    help: str = "Reply STOP to opt out, START to opt back in."
    stop_reply: str = "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
    start_reply: str = "You are subscribed again. Reply STOP to opt out, HELP for help."


class LinksConfig(_Section):
    expire: Duration = timedelta(days=90)


class RetriesConfig(_Section):
    attempts: int = Field(default=8, ge=1, le=50)
    """Sends a provider refused with 429 or 5xx (or could not be reached) are tried this often in all."""
    first: Duration = timedelta(seconds=30)
    longest: Duration = timedelta(hours=1)


class MessagingConfig(_Section):
    shop: ShopConfig = ShopConfig()
    timezone: str = "UTC"
    quiet_hours: dict[str, QuietHours] = Field(default_factory=dict)
    frequency_caps: dict[str, FrequencyCap] = Field(default_factory=dict)
    sms: SmsConfig = SmsConfig()
    links: LinksConfig = LinksConfig()
    retries: RetriesConfig = RetriesConfig()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{name}' is not an IANA time zone such as America/New_York") from None
        return name

    @field_validator("quiet_hours", "frequency_caps")
    @classmethod
    def _channels(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel {', '.join(unknown)}; the channels are {', '.join(CHANNELS)}")
        return value


class TemplateSettings(_Section):
    """What one template is: `transactional` messages (a receipt, a confirmation the customer asked for)
    are sent whatever the frequency caps and quiet hours; the others are marketing."""

    transactional: bool = False
    opt_in: bool = False
    """SMS only: the message that asks a customer who gave their number to confirm it (double opt-in). It
    goes to a number that has not opted in yet, never to one that opted out, and a reply of Y to it
    opts the customer in."""
    max_segments: int | None = Field(default=None, ge=1, le=10)
    """SMS only: `engage check` warns when the template renders longer (default: `sms.max_segments`)."""
    description: str | None = None


def parse_messaging_config(doc: YamlFile) -> tuple[MessagingConfig | None, list[Problem]]:
    return validate_model(MessagingConfig, doc, doc.data or {})


def parse_template_settings(doc: YamlFile) -> tuple[dict[str, TemplateSettings] | None, list[Problem]]:
    """The file's mapping of `email/NAME` / `sms/NAME` to settings."""
    data = doc.data or {}
    if not isinstance(data, dict):
        message = "expected a mapping of template names (email/NAME, sms/NAME) to settings"
        return None, [doc.problem((), message)]
    settings: dict[str, TemplateSettings] = {}
    problems: list[Problem] = []
    for name, value in data.items():
        if not isinstance(name, str) or name.split("/", 1)[0] not in CHANNELS or name.count("/") != 1:
            problems.append(doc.problem((name,), "a template is named email/NAME or sms/NAME"))
            continue
        try:
            settings[name] = TemplateSettings.model_validate(value or {})
        except ValidationError as exc:
            problems += validation_problems(exc, doc, model=TemplateSettings, prefix=(name,))
    return (settings if not problems else None), problems


@yaml_validator
def check_messaging_file(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    """`messaging.yml` for `engage check`."""
    return parse_messaging_config(doc)[1]


@yaml_validator
def check_templates_file(doc: YamlFile, ctx: CheckContext) -> list[Problem]:
    """`templates/templates.yml` for `engage check`: its schema, and that each template it names exists."""
    settings, problems = parse_template_settings(doc)
    named = [name for name in (doc.data if isinstance(doc.data, dict) else {}) if isinstance(name, str)]
    for name in named:
        if name.split("/", 1)[0] not in CHANNELS or name.count("/") != 1:
            continue
        channel, stem = name.split("/", 1)
        expected = f"templates/{name}.{'subject' if channel == 'email' else 'txt'}.j2"
        if not (ctx.root / expected).is_file():
            problems.append(doc.problem((name,), f"no template {name}: {expected} does not exist"))
    return problems


def load_messaging_config(root: Path) -> MessagingConfig:
    """The workspace's `messaging.yml`, or the defaults without one; ConfigError names file:line."""
    return load_file(root, MESSAGING_FILE, parse_messaging_config, MessagingConfig())


def load_template_settings(root: Path) -> dict[str, TemplateSettings]:
    """`templates/templates.yml`, or none (every template a marketing one with the default budget)."""
    return load_file(root, TEMPLATES_FILE, parse_template_settings, {})
