"""covering index for the full-text window (SQLite)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

A search's window is the newest 500 full-text matches that are not duplicates: each match's article row is
looked up only to read `duplicate_of`. The article rows are wide (text and HTML, up to several pages each),
so those 500 lookups cost more than the full-text match itself; this index answers them from a few pages
(benchmarks/query.py at a million articles: 0.35-0.55 ms against 0.75-1.05 ms a word query). PostgreSQL
filters the tsvector's matches in the heap it reads anyway: nothing to add there.
"""

from __future__ import annotations

from alembic import op

from worker.store.fts import SQLITE_WINDOW_INDEX

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"CREATE INDEX {SQLITE_WINDOW_INDEX} ON article (id, duplicate_of)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP INDEX {SQLITE_WINDOW_INDEX}")
