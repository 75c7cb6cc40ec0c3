"""`endpoints.yml`: where everything runs.

The file holds engage's own sections (validated here, unknown keys refused) next to Rasa's (kept opaque: Rasa
reads the same file with `rasa run --endpoints endpoints.yml` and ignores engage's keys). Because Rasa expands
`${VAR}` itself and fails on anything but the plain form, only `${NAME}` is supported, and every variable
used here must also be set where Rasa runs.

`ENGAGE_ENDPOINTS` names another file of the workspace to read instead (`endpoints.production.yml`): every
engage process and the Rasa that engage starts read that one, so a workspace in git holds both the
development and the production settings and a host picks one from its environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engage.errors import Problem, WorkspaceError
from engage.workspace.yaml import YamlFile, load_yaml, substitute_env, validate_model

__all__ = [
    "ENDPOINTS_FILE",
    "ENDPOINTS_ENV",
    "RASA_KEYS",
    "DatabaseConfig",
    "EventStreamConfig",
    "IngestConfig",
    "ProfilesConfig",
    "ChannelsConfig",
    "RasaConfig",
    "RateLimit",
    "RateLimitsConfig",
    "Endpoints",
    "endpoints_file",
    "read_endpoints",
    "resolve_database_url",
]

ENDPOINTS_FILE = "endpoints.yml"
ENDPOINTS_ENV = "ENGAGE_ENDPOINTS"
"""Names the endpoints file to read instead of endpoints.yml, relative to the workspace root."""
RASA_KEYS = ("action_endpoint", "tracker_store", "event_broker", "lock_store", "models", "nlg", "nlu")
"""Rasa 3.6's own top-level keys: accepted, not validated by engage."""

