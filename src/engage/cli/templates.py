"""`engage templates render|check`: what a customer would get from a template, and every template checked
against sample customers."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from engage.cli._context import load_workspace, open_engage
from engage.cli._options import EventOption, WorkspaceOption, json_option
from engage.errors import ConfigError
from engage.messaging.config import load_messaging_config, load_template_settings
from engage.messaging.samples import check_samples
from engage.messaging.templates import Templates
from engage.recommend.catalog import load_catalog
from engage.recommend.offers import load_offers

__all__ = ["register"]

templates_app = typer.Typer(
    help="Templates: render one for a customer, check them all.", no_args_is_help=True
)


@templates_app.command("render")
def render(
    name: str = typer.Argument(..., help="The template: email/NAME or sms/NAME."),
    user: str = typer.Option(..., "--user", help="A user id or anonymous id."),
    event: str | None = EventOption,
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Print what the customer would get now (nothing is sent, recorded or logged)."""
    trigger = json_option(event, "--event")
    with contextlib.closing(open_engage(workspace)) as engage:
        result = engage.messaging.preview(name, user, event=trigger)
    if result.error is not None:
        raise result.error
    rendered = result.rendered
    assert rendered is not None
    if rendered.channel == "sms":
        typer.echo(rendered.text)
        typer.echo(f"\n-- {rendered.sms_length}")
        return
    typer.echo(f"Subject: {rendered.subject}\n")
    typer.echo(rendered.text)
    typer.echo(f"-- HTML part: {len(rendered.html):,} characters; {len(result.links)} tracked links")


@templates_app.command("check")
def check(workspace: Path | None = WorkspaceOption) -> None:
    """Render every template for each sample customer: a variable used without a default fails with its
    file and line; an SMS over its segment budget is a warning."""
    root = load_workspace(workspace).root
    catalog = load_catalog(root)
    config = load_messaging_config(root)
    templates = Templates(root, load_template_settings(root))
    problems, warnings, rendered = [], [], 0
    for checked in check_samples(templates, catalog, load_offers(root, catalog), config):
        if checked.problem is not None:
            problems.append(checked.problem)
            continue
        rendered += 1
        result = checked.result.rendered
        if result is not None and result.channel == "sms":
            budget = checked.settings.max_segments or config.sms.max_segments
            length = result.sms_length
            if length.segments > budget:
                warnings.append(
                    f"{templates.files(checked.template)[0]}: {length} for {checked.sample}; budget {budget}"
                )
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if problems:
        raise ConfigError(sorted(set(problems)))
    typer.echo(f"templates OK: {len(templates.names())} templates rendered {rendered} times for the samples")


def register(app: typer.Typer) -> None:
    app.add_typer(templates_app, name="templates")
