"""The chat stage of the loop, as the rest of engage sees it: the shop the bot's actions use, the SMS relay
to Rasa, and the reader that turns Rasa's broker events into engage events."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from engage.chat.rasa_events import PikaBrokerReader, RasaEvents, SqlBrokerReader, broker_reader
from engage.chat.shop import ChatShop
from engage.chat.sms_relay import ChatInboxConsumer, SmsRelay
from engage.events.ingest import Ingestor
from engage.messaging.service import Messaging
from engage.recommend.runtime import Recommend
from engage.store.database import Database
from engage.workspace import Workspace

__all__ = ["Chat"]


class Chat:
    def __init__(
        self,
        workspace: Workspace,
        database: Database,
        ingestor: Ingestor,
        recommend: Recommend,
        messaging: Messaging,
        clock: Callable[[], datetime],
    ):
        self.shop = ChatShop(
            database, recommend.catalog, recommend.recommender, messaging.announcer, messaging.signer,
            messaging.config.shop, clock,
        )  # fmt: skip
        self.relay = SmsRelay(database, messaging, workspace.endpoints.rasa.url, clock)
        self.consumer = ChatInboxConsumer(self.relay.wake)
        self.events = RasaEvents(self.shop, ingestor)
        self._workspace = workspace
        self._database = database
        self._reader: SqlBrokerReader | PikaBrokerReader | None = None

    @property
    def reader(self) -> SqlBrokerReader | PikaBrokerReader | None:
        """What reads Rasa's event broker back (made when first asked: a worker's job)."""
        if self._reader is None:
            self._reader = broker_reader(
                self._workspace.endpoints.event_broker, self._workspace.root, self._database, self.events
            )
        return self._reader

    def click(self, token: str) -> str:
        return self.shop.click(token)

    def threads(self, stop: threading.Event) -> list[threading.Thread]:
        """A worker's chat jobs: relaying texts to the bot, reading the bot's turns back."""
        threads = [threading.Thread(target=self.relay.run, args=(stop,), name="chat-sms-relay")]
        if self.reader is not None:
            threads.append(threading.Thread(target=self.reader.run, args=(stop,), name="chat-rasa-events"))
        return threads

    def close(self) -> None:
        self.relay.close()
        if self._reader is not None:
            self._reader.close()
