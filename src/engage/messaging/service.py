"""Messaging, the stage between journeys and providers: `send` records a message (policies checked, its
send key recorded once), the dispatcher renders and delivers it, and `feedback` turns what comes back
into events.

    messaging.send("email/abandoned_cart", "u42", event=trigger, key="journey:cart:c-19:step-2")
    messaging.send_many("email/weekly_picks", audience, key=lambda user: f"campaign:weekly:2026-49:{user}")
    messaging.dispatch()            # what is due now (the worker runs it continuously)
    messaging.preview("sms/abandoned_cart", "u42")    # rendered, not recorded nor logged
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from engage.connectors import Connectors, build_connectors
from engage.errors import EngageError
from engage.events.ingest import Ingestor
from engage.events.log import LoggedEvent
from engage.messaging.announce import Announcer
from engage.messaging.config import load_messaging_config, load_template_settings
from engage.messaging.context import Recipient
from engage.messaging.customers import Customer, load_customers, profiles_of
from engage.messaging.dispatcher import Dispatcher
from engage.messaging.feedback import Feedback
from engage.messaging.links import LinkSigner
from engage.messaging.policy import Policy
from engage.messaging.records import MessageRecord, Records
from engage.messaging.render import Job, Renderer, Result
from engage.messaging.templates import Templates
from engage.recommend.runtime import Recommend
from engage.store import Database
from engage.workspace import Workspace

__all__ = ["Messaging", "UnknownCustomer", "Request", "Planned"]


class UnknownCustomer(EngageError):
    """A message for a user id or anonymous id that no profile has."""


@dataclass(frozen=True)
class Request:
    """One message asked for: `template` for a profile, recorded once under its send `key`."""

    template: str
    profile_id: str
    key: str
    event: Mapping[str, Any] | None = None
    """What triggered it (the template's `event`)."""
    data: Mapping[str, Any] | None = None
    """The journey, campaign or step it belongs to, and `vars`: more variables for the template."""
    not_before: datetime | None = None
    """Not to be sent before then (a campaign's local time, a rate limit's place in line)."""
    fallback: str | None = None
    """The template to send instead when consent or an address rule `template` out."""


@dataclass
class Planned:
    records: list[MessageRecord]
    """One for each request, in order."""
    reasons: dict[str, str]
    """Why a message waits or was suppressed, by its id."""


class Messaging:
    def __init__(
        self,
        workspace: Workspace,
        database: Database,
        ingestor: Ingestor,
        recommend: Recommend,
        clock: Callable[[], datetime],
        connectors: Connectors | None = None,
    ):
        self.workspace = workspace
        self.database = database
        self.clock = clock
        self.config = load_messaging_config(workspace.root)
        self.templates = Templates(workspace.root, load_template_settings(workspace.root))
        self.signer = LinkSigner(workspace.secret_key(), workspace.endpoints.public_url)
        self.policy = Policy(self.config)
        self.records = Records(database.is_sqlite)
        self.email_default = workspace.endpoints.profiles.email_consent_default
        self.announcer = Announcer(ingestor)
        self.renderer = Renderer(
            self.templates, recommend.recommender, recommend.catalog, self.signer, self.config.shop, database
        )
        self._connectors = connectors
        self._dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()
        self.feedback = Feedback(
            database, self.records, self.signer, self.announcer, self.config, self.templates, clock,
            reply_with=self._reply,
        )  # fmt: skip

    @property
    def connectors(self) -> Connectors:
        """The channels' connectors, built on first use (a process that never sends needs no secrets)."""
        with self._lock:
            if self._connectors is None:
                sender = self.config.shop.support_email or "shop@example.com"
                self._connectors = build_connectors(self.workspace, sender)
            return self._connectors

    @property
    def dispatcher(self) -> Dispatcher:
        connectors = self.connectors
        with self._lock:
            if self._dispatcher is None:
                self._dispatcher = Dispatcher(
                    self.database, self.records, self.renderer, self.templates, connectors, self.policy,
                    self.config, self.email_default, self.announcer, self.clock,
                )  # fmt: skip
            return self._dispatcher

    # -- sending -----------------------------------------------------------------------------------

    def send(
        self,
        template: str,
        user: str,
        *,
        event: LoggedEvent | Mapping[str, Any] | None = None,
        key: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> MessageRecord:
        """Record a message of `template` for `user` (a user id or anonymous id), to be sent as soon as the
        policies allow. With the `key` of a message already recorded, that message is returned and nothing
        new is recorded. `event` is what triggered it (the template's `event`); `data` holds the journey,
        campaign or step it belongs to and `vars`, more variables for the template."""
        (record,) = self.send_many(
            template, [user], event=event, key=(lambda _: key) if key else None, data=data
        )
        return record

    def send_many(
        self,
        template: str,
        users: Sequence[str],
        *,
        event: LoggedEvent | Mapping[str, Any] | None = None,
        key: Callable[[str], str | None] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> list[MessageRecord]:
        """`send` for each of `users`, recorded in one transaction; `key(user)` gives each send key (default:
        the template, the customer and the triggering event, or a new key when there is no event)."""
        self.templates.require(template)
        trigger = _event_data(event)
        with self.database.read() as connection:
            profiles = profiles_of(connection, users)
            missing = [user for user in users if user not in profiles]
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise UnknownCustomer(f"no customer with the id {missing[0]!r}{more}")
            requests = [
                Request(
                    template,
                    profiles[user],
                    (key(user) if key else None) or _default_key(template, profiles[user], trigger),
                    trigger,
                    data,
                )  # fmt: skip
                for user in users
            ]
            planned = self.plan(connection, requests)
        with self.database.write() as connection:
            stored = self.store(connection, planned)
        self.wake()
        return [stored[record.send_key] for record in planned.records]

    def plan(self, connection: Connection, requests: Sequence[Request]) -> Planned:
        """The messages `requests` ask for, each decided by the policies (at its `not_before`, or now), read
        on `connection`; nothing is stored (`store` does, maybe in a transaction of the caller's)."""
        now = self.clock()
        for request in requests:
            self.templates.require(request.template)
            if request.fallback:
                self.templates.require(request.fallback)
        customers = load_customers(connection, {request.profile_id for request in requests})
        recent: dict[str, dict[str, int]] = {}
        for channel in ("email", "sms"):
            window = self.policy.cap_window(channel)
            if window is not None and any(_channel(r.template) == channel for r in requests):
                recent[channel] = self.records.sent_counts(connection, list(customers), channel, now - window)
        planned = Planned([], {})
        for request in requests:
            customer = customers.get(request.profile_id)
            template = request.template
            if customer is not None and request.fallback and not self.reachable(customer, template):
                template = request.fallback  # suppressed in turn, with its reason, if unreachable too
            channel = _channel(template)
            settings = self.templates.settings(template)
            at = max(now, request.not_before) if request.not_before else now
            record = _record(
                template, request.profile_id, request.key, settings.transactional, at, request.data,
                request.event or {},
            )  # fmt: skip
            record.created_at = record.updated_at = now
            if customer is None:
                record.status, record.error = "suppressed", "the customer has no profile yet"
            else:
                counts = recent.get(channel, {})
                reach = customer.reach(channel, self.email_default)
                decision = self.policy.decide(channel, settings, reach, at, counts.get(request.profile_id, 0))
                record.address, record.due_at = reach.address, decision.due_at
                if decision.action == "suppress":
                    record.status, record.error = "suppressed", decision.reason
                elif not settings.transactional:
                    counts[request.profile_id] = counts.get(request.profile_id, 0) + 1
                if decision.reason:
                    planned.reasons[record.id] = decision.reason
            planned.records.append(record)
        return planned

    def store(self, connection: Connection, planned: Planned) -> dict[str, MessageRecord]:
        """Record what `plan` decided, in the caller's transaction; the stored message of each send key,
        which is the one already there when the key was recorded before. Call `wake` once committed."""
        if not planned.records:
            return {}
        stored = self.records.insert(connection, planned.records)
        fresh = [record for record in planned.records if stored[record.send_key].id == record.id]
        self.records.history(
            connection, [(r.id, r.status, r.created_at, planned.reasons.get(r.id)) for r in fresh]
        )
        return stored

    def customers(self, connection: Connection, profile_ids: Sequence[str]) -> dict[str, Customer]:
        """These profiles as customers to message (their identity, traits and consents)."""
        return load_customers(connection, profile_ids)

    def wake(self) -> None:
        """Tell this process's dispatcher that messages were recorded (it polls anyway)."""
        if self._dispatcher is not None:
            self._dispatcher.wake()

    def reachable(self, customer: Customer, template: str) -> bool:
        """Whether consent and an address let `template` reach `customer` at all."""
        reach = customer.reach(_channel(template), self.email_default)
        return self.policy.unreachable(_channel(template), self.templates.settings(template), reach) is None

    def dispatch(self, rounds: int = 100) -> int:
        """Deliver what is due now, batch after batch, until nothing is; how many messages were handled."""
        handled = 0
        for _ in range(rounds):
            done = self.dispatcher.run_once()
            handled += done
            if not done:
                break
        return handled

    def run(self, stop: threading.Event) -> None:
        """Dispatch until `stop` is set (in the worker)."""
        self.dispatcher.run(stop)

    def preview(
        self,
        template: str,
        user: str,
        *,
        event: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Result:
        """What `user` would get from `template` now: rendered, not recorded, nothing logged (its links
        resolve to nothing)."""
        with self.database.read() as connection:
            profiles = profiles_of(connection, [user])
            if user not in profiles:
                raise UnknownCustomer(f"no customer with the id {user!r}")
            customer = load_customers(connection, [profiles[user]]).get(profiles[user])
        recipient = customer.recipient if customer else Recipient(profiles[user], user, True, {})
        return self.renderer.render(Job(uuid.uuid4().hex, template, recipient, event or {}, data or {}))

    def get(self, message_id: str) -> MessageRecord | None:
        with self.database.read() as connection:
            return self.records.get(connection, [message_id]).get(message_id)

    def history(self, message_id: str) -> list[tuple[str, datetime, str | None]]:
        with self.database.read() as connection:
            return self.records.statuses(connection, message_id)

    def _reply(self, phone: str, recipient: Recipient) -> str:
        """The opt-in confirmation (`sms/optin_confirmation`), rendered and recorded as sent: it is the
        answer to the customer's own message, so it goes back at once, and its links resolve like any
        message's."""
        template = "sms/optin_confirmation"
        if not self.templates.exists(template) or not recipient.profile_id:
            return self.config.sms.start_reply
        now = self.clock()
        key = f"reply:{template}:{recipient.profile_id}:{now.isoformat()}"
        record = _record(template, recipient.profile_id, key, True, now, None, {})
        result = self.renderer.render(Job(record.id, template, recipient))
        if result.rendered is None:
            return self.config.sms.start_reply
        record.status, record.body, record.links, record.address = (
            "sent",
            result.rendered.text,
            result.links,
            phone,
        )
        record.provider, record.sent_at = "reply", now
        with self.database.write() as connection:
            self.records.insert(connection, [record])
            self.records.history(connection, [(record.id, "sent", now, "as the reply to the customer's SMS")])
        return result.rendered.text


def _record(
    template: str,
    profile_id: str,
    send_key: str,
    transactional: bool,
    now: datetime,
    data: Mapping[str, Any] | None,
    trigger: Mapping[str, Any],
) -> MessageRecord:
    return MessageRecord(
        id=uuid.uuid4().hex, send_key=send_key, profile_id=profile_id, channel=template.partition("/")[0],
        template=template, transactional=transactional, status="queued", due_at=now, attempts=0, address=None,
        provider=None, provider_id=None, subject=None, body=None, text=None, links=[],
        data={**(data or {}), **({"event": dict(trigger)} if trigger else {})}, error=None, created_at=now,
        updated_at=now, sent_at=None,
    )  # fmt: skip


def _channel(template: str) -> str:
    return template.partition("/")[0]


def _event_data(event: LoggedEvent | Mapping[str, Any] | None) -> dict[str, Any]:
    if event is None:
        return {}
    if isinstance(event, LoggedEvent):
        return {
            "name": event.event,
            "message_id": event.message_id,
            "properties": event.properties,
            "timestamp": event.timestamp.isoformat(),
            "channel": event.channel,
        }
    return dict(event)


def _default_key(template: str, profile_id: str, trigger: Mapping[str, Any]) -> str:
    if trigger.get("message_id"):
        return f"{template}:{profile_id}:{trigger['message_id']}"
    return f"{template}:{profile_id}:{uuid.uuid4().hex}"
