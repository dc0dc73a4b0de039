"""The daemon as users run it: a subprocess, stopped by SIGTERM or killed mid-poll, then restarted; and its
scheduled maintenance."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer, rss
from worker.daemon import Daemon
from worker.runtime import Runtime, open_runtime
from worker.store.articles import NewArticle, store_item
from worker.store.db import session_scope
from worker.store.models import Article
from worker.timeutil import utcnow

FEEDS = 8
ITEMS = 5


def _items(feed: int) -> list[dict[str, str]]:
    return [
        {
            "title": f"Feed {feed} item {i}: council meets in the old town",
            "link": f"https://outlet{feed}.example/item/{i}",
            "guid": f"f{feed}-i{i}",
            "description": f"Report {i} of outlet {feed}. The council decided {feed * 100 + i} things.",
        }
        for i in range(ITEMS)
    ]


def _serve(server: FeedServer) -> list[str]:
    """Half the feeds answer at once, half take 4 s: a stop always lands mid-poll."""
    urls = []
    for n in range(FEEDS):
        body = rss(f"Outlet {n}", _items(n))
        if n % 2:
            urls.append(server.behave(f"/slow{n}.xml", "slow", delay=4.0, body=body))
        else:
            urls.append(server.set(f"/fast{n}.xml", body))
    return urls


def _config(tmp_path: Path, urls: list[str]) -> Path:
    feeds = "".join(f'[[feeds]]\nurl = "{url}"\n' for url in urls)
    return write_config(tmp_path, feeds, http="timeout = 10")


def _newswatch(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "worker", "--config", str(config), *args]


def _count(db: Path, query: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(query).fetchone()[0])


def _stored(db: Path) -> int:
    """Feed articles stored so far; 0 while the daemon has not created the store yet."""
    try:
        return _count(db, "SELECT count(*) FROM article WHERE source = 'feed'")
    except sqlite3.OperationalError:
        return 0


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _start(config: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        _newswatch(config, "run"),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _assert_complete_and_unique(db: Path) -> None:
    assert _count(db, "SELECT count(*) FROM article WHERE source = 'feed'") == FEEDS * ITEMS
    assert (
        _count(
            db, "SELECT count(*) FROM (SELECT feed_id, guid FROM article GROUP BY 1, 2 HAVING count(*) > 1)"
        )
        == 0
    )
    assert _count(db, "SELECT count(*) FROM feed WHERE lease_owner IS NOT NULL") == 0


def test_sigterm_mid_poll_exits_zero_quickly_and_a_restart_loses_nothing(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    config = _config(tmp_path, _serve(feed_server))
    db = tmp_path / "newswatch.db"
    daemon = _start(config)
    try:
        assert _wait_for(lambda: _stored(db) > 0, 30)
        assert _count(db, "SELECT count(*) FROM article WHERE source = 'feed'") < FEEDS * ITEMS  # mid-poll
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=10)
        assert time.monotonic() - started < 10
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, output
    assert "Traceback" not in output, output
    assert "received SIGTERM" in output

    done = subprocess.run(_newswatch(config, "poll"), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    _assert_complete_and_unique(db)


def test_kill_9_mid_poll_then_restart_stores_everything_once(tmp_path: Path, feed_server: FeedServer) -> None:
    config = _config(tmp_path, _serve(feed_server))
    db = tmp_path / "newswatch.db"
    daemon = _start(config)
    try:
        assert _wait_for(lambda: _stored(db) > 0, 30)
        daemon.kill()
        daemon.wait(timeout=10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert _count(db, "SELECT count(*) FROM feed WHERE lease_owner IS NOT NULL") > 0  # died holding leases

    done = subprocess.run(_newswatch(config, "poll"), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    _assert_complete_and_unique(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _old_feed_article(runtime: Runtime, days: int) -> None:
    """A feed article published and fetched `days` ago."""
    then = utcnow() - timedelta(days=days)
    item = NewArticle("feed", None, "old-1", "https://outlet.example/old", "Old council news", "Old.", then)
    with session_scope(runtime.engine) as session:
        store_item(session, item, runtime.index, None)
        session.execute(update(Article).where(col(Article.guid) == "old-1").values(fetched_at=then))


def _feed_articles(runtime: Runtime) -> int:
    with session_scope(runtime.engine) as session:
        return len(session.exec(select(Article.id).where(col(Article.source) == "feed")).all())


def test_maintenance_runs_one_interval_after_the_start_and_logs_its_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    retention = '[retention]\ndays = 30\nmaintenance_every = "1h"\n'
    runtime = open_runtime(write_config(tmp_path, "tick = 0.5\n" + retention))
    _old_feed_article(runtime, days=60)
    started = utcnow()

    async def scenario() -> datetime:
        daemon = Daemon(runtime)
        running = asyncio.create_task(daemon.run())
        while daemon.scheduler.get_job("maintenance") is None or not daemon.scheduler.running:
            await asyncio.sleep(0.05)
        job = daemon.scheduler.get_job("maintenance")
        first_run: datetime = job.next_run_time
        await daemon.maintain()  # what the job does when its time comes
        daemon.request_stop("SIGTERM")
        await running
        return first_run

    with caplog.at_level(logging.INFO, logger="newswatch.daemon"):
        first_run = asyncio.run(scenario())
    assert first_run >= started + timedelta(hours=1)
    assert _feed_articles(runtime) == 0
    assert "maintenance: 1 feed articles older than 30 days deleted" in caplog.text
