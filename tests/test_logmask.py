"""Email addresses and phone numbers are masked in log lines, and `engage` commands install the mask."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from engage.logmask import MaskFilter, mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to ann.lee+vip@example.com", "to a***@example.com"),
        ("sms to +14155550123 sent", "sms to +1415****123 sent"),
        ("+1 415 555 0123", "+1415****123"),
        ("+44 (20) 7946-0958", "+4420*****958"),
        ("from (415) 555-2671.", "from 415****671."),
        ("call 415-555-0123 or 415.555.0123", "call 415****123 or 415****123"),
        ("14155550123@sms.example", "1***@sms.example"),
    ],
)
def test_addresses_and_numbers_are_masked(text: str, masked: str) -> None:
    assert mask(text) == masked
    assert mask(masked) == masked


@pytest.mark.parametrize(
    "text",
    [
        "at 2026-12-05T02:19:08+00:00 seq=12345678 in 1234567.89 s",
        "message 550e8400-e29b-41d4-a716-446655440000 from 127.0.0.1:8000",
        "+5 (3 tries)",
        "campaign weekly: making up the run of 2026-12-05",
    ],
)
def test_timestamps_ids_and_addresses_of_hosts_are_left_alone(text: str) -> None:
    assert mask(text) == text


def test_a_record_is_masked_in_its_message_args_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("engage.test.logmask")
    log.addFilter(MaskFilter())
    try:
        with caplog.at_level(logging.INFO, logger="engage.test.logmask"):
            log.info("sent to %s and %s (%d tries)", "ann@example.com", "+14155550123", 3)
            log.info({"to": "bob@example.org"})
            try:
                raise ValueError("bad phone +33612345678")
            except ValueError:
                log.exception("failed for %s", "carol@example.net")
    finally:
        log.filters.clear()
    assert caplog.messages[:2] == [
        "sent to a***@example.com and +1415****123 (3 tries)",
        "{'to': 'b***@example.org'}",
    ]
    assert caplog.messages[2] == "failed for c***@example.net"
    assert "+3361****678" in caplog.text and "33612345678" not in caplog.text
    assert "example.com" in caplog.text and "ann@" not in caplog.text


def test_engage_commands_mask_their_logs_and_uvicorns() -> None:
    """Through the CLI's own logging setup, in a fresh interpreter (pytest owns this one's root logger),
    then uvicorn configuring its loggers as `engage serve` makes it do."""
    script = textwrap.dedent(
        """
        import logging
        import uvicorn
        from engage.cli._context import setup_logging

        setup_logging()
        log = logging.getLogger("engage.messaging")
        log.warning("no consent for %s / %s", "ann@example.com", "+14155550123")
        uvicorn.Config(lambda scope, receive, send: None, log_level="info")  # uvicorn's dictConfig runs here
        logging.getLogger("uvicorn.error").error("request from bob@example.org failed")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert any(line.endswith("no consent for a***@example.com / +1415****123") for line in lines), lines
    assert any(line.endswith("request from b***@example.org failed") for line in lines), lines
    assert "ann@" not in result.stderr and "bob@" not in result.stdout + result.stderr
