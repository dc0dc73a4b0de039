"""Alerts benchmark (issue 5): latency and throughput of alert delivery to local webhooks, against a plain
loop of synchronous `apprise.notify` calls, in one run.

(a) Latency. The real daemon (`python -m worker run`) polls local feeds where new Kazakhstan-tagged items
    appear over time; each item carries a unique marker in its title. The feed server notes when it answered
    each GET and how many items that answer carried; the webhook notes when each marker arrived. An item's
    latency is its arrival minus the answer of the first GET that carried it: the poll that saw it. Target:
    p95 ≤ 1 s over all items. The outbox rows in the store split it into the poll side (GET answered →
    the poll's last outbox row created; the poll's transaction commits right after) and the delivery side
    (from there → arrival). Baseline: the duration of one synchronous `apprise.notify` to the same webhook.
(b) Throughput. The outbox is filled through the real code path (`newswatch poll` of a feed of N items while
    quiet hours hold every alert back), then made due; a child process times `Deliverer.run_once()`
    delivering all of it with the default concurrency, to one webhook and to several (the deliverer sends
    one message per target at a time, several targets at once). Target: ≥ 200 deliveries/s to one webhook.
    Baseline: a loop of synchronous `apprise.notify` calls with the payloads Newswatch sent.

Everything runs on 127.0.0.1: one asyncio HTTP server in this process serves the feeds and receives the
webhooks (so that it is not the bottleneck), Newswatch and the baseline run in child processes.

    python benchmarks/alerts.py [--items 1000] [--deliveries 2000] [--targets 4] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from feedgen import DEFAULT_SEED, make_feed
from runner import BenchmarkError, percentile, positive, run_in_workdir

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DEFAULT_ITEMS = 1000
DEFAULT_DELIVERIES = 2000
DEFAULT_TARGETS = 4  # webhooks of the several-targets throughput run
DEFAULT_FEEDS = 60  # latency run: with the 60 s interval, one feed is polled each second
DEFAULT_PUBLISH_SECONDS = 60.0  # latency run: the items appear evenly over this long
POLL_INTERVAL = 60  # seconds between polls of one feed: the shortest the config accepts
POLL_TICK = 1.0  # seconds between the daemon's scheduler ticks
POLL_START_LEAD = 1.0  # seconds from the staggered schedule being written to the first feed falling due
# An item appears at least this long before the scheduled poll of the feed it goes to: more than a tick, so
# that the poll it is meant for sees it (a poll only ever comes later than scheduled, never sooner).
PUBLISH_LEAD = 2.0
TARGET_LATENCY_P95 = 1.0  # seconds, (a)
TARGET_THROUGHPUT = 200.0  # deliveries per second to one webhook, (b)
START_TIMEOUT = 60.0  # seconds for the daemon to say it is running
STOP_TIMEOUT = 20.0  # seconds for the daemon to exit after SIGTERM before it is killed
SETTLE_SECONDS = 30.0  # after the last item's last poll, how long its alert may still take to arrive
CHILD_TIMEOUT = 600.0  # seconds for one child process (a poll, a delivery run, the baseline)
STORE_TIMEOUT = 30.0  # seconds to wait for the daemon's write lock on the store
QUIET_MARGIN = timedelta(hours=1)  # the fill's quiet hours reach this far on either side of now
ARTICLES_PER_SOURCE_FEED = 400  # items asked of feedgen per call; about one in five is topical
FAR_FUTURE = timedelta(days=1)  # feeds wait this long until the staggered schedule is written
MARKER = "nwb{:06d}"  # in each item's title: finds the item in a webhook body
MARKERS_PER_PHASE = 100_000  # phase k numbers its items from k × this: markers stay unique and 6 digits
ARRIVAL_CHECK = 0.2  # seconds between looks at the webhook's count while waiting for the last alerts
_MARKER = re.compile(rb"nwb(\d{6})")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how the store keeps times in SQLite (naive UTC)
_RUNNING_LINE = "newswatch running"
_OUTPUT_TAIL_CHARS = 1500
# Each alert's creation time (written inside the poll's transaction), by its article's title.
_OUTBOX_ROWS = "SELECT a.title, d.created_at FROM delivery d JOIN article a ON a.id = d.article_id"
_HTTP_REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found"}


def progress(message: str) -> None:
    print(f"[alerts] {message}", file=sys.stderr, flush=True)


# -- items -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewsItem:
    """One feed item whose title carries `marker`: Kazakhstan or OTS news, so that the tagger tags it."""

    marker: int
    title: str
    description_html: str


def tagged_items(count: int, start: int, seed: int = DEFAULT_SEED) -> list[NewsItem]:
    """`count` distinct items the configured tag rules tag, markers from `start` on.

    feedgen's topical items mention Kazakhstan, Astana, Tokayev or the OTS; the real tagger confirms each,
    so that every item stands for one alert and a missing arrival means a lost or late alert.
    """
    from worker.analysis.tagging import Tagger
    from worker.ingest.sanitize import html_to_plain
    from worker.tagrules import DEFAULT_RULES_PATH, load_rules

    tagger = Tagger(load_rules(DEFAULT_RULES_PATH))
    now = datetime.now(UTC)
    items: list[NewsItem] = []
    source = 0
    while len(items) < count:
        # Feed numbers apart from other calls' (start differs per phase): every phase has texts of its own.
        feed = make_feed(start + source, ARTICLES_PER_SOURCE_FEED, seed=seed, now=now)
        source += 1
        for generated in feed.items:
            if len(items) == count:
                break
            if not generated.topical:
                continue
            marker = start + len(items)
            title = f"{generated.title} {MARKER.format(marker)}"
            if tagger.tag(title, html_to_plain(generated.description_html)):
                items.append(NewsItem(marker, title, generated.description_html))
    return items


def rss_document(title: str, items: Sequence[tuple[NewsItem, datetime]]) -> bytes:
    """RSS 2.0 with the newest item first, as news sites publish."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>https://bench.example/</link>",
        "<description>alerts benchmark</description><language>en</language>",
    ]
    for item, published in reversed(items):
        link = f"https://bench.example/news/{item.marker}"
        parts.append(
            f"<item><title>{escape(item.title)}</title><link>{link}</link><guid>{link}</guid>"
            f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
            f"<description>{escape(item.description_html)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


# -- the local server: feeds and webhooks ------------------------------------------------------------------


@dataclass(frozen=True)
class Serve:
    """One answered feed GET: when the answer was written, and how many items it carried (0 for a 304)."""

    monotonic: float
    wall: float
    items: int


@dataclass(frozen=True)
class Arrival:
    """One webhook request, timed when its body had been read."""

    path: str
    marker: int | None
    monotonic: float
    wall: float
    body: bytes


@dataclass
class _Feed:
    title: str
    items: list[tuple[NewsItem, datetime]] = field(default_factory=list)
    document: bytes = b""
    serves: list[Serve] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return f'"{len(self.items)}"'


class LocalServer:
    """An asyncio HTTP/1.1 server on 127.0.0.1, in a thread of its own: GET serves the published feeds (with
    an ETag, answering If-None-Match with 304) and records each answer; any other request is a webhook
    delivery, recorded and answered 200. Raw asyncio, not http.server: one thread per connection would
    compete with the benchmarked processes for the CPU and could become the bottleneck itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._feeds: dict[str, _Feed] = {}
        self._arrivals: list[Arrival] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-server", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def __enter__(self) -> LocalServer:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._server is None:
            raise BenchmarkError("the local HTTP server did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def hook_url(self, path: str) -> str:
        return f"json://{HOST}:{self.port}{path}"

    def publish(self, path: str, title: str, items: Sequence[NewsItem]) -> float:
        """Add `items` (dated now) to the feed at `path`; returns the monotonic time they became visible.

        Only the main thread publishes: the document is rendered outside the lock, then swapped in together
        with the item count that its ETag and the GET records name."""
        now = datetime.now(UTC)
        with self._lock:
            feed = self._feeds.setdefault(path, _Feed(title))
            dated = [*feed.items, *((item, now) for item in items)]
        document = rss_document(title, dated)
        with self._lock:
            feed.items, feed.document = dated, document
            return time.monotonic()

    def serves(self, path: str) -> list[Serve]:
        with self._lock:
            return list(self._feeds[path].serves)

    def arrivals(self, prefix: str = "/") -> list[Arrival]:
        with self._lock:
            return [a for a in self._arrivals if a.path.startswith(prefix)]

    def count_arrivals(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for a in self._arrivals if a.path.startswith(prefix))

    # -- the event loop's side ---------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(self._connection, HOST, 0))
            self.port = int(self._server.sockets[0].getsockname()[1])
        finally:
            self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._exchange(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass  # the client closed the connection (or sent something this server does not speak)
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection should close."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = {
            name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)
        }
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""
        path = urlsplit(target).path
        keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if method == "GET":
            status, extra, payload, feed, items = self._feed_answer(path, headers)
        else:
            self._arrive(path, body)
            status, extra, payload, feed, items = 200, {"Content-Type": "application/json"}, b"{}", None, 0
        head_lines = [f"HTTP/1.1 {status} {_HTTP_REASONS[status]}", f"Content-Length: {len(payload)}"]
        head_lines += [f"{name}: {value}" for name, value in extra.items()]
        head_lines.append("Connection: " + ("keep-alive" if keep_alive else "close"))
        writer.write(("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()
        if feed is not None:
            with self._lock:
                feed.serves.append(Serve(time.monotonic(), time.time(), items))
        return keep_alive

    def _feed_answer(
        self, path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes, _Feed | None, int]:
        with self._lock:
            feed = self._feeds.get(path)
            if feed is None:
                return 404, {}, b"", None, 0
            validators = {"ETag": feed.etag}
            if headers.get("if-none-match") == feed.etag:
                return 304, validators, b"", feed, 0
            content = {"Content-Type": "application/rss+xml; charset=utf-8", **validators}
            return 200, content, feed.document, feed, len(feed.items)

    def _arrive(self, path: str, body: bytes) -> None:
        found = _MARKER.search(body)
        arrival = Arrival(path, int(found.group(1)) if found else None, time.monotonic(), time.time(), body)
        with self._lock:
            self._arrivals.append(arrival)


# -- Newswatch as a user runs it ---------------------------------------------------------------------------


def write_setup(
    directory: Path, feeds: Sequence[str], hooks: Sequence[str], *, quiet_hours: str | None = None
) -> Path:
    """A config of its own store and channels file: every hook receives every tag, no rate limit to speak
    of, and a story alerts each of its articles (the items are distinct, but no alert may wait for a digest
    because two happened to be clustered into one story)."""
    directory.mkdir(parents=True, exist_ok=True)
    channels = "version: 1\nurls:\n" + "".join(f"  - {hook}:\n      tag: all\n" for hook in hooks)
    (directory / "channels.yml").write_text(channels, encoding="utf-8")
    quiet = f'quiet_hours = "{quiet_hours}"\n' if quiet_hours else ""
    text = (
        f'state_dir = "{directory}"\n'
        f'[database]\nurl = "sqlite:///{directory / "newswatch.db"}"\n'
        "[http]\nallow_private_networks = true\n"
        f'[poll]\ninterval = "{POLL_INTERVAL}s"\ntick = "{POLL_TICK:g}s"\njitter = 0\n'
        f'[seeds]\ndir = "{REPO / "seeds"}"\n'
        '[alerts]\nchannels = "channels.yml"\ntimezone = "UTC"\n'
        f"[alerts.policy.default]\nrate_limit = 100000\none_per_story = false\n{quiet}"
        + "".join(f'[[feeds]]\nurl = "{url}"\n' for url in feeds)
    )
    path = directory / "newswatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _child_env() -> dict[str, str]:
    """The caller's environment without NEWSWATCH_* overrides (the benchmark's config must be the one
    read), with the working tree importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSWATCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def newswatch(config: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "worker", "--config", str(config), *arguments]


