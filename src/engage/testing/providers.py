"""Local fake SendGrid and Twilio servers, and webhook signing helpers, for tests and benchmarks.

The fakes speak the HTTP APIs that the official `sendgrid` (urllib, via python_http_client) and `twilio`
(requests) libraries call, so tests drive the real client code end to end against 127.0.0.1 instead of
patching it: auth headers, URL building, error mapping, timeouts and connection reuse are all exercised.

Each fake is a `ThreadingHTTPServer` on a free loopback port, run in a background thread by its context
manager, or in a separate process (`python -m engage.testing.providers`, or `start_process()`) for
benchmarks that must not share the GIL with the code under test. Recorded state and fault programming are
available in process (`fake.deliveries`, `fake.fail_next(...)`) and over HTTP under `/_fake/`
(`FakeControl`), so both modes are driven alike.

This module gathers the public names in one place to import from, and is the `python -m` entry point;
the code lives in one module per job:

- `engage.testing._server`: `FakeProvider`, the threaded server, faults and control API both fakes share;
- `engage.testing.sendgrid`: `FakeSendGrid` and the Event Webhook helpers;
- `engage.testing.twilio`: `FakeTwilio` and `twilio_signature`;
- `engage.testing.control`: `FakeControl`, the control API's HTTP client;
- `engage.testing.process`: `start_process` and `main`, both fakes in a child process.
"""

from __future__ import annotations

import sys

from engage.testing._server import FakeProvider
from engage.testing._server import Json as Json
from engage.testing.control import FakeControl
from engage.testing.process import ProviderProcess, main, start_process
from engage.testing.sendgrid import SENDGRID_API_KEY, Delivery, FakeSendGrid, SendGridSigner, sendgrid_event
from engage.testing.twilio import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, FakeTwilio, SentSms, twilio_signature

__all__ = [
    "SENDGRID_API_KEY",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "FakeProvider",
    "FakeSendGrid",
    "Delivery",
    "FakeTwilio",
    "SentSms",
    "FakeControl",
    "ProviderProcess",
    "start_process",
    "SendGridSigner",
    "sendgrid_event",
    "twilio_signature",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
