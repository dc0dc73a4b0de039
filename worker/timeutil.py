"""Time in one convention: aware datetimes in UTC, everywhere in the store and the code.

SQLModel's datetime columns insist on aware values and return them in UTC on both stores (SQLite keeps
them as UTC text, PostgreSQL as timestamptz), so the code compares like with like.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
