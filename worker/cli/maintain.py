"""`newswatch maintain`: retention and database upkeep once, now (the daemon does it on a schedule)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from sqlmodel import Session

from worker.cli.common import console, open_store, progress_bar
from worker.store.db import migrate
from worker.store.retention import count_expired, run_maintenance
from worker.timeutil import utcnow


def register(app: typer.Typer) -> None:
    app.command("maintain")(maintain)


def maintain(
    ctx: typer.Context,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--retention-days",
            min=0,
            help="Delete feed articles older than this many days; 0 keeps all (default: the config's).",
        ),
    ] = None,
) -> None:
    """Delete old feed articles (keys stay as tombstones), then ANALYZE and, when worth it, VACUUM."""
    runtime = open_store(ctx, prepare=False)
    migrate(runtime.engine)
    retention = runtime.settings.retention
    if retention_days is not None:
        retention = replace(retention, days=retention_days)
    now = utcnow()
    with Session(runtime.engine) as session:
        expired = count_expired(session, retention.days, now)
    with progress_bar("deleting", expired, enabled=expired > 0) as advance:
        report = run_maintenance(runtime.engine, retention, now, progress=advance)
    console.print(report.describe(retention.days), highlight=False, markup=False)
