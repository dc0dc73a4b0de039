"""Chaos on SQLite: kill -9 the daemon at random moments while feeds stream new items and alerts go out.

After every kill the file passes `PRAGMA integrity_check`, nothing is stored twice, and the alerts repeated
so far are at most one per kill (the message in flight, invariant 2); at the end every item the server
published is stored once and every alert arrived. Startup, migrations, polls, commits and deliveries are all
hit, since the kill lands anywhere in the first seconds of a run.

The poll interval cannot be shorter than a minute, so while the daemon is down the test moves every feed's
next check to now: as if the daemon had been down for longer than the interval. The random moments come from
a seed printed in every failure message (CHAOS_SEED=… reproduces a run's choices).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.newsstream import INSTANT_ALERTS, ItemStream, alert_counts, channels_file, wait_until
from tests.receivers import WebhookReceiver
from tests.running import RunningDaemon

FEEDS = 12
ITEM_EVERY = 0.2  # seconds between new items, over all feeds
# A third of the kills land this many seconds after the start (start-up: imports, migrations, config);
# the others this many seconds after the daemon said it runs (polls, commits, deliveries).
KILL_IN_STARTUP = (0.1, 1.5)
KILL_WHEN_RUNNING = (0.0, 2.5)
STARTUP_SHARE = 1 / 3
# A tick a second: the daemon looks for due feeds at once after a restart and then often.
ENV = {"NEWSWATCH_POLL_TICK": "1s"}
FINAL_TIMEOUT = 60.0


def _config(tmp_path: Path, stream: ItemStream, hook: WebhookReceiver) -> Path:
    channels_file(tmp_path, hook)
    feeds = "".join(f'[[feeds]]\nurl = "{url}"\n' for url in stream.urls)
    return write_config(tmp_path, INSTANT_ALERTS + feeds)


def _sql(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(query).fetchall()


def _fast_forward(db: Path) -> None:
    """Every feed due now, as after a downtime longer than the poll interval (the daemon is not running)."""
    if db.exists() and _sql(db, "SELECT name FROM sqlite_master WHERE name = 'feed'"):
        _sql(db, "UPDATE feed SET next_check = '2000-01-01 00:00:00.000000'")


def _stored(db: Path) -> list[str]:
    if not db.exists() or not _sql(db, "SELECT name FROM sqlite_master WHERE name = 'article'"):
        return []
    return [str(guid) for (guid,) in _sql(db, "SELECT guid FROM article WHERE source = 'feed'")]


def _check(db: Path, stream: ItemStream, hook: WebhookReceiver, kills: int, why: str) -> None:
    """What must hold after any kill: a sound file, each item stored at most once, few repeated alerts."""
    if db.exists():
        assert _sql(db, "PRAGMA integrity_check") == [("ok",)], why
    stored = _stored(db)
    assert len(stored) == len(set(stored)), (
        f"stored twice: {sorted(g for g in stored if stored.count(g) > 1)}"
    )
    assert set(stored) <= set(stream.published), why
    repeats = sum(count - 1 for count in alert_counts(hook).values())
    assert repeats <= kills, f"{repeats} alerts repeated after {kills} kills; {why}"


def _wait_for_kill_moment(rng: random.Random, daemon: RunningDaemon) -> str:
    """Sleep until the moment chosen for the next kill; returns it in words."""
    if rng.random() < STARTUP_SHARE:
        delay = rng.uniform(*KILL_IN_STARTUP)
        time.sleep(delay)
        return f"{delay:.2f} s after the start"
    daemon.wait_for_line("newswatch running")
    delay = rng.uniform(*KILL_WHEN_RUNNING)
    time.sleep(delay)
    return f"{delay:.2f} s after it said it runs"


def _chaos(tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, kills: int) -> None:
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    stream = ItemStream(feed_server, FEEDS, random.Random(seed))
    for _ in range(FEEDS):
        stream.add()
    config = _config(tmp_path, stream, webhook)
    db = tmp_path / "newswatch.db"
    stream.start(ITEM_EVERY)
    try:
        for kill in range(1, kills + 1):
            _fast_forward(db)
            with RunningDaemon(config, env=ENV) as daemon:
                when = _wait_for_kill_moment(rng, daemon)
                daemon.process.kill()
                code = daemon.process.wait(timeout=30)
            why = f"kill {kill} {when} (CHAOS_SEED={seed}); its output:\n{daemon.output[-3000:]}"
            assert code == -signal.SIGKILL, f"the daemon exited by itself: {why}"
            _check(db, stream, webhook, kill, why)
    finally:
        stream.stop()

    _fast_forward(db)
    everything = set(stream.published)
    with RunningDaemon(config, env=ENV) as daemon:
        done = wait_until(
            lambda: set(_stored(db)) == everything and set(alert_counts(webhook)) == everything, FINAL_TIMEOUT
        )
        time.sleep(1.0)  # anything sent twice would arrive by now
        code = daemon.stop()
    why = f"CHAOS_SEED={seed}; the last run's output:\n{daemon.output[-3000:]}"
    missing_articles = everything - set(_stored(db))
    missing_alerts = everything - set(alert_counts(webhook))
    assert done, f"not stored: {sorted(missing_articles)}; not alerted: {sorted(missing_alerts)}; {why}"
    assert code == 0, why
    _check(db, stream, webhook, kills, why)


def test_kill_9_at_random_moments_loses_and_repeats_nothing_beyond_one_alert_per_kill(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    _chaos(tmp_path, feed_server, webhook, kills=20)


@pytest.mark.slow
def test_chaos_soak(tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver) -> None:
    _chaos(tmp_path, feed_server, webhook, kills=150)
