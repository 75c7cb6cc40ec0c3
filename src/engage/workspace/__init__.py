"""The workspace: the marketer-edited files (endpoints.yml, connectors/, segments/, journeys/, templates/,
bot/), found, loaded, validated with `file:line: key.path: what is wrong`, and created from the example."""

from __future__ import annotations

from engage.workspace.check import (
    CheckContext,
    CheckSummary,
    check_workspace,
    register_kind,
    yaml_validator,
)
from engage.workspace.connectors import (
    CONNECTOR_TYPES,
    ConnectorConfig,
    OutboxConfig,
    SendGridConfig,
    TwilioConfig,
    load_connector,
)
from engage.workspace.endpoints import (
    ChannelsConfig,
    DatabaseConfig,
    Endpoints,
    EventStreamConfig,
    IngestConfig,
    ProfilesConfig,
)
from engage.workspace.workspace import Workspace, example_workspace, find_workspace, init_workspace
from engage.workspace.yaml import YamlFile, load_yaml, substitute_env, validation_problems

__all__ = [
    "Workspace",
    "find_workspace",
    "check_workspace",
    "init_workspace",
    "example_workspace",
    "CheckSummary",
    "CheckContext",
    "register_kind",
    "yaml_validator",
    "Endpoints",
    "DatabaseConfig",
    "EventStreamConfig",
    "IngestConfig",
    "ProfilesConfig",
    "ChannelsConfig",
    "ConnectorConfig",
    "OutboxConfig",
    "SendGridConfig",
    "TwilioConfig",
    "CONNECTOR_TYPES",
    "load_connector",
    "YamlFile",
    "load_yaml",
    "substitute_env",
    "validation_problems",
]
