"""Feeds that keep gaining tagged items, and what their alerts said: shared by the crash and scale tests.

    stream = ItemStream(feed_server, feeds=12, rng=random.Random(seed))
    stream.start(every=0.2)            # a thread adds an item to a random feed every 0.2 s
    ...                                # run, kill and restart daemons
    stream.stop()
    stream.published                   # {marker: title} of every item any feed served
    alert_counts(webhook)              # Counter of markers in the accepted webhook requests

Every item mentions Kazakhstan (the shipped tag rules route it to targets tagged `kazakhstan`) and carries a
unique marker such as `c00042` in its title. Its words are drawn at random from a large pool, so no two
items look like duplicates or like the same story to the detector: each one is an article of its own and
alerts on its own.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from tests.feedserver import FeedServer, rss
from tests.receivers import WebhookReceiver

MARKER = re.compile(r"\bc\d{5}\b")
_POOL_TEXT = (
    "harbour tender copper quota budget railway grain summit treaty pipeline airport reservoir ministry "
    "district market bond tariff wheat uranium festival council steppe bridge highway refinery hospital "
    "school factory mine terminal subsidy pension wage levy licence permit contract lease merger stake "
    "decree amendment reform inquiry audit survey census forecast deficit surplus shipment cargo fleet "
    "satellite cable tower station depot warehouse corridor crossing ballot coalition cabinet court "
    "tribunal regulator commission union startup operator supplier investor lender insurer developer "
    "programme scheme roadmap platform registry campaign exhibition forum delegation partnership venture "
    "consortium turbine reactor battery laboratory clinic campus stadium museum theatre library harvest "
    "drought flood outage shortage backlog dispute lawsuit verdict ruling appeal embargo deadline vaccine "
    "curriculum subway tram ferry canal quarry smelter vineyard orchard greenhouse fishery glacier aquifer"
)
_POOL = tuple(_POOL_TEXT.split())


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(_POOL) for _ in range(count))


class ItemStream:
    """`feeds` feeds on a FeedServer, each one gaining items (newest first; none ever dropped)."""

    def __init__(self, server: FeedServer, feeds: int, rng: random.Random) -> None:
        self.server = server
        self.rng = rng
        self.paths = [f"/stream/{n:04d}.xml" for n in range(feeds)]
        self.urls = [server.url(path) for path in self.paths]
        self.published: dict[str, str] = {}
        # For each feed, how many requests the server had seen when it last changed.
        self.hits_at_change: dict[str, int] = {}
        self._items: dict[str, list[dict[str, str]]] = {path: [] for path in self.paths}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for path in self.paths:
            self.server.set(path, rss(f"Stream {path}", []))

    def add(self, path: str | None = None) -> str:
        """Publish one new item (on a random feed unless `path`); returns its marker."""
        with self._lock:
            path = path or self.rng.choice(self.paths)
            marker = f"c{len(self.published):05d}"
            title = f"Kazakhstan {_words(self.rng, 5)} {marker}"
            item = {
                "title": title,
                "link": f"https://stream.example/{marker}",
                "guid": marker,
                "description": f"{_words(self.rng, 30)} in Kazakhstan, report {marker[1:]}.",
                "pubDate": format_datetime(datetime.now(UTC), usegmt=True),
            }
            self._items[path].insert(0, item)
            self.server.set(path, rss(f"Stream {path}", self._items[path]))
            # Read after the change: any request counted later was answered with the new document.
            self.hits_at_change[path] = self.server.hits(path)
            self.published[marker] = title
            return marker

    def start(self, every: float) -> None:
        """Add an item every `every` seconds from a thread, until `stop`."""
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(every):
                self.add()

        self._thread = threading.Thread(target=run, name="item-stream", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def unpolled_feeds(self) -> list[str]:
        """Feeds that have not been requested since their last change: starved, if they stay so."""
        return [path for path, hits in self.hits_at_change.items() if self.server.hits(path) <= hits]


def alert_counts(hook: WebhookReceiver) -> Counter[str]:
    """How many accepted webhook messages named each item marker."""
    seen: Counter[str] = Counter()
    for request in hook.accepted:
        payload = request.json()
        seen.update(set(MARKER.findall(f"{payload.get('title', '')} {payload.get('message', '')}")))
    return seen


def channels_file(directory: Path, hook: WebhookReceiver) -> Path:
    """channels.yml with one JSON webhook target for `kazakhstan` alerts."""
    path = directory / "channels.yml"
    path.write_text(
        f"version: 1\nurls:\n  - json://127.0.0.1:{hook.port}/hook:\n      tag: kazakhstan\n",
        encoding="utf-8",
    )
    return path


# Every stored item alerts on its own: no per-story folding, no rate limit; a failed send is retried soon.
# (A config body: see tests.conftest.write_config.)
INSTANT_ALERTS = (
    '[alerts]\nchannels = "channels.yml"\ntimezone = "UTC"\nretry_base = "1s"\n'
    "[alerts.policy.default]\nrate_limit = 100000\none_per_story = false\n"
)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
