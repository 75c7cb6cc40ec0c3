"""Sending figures: campaign emails rendered with four live recommendations each and delivered to a fake
SendGrid (batched personalizations), and SMS with one recommendation to a fake Twilio, against the limit of
the same connectors posting the very same pre-rendered messages to the same fakes.

A temporary SQLite workspace gets the demo catalog and --customers customers (email, phone, SMS consent),
each with --views product views; the recommender is trained (engage's default, `auto`). The fakes run in
their own process (`engage.testing.providers`), so they do not share this process's GIL; the official
`sendgrid` and `twilio` libraries talk to them over loopback HTTP.

1. email: `Messaging.send_many("email/weekly_picks", audience)` then `dispatch()` until every message is
   sent: recording, policies, rendering with `for_many` prefetching and exposures, batches of up to 1,000
   personalizations, recording outcomes and events; the clock runs from send_many to the last one sent.
   Limit: `SendGridConnector.send_emails` of the same rendered emails, in the same batches. Also shown:
   rendering the same emails again alone (nothing recorded, nothing sent), to see where the time goes.
2. SMS: the same for `sms/abandoned_cart` to --sms customers (8 requests at once, as the dispatcher sends).
   Limit: `TwilioConnector.send_sms` of the same rendered texts, 8 at once.

    .venv/bin/python bench/send.py [--customers 10000] [--sms 2000] [--views 20]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from engage.bootstrap import bootstrap
from engage.cli._serving import tune_process
from engage.connectors import Email, Sms
from engage.connectors.sendgrid import SendGridConnector
from engage.connectors.twilio import TwilioConnector
from engage.messaging.customers import load_customers
from engage.messaging.render import Job
from engage.testing.control import FakeControl
from engage.testing.providers import SENDGRID_API_KEY, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, start_process
from engage.workspace import Workspace, init_workspace

NOON_IN_NEW_YORK = datetime(2026, 6, 1, 16, tzinfo=UTC)
TARGET_EMAILS = 1_000
TARGET_SHARE = 0.5
SMS_THREADS = 8


def configure(root: Path, sendgrid_url: str, twilio_url: str) -> None:
    (root / "connectors" / "sendgrid.yml").write_text(
        f"api_key: {SENDGRID_API_KEY}\nfrom_email: shop@example.com\nfrom_name: Retail Demo Store\n"
        f"base_url: {sendgrid_url}\n"
    )
    (root / "connectors" / "twilio.yml").write_text(
        f"account_sid: {TWILIO_ACCOUNT_SID}\nauth_token: {TWILIO_AUTH_TOKEN}\n"
        f'messaging_service_sid: "MG{"0" * 32}"\nbase_url: {twilio_url}\n'
    )
    endpoints = root / "endpoints.yml"
    text = (
        endpoints.read_text()
        .replace("email: outbox", "email: sendgrid")
        .replace("sms: outbox", "sms: twilio")
    )
    endpoints.write_text(text)


def customers(engage, count: int, views: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    """Customers who browse two or three favourite categories, every one reachable by email and SMS."""
    rng = random.Random(seed)
    by_category: dict[str, list[str]] = {}
    for product in engage.recommend.catalog:
        by_category.setdefault(product.category, []).append(product.id)
    categories = sorted(by_category)
    calls = []
    for n in range(count):
        favourite = rng.sample(categories, 3)
        calls.append(
            {
                "type": "identify",
                "userId": f"c{n}",
                "traits": {"email": f"c{n}@example.com", "phone": f"+1{415 + n // 10_000}555{n % 10_000:04d}",
                           "first_name": f"Customer{n}", "timezone": "America/New_York"},
                "context": {"consent": {"categoryPreferences": {"sms": True}}},
            }
        )  # fmt: skip
        for _ in range(views):
            category = favourite[min(int(rng.expovariate(1.5)), 2)]
            calls.append({"type": "track", "userId": f"c{n}", "event": "ProductViewed",
                          "properties": {"product_id": rng.choice(by_category[category][:40])}})  # fmt: skip
        if len(calls) >= 5_000:
            ingest(engage, calls)
            calls = []
    ingest(engage, calls)
    engage.stream.drain(engage.consumers)


def ingest(engage, calls: list[dict]) -> None:  # type: ignore[no-untyped-def]
    result = engage.ingestor.batch({"batch": calls}, size=0)
    if result.rejected:
        raise SystemExit(f"the bench's own events were rejected: {result.rejected[:3]}")


def rendering_rate(engage, records: list) -> float:  # type: ignore[no-untyped-def]
    """Emails/s of rendering the same messages again, a batch of 1,000 at a time as the dispatcher does
    (recommendations prefetched per batch), with nothing recorded or sent: what rendering alone costs."""
    with engage.database.read() as connection:
        customers = load_customers(connection, {record.profile_id for record in records})
    jobs = [Job(record.id, record.template, customers[record.profile_id].recipient) for record in records]
    began = time.perf_counter()
    for start in range(0, len(jobs), 1_000):
        engage.messaging.renderer.render_batch(jobs[start : start + 1_000])
    return len(jobs) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--sms", type=int, default=2_000)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="engage-bench-send-"))
    root = folder / "workspace"
    init_workspace(root)
    tune_process()
    with start_process() as fakes:
        try:
            configure(root, fakes.sendgrid_url, fakes.twilio_url)
            engage = bootstrap(Workspace.load(root), clock=lambda: NOON_IN_NEW_YORK)
            began = time.perf_counter()
            customers(engage, args.customers, args.views, args.seed)
            version = engage.recommend.train()
            print(f"{args.customers:,} customers, {args.customers * args.views:,} views, trained "
                  f"{version.manifest['model']} in {time.perf_counter() - began:.0f} s")  # fmt: skip
            messaging = engage.messaging
            audience = [f"c{n}" for n in range(args.customers)]

            began = time.perf_counter()
            records = messaging.send_many(
                "email/weekly_picks", audience, key=lambda user: f"bench:weekly:{user}"
            )
            while messaging.dispatch():
                pass
            email_seconds = time.perf_counter() - began
            sent = [messaging.get(record.id) for record in records]
            assert all(record is not None and record.status == "sent" for record in sent), "every email sent"
            delivered = FakeControl(fakes.sendgrid_url).state()
            assert len(delivered["deliveries"]) == len(audience), "every email delivered once"
            emails = [
                Email(record.id, record.address, record.subject, record.body, record.text,
                      headers={"List-Unsubscribe": "<https://example.com/u>"})
                for record in sent if record is not None
            ]  # fmt: skip
            connector = messaging.connectors.email
            assert isinstance(connector, SendGridConnector)
            began = time.perf_counter()
            outcomes = connector.send_emails(emails)
            limit_seconds = time.perf_counter() - began
            assert all(not isinstance(outcome, Exception) for outcome in outcomes)
            email_rate, email_limit = len(audience) / email_seconds, len(emails) / limit_seconds
            render_rate = rendering_rate(engage, [record for record in sent if record is not None])
            print(
                f"1. email: {email_rate:,.0f} emails/s ({len(audience):,} in {email_seconds:.1f} s: "
                "recorded, rendered with 4 live recommendations, sent in batches of 1,000, outcomes and "
                f"events recorded); the same emails pre-rendered through the same connector: "
                f"{email_limit:,.0f}/s; rendering them alone (live recommendations, nothing recorded or "
                f"sent): {render_rate:,.0f}/s"
            )

            texters = audience[: args.sms]
            began = time.perf_counter()
            records = messaging.send_many("sms/abandoned_cart", texters, key=lambda user: f"bench:sms:{user}")
            while messaging.dispatch():
                pass
            sms_seconds = time.perf_counter() - began
            sent = [messaging.get(record.id) for record in records]
            assert all(record is not None and record.status == "sent" for record in sent), "every SMS sent"
            texts = [Sms(record.id, record.address, record.body) for record in sent if record is not None]  # type: ignore[arg-type]
            sms_connector = messaging.connectors.sms
            assert isinstance(sms_connector, TwilioConnector)
            began = time.perf_counter()
            with ThreadPoolExecutor(SMS_THREADS) as pool:
                list(pool.map(sms_connector.send_sms, texts))
            sms_limit_seconds = time.perf_counter() - began
            sms_rate, sms_limit = len(texters) / sms_seconds, len(texts) / sms_limit_seconds
            print(
                f"2. SMS: {sms_rate:,.0f} SMS/s ({len(texters):,} in {sms_seconds:.1f} s, one recommendation "
                "and two tracked links each); the same texts pre-rendered through the same connector, "
                f"{SMS_THREADS} at once: {sms_limit:,.0f}/s"
            )
            engage.close()
            email_ok = email_rate >= TARGET_EMAILS and email_rate >= TARGET_SHARE * email_limit
            rows = [
                (
                    "emails/s to SendGrid",
                    email_rate,
                    email_limit,
                    f">= {TARGET_EMAILS:,}/s, 50% of limit",
                    email_ok,
                ),
                (
                    "SMS/s to Twilio",
                    sms_rate,
                    sms_limit,
                    ">= 50% of limit",
                    sms_rate >= TARGET_SHARE * sms_limit,
                ),
            ]
            print(f"\n{'figure':<24} {'engage':>10} {'limit':>10} {'ratio':>7}  {'target':<32} result")
            for name, rate, limit, target, ok in rows:
                verdict = "PASS" if ok else "FAIL"
                print(
                    f"{name:<24} {rate:>10,.0f} {limit:>10,.0f} {rate / limit:>7.2f}  {target:<32} {verdict}"
                )
        finally:
            if args.keep:
                print(f"workspace kept: {root}")
            else:
                shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
