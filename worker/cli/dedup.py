"""`newswatch dedup rebuild` and `newswatch eval dedup FILE`: re-run and measure duplicate detection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlmodel import func, select

from worker.cli.common import console, open_store, print_json, progress_bar
from worker.store.db import session_scope
from worker.store.models import Article

app = typer.Typer(no_args_is_help=True)

# False-positive pairs listed under the evaluation table (all of them are in the JSON output).
MAX_LISTED_PAIRS = 40


@app.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Re-decide duplicates and stories of all stored articles in published order (after tuning)."""
    from worker.store.dedup_index import rebuild_dedup

    runtime = open_store(ctx)
    started = time.monotonic()
    with session_scope(runtime.engine) as session:
        total = session.exec(select(func.count()).select_from(Article)).one()
    with progress_bar("re-deciding", total, enabled=total > 1) as advance:
        done = rebuild_dedup(runtime.engine, lambda _done, _total: advance())
    _say(f"re-decided {done} {'article' if done == 1 else 'articles'} in {time.monotonic() - started:.1f}s")


def eval_dedup_command(file: Path, format: str) -> None:
    """Print the evaluation of `file` as a table or as the JSON contract (see worker.evaluation.dedup)."""
    from worker.evaluation.dedup import evaluate_dedup, iter_false_positive_ids

    result = evaluate_dedup(file)
    if format == "json":
        print_json(result)
        return
    table = Table(
        title=f"duplicate detection on {file.name} ({len(result['items'])} items)", title_justify="left"
    )
    for column in ("decision", "precision", "recall", "F1", "pairs", "false positives", "false negatives"):
        table.add_column(column, justify="left" if column == "decision" else "right")
    for kind in ("same_article", "same_story"):
        section: dict[str, Any] = result[kind]
        table.add_row(
            kind.replace("_", " "),
            f"{section['precision']:.3f}",
            f"{section['recall']:.3f}",
            f"{section['f1']:.3f}",
            str(section["pairs"]),
            str(len(section["false_positives"])),
            str(len(section["false_negatives"])),
        )
    console.print(table)
    for kind in ("same_article", "same_story"):
        pairs = result[kind]["false_positives"]
        if not pairs:
            continue
        ids = ", ".join(iter_false_positive_ids(result[kind]))
        _say(f"{kind.replace('_', ' ')} false positives involve: {ids}")
        for a, b in pairs[:MAX_LISTED_PAIRS]:
            _say(f"  {a} ~ {b}")
        if len(pairs) > MAX_LISTED_PAIRS:
            _say(f"  … {len(pairs) - MAX_LISTED_PAIRS} more pairs (see --format json)")


def _say(line: str) -> None:
    console.print(line, highlight=False, markup=False)
