"""Segments: memberships kept current by the real-time segment consumer, against a cron recomputing them.

On SQLite (a temporary workspace and database), this loads a storefront history and 20 segments (the 12
shipped in segments/ and 8 generated ones covering the other kinds of condition), then measures, each
against a baseline measured in the same run on the same database:

1. loading: the history through the ingestor, then the profiles consumer (batches of 500); baseline: the
   very same rows inserted with executemany into an empty copy of the event table (not a target);
2. real-time throughput: the logged history replayed through `SegmentsConsumer` with `deliver()` in
   batches of 500, as the stream delivers it, with the garbage collector tuned as `engage worker` tunes
   it; baseline: the profiles consumer on the same batches. The clock stays at the end of the history,
   as when the consumer catches up on a backlog or an imported history (events older than a window
   change nothing). 2b: the same history again, from no state, as if it happened live: the clock at
   each batch's newest event, so every event is fresh and a quarter of them change a membership; then
   the segment clock at the end must leave the same members as the catch-up replay;
3. cron: every segment compiled to one SQLite query over event_log, profiles and consents, all 20
   recomputed once; the cron pays that after every batch, the engine its time per batch of 500. The SQL
   member counts must equal the engine's memberships (at the same frozen `now`);
4. latency: `engage serve` + `engage worker` on the database, live events at --rate for --seconds, a share
   of them entering a profile into a segment; latency = SegmentEntered's received_at minus its cause's
   (both stamped by engage); baseline: the cron's best case, one full recompute;
5. backfill: one new segment over the whole history (`Segments.sync()` from a fresh bootstrap); baseline:
   its SQL query.

    .venv/bin/python bench/segments.py [--profiles 100000] [--events 2000000] [--rate 1000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import os
import pstats
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from base64 import b64encode
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from ingest import cpu_seconds, free_port, wait_healthy
from sqlalchemy import text

from engage.bootstrap import Engage, bootstrap
from engage.cli._serving import tune_process
from engage.events.consumers import Consumer, deliver, offset_of
from engage.segments.compare import matches
from engage.segments.consumer import SegmentClock
from engage.segments.definition import (
    Aggregate,
    AggregateFunction,
    All,
    AnyOf,
    Comparison,
    Condition,
    Consent,
    CountOp,
    InSegment,
    LastPerformed,
    Manual,
    Not,
    NotPerformed,
    Op,
    Performed,
    PropertyFilter,
    RandomBucket,
    Segment,
    Trait,
)
from engage.segments.store import SEGMENT_ENTERED
from engage.store.codec import time_param, time_value
from engage.workspace import Workspace, init_workspace

TARGET_THROUGHPUT = 20_000  # events/s through the segment consumer
TARGET_CRON_RATIO = 50  # SQL full recompute / engine time per batch of 500
TARGET_P99_MS = 50
BATCH = 500  # events per delivery, as the stream delivers them
LOAD_CHUNK = 10_000  # calls per ingestor.batch while loading
PAGE = 20_000  # events read from the log at a time for a replay
HISTORY = timedelta(days=120)

CATEGORIES = ["apparel", "books", "electronics", "outdoors", "home", "beauty", "toys", "grocery", "sports"]
# Share of each call in the history, after every profile's first call (an identify).
KINDS = {
    "ProductViewed": 0.780,
    "ProductAdded": 0.080,
    "CartViewed": 0.050,
    "CheckoutStarted": 0.030,
    "OrderCompleted": 0.020,
    "identify": 0.030,
    "SmsOptedIn": 0.006,
    "Unsubscribed": 0.004,
}
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "shop.example"]
PLANS = ["basic", "gold", "platinum"]
CONTEXT = {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)", "locale": "en-US"}

# Eight more segments, so that the twenty cover every kind of condition the engine evaluates.
GENERATED = {
    "big_ticket": """
        description: Ordered something of 250 or more in the last 60 days (max of a property).
        condition:
          performed: OrderCompleted
          within: 60d
          max: revenue
          gte: 250
    """,
    "cart_explorers": """
        description: Added products of 3 or more categories to the cart in the last 30 days.
        condition:
          performed: ProductAdded
          within: 30d
          count: category
          gte: 3
    """,
    "window_shoppers": """
        description: Viewed 5 pricier apparel or outdoors products this week, no order in 90 days.
        condition:
          all:
            - performed: ProductViewed
              where:
                category: {in: [apparel, outdoors]}
                price: {gte: 50}
              within: 7d
              at_least: 5
            - not_performed: OrderCompleted
              within: 90d
    """,
    "checkout_stalled": """
        description: Their latest checkout got past step 1, and no order this week.
        condition:
          all:
            - last_performed: CheckoutStarted
              where: {step: {gte: 2}}
            - not_performed: OrderCompleted
              within: 7d
    """,
    "one_time_buyers": """
        description: Exactly one order, ever.
        condition:
          performed: OrderCompleted
          exactly: 1
    """,
    "vip_email": """
        description: High-value gold or platinum customers we may email.
        condition:
          all:
            - in_segment: high_value
            - in_segment: email_users
            - trait: plan
              in: [gold, platinum]
    """,
    "sms_winback": """
        description: Lapsed customers or cart abandoners who opted in to SMS, minus a 10% holdout.
        condition:
          all:
            - consent: sms
            - any:
                - in_segment: lapsed_customers
                - in_segment: cart_abandoners
            - not:
                random_bucket: {salt: holdout-bench, below: 10}
    """,
    "new_gmail_browsers": """
        description: Signed up in the last 30 days with a Gmail address, not on the basic plan, at most
          20 product views this week.
        condition:
          all:
            - trait: created_at
              within: 30d
            - trait: email
              contains: "@gmail."
            - trait: plan
              ne: basic
            - performed: ProductViewed
              within: 7d
              at_most: 20
    """,
}
# The segment added for the backfill: on ProductViewed, the heaviest event.
BACKFILLED = (
    "affinity_home",
    """
    description: Users who viewed at least 3 different home products in the last 30 days.
    condition:
      performed: ProductViewed
      where:
        category: home
      within: 30d
      count: product_id
      gte: 3
    """,
)


class FrozenClock:
    """engage's clock for the in-process phases: one `now`, so the engine and the SQL agree on windows."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def whole_second_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def write_segment(root: Path, name: str, body: str) -> None:
    (root / "segments" / f"{name}.yml").write_text(f"name: {name}\n" + textwrap.dedent(body).lstrip())


