"""Rasa at work for engage: its environment, the bot's model and evaluation, and its processes.

Rasa 3.6 runs from its own Python 3.10 environment (`.venv-rasa`); engage talks to it only through its
command line, its HTTP API and channels, its action server protocol and its event broker.
"""

from engage.chat.rasa.environment import RASA_VERSION, RasaEnvironment, rasa_environment, setup_environment
from engage.chat.rasa.evaluation import Scores, evaluate_bot, read_scores
from engage.chat.rasa.processes import ActionServerProcess, RasaServer, ServiceProcess
from engage.chat.rasa.runner import BotRunner, bot_runner
from engage.chat.rasa.training import Trained, bot_hash, current_model, ensure_model, write_lookup

__all__ = [
    "RASA_VERSION",
    "RasaEnvironment",
    "rasa_environment",
    "setup_environment",
    "Trained",
    "bot_hash",
    "current_model",
    "ensure_model",
    "write_lookup",
    "Scores",
    "evaluate_bot",
    "read_scores",
    "ServiceProcess",
    "RasaServer",
    "ActionServerProcess",
    "BotRunner",
    "bot_runner",
]
