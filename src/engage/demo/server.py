"""Running `engage run` inside this process, on a free loopback port, for the demo and tests."""

from __future__ import annotations

import threading
import time

import uvicorn

from engage.bootstrap import Engage
from engage.web import create_app

__all__ = ["LocalServer"]


class LocalServer:
    """The HTTP API and a stream worker in background threads; `url` is where the API listens.
    `worker=False` serves the API only, for a caller that runs the consumers and the tick itself."""

    def __init__(self, engage: Engage, host: str = "127.0.0.1", port: int = 0, *, worker: bool = True):
        self.engage = engage
        config = uvicorn.Config(
            create_app(engage), host=host, port=port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._server.run, name="api", daemon=True)]
        if worker:
            self._threads.append(
                threading.Thread(target=engage.work, args=(self._stop,), name="worker", daemon=True)
            )
        self.url = ""

    def __enter__(self) -> LocalServer:
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._threads[0].is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._stop.set()
        self.engage.stream.notify()
        for thread in self._threads:
            thread.join(timeout=10)
