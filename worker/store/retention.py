"""Retention and upkeep: old feed articles are deleted, their identity keys stay behind as tombstones.

An identity key whose `article_id` is NULL is a tombstone: `store_items` treats an item carrying it as
already seen and deleted, so a deleted item is never stored or alerted again however long its feed keeps
serving it. Tombstones are small (a kind, a value of at most 255 characters and a date) and are kept.

What goes with a deleted article is the schema's business, in the same statement (foreign keys; on SQLite
`worker.store.db` turns them on for every connection):
- identity keys: SET NULL, i.e. tombstones;
- `duplicate_of` of younger copies: SET NULL (a copy becomes an article of its own; its story stays);
- fingerprints, dedup profile, tags, story terms: CASCADE. Story ids of younger articles stay valid (they
  are strings, not references);
- deliveries: CASCADE, pending ones included. An article goes only when both its date and the time it was
  fetched are older than the retention period (one day at least), so its alerts had that long to go out;
  one still pending then is stale news, not worth a message.
- full-text search rows: kept in step by their own triggers.

Seeds are never deleted. Deleting runs in batches of RETENTION_BATCH articles, one short transaction each,
so the single SQLite writer is never held for long and the daemon's polls slip in between batches.

Maintenance then refreshes the query planner's statistics (ANALYZE: SQLite with a bounded
`analysis_limit`, PostgreSQL per table) and gives space back: PostgreSQL runs VACUUM (ANALYZE) when rows
were deleted (it does not block readers or writers); SQLite runs a full VACUUM only when at least
VACUUM_FREE_SHARE of the file's pages are free. SQLite reuses free pages for new articles anyway, and its
VACUUM rewrites the whole file while holding the write lock, so it is worth its cost only after a large
deletion (typically the first retention run on an old store). Several PostgreSQL workers may start
maintenance at the same time: an advisory lock lets one of them do it and the others skip.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, text
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel, col, select

from worker.config import RetentionSettings
from worker.store.db import is_sqlite
from worker.store.models import SOURCE_SEED, Article, IdentityKey
from worker.timeutil import utcnow

# Articles deleted per transaction: each batch (with its cascades) takes a fraction of a second.
RETENTION_BATCH = 500
# SQLite: VACUUM when at least this share of the file's pages are free.
VACUUM_FREE_SHARE = 0.25
# SQLite: rows ANALYZE samples per index; bounds its time on a large store (SQLite's own advice).
SQLITE_ANALYSIS_LIMIT = 1000
# Any constant will do; it differs from the migration lock of `worker.store.db`.
PG_MAINTENANCE_LOCK = 0x6E770002

Progress = Callable[[int], None]


@dataclass(frozen=True)
class MaintenanceReport:
    deleted: int  # feed articles deleted by retention
    tombstones: int  # identity keys of those articles, kept as tombstones
    vacuumed: bool
    analyzed: bool
    seconds: float
    # PostgreSQL: another worker held the maintenance lock, so this one did nothing.
    skipped: bool = False

    def describe(self, days: int) -> str:
        """One line for the log or the terminal; `days` is the retention the run applied."""
        if self.skipped:
            return "maintenance: another worker is running it right now; nothing done"
        if days <= 0:
            retention = "retention off (0 days: every article is kept)"
        else:
            articles = "article" if self.deleted == 1 else "articles"
            period = f"{days} {'day' if days == 1 else 'days'}"
            retention = (
                f"deleted {self.deleted:,} feed {articles} older than {period}, "
                f"{self.tombstones:,} identity keys kept as tombstones"
            )
        steps = (("analyzed", self.analyzed), ("vacuumed", self.vacuumed))
        upkeep = ", ".join(step for step, done in steps if done) or "no upkeep"
        return f"maintenance: {retention}; {upkeep}; {self.seconds:.1f} s"


@dataclass(frozen=True)
class _Retired:
    articles: int
    tombstones: int


def _cutoff(days: int, now: datetime) -> datetime:
    return now - timedelta(days=days)


def _expired(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        col(Article.source) != SOURCE_SEED,
        col(Article.published) < cutoff,
        col(Article.fetched_at) < cutoff,
    )


def count_expired(session: Session, days: int, now: datetime) -> int:
    """How many articles `apply_retention` would delete (0 when `days` is 0: keep forever)."""
    if days <= 0:
        return 0
    query = select(func.count()).select_from(Article).where(*_expired(_cutoff(days, now)))
    return int(session.exec(query).one())


def apply_retention(session: Session, days: int, now: datetime) -> int:
    """Delete the feed articles whose date and fetch time are both more than `days` before `now`, in
    batches, committing after each one; returns how many. `days` 0 keeps everything."""
    return _retire(session, days, now).articles


def _retire(session: Session, days: int, now: datetime, progress: Progress | None = None) -> _Retired:
    if days <= 0:
        return _Retired(0, 0)
    cutoff = _cutoff(days, now)
    articles = tombstones = 0
    while True:
        ids = [
            article_id
            for article_id in session.exec(
                select(Article.id).where(*_expired(cutoff)).order_by(col(Article.id)).limit(RETENTION_BATCH)
            )
            if article_id is not None
        ]
        if not ids:
            return _Retired(articles, tombstones)
        tombstones += _count_keys(session, ids)
        session.execute(delete(Article).where(col(Article.id).in_(ids)))
        session.commit()
        articles += len(ids)
        if progress is not None:
            progress(len(ids))


def _count_keys(session: Session, article_ids: Sequence[int]) -> int:
    query = select(func.count()).select_from(IdentityKey).where(col(IdentityKey.article_id).in_(article_ids))
    return int(session.exec(query).one())


def run_maintenance(
    engine: Engine,
    retention: RetentionSettings,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> MaintenanceReport:
    """Retention, then statistics and space: see the module docstring. `progress` gets the number of
    articles each batch deleted."""
    started = time.monotonic()
    now = now or utcnow()
    if is_sqlite(engine):
        retired = _retire_all(engine, retention.days, now, progress)
        vacuumed = _sqlite_upkeep(engine)
        return MaintenanceReport(
            retired.articles, retired.tombstones, vacuumed, True, time.monotonic() - started
        )
    with _pg_maintenance_lock(engine) as held:
        if not held:
            return MaintenanceReport(0, 0, False, False, time.monotonic() - started, skipped=True)
        retired = _retire_all(engine, retention.days, now, progress)
        _pg_upkeep(engine, vacuum=retired.articles > 0)
    return MaintenanceReport(
        retired.articles, retired.tombstones, retired.articles > 0, True, time.monotonic() - started
    )


def _retire_all(engine: Engine, days: int, now: datetime, progress: Progress | None) -> _Retired:
    with Session(engine) as session:
        return _retire(session, days, now, progress)


def _sqlite_upkeep(engine: Engine) -> bool:
    """ANALYZE, and VACUUM when enough of the file is free; True when it vacuumed.

    On the raw DBAPI connection: pysqlite opens no transaction by itself there (see `worker.store.db`),
    and VACUUM cannot run inside one.
    """
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
        cursor.execute("ANALYZE")
        pages = int(cursor.execute("PRAGMA page_count").fetchone()[0])
        free = int(cursor.execute("PRAGMA freelist_count").fetchone()[0])
        vacuum = free > 0 and free >= VACUUM_FREE_SHARE * pages
        if vacuum:
            cursor.execute("VACUUM")
            # VACUUM wrote the whole database into the WAL: give that space back too.
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
        return vacuum
    finally:
        raw.close()


@contextmanager
def _pg_maintenance_lock(engine: Engine) -> Iterator[bool]:
    """A session-level advisory lock, held on a connection of its own for the whole run (no transaction
    stays open meanwhile); yields whether this process got it."""
    key = {"key": PG_MAINTENANCE_LOCK}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar())
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)


def _pg_upkeep(engine: Engine, vacuum: bool) -> None:
    """ANALYZE the store's tables (not the whole database, which other applications may share); after a
    deletion VACUUM (ANALYZE), which also makes the dead rows' space reusable at once."""
    tables = ", ".join(_quoted(engine, table.name) for table in SQLModel.metadata.sorted_tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM (ANALYZE) {tables}" if vacuum else f"ANALYZE {tables}"))


def _quoted(engine: Engine, name: str) -> str:
    return str(engine.dialect.identifier_preparer.quote(name))
