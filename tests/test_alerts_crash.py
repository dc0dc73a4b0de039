"""kill -9 between claim and send, and between send and mark: after a restart every alert arrives, at most
one of them twice (invariant 2). The crash lands exactly there through worker.failpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer, rss
from tests.receivers import WebhookReceiver

STORIES = [
    ("Tokayev signs the new water code", "President Tokayev signed Kazakhstan's new water code in Astana."),
    (
        "Kazatomprom raises uranium output",
        "Kazakhstan's Kazatomprom raised uranium output in the first half.",
    ),
    (
        "Kazakhstan's Almaty opens two metro stations",
        "Almaty, Kazakhstan's largest city, opened two new metro stations.",
    ),
]


def _config(tmp_path: Path, feeds: FeedServer, hook: WebhookReceiver) -> Path:
    when = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    items = [
        {
            "title": title,
            "guid": f"s{n}",
            "link": f"https://steppe.example/{n}",
            "description": text,
            "pubDate": when,
        }
        for n, (title, text) in enumerate(STORIES)
    ]
    url = feeds.set("/kz.xml", rss("Steppe News", items))
    (tmp_path / "channels.yml").write_text(
        f"version: 1\nurls:\n  - json://127.0.0.1:{hook.port}/hook:\n      tag: all\n", encoding="utf-8"
    )
    return write_config(tmp_path, f'[alerts]\nchannels = "channels.yml"\n[[feeds]]\nurl = "{url}"\n')


def _run(config: Path, failpoint: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEWSWATCH_FAILPOINT"}
    if failpoint:
        env["NEWSWATCH_FAILPOINT"] = failpoint
    command = [sys.executable, "-m", "worker", "--config", str(config), "run"]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _titles(hook: WebhookReceiver) -> Counter[str]:
    seen: Counter[str] = Counter()
    for request in hook.accepted:
        payload = request.json()
        for title, _ in STORIES:
            if title in payload.get("title", "") + payload.get("message", ""):
                seen[title] += 1
    return seen


def _until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(("failpoint", "max_repeats"), [("deliver:claimed", 0), ("deliver:sent", 1)])
def test_kill_9_inside_a_delivery_loses_nothing_and_repeats_at_most_one(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, failpoint: str, max_repeats: int
) -> None:
    config = _config(tmp_path, feed_server, webhook)
    crashed = _run(config, failpoint)
    try:
        crashed.wait(timeout=60)
    finally:
        if crashed.poll() is None:
            crashed.kill()
    assert crashed.returncode == -signal.SIGKILL
    assert sum(_titles(webhook).values()) == (1 if failpoint == "deliver:sent" else 0)

    daemon = _run(config)
    try:
        assert _until(lambda: set(_titles(webhook)) == {title for title, _ in STORIES}, 30), _titles(webhook)
        time.sleep(1.0)  # anything sent twice would arrive by now
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, output
    seen = _titles(webhook)
    assert sum(seen.values()) - len(STORIES) <= max_repeats, seen
    assert all(count <= 2 for count in seen.values()), seen
