"""Connectors: engage's providers, one file each holding both directions (`sendgrid`: email out and its
Event Webhook in; `twilio`: SMS out, status callbacks and inbound SMS in; `outbox`: files, the embedded
default). `endpoints.yml`'s `channels` names the file of `connectors/` that sends each channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engage.connectors.base import Accepted, DeliveryError, Email, EmailConnector, Outcome, Sms, SmsConnector
from engage.connectors.outbox import OutboxConnector
from engage.connectors.sendgrid import SendGridConnector
from engage.connectors.twilio import TwilioConnector
from engage.errors import WorkspaceError
from engage.workspace import Workspace
from engage.workspace.connectors import ConnectorConfig, OutboxConfig, SendGridConfig, TwilioConfig

__all__ = [
    "Accepted",
    "Connectors",
    "DeliveryError",
    "Email",
    "EmailConnector",
    "Outcome",
    "Sms",
    "SmsConnector",
    "TWILIO_STATUS_PATH",
    "build_connectors",
]

TWILIO_STATUS_PATH = "/hooks/twilio/status"


@dataclass(frozen=True)
class Connectors:
    email: EmailConnector
    sms: SmsConnector
    configs: Mapping[str, ConnectorConfig]
    """The configuration of each channel's connector, by channel (webhooks check signatures with it)."""

    def sendgrid(self) -> SendGridConfig | None:
        config = self.configs.get("email")
        return config if isinstance(config, SendGridConfig) else None

    def twilio(self) -> TwilioConnector | None:
        return self.sms if isinstance(self.sms, TwilioConnector) else None


_BUILDERS: dict[type[ConnectorConfig], Callable[[Any, Workspace, str], Any]] = {
    OutboxConfig: lambda config, workspace, sender: OutboxConnector.from_config(
        config, workspace.root, sender
    ),
    SendGridConfig: lambda config, workspace, sender: SendGridConnector(config),
    TwilioConfig: lambda config, workspace, sender: TwilioConnector(
        config, workspace.endpoints.public_url + TWILIO_STATUS_PATH
    ),
}


def build_connectors(
    workspace: Workspace, sender: str = "shop@example.com", environ: Mapping[str, str] | None = None
) -> Connectors:
    """The connectors `endpoints.yml`'s channels name, built from their files (`sender`: the outbox From)."""
    channels = workspace.endpoints.channels
    configs = {
        "email": workspace.connector(channels.email, environ),
        "sms": workspace.connector(channels.sms, environ),
    }
    built = {
        channel: _BUILDERS[type(config)](config, workspace, sender) for channel, config in configs.items()
    }
    if not isinstance(built["email"], EmailConnector):
        raise WorkspaceError(f"endpoints.yml: channels.email: connector '{channels.email}' cannot send email")
    if not isinstance(built["sms"], SmsConnector):
        raise WorkspaceError(f"endpoints.yml: channels.sms: connector '{channels.sms}' cannot send SMS")
    return Connectors(built["email"], built["sms"], configs)