def run_child(command: Sequence[str], label: str) -> str:
    """Run a child process to its end; its stdout, or BenchmarkError naming `label` and the failure."""
    try:
        done = subprocess.run(
            command,
            cwd=REPO,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"{label} did not finish within {CHILD_TIMEOUT:g} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-_OUTPUT_TAIL_CHARS:]
        raise BenchmarkError(f"{label} exited with status {done.returncode}: {tail}")
    return done.stdout


@contextmanager
def running_daemon(config: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`newswatch run` until the block ends, then SIGTERM (killed if it does not stop in time)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            newswatch(config, "run"),
            cwd=REPO,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while _RUNNING_LINE not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace").strip()[-_OUTPUT_TAIL_CHARS:]
                raise BenchmarkError(f"the daemon did not start: {tail or '(no output)'}")
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_SQLITE_TIME)


def _epoch(stored: str) -> float:
    return datetime.fromisoformat(stored).replace(tzinfo=UTC).timestamp()


@contextmanager
def store(config: Path) -> Iterator[sqlite3.Connection]:
    """The benchmark's own SQLite store, opened directly: to stagger the feeds, to make the filled outbox
    due, and to read when each article was stored."""
    conn = sqlite3.connect(config.parent / "newswatch.db", timeout=STORE_TIMEOUT)
    try:
        with conn:  # one transaction, committed at the end of the block
            yield conn
    finally:
        conn.close()


# -- statistics --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    count: int
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(len(values), percentile(values, 0.5), percentile(values, 0.95), max(values, default=0.0))


# -- (a) latency -------------------------------------------------------------------------------------------


@dataclass
class LatencyResult:
    items: int
    arrived: int
    feeds: int
    polls_with_new_items: int
    items_per_poll: Spread
    poll_to_webhook: Spread  # the measure: GET answered → arrival
    poll_side: Spread  # GET answered → the poll's last outbox row created (its commit follows)
    delivery_side: Spread  # the poll's last outbox row created → arrival
    visible_to_webhook: Spread  # published → arrival (includes waiting PUBLISH_LEAD or more for the poll)
    duplicates: int
    repeats: int  # alerts that arrived more than once
    seconds: float


def measure_latency(
    server: LocalServer, workdir: Path, items: Sequence[NewsItem], feeds: int, publish_seconds: float
) -> LatencyResult:
    paths = [f"/latency/feed{k:03d}.xml" for k in range(feeds)]
    for path in paths:
        server.publish(path, f"Latency outlet {path}", [])
    hook = "/hook/latency"
    config = write_setup(workdir / "latency", [server.url(p) for p in paths], [server.hook_url(hook)])
    run_child(newswatch(config, "feeds", "list"), "newswatch feeds list (creating the store)")
    with store(config) as conn:
        conn.execute("UPDATE feed SET next_check = ?", (_sqlite_time(datetime.now(UTC) + FAR_FUTURE),))
    progress(f"latency: {len(items)} items over {publish_seconds:g} s on {feeds} feeds, daemon running")
    started = time.monotonic()
    with running_daemon(config, workdir / "latency" / "daemon.log"):
        begin = _stagger(config, server, paths)
        placed = _publish(server, paths, items, begin, publish_seconds)
        # An item its poll missed after all would be seen one interval later; its alert follows.
        deadline = begin + publish_seconds + PUBLISH_LEAD + POLL_INTERVAL + SETTLE_SECONDS
        while server.count_arrivals(hook) < len(items) and time.monotonic() < deadline:
            time.sleep(ARRIVAL_CHECK)
    seconds = time.monotonic() - started
    return _latency_result(server, config, paths, hook, items, placed, seconds)


def _stagger(config: Path, server: LocalServer, paths: Sequence[str]) -> float:
    """Spread the feeds' polls evenly over the interval, feed k due at k × spacing; returns the monotonic
    time the first falls due.

    Every new feed is due at once, and after one pass they would all fall due together again; the store is
    told the schedule a long-running daemon with many feeds converges to: a poll every `spacing` seconds."""
    spacing = POLL_INTERVAL / len(paths)
    first = datetime.now(UTC) + timedelta(seconds=POLL_START_LEAD)
    with store(config) as conn:
        for k, path in enumerate(paths):
            due = first + timedelta(seconds=k * spacing)
            conn.execute(
                "UPDATE feed SET next_check = ? WHERE url = ?", (_sqlite_time(due), server.url(path))
            )
    return time.monotonic() + POLL_START_LEAD


@dataclass(frozen=True)
class Placed:
    """Where an item was published: its feed, its position there, when it became visible (monotonic)."""

    path: str
    index: int
    visible: float


def _publish(
    server: LocalServer, paths: Sequence[str], items: Sequence[NewsItem], begin: float, seconds: float
) -> dict[int, Placed]:
    """Publish the items evenly over `seconds`, each to the feed whose scheduled poll comes next after
    PUBLISH_LEAD: every poll then sees the items of one spacing, the batch a steady stream of news gives
    (items ÷ seconds × spacing), and the run lasts `seconds` rather than an extra interval."""
    spacing = POLL_INTERVAL / len(paths)
    step = seconds / len(items)
    placed: dict[int, Placed] = {}
    counts = dict.fromkeys(paths, 0)
    for n, item in enumerate(items):
        delay = begin + n * step - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        slot = math.ceil((time.monotonic() - begin + PUBLISH_LEAD) / spacing)
        path = paths[slot % len(paths)]
        visible = server.publish(path, f"Latency outlet {path}", [item])
        placed[item.marker] = Placed(path, counts[path], visible)
        counts[path] += 1
    return placed


def _first_serves(server: LocalServer, placed: dict[int, Placed]) -> dict[int, Serve]:
    """marker → the first feed answer that carried the item (items are appended, so an answer carries the
    first `serve.items` items of its feed)."""
    serves = {path: server.serves(path) for path in {p.path for p in placed.values()}}
    first: dict[int, Serve] = {}
    for marker, where in placed.items():
        seen = next((s for s in serves[where.path] if s.items > where.index), None)
        if seen is not None:
            first[marker] = seen
    return first


def _latency_result(
    server: LocalServer,
    config: Path,
    paths: Sequence[str],
    hook: str,
    items: Sequence[NewsItem],
    placed: dict[int, Placed],
    seconds: float,
) -> LatencyResult:
    arrived: dict[int, Arrival] = {}
    repeats = 0
    for arrival in server.arrivals(hook):
        if arrival.marker is None:
            continue
        if arrival.marker in arrived:
            repeats += 1
        else:
            arrived[arrival.marker] = arrival
    first = _first_serves(server, placed)
    with store(config) as conn:
        created = {
            int(found.group(1)): _epoch(stamp)
            for title, stamp in conn.execute(_OUTBOX_ROWS)
            if (found := _MARKER.search(title.encode()))
        }
        duplicates = conn.execute("SELECT count(*) FROM article WHERE duplicate_of IS NOT NULL").fetchone()[0]
    measured = [m for m in arrived if m in first]
    stored = [m for m in measured if m in created]
    # The poll's transaction commits right after its last outbox row: an alert can go from then on.
    poll_end: dict[Serve, float] = {}
    for m in stored:
        poll_end[first[m]] = max(poll_end.get(first[m], 0.0), created[m])
    batches = [s.items for path in paths for s in _growth(server.serves(path))]
    return LatencyResult(
        items=len(items),
        arrived=len(arrived),
        feeds=len(paths),
        polls_with_new_items=len(batches),
        items_per_poll=Spread.of(batches),
        poll_to_webhook=Spread.of([arrived[m].monotonic - first[m].monotonic for m in measured]),
        poll_side=Spread.of([poll_end[first[m]] - first[m].wall for m in stored]),
        delivery_side=Spread.of([arrived[m].wall - poll_end[first[m]] for m in stored]),
        visible_to_webhook=Spread.of([arrived[m].monotonic - placed[m].visible for m in arrived]),
        duplicates=int(duplicates),
        repeats=repeats,
        seconds=seconds,
    )


def _growth(serves: Sequence[Serve]) -> Iterator[Serve]:
    """Each answer that carried new items, with `items` the number of new ones."""
    known = 0
    for serve in serves:
        if serve.items > known:
            yield Serve(serve.monotonic, serve.wall, serve.items - known)
            known = serve.items


# -- (b) throughput ----------------------------------------------------------------------------------------


@dataclass
class ThroughputResult:
    targets: int
    deliveries: int  # rows made due
    sent: int
    failed: int
    seconds: float  # Deliverer.run_once(), in the child
    cpu_seconds: float  # the child's CPU time (all threads) meanwhile: near `seconds` means bound by one core
    arrival_seconds: float  # first to last arrival at the webhooks
    errors: list[str]

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def measure_throughput(
    server: LocalServer, workdir: Path, items: Sequence[NewsItem], targets: int, label: str
) -> ThroughputResult:
    """Fill the outbox through a real poll while quiet hours hold every alert, make it due, time delivery."""
    directory = workdir / label
    feed_path = f"/{label}/feed.xml"
    server.publish(feed_path, f"Throughput outlet {label}", items)
    hooks = [server.hook_url(f"/hook/{label}/{j}") for j in range(targets)]
    now = datetime.now(UTC)
    quiet = f"{(now - QUIET_MARGIN):%H:%M}-{(now + QUIET_MARGIN):%H:%M}"
    config = write_setup(directory, [server.url(feed_path)], hooks, quiet_hours=quiet)
    progress(f"throughput, {targets} target(s): filling the outbox with {len(items) * targets} deliveries")
    run_child(newswatch(config, "poll"), f"newswatch poll ({label}, filling the outbox)")
    prefix = f"/hook/{label}/"
    if server.count_arrivals(prefix):
        raise BenchmarkError(f"{label}: alerts went out during the quiet hours of the fill")
    write_setup(directory, [server.url(feed_path)], hooks)  # the same targets, no quiet hours
    with store(config) as conn:
        due = conn.execute(
            "UPDATE delivery SET next_attempt = '2000-01-01 00:00:00.000000' WHERE status = 'pending'"
        ).rowcount
    progress(f"throughput, {targets} target(s): delivering {due} alerts (Deliverer.run_once in a child)")
    report = json.loads(run_child(_self_command("deliver", str(config)), f"delivery run ({label})"))
    arrivals = server.arrivals(prefix)
    window = arrivals[-1].monotonic - arrivals[0].monotonic if len(arrivals) > 1 else 0.0
    return ThroughputResult(
        targets=targets,
        deliveries=due,
        sent=report["sent"],
        failed=report["failed"],
        seconds=report["seconds"],
        cpu_seconds=report["cpu_seconds"],
        arrival_seconds=window,
        errors=report["errors"],
    )


# -- baseline: a plain loop of synchronous apprise.notify --------------------------------------------------


@dataclass
class BaselineResult:
    messages: int
    failed: int
    seconds: float
    call: Spread  # one notify call, start to return

    @property
    def per_second(self) -> float:
        return (self.messages - self.failed) / self.seconds if self.seconds > 0 else 0.0


def measure_baseline(
    server: LocalServer, workdir: Path, sample: Sequence[Arrival], count: int
) -> BaselineResult:
    """The same webhook, the payloads Newswatch sent, one synchronous notify after another."""
    payloads = [json.loads(a.body) for a in sample]
    payload_file = workdir / "baseline-payloads.json"
    payload_file.write_text(
        json.dumps([{"title": p.get("title", ""), "body": p.get("message", "")} for p in payloads]),
        encoding="utf-8",
    )
    progress(f"baseline: {count} synchronous apprise.notify calls")
    url = server.hook_url("/hook/baseline")
    report = json.loads(
        run_child(_self_command("baseline", url, str(payload_file), str(count)), "baseline apprise loop")
    )
    return BaselineResult(count, report["failed"], report["seconds"], Spread.of(report["durations"]))


# -- child processes of this script ------------------------------------------------------------------------


def _self_command(mode: str, *arguments: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", mode, *arguments]


def deliver_child(config: str) -> dict[str, Any]:
    """Time one Deliverer.run_once() over the due outbox, as `newswatch poll` runs it after polling."""
    from worker.runtime import open_runtime

    runtime = open_runtime(config, prepare=False)
    deliverer = runtime.deliverer("benchmark")
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = asyncio.run(deliverer.run_once())
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        deliverer.close()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "sent": summary.sent,
        "failed": summary.failed,
        "errors": summary.errors[:5],
    }


def baseline_child(url: str, payload_file: str, count: int) -> dict[str, Any]:
    """A plain loop of synchronous apprise.notify calls: one Apprise object, one target, no bookkeeping."""
    import apprise

    payloads = json.loads(Path(payload_file).read_text(encoding="utf-8"))
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise BenchmarkError(f"apprise rejected {url}")
    durations: list[float] = []
    failed = 0
    started = time.perf_counter()
    for n in range(count):
        payload = payloads[n % len(payloads)]
        call = time.perf_counter()
        failed += not notifier.notify(body=payload["body"], title=payload["title"])
        durations.append(time.perf_counter() - call)
    return {"seconds": time.perf_counter() - started, "durations": durations, "failed": failed}


# -- report ------------------------------------------------------------------------------------------------


@dataclass
class Report:
    setup: dict[str, Any]
    latency: LatencyResult
    throughput: list[ThroughputResult]
    baseline: BaselineResult

    @property
    def latency_met(self) -> bool:
        complete = self.latency.arrived == self.latency.items
        return complete and self.latency.poll_to_webhook.p95 <= TARGET_LATENCY_P95

    @property
    def throughput_met(self) -> bool:
        one = self.throughput[0]
        return one.sent == one.deliveries and one.per_second >= TARGET_THROUGHPUT

    def as_json(self) -> dict[str, Any]:
        return {
            "setup": self.setup,
            "latency": asdict(self.latency),
            "throughput": [{**asdict(t), "per_second": t.per_second} for t in self.throughput],
            "baseline": {**asdict(self.baseline), "per_second": self.baseline.per_second},
            "targets": {
                "latency_p95_seconds": TARGET_LATENCY_P95,
                "deliveries_per_second": TARGET_THROUGHPUT,
            },
            "passed": {"latency": self.latency_met, "throughput": self.throughput_met},
        }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def _row(label: str, spread: Spread) -> str:
    return f"  {label:<44}{_ms(spread.p50)}{_ms(spread.p95)}{_ms(spread.max)}"


def print_report(report: Report) -> None:
    setup, lat, base = report.setup, report.latency, report.baseline
    mark = {True: "PASS", False: "FAIL"}
    print(
        f"Newswatch alerts benchmark: python {setup['python']}, apprise {setup['apprise']}, "
        f"{setup['cpus']} CPUs, load {setup['load_average_before']:.2f} → {setup['load_average_after']:.2f}"
    )
    print()
    print(
        f"(a) latency, poll that saw the item → arrival at a local webhook: {lat.arrived} of {lat.items} "
        f"arrived in {lat.seconds:.0f} s"
    )
    print(
        f"    {lat.feeds} feeds polled every {POLL_INTERVAL} s in turn (tick {POLL_TICK:g} s); "
        f"{lat.polls_with_new_items} polls saw new items, {lat.items_per_poll.p50:.0f} per poll at the "
        f"median, {lat.items_per_poll.max:.0f} at most"
    )
    print(f"  {'':<44}{'p50':>11}{'p95':>11}{'max':>11}")
    print(_row("newswatch: GET answered → webhook", lat.poll_to_webhook))
    print(_row("  poll side: GET answered → last outbox row", lat.poll_side))
    print(_row("  delivery side: last outbox row → webhook", lat.delivery_side))
    print(_row("baseline: one synchronous apprise.notify", base.call))
    print(
        f"  ratio newswatch ÷ baseline: p50 {lat.poll_to_webhook.p50 / base.call.p50:.1f}×, "
        f"p95 {lat.poll_to_webhook.p95 / base.call.p95:.1f}×"
    )
    print(
        f"  item published (≥ {PUBLISH_LEAD:g} s before its feed's scheduled poll) → webhook: "
        f"p50 {lat.visible_to_webhook.p50:.2f} s, p95 {lat.visible_to_webhook.p95:.2f} s"
    )
    if lat.duplicates or lat.repeats:
        print(f"  note: {lat.duplicates} items stored as duplicates, {lat.repeats} alerts arrived twice")
    print(
        f"  target p95 ≤ {TARGET_LATENCY_P95:g} s: {lat.poll_to_webhook.p95:.3f} s, "
        f"all items arrived: {lat.arrived == lat.items}  {mark[report.latency_met]}"
    )
    print()
    print(f"(b) throughput to local webhooks, default concurrency ({setup['alert_concurrency']} threads)")
    for t in report.throughput:
        label = f"newswatch, {t.targets} webhook{'s' if t.targets > 1 else ''}"
        print(
            f"  {label:<34}{t.sent:6d} sent in {t.seconds:6.2f} s = {t.per_second:7.1f} /s   "
            f"{t.per_second / base.per_second:.2f}× baseline   CPU {t.cpu_seconds / t.seconds:.0%} of a core"
            + (f"   ({t.failed} failed: {'; '.join(t.errors[:2])})" if t.failed else "")
        )
    print(
        f"  {'baseline: apprise.notify loop':<34}{base.messages - base.failed:6d} sent in "
        f"{base.seconds:6.2f} s = {base.per_second:7.1f} /s"
    )
    one = report.throughput[0]
    print(
        f"  target ≥ {TARGET_THROUGHPUT:g} /s to one webhook: {one.per_second:.1f} /s  "
        f"{mark[report.throughput_met]}"
    )


# -- main --------------------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, workdir: Path) -> int:
    import apprise

    from worker.config import DEFAULT_ALERT_CONCURRENCY

    load_before = os.getloadavg()[0]
    counts = [args.deliveries, args.deliveries // args.targets]
    progress(f"generating {args.items + sum(counts)} distinct tagged items")
    latency_items = tagged_items(args.items, 0)
    fill_items = [tagged_items(n, (k + 1) * MARKERS_PER_PHASE) for k, n in enumerate(counts)]
    with LocalServer() as server:
        latency = measure_latency(server, workdir, latency_items, args.feeds, args.publish_seconds)
        throughput = [
            measure_throughput(server, workdir, items, targets, f"throughput{targets}")
            for items, targets in zip(fill_items, (1, args.targets), strict=True)
        ]
        sample = server.arrivals("/hook/throughput1/")
        if not sample:
            raise BenchmarkError(
                "no alert arrived in the throughput run: nothing to take the baseline payloads from"
            )
        baseline = measure_baseline(server, workdir, sample, args.deliveries)
    setup = {
        "items": args.items,
        "deliveries": args.deliveries,
        "targets": args.targets,
        "feeds": args.feeds,
        "publish_seconds": args.publish_seconds,
        "alert_concurrency": DEFAULT_ALERT_CONCURRENCY,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "apprise": apprise.__version__,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }
    report = Report(setup, latency, throughput, baseline)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print_report(report)
    return 0 if report.latency_met and report.throughput_met else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=positive, default=DEFAULT_ITEMS, help="latency: items (default 1000)")
    parser.add_argument(
        "--deliveries",
        type=positive,
        default=DEFAULT_DELIVERIES,
        help="throughput: deliveries (default 2000)",
    )
    parser.add_argument(
        "--targets",
        type=positive,
        default=DEFAULT_TARGETS,
        help="throughput: webhooks of the second run (4)",
    )
    parser.add_argument(
        "--feeds", type=positive, default=DEFAULT_FEEDS, help="latency: feeds polled in turn (default 60)"
    )
    parser.add_argument(
        "--publish-seconds",
        type=float,
        default=DEFAULT_PUBLISH_SECONDS,
        help="latency: the items appear over this long (default 60)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and print its path")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    # The delivery run and the baseline run in child processes of this same script.
    parser.add_argument("--child", choices=("deliver", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and args.child_args:
        parser.error(f"unexpected arguments: {' '.join(args.child_args)}")
    if args.publish_seconds <= 0:
        parser.error("--publish-seconds must be more than 0")
    if args.targets > args.deliveries:
        parser.error("--targets must not exceed --deliveries")
    if max(args.items, args.deliveries) >= MARKERS_PER_PHASE:
        parser.error(f"--items and --deliveries must be below {MARKERS_PER_PHASE:,}")
    return args


def run_as_child(mode: str, arguments: Sequence[str]) -> int:
    """The child side of `_self_command`: one JSON line on stdout, or one error line and status 1."""
    try:
        if mode == "deliver":
            (config,) = arguments
            result = deliver_child(config)
        else:
            url, payload_file, count = arguments
            result = baseline_child(url, payload_file, int(count))
    except (BenchmarkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return run_as_child(args.child, args.child_args)
    return run_in_workdir(
        "alerts", args.keep, lambda workdir: benchmark(args, workdir), kept="the stores and the daemon's log"
    )


if __name__ == "__main__":
    sys.exit(main())
