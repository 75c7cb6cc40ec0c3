"""What operators and marketers touch: `engage journeys check|list|stats|simulate|reload`, `engage
campaigns run --now`, and `GET /v1/journeys`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from engage.cli.main import main
from engage.demo.server import LocalServer
from tests.helpers import Bearer, api_token, track
from tests.journeys.conftest import Shop, customer

Run = Callable[..., tuple[int, list[str], list[str]]]

CALLS = [
    {"type": "identify", "userId": "ann", "timestamp": "2026-06-01T15:00:00Z",
     "traits": {"email": "ann@example.com", "first_name": "Ann", "timezone": "America/New_York"}},
    {"type": "track", "userId": "ann", "event": "ProductAdded", "timestamp": "2026-06-01T15:05:00Z",
     "properties": {"cart_id": "c-1", "product_id": "1"}},
    {"type": "identify", "userId": "bob", "timestamp": "2026-06-01T15:00:00Z",
     "traits": {"email": "bob@example.com"}},
    {"type": "track", "userId": "bob", "event": "ProductAdded", "timestamp": "2026-06-01T15:10:00Z",
     "properties": {"cart_id": "c-2", "product_id": "2"}},
    {"type": "track", "userId": "bob", "event": "OrderCompleted", "timestamp": "2026-06-01T15:40:00Z",
     "properties": {"cart_id": "c-2", "order_id": "o-2"}},
    {"type": "identify", "userId": "cy", "timestamp": "2026-06-01T03:00:00Z",
     "traits": {"email": "cy@example.com", "phone": "+33612345678", "timezone": "Europe/Paris"},
     "context": {"consent": {"categoryPreferences": {"sms": True}}}},
    {"type": "track", "userId": "cy", "event": "ProductAdded", "timestamp": "2026-06-01T19:30:00Z",
     "properties": {"cart_id": "c-3", "product_id": "3"}},
]  # fmt: skip


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, list[str], list[str]]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out.splitlines(), err.splitlines()

    return run


def test_simulate_prints_what_would_be_sent_when_and_why_instances_ended(
    run: Run, shop: Shop, tmp_path: Path
) -> None:
    shop.shipped("abandoned_cart")
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(call) + "\n" for call in CALLS))
    code, out, err = run(
        "journeys", "simulate", "abandoned_cart", "--events", str(events), "-w", str(shop.root)
    )
    assert code == 0, err
    assert out[0] == "abandoned_cart: 7 calls simulated, nothing sent"
    assert "2026-06-01 15:05  ann  entered (c-1) on ProductAdded" in out
    assert "2026-06-01 15:40  bob  exited: exit_on OrderCompleted" in out
    assert "2026-06-01 16:05  ann  step 6: email/abandoned_cart to ann@example.com" in out
    # 21:30 in Paris is in quiet hours: the SMS waits for 09:00 there.
    assert (
        "2026-06-01 20:30  cy   step 3: sms/abandoned_cart to +33612345678, held until 2026-06-02 07:00 UTC"
        in out
    )
    assert "2026-06-02 16:05  ann  step 8: email/cart_reminder to ann@example.com" in out
    assert out[-1] == "3 entered, 4 messages would be sent; ended: completed 2, exit_on OrderCompleted 1"
    assert shop.messages() == [] and shop.instances("abandoned_cart") == []  # nothing in the real database


def test_simulate_names_each_bad_line(run: Run, shop: Shop, tmp_path: Path) -> None:
    shop.shipped("abandoned_cart")
    events = tmp_path / "events.jsonl"
    lines = [
        json.dumps(CALLS[0]),
        json.dumps({**CALLS[1], "timestamp": None}),
        "{not json",
        json.dumps({**CALLS[1], "event": ""}),
    ]
    events.write_text("\n".join(lines) + "\n")
    code, out, err = run(
        "journeys", "simulate", "abandoned_cart", "--events", str(events), "-w", str(shop.root)
    )
    assert code == 1 and out == []
    assert err[0] == "error: events.jsonl:2: timestamp: required, each call happens at its own time"
    assert err[1].startswith("error: events.jsonl:3: not JSON")
    assert err[2].startswith("error: events.jsonl:4: event:")


def test_check_points_at_the_line_of_each_problem(run: Run, shop: Shop) -> None:
    (shop.root / "journeys" / "broken.yml").write_text(
        """name: broken
trigger:
  event: ProductAded
re_entry: sometimes
steps:
  - wait: 1hour
  - send:
      channel: email
      template: nope
  - branch:
      - when:
          in_segment: nobody
        steps: []
  - exit
  - send: {channel: email, template: welcome}
"""
    )
    (shop.root / "journeys" / "waits.yml").write_text(
        """name: waits
trigger:
  event: ProductAdded
key: properties.cart_id
exit_on:
  - event: OrderCompleted
    match: [cart_id]
steps:
  - wait_for:
      event: OrderCompleted
      match: [cart_id]
      timeout: 1d
