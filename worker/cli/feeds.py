"""`newswatch feeds …`: subscriptions and their health."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from worker.cli.common import age, check_format, console, open_store, print_json, progress_bar
from worker.config import check_feed_url, parse_duration
from worker.errors import NewswatchError
from worker.ingest.opml import OutlineFeed, parse_opml, render_opml
from worker.redact import redact_url
from worker.store import feeds as feed_store
from worker.store.db import session_scope

app = typer.Typer(no_args_is_help=True)

_STATUS_STYLE = {"ok": "green", "error": "red", "disabled": "dim", "pending": "yellow"}


def _interval(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--interval") from exc
    if seconds < 60:
        raise typer.BadParameter("expected at least 60 s", param_hint="--interval")
    return seconds


def _url(value: str) -> str:
    try:
        return check_feed_url(value)
    except ValueError as exc:
        raise NewswatchError(str(exc)) from exc


@app.command("add")
def add(
    ctx: typer.Context,
    url: str,
    interval: Annotated[
        str | None, typer.Option(help='Poll interval, e.g. "15m" (default: poll.interval).')
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag every article of this feed; repeatable.")] = None,
) -> None:
    """Subscribe to a feed (kept in the store; feeds in the config file are managed there)."""
    seconds = _interval(interval)
    url = _url(url)
    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        feed = feed_store.add_feed(session, url, seconds, tag or ())
        console.print(f"added feed {feed.id}: {redact_url(feed.url)}", highlight=False, markup=False)


@app.command("remove")
def remove(ctx: typer.Context, feed: Annotated[str, typer.Argument(help="Feed URL or id.")]) -> None:
    """Unsubscribe from a feed; its stored articles stay."""
    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        removed = feed_store.remove_feed(session, feed)
        console.print(f"removed feed {removed.id}: {redact_url(removed.url)}", highlight=False, markup=False)


@app.command("list")
def list_feeds(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Every feed with its health: status, HTTP status, articles, errors, last and next check."""
    check_format(output, ("table", "json"))
    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        rows = feed_store.health(session)
    if output == "json":
        print_json([row.as_json() for row in rows])
        return
    table = Table(title=f"{len(rows)} feeds", title_justify="left")
    for column in (
        "id",
        "status",
        "feed",
        "http",
        "articles",
        "errors",
        "last fetch",
        "next check",
        "last error",
    ):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "status", "http", "articles"))
    for row in rows:
        table.add_row(
            str(row.id),
            f"[{_STATUS_STYLE[row.status]}]{row.status}[/]",
            (row.title + "\n" if row.title else "") + redact_url(row.url),
            str(row.http_status or "-"),
            str(row.articles),
            str(row.error_count),
            age(row.last_fetch),
            age(row.next_check) if row.status != "disabled" else "-",
            row.last_error or "",
        )
    console.print(table)


@app.command("import")
def import_opml(ctx: typer.Context, file: Path) -> None:
    """Subscribe to every feed of an OPML file (feeds already subscribed are left as they are)."""
    try:
        outlines = parse_opml(file.read_bytes(), str(file))
    except OSError as exc:
        raise NewswatchError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    runtime = open_store(ctx)
    added = skipped = invalid = 0
    with progress_bar("importing", len(outlines), enabled=len(outlines) > 1) as advance:
        for outline in outlines:
            advance()
            try:
                url = check_feed_url(outline.url)
            except ValueError:
                invalid += 1
                console.print(f"skipped {outline.url!r}: not an http(s) URL", highlight=False, markup=False)
                continue
            with session_scope(runtime.engine) as session:
                try:
                    feed = feed_store.add_feed(session, url)
                except NewswatchError:
                    skipped += 1
                    continue
                if outline.title and not feed.title:
                    feed.title = outline.title
            added += 1
    console.print(
        f"imported {added} feeds ({skipped} already subscribed, {invalid} invalid)", highlight=False
    )


@app.command("export")
def export_opml(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """All enabled feeds as OPML."""
    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        rows = [row for row in feed_store.health(session) if row.status != "disabled"]
    text = render_opml(OutlineFeed(row.url, row.title) for row in rows)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {len(rows)} feeds to {output}", highlight=False, markup=False)
