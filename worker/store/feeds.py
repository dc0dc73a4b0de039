"""Every feed query: config sync, user feeds, claiming due feeds with leases, health listings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, text, update
from sqlmodel import Session, col, select

from worker.errors import NewswatchError
from worker.redact import redact_url
from worker.store.leases import skip_locked
from worker.store.models import FEED_ORIGIN_CONFIG, FEED_ORIGIN_USER, Article, Feed
from worker.timeutil import utcnow

REMOVED_FROM_CONFIG = "removed from the config file"
# Any constant will do; it only has to be the same for every Newswatch process.
_PG_SYNC_LOCK = 0x6E770003


@dataclass(frozen=True)
class DeclaredFeed:
    """A feed as the config (or an OPML file it names) declares it."""

    url: str
    interval: float | None = None
    tags: tuple[str, ...] = ()
    title: str | None = None


@dataclass(frozen=True)
class SyncReport:
    added: int = 0
    changed: int = 0
    disabled: int = 0


@dataclass(frozen=True)
class FeedHealth:
    """One row of `newswatch feeds`: a feed and what we know of its health."""

    id: int
    url: str
    title: str | None
    status: str  # ok, error or disabled (pending: never polled yet)
    http_status: int | None
    articles: int
    error_count: int
    last_error: str | None
    last_fetch: datetime | None
    next_check: datetime
    interval: int | None
    origin: str
    tags: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "url": redact_url(self.url),
            "title": self.title,
            "status": self.status,
            "http_status": self.http_status,
            "articles": self.articles,
            "error_count": self.error_count,
            "last_error": self.last_error,
            "last_fetch": iso(self.last_fetch),
            "next_check": iso(self.next_check),
            "interval": self.interval,
            "origin": self.origin,
            "tags": list(self.tags),
        }


def _interval(value: float | None) -> int | None:
    return int(value) if value is not None else None


def sync_declared(session: Session, declared: Sequence[DeclaredFeed]) -> SyncReport:
    """Make the store's config feeds match the config: add, update, and disable what it no longer lists.

    Workers starting together sync one after another, each seeing what the one before added (else both
    insert the same feeds and one fails): on PostgreSQL under an advisory lock held to the end of the
    transaction; SQLite's writer lock, taken at BEGIN, already does it.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SYNC_LOCK})
    added = changed = disabled = 0
    wanted = {feed.url: feed for feed in declared}
    existing = {
        (feed.config_url or feed.url): feed
        for feed in session.exec(select(Feed).where(Feed.origin == FEED_ORIGIN_CONFIG))
    }
    for url, decl in wanted.items():
        feed = existing.get(url)
        if feed is None:
            feed = session.exec(select(Feed).where(Feed.url == url)).first()
            if feed is None:
                session.add(
                    Feed(
                        url=url,
                        config_url=url,
                        origin=FEED_ORIGIN_CONFIG,
                        title=decl.title,
                        interval_seconds=_interval(decl.interval),
                        tags=list(decl.tags),
                    )
                )
                added += 1
                continue
            feed.origin = FEED_ORIGIN_CONFIG  # a user feed now declared in the config belongs to the config
            feed.config_url = url
        fields = (feed.interval_seconds, list(feed.tags), feed.enabled, feed.title if decl.title else None)
        target = (_interval(decl.interval), list(decl.tags), True, decl.title)
        if fields != target and not (feed.disabled_reason and feed.disabled_reason != REMOVED_FROM_CONFIG):
            feed.interval_seconds = _interval(decl.interval)
            feed.tags = list(decl.tags)
            if decl.title:
                feed.title = decl.title
            if not feed.enabled:
                feed.enabled = True
                feed.disabled_reason = None
                feed.next_check = utcnow()
            changed += 1
    for url, feed in existing.items():
        if url not in wanted and feed.enabled:
            feed.enabled = False
            feed.disabled_reason = REMOVED_FROM_CONFIG
            disabled += 1
    return SyncReport(added, changed, disabled)


