"""The only place that orchestrates a poll: claim → fetch → parse → dedup + tag → one commit per feed.

Fetching is I/O and runs concurrently on the event loop. Everything after it — parse, detection, tagging,
storing, the feed's new state — happens for one feed inside one database transaction, in a worker thread
(one thread on SQLite, whose single writer would only make more threads wait; a few on PostgreSQL). A
feed's items and its state commit together or not at all (DESIGN invariant 4).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from worker.config import Settings
from worker.errors import NewswatchError, ParseError, one_line
from worker.ingest import schedule
from worker.ingest.fetch import Fetcher, FetchRequest, FetchResult
from worker.ingest.parse import ParsedEntry, ParsedFeed, parse_feed
from worker.redact import redact_url
from worker.store import feeds as feed_store
from worker.store.articles import (
    AlertPlanner,
    FeedTags,
    NearDuplicateIndex,
    NewArticle,
    TagSource,
    store_items,
)
from worker.store.db import is_sqlite, session_scope
from worker.store.leases import worker_id
from worker.store.models import SOURCE_FEED, Feed
from worker.timeutil import utcnow

log = logging.getLogger("newswatch.poll")

# Small fields are cut to what the store's columns hold on every backend.
_LANG_MAX = 16
_PG_THREADS = 4


@dataclass(frozen=True)
class FeedSnapshot:
    """What the fetch needs of a claimed feed, detached from any session."""

    id: int
    url: str
    etag: str | None
    last_modified: str | None


@dataclass
class PollSummary:
    feeds: int = 0
    errors: int = 0
    unchanged: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    skipped_entries: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, other: FeedOutcome) -> None:
        self.feeds += 1
        self.new += other.new
        self.updated += other.updated
        self.duplicates += other.duplicates
        self.skipped_entries += other.skipped
        if other.unchanged:
            self.unchanged += 1
        if other.error:
            self.errors += 1
            self.failed.append(f"{redact_url(other.url)}: {other.error}")


@dataclass(frozen=True)
class FeedOutcome:
    feed_id: int
    url: str
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    skipped: int = 0
    unchanged: bool = False
    error: str | None = None


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        index: NearDuplicateIndex,
        tagger: TagSource | None,
        owner: str | None = None,
        rng: random.Random | None = None,
        alerts: AlertPlanner | None = None,
        on_new: Callable[[], None] | None = None,
    ) -> None:
        """`alerts` writes the outbox rows of new articles; `on_new` is called (on the event loop) after a
        feed committed new articles, so the deliverer can start at once."""
        self.settings = settings
        self.alerts = alerts
        self.on_new = on_new
        self.engine = engine
        self.index = index
        self.tagger = tagger
        self.owner = owner or worker_id()
        self.rng = rng or random.Random()
        self.policy = schedule.SchedulePolicy(
            interval=settings.poll_interval,
            min_interval=settings.poll_min_interval,
            max_backoff=settings.poll_max_backoff,
            jitter=settings.poll_jitter,
        )
        self._unchanged = _Batcher(self)
        self._db = ThreadPoolExecutor(
            max_workers=1 if is_sqlite(engine) else _PG_THREADS, thread_name_prefix="newswatch-db"
        )

    def close(self) -> None:
        self._db.shutdown(wait=True)

    async def _in_db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    # -- claiming ---------------------------------------------------------------------------------------

    def make_due(self, feed_refs: Sequence[str] | None = None) -> int:
        """Mark feeds due now: all enabled ones, or the named ones (ids or URLs)."""
        with session_scope(self.engine) as session:
            query = update(Feed).where(col(Feed.enabled)).values(next_check=utcnow())
            if feed_refs:
                ids = [feed_store.find_feed(session, ref).id for ref in feed_refs]
                query = query.where(col(Feed.id).in_(ids))
            return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]

    def _claim(self, limit: int, only: frozenset[int] | None) -> list[FeedSnapshot]:
        with session_scope(self.engine) as session:
            claimed = feed_store.claim_due(session, self.owner, utcnow(), limit, self.settings.poll_lease)
            snapshots = [
                FeedSnapshot(f.id, f.url, f.etag, f.last_modified) for f in claimed if f.id is not None
            ]
            if only is not None:
                extra = [s.id for s in snapshots if s.id not in only]
                feed_store.release(session, extra, self.owner)
                snapshots = [s for s in snapshots if s.id in only]
            return snapshots

    def _release(self, feed_ids: list[int]) -> None:
        with session_scope(self.engine) as session:
            feed_store.release(session, feed_ids, self.owner)

    # -- one pass -----------------------------------------------------------------------------------------

    async def run_pass(
        self,
        fetcher: Fetcher,
        stop: asyncio.Event | None = None,
        only: Sequence[int] | None = None,
        progress: Callable[[FeedOutcome], None] | None = None,
    ) -> PollSummary:
        """Poll every due feed once, `concurrency` at a time, claiming in small batches (fresh leases)."""
        stop = stop or asyncio.Event()
        only_set = frozenset(only) if only is not None else None
        summary = PollSummary()
        concurrency = self.settings.poll_concurrency
        running: dict[asyncio.Task[FeedOutcome], FeedSnapshot] = {}
        exhausted = False
        try:
            while not stop.is_set():
                if not exhausted and len(running) < concurrency:
                    batch = await self._in_db(self._claim, concurrency - len(running), only_set)
                    exhausted = not batch
                    for snap in batch:
                        running[asyncio.create_task(self._poll_one(fetcher, snap))] = snap
                if not running:
                    break
                stop_wait = asyncio.ensure_future(stop.wait())
                await asyncio.wait([*running, stop_wait], return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                for task in [t for t in running if t.done()]:
                    running.pop(task)
                    outcome = task.result()
                    summary.add(outcome)
                    if progress is not None:
                        progress(outcome)
        finally:
            await self._stop_running(running, summary, progress)
        return summary

    async def _stop_running(
        self,
        running: dict[asyncio.Task[FeedOutcome], FeedSnapshot],
        summary: PollSummary,
        progress: Callable[[FeedOutcome], None] | None,
    ) -> None:
        """On stop: fetches still waiting on the network are cancelled and their leases given back; polls
        already storing finish their transaction (commit or roll back whole)."""
        if not running:
            return
        for task in running:
            task.cancel()
        results = await asyncio.gather(*running, return_exceptions=True)
        unpolled = []
        for snap, result in zip(running.values(), results, strict=True):
            if isinstance(result, FeedOutcome):
                summary.add(result)
                if progress is not None:
                    progress(result)
            else:
                unpolled.append(snap.id)
        if unpolled:
            await self._in_db(self._release, unpolled)

    async def _poll_one(self, fetcher: Fetcher, snap: FeedSnapshot) -> FeedOutcome:
        result = await fetcher.fetch(FetchRequest(snap.url, snap.etag, snap.last_modified))
        if result.not_modified and result.error is None:
            # Nothing to store, only the feed's state: recorded with other unchanged feeds in one commit.
            return await self._unchanged.submit(snap, result)
        # Once fetched, the storing step is shielded: cancellation must not cut a transaction in half.
        outcome: FeedOutcome = await asyncio.shield(self._in_db(self.process, snap, result))
        if outcome.new and self.on_new is not None:
            self.on_new()
        return outcome

    # -- one feed, one transaction ------------------------------------------------------------------------

    def process_unchanged(self, batch: Sequence[tuple[FeedSnapshot, FetchResult]]) -> list[FeedOutcome]:
        """The new state of feeds that answered 304, in one transaction (they carry no items)."""
        try:
            with session_scope(self.engine) as session:
                # One query for the batch; each `_process` then finds its feed in the session (kept alive
                # by `loaded`: the identity map holds weak references).
                loaded = session.exec(select(Feed).where(col(Feed.id).in_([s.id for s, _ in batch]))).all()
                outcomes = [self._process(session, snap, result) for snap, result in batch]
                del loaded
                return outcomes
        except SQLAlchemyError:
            return [self.process(snap, result) for snap, result in batch]  # one by one, errors recorded

    def process(self, snap: FeedSnapshot, result: FetchResult) -> FeedOutcome:
        """Parse, store and update the feed in one transaction; on an unexpected failure record it instead."""
        try:
            with session_scope(self.engine) as session:
                return self._process(session, snap, result)
        except (SQLAlchemyError, NewswatchError, ValueError, TypeError, RecursionError) as exc:
            message = f"could not store feed: {type(exc).__name__}: {one_line(exc)}"
            log.error("%s: %s", redact_url(snap.url), message, exc_info=log.isEnabledFor(logging.DEBUG))
            with session_scope(self.engine) as session:
                feed = session.get(Feed, snap.id)
                if feed is not None:
                    self._apply_schedule(session, feed, result, None, message, utcnow())
            return FeedOutcome(snap.id, snap.url, error=message)

    def _process(self, session: Session, snap: FeedSnapshot, result: FetchResult) -> FeedOutcome:
        now = utcnow()
        feed = session.get(Feed, snap.id)
        if feed is None or feed.lease_owner != self.owner:
            # Removed meanwhile, or our lease expired and another worker took the feed: not ours to write.
            return FeedOutcome(snap.id, snap.url, unchanged=True)
        first_poll = feed.polls == 0
        body_hash = hashlib.sha256(result.body).hexdigest() if result.body is not None else None
        unchanged = result.error is None and (
            result.not_modified or (body_hash is not None and body_hash == feed.body_hash)
        )

        parsed: ParsedFeed | None = None
        parse_error: str | None = None
        if result.error is None and not unchanged:
            try:
                parsed = parse_feed(result.body or b"", result.headers, result.final_url, now)
            except ParseError as exc:
                parse_error = str(exc)

        outcome = FeedOutcome(snap.id, snap.url, unchanged=unchanged, error=result.error or parse_error)
        if parsed is not None:
            outcome = self._store_entries(session, feed, parsed, now, first_poll)
            feed.title = feed.title or parsed.title
            feed.site_url = parsed.site_url or feed.site_url
            feed.body_hash = body_hash
        if result.error is None and parse_error is None:
            if result.not_modified:  # a 304 may omit the validators: keep the ones we have
                feed.etag = result.etag or feed.etag
                feed.last_modified = result.last_modified or feed.last_modified
            else:
                feed.etag, feed.last_modified = result.etag, result.last_modified
            feed.last_success = now
        self._apply_schedule(session, feed, result, parsed, parse_error, now)
        if outcome.error:
            log.warning("%s: %s", redact_url(snap.url), outcome.error)
        return outcome

    def _apply_schedule(
        self,
        session: Session,
        feed: Feed,
        result: FetchResult,
        parsed: ParsedFeed | None,
        error: str | None,
        now: datetime,
    ) -> None:
        decision = schedule.decide(
            now,
            result,
            feed.error_count,
            self.policy,
            self.rng,
            interval=feed.interval_seconds,
            ttl_seconds=parsed.ttl_seconds if parsed is not None else None,
            parse_error=error,
        )
        feed.http_status = result.status
        feed.last_fetch = now
        feed.polls += 1
        feed.error_count = decision.error_count
        feed.last_error = decision.last_error
        feed.next_check = decision.next_check
        feed.lease_owner = None
        feed.lease_until = None
        if decision.disable_reason is not None:
            feed.enabled = False
            feed.disabled_reason = decision.disable_reason
        if decision.moved_to is not None and decision.moved_to != feed.url:
            taken = session.exec(select(Feed.id).where(col(Feed.url) == decision.moved_to)).first()
            if taken is None:
                log.info("%s moved permanently to %s", redact_url(feed.url), redact_url(decision.moved_to))
                feed.url = decision.moved_to

    def _store_entries(
        self, session: Session, feed: Feed, parsed: ParsedFeed, now: datetime, first_poll: bool
    ) -> FeedOutcome:
        assert feed.id is not None
        tags = FeedTags(self.tagger, feed.tags)
        oldest_alert = now - timedelta(seconds=self.settings.alerts.max_age)
        items = [self._new_article(feed, entry, parsed, oldest_alert, first_poll) for entry in parsed.entries]
        skipped = 0
        try:
            with session.begin_nested():
                stored = store_items(session, items, self.index, tags, self.alerts)
        except (SQLAlchemyError, ValueError, TypeError):
            # Some entry is bad. Store them one by one, so that one bad entry costs only itself.
            stored = []
            for item in items:
                try:
                    with session.begin_nested():
                        stored.extend(store_items(session, [item], self.index, tags, self.alerts))
                except (SQLAlchemyError, ValueError, TypeError) as exc:
                    skipped += 1
                    log.warning(
                        "%s: skipped entry %r: %s", redact_url(feed.url), item.guid[:80], one_line(exc)
                    )
        new = [s for s in stored if s.outcome == "new"]
        return FeedOutcome(
            feed.id,
            feed.url,
            new=len(new),
            updated=sum(s.outcome == "updated" for s in stored),
            duplicates=sum(s.article.duplicate_of is not None for s in new),
            skipped=skipped,
        )

    def _new_article(
        self, feed: Feed, entry: ParsedEntry, parsed: ParsedFeed, oldest_alert: datetime, first_poll: bool
    ) -> NewArticle:
        # Undated items of a first poll are backlog of unknown age: store them, alert nothing.
        dated = getattr(entry, "dated", True)
        alertable = entry.published >= oldest_alert and not (first_poll and not dated)
        return NewArticle(
            source=SOURCE_FEED,
            feed_id=feed.id,
            guid=entry.guid,
            url=entry.url,
            title=entry.title,
            text=entry.text,
            published=entry.published,
            author=entry.author,
            outlet=feed.title or parsed.title,
            lang=entry.lang[:_LANG_MAX] if entry.lang else None,
            summary_html=entry.summary_html,
            content_html=entry.content_html,
            updated=entry.updated,
            alertable=alertable,
        )


_Waiting = tuple[FeedSnapshot, FetchResult, "asyncio.Future[FeedOutcome]"]


class _Batcher:
    """Collects 304 results for a few milliseconds and records them in one transaction.

    A re-poll of many unchanged feeds would otherwise spend most of its time committing one tiny
    transaction per feed on the single SQLite writer.
    """

    MAX_SIZE = 64
    MAX_WAIT = 0.02  # seconds

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.pending: list[_Waiting] = []
        self.timer: asyncio.TimerHandle | None = None
        self.running: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak refs)

    async def submit(self, snap: FeedSnapshot, result: FetchResult) -> FeedOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FeedOutcome] = loop.create_future()
        self.pending.append((snap, result, future))
        if len(self.pending) >= self.MAX_SIZE:
            self.flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.MAX_WAIT, self.flush)
        # Shielded: a stop must not drop a batch other feeds are waiting on.
        return await asyncio.shield(future)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        if batch:
            task = asyncio.ensure_future(self._record(batch))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _record(
        self, batch: list[tuple[FeedSnapshot, FetchResult, asyncio.Future[FeedOutcome]]]
    ) -> None:
        try:
            outcomes = await self.pipeline._in_db(
                self.pipeline.process_unchanged, [(s, r) for s, r, _ in batch]
            )
        except Exception as exc:  # the waiting polls report it; the pass goes on
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
