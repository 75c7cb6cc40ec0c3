"""Rasa's event broker, read back into engage: each user turn becomes a `ChatMessage` event (with its intent,
confidence and entities) and each bot turn a `ChatReplied`, on channel `chat` (the website) or `sms`, of the
customer the conversation belongs to (`ChatShop.shopper`).

Rasa publishes every tracker event to the broker `endpoints.yml` names: its SQL broker (a table `events`
of `id`, `sender_id` and the event as JSON; the embedded default keeps it in `var/rasa-events.db`), which
engage polls, remembering the last id it read in `chat_offsets`; or its `pika` broker on RabbitMQ
(production), whose queue engage consumes. Either way delivery is at least once: each event's messageId is
derived from Rasa's own ids, so one read twice is logged once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import URL

from engage.chat.shop import ChatShop
from engage.events.ingest import Ingestor
from engage.polling import poll
from engage.store.database import Database, utcnow

__all__ = ["RasaEvents", "SqlBrokerReader", "PikaBrokerReader", "broker_reader", "tracker_calls"]

log = logging.getLogger(__name__)
BATCH = 500
REMEMBERED_CONVERSATIONS = 10_000
_TURNS = {"user": "ChatMessage", "bot": "ChatReplied"}


BrokerEvent = tuple[str, str, Mapping[str, Any]]
"""An event as a broker gave it: an id unique in that broker, the conversation's sender id, the event."""


def tracker_calls(
    shop: ChatShop,
    events: Iterable[BrokerEvent],
    metadata_of: MutableMapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Segment track calls for the user and bot turns among Rasa tracker events (id, sender, event).
    `metadata_of` holds each conversation's last user-turn metadata, kept by the caller between batches: a
    bot turn read in the batch after its user turn still belongs to that customer."""
    calls: list[dict[str, Any]] = []
    metadata_of = {} if metadata_of is None else metadata_of
    for event_id, sender, event in events:
        kind = event.get("event")
        if kind not in _TURNS:
            continue
        metadata = event.get("metadata") or {}
        if kind == "user":
            metadata_of[sender] = metadata
        else:  # a bot turn's metadata is the utterance's; who it is for is the user turn's
            metadata = metadata_of.get(sender) or metadata
        shopper = shop.shopper(sender, metadata)
        properties: dict[str, Any] = {"text": event.get("text") or "", "conversation_id": sender}
        if kind == "user":
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            properties |= {
                "intent": intent.get("name"),
                "confidence": intent.get("confidence"),
                "entities": [
                    {"entity": found.get("entity"), "value": found.get("value")}
                    for found in parse.get("entities") or []
                ],
                "input_channel": event.get("input_channel"),
            }
        else:
            data = event.get("data") or {}
            if data.get("attachment"):
                elements = (data["attachment"].get("payload") or {}).get("elements") or []
                properties["cards"] = [element.get("title") for element in elements]
        call = shop.announcer.call(
            shopper.recipient, _TURNS[kind], shopper.channel, properties, _message_id(event_id, event)
        )
        timestamp = event.get("timestamp")
        if isinstance(timestamp, int | float):
            call["timestamp"] = datetime.fromtimestamp(timestamp, UTC).isoformat()
        calls.append(call)
    return calls


def _message_id(event_id: str, event: Mapping[str, Any]) -> str:
    if event.get("event") == "user" and event.get("message_id"):
        return f"rasa-{event['message_id']}"
    return f"rasa-{event_id}"


class RasaEvents:
    """Feeds what a broker reader yields into ingestion."""

    def __init__(self, shop: ChatShop, ingestor: Ingestor):
        self.shop = shop
        self.ingestor = ingestor
        self._metadata: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
        """The latest conversations' user-turn metadata (Rasa may publish a turn's events across polls)."""

    def ingest(self, events: list[BrokerEvent]) -> int:
        calls = tracker_calls(self.shop, events, self._metadata)
        for sender in {sender for _, sender, _ in events} & self._metadata.keys():
            self._metadata.move_to_end(sender)
        while len(self._metadata) > REMEMBERED_CONVERSATIONS:
            self._metadata.popitem(last=False)
        if calls:
            result = self.ingestor.batch({"batch": calls}, size=0)
            for rejected in result.rejected:
                log.warning("a chat turn was rejected: %s", rejected.as_dict())
        return len(calls)


class SqlBrokerReader:
    """Polls the `events` table of Rasa's SQL event broker."""

    def __init__(self, broker: Engine, database: Database, events: RasaEvents, idle: float = 0.5):
        self.broker = broker
        self.database = database
        self.events = events
        self.idle = idle
        self.source = f"sql:{broker.url.render_as_string(hide_password=True)}"

    def read_once(self) -> int:
        """Ingest the next batch of broker events; how many rows were read."""
        if not inspect(self.broker).has_table("events"):
            return 0  # Rasa has not started yet: it creates the table
        with self.database.read() as connection:
            position = connection.execute(
                text("SELECT position FROM chat_offsets WHERE source = :source"), {"source": self.source}
            ).scalar_one_or_none()
        with self.broker.connect() as connection:
            rows = connection.execute(
                text("SELECT id, sender_id, data FROM events WHERE id > :position ORDER BY id LIMIT :limit"),
                {"position": position or 0, "limit": BATCH},
            ).all()
        if not rows:
            return 0
        self.events.ingest([(str(row.id), row.sender_id, json.loads(row.data)) for row in rows])
        with self.database.write() as connection:
            moved = connection.execute(
                text(
                    "UPDATE chat_offsets SET position = :position, updated_at = :now WHERE source = :source"
                ),
                {"position": rows[-1].id, "now": utcnow(), "source": self.source},
            ).rowcount
            if not moved:
                connection.execute(
                    text(
                        "INSERT INTO chat_offsets (source, position, updated_at) "
                        "VALUES (:source, :position, :now)"
                    ),
                    {"position": rows[-1].id, "now": utcnow(), "source": self.source},
                )
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        poll(self.read_once, stop, idle=self.idle, what="reading Rasa's event broker")

    def close(self) -> None:
        self.broker.dispose()


