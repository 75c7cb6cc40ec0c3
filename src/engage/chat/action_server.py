"""The bot's action server: rasa-sdk's own HTTP app (the protocol Rasa speaks to any action server), with
engage's actions registered on it, bound to this process's engage. `engage bot actions` runs it."""

from __future__ import annotations

import logging

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor

from engage.bootstrap import Engage
from engage.chat.actions import engage_actions

__all__ = ["serve", "executor"]

log = logging.getLogger(__name__)


def executor(engage: Engage) -> ActionExecutor:
    """An executor holding every engage action, bound to `engage`."""
    actions = ActionExecutor()
    for action in engage_actions(engage.chat.shop):
        actions.register_action(action)
    return actions


def serve(engage: Engage, host: str = "127.0.0.1", port: int = 5055) -> None:
    """Serve the actions on `host:port` until SIGINT or SIGTERM."""
    app = create_app(executor(engage), cors_origins=None)
    log.info("action server on http://%s:%d/webhook", host, port)
    app.run(host=host, port=port, single_process=True, access_log=False, motd=False)
