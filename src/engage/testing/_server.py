"""The loopback HTTP server both fakes are built on: its thread, its faults and its `/_fake/` control API.

A fake is a `ThreadingHTTPServer` subclass rather than a handler class so that recorded state, faults and
the lock guarding them live on one object a test can hold (`fake.attempts`, `fake.fail_next(...)`), while
the handler stays a thin adapter from `http.server` to `FakeProvider.dispatch`. A provider's fake only
implements the four hooks listed on `FakeProvider`; `Request`, `Response` and `json_response` are what
those hooks speak, and `CONTROL_PREFIX` is shared with `FakeControl`, the HTTP client of the control API.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Self, cast

__all__ = ["CONTROL_PREFIX", "Json", "Request", "Response", "json_response", "FakeProvider"]

CONTROL_PREFIX = "/_fake/"
Json = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One request as a fake's `_api` sees it: read off the socket whole, the query already parsed."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body.decode("utf-8"), keep_blank_values=True)


@dataclass(frozen=True)
class Response:
    """A fake's answer; the handler adds Content-Length, so keep-alive connections stay usable."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer; datetimes and dataclasses (the recorded deliveries and messages) serialize too."""
    body = json.dumps(payload, default=_json_default).encode("utf-8")
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass
class _Faults:
    fail_count: int = 0
    fail_status: int = 500
    hang_count: int = 0
    hang_seconds: float = 0.0
    down: bool = False


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, lets the server answer it, writes the answer with a Content-Length.

    HTTP/1.1 keeps connections open, as the providers do, so requests' Session reuses them; every answer
    therefore carries Content-Length, and TCP_NODELAY avoids the Nagle/delayed-ACK stall that otherwise
    adds ~40 ms to each reused connection's response.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "engage-fake"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self._fake.connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._fake.connection_closed(self.connection)

    @property
    def _fake(self) -> FakeProvider:
        return cast(FakeProvider, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        request = Request(
            self.command,
            url.path,
            urllib.parse.parse_qs(url.query, keep_blank_values=True),
            self.headers,
            body,
        )
        try:
            response = self._fake.dispatch(request)
        except Exception:
            traceback.print_exc()
            response = Response(500, f"fake server error:\n{traceback.format_exc()}".encode())
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class FakeProvider(ThreadingHTTPServer):
    """What both fakes share: the loopback server, its thread, faults, and the `/_fake/` control API.

    A subclass implements `_api` (answer one provider API request), `_error` (the provider's error JSON),
    `_state` (recorded data as JSON-ready values) and `_clear`. Faults apply to API requests only, before
    authentication, the way a load balancer in front of the provider would answer.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int = 0):
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._attempts = 0
        self._connections: set[socket.socket] = set()
        self._connections_opened = 0
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a machine without DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    @property
    def url(self) -> str:
        """The base URL to give the client library, e.g. "http://127.0.0.1:50123"."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        """Serve in a daemon thread until `stop()`."""
        # A short poll interval makes stop() take milliseconds rather than the default half second.
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.02,), name=type(self).__name__, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wake requests that hang, drop kept-alive connections, and close the socket."""
        self._closing.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            self._connections_opened += 1

    def connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    @property
    def attempts(self) -> int:
        """API requests received, whatever the answer: faulted, rejected and accepted ones alike."""
        with self._lock:
            return self._attempts

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far; lets a test see that a client reuses its connections."""
        with self._lock:
            return self._connections_opened

    def fail_next(self, count: int, status: int) -> None:
        """Answer the next `count` API requests with `status` (429 carries `Retry-After: 1`)."""
        if not 400 <= status <= 599 or status not in {s.value for s in HTTPStatus}:
            raise ValueError(f"a failure status must be a known 4xx or 5xx status, not {status}")
        with self._lock:
            self._faults.fail_count, self._faults.fail_status = count, status

    def hang_next(self, count: int, seconds: float) -> None:
        """Wait `seconds` before answering the next `count` API requests, which then succeed normally.

        A client that times out meanwhile cannot know the request was accepted: that ambiguity is the
        point, since a retry then sends the message twice unless the caller deduplicates.
        """
        with self._lock:
            self._faults.hang_count, self._faults.hang_seconds = count, seconds

    def down(self, is_down: bool = True) -> None:
        """While down, answer every API request 503."""
        with self._lock:
            self._faults.down = is_down

    def reset(self) -> None:
        """Forget recorded requests, attempts, the connection count and faults."""
        with self._lock:
            self._faults = _Faults()
            self._attempts = self._connections_opened = 0
            self._clear()

    def snapshot(self) -> Json:
        """Everything recorded, as JSON-ready values; what `GET /_fake/requests` answers."""
        with self._lock:
            state = {"attempts": self._attempts, "connections_opened": self._connections_opened}
            return json.loads(json.dumps({**state, **self._state()}, default=_json_default))

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        with self._lock:
            self._attempts += 1
            faults = self._faults
            if faults.down:
                fail_status: int | None = 503
            elif faults.fail_count > 0:
                faults.fail_count -= 1
                fail_status = faults.fail_status
            else:
                fail_status = None
            hang = 0.0
            if fail_status is None and faults.hang_count > 0:
                faults.hang_count -= 1
                hang = faults.hang_seconds
        if fail_status is not None:
            return self._fault(fail_status)
        if hang:
            self._closing.wait(hang)
        return self._api(request)

    def _fault(self, status: int) -> Response:
        response = self._error(status, HTTPStatus(status).phrase)
        if status == 429:
            return dataclasses.replace(response, headers={**response.headers, "Retry-After": "1"})
        return response

    def _control(self, request: Request) -> Response:
        action = request.path.removeprefix(CONTROL_PREFIX)
        if (request.method, action) == ("GET", "requests"):
            return json_response(200, self.snapshot())
        if (request.method, action) == ("POST", "reset"):
            self.reset()
            return json_response(200, {"ok": True})
        if (request.method, action) == ("POST", "faults"):
            try:
                self._program(request.json())
            except (ValueError, TypeError, KeyError) as exc:
                return json_response(400, {"error": f"bad fault program: {exc!r}"})
            return json_response(200, {"ok": True})
        return json_response(404, {"error": f"no control endpoint {request.method} {request.path}"})

    def _program(self, program: Json) -> None:
        if not isinstance(program, dict):
            raise TypeError("a fault program is a JSON object")
        unknown = set(program) - {"fail_next", "hang_next", "down"}
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        if "fail_next" in program:
            self.fail_next(int(program["fail_next"]["count"]), int(program["fail_next"]["status"]))
        if "hang_next" in program:
            self.hang_next(int(program["hang_next"]["count"]), float(program["hang_next"]["seconds"]))
        if "down" in program:
            self.down(bool(program["down"]))

    def _api(self, request: Request) -> Response:
        raise NotImplementedError

    def _error(self, status: int, message: str) -> Response:
        raise NotImplementedError

    def _state(self) -> Json:
        raise NotImplementedError

    def _clear(self) -> None:
        raise NotImplementedError