def add_feed(session: Session, url: str, interval: float | None = None, tags: Iterable[str] = ()) -> Feed:
    """A user feed (lives in the store, not the config). Raises NewswatchError when it exists."""
    existing = session.exec(select(Feed).where(Feed.url == url)).first()
    if existing is not None:
        if existing.enabled:
            raise NewswatchError(f"feed {redact_url(url)} is already subscribed")
        existing.enabled = True
        existing.disabled_reason = None
        existing.next_check = utcnow()
        return existing
    feed = Feed(url=url, origin=FEED_ORIGIN_USER, interval_seconds=_interval(interval), tags=list(tags))
    session.add(feed)
    session.flush()
    return feed


def find_feed(session: Session, ref: str) -> Feed:
    """A feed by id or URL. Raises NewswatchError when there is none."""
    query = select(Feed).where(or_(col(Feed.url) == ref, col(Feed.config_url) == ref))
    if ref.isdigit():
        query = select(Feed).where(Feed.id == int(ref))
    feed = session.exec(query).first()
    if feed is None:
        raise NewswatchError(f"no feed {redact_url(ref)} (see `newswatch feeds list`)")
    return feed


def remove_feed(session: Session, ref: str) -> Feed:
    """Stop polling a feed. Its articles stay stored; a config feed must be removed from the config."""
    feed = find_feed(session, ref)
    if feed.origin == FEED_ORIGIN_CONFIG and feed.enabled:
        raise NewswatchError(f"feed {feed.url} is declared in the config file: remove it there")
    session.delete(feed)
    return feed


def health(session: Session) -> list[FeedHealth]:
    counts = dict(session.exec(select(Article.feed_id, func.count()).group_by(col(Article.feed_id))).all())
    rows = []
    for feed in session.exec(select(Feed).order_by(col(Feed.id))):
        assert feed.id is not None
        if not feed.enabled:
            status = "disabled"
        elif feed.error_count:
            status = "error"
        elif feed.last_fetch is None:
            status = "pending"
        else:
            status = "ok"
        rows.append(
            FeedHealth(
                id=feed.id,
                url=feed.url,
                title=feed.title,
                status=status,
                http_status=feed.http_status,
                articles=int(counts.get(feed.id, 0)),
                error_count=feed.error_count,
                last_error=feed.last_error
                if feed.enabled or not feed.disabled_reason
                else feed.disabled_reason,
                last_fetch=feed.last_fetch,
                next_check=feed.next_check,
                interval=feed.interval_seconds,
                origin=feed.origin,
                tags=tuple(feed.tags),
            )
        )
    return rows


def claim_due(
    session: Session, owner: str, now: datetime, limit: int, lease_seconds: float, every: bool = False
) -> list[Feed]:
    """Lease up to `limit` due feeds to `owner` (all enabled feeds with `every`).

    A lease, not a lock: a worker that dies leaves its feeds to others once the lease expires. On PostgreSQL,
    SKIP LOCKED lets concurrent workers claim disjoint sets without waiting on each other.
    """
    query = (
        select(Feed.id)
        .where(col(Feed.enabled))
        .where(or_(col(Feed.lease_until).is_(None), col(Feed.lease_until) < now))
        .order_by(col(Feed.next_check))
        .limit(limit)
    )
    if not every:
        query = query.where(col(Feed.next_check) <= now)
    query = skip_locked(query, session)
    ids = [feed_id for feed_id in session.exec(query) if feed_id is not None]
    if not ids:
        return []
    session.execute(
        update(Feed)
        .where(col(Feed.id).in_(ids))
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
    )
    return list(session.exec(select(Feed).where(col(Feed.id).in_(ids)).order_by(col(Feed.next_check))))


def release(session: Session, feed_ids: Sequence[int], owner: str) -> None:
    """Give back leases that were not used (shutdown before the poll)."""
    if feed_ids:
        session.execute(
            update(Feed)
            .where(col(Feed.id).in_(feed_ids), col(Feed.lease_owner) == owner)
            .values(lease_owner=None, lease_until=None)
        )


def next_due(session: Session) -> datetime | None:
    return session.exec(select(func.min(Feed.next_check)).where(col(Feed.enabled))).one()