"""
    )
    code, out, err = run("journeys", "check", "-w", str(shop.root))
    assert code == 1
    assert out == [
        "journeys/broken.yml:3: trigger.event: unknown event 'ProductAded': no storefront, channel or "
        "segment names it (did you mean ProductAdded?)",
        "journeys/broken.yml:4: re_entry: expected never, always or `after: DURATION` (e.g. after: 30d), got "
        "'sometimes'",
        "journeys/broken.yml:6: steps[0].wait: unknown unit 'hour' in duration '1hour': write a number and a "
        "unit (w, d, h, m, s), e.g. 30d, 1h, 1d12h",
        "journeys/broken.yml:9: steps[1].send.template: no template email/nope in templates/",
        "journeys/broken.yml:12: steps[2].branch[0].when.in_segment: no segment 'nobody' in segments/ "
        "(found: affinity_apparel, affinity_books, affinity_electronics, affinity_outdoors, cart_abandoners, "
        "email_users, high_value, lapsed_customers, new_signups, recent_purchasers, sms_opted_in, "
        "users_with_cart)",
        "journeys/broken.yml:15: steps[4]: unreachable: it comes after an exit",
        "journeys/waits.yml:9: steps[0].wait_for: can never match: every OrderCompleted it waits for ends "
        "the journey first (exit_on)",
    ]
    assert err == ["error: 7 problems in 2 files"]


def test_list_stats_reload_and_a_campaign_run_by_hand(run: Run, shop: Shop) -> None:
    shop.shipped("abandoned_cart", "weekly_picks")
    shop.send(customer("ann"), customer("bob"), track("ann", "ProductAdded", cart_id="c1"))
    root = str(shop.root)
    code, out, _ = run("journeys", "list", "-w", root)
    assert code == 0
    assert out[0].split() == ["NAME", "KIND", "STARTS", "ACTIVE", "ENTERED", "VERSION"]
    assert out[1].split()[:5] == ["abandoned_cart", "journey", "ProductAdded", "1", "1"]
    assert out[2].split()[:10] == [
        "weekly_picks",
        "campaign",
        "0",
        "10",
        "*",
        "*",
        "mon",
        "to",
        "email_users",
        "-",
    ]
    assert "in each customer's time zone" in out[2]

    code, out, _ = run("campaigns", "run", "weekly_picks", "--now", "-w", root)
    assert code == 0 and out[0].startswith("weekly_picks: 2 in the audience, ")

    code, out, _ = run("journeys", "stats", "abandoned_cart", "-w", root)
    assert out[:4] == [
        f"abandoned_cart (journey, version {shop.instances('abandoned_cart')[0]['version'][:8]})",
        "entered 1, running 1",
        "where they are:",
        f"  step 0   {'wait 1h':<44} {1:>7}",
    ]
    code, out, _ = run("journeys", "stats", "weekly_picks", "--json", "-w", root)
    stats = json.loads("\n".join(out))
    assert stats["kind"] == "campaign" and stats["runs"][0]["audience"] == 2

    path = shop.root / "journeys" / "abandoned_cart.yml"
    path.write_text(path.read_text().replace("wait: 1h", "wait: 2h"))
    code, out, _ = run("journeys", "reload", "-w", root)
    assert (code, out) == (0, [f"abandoned_cart: changed (version {out[0][-9:-1]})", "1 unchanged"])
    assert run("journeys", "stats", "nothing", "-w", root)[2] == [
        "error: no journey or campaign named 'nothing' (known: abandoned_cart, weekly_picks)"
    ]
    assert run("campaigns", "run", "weekly_picks", "-w", root)[0] == 1


def test_the_http_api_lists_journeys_and_their_stats(shop: Shop) -> None:
    shop.shipped("abandoned_cart", "weekly_picks")
    shop.send(customer("ann"), track("ann", "ProductAdded", cart_id="c1"))
    key = shop.engage.workspace.endpoints.ingest.write_keys[0]
    reader = Bearer(api_token(shop.engage, "journeys:read"))
    with LocalServer(shop.engage) as server:
        assert requests.get(f"{server.url}/v1/journeys", timeout=30).status_code == 401
        assert requests.get(f"{server.url}/v1/journeys", auth=(key, ""), timeout=30).status_code == 401
        listed = requests.get(f"{server.url}/v1/journeys", auth=reader, timeout=30).json()["journeys"]
        assert [(j["name"], j["kind"]) for j in listed] == [
            ("abandoned_cart", "journey"),
            ("weekly_picks", "campaign"),
        ]
        assert listed[0]["active"] == 1 and listed[1]["next_run"].endswith("+14:00")
        stats = requests.get(f"{server.url}/v1/journeys/abandoned_cart/stats", auth=reader, timeout=30)
        assert stats.status_code == 200 and stats.json()["waiting"] == [
            {"step": 0, "what": "wait 1h", "instances": 1}
        ]
        missing = requests.get(f"{server.url}/v1/journeys/nope/stats", auth=reader, timeout=30)
        assert missing.status_code == 404
