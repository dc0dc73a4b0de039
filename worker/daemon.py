"""`newswatch run`: APScheduler 3 ticks, each polling the feeds that are due, until SIGTERM/SIGINT.

One tick at a time (max_instances=1) and missed ticks coalesce into one, so a slow pass never piles up.
A signal stops claiming at once; fetches still on the network are abandoned (their leases released) and
polls already storing finish their transaction, so the process exits 0 within seconds.

Under systemd (Type=notify) the daemon says READY=1 once the store is migrated and the scheduler runs,
WATCHDOG=1 from a job of the same scheduler (a hung event loop stops the pings and systemd restarts it),
STATUS= after every pass, and STOPPING=1 on a stop. SIGHUP reloads feeds, tag rules and channels: the new
config is read and validated whole first, and a broken one is refused with one log line, the old one
staying in force. Retention and database maintenance run every `[retention] maintenance_every`, the first
time one interval after the start.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from worker.errors import NewswatchError, one_line
from worker.ingest.fetch import Fetcher
from worker.ingest.pipeline import PollSummary
from worker.notify import Notifier, watchdog_interval
from worker.runtime import Runtime
from worker.store.db import session_scope
from worker.store.leases import recover_leases
from worker.store.models import DELIVERY_PENDING, Delivery, Feed
from worker.store.retention import run_maintenance
from worker.timeutil import utcnow

log = logging.getLogger("newswatch.daemon")

# Seconds a stop waits for the running poll; systemd's TimeoutStopSec must be longer.
STOP_GRACE = 8.0


def status_line(feeds: int, outbox: int, last: PollSummary | None) -> str:
    """The one-line summary systemd shows (STATUS=), e.g. "42 feeds, last poll 3 new, 0 errors, outbox 0"."""
    poll = f"last poll {last.new} new, {last.errors} errors" if last is not None else "no poll yet"
    return f"{feeds} feed{'' if feeds == 1 else 's'}, {poll}, outbox {outbox}"


def _counts(engine: Engine) -> tuple[int, int]:
    """Enabled feeds and deliveries waiting to be sent."""
    with session_scope(engine) as session:
        feeds = session.exec(select(func.count()).select_from(Feed).where(col(Feed.enabled))).one()
        outbox = session.exec(
            select(func.count()).select_from(Delivery).where(col(Delivery.status) == DELIVERY_PENDING)
        ).one()
    return int(feeds), int(outbox)


def _db_error(exc: SQLAlchemyError) -> str:
    return one_line(getattr(exc, "orig", None) or exc)


class Daemon:
    def __init__(self, runtime: Runtime, notifier: Notifier | None = None) -> None:
        self.runtime = runtime
        self.notifier = notifier or Notifier.from_environment()
        self.stop = asyncio.Event()
        # Set when a poll stored new articles: the deliverer starts at once instead of at its next round.
        self.wake = asyncio.Event()
        self.pipeline = runtime.pipeline(on_new=self.wake.set)
        self.deliverer = runtime.deliverer(self.pipeline.owner)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.passes = 0
        self.last_poll: PollSummary | None = None  # the last pass that polled any feed
        # Held while a tick runs, so that shutdown can wait for it instead of cancelling it mid-transaction.
        self._ticking = asyncio.Lock()
        # One reload at a time: a second SIGHUP waits for the first, then reads the files again.
        self._reloading = asyncio.Lock()
        self._reloads: set[asyncio.Task[None]] = set()

    async def tick(self, fetcher: Fetcher) -> None:
        if self.stop.is_set():
            return
        async with self._ticking:
            summary: PollSummary = await self.pipeline.run_pass(fetcher, self.stop)
            self.passes += 1
        if summary.feeds:
            self.last_poll = summary
            log.info(
                "polled %d feeds: %d new articles (%d duplicates), %d updated, %d unchanged, %d errors",
                summary.feeds,
                summary.new,
                summary.duplicates,
                summary.updated,
                summary.unchanged,
                summary.errors,
            )
        if self.notifier.enabled:
            status = await self.status()
            if not self.stop.is_set():  # after STOPPING=1, systemd shows that
                self.notifier.status(status)

    async def maintain(self) -> None:
        """Retention and database upkeep, in a thread: deleting and VACUUM take a while."""
        if self.stop.is_set():
            return
        retention = self.runtime.settings.retention
        try:
            report = await asyncio.to_thread(run_maintenance, self.runtime.engine, retention)
        except SQLAlchemyError as exc:  # the next run tries again
            log.error("maintenance failed: database error: %s", _db_error(exc))
            return
        if report.skipped:
            log.info("maintenance: another worker is running it; skipped")
            return
        deleted = (
            f"{report.deleted} feed articles older than {retention.days} days deleted "
            f"({report.tombstones} identity keys kept as tombstones)"
            if retention.days > 0
            else "retention off"
        )
        steps = (("analyzed", report.analyzed), ("vacuumed", report.vacuumed))
        upkeep = ", ".join(step for step, done in steps if done) or "no upkeep"
        log.info("maintenance: %s; %s in %.1f s", deleted, upkeep, report.seconds)

    async def watchdog(self) -> None:
        # A coroutine, so APScheduler runs it on the event loop itself (plain functions go to a thread):
        # the ping proves that the loop, and the scheduler on it, still turn.
        self.notifier.watchdog()

    async def status(self) -> str:
        try:
            feeds, outbox = await asyncio.to_thread(_counts, self.runtime.engine)
        except SQLAlchemyError as exc:  # the store is briefly away: say so instead of failing the job
            return f"database error: {_db_error(exc)}"
        return status_line(feeds, outbox, self.last_poll)

    def request_stop(self, signame: str) -> None:
        if not self.stop.is_set():
            log.info("received %s: finishing in-flight polls, then exiting", signame)
            self.notifier.stopping()
            self.stop.set()

    def request_reload(self) -> None:
        if self.stop.is_set():
            return
        log.info("received SIGHUP: reloading feeds, tag rules and channels")
        task = asyncio.ensure_future(self.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> None:
        async with self._reloading:
            self.notifier.reloading()
            try:
                await self._reload()
            finally:
                if self.notifier.enabled:
                    self.notifier.ready(await self.status())

    async def _reload(self) -> None:
        """Read and validate the whole new config, sync its feeds, then swap tagger, targets and router."""
        try:
            new = await asyncio.to_thread(self.runtime.prepare_reload)
            report = await asyncio.to_thread(self.runtime.sync_feeds, new.feeds)
        except NewswatchError as exc:
            log.error("reload refused, the running config stays in force: %s", exc)
            return
        except SQLAlchemyError as exc:
            log.error("reload failed, the running config stays in force: database error: %s", _db_error(exc))
            return
        # The deliverer learns new targets before the router writes rows for them.
        self.deliverer.use(new.targets, new.settings.alerts)
        self.runtime.apply_reload(new)
        log.info(
            "reloaded: %d config feeds (%d added, %d changed, %d disabled), %d tags, %d alert targets",
            len(new.feeds),
            report.added,
            report.changed,
            report.disabled,
            len(new.tagger.rules.tag_names),
            len(new.targets),
        )
        if new.needs_restart:
            log.warning("changed settings that apply only after a restart: %s", ", ".join(new.needs_restart))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        settings = self.runtime.settings
        recover_leases(self.runtime.engine)
        async with Fetcher(settings.http) as fetcher:
            scheduler = self.scheduler
            scheduler.add_job(
                self.tick,
                "interval",
                args=[fetcher],
                seconds=settings.poll_tick,
                max_instances=1,
                coalesce=True,
                next_run_time=utcnow(),
                id="poll",
            )
            # First run one interval after the start: a restart loop must not vacuum again and again.
            scheduler.add_job(
                self.maintain,
                "interval",
                seconds=settings.retention.maintenance_every,
                max_instances=1,
                coalesce=True,
                id="maintenance",
            )
            ping_every = watchdog_interval()
            if ping_every is not None and self.notifier.enabled:
                scheduler.add_job(
                    self.watchdog,
                    "interval",
                    seconds=ping_every,
                    max_instances=1,
                    coalesce=True,
                    id="watchdog",
                )
            scheduler.start()
            delivering = asyncio.create_task(self.deliverer.run_forever(self.stop, self.wake), name="deliver")
            log.info(
                "newswatch running: %s, tick every %gs, %d feeds at a time",
                self.runtime.engine.url.render_as_string(),
                settings.poll_tick,
                settings.poll_concurrency,
            )
            if self.notifier.enabled:
                self.notifier.ready(await self.status())
            try:
                await self.stop.wait()
            finally:
                # No new ticks; the running one (if any) watches self.stop and winds down by itself.
                # APScheduler's shutdown would cancel it mid-poll, so it comes after.
                scheduler.pause()
                try:
                    await asyncio.wait_for(self._ticking.acquire(), timeout=STOP_GRACE)
                except TimeoutError:
                    log.warning("the running poll did not finish within %ss; exiting anyway", STOP_GRACE)
                scheduler.shutdown(wait=False)
                # The deliverer finishes the message it is sending (and marks it), then sees the stop.
                await asyncio.wait([delivering], timeout=STOP_GRACE)
                self.pipeline.close()
                self.deliverer.close()
        self.notifier.close()
        log.info("newswatch stopped")


def run_daemon(runtime: Runtime) -> None:
    asyncio.run(Daemon(runtime).run())
