"""`engage bot setup|train|test|actions|serve`: Rasa's environment, the bot's model and its evaluation,
engage's custom actions, and Rasa itself in the foreground (for a Procfile)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import typer

from engage.chat.rasa.environment import CONSTRAINTS_FILE, RASA_VERSION, rasa_environment, setup_environment
from engage.chat.rasa.evaluation import MIN_INTENT_F1, RESULTS_DIR, evaluate_bot
from engage.chat.rasa.processes import RasaServer
from engage.chat.rasa.training import TRAIN_LOG, Trained, current_model, ensure_model
from engage.cli._context import load_workspace, open_engage, setup_logging
from engage.cli._options import WorkspaceOption
from engage.errors import EngageError, WorkspaceError
from engage.web.widget import fetch_widget
from engage.workspace import example_workspace, find_workspace

__all__ = ["register"]

bot_app = typer.Typer(
    help="The chatbot: its Rasa environment, its model and evaluation, engage's custom actions.",
    no_args_is_help=True,
)
FoldsOption = typer.Option(5, "--folds", min=2, max=20, help="Folds of the NLU cross-validation.")


@bot_app.command("setup")
def setup(workspace: Path | None = WorkspaceOption) -> None:
    """Create .venv-rasa: Python 3.10 with rasa==3.6.21 under bot/constraints.txt (kept when complete), and
    fetch the `/chat` page's widget from the npm registry."""
    constraints = _constraints(workspace)
    environment = rasa_environment()
    if setup_environment(environment, constraints, echo=typer.echo):
        typer.echo(f"Rasa {RASA_VERSION} is set up in {environment.path}")
    else:
        typer.echo(f"Rasa {RASA_VERSION} in {environment.path} is up to date")
    try:
        typer.echo(f"chat widget: {fetch_widget()}")
    except EngageError as exc:  # the bot works without the page; say what is missing
        typer.echo(f"warning: {exc}; /chat will say the widget is not installed", err=True)


@bot_app.command("train")
def train(
    workspace: Path | None = WorkspaceOption,
    force: bool = typer.Option(False, "--force", help="Train even when the model is up to date."),
) -> None:
    """Train the bot's model unless one exists for bot/ and the catalog as they are now."""
    root = find_workspace(workspace)
    trained = _model(root, force)
    if not trained.trained:
        typer.echo(f"up to date: {trained.path.relative_to(root)}")


@bot_app.command("test")
def test(workspace: Path | None = WorkspaceOption, folds: int = FoldsOption) -> None:
    """Evaluate the bot with Rasa: NLU cross-validation and the test stories. Exit 1 when the intent macro
    F1 is below 0.90 or a story fails."""
    root = find_workspace(workspace)
    model = _model(root, force=False)
    typer.echo(f"evaluating: {folds}-fold NLU cross-validation, then the test stories (a few minutes)")
    scores = evaluate_bot(root, model.path, folds=folds)
    for line in scores.lines():
        typer.echo(line)
    typer.echo(f"Rasa's reports: {RESULTS_DIR}/")
    if not scores.passed:
        failed = scores.stories_total - scores.stories_passed
        reasons = (
            [f"intent macro F1 below {MIN_INTENT_F1:.2f}"] if scores.intent_macro_f1 < MIN_INTENT_F1 else []
        )
        reasons += [f"{failed} of {scores.stories_total} stories failed"] if failed else []
        raise EngageError(f"the bot fails its targets: {'; '.join(reasons)}")


@bot_app.command("actions")
def actions(
    workspace: Path | None = WorkspaceOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(5055, "--port", help="Port to listen on."),
) -> None:
    """Serve engage's custom actions to Rasa (rasa-sdk's action server) until Ctrl-C or SIGTERM."""
    from engage.chat.action_server import serve

    setup_logging()
    with contextlib.closing(open_engage(workspace)) as engage:
        serve(engage, host, port)


@bot_app.command("serve")
def serve(
    workspace: Path | None = WorkspaceOption,
    host: str | None = typer.Option(None, "--host", help="Address to bind. Default: rasa.url's host."),
    port: int | None = typer.Option(None, "--port", help="Port to listen on. Default: rasa.url's port."),
) -> None:
    """Run Rasa in the foreground, as `engage run` starts it (the current model, trained first if missing;
    the endpoints file; bot/credentials.yml; the HTTP API behind rasa.token). For a Procfile or a service
    manager: the process becomes Rasa, so signals reach it directly. The action server runs apart
    (`engage bot actions`)."""
    loaded = load_workspace(workspace)
    model = _model(loaded.root, force=False)
    rasa = RasaServer(loaded, model.path, host=host, port=port, environment=rasa_environment())
    os.chdir(rasa.cwd)
    os.execve(rasa.command[0], rasa.command, rasa.environ or dict(os.environ))


def register(app: typer.Typer) -> None:
    app.add_typer(bot_app, name="bot")


def _model(root: Path, force: bool) -> Trained:
    """The current model, trained first (saying so) when missing or forced."""
    if not force and current_model(root).is_file():
        return ensure_model(root)
    environment = rasa_environment().require()
    typer.echo(f"training the bot (log: {TRAIN_LOG})")
    trained = ensure_model(root, environment, force=force)
    typer.echo(f"trained {trained.path.relative_to(root)} in {trained.seconds:.1f} s")
    return trained


def _constraints(explicit: Path | None) -> Path:
    """The workspace's bot/constraints.txt, else the one shipped with engage (outside any workspace)."""
    try:
        root = find_workspace(explicit)
    except WorkspaceError:
        if explicit is not None:
            raise
        root = example_workspace()
    found = root / CONSTRAINTS_FILE
    return found if found.is_file() else example_workspace() / CONSTRAINTS_FILE