# ------------------------------------------------------------------------------------------- workload


def storefront_history(profiles: int, events: int, now: datetime, seed: int = 1) -> Iterator[list[dict]]:
    """`events` calls of `profiles` users spread over the 120 days before `now`, in time order, in chunks.

    Each user's first call is an identify (email for most, a phone for some, created_at, plan); then
    mostly product views, a funnel down to orders (revenue in quarters of a dollar, so sums are exact in
    floating point), a few re-identifies, SMS opt-ins and unsubscribes. Activity per user is heavy-tailed
    and each user prefers one category. Users are known (userId) from their first call: no merges."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    weights = np.minimum(rng.lognormal(0.0, 1.1, profiles), 60.0)
    users = np.concatenate(
        [np.arange(profiles), rng.choice(profiles, size=events - profiles, p=weights / weights.sum())]
    )
    rng.shuffle(users)
    end_us = int(now.timestamp() * 1e6) - 1_000_000
    times = np.sort(rng.integers(end_us - int(HISTORY.total_seconds() * 1e6), end_us, size=events))
    names = list(KINDS)
    kinds = rng.choice(len(names), size=events, p=np.array(list(KINDS.values())) / sum(KINDS.values()))
    favorite = rng.integers(0, len(CATEGORIES), size=profiles)
    has_email = rng.random(profiles) < 0.85
    has_phone = rng.random(profiles) < 0.30
    seen = np.zeros(profiles, dtype=bool)
    chunk: list[dict] = []
    for n in range(events):
        user = int(users[n])
        when = datetime.fromtimestamp(int(times[n]) / 1e6, UTC)
        message_id = uuid.UUID(int=pick.getrandbits(128)).hex
        kind = names[kinds[n]]
        if not seen[user]:
            seen[user] = True
            kind = "signup"
        elif kind == "SmsOptedIn" and not has_phone[user]:
            kind = "ProductViewed"
        if kind in ("signup", "identify"):
            traits: dict[str, Any] = {"plan": pick.choice(PLANS)}
            if kind == "signup":
                signed_up = when - timedelta(seconds=pick.randrange(3 * 86_400))
                traits["createdAt"] = signed_up.replace(microsecond=0).isoformat()
                if has_email[user]:
                    traits["email"] = f"u{user}@{DOMAINS[user % len(DOMAINS)]}"
                if has_phone[user]:
                    traits["phone"] = f"+1415555{user % 10_000:04d}"
            call = {"type": "identify", "traits": traits}
        else:
            category = CATEGORIES[favorite[user]] if pick.random() < 0.6 else pick.choice(CATEGORIES)
            properties: dict[str, Any] = {}
            if kind in ("ProductViewed", "ProductAdded"):
                properties = {
                    "product_id": f"{category[:3]}-{pick.randrange(200)}",
                    "category": category,
                    "price": pick.randrange(8, 1200) / 4,
                }
                if kind == "ProductAdded":
                    properties["quantity"] = pick.randint(1, 3)
            elif kind == "CheckoutStarted":
                properties = {"step": pick.choice((1, 1, 2, 3)), "category": category}
            elif kind == "OrderCompleted":
                properties = {
                    "order_id": message_id[:12],
                    "revenue": pick.randrange(20, 1600) / 4,
                    "currency": "USD",
                    "category": category,
                }
            call = {"type": "track", "event": kind, "properties": properties}
        call.update(
            messageId=message_id, userId=f"u{user}", timestamp=when.isoformat(), context=dict(CONTEXT)
        )
        chunk.append(call)
        if len(chunk) == LOAD_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_pages(engage: Engage, after: int, until: int) -> Iterator[list]:
    """The logged events with after < seq <= until, PAGE at a time."""
    while after < until:
        events = [event for event in engage.log.read(after, limit=PAGE) if event.seq <= until]
        if not events:
            return
        yield events
        after = events[-1].seq


@dataclass
class Replay:
    events: int = 0
    batches: int = 0
    deliver_seconds: float = 0.0
    read_seconds: float = 0.0
    clock_seconds: float = 0.0
    """Time the segment clock took between batches (a replay as if live)."""
    cpu_seconds: float = 0.0
    """CPU time of this process while delivering (the SQLite work included): other processes competing
    for the cores show as deliver_seconds well above cpu_seconds."""

    @property
    def per_second(self) -> float:
        return self.events / self.deliver_seconds

    @property
    def per_batch(self) -> float:
        return self.deliver_seconds / self.batches


def replay(
    engage: Engage,
    consumer: Consumer,
    until: int,
    profiler: cProfile.Profile | None = None,
    following: tuple[FrozenClock, SegmentClock] | None = None,
) -> Replay:
    """Deliver the log up to `until` to `consumer` alone, in batches of BATCH; only delivery is timed
    (reading the log is timed apart). With `following` (engage's clock and the segment clock), the clock
    is set to each batch's newest event time and the segment clock does what is due by then before the
    batch is delivered, as if the history happened live (timed apart)."""
    result = Replay()
    after = offset_of(engage.database, consumer.name)
    began = time.perf_counter()
    for page in read_pages(engage, after, until):
        read = time.perf_counter()
        result.read_seconds += read - began
        cpu = time.process_time()
        if profiler is not None:
            profiler.enable()
        for start in range(0, len(page), BATCH):
            batch = page[start : start + BATCH]
            if following is not None:
                clock, segment_clock = following
                clock.now = max(event.timestamp for event in batch)
                ticked = time.perf_counter()
                segment_clock.tick()
                result.clock_seconds += time.perf_counter() - ticked
            delivering = time.perf_counter()
            result.events += deliver(engage.database, consumer, 0, batch)
            result.deliver_seconds += time.perf_counter() - delivering
            result.batches += 1
        if profiler is not None:
            profiler.disable()
        result.cpu_seconds += time.process_time() - cpu
        began = time.perf_counter()
    return result


def forget_segment_work(engage: Engage) -> None:
    """The segments consumer back to the start of the log, with no state, membership or announcement."""
    with engage.database.write() as connection:
        for statement in (
            "DELETE FROM segment_states",
            "DELETE FROM segment_memberships",
            "DELETE FROM event_log WHERE channel = 'system' AND event IN ('SegmentEntered', 'SegmentExited')",
            "UPDATE stream_offsets SET seq = 0 WHERE consumer = 'segments'",
        ):
            connection.execute(text(statement))


def drain(engage: Engage, batch: int = 5_000) -> int:
    """Every consumer to the end of the log, including what they announce meanwhile; returns how many
    events were delivered (to each consumer, counted apart)."""
    delivered = 0
    while True:
        low = min(offset_of(engage.database, consumer.name) for consumer in engage.consumers)
        if low >= engage.log.last_seq():
            return delivered
        events = engage.log.read(low, limit=batch)
        for consumer in engage.consumers:
            delivered += deliver(engage.database, consumer, 0, events)


def measure_raw_insert(database_path: Path, chunk: int) -> float:
    """The history's rows inserted with executemany, `chunk` a transaction, into an empty copy of
    event_log (same columns, same indexes); rows/s. The copy is dropped afterwards."""
    columns = (
        "message_id, type, event, channel, profile_id, user_id, anonymous_id, timestamp, received_at, "
        "properties, traits, context"
    )
    connection = sqlite3.connect(database_path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA cache_size=-65536")
        connection.execute("DROP TABLE IF EXISTS event_log_raw")
        for (ddl,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'event_log' AND sql IS NOT NULL "
            "ORDER BY type DESC"
        ).fetchall():
            ddl = re.sub(r"\bevent_log\b", "event_log_raw", ddl)
            connection.execute(re.sub(r"\bix_event_log", "ix_event_log_raw", ddl))
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        insert = f"INSERT INTO event_log_raw ({columns}) VALUES ({', '.join(['?'] * 12)})"
        rows_total, seconds, after = 0, 0.0, 0
        while True:
            rows = connection.execute(
                f"SELECT seq, {columns} FROM event_log WHERE seq > ? AND channel != 'system' "
                "ORDER BY seq LIMIT ?",
                (after, chunk),
            ).fetchall()
            if not rows:
                break
            after = rows[-1][0]
            began = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(insert, [row[1:] for row in rows])
            connection.execute("COMMIT")
            seconds += time.perf_counter() - began
            rows_total += len(rows)
        connection.execute("DROP TABLE event_log_raw")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return rows_total / seconds


# ------------------------------------------------------------------------------------- the SQL "cron"


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    raise NotImplementedError(f"no SQL literal for {value!r}")


def _path(parts: Sequence[str]) -> str:
    return _lit("$" + "".join('."' + part.replace('"', '\\"') + '"' for part in parts))


def _ms(moment: datetime) -> str:
    """A time as SQLite's strftime('%Y-%m-%d %H:%M:%f') writes it (UTC, milliseconds)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _ts(value: str) -> str:
    return f"strftime('%Y-%m-%d %H:%M:%f', {value})"


class SqlSegments:
    """Each segment as one SQLite query returning the member profile ids (column `profile_id`).

    Event leaves group event_log (json_extract filters, `timestamp > now - within`); traits come from
    profiles.traits, consent from consents (email defaulting to subscribed with an address); all / any /
    not are INTERSECT / UNION / EXCEPT over the set of all profiles; `in_segment` reads the referenced
    segment's result, materialised in a temporary table; random_bucket and manual call Python functions.
    Comparisons follow `engage.segments.compare`: a value matches only a value of its own kind."""

    def __init__(self, now: datetime, email_consent_default: bool, manual: dict[str, frozenset[str]]):
        self.now = now
        self.email_consent_default = email_consent_default
        self.manual = manual

    @staticmethod
    def table(name: str) -> str:
        return "seg_" + re.sub(r"\W", "_", name)

    def query(self, segment: Segment) -> str:
        return self.node(segment.condition)

    def node(self, node: Condition) -> str:  # noqa: PLR0911 - one branch per kind of condition
        everyone = "SELECT id AS profile_id FROM profiles"
        if isinstance(node, All | AnyOf):
            if not node.conditions:
                return everyone if isinstance(node, All) else "SELECT id AS profile_id FROM profiles WHERE 0"
            keyword = " INTERSECT " if isinstance(node, All) else " UNION "
            return keyword.join(f"SELECT profile_id FROM ({self.node(c)})" for c in node.conditions)
        if isinstance(node, Not):
            return f"{everyone} EXCEPT SELECT profile_id FROM ({self.node(node.condition)})"
        if isinstance(node, Trait):
            value, kind = self.value("p.traits", node.name)
            return f"SELECT p.id AS profile_id FROM profiles p WHERE {self.test(value, kind, node.test)}"
        if isinstance(node, InSegment):
            return f"SELECT profile_id FROM temp.{self.table(node.segment)}"
        if isinstance(node, Consent):
            default = "0"
            if node.channel.value == "email" and self.email_consent_default:
                email = "json_extract(p.traits, '$.email')"
                default = f"(COALESCE({email}, '') NOT IN ('', 0))"
            wanted = 1 if node.subscribed else 0
            return (
                "SELECT p.id AS profile_id FROM profiles p LEFT JOIN consents c "
                f"ON c.profile_id = p.id AND c.channel = {_lit(node.channel.value)} "
                f"WHERE COALESCE(c.subscribed, {default}) = {wanted}"
            )
        if isinstance(node, RandomBucket):
            return (
                f"SELECT id AS profile_id FROM profiles WHERE "
                f"engage_bucket({_lit(node.salt)}, COALESCE(NULLIF(user_id, ''), id)) < {node.below!r}"
            )
        if isinstance(node, Manual):
            return f"SELECT id AS profile_id FROM profiles WHERE engage_manual({_lit(node.path)}, user_id)"
        if isinstance(node, LastPerformed):
            latest = (
                "SELECT profile_id, properties, timestamp, row_number() OVER (PARTITION BY profile_id "
                "ORDER BY timestamp DESC, seq DESC) AS position FROM event_log "
                f"WHERE event = {_lit(node.event)}"
            )
            filters = self.filters(node.where, "e")
            return f"SELECT e.profile_id FROM ({latest}) e WHERE e.position = 1{filters}"
        if isinstance(node, Performed):
            return self.performed(node)
        if isinstance(node, NotPerformed):
            return f"{everyone} EXCEPT SELECT DISTINCT e.profile_id FROM {self.events(node)}"
        assert isinstance(node, Aggregate)
        return self.aggregate(node)

    def events(self, node: Performed | NotPerformed | Aggregate) -> str:
        """`event_log e WHERE …`: the leaf's events, in its window, passing its filters."""
        sql = f"event_log e WHERE e.event = {_lit(node.event)}"
        if node.within is not None:
            sql += f" AND e.timestamp > {_lit(time_param(self.now - node.within, True))}"
        return sql + self.filters(node.where, "e")

    def filters(self, where: tuple[PropertyFilter, ...], alias: str) -> str:
        sql = ""
        for one in where:
            value, kind = self.value(f"{alias}.properties", one.property)
            sql += f" AND {self.test(value, kind, one.test, at=f'{alias}.timestamp')}"
        return sql

    def performed(self, node: Performed) -> str:
        everyone = "SELECT id AS profile_id FROM profiles"
        ids = f"SELECT e.profile_id FROM {self.events(node)} GROUP BY e.profile_id"
        n = node.count
        if node.count_op is CountOp.AT_LEAST:
            if n <= 0:
                return everyone
            return (
                f"SELECT DISTINCT e.profile_id FROM {self.events(node)}"
                if n == 1
                else f"{ids} HAVING count(*) >= {n}"
            )
        if node.count_op is CountOp.AT_MOST:
            return f"{everyone} EXCEPT {ids} HAVING count(*) > {n}"
        if n == 0:
            return f"{everyone} EXCEPT SELECT DISTINCT e.profile_id FROM {self.events(node)}"
        return f"{ids} HAVING count(*) = {n}"

    def aggregate(self, node: Aggregate) -> str:
        value, kind = self.value("e.properties", node.property)
        number = f"CASE WHEN {kind} IN ('integer', 'real') THEN {value} END"
        if node.function is AggregateFunction.SUM:
            function, empty = f"COALESCE(sum({number}), 0)", 0
        elif node.function is AggregateFunction.MAX:
            function, empty = f"max({number})", None
        else:
            function, empty = f"count(DISTINCT {value})", 0
        op = {Op.EQ: "=", Op.NE: "!=", Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}[node.test.op]
        if_none = "1" if matches(None, node.test, self.now) else "0"
        grouped = f"SELECT e.profile_id, {function} AS a FROM {self.events(node)} GROUP BY e.profile_id"
        passes = f"COALESCE(g.a {op} {_lit(node.test.value)}, {if_none})"
        if not matches(empty, node.test, self.now):  # a profile without such events fails: group only
            return f"SELECT g.profile_id FROM ({grouped}) g WHERE {passes}"
        return (
            f"SELECT p.id AS profile_id FROM profiles p LEFT JOIN ({grouped}) g ON g.profile_id = p.id "
            f"WHERE g.profile_id IS NULL OR {passes}"
        )

    @staticmethod
    def value(column: str, name: str) -> tuple[str, str]:
        """(value, JSON type) of a trait or property, following dots as `compare.lookup` does."""
        direct = _path([name])
        if "." not in name:
            return f"json_extract({column}, {direct})", f"json_type({column}, {direct})"
        nested = _path(name.split("."))
        present = f"json_type({column}, {direct}) IS NOT NULL"
        value, kind = (
            f"(CASE WHEN {present} THEN {function}({column}, {direct}) "
            f"ELSE {function}({column}, {nested}) END)"
            for function in ("json_extract", "json_type")
        )
        return value, kind

    def test(self, value: str, kind: str, test: Comparison, at: str | None = None) -> str:
        """SQL true exactly when `compare.matches(value, test, now)` is (`at`: the event's time, for
        `within` on a property)."""
        op, expected = test.op, test.value
        if op is Op.EQ:
            return f"COALESCE({self.equal(value, kind, expected)}, 0)"
        if op is Op.NE:
            return f"NOT COALESCE({self.equal(value, kind, expected)}, 0)"
        if op is Op.IN:
            return "(" + " OR ".join(f"COALESCE({self.equal(value, kind, e)}, 0)" for e in expected) + ")"
        if op is Op.EXISTS:
            return f"(COALESCE({kind}, 'null') {'!=' if expected else '='} 'null')"
        if op is Op.CONTAINS:
            item = f"COALESCE({self.equal('j.value', 'j.type', expected)}, 0)"
            array = f"({kind} = 'array' AND EXISTS (SELECT 1 FROM json_each({value}) j WHERE {item}))"
            if isinstance(expected, str):
                return f"(({kind} = 'text' AND instr({value}, {_lit(expected)}) > 0) OR {array})"
            return array
        if op is Op.WITHIN:
            assert isinstance(expected, timedelta)
            moment = _ts(value)
            if at is None:
                now, start = _lit(_ms(self.now)), _lit(_ms(self.now - expected))
            else:
                seconds = expected.total_seconds()
                now, start = _ts(at), f"strftime('%Y-%m-%d %H:%M:%f', {at}, '-{seconds} seconds')"
            return f"COALESCE({kind} = 'text' AND {moment} <= {now} AND {moment} > {start}, 0)"
        symbol = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}[op]
        if isinstance(expected, date):
            return f"COALESCE({kind} = 'text' AND {_ts(value)} {symbol} {_lit(_ms(_aware(expected)))}, 0)"
        if isinstance(expected, bool):
            return "0"
        if isinstance(expected, int | float):
            return f"COALESCE({kind} IN ('integer', 'real') AND {value} {symbol} {_lit(expected)}, 0)"
        return f"COALESCE({kind} = 'text' AND {value} {symbol} {_lit(expected)}, 0)"

    @staticmethod
    def equal(value: str, kind: str, expected: Any) -> str:
        if expected is None:
            return f"({kind} IS NULL OR {kind} = 'null')"
        if isinstance(expected, date):
            return f"({kind} = 'text' AND {_ts(value)} = {_lit(_ms(_aware(expected)))})"
        if isinstance(expected, bool):
            return f"({kind} = {_lit('true' if expected else 'false')})"
        if isinstance(expected, int | float):
            return f"({kind} IN ('integer', 'real') AND {value} = {_lit(expected)})"
        return f"({kind} = 'text' AND {value} = {_lit(expected)})"


