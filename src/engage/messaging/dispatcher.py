"""The dispatcher: claims the messages that are due, checks the policies again, renders, records what each
says, hands them to the channel's connector and records what became of them.

Nothing is lost and nothing is sent twice:

1. Claiming a message makes it `sending` in its own transaction (on PostgreSQL, `FOR UPDATE SKIP LOCKED`:
   several dispatchers share the work).
2. Its rendered content and tracked links are committed before the provider is called, so a link clicked
   a second after delivery already resolves.
3. The provider's answer is committed: `sent`, a wait before another attempt (429, 5xx, unreachable:
   `retries` in messaging.yml, exponential backoff with jitter), or `failed` (refused for good, or tried
   too often), with a `MessageFailed` event.

The one window: between the provider taking a message and step 3's commit. A crash there (or a request
that times out, so engage cannot know) leaves the message `sending` or `unknown`. `recover` handles it
after `LEASE`: Twilio (and the outbox) are asked whether they have the message and it is marked `sent` or
sent again; for SendGrid, which cannot be asked, engage waits `UNKNOWN_GRACE` for its Event Webhook, whose
events carry engage's send id and settle the message, and only then sends it again (with the webhook
configured, a message is never sent twice; without it, a crash in that window can).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engage.connectors import Accepted, Connectors, DeliveryError, Email, Outcome, Sms
from engage.connectors.outbox import OutboxConnector
from engage.connectors.twilio import OPTED_OUT
from engage.messaging.announce import Announcer
from engage.messaging.config import MessagingConfig
from engage.messaging.customers import Customer, load_customers
from engage.messaging.policy import Policy
from engage.messaging.records import Changes, MessageRecord, Records
from engage.messaging.render import Job, Renderer, Result
from engage.messaging.templates import Templates
from engage.polling import poll
from engage.recommend.service import exposure
from engage.store import Database

__all__ = ["Dispatcher", "BATCH", "LEASE", "UNKNOWN_GRACE"]

log = logging.getLogger(__name__)

BATCH = 1_000
LEASE = timedelta(minutes=10)
"""A message `sending` for longer lost its dispatcher (one batch takes seconds)."""
UNKNOWN_GRACE = timedelta(hours=1)
"""How long an unanswered SendGrid request waits for the webhook before the email is sent again."""
SMS_THREADS = 8
"""SMS are one request each: this many at once."""


@dataclass
class _Ready:
    record: MessageRecord
    customer: Customer
    result: Result | None = None


class Dispatcher:
    def __init__(
        self,
        database: Database,
        records: Records,
        renderer: Renderer,
        templates: Templates,
        connectors: Connectors,
        policy: Policy,
        config: MessagingConfig,
        email_default: bool,
        announcer: Announcer,
        clock: Callable[[], datetime],
    ):
        self.database = database
        self.records = records
        self.renderer = renderer
        self.templates = templates
        self.connectors = connectors
        self.policy = policy
        self.config = config
        self.email_default = email_default
        self.announcer = announcer
        self.clock = clock
        self._wake = threading.Event()
        self._rng = random.Random()

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event, idle: float = 1.0) -> None:
        """Dispatch until `stop` is set; sleeps up to `idle` seconds when nothing is due (or until woken)."""
        poll(self.run_once, stop, idle=idle, what="dispatching", wake=self._wake)

    def run_once(self, limit: int = BATCH) -> int:
        """Recover stuck messages, then claim and deliver one batch of due ones; how many were claimed."""
        now = self.clock()
        self.recover(now)
        with self.database.write() as connection:
            claimed = self.records.claim(connection, now, limit)
        if claimed:
            self._deliver(claimed, now)
        return len(claimed)

    # -- delivering --------------------------------------------------------------------------------

    def _deliver(self, claimed: list[MessageRecord], now: datetime) -> None:
        with self.database.read() as connection:
            customers = load_customers(connection, {record.profile_id for record in claimed})
            recent = {
                channel: self.records.sent_counts(
                    connection,
                    [r.profile_id for r in claimed if r.channel == channel],
                    channel,
                    now - window,
                    excluding=[r.id for r in claimed],
                )
                for channel in ("email", "sms")
                if (window := self.policy.cap_window(channel)) is not None
            }
        ready: list[_Ready] = []
        changes = Changes()
        for record in claimed:
            customer = customers.get(record.profile_id)
            if customer is None:
                gone = "the customer's profile is gone"
                changes.move(record.id, "suppressed", now, gone, error=gone)
                continue
            counts = recent.get(record.channel, {})
            reach = customer.reach(record.channel, self.email_default)
            decision = self.policy.decide(
                record.channel, self.templates.settings(record.template), reach, now,
                counts.get(record.profile_id, 0),
            )  # fmt: skip
            if decision.action == "suppress":
                changes.move(record.id, "suppressed", now, decision.reason, error=decision.reason)
            elif decision.action == "defer":
                changes.move(record.id, "queued", now, f"deferred: {decision.reason}", due_at=decision.due_at)
            else:
                counts[record.profile_id] = counts.get(record.profile_id, 0) + 1
                ready.append(_Ready(record, customer))
        if changes.updates:
            with self.database.write() as connection:
                self.records.write(connection, now, changes)
        if not ready:
            return
        jobs = [
            Job(item.record.id, item.record.template, item.customer.recipient,
                item.record.data.get("event") or {}, item.record.data.get("vars") or {})
            for item in ready
        ]  # fmt: skip
        for item, result in zip(ready, self.renderer.render_batch(jobs), strict=True):
            item.result = result
        rendered = self._record_rendered(ready, now)
        emails = [item for item in rendered if item.record.channel == "email"]
        texts = [item for item in rendered if item.record.channel == "sms"]
        outcomes: list[tuple[_Ready, Outcome]] = []
        if emails:
            sent = self.connectors.email.send_emails([self._email(item) for item in emails])
            outcomes += list(zip(emails, sent, strict=True))
        if texts:
            outcomes += self._send_texts(texts)
        self._record_outcomes(outcomes, self.clock())

    def _record_rendered(self, ready: list[_Ready], now: datetime) -> list[_Ready]:
        """Commit each message's content and links before any provider sees it; a template that fails
        fails its message (with the file and line)."""
        ok = []
        failed: list[tuple[_Ready, str]] = []
        changes = Changes()
        for item in ready:
            result = item.result
            assert result is not None
            if result.rendered is None:
                changes.move(item.record.id, "failed", now, str(result.error), error=str(result.error))
                failed.append((item, str(result.error)))
                continue
            reach = item.customer.reach(item.record.channel, self.email_default)
            rendered = result.rendered
            body = rendered.html if item.record.channel == "email" else rendered.text
            text = rendered.text if item.record.channel == "email" else None
            changes.set(
                item.record.id, subject=rendered.subject or None, body=body, text=text, links=result.links,
                address=reach.address,
            )  # fmt: skip
            item.record.address = reach.address
            ok.append(item)
        with self.database.write() as connection:
            self.records.write(connection, now, changes)
        if failed:
            self.announcer.track([self._failed_call(item, reason) for item, reason in failed])
        return ok

    def _email(self, item: _Ready) -> Email:
        result = item.result
        assert result is not None and result.rendered is not None and item.record.address is not None
        unsubscribe = self.renderer.signer.unsubscribe_url(item.record.id)
        mailto = self.config.shop.support_email
        header = (
            f"<{unsubscribe}>"
            if not mailto
            else f"<mailto:{mailto}?subject=unsubscribe%20{item.record.id}>, <{unsubscribe}>"
        )
        traits = item.customer.recipient.traits
        name = " ".join(str(traits[key]) for key in ("first_name", "last_name") if traits.get(key)) or None
        return Email(
            item.record.id,
            item.record.address,
            result.rendered.subject,
            result.rendered.html,
            result.rendered.text,
            to_name=name,
            headers={"List-Unsubscribe": header, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        )

    def _send_texts(self, texts: list[_Ready]) -> list[tuple[_Ready, Outcome]]:
        def send(item: _Ready) -> tuple[_Ready, Outcome]:
            result = item.result
            assert result is not None and result.rendered is not None and item.record.address is not None
            try:
                return item, self.connectors.sms.send_sms(
                    Sms(item.record.id, item.record.address, result.rendered.text)
                )
            except DeliveryError as exc:
                return item, exc

        if len(texts) == 1:
            return [send(texts[0])]
        with ThreadPoolExecutor(min(SMS_THREADS, len(texts)), thread_name_prefix="engage-sms") as pool:
            return list(pool.map(send, texts))

    def _record_outcomes(self, outcomes: Sequence[tuple[_Ready, Outcome]], now: datetime) -> None:
        calls: list[dict[str, Any]] = []
        changes = Changes()
        for item, outcome in outcomes:
            record = item.record
            if isinstance(outcome, Accepted):
                provider = (
                    self.connectors.email.name if record.channel == "email" else self.connectors.sms.name
                )
                changes.move(
                    record.id, "sent", now, outcome.provider_id, provider=provider,
                    provider_id=outcome.provider_id, sent_at=now, error=None,
                )  # fmt: skip
                calls.append(self._sent_call(item, provider))
                recipient = item.customer.recipient
                assert item.result is not None
                calls += [
                    exposure(answer, recipient.identity, record.channel, user_id=recipient.is_user_id)
                    for answer in item.result.exposures
                    if answer.items
                ]
            elif outcome.unknown:
                changes.move(record.id, "unknown", now, str(outcome), error=str(outcome))
            elif outcome.retryable and record.attempts < self.config.retries.attempts:
                wait = self._retry_delay(record.attempts, outcome.retry_after)
                detail = f"retry in {wait.total_seconds():.0f} s: {outcome}"
                changes.move(record.id, "queued", now, detail, due_at=now + wait, error=str(outcome))
            else:
                reason = (
                    str(outcome)
                    if not outcome.retryable
                    else f"gave up after {record.attempts} attempts: {outcome}"
                )
                changes.move(record.id, "failed", now, reason, error=reason)
                calls.append(self._failed_call(item, reason))
                if record.channel == "sms" and outcome.code == OPTED_OUT:
                    calls.append(self._opted_out_call(item))
        with self.database.write() as connection:
            self.records.write(connection, now, changes)
        if calls:
            self.announcer.track(calls)

    def _retry_delay(self, attempts: int, retry_after: float | None) -> timedelta:
        """Exponential backoff from `retries.first`, capped at `retries.longest`, with "equal jitter" (half
        fixed, half random) so that a provider back from an outage is not hit by every retry at once."""
        retries = self.config.retries
        ceiling = min(retries.longest, retries.first * 2 ** max(0, attempts - 1))
        wait = ceiling / 2 + ceiling * (self._rng.random() / 2)
        return max(wait, timedelta(seconds=retry_after or 0))

    # -- events ------------------------------------------------------------------------------------

    def _sent_call(self, item: _Ready, provider: str) -> dict[str, Any]:
        record = item.record
        properties = {"message_id": record.id, "template": record.template, "provider": provider}
        properties |= {
            key: record.data[key] for key in ("journey", "instance", "campaign", "step") if key in record.data
        }
        return self.announcer.call(
            item.customer.recipient, "MessageSent", record.channel, properties, f"sent-{record.id}"
        )

    def _failed_call(self, item: _Ready, reason: str) -> dict[str, Any]:
        record = item.record
        properties = {"message_id": record.id, "template": record.template, "reason": reason}
        return self.announcer.call(
            item.customer.recipient, "MessageFailed", record.channel, properties, f"failed-{record.id}"
        )

    def _opted_out_call(self, item: _Ready) -> dict[str, Any]:
        properties = {"message_id": item.record.id, "reason": "the number opted out at Twilio (21610)"}
        call = self.announcer.call(
            item.customer.recipient, "SmsOptedOut", "sms", properties, f"optout-{item.record.id}"
        )
        call["context"]["consent"] = {"source": "twilio:21610"}
        return call

    # -- the window ----------------------------------------------------------------------------------

    def recover(self, now: datetime) -> None:
        """Settle messages left `sending` past `LEASE` or `unknown` (see the module's docstring)."""
        with self.database.read() as connection:
            stuck = self.records.stuck(connection, now - LEASE)
        for record in stuck:
            try:
                found = self._find(record, now)
            except DeliveryError as exc:
                log.warning("message %s: cannot ask the provider yet: %s", record.id, exc)
                continue
            changes = Changes()
            if isinstance(found, str):
                detail = f"found at the provider: {found}"
                changes.move(record.id, "sent", now, detail, provider_id=found, sent_at=now)
            elif found is False:
                if record.status == "sending":
                    detail = "no answer recorded; waiting for the provider's webhook"
                    changes.move(record.id, "unknown", now, detail)
            else:
                changes.move(record.id, "queued", now, "not at the provider: sending again", due_at=now)
            with self.database.write() as connection:
                self.records.write(connection, now, changes)

    def _find(self, record: MessageRecord, now: datetime) -> str | bool | None:
        """The provider's id when it has the message; None when it does not; False to keep waiting."""
        if record.address is None or record.body is None:  # never left engage
            return None
        age = (now - record.created_at).total_seconds()
        if record.channel == "sms":
            return self.connectors.sms.find(Sms(record.id, record.address, record.body), age)
        connector = self.connectors.email
        if isinstance(connector, OutboxConnector):
            return connector.find_email(record.id)
        if record.status == "unknown" and record.updated_at < now - UNKNOWN_GRACE:
            return None
        return False
