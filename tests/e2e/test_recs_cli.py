"""`engage recs train|recommend|versions` through the real CLI, on the shipped example workspace (its demo
catalog) with a few shoppers' events ingested and delivered to the real consumers."""

from __future__ import annotations

import json

from engage.bootstrap import bootstrap
from engage.cli.main import main
from engage.workspace import Workspace
from tests.conftest import MakeWorkspace
from tests.helpers import send, track


def run(workspace: Workspace, *args: str) -> int:
    return main(["recs", *args, "-w", str(workspace.root)])


def test_train_then_recommend_and_list_versions(make_workspace: MakeWorkspace, capsys) -> None:
    workspace = make_workspace()
    assert run(workspace, "recommend", "u1") == 1
    assert "no recommendation model yet: run `engage recs train`" in capsys.readouterr().err
    engage = bootstrap(workspace)
    try:
        books = [product.id for product in engage.recommend.catalog if product.category == "books"][:6]
        send(engage, *(track(f"u{n}", "ProductViewed", product_id=item) for n in range(3) for item in books))
    finally:
        engage.close()
    assert run(workspace, "train") == 0
    out = capsys.readouterr().out
    assert out.startswith("trained auto: popularity ") and "3 users" in out and "18 interactions" in out
    assert run(workspace, "recommend", "u1", "--n", "3", "--category", "books") == 0
    out = capsys.readouterr().out
    assert out.count("books-") == 3 and "because you viewed" in out
    assert run(workspace, "versions") == 0
    assert "popularity" in capsys.readouterr().out


def test_evaluate_writes_the_table_json_and_chart(make_workspace: MakeWorkspace, capsys) -> None:
    workspace = make_workspace()
    args = ("evaluate", "--dataset", "generated", "--protocol", "personalize")
    assert run(workspace, *args, "--model", "popularity", "--model", "itemknn") == 0
    out = capsys.readouterr().out
    assert "generated, personalize protocol" in out and "itemknn" in out
    folder = workspace.root / "var" / "evaluations"
    report = json.loads((folder / "generated-personalize.json").read_text())
    ndcg = {
        row["model"]: row["metrics"]["normalized_discounted_cumulative_gain_at_10"]
        for row in report["results"]
    }
    assert set(ndcg) == {"popularity", "itemknn"} and ndcg["itemknn"] > ndcg["popularity"]
    assert (folder / "generated-personalize.png").read_bytes().startswith(b"\x89PNG")
    assert run(workspace, *args, "--model", "deep") == 1
    models = "popularity, itemknn, ease, als, bpr, auto"
    assert f"unknown model deep; the models are {models}" in capsys.readouterr().err
