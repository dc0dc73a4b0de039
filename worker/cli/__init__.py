"""The `newswatch` command. Each group lives in its own module; this one wires them and owns the errors."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from worker import __version__
from worker.cli import alerts, articles, feeds, maintain, poll, search, serve
from worker.cli.common import Options, error_line
from worker.errors import ConfigError, NewswatchError, one_line
from worker.logs import FORMATS, LEVELS, log_file, setup_logging

app = typer.Typer(
    name="newswatch",
    help="Polls news feeds, stores every article once, finds duplicates, tags Kazakhstan and OTS news.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"newswatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default: $NEWSWATCH_CONFIG, ./config/newswatch.toml)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: Annotated[
        str | None,
        typer.Option(help="text (readable lines) or json (one object per line); default: [log] format."),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    if log_level.lower() not in LEVELS:
        raise typer.BadParameter("expected debug, info, warning or error", param_hint="--log-level")
    if log_format is not None and log_format not in FORMATS:
        raise typer.BadParameter("expected text or json", param_hint="--log-format")
    ctx.obj = Options(
        config=config, log_level=log_level, log_format=log_format, log_file=log_file(ctx.invoked_subcommand)
    )
    setup_logging(log_level, log_format or "text", ctx.obj.log_file)


poll.register(app)
articles.register(app)
search.register(app)
maintain.register(app)
serve.register(app)
app.add_typer(feeds.app, name="feeds", help="Subscribe, list, remove, import and export feeds.")
app.add_typer(alerts.app, name="alerts", help="List, retry and test alert deliveries.")


def _register_optional() -> None:
    # Groups owned by the analysis side; imported here so `newswatch --help` lists them.
    from worker.cli import dedup, evaluate, tags

    app.add_typer(tags.app, name="tags", help="Test, rebuild and evaluate topic tags.")
    app.add_typer(dedup.app, name="dedup", help="Re-run duplicate detection.")
    app.add_typer(evaluate.app, name="eval", help="Measure tagging and duplicate detection on labelled data.")


_register_optional()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes end as one `error:` line and exit 1, never a traceback."""
    try:
        app(args=argv, prog_name="newswatch", standalone_mode=True)
    except ConfigError as exc:
        for problem in exc.problems:
            error_line(problem)
        sys.exit(1)
    except NewswatchError as exc:
        error_line(str(exc))
        sys.exit(1)
    except SQLAlchemyError as exc:
        # Not a user mistake, but still no traceback on their terminal: one line, details in debug logs.
        logging.getLogger("newswatch").debug("database error", exc_info=True)
        error_line(
            f"database error: {one_line(getattr(exc, 'orig', None) or exc)} (--log-level debug shows more)"
        )
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
