"""Rasa's tracker events read back from its event broker: whose turns they are.

Rasa publishes a turn's events one by one, so a reader polling the broker may take the customer's message
in one batch and the bot's answer in the next; the answer still belongs to the customer the message named.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MakeWorkspace
from tests.helpers import Clock
from tests.journeys.conftest import MONDAY_NOON_IN_NEW_YORK, Shop, customer, open_shop


@pytest.fixture
def shop(make_workspace: MakeWorkspace, tmp_path: Path) -> Iterator[Shop]:
    opened = open_shop(make_workspace, f"sqlite:///{tmp_path / 'engage.db'}", Clock(MONDAY_NOON_IN_NEW_YORK))
    yield opened
    opened.engage.close()


def test_a_bot_answer_read_after_its_question_belongs_to_the_same_customer(shop: Shop) -> None:
    shop.send(customer("cy"))
    at = MONDAY_NOON_IN_NEW_YORK.timestamp()
    intent = {"name": "recommend", "confidence": 0.9}
    said = {"event": "user", "text": "ideas for the kitchen?", "message_id": "m1", "timestamp": at,
            "metadata": {"user_id": "cy"}, "parse_data": {"intent": intent}}  # fmt: skip
    cards = {"attachment": {"payload": {"elements": [{"title": "Cast Iron Pan"}]}}}
    answered = {"event": "bot", "text": "Here you go", "timestamp": at + 1, "data": cards}

    shop.engage.chat.events.ingest([("1", "web-session-1", said)])
    shop.engage.chat.events.ingest([("2", "web-session-1", answered)])  # the next poll
    shop.run()

    (question,) = shop.events("ChatMessage")
    (answer,) = shop.events("ChatReplied")
    assert question.user_id == "cy"
    assert (answer.profile_id, answer.user_id) == (question.profile_id, "cy")
    assert answer.properties["cards"] == ["Cast Iron Pan"]
