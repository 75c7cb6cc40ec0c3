"""The embedded default: messages written to the outbox as files, through the commands an operator uses
(`engage send`, `engage outbox`, `engage messages show`, `engage templates render`)."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from engage.bootstrap import bootstrap
from engage.cli.main import main
from engage.workspace import Workspace
from tests.conftest import MakeWorkspace
from tests.helpers import send
from tests.messaging.conftest import customers


@pytest.fixture
def root(make_workspace: MakeWorkspace) -> Path:
    workspace = make_workspace()
    engage = bootstrap(Workspace.load(workspace.root))
    customers(engage, 4)
    send(engage, {"type": "track", "userId": "c3", "event": "SmsOptedOut", "properties": {}})
    engage.close()
    return workspace.root


def test_an_email_and_an_sms_in_the_outbox(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "email/welcome", "--user", "c1", "-w", str(root)]) == 0
    message_id, status = capsys.readouterr().out.strip().split(": ")
    assert status == "sent"
    (eml,) = (root / "var" / "outbox").glob(f"*/{message_id}.eml")
    email = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert (
        email["To"] == "Cus1 <c1@example.com>" and email["Subject"] == "Welcome to Retail Demo Store, Cus1!"
    )
    assert email["X-Engage-Send-Id"] == message_id
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/u/" in email["List-Unsubscribe"] and "mailto:support@example.com" in email["List-Unsubscribe"]
    assert "Thanks for signing up" in email.get_body(("plain",)).get_content()
    assert "<h1" in email.get_body(("html",)).get_content()

    assert main(["send", "sms/optin", "--user", "c1", "-w", str(root)]) == 0  # an invitation: no opt-in yet
    sms_id = capsys.readouterr().out.split(":")[0]
    (sms,) = (root / "var" / "outbox").glob(f"*/{sms_id}.json")
    assert json.loads(sms.read_text())["body"].startswith("Retail Demo Store: reply Y to get personal offers")
    assert main(["outbox", "-w", str(root)]) == 0
    listing = capsys.readouterr().out
    assert listing.index("reply Y to get") < listing.index("Welcome to Retail Demo Store")  # newest first


def test_the_invitation_never_goes_to_a_number_that_opted_out(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "sms/optin", "--user", "c3", "-w", str(root)]) == 0
    assert capsys.readouterr().out.strip().endswith("suppressed (opted out of sms)")
    assert not list((root / "var" / "outbox").glob("*/*.json"))


def test_a_message_shows_its_history(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["send", "email/weekly_picks", "--user", "c0", "--key", "weekly:1", "-w", str(root)])
    message_id = capsys.readouterr().out.split(":")[0]
    assert main(["send", "email/weekly_picks", "--user", "c0", "--key", "weekly:1", "-w", str(root)]) == 0
    assert capsys.readouterr().out.split(":")[0] == message_id  # the same key: the same message, sent once
    assert len(list((root / "var" / "outbox").glob("*/*.eml"))) == 1
    assert main(["messages", "show", message_id, "-w", str(root)]) == 0
    shown = capsys.readouterr().out
    assert "email/weekly_picks to c0@example.com (email): sent" in shown
    assert [line.split()[2] for line in shown.splitlines()[2:]] == ["queued", "sending", "sent"]
    assert main(["messages", "show", "nope", "-w", str(root)]) == 1


def test_render_shows_what_a_customer_would_get(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "render", "sms/optin", "--user", "c2", "-w", str(root)]) == 0
    out = capsys.readouterr().out
    assert "reply Y to get personal offers by SMS, Cus2." in out and "-- 1 segment (GSM-7," in out
    assert main(["templates", "render", "email/welcome", "--user", "c2", "-w", str(root)]) == 0
    assert capsys.readouterr().out.startswith("Subject: Welcome to Retail Demo Store, Cus2!")
    assert main(["templates", "render", "email/welcome", "--user", "nobody", "-w", str(root)]) == 1
    assert "no customer with the id 'nobody'" in capsys.readouterr().err
    assert not list((root / "var" / "outbox").glob("*/*"))  # rendering sends nothing


def test_the_worker_dispatches_what_is_recorded(make_workspace: MakeWorkspace) -> None:
    from engage.demo.server import LocalServer
    from tests.helpers import wait_for

    workspace = make_workspace()
    engage = bootstrap(Workspace.load(workspace.root))
    customers(engage, 2)
    with LocalServer(engage):  # the API and a worker, whose dispatcher thread sends what becomes due
        record = engage.messaging.send("email/welcome", "c0")
        wait_for(lambda: engage.messaging.get(record.id).status == "sent", what="the worker to send it")  # type: ignore[union-attr]
    assert list((workspace.root / "var" / "outbox").glob(f"*/{record.id}.eml"))
    engage.close()
