"""`newswatch alerts …`: the outbox as the user sees it — what was sent, what waits, what failed."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import col, select

from worker.cli.common import age, check_format, console, error_line, open_store, print_json
from worker.errors import NewswatchError
from worker.store.db import session_scope
from worker.store.models import Delivery

app = typer.Typer(no_args_is_help=True)

STATUSES = ("pending", "queued", "digested", "sent", "failed")


def _row_json(row: Delivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "article_id": row.article_id,
        "target": row.target,  # stored redacted
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "kind": row.kind,
        "tags": list(row.tags),
        "next_attempt": row.next_attempt.isoformat(),
        "created_at": row.created_at.isoformat(),
    }


@app.command("list")
def list_alerts(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="pending, queued, digested, sent or failed.")] = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    limit: Annotated[int, typer.Option(min=1, help="Newest N deliveries.")] = 100,
) -> None:
    """Deliveries, newest first: target (redacted), status, attempts, last error."""
    check_format(output, ("table", "json"))
    if status is not None:
        check_format(status, STATUSES)
    runtime = open_store(ctx)
    with session_scope(runtime.engine) as session:
        query = select(Delivery).order_by(col(Delivery.id).desc()).limit(limit)
        if status is not None:
            query = query.where(col(Delivery.status) == status)
        rows = list(session.exec(query))
    if output == "json":
        print_json([_row_json(row) for row in rows])
        return
    table = Table(title=f"{len(rows)} deliveries", title_justify="left")
    for column in ("id", "article", "kind", "target", "status", "tries", "next / sent", "last error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        when = age(row.sent_at) if row.sent_at else age(row.next_attempt)
        table.add_row(
            str(row.id),
            str(row.article_id or "-"),
            row.kind,
            row.target,
            row.status,
            str(row.attempts),
            when,
            row.last_error or "",
        )
    console.print(table)


@app.command("retry")
def retry(
    ctx: typer.Context,
    delivery_id: Annotated[int | None, typer.Argument(help="A delivery id (see `alerts list`).")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed delivery.")] = False,
) -> None:
    """Send failed deliveries again (with a fresh attempt budget); the next poll or the daemon sends them."""
    from worker.alerts.deliver import release_failed

    if (delivery_id is None) == (not all_failed):
        raise NewswatchError("give one delivery id or --all-failed")
    runtime = open_store(ctx)
    released = release_failed(runtime.engine, delivery_id)
    if delivery_id is not None and not released:
        raise NewswatchError(f"no unsent delivery {delivery_id}")
    console.print(f"{released} deliveries queued again", highlight=False)


@app.command("test")
def test(
    ctx: typer.Context,
    tag: Annotated[str | None, typer.Option(help="Only the targets that receive this tag.")] = None,
) -> None:
    """Send a test message to each target now; report each result; exit 1 if any failed."""
    from worker.alerts.channels import is_email, routes, send
    from worker.alerts.render import render_test

    runtime = open_store(ctx)
    if runtime.settings.alerts.channels_file is None:
        raise NewswatchError('no channels file configured ([alerts] channels = "channels.yml")')
    targets = [t for t in runtime.targets if tag is None or routes(t, [tag])]
    if not targets:
        raise NewswatchError(f"no target receives {tag!r}" if tag else "the channels file has no targets")
    failed = 0
    for target in targets:
        message = render_test(
            target.body_format,
            target.body_limit,
            target.title_limit,
            tag,
            timezone=runtime.settings.alerts.timezone,
            email=is_email(target),
        )
        result = send(target, message)
        if result.ok:
            console.print(f"ok: {target.name}: {target.display}", highlight=False, markup=False)
        else:
            failed += 1
            error_line(f"{target.name}: {target.display}: {result.error}")
    if failed:
        raise typer.Exit(1)
