"""Entry point of the `engage` command.

Expected failures (`EngageError`) print their one-line message and exit 1; anything else is a bug and
exits 2 with its traceback so it stays visible.
"""

from __future__ import annotations

import sys
import traceback
from importlib import import_module

import typer
from rich.console import Console
from rich.markup import escape

from engage.errors import EngageError

__all__ = ["app", "main"]

COMMAND_MODULES = [
    "check", "init", "db", "serve", "worker", "run", "events", "profiles", "segments", "recs", "templates",
    "messages", "journeys", "tokens", "bot", "demo",
]  # fmt: skip

app = typer.Typer(
    name="engage",
    help="Self-hosted omnichannel engagement for online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in COMMAND_MODULES:
    import_module(f"engage.cli.{_name}").register(app)

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage errors: recent Typer releases raise them from their own copy of click."""
    import click

    found: list[type[Exception]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        found.append(ClickException)
    return tuple(found)


_USAGE_ERRORS = _usage_errors()


def main(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode click returns a command's `typer.Exit(code)` instead of raising it.
        code = app(args=argv, standalone_mode=False)
    except EngageError as exc:
        for line in str(exc).splitlines():
            _err.print(f"[red]error:[/red] {escape(line)}", markup=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        _err.print("aborted")
        return 1
    except _USAGE_ERRORS as exc:  # a mistyped command or option: click's message and exit code
        exc.show()
        return exc.exit_code
    except Exception:
        traceback.print_exc()
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
