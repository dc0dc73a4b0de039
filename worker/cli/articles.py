"""`show` and `seeds`: look at one stored article; import reference articles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from worker.cli.common import check_format, console, open_store, print_json, progress_bar
from worker.errors import NewswatchError
from worker.ingest.seeds import seed_files
from worker.runtime import import_seeds
from worker.store.db import session_scope
from worker.store.models import Article
from worker.store.queries import ArticleView, article_view

seeds_app = typer.Typer(no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.add_typer(
        seeds_app, name="seeds", help="Import reference articles (seeds) that dedup compares against."
    )


def show(
    ctx: typer.Context,
    article_id: Annotated[int, typer.Argument(help="Article id.")],
    why: Annotated[bool, typer.Option("--why", help="Explain the duplicate and story decision.")] = False,
    output: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """One article: its text, tags with evidence, duplicates, story siblings and alert deliveries."""
    check_format(output, ("text", "json"))
    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        view = article_view(session, article_id)
        if view is None:
            raise NewswatchError(f"no article {article_id}")
        data = view.as_json(why=why)
    if output == "json":
        print_json(data)
    else:
        _print_view(view, data, why)


def _evidence_text(evidence: dict[str, object]) -> str:
    place = f"@{evidence['start']}" if "start" in evidence else ""
    return f"{evidence.get('matched') or evidence.get('term')} ({evidence.get('field')}{place})"


def _related(article: Article) -> str:
    day = article.published.strftime("%Y-%m-%d")
    return f"#{article.id} {day} {article.outlet or article.source}: {article.title or '(no title)'}"


def _print_view(view: ArticleView, data: dict[str, object], why: bool) -> None:
    a = view.article
    console.print(f"[bold]{escape(a.title)}[/bold]" if a.title else "[dim](no title)[/dim]", highlight=False)
    meta = [f"#{a.id}", a.source, a.outlet or "", a.published.strftime("%Y-%m-%d %H:%M UTC")]
    console.print(" · ".join(m for m in meta if m), style="dim", highlight=False, markup=False)
    if a.url:
        console.print(a.url, style="blue", highlight=False, markup=False)
    if view.tags:
        table = Table("tag", "score", "evidence", title="tags", title_justify="left")
        for tag in view.tags:
            evidence = ", ".join(_evidence_text(e) for e in tag.evidence)
            table.add_row(tag.tag, f"{tag.score:.2f}", Text(evidence))
        console.print(table)
    else:
        console.print("tags: none", style="dim")
    if view.original is not None:
        line = f"duplicate of {_related(view.original)} ({a.dup_method}, score {a.dup_score or 0:.2f})"
        console.print(line, highlight=False, markup=False)
    for label, articles in (("duplicates", view.duplicates), ("also in this story", view.story_siblings)):
        if articles:
            console.print(f"{label}:", highlight=False)
            for related in articles:
                console.print(f"  {_related(related)}", highlight=False, markup=False)
    console.print(f"story {a.story_id} ({a.story_method})", style="dim", highlight=False, markup=False)
    if view.deliveries:
        table = Table("id", "kind", "target", "status", "attempts", "sent", "last error", title="deliveries")
        table.title_justify = "left"
        for d in view.deliveries:
            sent = d.sent_at.strftime("%Y-%m-%d %H:%M") if d.sent_at else "-"
            cells = (str(d.id), d.kind, d.target, d.status, str(d.attempts), sent, d.last_error or "")
            table.add_row(*(Text(cell) for cell in cells))
        console.print(table)
    if why:
        print_json(data["why"])
    console.print()
    console.print(a.text, markup=False, highlight=False)


@seeds_app.command("import")
def import_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Seed files or folders (default: seeds.dir).")
    ] = None,
) -> None:
    """Store seed documents (a leading `date YYYY-MM-DD`, then the body) as articles that never alert."""
    runtime = open_store(ctx)
    targets = list(paths or ([runtime.settings.seeds_dir] if runtime.settings.seeds_dir else []))
    if not targets:
        raise NewswatchError("no seed paths given and seeds.dir is not set")
    total = len(seed_files(targets))
    with progress_bar("importing seeds", total, enabled=total > 1) as advance:
        report = import_seeds(runtime, targets, progress=advance)
    console.print(
        f"seeds: {report.new} new, {report.updated} updated, {report.unchanged} unchanged", highlight=False
    )