def _aware(value: date) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def sql_connection(database_path: Path, manual: dict[str, frozenset[str]]) -> sqlite3.Connection:
    connection = sqlite3.connect(database_path, isolation_level=None)
    connection.execute("PRAGMA cache_size=-65536")  # as engage's own connections
    connection.execute("PRAGMA temp_store=MEMORY")
    connection.create_function(
        "engage_bucket", 2, lambda salt, uid: RandomBucket(salt, 0).bucket(uid), deterministic=True
    )
    connection.create_function(
        "engage_manual", 2, lambda path, uid: uid in manual.get(path, frozenset()), deterministic=True
    )
    return connection


def recompute(
    connection: sqlite3.Connection, compiler: SqlSegments, segments: Sequence[Segment]
) -> tuple[dict[str, set[str]], dict[str, float]]:
    """Every segment's members by SQL, in dependency order (`segments` as load_segments orders them);
    those another segment refers to are materialised for it. Returns members and seconds per segment."""
    referenced = {used for segment in segments for used in segment.segments_used()}
    members: dict[str, set[str]] = {}
    seconds: dict[str, float] = {}
    for segment in segments:
        began = time.perf_counter()
        found = {row[0] for row in connection.execute(compiler.query(segment))}
        if segment.name in referenced:
            table = compiler.table(segment.name)
            connection.execute(f"DROP TABLE IF EXISTS temp.{table}")
            connection.execute(f"CREATE TEMP TABLE {table} (profile_id TEXT PRIMARY KEY)")
            connection.executemany(f"INSERT INTO temp.{table} VALUES (?)", [(pid,) for pid in found])
        seconds[segment.name] = time.perf_counter() - began
        members[segment.name] = found
    return members, seconds


