"""The bot by SMS: a customer's text that is not a keyword (STOP, START, HELP, Y: messaging answers those
first) arrives as `SmsReplied`; the `chat` consumer keeps it in `chat_inbox`, and the relay hands it to
Rasa's REST channel with the customer's profile as the sender and `{"channel": "sms"}` as metadata, then
sends Rasa's answers back through messaging (template `sms/chat_reply`, so through the SMS connector with
its policies and records).

Nothing is lost when Rasa is down: the text stays in the inbox and is tried again with a growing pause; the
customer is told once that an answer is coming (`sms/chat_holding`). Each answer is recorded under the send
key `chat:{inbox id}:{n}`, so a text handed to Rasa twice (a worker died after Rasa answered) is still
answered once. A customer's texts go to Rasa in the order they came.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import requests
from sqlalchemy import Connection, text

from engage.events.log import LoggedEvent
from engage.messaging.service import Messaging, Request
from engage.polling import poll
from engage.store.codec import time_param, time_value
from engage.store.database import Database

__all__ = ["ChatInboxConsumer", "SmsRelay", "REPLY_TEMPLATE", "HOLDING_TEMPLATE"]

log = logging.getLogger(__name__)
REPLY_TEMPLATE = "sms/chat_reply"
HOLDING_TEMPLATE = "sms/chat_holding"
LEASE = timedelta(seconds=60)
"""How long a claimed text is left to the worker that claimed it before another tries it."""
GIVE_UP = timedelta(days=1)
"""A text Rasa has not answered for this long is marked failed (the customer had the holding reply)."""
_PAUSES = (2, 5, 15, 30, 60, 120, 300)
_BATCH = 20


class ChatInboxConsumer:
    """Keeps each `SmsReplied` in the inbox, once (its message id), for the relay."""

    name = "chat"

    def __init__(self, wake: Callable[[], None]):
        self.wake = wake

    def handle(self, connection: Connection, events: Sequence[LoggedEvent]) -> None:
        sqlite = connection.dialect.name == "sqlite"
        kept = 0
        for event in events:
            body = event.properties.get("body")
            if event.event != "SmsReplied" or not isinstance(body, str) or not body.strip():
                continue
            connection.execute(
                text(
                    "INSERT INTO chat_inbox (id, profile_id, body, received_at, status, attempts, next_at, "
                    "holding_sent) VALUES (:id, :profile, :body, :at, 'pending', 0, :at, :no) "
                    "ON CONFLICT (id) DO NOTHING"
                ),
                {"id": event.message_id, "profile": event.profile_id, "body": body,
                 "at": time_param(event.received_at, sqlite), "no": False},
            )  # fmt: skip
            kept += 1
        if kept:
            self.wake()


class SmsRelay:
    def __init__(
        self,
        database: Database,
        messaging: Messaging,
        rasa_url: str,
        clock: Callable[[], datetime],
        timeout: float = 30.0,
    ):
        self.database = database
        self.messaging = messaging
        self.webhook = f"{rasa_url.rstrip('/')}/webhooks/rest/webhook"
        self.clock = clock
        self.timeout = timeout
        self._wake = threading.Event()
        self._http = requests.Session()

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event, idle: float = 1.0) -> None:
        poll(self.relay_once, stop, idle=idle, what="relaying SMS to the bot", wake=self._wake)

    def relay_once(self) -> int:
        """Hand the due texts to Rasa and record its answers; how many texts were tried."""
        claimed = self._claim()
        for inbox_id, profile_id, body, attempts, holding_sent, received_at in claimed:
            try:
                answers = self._ask(profile_id, body)
            except RasaUnavailable as exc:
                self._failed(inbox_id, profile_id, attempts, holding_sent, received_at, str(exc))
                continue
            self._answered(inbox_id, profile_id, answers)
        if claimed:
            self.messaging.wake()
        return len(claimed)

    def _claim(self) -> list[tuple[str, str, str, int, bool, datetime]]:
        """The oldest due text of each customer (none of whose earlier texts wait), leased to this worker."""
        now = self.clock()
        with self.database.write() as connection:
            sqlite = connection.dialect.name == "sqlite"
            rows = connection.execute(
                text(
                    "SELECT i.id, i.profile_id, i.body, i.attempts, i.holding_sent, i.received_at "
                    "FROM chat_inbox AS i WHERE i.status = 'pending' AND i.next_at <= :now AND NOT EXISTS "
                    "(SELECT 1 FROM chat_inbox AS e WHERE e.profile_id = i.profile_id "
                    "AND e.status = 'pending' AND e.received_at < i.received_at) "
                    "ORDER BY i.received_at LIMIT :limit" + ("" if sqlite else " FOR UPDATE OF i SKIP LOCKED")
                ),
                {"now": time_param(now, sqlite), "limit": _BATCH},
            ).all()
            for row in rows:
                connection.execute(
                    text("UPDATE chat_inbox SET next_at = :lease WHERE id = :id"),
                    {"lease": time_param(now + LEASE, sqlite), "id": row[0]},
                )
        return [(r[0], r[1], r[2], r[3], bool(r[4]), time_value(r[5])) for r in rows]

    def _ask(self, profile_id: str, body: str) -> list[str]:
        try:
            response = self._http.post(
                self.webhook,
                json={"sender": profile_id, "message": body, "metadata": {"channel": "sms"}},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise RasaUnavailable(f"Rasa cannot be reached: {exc.__class__.__name__}") from None
        if response.status_code >= 500 or response.status_code in (404, 408, 429):
            raise RasaUnavailable(f"Rasa answered {response.status_code}")
        response.raise_for_status()
        return [str(answer["text"]) for answer in response.json() if answer.get("text")]

    def _answered(self, inbox_id: str, profile_id: str, answers: list[str]) -> None:
        requests_ = [
            Request(REPLY_TEMPLATE, profile_id, f"chat:{inbox_id}:{n}", data={"vars": {"text": answer}})
            for n, answer in enumerate(answers)
        ]
        with self.database.write() as connection:
            if requests_:
                self.messaging.store(connection, self.messaging.plan(connection, requests_))
            connection.execute(
                text(
                    "UPDATE chat_inbox SET status = 'answered', answered_at = :now, error = NULL "
                    "WHERE id = :id"
                ),
                {"now": time_param(self.clock(), connection.dialect.name == "sqlite"), "id": inbox_id},
            )

    def _failed(
        self,
        inbox_id: str,
        profile_id: str,
        attempts: int,
        holding_sent: bool,
        received_at: datetime,
        error: str,
    ) -> None:
        now = self.clock()
        pause = timedelta(seconds=_PAUSES[min(attempts, len(_PAUSES) - 1)])
        status = "failed" if now - received_at > GIVE_UP else "pending"
        log.warning(
            "SMS %s for the bot: %s; %s",
            inbox_id,
            error,
            "given up" if status == "failed" else f"again in {pause}",
        )
        with self.database.write() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if not holding_sent:
                holding = Request(HOLDING_TEMPLATE, profile_id, f"chat:{inbox_id}:holding")
                self.messaging.store(connection, self.messaging.plan(connection, [holding]))
            connection.execute(
                text(
                    "UPDATE chat_inbox SET status = :status, attempts = attempts + 1, next_at = :next, "
                    "holding_sent = :yes, error = :error WHERE id = :id"
                ),
                {
                    "status": status,
                    "next": time_param(now + pause, sqlite),
                    "yes": True,
                    "error": error,
                    "id": inbox_id,
                },
            )

    def close(self) -> None:
        self._http.close()


class RasaUnavailable(Exception):
    """Rasa could not take the text now (down, starting, overloaded): it is tried again later."""
