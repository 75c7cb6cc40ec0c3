from __future__ import annotations

from pathlib import Path

import pytest

from engage.errors import ConfigError
from engage.workspace import OutboxConfig, SendGridConfig, TwilioConfig, Workspace
from engage.workspace.connectors import ParsedConnector, parse_connector
from engage.workspace.yaml import parse_yaml

SENDGRID = "api_key: ${SENDGRID_API_KEY}\nfrom_email: shop@example.com\n"


def parse(text: str, name: str, environ: dict[str, str] | None = None) -> ParsedConnector:
    doc, problems = parse_yaml(text, f"connectors/{name}.yml")
    assert doc is not None and problems == []
    return parse_connector(doc, name, environ or {})


def test_type_defaults_to_the_file_name() -> None:
    parsed = parse(SENDGRID, "sendgrid", {"SENDGRID_API_KEY": "SG.x"})
    assert parsed.errors == [] and parsed.missing == []
    assert isinstance(parsed.config, SendGridConfig)
    assert parsed.config.api_key == "SG.x" and parsed.config.base_url is None
    assert isinstance(parse("", "outbox").config, OutboxConfig)


def test_an_explicit_type_allows_any_file_name() -> None:
    text = "type: twilio\naccount_sid: AC1\nauth_token: t\nmessaging_service_sid: MG1\n"
    config = parse(text, "twilio-eu").config
    assert isinstance(config, TwilioConfig) and config.from_number is None


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        (
            "type: pigeon\n",
            "outbox",
            "connectors/outbox.yml:1: type: unknown connector type 'pigeon'; known types: "
            "outbox, sendgrid, twilio",
        ),
        (
            "path: x\n",
            "mailgun",
            "connectors/mailgun.yml:1: type: unknown connector type 'mailgun' (from the file "
            "name; set `type:` to one of outbox, sendgrid, twilio); known types: outbox, sendgrid, twilio",
        ),
        (
            "type: outbox\nfolder: x\n",
            "outbox",
            "connectors/outbox.yml:2: unknown key 'folder'; known keys: type, path",
        ),
        (
            "api_key: k\nfrom_email: not-an-email\n",
            "sendgrid",
            "connectors/sendgrid.yml:2: from_email: value is not a valid email address",
        ),
        (
            SENDGRID.replace("${SENDGRID_API_KEY}", "k") + "base_url: 127.0.0.1:8025\n",
            "sendgrid",
            "connectors/sendgrid.yml:3: base_url: '127.0.0.1:8025' is not an http:// or https:// URL",
        ),
        (
            "account_sid: AC1\nauth_token: t\n",
            "twilio",
            "connectors/twilio.yml:1: set from_number or messaging_service_sid",
        ),
        (
            "account_sid: AC1\nauth_token: t\nfrom_number: '555-0100'\n",
            "twilio",
            "connectors/twilio.yml:3: "
            "from_number: '555-0100' is not a phone number in E.164 form, e.g. +15005550006",
        ),
        ("- outbox\n", "outbox", "connectors/outbox.yml:1: expected a mapping of keys"),
    ],
)
def test_invalid_connectors(text: str, name: str, message: str) -> None:
    parsed = parse(text, name)
    assert parsed.config is None
    assert [str(p) for p in parsed.errors][0].startswith(message)


def test_missing_variables_are_kept_apart_and_hide_no_other_error() -> None:
    parsed = parse(SENDGRID + "reply_to: nope\n", "sendgrid")
    assert [str(p) for p in parsed.missing] == [
        "connectors/sendgrid.yml:1: environment variable SENDGRID_API_KEY is not set"
    ]
    (error,) = parsed.errors
    assert str(error).startswith("connectors/sendgrid.yml:3: reply_to: value is not a valid email address")
    assert parsed.config is None


def test_workspace_connector_raises_for_a_missing_variable(tmp_path: Path) -> None:
    (tmp_path / "endpoints.yml").write_text("ingest:\n  write_keys: [k]\n")
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "sendgrid.yml").write_text(SENDGRID)
    ws = Workspace.load(tmp_path, environ={})
    with pytest.raises(
        ConfigError, match=r"connectors/sendgrid.yml:1: environment variable SENDGRID_API_KEY"
    ):
        ws.connector("sendgrid", environ={})
    assert ws.connector("sendgrid", environ={"SENDGRID_API_KEY": "SG.k"}).type == "sendgrid"
    with pytest.raises(ConfigError, match=r"no connector 'twilio' in connectors/ \(found: sendgrid\)"):
        ws.connector("twilio")