def engine_members(engage: Engage) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {name: set() for name in engage.segments.engine.segments}
    with engage.database.read() as connection:
        for segment, profile_id in connection.execute(
            text("SELECT segment, profile_id FROM segment_memberships WHERE exited_at IS NULL")
        ):
            found.setdefault(segment, set()).add(profile_id)
    return found


def count_announcements(engage: Engage) -> int:
    with engage.database.read() as connection:
        return connection.execute(
            text("SELECT count(*) FROM event_log WHERE event IN ('SegmentEntered', 'SegmentExited')")
        ).scalar_one()


def engine_counts(engage: Engage) -> dict[str, int]:
    with engage.database.read() as connection:
        rows = connection.execute(
            text("SELECT segment, count(*) FROM segment_memberships WHERE exited_at IS NULL GROUP BY segment")
        ).all()
    return {segment: count for segment, count in rows}


# ------------------------------------------------------------------------------------------- latency


def _engage(command: str, root: Path, log_file: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "engage.cli.main", command, "-w", str(root), *extra],
        stdout=log_file.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "ENGAGE_LOG_LEVEL": "WARNING"},
    )


@dataclass
class Live:
    sent: int = 0
    triggers: dict[str, None] = field(default_factory=dict)
    """messageIds of the calls meant to enter a profile into a segment (first order of a new user)."""
    request_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0


