"""The outbox, the embedded default: every message is a file under `var/outbox/DAY/` instead of a send,
an email as a standard .eml (open it in any mail client), an SMS as JSON. `engage outbox` lists them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from engage.connectors.base import Accepted, DeliveryError, Email, Outcome, Sms
from engage.workspace.connectors import OutboxConfig

__all__ = ["OutboxConnector", "OutboxEntry", "read_outbox"]

_POLICY = policy.SMTP.clone(max_line_length=998)
"""CRLF lines as mail is sent; a long header (List-Unsubscribe's two URLs) stays one readable line."""


@dataclass(frozen=True)
class OutboxEntry:
    path: Path
    channel: str
    to: str
    summary: str
    """An email's subject, an SMS's text."""
    at: datetime


class OutboxConnector:
    name = "outbox"

    def __init__(self, folder: Path, sender: str = "shop@example.com"):
        self.folder = folder
        self.sender = sender

    @classmethod
    def from_config(cls, config: OutboxConfig, root: Path, sender: str) -> OutboxConnector:
        folder = Path(config.path)
        return cls(folder if folder.is_absolute() else root / folder, sender)

    def send_emails(self, emails: Sequence[Email]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for email in emails:
            message = EmailMessage(policy=_POLICY)
            message["From"] = self.sender
            message["To"] = formataddr((email.to_name or "", email.to))
            message["Subject"] = email.subject
            message["Date"] = format_datetime(datetime.now(UTC))
            message["Message-ID"] = make_msgid(idstring=email.send_id, domain="engage.local")
            message["X-Engage-Send-Id"] = email.send_id
            for name, value in email.headers.items():
                message[name] = value
            message.set_content(email.text)
            message.add_alternative(email.html, subtype="html")
            outcomes.append(self._write(f"{email.send_id}.eml", bytes(message)))
        return outcomes

    def send_sms(self, sms: Sms) -> Accepted:
        record = {"send_id": sms.send_id, "to": sms.to, "body": sms.body, "at": datetime.now(UTC).isoformat()}
        outcome = self._write(
            f"{sms.send_id}.json", json.dumps(record, ensure_ascii=False, indent=2).encode()
        )
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome

    def find(self, sms: Sms, since_seconds: float) -> str | None:
        return self._found(f"{sms.send_id}.json")

    def find_email(self, send_id: str) -> str | None:
        return self._found(f"{send_id}.eml")

    def _found(self, name: str) -> str | None:
        return name if any(self.folder.glob(f"*/{name}")) else None

    def _write(self, name: str, content: bytes) -> Outcome:
        """Written whole under a temporary name, then renamed: a file in the outbox is a complete message."""
        day = self.folder / datetime.now(UTC).date().isoformat()
        try:
            day.mkdir(parents=True, exist_ok=True)
            draft = day / f".{name}"
            draft.write_bytes(content)
            os.replace(draft, day / name)
        except OSError as exc:
            return DeliveryError(f"cannot write to the outbox {day}: {exc.strerror or exc}", retryable=True)
        return Accepted(name)


def read_outbox(folder: Path) -> Iterator[OutboxEntry]:
    """Every message in the outbox, newest first."""
    files = sorted(
        (path for path in folder.glob("*/*") if path.suffix in (".eml", ".json") and path.name[0] != "."),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for path in files:
        at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        if path.suffix == ".eml":
            with path.open("rb") as file:
                message = BytesParser(policy=policy.default).parse(file, headersonly=True)
            yield OutboxEntry(path, "email", str(message["To"]), str(message["Subject"]), at)
        else:
            record = json.loads(path.read_text(encoding="utf-8"))
            yield OutboxEntry(path, "sms", record["to"], record["body"], at)
