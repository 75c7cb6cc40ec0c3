"""`engage recs train|recommend|versions|evaluate`: the recommender's models, answers and measures."""

from __future__ import annotations

import contextlib
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from engage.cli._context import open_engage
from engage.cli._options import WorkspaceOption
from engage.errors import EngageError
from engage.recommend.evaluation import (
    evaluate,
    generated_interactions,
    movielens_100k,
    table_text,
    write_report,
)
from engage.recommend.service import Filters, NoModelError, Recommendations
from engage.recommend.training import MODELS, evaluation_frame

__all__ = ["register"]

recs_app = typer.Typer(
    help="Recommendations: train, evaluate, look at what a shopper would get.", no_args_is_help=True
)


@recs_app.command("train")
def train(workspace: Path | None = WorkspaceOption) -> None:
    """Train a new model version from the interactions so far and make it the one served."""
    with contextlib.closing(open_engage(workspace)) as engage:
        version = engage.recommend.train()
    manifest = version.manifest
    typer.echo(
        f"trained {_served(manifest)} {version.version}: {manifest['users']:,} users, {manifest['items']:,} "
        f"items, {manifest['interactions']:,} interactions in {manifest['fit_seconds']:.1f} s"
    )


def _served(manifest: dict[str, Any]) -> str:
    """The model a version serves: `auto` names what its validation chose."""
    choice = manifest.get("choice")
    if not choice:
        return str(manifest["model"])
    params = ", ".join(f"{key}={value}" for key, value in choice["params"].items() if key != "parts")
    return f"auto: {choice['model']}" + (f" ({params})" if params else "")


@recs_app.command("recommend")
def recommend(
    user: str = typer.Argument(..., help="A user id or anonymous id."),
    n: int = typer.Option(10, "--n", min=1, max=100, help="How many items."),
    category: list[str] = typer.Option([], "--category", help="Only this category (repeatable)."),
    in_stock: bool = typer.Option(False, "--in-stock", help="Only products in stock."),
    exclude_purchased: bool = typer.Option(False, "--exclude-purchased", help="Leave out what they bought."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """What `for_you` gives a shopper now, with the reason for each item (a preview: not logged as shown)."""
    filters = Filters(categories=tuple(category), in_stock=in_stock, exclude_purchased=exclude_purchased)
    with contextlib.closing(open_engage(workspace)) as engage:
        try:
            answer = engage.recommend.recommender.for_you(user, n, filters, channel=None)
        except NoModelError as exc:
            raise EngageError(str(exc)) from exc
        names = {item.item_id: engage.recommend.catalog.get(item.item_id) for item in answer.items}
    _print(answer, {item: product.name if product else "" for item, product in names.items()})


@recs_app.command("versions")
def versions(workspace: Path | None = WorkspaceOption) -> None:
    """Every saved model version, oldest first; the last is served."""
    with contextlib.closing(open_engage(workspace)) as engage:
        manifests = engage.recommend.store.manifests()
    if not manifests:
        raise EngageError("no model versions yet: run `engage recs train`")
    table = Table("version", "model", "users", "items", "interactions", "fit s", title_justify="left")
    for manifest in manifests:
        table.add_row(
            manifest["version"], _served(manifest), f"{manifest['users']:,}", f"{manifest['items']:,}",
            f"{manifest['interactions']:,}", f"{manifest['fit_seconds']:.1f}",
        )  # fmt: skip
    Console().print(table)


class Dataset(StrEnum):
    workspace = "workspace"
    generated = "generated"
    movielens = "movielens"


class Protocol(StrEnum):
    personalize = "personalize"
    leave_last_out = "leave-last-out"


@recs_app.command("evaluate")
def evaluate_command(
    dataset: Dataset = typer.Option(
        Dataset.workspace, "--dataset", help="Whose interactions to evaluate on."
    ),
    protocol: list[Protocol] = typer.Option(
        [Protocol.personalize, Protocol.leave_last_out], "--protocol", help="Split (repeatable)."
    ),
    model: list[str] = typer.Option([], "--model", help="Only these models (repeatable; default: all)."),
    seed: int = typer.Option(0, "--seed"),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Every model (and the baselines) on one split, side by side: Personalize's metrics, a table, JSON and
    a chart under var/evaluations/. MovieLens-100K is read from the recbole wheel, downloaded once into
    var/cache/ (its licence forbids redistribution: it is never committed)."""
    unknown = sorted(set(model) - set(MODELS))
    if unknown:
        raise EngageError(f"unknown model {', '.join(unknown)}; the models are {', '.join(MODELS)}")
    factories = [MODELS[name] for name in (model or list(MODELS))]
    with contextlib.closing(open_engage(workspace)) as engage:
        var = engage.workspace.var_dir
        if dataset is Dataset.workspace:
            interactions = evaluation_frame(engage.database)
        elif dataset is Dataset.generated:
            interactions = generated_interactions(seed=seed)
        else:
            interactions = movielens_100k(var / "cache")
    for split in protocol:
        evaluation = evaluate(interactions, factories, split.value, seed=seed, name=dataset.value)
        files = write_report(evaluation, var / "evaluations")
        typer.echo(table_text(evaluation))
        typer.echo(f"written: {files.table}, {files.json}, {files.chart}")


def _print(answer: Recommendations, names: dict[str, str]) -> None:
    table = Table("#", "item", "name", "score", "reason", title=f"{answer.use_case} ({answer.model_version})")
    for rank, item in enumerate(answer.items, 1):
        score = "" if item.score is None else f"{item.score:.3f}"
        table.add_row(str(rank), item.item_id, names.get(item.item_id, ""), score, item.reason)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(recs_app, name="recs")
