"""Both fakes in a child process, for benchmarks that must not share the GIL with the code under test.

`main` is what `python -m engage.testing.providers` runs: it serves both fakes and prints their URLs on
one line, which `start_process` reads back before waiting for both ports to accept connections. The two
sides of that one-line handshake live here together so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass

from engage.testing.sendgrid import SENDGRID_API_KEY, FakeSendGrid
from engage.testing.twilio import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, FakeTwilio

__all__ = ["ProviderProcess", "start_process", "main"]


@dataclass
class ProviderProcess:
    """Both fakes running in a child process; `stop()` sends SIGTERM and waits."""

    process: subprocess.Popen[str]
    sendgrid_url: str
    twilio_url: str

    def stop(self, timeout: float = 10.0) -> int:
        """Terminate the process (killing it if it does not exit in `timeout`) and return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> ProviderProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_process(
    *,
    sendgrid_port: int = 0,
    twilio_port: int = 0,
    sendgrid_key: str = SENDGRID_API_KEY,
    account_sid: str = TWILIO_ACCOUNT_SID,
    auth_token: str = TWILIO_AUTH_TOKEN,
    timeout: float = 20.0,
) -> ProviderProcess:
    """Start `python -m engage.testing.providers` and return once both fakes accept connections."""
    command = [sys.executable, "-m", "engage.testing.providers"]
    command += ["--sendgrid-port", str(sendgrid_port), "--twilio-port", str(twilio_port)]
    command += ["--sendgrid-key", sendgrid_key, "--twilio-account-sid", account_sid]
    command += ["--twilio-auth-token", auth_token]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else ""
        urls = dict(part.split("=", 1) for part in line.split())
        if set(urls) != {"sendgrid", "twilio"}:
            raise RuntimeError(
                f"the fake providers did not start (exit code {process.poll()}, said {line!r})"
            )
        for url in urls.values():
            _wait_for_port(url, deadline)
    except BaseException:
        process.kill()
        process.wait()
        process.stdout.close()
        raise
    return ProviderProcess(process, urls["sendgrid"], urls["twilio"])


def _wait_for_port(url: str, deadline: float) -> None:
    address = urllib.parse.urlsplit(url)
    while True:
        try:
            with socket.create_connection((address.hostname, address.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    """Serve both fakes until SIGTERM or SIGINT, after printing `sendgrid=URL twilio=URL` on one line."""
    parser = argparse.ArgumentParser(
        prog="python -m engage.testing.providers", description="Fake SendGrid and Twilio APIs on 127.0.0.1."
    )
    parser.add_argument("--sendgrid-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--twilio-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--sendgrid-key", default=SENDGRID_API_KEY)
    parser.add_argument("--twilio-account-sid", default=TWILIO_ACCOUNT_SID)
    parser.add_argument("--twilio-auth-token", default=TWILIO_AUTH_TOKEN)
    args = parser.parse_args(argv)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with (
        FakeSendGrid(args.sendgrid_key, port=args.sendgrid_port) as sendgrid,
        FakeTwilio(args.twilio_account_sid, args.twilio_auth_token, port=args.twilio_port) as twilio,
    ):
        print(f"sendgrid={sendgrid.url} twilio={twilio.url}", flush=True)
        stopping.wait()
    return 0
