"""`search` and `stats`: what the store holds, found by words and filters, and counted."""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from worker.atom import FeedMeta, render_atom
from worker.cli.common import check_format, console, err_console, open_store, print_json
from worker.errors import NewswatchError
from worker.redact import redact_url
from worker.store.db import session_scope
from worker.store.queries import Stats, stats
from worker.store.search import DEFAULT_LIMIT, SearchFilters, SearchHit, parse_since, parse_until, search
from worker.timeutil import utcnow

SEARCH_FORMATS = ("table", "json", "csv", "atom")
CSV_COLUMNS = (
    "id", "url", "title", "feed", "outlet", "published", "source", "tags", "duplicate_of", "story_id",
    "snippet", "rank",
)  # fmt: skip
DEFAULT_STATS_SINCE = "30d"
HIGHLIGHT = "bold yellow"


def register(app: typer.Typer) -> None:
    app.command("search")(search_command)
    app.command("stats")(stats_command)


def _time(value: str | None, option: str, until: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        return (parse_until if until else parse_since)(value, utcnow())
    except ValueError as exc:
        raise NewswatchError(f"{option}: {exc}") from exc


def search_command(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(help='Words (all of them), "a phrase", OR, NOT or -word, prefix*, (groups).'),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only articles with this tag; repeatable.")
    ] = None,
    feed: Annotated[str | None, typer.Option(help="Only this feed (id or URL).")] = None,
    outlet: Annotated[str | None, typer.Option(help="Only outlets whose name has these words.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Published since: 7d, 24h, 2025-05-21 or ISO time.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Published before (a date: up to its end).")] = None,
    source: Annotated[str | None, typer.Option(help="feed or seed.")] = None,
    duplicates: Annotated[bool, typer.Option("--duplicates", help="Include duplicates.")] = False,
    story: Annotated[str | None, typer.Option("--story", help="Only this story id.")] = None,
    duplicates_of: Annotated[
        int | None, typer.Option("--duplicates-of", help="The duplicates of this article id.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Hits per page (1–200).")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    output: Annotated[str, typer.Option("--format", help="table, json, csv or atom.")] = "table",
) -> None:
    """Search stored articles: best matches first (newest first without a query); duplicates left out."""
    check_format(output, SEARCH_FORMATS)
    filters = SearchFilters(
        query=query,
        tags=tuple(tag or ()),
        feed=feed,
        outlet=outlet,
        since=_time(since, "--since"),
        until=_time(until, "--until", until=True),
        source=source,
        include_duplicates=duplicates,
        story_id=story,
        duplicates_of=duplicates_of,
    )
    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        try:
            page = search(session, filters, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise NewswatchError(str(exc)) from exc
    if output == "json":
        print_json([hit.as_json() for hit in page.hits])
    elif output == "csv":
        _print_csv(page.hits)
    elif output == "atom":
        sys.stdout.buffer.write(render_atom(page.hits, FeedMeta(title=_atom_title(filters))))
    else:
        _print_table(page.hits)
        if page.next_cursor is not None:
            err_console.print(
                f"more: --cursor {page.next_cursor}", style="dim", highlight=False, markup=False
            )


def _atom_title(filters: SearchFilters) -> str:
    described = [f"“{filters.query}”"] if filters.query else []
    described += [f"tag {tag}" for tag in filters.tags]
    return "Newswatch search: " + (", ".join(described) or "all articles")


def _tags(hit: SearchHit) -> str:
    return ", ".join(tag.name for tag in hit.tags)


def _print_table(hits: list[SearchHit]) -> None:
    table = Table("id", "published", "outlet", "article", "tags", title=f"{len(hits)} articles")
    table.title_justify = "left"
    for hit in hits:
        article = Text(hit.title or "(no title)", style="bold")
        if hit.duplicate_of is not None:
            article.append(f" (duplicate of #{hit.duplicate_of})", style="dim")
        article.append("\n")
        for part in hit.snippet:  # Text, not markup: nothing in an article is read as rich markup
            article.append(part.text, style=HIGHLIGHT if part.highlight else "")
        if hit.url:
            article.append("\n" + hit.url, style="blue")
        outlet = hit.outlet or ("seed" if hit.source == "seed" else "")
        table.add_row(
            str(hit.id), hit.published.strftime("%Y-%m-%d %H:%M"), Text(outlet), article, Text(_tags(hit))
        )
    console.print(table)


def _print_csv(hits: list[SearchHit]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for hit in hits:
        data = hit.as_json()
        data["tags"] = ";".join(tag.name for tag in hit.tags)
        writer.writerow(["" if data[column] is None else data[column] for column in CSV_COLUMNS])


def stats_command(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help='Published since: 7d, 24h, 2025-05-21, ISO time, or "all".')
    ] = DEFAULT_STATS_SINCE,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Articles per tag, per feed and per day (duplicates apart), and how the feeds are doing."""
    check_format(output, ("table", "json"))
    start = None if since == "all" else _time(since, "--since")
    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        result = stats(session, start)
    if output == "json":
        print_json(result.as_json())
    else:
        _print_stats(result)


def _print_stats(result: Stats) -> None:
    window = f"since {result.since:%Y-%m-%d %H:%M} UTC" if result.since else "all time"
    console.print(
        f"{result.articles} articles and {result.duplicates} duplicates published {window}",
        highlight=False,
        markup=False,
    )
    tags = Table("tag", "articles", title="per tag", title_justify="left")
    for name, count in result.tags:
        tags.add_row(Text(name), str(count))
    feeds = Table("feed", "articles", "duplicates", title="per feed", title_justify="left")
    for feed in result.feeds:
        name = "seeds" if feed.feed_id is None else (feed.title or feed.url or f"#{feed.feed_id}")
        feeds.add_row(Text(name), str(feed.articles), str(feed.duplicates))
    days = Table("day", "articles", "duplicates", title="per day", title_justify="left")
    for day in result.days:
        days.add_row(day.day, str(day.articles), str(day.duplicates))
    for table in (tags, feeds, days):
        console.print(table)
    summary = result.health_summary()
    console.print(
        "feeds: " + (", ".join(f"{count} {status}" for status, count in sorted(summary.items())) or "none"),
        highlight=False,
        markup=False,
    )
    for row in result.health:
        if row.status == "error":
            name = row.title or redact_url(row.url)
            line = f"  #{row.id} {name}: {row.last_error or 'error'} ({row.error_count} errors)"
            console.print(line, style="red", highlight=False, markup=False)
