"""`run`, `poll` and `check`: the commands that do the main job, and the one that says if it can."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import func
from sqlmodel import col, select

from worker.cli.common import console, err_console, error_line, open_store, options, progress_bar
from worker.config import Settings, load_settings
from worker.errors import ConfigError, NewswatchError
from worker.ingest.fetch import Fetcher
from worker.ingest.pipeline import FeedOutcome, Pipeline, PollSummary
from worker.runtime import Runtime
from worker.store import feeds as feed_store
from worker.store.db import session_scope
from worker.store.leases import recover_leases
from worker.store.models import Feed
from worker.timeutil import utcnow


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("poll")(poll)
    app.command("check")(check)


def run(ctx: typer.Context) -> None:
    """Run the daemon: poll due feeds on schedule until SIGTERM/SIGINT."""
    from worker.daemon import run_daemon

    run_daemon(open_store(ctx))


def poll(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Poll every enabled feed, due or not.")] = False,
    feed: Annotated[
        list[str] | None, typer.Option("--feed", help="Poll this feed (URL or id); repeatable.")
    ] = None,
) -> None:
    """One pass over the due feeds (or all, or the named ones), then exit — for cron, tests and benchmarks."""
    runtime = open_store(ctx)
    pipeline = runtime.pipeline()
    alerting = runtime.settings.alerts.channels_file is not None
    try:
        recover_leases(runtime.engine)
        only = None
        if feed:
            pipeline.make_due(feed)
            with session_scope(runtime.engine) as session:
                only = [feed_store.find_feed(session, ref).id or 0 for ref in feed]
        elif every:
            pipeline.make_due()
        due = _count_due(runtime) if only is None else len(only)
        with progress_bar("polling", due, enabled=due > 1) as advance:

            def on_feed(_outcome: FeedOutcome) -> None:
                advance()

            started = time.perf_counter()
            summary = asyncio.run(_one_pass(pipeline, only, on_feed))
            elapsed = time.perf_counter() - started
    finally:
        pipeline.close()
    _print_summary(summary, elapsed)
    if alerting and runtime.targets:
        deliverer = runtime.deliverer(pipeline.owner)
        try:
            delivered = asyncio.run(deliverer.run_once())
        finally:
            deliverer.close()
        console.print(
            f"alerts: {delivered.sent} sent, {delivered.failed} failed ({delivered.digests} digests)",
            highlight=False,
        )
        for line in delivered.errors:
            err_console.print(f"  {line}", markup=False, highlight=False)


async def _one_pass(
    pipeline: Pipeline, only: list[int] | None, on_feed: Callable[[FeedOutcome], None]
) -> PollSummary:
    async with Fetcher(pipeline.settings.http) as fetcher:
        return await pipeline.run_pass(fetcher, only=only, progress=on_feed)


def _count_due(runtime: Runtime) -> int:
    with session_scope(runtime.engine) as session:
        return int(
            session.exec(
                select(func.count()).where(col(Feed.enabled), col(Feed.next_check) <= utcnow())
            ).one()
        )


def _print_summary(summary: PollSummary, elapsed: float) -> None:
    console.print(
        f"polled {summary.feeds} feeds: {summary.new} new articles ({summary.duplicates} duplicates), "
        f"{summary.updated} updated, {summary.unchanged} unchanged, {summary.errors} with errors "
        f"in {elapsed:.2f} s",
        highlight=False,
    )
    for line in summary.failed:
        err_console.print(f"  {line}", markup=False, highlight=False)


def check(ctx: typer.Context) -> None:
    """Validate the config, database, feed list, tag rules and seeds; one line per problem, exit 1 if any."""
    problems: list[str] = []
    oks: list[str] = []
    try:
        settings = load_settings(options(ctx).config)
    except ConfigError as exc:
        for problem in exc.problems:
            error_line(problem)
        raise typer.Exit(1) from exc
    source = settings.config_file or "built-in defaults"
    oks.append(f"config: {source}")

    from worker.runtime import declared_feeds
    from worker.store.db import check_connection, make_engine

    try:
        check_connection(make_engine(settings.database_url))
        oks.append(f"database: {make_engine(settings.database_url).url.render_as_string()}")
    except NewswatchError as exc:
        problems.append(str(exc))
    try:
        oks.append(f"feeds: {len(declared_feeds(settings))} declared")
    except NewswatchError as exc:
        problems.append(str(exc))
    try:
        from worker.tagrules import DEFAULT_RULES_PATH, load_rules

        rules_path = settings.tags_file or DEFAULT_RULES_PATH
        load_rules(rules_path)
        oks.append(f"tag rules: {rules_path}")
    except ConfigError as exc:
        problems.extend(exc.problems)
    except NewswatchError as exc:
        problems.append(str(exc))
    problems.extend(_check_seeds(settings.seeds_dir))
    problems.extend(_check_alerts(settings, oks))

    for line in oks:
        console.print(f"ok: {line}", markup=False, highlight=False)
    for problem in problems:
        error_line(problem)
    if problems:
        raise typer.Exit(1)


def _check_alerts(settings: Settings, oks: list[str]) -> list[str]:
    from worker.alerts.channels import load_targets, target_warnings
    from worker.alerts.render import Templates, check_templates, check_timezone

    problems = check_timezone(settings.alerts.timezone)
    problems += check_templates(Templates(**dict(settings.alerts.templates)))
    path = settings.alerts.channels_file
    if path is None:
        oks.append("alerts: no channels file, alerts are off")
        return problems
    try:
        targets = load_targets(path)
    except ConfigError as exc:
        return problems + exc.problems
    oks.append(f"alerts: {len(targets)} targets in {path}" + ("" if targets else " (alerts are off)"))
    for warning in target_warnings(targets):
        oks.append(f"warning: {warning}")
    return problems


def _check_seeds(seeds_dir: Path | None) -> list[str]:
    if seeds_dir is None:
        return []
    from worker.ingest.seeds import read_seed, seed_files

    try:
        files = seed_files([seeds_dir])
    except NewswatchError as exc:
        return [str(exc)]
    problems = []
    for path in files:
        try:
            read_seed(path)
        except NewswatchError as exc:
            problems.append(str(exc))
    return problems