_SQLITE = re.compile(r"(?P<scheme>sqlite(?:\+\w+)?):///(?P<path>[^?]*)(?P<query>\?.*)?")
_CONNECTOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_RATE = re.compile(r"\s*(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<unit>s|sec|second|m|min|minute|h|hour)\s*")
_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    url: str = "sqlite:///var/engage.db"
    """`sqlite:///PATH` (relative to the workspace root once loaded) or `postgresql+psycopg://...`."""
    pool_size: int = Field(default=5, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        scheme = url.partition("://")[0] if "://" in url else ""
        if scheme in ("postgresql", "postgres"):
            return "postgresql+psycopg://" + url.partition("://")[2]
        if (
            scheme == "postgresql+psycopg"
            or _SQLITE.fullmatch(url)
            or url in ("sqlite://", "sqlite:///:memory:")
        ):
            return url
        if scheme.startswith(("postgresql+", "postgres+")):
            raise ValueError(f"driver '{scheme}' is not installed: use postgresql+psycopg://USER@HOST/DB")
        what = f"scheme '{scheme}'" if scheme else "URL"
        raise ValueError(
            f"unsupported database {what}: use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )


class EventStreamConfig(_Section):
    type: Literal["inprocess", "rabbitmq"] = "inprocess"
    url: str | None = None
    """The AMQP URL; required with `type: rabbitmq` (no default is implied)."""
    partitions: int = Field(default=8, ge=1, le=256)
    exchange: str = Field(default="engage.events", min_length=1)
    batch_size: int = Field(default=500, ge=1, le=10000)

    @field_validator("url")
    @classmethod
    def _amqp_url(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme not in ("amqp", "amqps"):
            raise ValueError("must be an amqp:// or amqps:// URL")
        return url

    @model_validator(mode="after")
    def _url_for_rabbitmq(self) -> EventStreamConfig:
        if self.type == "rabbitmq" and not self.url:
            raise ValueError("url is required with type rabbitmq, e.g. amqp://USER:PASSWORD@HOST:5672/%2F")
        return self


class IngestConfig(_Section):
    write_keys: list[str] = Field(default_factory=list, validate_default=True)
    """Keys that storefronts send as the Basic-auth user of /v1/track, /v1/identify and /v1/batch."""
    max_event_bytes: int = Field(default=32768, ge=1024)
    max_batch_bytes: int = Field(default=512000, ge=1024)

    @field_validator("write_keys")
    @classmethod
    def _some_write_key(cls, keys: list[str]) -> list[str]:
        keys = [key.strip() for key in keys]
        if not any(keys):
            raise ValueError("at least one write key is required")
        if not all(keys):
            raise ValueError("a write key cannot be empty")
        return keys

    @model_validator(mode="after")
    def _batch_holds_an_event(self) -> IngestConfig:
        if self.max_batch_bytes < self.max_event_bytes:
            raise ValueError("max_batch_bytes must be at least max_event_bytes")
        return self


class ProfilesConfig(_Section):
    default_region: str = "US"
    """ISO 3166 alpha-2 region used to read phone numbers written without `+` and a country code."""
    email_consent_default: bool = True

    @field_validator("default_region")
    @classmethod
    def _phone_region(cls, region: str) -> str:
        code = region.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"'{region}' is not an ISO 3166 alpha-2 region code with phone numbers, e.g. US")
        return code


class ChannelsConfig(_Section):
    """Which connector (a file in connectors/, without .yml) sends each channel's messages."""

    email: str = "outbox"
    sms: str = "outbox"

    @field_validator("email", "sms")
    @classmethod
    def _file_name(cls, name: str) -> str:
        if not _CONNECTOR_NAME.fullmatch(name) or name.endswith((".yml", ".yaml")):
            raise ValueError(
                f"'{name}' is not a connector name: write the file name in connectors/ without .yml"
            )
        return name


class RasaConfig(_Section):
    """Where engage reaches the Rasa server (its HTTP API and channels) and the token of that API."""

    url: str = "http://127.0.0.1:5005"
    """Kept without a trailing `/`; `engage run` starts Rasa listening on this URL's host and port."""
    token: str = Field(default="dev-rasa-token", min_length=1)
    """The `--auth-token` of Rasa's HTTP API."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{url}' is not an http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment")
        _port(url)
        return url.rstrip("/")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return _port(self.url)


class RateLimit(_Section):
    """A token bucket: `rate` requests refill it (`N/s`, `N/min`, `N/h`), `burst` is how many it holds."""

    rate: str
    burst: int | None = Field(default=None, ge=1)
    """Defaults to the count of `rate` (at least 1): `10/min` lets 10 through at once, then one every 6 s."""

    @field_validator("rate")
    @classmethod
    def _rate(cls, rate: str) -> str:
        match = _RATE.fullmatch(rate)
        if match is None or float(match["count"]) <= 0:
            raise ValueError(f"'{rate}' is not a rate: write a positive count per unit, e.g. 100/s or 10/min")
        return f"{match['count']}/{match['unit']}"

    @property
    def per_second(self) -> float:
        count, _, unit = self.rate.partition("/")
        return float(count) / _SECONDS[unit]

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else max(1, int(float(self.rate.partition("/")[0])))


class RateLimitsConfig(_Section):
    """Requests each client may make to the public endpoints, per API process. Ingestion counts per write
    key (a request without a valid one counts against its IP address); the others per IP address."""

    enabled: bool = True
    ingest: RateLimit = RateLimit(rate="1000/s", burst=5000)
    """/v1/track, /v1/identify, /v1/page, /v1/screen, /v1/alias, /v1/group, /v1/batch, /v1/import."""
    webhooks: RateLimit = RateLimit(rate="200/s", burst=1000)
    """/hooks/*: SendGrid's and Twilio's callbacks."""
    links: RateLimit = RateLimit(rate="50/s", burst=500)
    """/c/, /o/, /u/, /r/: tracked clicks, the open pixel, unsubscribing."""
    chat: RateLimit = RateLimit(rate="20/s", burst=100)
    """/chat and its widget."""
    login: RateLimit = RateLimit(rate="10/min", burst=10)
    """POST /admin/login."""

    @model_validator(mode="before")
    @classmethod
    def _empty_limits(cls, data: Any) -> Any:
        """An empty limit (`links:`) means its default."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class Endpoints(BaseModel):
    """The validated contents of endpoints.yml; every section has defaults except `ingest.write_keys`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Sections are frozen, so their defaults can be shared instances.
    database: DatabaseConfig = DatabaseConfig()
    event_stream: EventStreamConfig = EventStreamConfig()
    public_url: str = "http://127.0.0.1:8000"
    """Where storefronts, providers' webhooks and tracked links reach engage; kept without a trailing `/`."""
    secret_key: str | None = Field(default=None, min_length=32)
    """Signs tracked links, open pixels and unsubscribe links; every process and host must share it. Without
    one, a random key is kept in var/secret.key (enough for one machine)."""
    ingest: IngestConfig
    profiles: ProfilesConfig = ProfilesConfig()
    channels: ChannelsConfig = ChannelsConfig()
    rasa: RasaConfig = RasaConfig()
    rate_limits: RateLimitsConfig = RateLimitsConfig()

    action_endpoint: dict[str, Any] | None = None
    tracker_store: dict[str, Any] | None = None
    event_broker: dict[str, Any] | None = None
    lock_store: dict[str, Any] | None = None
    models: dict[str, Any] | None = None
    nlg: dict[str, Any] | None = None
    nlu: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """An empty section (`database:`) means its defaults; a missing `ingest` still needs write keys."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("database", "event_stream", "ingest", "profiles", "channels", "rasa", "rate_limits"):
            if data.get(key) is None:
                data[key] = {}
        return data

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"'{url}' is not an http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment")
        return url.rstrip("/")


def resolve_database_url(url: str, root: Path) -> str:
    """Make a relative SQLite path absolute against the workspace `root`; other URLs are returned as is."""
    match = _SQLITE.fullmatch(url)
    if match is None or not match["path"] or match["path"] == ":memory:" or match["path"].startswith("/"):
        return url
    path = (root / match["path"]).as_posix()
    return f"{match['scheme']}:///{path}{match['query'] or ''}"


def endpoints_file(environ: Mapping[str, str] | None = None) -> str:
    """The endpoints file of the workspace, relative to its root: `ENGAGE_ENDPOINTS` from `environ` (default:
    os.environ) when set, else endpoints.yml. WorkspaceError when it is not a file name inside the root."""
    env = os.environ if environ is None else environ
    name = env.get(ENDPOINTS_ENV, "").strip()
    if not name:
        return ENDPOINTS_FILE
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.endswith("/"):
        raise WorkspaceError(
            f"{ENDPOINTS_ENV}={name}: name a file of the workspace relative to its root, "
            "e.g. endpoints.production.yml"
        )
    return path.as_posix()


def read_endpoints(
    root: Path, environ: Mapping[str, str] | None = None
) -> tuple[YamlFile | None, Endpoints | None, list[Problem]]:
    """Load the workspace's endpoints file (`endpoints_file`): the parsed document (for lines), the validated
    settings with `${VAR}` substituted and the SQLite path made absolute, and every problem found (settings
    are None if any)."""
    name = endpoints_file(environ)
    doc, problems = load_yaml(root / name, name)
    if doc is None:
        return None, None, problems
    if doc.data is not None and not isinstance(doc.data, dict):
        return doc, None, [*problems, doc.problem((), f"expected a mapping of keys, not {_kind(doc.data)}")]
    env = substitute_env(doc, environ)
    problems += env.missing + env.invalid
    endpoints, invalid = validate_model(Endpoints, env.doc, env.doc.data or {}, skip=env.unresolved)
    problems += invalid
    if endpoints is None or problems:
        return doc, None, problems
    database = endpoints.database.model_copy(
        update={"url": resolve_database_url(endpoints.database.url, root)}
    )
    return doc, endpoints.model_copy(update={"database": database}), []


def _port(url: str) -> int:
    """The URL's port, or its scheme's default; ValueError when the port is not a number in range."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"'{url}' has an invalid port") from None
    return port or (443 if parts.scheme == "https" else 80)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"
