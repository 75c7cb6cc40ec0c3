"""Running the HTTP API and the stream worker (and, with `engage run`, the chatbot) until SIGTERM or Ctrl-C,
then stopping cleanly."""

from __future__ import annotations

import gc
import logging
import signal
import threading

import uvicorn
from threadpoolctl import threadpool_limits

from engage.bootstrap import Engage
from engage.chat.rasa.runner import BotRunner
from engage.web import create_app

__all__ = ["stop_on_signals", "serve_until_stopped", "tune_process"]

log = logging.getLogger("engage")


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`. Installed before uvicorn, which hands captured signals back here."""

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def tune_process() -> None:
    """Settings of a serving process. Ingestion allocates many short-lived dicts; with the default
    threshold (700) the cyclic collector runs every few events and rescans every long-lived object imported
    at start-up. Freeze those and collect young objects less often: measured 15-25% more events/s
    (bench/ingest.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    # One BLAS thread: scoring one shopper is a small matrix product, and a second BLAS thread competing
    # with the request threads for two cores took numpy scoring's p99 from 0.2 ms to 12-34 ms.
    threadpool_limits(1, "blas")


def serve_until_stopped(
    engage: Engage, host: str, port: int, *, with_worker: bool, bot: BotRunner | None = None
) -> None:
    """Serve until stopped; `bot` (the action server and Rasa) starts in the background and stops first."""
    stop = threading.Event()
    stop_on_signals(stop)
    tune_process()
    if bot is not None:
        bot.start()
    worker = None
    if with_worker:
        worker = threading.Thread(target=engage.work, args=(stop,), name="worker")
        worker.start()
    log.info(
        "engage listening on http://%s:%d (stream %s%s)",
        host,
        port,
        engage.stream.name,
        ", worker in this process" if with_worker else "",
    )
    try:
        uvicorn.run(create_app(engage), host=host, port=port, log_level="warning", access_log=False)
    finally:
        if bot is not None:
            bot.stop()
        stop.set()
        engage.stream.notify()
        if worker is not None:
            worker.join(timeout=30)
        engage.close()