class PikaBrokerReader:
    """Consumes the queue Rasa's `pika` event broker publishes to (RabbitMQ)."""

    def __init__(self, url: str, queue: str, events: RasaEvents):
        self.url = url
        self.queue = queue
        self.events = events

    def run(self, stop: threading.Event) -> None:
        import pika

        while not stop.is_set():
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.url))
            except Exception:
                log.warning("cannot reach RabbitMQ for Rasa's events; trying again")
                stop.wait(2.0)
                continue
            try:
                channel = connection.channel()
                channel.queue_declare(self.queue, durable=True)
                while not stop.is_set():
                    batch = []
                    for _ in range(BATCH):
                        method, _properties, body = channel.basic_get(self.queue)
                        if method is None:
                            break
                        batch.append((method.delivery_tag, json.loads(body)))
                    if batch:
                        self.events.ingest(
                            [(f"{event.get('sender_id')}-{event.get('timestamp')}-{event.get('event')}",
                              str(event.get("sender_id")), event) for _, event in batch]
                        )  # fmt: skip
                        channel.basic_ack(batch[-1][0], multiple=True)
                    else:
                        connection.sleep(0.5)
            except Exception:
                log.exception("consuming Rasa's events from RabbitMQ failed; trying again")
            finally:
                if connection.is_open:
                    connection.close()

    def close(self) -> None:
        pass


def broker_reader(
    config: Mapping[str, Any] | None, root: Path, database: Database, events: RasaEvents
) -> SqlBrokerReader | PikaBrokerReader | None:
    """The reader for the event broker `endpoints.yml` gives Rasa; None when it names none engage reads."""
    if not config:
        return None
    kind = str(config.get("type", "")).lower()
    if kind == "sql":
        return SqlBrokerReader(create_engine(_sql_url(config, root)), database, events)
    if kind == "pika":
        host = config.get("url", "127.0.0.1")
        url = URL.create(
            "amqp",
            config.get("username", "guest"),
            config.get("password", "guest"),
            host,
            config.get("port", 5672),
        ).render_as_string(hide_password=False)
        queues = config.get("queues") or [config.get("queue", "rasa_core_events")]
        return PikaBrokerReader(url + "/%2F", str(queues[0]), events)
    log.warning("engage does not read Rasa's %r event broker: chat turns will not become events", kind)
    return None


def _sql_url(config: Mapping[str, Any], root: Path) -> URL:
    dialect = str(config.get("dialect", "sqlite"))
    if dialect == "sqlite":
        path = Path(str(config.get("db", "rasa.db")))
        return URL.create("sqlite", database=str(path if path.is_absolute() else root / path))
    driver = "postgresql+psycopg" if dialect.startswith("postgres") else dialect
    return URL.create(
        driver,
        config.get("username"),
        config.get("password"),
        config.get("url"),
        config.get("port"),
        config.get("db"),
    )
