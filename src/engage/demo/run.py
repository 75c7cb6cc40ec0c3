"""`engage demo`: a simulated shop through the whole loop, on the embedded default.

1. A fresh workspace (SQLite, the in-process stream, the outbox for email; SMS through a local Twilio on
   127.0.0.1, so texts and their signed webhooks take the real `twilio` library's path) with the demo
   catalog, and the real Rasa bot starting beside it (its model cached by content hash in `var/`).
2. Shoppers with personas and about 90 days of storefront history, imported before any journey exists;
   the segments computed from it and the recommender trained on it.
3. A live period on an accelerated clock (`engage.demo.live`): the shipped journeys and the weekly
   campaign fire, shoppers open, click, reply, chat and opt out, and halfway through the recommender
   retrains on what came back.
4. An offline evaluation of the recommender's models on the shop's interactions (what the dashboard's
   recommendations page shows), the summary (`engage.demo.summary`, read from the database) and the HTML
   report.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from engage.bootstrap import bootstrap
from engage.chat.rasa import rasa_environment
from engage.chat.rasa.runner import BotRunner
from engage.chat.rasa.training import current_model
from engage.demo.history import history_calls, import_history
from engage.demo.live import SHOP_NUMBER, STEP, IngestTally, LiveShop, SimulatedClock
from engage.demo.report import write_report
from engage.demo.server import LocalServer
from engage.demo.shoppers import Season, make_shoppers
from engage.demo.storefront import Storefront, new_arrivals
from engage.demo.summary import Summary, summarise
from engage.errors import EngageError, WorkspaceError
from engage.recommend.catalog import CATALOG_FILE, load_catalog, write_catalog
from engage.recommend.evaluation import evaluate
from engage.recommend.evaluation import write_report as write_evaluation
from engage.recommend.training import MODELS, evaluation_frame
from engage.testing.twilio import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, FakeTwilio
from engage.workspace import Workspace, init_workspace

__all__ = ["DemoOptions", "DemoResult", "run_demo", "prepare_workspace"]

MARKER = ".engage-demo"
EVALUATED = ("popularity", "itemknn", "ease", "als", "bpr")
"""The models the demo evaluates offline: each fits in about a second here (`auto` searches for a minute)."""


@dataclass(frozen=True)
class DemoOptions:
    directory: Path
    users: int = 600
    days: int = 90
    """Days of history before the live period."""
    live_days: int = 14
    seed: int = 7
    speed: float = 0.0
    """How many times faster than real time the live clock may run; 0: as fast as the machine goes."""
    bot: bool = True
    bot_cache: Path | None = None
    """Where trained bot models are kept between runs (by content hash); default: beside the directory."""


@dataclass
class DemoResult:
    summary: Summary
    report: Path
    workspace: Path
    seconds: float
    live_start: datetime
    live_end: datetime
    retrained_at: datetime | None
    ingest: IngestTally


def prepare_workspace(directory: Path) -> Workspace:
    """A fresh copy of the example workspace; only a folder made by a previous demo is ever replaced."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise WorkspaceError(
                f"{directory}: exists and was not made by `engage demo`; choose another --dir"
            )
        # Moved aside first, so a deletion cut short never leaves a folder without its marker.
        trash = directory.with_name(f".{directory.name}.deleting")
        shutil.rmtree(trash, ignore_errors=True)
        directory.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    init_workspace(directory)
    (directory / MARKER).write_text("made by engage demo; deleted by the next run\n")
    return Workspace.load(directory)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _configure(root: Path, api_port: int, twilio: FakeTwilio) -> None:
    """Loopback ports of its own for the API, Rasa and the action server; SMS through the local Twilio."""
    endpoints = root / "endpoints.yml"
    text = endpoints.read_text(encoding="utf-8")
    replacements = {
        "public_url: http://127.0.0.1:8000": f"public_url: http://127.0.0.1:{api_port}",
        "url: http://127.0.0.1:5005": f"url: http://127.0.0.1:{_free_port()}",
        "url: http://127.0.0.1:5055/webhook": f"url: http://127.0.0.1:{_free_port()}/webhook",
        "sms: outbox": "sms: twilio",
    }

    for old, new in replacements.items():
        if old not in text:
            raise EngageError(f"the example's endpoints.yml no longer holds {old!r}: update engage.demo.run")
        text = text.replace(old, new)
    endpoints.write_text(text, encoding="utf-8")
    (root / "connectors" / "twilio.yml").write_text(
        "# The demo's Twilio: engage.testing.twilio on 127.0.0.1, spoken to by the real twilio library.\n"
        f"type: twilio\naccount_sid: {TWILIO_ACCOUNT_SID}\nauth_token: {TWILIO_AUTH_TOKEN}\n"
        f'from_number: "{SHOP_NUMBER}"\nbase_url: {twilio.url}\n',
        encoding="utf-8",
    )


