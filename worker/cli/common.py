"""What every command shares: global options, opening the store, printing, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from worker.config import DEFAULT_LOG_FORMAT, load_settings
from worker.logs import setup_logging
from worker.runtime import Runtime, start_runtime

# soft_wrap: a line stays one line (scripts grep them); tables still fit the terminal.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def error_line(message: str) -> None:
    """One `error: …` line on stderr: the only way a user mistake is reported."""
    sys.stderr.write(f"error: {message}\n")


@dataclass
class Options:
    config: Path | None = None
    log_level: str = "info"
    log_format: str | None = None  # --log-format; None: the config's [log] format decides
    log_file: Path | None = None


def options(ctx: typer.Context) -> Options:
    root = ctx.find_root()
    if not isinstance(root.obj, Options):
        root.obj = Options()
    return root.obj


def open_store(ctx: typer.Context, *, prepare: bool = True) -> Runtime:
    """The runtime for this command: settings, migrated store, config feeds synced, seeds imported.

    Logging switches to the config's [log] format first (unless --log-format chose one), so that the
    start-up lines already come in it.
    """
    opts = options(ctx)
    settings = load_settings(opts.config)
    if opts.log_format is None and settings.log_format != DEFAULT_LOG_FORMAT:
        setup_logging(opts.log_level, settings.log_format, opts.log_file)
    return start_runtime(settings, prepare=prepare)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def check_format(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"expected one of {', '.join(allowed)}")
    return value


def age(value: datetime | None) -> str:
    """'3m ago' / 'in 5m' for tables; '-' for never."""
    if value is None:
        return "-"
    from worker.timeutil import utcnow

    seconds = (value - utcnow()).total_seconds()
    span = abs(seconds)
    if span < 90:
        text = f"{span:.0f}s"
    elif span < 5400:
        text = f"{span / 60:.0f}m"
    elif span < 129600:
        text = f"{span / 3600:.0f}h"
    else:
        text = f"{span / 86400:.0f}d"
    return f"in {text}" if seconds > 0 else f"{text} ago"


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on a terminal (stderr), silent otherwise; yields `advance(steps=1)`.

    Callbacks that pass a non-number (a path, an outcome) advance by one.
    """
    if not enabled or not err_console.is_terminal:
        yield lambda _steps=1: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda steps=1: progress.advance(task, steps if isinstance(steps, int) else 1)
