"""Scale-out on PostgreSQL: three `newswatch run` workers share one store while 300 feeds keep gaining tagged
items; one worker is killed with SIGKILL mid-run. Every item is stored once, every alert arrives (at most
one twice: the one in flight), every feed is polled after its last change, and no feed is polled twice for
one due time (leases).

The poll interval cannot be shorter than a minute, so a thread of the test plays the clock: every
FAST_FORWARD seconds it makes every feed due again, as if its interval had passed. Leases are short
(NEWSWATCH_POLL_LEASE, NEWSWATCH_ALERTS_LEASE), so the killed worker's feeds and deliveries are taken over
within the test.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.newsstream import INSTANT_ALERTS, ItemStream, alert_counts, channels_file, wait_until
from tests.receivers import WebhookReceiver
from tests.running import RunningDaemon
from worker.store.articles import NewArticle, store_items
from worker.store.db import session_scope
from worker.store.dedup_index import DedupIndex
from worker.store.feeds import DeclaredFeed, SyncReport, sync_declared
from worker.store.models import SOURCE_SEED, Article
from worker.timeutil import utcnow

pytestmark = pytest.mark.postgres

FEEDS = 300
WORKERS = 3
FAST_FORWARD = 3.0  # seconds: the compressed poll interval
LEASE = "10s"
SETTLE_TIMEOUT = 90.0  # after the stream stops: everything stored and alerted by then
_POLLED = re.compile(r"polled (\d+) feeds")


def _plain(url: str) -> str:
    """The SQLAlchemy URL as libpq takes it (options, i.e. the test's schema, included)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def _clock(pg_url: str) -> Iterator[list[int]]:
    """Make every polled feed due again every FAST_FORWARD seconds; yields the list of fast-forwards.

    A feed becomes due at its last fetch, so the feeds polled longest ago come first, as with a real
    interval. Rows a worker is writing right now are skipped (that poll makes them due later anyway):
    waiting for them could deadlock with a worker's batch of 304s, which locks its feeds in another order.
    """
    stop = threading.Event()
    forwards: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(_plain(pg_url), autocommit=True) as conn:
                while not stop.wait(FAST_FORWARD):
                    cursor = conn.execute(
                        "UPDATE feed SET next_check = last_fetch WHERE id IN "
                        "(SELECT id FROM feed WHERE last_fetch IS NOT NULL FOR UPDATE SKIP LOCKED)"
                    )
                    forwards.append(cursor.rowcount)
        except BaseException as exc:  # reported by the test, not lost in a thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="clock", daemon=True)
    thread.start()
    try:
        yield forwards
    finally:
        stop.set()
        thread.join()
    assert not errors, f"the test's clock failed: {errors[0]!r}"


def _rows(pg_url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(_plain(pg_url)) as conn:
        return conn.execute(query).fetchall()


def _stored(pg_url: str) -> list[str]:
    return [str(guid) for (guid,) in _rows(pg_url, "SELECT guid FROM article WHERE source = 'feed'")]


def _polled(daemon: RunningDaemon) -> int:
    return sum(int(match[1]) for match in _POLLED.finditer(daemon.output))


def _scale_out(
    tmp_path: Path, pg_url: str, feed_server: FeedServer, webhook: WebhookReceiver, seconds: float, kills: int
) -> None:
    rng = random.Random(7)
    stream = ItemStream(feed_server, FEEDS, rng)
    for path in stream.paths:
        stream.add(path)
    channels_file(tmp_path, webhook)
    feeds = "".join(f'[[feeds]]\nurl = "{url}"\n' for url in stream.urls)
    config = write_config(tmp_path, INSTANT_ALERTS + feeds, http="timeout = 10\nper_host_limit = 16")
    env = {
        "NEWSWATCH_DATABASE_URL": pg_url,
        "NEWSWATCH_POLL_TICK": "1s",
        "NEWSWATCH_POLL_LEASE": LEASE,
        "NEWSWATCH_ALERTS_LEASE": LEASE,
    }
    with ExitStack() as stack:
        workers = [stack.enter_context(RunningDaemon(config, env=env)) for _ in range(WORKERS)]
        for worker in workers:
            worker.wait_for_line("newswatch running")
        killed: list[RunningDaemon] = []
        with _clock(pg_url) as forwards:
            stream.start(every=0.05)
            try:
                for kill in range(kills):
                    time.sleep(seconds / (kills + 1) + rng.uniform(0, FAST_FORWARD))
                    victim = workers[kill % len(workers)]
                    victim.process.send_signal(signal.SIGKILL)
                    assert victim.process.wait(timeout=30) == -signal.SIGKILL
                    killed.append(victim)
                    if kill < kills - 1:  # the soak keeps three workers; the last kill leaves two
                        workers[kill % len(workers)] = stack.enter_context(RunningDaemon(config, env=env))
                time.sleep(seconds / (kills + 1))
            finally:
                stream.stop()
            everything = set(stream.published)
            settled = wait_until(
                lambda: set(_stored(pg_url)) == everything and set(alert_counts(webhook)) == everything,
                SETTLE_TIMEOUT,
                interval=1.0,
            )
            time.sleep(2.0)  # anything sent twice would arrive by now
        codes = [worker.stop() for worker in workers if worker.process.poll() is None]
        fast_forwards = len(forwards)

    stored = _stored(pg_url)
    missing = sorted(everything - set(stored))
    assert settled, (
        f"{len(missing)} items never stored, e.g. {missing[:5]}; feeds not polled: {stream.unpolled_feeds()}"
    )
    assert len(stored) == len(set(stored)) == len(everything)
    assert stream.unpolled_feeds() == []
    alerts = alert_counts(webhook)
    assert set(alerts) == everything
    repeated = {marker: n for marker, n in alerts.items() if n > 1}
    assert sum(n - 1 for n in repeated.values()) <= kills, repeated
    assert codes == [0] * len(codes)
    # Each surviving worker did part of the polling: the work is shared, not taken by whoever started first.
    # (A killed worker may die before it finishes a pass, so it has nothing to show.)
    survivors = [worker for worker in workers if worker not in killed]
    assert all(_polled(worker) > 0 for worker in survivors), [_polled(w) for w in survivors]
    # A feed is due once at the start and once per fast-forward; polled more often, two workers took it for
    # the same due time. A kill adds one poll to the feeds the killed worker held (fetched, not committed).
    hits = {path: feed_server.hits(path) for path in stream.paths}
    busiest = max(hits, key=lambda path: hits[path])
    assert hits[busiest] <= 1 + fast_forwards + kills, (busiest, hits[busiest], fast_forwards)


def test_three_workers_share_the_feeds_and_survive_a_sigkill(
    tmp_path: Path, pg_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    _scale_out(tmp_path, pg_url, feed_server, webhook, seconds=24, kills=1)


@pytest.mark.slow
def test_scale_out_soak(
    tmp_path: Path, pg_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    _scale_out(tmp_path, pg_url, feed_server, webhook, seconds=300, kills=8)


class _SecondWorker:
    """`work` in a transaction of another worker (a thread) that must wait on the caller's open transaction.

    `start` returns once it waits on a lock; `result` once it is done (re-raising what it raised).
    """

    def __init__(self, engine: Engine, work: Callable[[Session], object]) -> None:
        self.engine = engine
        self.work = work
        self.pid: int | None = None
        self.outcome: list[object] = []
        self.thread = threading.Thread(target=self._run, name="second-worker")

    def _run(self) -> None:
        try:
            with session_scope(self.engine) as session:
                self.pid = int(session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
                self.outcome.append(self.work(session))
        except Exception as exc:  # handed to the test by result()
            self.outcome.append(exc)

    def start(self) -> None:
        self.thread.start()
        assert wait_until(self._waiting, 10), "the second worker never waited for the first"

    def _waiting(self) -> bool:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND wait_event_type = 'Lock'")
        with self.engine.connect() as connection:
            return self.pid is not None and bool(connection.execute(query, {"pid": self.pid}).scalar_one())

    def result(self) -> object:
        self.thread.join(timeout=30)
        [outcome] = self.outcome
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_workers_starting_together_add_the_config_feeds_once(pg_engine: Engine) -> None:
    declared = [DeclaredFeed(f"https://feeds.example/{n}.xml") for n in range(5)]
    with session_scope(pg_engine) as session:
        assert sync_declared(session, declared).added == 5
        second = _SecondWorker(pg_engine, lambda s: sync_declared(s, declared))
        second.start()
    assert second.result() == SyncReport()  # it saw the first worker's feeds, and did not fail


def test_workers_starting_together_import_each_seed_once(pg_engine: Engine) -> None:
    """Workers starting together on a fresh store all import the seeds (runtime.import_seeds)."""
    seed = NewArticle(
        source=SOURCE_SEED,
        feed_id=None,
        guid="000_seed.txt",
        url=None,
        title="The OTS summit in Budapest",
        text="Leaders of the Organization of Turkic States met in Budapest for an informal summit.",
        published=utcnow(),
        alertable=False,
    )
    with session_scope(pg_engine) as session:
        store_items(session, [seed], DedupIndex(), None)
        # The second worker reads no key yet, inserts its article and waits on the first one's key row.
        second = _SecondWorker(pg_engine, lambda s: store_items(s, [seed], DedupIndex(), None))
        second.start()
    second.result()
    with Session(pg_engine) as session:
        assert session.exec(select(func.count()).where(col(Article.source) == SOURCE_SEED)).one() == 1
