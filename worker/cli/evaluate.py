"""`newswatch eval …`: measure tagging and duplicate detection on labelled data (../shared/eval format)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from worker.cli.common import check_format

app = typer.Typer(no_args_is_help=True)


@app.command("tags")
def eval_tags(
    file: Annotated[
        Path, typer.Argument(help="Labelled items, one JSON object a line (tagging.jsonl format).")
    ],
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    rules: Annotated[
        Path | None, typer.Option(help="Tag rules to evaluate (default: the configured ones).")
    ] = None,
) -> None:
    """Per-tag precision, recall and F1 of the real tagger, with the misclassified ids."""
    from worker.cli.tags import eval_tags_command

    eval_tags_command(file, check_format(output, ("table", "json")), rules)


@app.command("dedup")
def eval_dedup(
    file: Annotated[Path, typer.Argument(help="Articles in arrival order (dupes.jsonl format).")],
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Pairwise precision, recall and F1 of same-article and same-story decisions on a fresh store."""
    from worker.cli.dedup import eval_dedup_command

    eval_dedup_command(file, check_format(output, ("table", "json")))
