"""The schema of `connectors/NAME.yml`: one file per external provider, secrets as `${ENV}`.

Only the configuration lives here; the connectors themselves (sending, webhooks) are in `engage.connectors`.
A file's `type` defaults to its name, so `connectors/twilio.yml` needs no `type: twilio`; a second account of
the same provider is another file with an explicit type (`connectors/twilio-eu.yml` with `type: twilio`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from engage.errors import ConfigError, Problem
from engage.workspace.yaml import YamlFile, load_yaml, substitute_env, validate_model

__all__ = [
    "CONNECTORS_DIR",
    "ConnectorConfig",
    "OutboxConfig",
    "SendGridConfig",
    "TwilioConfig",
    "CONNECTOR_TYPES",
    "ParsedConnector",
    "parse_connector",
    "load_connector",
]

CONNECTORS_DIR = "connectors"

_E164 = re.compile(r"\+[1-9]\d{6,14}")


class ConnectorConfig(BaseModel):
    """Base of every connector's configuration; `channels` are the channels it can send."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channels: ClassVar[frozenset[str]] = frozenset()
    type: str


class OutboxConfig(ConnectorConfig):
    """Writes each message to a file instead of sending it: the embedded default, for development."""

    channels: ClassVar[frozenset[str]] = frozenset({"email", "sms"})
    type: Literal["outbox"] = "outbox"
    path: str = Field(default="var/outbox", min_length=1)
    """The folder for message files, relative to the workspace root unless absolute."""


class _ProviderConfig(ConnectorConfig):
    base_url: str | None = None
    """Another address for the provider's API, e.g. a local fake server on 127.0.0.1 in tests."""
    timeout: float = Field(default=30.0, gt=0, le=600)
    """Seconds to wait for the provider's answer; past it, engage cannot know whether the message was
    taken, and finds out before sending it again."""

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, url: str | None) -> str | None:
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"'{url}' is not an http:// or https:// URL")
        return url


class SendGridConfig(_ProviderConfig):
    channels: ClassVar[frozenset[str]] = frozenset({"email"})
    type: Literal["sendgrid"] = "sendgrid"
    api_key: str = Field(min_length=1)
    from_email: EmailStr
    from_name: str | None = None
    reply_to: EmailStr | None = None
    webhook_verification_key: str | None = None
    """The Event Webhook's public verification key (base64 ECDSA), to check signed webhooks."""


class TwilioConfig(_ProviderConfig):
    channels: ClassVar[frozenset[str]] = frozenset({"sms"})
    type: Literal["twilio"] = "twilio"
    account_sid: str = Field(min_length=1)
    auth_token: str = Field(min_length=1)
    from_number: str | None = None
    """The sending number in E.164 form, e.g. +15005550006; or use `messaging_service_sid`."""
    messaging_service_sid: str | None = None

    @field_validator("from_number")
    @classmethod
    def _e164(cls, number: str | None) -> str | None:
        if number is not None and not _E164.fullmatch(number):
            raise ValueError(f"'{number}' is not a phone number in E.164 form, e.g. +15005550006")
        return number

    @model_validator(mode="after")
    def _sender(self) -> TwilioConfig:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set from_number or messaging_service_sid")
        return self


CONNECTOR_TYPES: dict[str, type[ConnectorConfig]] = {
    "outbox": OutboxConfig,
    "sendgrid": SendGridConfig,
    "twilio": TwilioConfig,
}


@dataclass(frozen=True)
class ParsedConnector:
    """What `parse_connector` found in one connector file."""

    name: str
    type: str | None
    """The declared or implied type when it is a known one."""
    config: ConnectorConfig | None
    """None when there is any error."""
    errors: list[Problem]
    missing: list[Problem]
    """Environment variables that are not set, kept apart: the caller decides if they are errors."""


def parse_connector(doc: YamlFile, name: str, environ: Mapping[str, str] | None = None) -> ParsedConnector:
    """Validate one parsed connector file named `name` (its file stem)."""
    data: Any = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        return ParsedConnector(name, None, None, [doc.problem((), "expected a mapping of keys")], [])
    kind = data.get("type", name)
    model = CONNECTOR_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(CONNECTOR_TYPES)
        implied = "" if "type" in data else f" (from the file name; set `type:` to one of {known})"
        message = f"unknown connector type '{kind}'{implied}; known types: {known}"
        return ParsedConnector(name, None, None, [doc.problem(("type",), message)], [])
    env = substitute_env(doc, environ)
    fields = {"type": kind, **(env.doc.data or {})}
    config, errors = validate_model(model, env.doc, fields, skip=env.unresolved)
    errors += env.invalid
    ok = not errors and not env.missing
    return ParsedConnector(name, kind, config if ok else None, errors, env.missing)


def load_connector(root: Path, name: str, environ: Mapping[str, str] | None = None) -> ConnectorConfig:
    """Load `connectors/NAME.yml` for use: every problem, a missing variable included, is a ConfigError."""
    file = f"{CONNECTORS_DIR}/{name}.yml"
    path = root / file
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in (root / CONNECTORS_DIR).glob("*.yml"))) or "none"
        raise ConfigError.at(file, 0, f"no connector '{name}' in {CONNECTORS_DIR}/ (found: {known})")
    doc, problems = load_yaml(path, file)
    if doc is None:
        raise ConfigError(problems)
    parsed = parse_connector(doc, name, environ)
    problems += parsed.errors + parsed.missing
    if problems or parsed.config is None:
        raise ConfigError(problems)
    return parsed.config
