"""`newswatch run`: APScheduler 3 ticks, each polling the feeds that are due, until SIGTERM/SIGINT.

One tick at a time (max_instances=1) and missed ticks coalesce into one, so a slow pass never piles up.
A signal stops claiming at once; fetches still on the network are abandoned (their leases released) and
polls already storing finish their transaction, so the process exits 0 within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from worker.ingest.fetch import Fetcher
from worker.ingest.pipeline import PollSummary
from worker.runtime import Runtime
from worker.store.leases import recover_leases
from worker.timeutil import utcnow

log = logging.getLogger("newswatch.daemon")

# Seconds a stop waits for the running poll; systemd's TimeoutStopSec must be longer.
STOP_GRACE = 8.0


class Daemon:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stop = asyncio.Event()
        # Set when a poll stored new articles: the deliverer starts at once instead of at its next round.
        self.wake = asyncio.Event()
        self.pipeline = runtime.pipeline(on_new=self.wake.set)
        self.deliverer = runtime.deliverer(self.pipeline.owner)
        self.passes = 0
        # Held while a tick runs, so that shutdown can wait for it instead of cancelling it mid-transaction.
        self._ticking = asyncio.Lock()

    async def tick(self, fetcher: Fetcher) -> None:
        if self.stop.is_set():
            return
        async with self._ticking:
            summary: PollSummary = await self.pipeline.run_pass(fetcher, self.stop)
            self.passes += 1
        if summary.feeds:
            log.info(
                "polled %d feeds: %d new articles (%d duplicates), %d updated, %d unchanged, %d errors",
                summary.feeds,
                summary.new,
                summary.duplicates,
                summary.updated,
                summary.unchanged,
                summary.errors,
            )

    def request_stop(self, signame: str) -> None:
        if not self.stop.is_set():
            log.info("received %s: finishing in-flight polls, then exiting", signame)
            self.stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        settings = self.runtime.settings
        recover_leases(self.runtime.engine)
        async with Fetcher(settings.http) as fetcher:
            scheduler = AsyncIOScheduler(timezone="UTC")
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
            scheduler.start()
            delivering = asyncio.create_task(self.deliverer.run_forever(self.stop, self.wake), name="deliver")
            log.info(
                "newswatch running: %s, tick every %gs, %d feeds at a time",
                self.runtime.engine.url.render_as_string(),
                settings.poll_tick,
                settings.poll_concurrency,
            )
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
        log.info("newswatch stopped")


def run_daemon(runtime: Runtime) -> None:
    asyncio.run(Daemon(runtime).run())