def send_live(
    port: int, write_key: str, rate: int, seconds: float, profiles: int, share: float, seed: int = 7
) -> Live:
    """`rate` calls/s for `seconds`, a batch every 10 ms on one keep-alive connection; `share` of them
    the first OrderCompleted of a new user (enters recent_purchasers), the rest storefront traffic of
    known users."""
    pick = random.Random(seed)
    auth = "Basic " + b64encode(f"{write_key}:".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    live = Live()
    began = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - began
        if elapsed >= seconds:
            break
        # As many calls as are due by now: a slow request is followed by a larger batch, not a lower rate.
        due = min(int(rate * elapsed) + 1, int(rate * seconds)) - live.sent
        calls = []
        for _ in range(max(due, 0)):
            message_id = uuid.uuid4().hex  # unique across runs on one database
            if pick.random() < share:
                live.triggers[message_id] = None
                call = {
                    "type": "track",
                    "event": "OrderCompleted",
                    "userId": f"live-{message_id[:10]}",
                    "properties": {"order_id": message_id[:12], "revenue": pick.randrange(20, 1600) / 4},
                }
            else:
                category = pick.choice(CATEGORIES)
                call = {
                    "type": "track",
                    "event": pick.choice(("ProductViewed",) * 8 + ("ProductAdded", "CartViewed")),
                    "userId": f"u{pick.randrange(profiles)}",
                    "properties": {
                        "product_id": f"{category[:3]}-{pick.randrange(200)}",
                        "category": category,
                        "price": pick.randrange(8, 1200) / 4,
                    },
                }
            call.update(messageId=message_id, context=CONTEXT)
            calls.append(call)
        if calls:
            sent_at = time.perf_counter()
            connection.request(
                "POST",
                "/v1/batch",
                body=orjson.dumps({"batch": calls}),
                headers={"Authorization": auth, "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            payload = orjson.loads(response.read())
            if response.status != 200 or payload.get("accepted") != len(calls):
                raise SystemExit(f"live batch failed: {response.status} {payload}")
            live.request_ms.append((time.perf_counter() - sent_at) * 1000)
            live.sent += len(calls)
        elapsed = time.perf_counter() - began
        time.sleep(max(0.0, (int(elapsed / 0.01) + 1) * 0.01 - elapsed))  # the next 10 ms tick
    live.seconds = time.perf_counter() - began
    connection.close()
    return live


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


@dataclass
class Latency:
    live: Live
    entries: list[float]
    """ms from the cause's received_at to SegmentEntered's, for every entry caused by a live call."""
    trigger_entries: list[float]
    """The same for the designated triggers: their first entry each."""
    triggered: int
    cpu: list[float]


def measure_latency(root: Path, args: argparse.Namespace, folder: Path) -> Latency:
    workspace = Workspace.load(root)
    port = free_port()
    log_file = folder / "engage-processes.log"
    processes = [_engage("serve", root, log_file, "--port", str(port)), _engage("worker", root, log_file)]
    database = None
    try:
        wait_healthy(port, processes[0])
        engage = bootstrap(workspace, migrate=False)
        database = engage.database
        start = engage.log.last_seq()
        deadline = time.monotonic() + 120
        while offset_of(database, "segments") < start:  # the worker is up, synced and caught up
            if processes[1].poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"engage worker did not start:\n{log_file.read_text()[-3000:]}")
            time.sleep(0.05)
        cpu_before = [cpu_seconds(process.pid) for process in processes]
        began = time.perf_counter()
        live = send_live(
            port,
            workspace.endpoints.ingest.write_keys[0],
            args.rate,
            args.seconds,
            args.profiles,
            args.trigger_share,
        )
        with database.read() as connection:
            last = connection.execute(
                text("SELECT max(seq) FROM event_log WHERE seq > :start AND channel != 'system'"),
                {"start": start},
            ).scalar_one()
        deadline = time.monotonic() + 120
        while offset_of(database, "segments") < last:
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not catch up within 120 s")
            time.sleep(0.02)
        wall = time.perf_counter() - began
        cpu = [(cpu_seconds(p.pid) - before) / wall for p, before in zip(processes, cpu_before, strict=True)]
        with database.read() as connection:
            received = {
                message_id: time_value(at)
                for message_id, at in connection.execute(
                    text(
                        "SELECT message_id, received_at FROM event_log WHERE seq > :start AND seq <= :last "
                        "AND channel != 'system'"
                    ),
                    {"start": start, "last": last},
                )
            }
            entered = connection.execute(
                text(
                    "SELECT json_extract(context, '$.cause'), received_at FROM event_log "
                    "WHERE seq > :start AND event = :name ORDER BY seq"
                ),
                {"start": start, "name": SEGMENT_ENTERED},
            ).all()
        engage.close()
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        if database is not None:
            database.dispose()
    entries, first_of_trigger = [], {}
    for cause, at in entered:
        if cause in received:
            ms = (time_value(at) - received[cause]).total_seconds() * 1000
            entries.append(ms)
            if cause in live.triggers:
                first_of_trigger.setdefault(cause, ms)
    return Latency(live, entries, list(first_of_trigger.values()), len(first_of_trigger), cpu)


# ------------------------------------------------------------------------------------------------ main


def profile_report(profiler: cProfile.Profile, limit: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats("engage", limit)
    return out.getvalue()


LOADS: dict[str, float] = {}
"""The 1-minute load average as each phase starts: above the core count, other processes were competing
for the CPU, and the figures of that phase are pessimistic."""


def phase(title: str) -> None:
    LOADS[title.split(" ")[0].rstrip(".")] = load = os.getloadavg()[0]
    print(f"{title} (load average {load:.1f})", flush=True)


def timed(what: str, function: Callable[[], Any]) -> tuple[Any, float]:
    print(f"  {what} …", flush=True)
    began = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - began
    print(f"  {what}: {seconds:,.1f} s", flush=True)
    return result, seconds


def main() -> None:  # noqa: PLR0915 - one benchmark, phase after phase
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rate", type=int, default=1_000, help="live calls per second (latency phase)")
    parser.add_argument("--seconds", type=float, default=20, help="how long to send live calls")
    parser.add_argument("--trigger-share", type=float, default=0.05, help="share of live calls that enter")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the replay (slows it down)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = parser.parse_args()
    run_began = time.perf_counter()

    folder = Path(tempfile.mkdtemp(prefix="engage-bench-segments-"))
    root = folder / "workspace"
    init_workspace(root)
    for name, body in GENERATED.items():
        write_segment(root, name, body)
    workspace = Workspace.load(root)
    database_path = Path(workspace.endpoints.database.url.removeprefix("sqlite:///"))
    if not database_path.is_absolute():
        database_path = root / database_path
    now = whole_second_now()
    print(
        f"{args.events:,} storefront events of {args.profiles:,} profiles over {HISTORY.days} days, "
        f"SQLite, {os.cpu_count()} cores; workspace {root}\n"
    )
    try:
        # -- 1. workload ------------------------------------------------------------------------
        phase("1. loading")
        engage = bootstrap(workspace, clock=FrozenClock(now))
        tune_process()  # as `engage worker` and `engage serve` run these consumers (collector, BLAS)
        engine = engage.segments.engine
        segments = list(engine.segments.values())
        print(f"  {len(segments)} segments: {', '.join(engine.segments)}")
        engage.segments.sync()  # definitions recorded on the empty database: the history is real-time work

        def ingest() -> int:
            accepted = 0
            for chunk in storefront_history(args.profiles, args.events, now, args.seed):
                result = engage.ingestor.batch({"batch": chunk}, size=0)
                if result.rejected:
                    raise SystemExit(f"rejected: {result.rejected[:3]}")
                accepted += result.accepted
            return accepted

        accepted, ingest_seconds = timed("ingestor.batch", ingest)
        history_end = engage.log.last_seq()
        profiles_consumer = next(c for c in engage.consumers if c.name == "profiles")
        profiles_run, profiles_seconds = timed(
            "profiles consumer, batches of 500", lambda: replay(engage, profiles_consumer, history_end)
        )
        load_seconds = ingest_seconds + profiles_seconds
        raw_rate, _ = timed(
            "baseline: raw executemany", lambda: measure_raw_insert(database_path, LOAD_CHUNK)
        )
        with engage.database.read() as connection:
            profile_count = connection.execute(text("SELECT count(*) FROM profiles")).scalar_one()

        # -- 2. real-time throughput --------------------------------------------------------------
        phase("2. replay through the segments consumer")
        profiler = cProfile.Profile() if args.profile else None
        segments_run, _ = timed(
            "segments consumer, batches of 500",
            lambda: replay(engage, engage.segments.consumer, history_end, profiler),
        )
        counts = engine_counts(engage)
        members = engine_members(engage)
        counts_changes = count_announcements(engage)
        announced, backlog_seconds = timed("announcements delivered to both consumers", lambda: drain(engage))

        phase("2b. the same history as if live: the clock follows the events")
        clock = engage.segments.consumer.clock
        assert isinstance(clock, FrozenClock)
        forget_segment_work(engage)
        live_run, _ = timed(
            "segments consumer, batches of 500, clock at each batch's newest event",
            lambda: replay(
                engage, engage.segments.consumer, history_end, following=(clock, engage.segments.timer)
            ),
        )
        live_changes = count_announcements(engage)
        clock.now = now
        _, tick_seconds = timed("segment clock at the end of the history", engage.segments.timer.tick)
        live_members = engine_members(engage)
        engage.close()

        # -- 5. backfill (before the SQL, which adds an index of its own) ---------------------------
        phase("5. backfill of one new segment")
        write_segment(root, *BACKFILLED)
        backfill_now = whole_second_now()
        fresh = bootstrap(Workspace.load(root), clock=FrozenClock(backfill_now))
        applied, backfill_seconds = timed("Segments.sync()", fresh.segments.sync)
        backfill = next(a for a in applied if a.segment == BACKFILLED[0])
        backfill_segment = fresh.segments.engine.segments[BACKFILLED[0]]
        manual = fresh.segments.engine.manual
        email_default = fresh.segments.engine.email_consent_default
        fresh.close()

        # -- 3. cron baseline -----------------------------------------------------------------------
        phase("3. cron baseline: every segment by SQL")
        connection = sql_connection(database_path, manual)
        _, index_seconds = timed(
            "CREATE INDEX event_log(event, timestamp) for the SQL",
            lambda: connection.execute("CREATE INDEX bench_event_time ON event_log (event, timestamp)"),
        )
        compiler = SqlSegments(now, email_default, manual)
        runs = [recompute(connection, compiler, segments) for _ in range(2)]
        sql_members, _ = runs[-1]
        sql_seconds = min(sum(seconds.values()) for _, seconds in runs)
        per_segment = {name: min(run[1][name] for run in runs) for name in runs[0][1]}
        backfill_compiler = SqlSegments(backfill_now, email_default, manual)
        began = time.perf_counter()
        backfill_sql = {row[0] for row in connection.execute(backfill_compiler.query(backfill_segment))}
        backfill_sql_seconds = time.perf_counter() - began
        connection.execute("DROP INDEX bench_event_time")
        connection.close()

        # -- 4. latency --------------------------------------------------------------------------------
        phase(f"4. latency: engage serve + engage worker, {args.rate:,} calls/s for {args.seconds:g} s")
        latency = measure_latency(root, args, folder)
        phase("end")
    finally:
        if args.keep:
            print(f"workspace kept: {root}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    # -- report -----------------------------------------------------------------------------------------
    print()
    print("1. workload")
    print(
        f"  {len(segments)} segments, {profile_count:,} profiles, {accepted:,} events "
        f"(log seq 1..{history_end:,})"
    )
    load_rate = accepted / load_seconds
    print(
        f"  loaded in {load_seconds:,.1f} s ({load_rate:,.0f} ev/s): ingestor.batch {ingest_seconds:,.1f} s "
        f"({accepted / ingest_seconds:,.0f} ev/s), profiles consumer {profiles_seconds:,.1f} s"
    )
    print(
        f"  baseline: the same rows with executemany into a copy of event_log: {raw_rate:,.0f} rows/s; "
        f"ratio {load_rate / raw_rate:.0%}"
    )

    print("2. real-time throughput: the history through SegmentsConsumer, deliver() in batches of 500")
    print(
        f"  segments consumer, catching up: {segments_run.per_second:,.0f} ev/s "
        f"({segments_run.events:,} events, "
        f"{segments_run.batches:,} batches, {segments_run.deliver_seconds:,.1f} s, "
        f"{segments_run.per_batch * 1000:.1f} ms per batch){' [under cProfile]' if profiler else ''}"
    )
    print(
        f"  per CPU second of this process: {segments_run.events / segments_run.cpu_seconds:,.0f} ev/s "
        f"(CPU {segments_run.cpu_seconds:,.1f} s of {segments_run.deliver_seconds:,.1f} s)"
    )
    print(
        f"  baseline: profiles consumer on the same batches: {profiles_run.per_second:,.0f} ev/s "
        f"({profiles_run.per_batch * 1000:.1f} ms per batch); "
        f"ratio {segments_run.per_second / profiles_run.per_second:.0%}"
    )
    print(
        "  (reading the log, not included above: "
        f"{segments_run.events / segments_run.read_seconds:,.0f} ev/s; "
        f"then {announced:,} deliveries of the announcements to both consumers in {backlog_seconds:,.1f} s)"
    )

    live_equal = [name for name in members if live_members.get(name, set()) == members[name]]
    print("2b. the same history as if live: the clock at each batch's newest event, then at the end")
    print(
        f"  segments consumer: {live_run.per_second:,.0f} ev/s "
        f"({live_run.per_batch * 1000:.1f} ms per batch), "
        f"{live_changes:,} membership changes announced (after the catch-up replay: {counts_changes:,}); "
        f"ratio to the catch-up replay {live_run.per_second / segments_run.per_second:.0%}"
    )
    print(
        f"  the segment clock between batches: {live_run.clock_seconds:,.1f} s in all "
        f"({live_run.clock_seconds / live_run.batches * 1000:.1f} ms per batch), not counted above"
    )
    print(
        f"  then the segment clock at the history's end: {tick_seconds:,.1f} s; members equal to the "
        f"catch-up replay's in {len(live_equal)}/{len(members)} segments"
    )

    for name in sorted(set(members) - set(live_equal)):
        live_only, catch_up_only = live_members[name] - members[name], members[name] - live_members[name]
        print(
            f"  {name}: {len(live_only)} only live (e.g. {sorted(live_only)[:2]}), "
            f"{len(catch_up_only)} only catching up (e.g. {sorted(catch_up_only)[:2]})"
        )

    cron_ratio = sql_seconds / segments_run.per_batch
    print("3. cron baseline: all segments recomputed with SQL (one query each) after every batch")
    print(
        f"  one full SQL recompute: {sql_seconds:,.2f} s (best of {len(runs)}; with an index on "
        f"event_log(event, timestamp), built in {index_seconds:,.1f} s and not counted)"
    )
    print(f"  engine per batch of 500: {segments_run.per_batch * 1000:.1f} ms; ratio {cron_ratio:,.0f}x")
    print(f"  {'segment':<22} {'SQL s':>7} {'SQL':>8} {'engine':>8}")
    mismatches = []
    for name in per_segment:
        sql_count, engine_count = len(sql_members[name]), counts.get(name, 0)
        flag = "" if sql_count == engine_count and sql_members[name] == members[name] else "  MISMATCH"
        if flag:
            mismatches.append(name)
        print(f"  {name:<22} {per_segment[name]:>7.2f} {sql_count:>8,} {engine_count:>8,}{flag}")
    for name in mismatches:
        only_sql = sorted(sql_members[name] - members[name])
        only_engine = sorted(members[name] - sql_members[name])
        print(
            f"  {name}: {len(only_sql)} only by SQL (e.g. {only_sql[:3]}), "
            f"{len(only_engine)} only by the engine (e.g. {only_engine[:3]})"
        )

    live = latency.live
    print(f"4. latency at {args.rate:,} calls/s: SegmentEntered.received_at - cause's received_at")
    print(
        f"  {live.sent:,} live calls in {live.seconds:.1f} s, {len(live.request_ms):,} requests (request "
        f"p50 {percentile(live.request_ms, 0.5):.1f} ms, p99 {percentile(live.request_ms, 0.99):.1f} ms, "
        f"max {max(live.request_ms):.0f} ms); {len(live.triggers):,} triggers, "
        f"{latency.triggered:,} of them entered"
    )
    lat = latency.entries
    if lat:
        print(
            f"  {len(lat):,} SegmentEntered caused by live calls: p50 {percentile(lat, 0.5):.1f} ms, "
            f"p95 {percentile(lat, 0.95):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, max {max(lat):.1f} ms"
        )
    trig = latency.trigger_entries
    if trig:
        print(
            f"  triggers (first entry each): p50 {percentile(trig, 0.5):.1f} ms, "
            f"p95 {percentile(trig, 0.95):.1f} ms, p99 {percentile(trig, 0.99):.1f} ms, "
            f"max {max(trig):.1f} ms"
        )
    busy = ", ".join(f"{share:.0%}" for share in latency.cpu)
    print(f"  CPU busy per engage process (serve, worker): {busy}")
    p99 = percentile(lat, 0.99) if lat else float("inf")
    print(
        f"  baseline: the cron's best case is one full recompute, {sql_seconds * 1000:,.0f} ms; "
        f"ratio {sql_seconds * 1000 / p99:,.0f}x"
    )

    print(f"5. backfill: new segment {BACKFILLED[0]} (ProductViewed, category home, 30d, 3 products)")
    backfill_match = backfill.members == len(backfill_sql)
    print(
        f"  Segments.sync() from a fresh bootstrap: {backfill_seconds:,.1f} s, {backfill.members:,} members "
        f"({backfill.action}, {backfill.entered:,} entered)"
    )
    print(
        f"  baseline: its SQL query: {backfill_sql_seconds:,.2f} s, {len(backfill_sql):,} members"
        f"{'' if backfill_match else '  MISMATCH'}; ratio {backfill_seconds / backfill_sql_seconds:,.1f}x"
    )

    total = time.perf_counter() - run_began
    print(
        f"\nload average as each phase started ({os.cpu_count()} cores; other work on the machine counts): "
        + ", ".join(f"{name} {load:.1f}" for name, load in LOADS.items())
    )
    rows = [
        ("1 loading (ingest + profiles)", f"{load_seconds:,.1f} s", "report only", None),
        (
            "2 segments consumer, catch-up",
            f"{segments_run.per_second:,.0f} ev/s",
            f">= {TARGET_THROUGHPUT:,} ev/s",
            segments_run.per_second >= TARGET_THROUGHPUT,
        ),
        ("2b segments consumer, live clock", f"{live_run.per_second:,.0f} ev/s", "report only", None),
        (
            "2b members live = catch-up",
            f"{len(live_equal)}/{len(members)} equal",
            "all equal",
            len(live_equal) == len(members),
        ),
        (
            "3 cron / engine per batch",
            f"{cron_ratio:,.0f}x",
            f">= {TARGET_CRON_RATIO}x",
            cron_ratio >= TARGET_CRON_RATIO,
        ),
        (
            "3 member counts SQL = engine",
            f"{len(per_segment) - len(mismatches)}/{len(per_segment)} equal",
            "all equal",
            not mismatches,
        ),
        ("4 latency p99", f"{p99:,.1f} ms", f"< {TARGET_P99_MS} ms", p99 < TARGET_P99_MS),
        ("5 backfill of one segment", f"{backfill_seconds:,.1f} s", "report only", None),
        (
            "5 backfill members = SQL",
            f"{backfill.members:,} / {len(backfill_sql):,}",
            "equal",
            backfill_match,
        ),
    ]
    print(f"\n{'figure':<32} {'value':>16}  {'target':<16} result")
    for figure, value, target, ok in rows:
        result = "-" if ok is None else "PASS" if ok else "FAIL"
        print(f"{figure:<32} {value:>16}  {target:<16} {result}")
    print(f"\nwhole run: {total / 60:,.1f} min")
    if profiler is not None:
        print("\ncProfile of the replay through the segments consumer\n")
        print(profile_report(profiler))


if __name__ == "__main__":
    main()
