"""What every command shares: global options, opening the store, printing, one-line errors."""

from __future__ import annotations

import json
import logging
import os
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

from worker.runtime import Runtime, open_runtime

# soft_wrap: a line stays one line (scripts grep them); tables still fit the terminal.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def error_line(message: str) -> None:
    """One `error: …` line on stderr: the only way a user mistake is reported."""
    sys.stderr.write(f"error: {message}\n")


LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# journald stamps every line itself: a second timestamp would only be noise.
JOURNAL_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


@dataclass
class Options:
    config: Path | None = None
    log_level: str = "info"


def options(ctx: typer.Context) -> Options:
    root = ctx.find_root()
    if not isinstance(root.obj, Options):
        root.obj = Options()
    return root.obj


def setup_logging(level: str) -> None:
    fmt = JOURNAL_LOG_FORMAT if os.environ.get("JOURNAL_STREAM") else LOG_FORMAT
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def open_store(ctx: typer.Context, *, prepare: bool = True) -> Runtime:
    """The runtime for this command: settings, migrated store, config feeds synced, seeds imported."""
    return open_runtime(options(ctx).config, prepare=prepare)


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
