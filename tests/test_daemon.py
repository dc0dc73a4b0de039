"""The daemon as users run it: a subprocess, stopped by SIGTERM or killed mid-poll, then restarted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer, rss

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
