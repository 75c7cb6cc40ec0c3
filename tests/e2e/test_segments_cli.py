"""`engage segments list|show|preview|export` through the real CLI, on SQLite and PostgreSQL.

Memberships come about as they do for users: segment files in the workspace, events ingested and
delivered to the real consumers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from engage.bootstrap import bootstrap
from engage.cli.main import main
from engage.store.models import SegmentDefinition, SegmentMembership
from engage.workspace import Workspace
from tests.conftest import MakeWorkspace
from tests.helpers import Clock, identify, send, track, write_segments

SEGMENTS = {
    "buyers": """\
        description: Customers who completed an order.
        condition:
          performed: OrderCompleted
        """,
    "emailable": """\
        description: Profiles with an email address.
        condition:
          trait: email
          exists: true
        """,
    "no_orders": """\
        description: Visitors who never ordered.
        condition:
          not_performed: OrderCompleted
        """,
}
# Whole seconds: timestamps print without fractions, and well in the past of the real clock the
# CLI evaluates previews with.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@pytest.fixture
def shop(make_workspace: MakeWorkspace, database_url: str) -> Workspace:
    """u1 (email, phone) and u3 ordered an hour after everyone arrived; u2 (email) and the anonymous
    a9 never did."""
    workspace = make_workspace(database_url=database_url)
    write_segments(workspace.root, SEGMENTS)
    clock = Clock(START)
    engage = bootstrap(workspace, clock=clock)
    try:
        engage.segments.sync()
        send(
            engage,
            identify("u1", email="u1@shop.example", phone="(415) 555-2671"),
            identify("u2", email="u2@shop.example"),
            track("u3", "ProductViewed", sku="p1"),
            {"type": "track", "anonymousId": "a9", "event": "ProductViewed"},
        )
        clock.advance(hours=1)
        send(engage, track("u1", "OrderCompleted", revenue=150), track("u3", "OrderCompleted", revenue=50))
    finally:
        engage.close()
    return workspace


def run(workspace: Workspace, *args: str) -> int:
    return main(["segments", *args, "-w", str(workspace.root)])


def table_rows(out: str) -> dict[str, list[str]]:
    """The cells of each row of a rich table, by the first cell (rows whose first cell is empty continue
    the one before and are left out)."""
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0]:
            rows[cells[0]] = cells
    return rows


def test_list_shows_every_segment_with_its_size(shop: Workspace, capsys) -> None:
    assert run(shop, "list") == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows["buyers"][:3] == ["buyers", "2", "active"]
    assert rows["emailable"][:3] == ["emailable", "2", "active"]
    assert rows["no_orders"][:3] == ["no_orders", "2", "active"]
    assert rows["buyers"][3].startswith("Customers who")


def test_list_marks_retired_and_not_yet_applied_segments(shop: Workspace, capsys) -> None:
    write_segments(shop.root, {name: body for name, body in SEGMENTS.items() if name != "no_orders"})
    engage = bootstrap(shop, clock=Clock(START + timedelta(days=1)))
    engage.segments.sync()  # the worker starting: no_orders is retired, its members let go
    engage.close()
    edited = SEGMENTS["buyers"].replace("performed: OrderCompleted", "performed: CheckoutStarted")
    write_segments(
        shop.root,
        {
            "buyers": edited,
            "emailable": SEGMENTS["emailable"],
            "browsers": "condition: {performed: ProductViewed}\n",
        },
    )
    assert run(shop, "list") == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert rows["no_orders"][:3] == ["no_orders", "0", f"retired {START + timedelta(days=1):%Y-%m-%d}"]
    assert rows["no_orders"][3].startswith("Visitors who")  # as it was last applied
    assert rows["buyers"][:3] == ["buyers", "2", "edited"]
    assert rows["browsers"][:3] == ["browsers", "0", "new"]
    assert rows["emailable"][:3] == ["emailable", "2", "active"]
    assert "the worker applies segment files when it starts" in out


def test_show_prints_the_definition_and_the_latest_entries_and_exits(shop: Workspace, capsys) -> None:
    assert run(shop, "show", "no_orders") == 0
    out = capsys.readouterr().out
    assert out.startswith("no_orders: 2 members, active\n")
    assert "segments/no_orders.yml:\nname: no_orders\ndescription: Visitors who never ordered." in out
    changes = [line.split() for line in out.splitlines() if re.match(r"  \d{4}-", line)]
    later, earlier = f"{START + timedelta(hours=1):%H:%M:%S}", f"{START:%H:%M:%S}"
    moves = [(time, verb, user) for _, time, verb, user, _ in changes]
    # Latest first: the two exits an hour after the four entries.
    assert sorted(moves[:2]) == [(later, "exited", "u1"), (later, "exited", "u3")]
    assert sorted(moves[2:]) == [
        (earlier, "entered", "-"),  # the anonymous visitor
        (earlier, "entered", "u1"),
        (earlier, "entered", "u2"),
        (earlier, "entered", "u3"),
    ]
    assert all(len(profile_id) == 32 for *_, profile_id in changes)


def test_show_an_unknown_segment_lists_the_known_ones(shop: Workspace, capsys) -> None:
    assert run(shop, "show", "byers") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown segment 'byers'; known segments: buyers, emailable, no_orders"]


def _draft(workspace: Workspace, name: str, body: str, folder: str = "drafts") -> Path:
    path = workspace.root / folder / f"{name}.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"name: {name}\n{body}", encoding="utf-8")
    return path


def _counts(workspace: Workspace) -> tuple[int, int]:
    """How many membership rows and applied definitions the database holds."""
    engage = bootstrap(workspace)
    with engage.database.read() as connection:
        memberships = connection.execute(select(func.count()).select_from(SegmentMembership)).scalar_one()
        definitions = connection.execute(select(func.count()).select_from(SegmentDefinition)).scalar_one()
    engage.close()
    return memberships, definitions


def test_preview_counts_a_draft_now_and_saves_nothing(shop: Workspace, capsys) -> None:
    before = _counts(shop)
    draft = _draft(shop, "big_spenders", "condition: {performed: OrderCompleted, sum: revenue, gte: 100}\n")
    assert run(shop, "preview", str(draft)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "drafts/big_spenders.yml: 1 member now (nothing saved)"
    assert out[1] == "members (user id, profile id):"
    assert out[2].split()[0] == "u1" and len(out[2].split()[1]) == 32
    assert _counts(shop) == before

    reachable = "condition: {all: [{in_segment: buyers}, {in_segment: emailable}]}\n"
    assert run(shop, "preview", str(_draft(shop, "reachable_buyers", reachable))) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "drafts/reachable_buyers.yml: 1 member now (nothing saved)"
    assert out[2].split()[0] == "u1"


def test_preview_of_an_edit_compares_with_the_live_segment(shop: Workspace, capsys) -> None:
    edit = "condition: {performed: OrderCompleted, where: {revenue: {lt: 100}}}\n"
    assert run(shop, "preview", str(_draft(shop, "buyers", edit))) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        "drafts/buyers.yml: 1 member now (nothing saved)",
        "live segment buyers: 2 members; with this file 0 would enter and 1 would exit",
    ]
    assert out[3].split()[0] == "u3"
    anyone = "condition: {not_performed: Never}\n"
    assert run(shop, "preview", str(_draft(shop, "everyone", anyone))) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "drafts/everyone.yml: 4 members now (nothing saved)"
    assert [line.split()[0] for line in out[2:]] == ["u1", "u2", "u3", "-"]  # by user id, anonymous last


def test_preview_reports_each_problem_at_its_line(shop: Workspace, capsys) -> None:
    body = (
        "condition:\n  all:\n    - in_segment: nope\n    - performed: OrderCompleted\n      within: 3 days\n"
    )
    assert run(shop, "preview", str(_draft(shop, "broken", body))) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "error: drafts/broken.yml:4: condition.all[0].in_segment: unknown segment 'nope'; "
        "known segments: broken, buyers, emailable, no_orders"
    )
    assert err[1].startswith("error: drafts/broken.yml:6: condition.all[1].within: ")
    assert len(err) == 2
    misnamed = _draft(shop, "misnamed", "condition: {performed: OrderCompleted}\n")
    misnamed.rename(misnamed.with_name("other.yml"))
    assert run(shop, "preview", str(misnamed.with_name("other.yml"))) == 1
    assert "error: drafts/other.yml:1: name: 'misnamed' must be the file's name" in capsys.readouterr().err
    assert run(shop, "preview", str(shop.root / "drafts" / "missing.yml")) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: drafts/missing.yml: cannot read")


def test_export_writes_the_members_with_their_contacts(
    shop: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    output = tmp_path / "out" / "buyers.parquet"
    assert run(shop, "export", "buyers", "--format", "parquet", "--output", str(output)) == 0
    assert capsys.readouterr().out == f"wrote 2 members of buyers to {output}\n"
    frame = pd.read_parquet(output).sort_values("user_id")
    assert list(frame.columns) == ["profile_id", "user_id", "entered_at", "email", "phone"]
    assert frame["user_id"].tolist() == ["u1", "u3"]
    assert frame["email"].tolist()[0] == "u1@shop.example" and pd.isna(frame["email"].tolist()[1])
    assert frame["phone"].tolist()[0] == "+14155552671"
    assert (frame["entered_at"] == pd.Timestamp(START + timedelta(hours=1))).all()
    assert frame["profile_id"].str.len().eq(32).all()

    monkeypatch.chdir(tmp_path)
    assert run(shop, "export", "emailable") == 0
    written = tmp_path / "emailable.csv"
    assert capsys.readouterr().out == f"wrote 2 members of emailable to {written}\n"
    frame = pd.read_csv(written)
    assert sorted(frame["email"]) == ["u1@shop.example", "u2@shop.example"]
    assert pd.to_datetime(frame["entered_at"]).eq(pd.Timestamp(START)).all()

    assert run(shop, "export", "nobody") == 1
    assert "unknown segment 'nobody'; known segments: buyers" in capsys.readouterr().err