@contextmanager
def _bot(workspace: Workspace, cache: Path, enabled: bool) -> Iterator[BotRunner | None]:
    """Rasa and the action server starting in the background; the model comes from `cache` when this
    version of the bot was trained before."""
    environment = rasa_environment()
    if not enabled:
        yield None
        return
    if not environment.ready:
        raise EngageError(f"Rasa is not set up in {environment.path}: run `make demo` or `engage bot setup`")
    model = current_model(workspace.root)
    cached = cache / model.name
    if cached.is_file():
        model.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cached, model)
    runner = BotRunner(workspace, environment)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
    if model.is_file() and not cached.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy2(model, cached)


def run_demo(options: DemoOptions, console: Console) -> DemoResult:
    began = time.perf_counter()
    directory = options.directory
    cache = options.bot_cache or directory.parent / "demo-cache" / "bot-models"
    live_end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    live_start = live_end - timedelta(days=options.live_days)
    history_start = live_start - timedelta(days=options.days)
    clock = SimulatedClock(live_start)
    logging.getLogger("engage").setLevel(logging.WARNING)

    with ExitStack() as stack:
        progress = stack.enter_context(
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description:<44}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[note]}"),
                TimeElapsedColumn(),
                console=console,
            )  # fmt: skip
        )
        setup = progress.add_task("workspace, catalog, the bot starting", total=None, note="")
        twilio = stack.enter_context(FakeTwilio())
        api_port = _free_port()
        prepare_workspace(directory)
        _configure(directory, api_port, twilio)
        arrivals_end = live_start + (live_end - live_start) * 0.4
        catalog_file = directory / CATALOG_FILE
        write_catalog(
            new_arrivals(load_catalog(directory), options.seed, live_start, arrivals_end), catalog_file
        )
        workspace = Workspace.load(directory)
        engage = bootstrap(workspace, clock=clock)
        stack.callback(engage.close)
        bot = stack.enter_context(_bot(workspace, cache, options.bot))
        catalog = engage.recommend.catalog
        storefront = Storefront(catalog, options.seed, Season(live_start))
        shoppers = make_shoppers(
            options.users, options.seed, storefront.categories, history_start, live_start, live_end
        )
        progress.update(setup, total=1, completed=1, note=f"{len(catalog):,} products")

        past = [shopper for shopper in shoppers if shopper.joined < live_start]
        history = progress.add_task(f"{options.days} days of history", total=len(past), note="")
        stored = import_history(
            engage,
            history_calls(shoppers, storefront, history_start, live_start, options.seed),
            lambda n: progress.advance(history, n),
        )
        progress.update(history, note=f"{stored:,} events")
        segments = progress.add_task("segments from the history", total=None, note="")
        applied = engage.segments.sync()
        engage.stream.drain(engage.consumers)
        progress.update(segments, total=1, completed=1, note=f"{len(applied)} segments")
        training = progress.add_task("recommender: first training", total=None, note="")
        before = engage.recommend.train()
        progress.update(
            training,
            total=1,
            completed=1,
            note=f"{before.manifest['model']} on {before.manifest['interactions']:,}",
        )
        if bot is not None:
            waiting = progress.add_task("the chatbot: Rasa and the action server", total=None, note="")
            if not bot.wait_ready(timeout=600):
                raise EngageError(f"the chatbot did not start; see the logs in {directory / 'var'}")
            progress.update(waiting, total=1, completed=1, note="ready")

        engage.journeys.sync()
        server = stack.enter_context(LocalServer(engage, port=api_port, worker=False))
        live = LiveShop(
            engage, clock, server.url, twilio, workspace.endpoints.rasa.url if bot else None, shoppers,
            storefront, options.seed,
        )  # fmt: skip
        steps = int((live_end - live_start) / STEP)
        chat_rate = 0.3 / steps
        task = progress.add_task(f"{options.live_days} live days", total=steps, note="")
        after = None
        retrained_at = None
        paced = time.monotonic()
        for number in range(steps):
            start = live_start + STEP * number
            for name, moment in live.due_campaigns(start - STEP, start):
                clock.now = moment
                engage.journeys.campaigns.run(name, moment)
            live.step(start, chat_rate)
            if number == steps // 2:
                progress.update(task, note="retraining on the clicks that came back")
                after = engage.recommend.train()
                retrained_at = clock.now
            progress.update(task, advance=1, note=clock.now.strftime("%a %d %b %H:%M"))
            if options.speed:
                paced += STEP.total_seconds() / options.speed
                time.sleep(max(0.0, paced - time.monotonic()))
        live.finish(wait_for_bot=engage.chat.reader is not None)
        offline = progress.add_task("recommender: offline evaluation", total=None, note="")
        evaluation = evaluate(
            evaluation_frame(engage.database), [MODELS[name] for name in EVALUATED], "personalize",
            seed=options.seed, name="workspace",
        )  # fmt: skip
        write_evaluation(evaluation, workspace.var_dir / "evaluations")
        progress.update(offline, total=1, completed=1, note=f"{len(EVALUATED)} models")
        summary = summarise(engage, before.version, after.version if after else None)
        report = write_report(summary, directory.parent / "report.html", options, live_start, live_end)
    return DemoResult(
        summary,
        report,
        directory,
        time.perf_counter() - began,
        live_start,
        live_end,
        retrained_at,
        live.ingest,
    )
