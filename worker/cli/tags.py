"""`newswatch tags …` and `newswatch eval tags`: try the tag rules on a text, measure them on labelled items.

Both read the rules the daemon would use (`--rules`, else the config's `[tagging] rules`, else the
repository's config/tags.toml), so what they show is what the daemon does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.table import Table
from rich.text import Text

from worker.analysis.tagging import Tagger, TagResult
from worker.cli.common import (
    Options,
    check_format,
    console,
    error_line,
    open_store,
    print_json,
    progress_bar,
)
from worker.errors import ConfigError, NewswatchError

FORMATS = ("table", "json")
STDIN = "-"
SCORE_DIGITS = 3

app = typer.Typer(help="Test and evaluate topic tags.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Topic tags: try the rules on a text (`test`), re-tag the store (`rebuild`); rules: config/tags.toml."""


def _fail(exc: NewswatchError) -> typer.Exit:
    problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
    for problem in problems:
        error_line(problem)
    return typer.Exit(1)


def _rules_path(rules: Path | None) -> Path:
    if rules is not None:
        return rules
    from worker.config import load_settings
    from worker.tagrules import DEFAULT_RULES_PATH

    context = click.get_current_context(silent=True)
    root = context.find_root().obj if context is not None else None
    config = root.config if isinstance(root, Options) else None
    return load_settings(config).tags_file or DEFAULT_RULES_PATH


def _tagger(rules: Path | None) -> Tagger:
    from worker.tagrules import load_rules

    return Tagger(load_rules(_rules_path(rules)))


def _table(headers: list[str], wrapping: set[str]) -> Table:
    """Columns in `wrapping` fold onto more lines when narrow; the others never wrap nor get cut."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold", no_wrap=header not in wrapping)
    return table


def _result_json(tagger: Tagger, result: TagResult) -> dict[str, Any]:
    return {
        "tag": result.tag,
        "score": round(result.score, SCORE_DIGITS),
        "passed": tagger.passes(result),
        "threshold": tagger.threshold(result.tag),
        "evidence": [
            {
                "term": e.term,
                "matched": e.matched,
                "field": e.field,
                "start": e.start,
                "end": e.end,
                "weight": round(e.weight, SCORE_DIGITS),
            }
            for e in result.evidence
        ],
    }


def _print_results(results: list[dict[str, Any]]) -> None:
    if not results:
        console.print("no tag has any evidence in this text")
        return
    table = _table(["tag", "score", "term", "matched", "at", "weight"], wrapping={"term", "matched"})
    for result in results:
        verdict = "≥" if result["passed"] else "<"
        head = [result["tag"], f"{result['score']:g} {verdict} {result['threshold']:g}"]
        for e in result["evidence"]:
            at = f"{e['field']} {e['start']}:{e['end']}"
            # Text, not str: article text may contain [brackets] that rich would read as markup.
            table.add_row(*map(Text, [*head, e["term"], e["matched"], at, f"{e['weight']:g}"]))
            head = ["", ""]
    console.print(table)


@app.command("test")
def test_command(
    text: Annotated[str, typer.Argument(help="The article text; '-' reads it from standard input.")],
    title: Annotated[str, typer.Option("--title", help="The article title (title hits weigh more).")] = "",
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    rules: Annotated[
        Path | None, typer.Option("--rules", help="Tag rules file (default: the configured one).")
    ] = None,
) -> None:
    """Show every tag with evidence in TEXT: score, threshold, and each matched term with its position."""
    check_format(output, FORMATS)
    try:
        tagger = _tagger(rules)
    except NewswatchError as exc:
        raise _fail(exc) from exc
    body = sys.stdin.read() if text == STDIN else text
    results = [_result_json(tagger, r) for r in tagger.explain(title, body)]
    if output == "json":
        print_json(results)
    else:
        _print_results(results)


def eval_tags_command(file: Path, format: str, rules: Path | None) -> None:
    """`newswatch eval tags FILE`: per-tag precision/recall/F1 of the real tagger, and what it got wrong."""
    from worker.evaluation.tags import evaluate_tags

    try:
        report = evaluate_tags(file, _tagger(rules))
    except NewswatchError as exc:
        raise _fail(exc) from exc
    if format == "json":
        print_json(report)
        return
    columns = ["tag", "precision", "recall", "F1", "false positives", "false negatives"]
    table = _table(columns, wrapping={"false positives", "false negatives"})
    for name, figures in report["tags"].items():
        wrong = report["misclassified"][name]
        cells = [f"{figures[key]:.3f}" for key in ("precision", "recall", "f1")]
        misses = [", ".join(wrong[key]) or "-" for key in ("false_positives", "false_negatives")]
        table.add_row(*map(Text, [name, *cells, *misses]))
    console.print(table)
    console.print(f"{len(report['items'])} items")


@app.command("rebuild")
def rebuild_command(ctx: typer.Context) -> None:
    """Re-tag every stored article (seeds included) with the current rules, e.g. after editing them."""
    from sqlmodel import func, select

    from worker.store.articles import retag_all
    from worker.store.db import session_scope
    from worker.store.models import Article

    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        total = session.exec(select(func.count()).select_from(Article)).one()
    with progress_bar("re-tagging", total, enabled=total > 1) as advance:
        done = retag_all(lambda: session_scope(runtime.engine), runtime.tagger, progress=advance)
    console.print(f"re-tagged {done} articles", highlight=False)
