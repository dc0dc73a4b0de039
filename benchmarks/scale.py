"""Scale benchmark (issue 7): 10,000 feeds on one worker (SQLite) and on three (PostgreSQL), and slow feeds.

(a) Steady polling. N local feeds (default 10,000) polled every interval, 5 % of them gaining an item each
    cycle, for three cycles: first one `newswatch run` on SQLite, then three on PostgreSQL. Measured: poll
    lag — how late a due feed is claimed (claim time − its next check; a trigger on the feed table records
    each claim), p50/p95 per cycle; CPU seconds per cycle (all workers together); peak RSS per worker.
    Targets: lag p95 ≤ 60 s, peak RSS ≤ 250 MB per worker, and no feed left overdue at the end.
(b) Slow feeds. Every answer takes --slow-delay seconds (an asyncio server in this process holds it):
    the time from all feeds falling due to the last of them polled, with one worker and with three on
    PostgreSQL. Target: three workers poll the cycle ≥ 2.5× faster than one.

Time is compressed: the issue's 15-minute interval is run as --interval seconds (default 180 s, 5×), so
the feeds fall due 5× as fast as they would (5× the load) while the lag target stays 60 s; the report says
so. The daemons run with the shipped defaults otherwise (tick 15 s, 64 feeds at a time); (b) uses a 1 s
tick so that the cycle starts at once. Before (a) measures anything, the workers poll every feed once
(the first poll stores the items); then the feeds' next checks are spread evenly over one interval, as in
a daemon that has been running for a while, and fresh worker processes are started for the three cycles.

The feeds are static files (see feedgen.py) served by nginx (or the Python fallback, with a warning) on
--hosts loopback addresses; PostgreSQL is --pg-url (a schema of its own, dropped at the end).

    python benchmarks/scale.py [--feeds 10000] [--interval 180] [--cycles 3] [--quick] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedgen import DEFAULT_SEED, Feed, feed_urls, generate_feeds, make_feed, render, write_opml  # noqa: E402
from nginx import ServerError, free_port, serve_folder, use_nginx  # noqa: E402
from runner import BenchmarkError, host_count, percentile, positive, run_in_workdir  # noqa: E402
from sqlalchemy import func, text, update  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from worker.store.db import make_engine  # noqa: E402
from worker.store.models import SOURCE_FEED, Article  # noqa: E402
from worker.store.models import Feed as FeedRow  # noqa: E402

DEFAULT_FEEDS = 10_000
DEFAULT_ITEMS = 2  # items per feed at the start: the first poll stores them all
DEFAULT_INTERVAL = 180.0  # seconds standing in for the 15 minutes
REAL_INTERVAL = 15 * 60.0
DEFAULT_CYCLES = 3
DEFAULT_CHANGE_SHARE = 0.05
DEFAULT_HOSTS = 50
DEFAULT_WORKERS = 3
DEFAULT_SLOW_FEEDS = 3000
DEFAULT_SLOW_DELAY = 0.5
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUICK = {"feeds": 1000, "interval": 60.0, "cycles": 1, "slow_feeds": 1000}
TARGET_LAG_P95 = 60.0  # seconds
TARGET_PEAK_RSS_MB = 250.0  # per worker, MB (10^6 bytes)
TARGET_SLOW_SPEEDUP = 2.5  # three workers ÷ one, on the slow feeds
SLOW_TICK = "1s"
START_TIMEOUT = 120.0  # seconds for a worker to say it runs (10,000 feeds are synced first)
STOP_TIMEOUT = 30.0
WARM_UP_TIMEOUT = 3600.0
SLOW_CYCLE_TIMEOUT = 1800.0
STEADY_LEAD = 20.0  # seconds from the spread schedule being written to the first feed falling due
_RUNNING_LINE = "newswatch running"
_MB = 1_000_000
_OUTPUT_TAIL_CHARS = 1500
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_KIB = 1024  # /proc reports VmHWM in kB, i.e. KiB


def progress(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


# -- statistics ----------------------------------------------------------------------------------------------


def _epoch(value: datetime | str) -> float:
    """Seconds since the epoch of a stored time (SQLite gives naive UTC text, PostgreSQL aware values)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# -- worker processes ----------------------------------------------------------------------------------------


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without NEWSWATCH_* overrides (the benchmark's settings must be the ones
    read), with the working tree importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSWATCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU time so far, from /proc (the process is still running)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * _KIB / _MB
        return float("nan")

    def output_tail(self) -> str:
        return self.log.read_text(errors="replace").strip()[-_OUTPUT_TAIL_CHARS:] or "(no output)"


@contextmanager
def workers(config: Path, count: int, env: dict[str, str], logs: Path, label: str) -> Iterator[list[Worker]]:
    """`count` × `newswatch run`, each up and running, stopped with SIGTERM when the block ends."""
    started: list[Worker] = []
    try:
        for n in range(count):
            log = logs / f"{label}-{n}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "worker", "--config", str(config), "run"],
                    cwd=REPO,
                    env=_child_env(env),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                )
            started.append(Worker(process, log))
        deadline = time.monotonic() + START_TIMEOUT
        for worker in started:
            while _RUNNING_LINE not in worker.log.read_text(errors="replace"):
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    raise BenchmarkError(f"{label}: a worker did not start: {worker.output_tail()}")
                time.sleep(0.1)
        yield started
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in started:
            try:
                worker.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def write_config(directory: Path, opml: Path, interval: float, tick: str | None = None) -> Path:
    """The shipped defaults, except: the benchmark's feeds and interval, its own store, private
    addresses allowed (the feeds are on loopback), no seeds (nothing to compare)."""
    directory.mkdir(parents=True, exist_ok=True)
    poll = f"interval = {interval:g}\n" + (f'tick = "{tick}"\n' if tick else "")
    path = directory / "newswatch.toml"
    path.write_text(
        f'state_dir = "{directory}"\nopml = "{opml}"\n'
        f'[database]\nurl = "sqlite:///{directory / "newswatch.db"}"\n'
        f"[poll]\n{poll}"
        "[http]\nallow_private_networks = true\n"
        "[seeds]\nauto_import = false\n",
        encoding="utf-8",
    )
    return path


# -- stores --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    kind: str  # "sqlite" or "postgresql"
    url: str
    env: dict[str, str]  # what the workers need to use it


@contextmanager
def postgres_schema(base_url: str, keep: bool) -> Iterator[Store]:
    """A fresh schema of the PostgreSQL database at `base_url`, dropped at the end unless `keep`."""
    schema = f"bench_scale_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        admin.dispose()
        raise BenchmarkError(f"PostgreSQL at {base_url} is not usable: {str(exc).splitlines()[0]}") from exc
    url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    try:
        yield Store("postgresql", url, {"NEWSWATCH_DATABASE_URL": url})
    finally:
        if keep:
            progress(f"keeping PostgreSQL schema {schema}")
        else:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _count(engine: Engine, query: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(query).one())


def unpolled(engine: Engine) -> int:
    return _count(engine, select(func.count()).select_from(FeedRow).where(col(FeedRow.polls) == 0))


def feed_articles(engine: Engine) -> int:
    return _count(engine, select(func.count()).select_from(Article).where(col(Article.source) == SOURCE_FEED))


def spread_schedule(engine: Engine, start: float, interval: float, rng: random.Random) -> None:
    """Every feed's next check somewhere in [start, start + interval): a daemon's steady state."""
    with Session(engine) as session:
        ids = list(session.exec(select(FeedRow.id)))
        rows = [
            {"id": feed_id, "next_check": datetime.fromtimestamp(start + rng.uniform(0, interval), UTC)}
            for feed_id in ids
        ]
        session.execute(update(FeedRow), rows)
        session.commit()


# A claim sets the lease; the trigger notes when, and when the feed was due.
_CLAIM_LOG = {
    "sqlite": [
        "DROP TABLE IF EXISTS bench_claim",
        "CREATE TABLE bench_claim (feed_id INTEGER, due TEXT, claimed TEXT)",
        "CREATE TRIGGER bench_claim AFTER UPDATE OF lease_until ON feed "
        "WHEN NEW.lease_until IS NOT NULL "
        "AND (OLD.lease_until IS NULL OR NEW.lease_until <> OLD.lease_until) "
        "BEGIN INSERT INTO bench_claim VALUES "
        "(NEW.id, NEW.next_check, strftime('%Y-%m-%d %H:%M:%f', 'now')); END",
    ],
    "postgresql": [
        "DROP TABLE IF EXISTS bench_claim",
        "CREATE TABLE bench_claim (feed_id INTEGER, due TIMESTAMPTZ, claimed TIMESTAMPTZ)",
        "CREATE OR REPLACE FUNCTION bench_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.lease_until IS NOT NULL AND NEW.lease_until IS DISTINCT FROM OLD.lease_until THEN "
        "INSERT INTO bench_claim VALUES (NEW.id, NEW.next_check, clock_timestamp()); END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER bench_claim AFTER UPDATE ON feed FOR EACH ROW EXECUTE FUNCTION bench_claim()",
    ],
}


def log_claims(engine: Engine) -> None:
    with engine.begin() as connection:
        for statement in _CLAIM_LOG[engine.dialect.name]:
            connection.execute(text(statement))


def claims(engine: Engine) -> list[tuple[float, float]]:
    """(due, lag) of every claim so far: when the feed was due, and how long after that it was claimed."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT due, claimed FROM bench_claim")).all()
    return [(_epoch(due), _epoch(claimed) - _epoch(due)) for due, claimed in rows]


def unpolled_since(engine: Engine, changes: dict[str, float]) -> int:
    """How many of the feeds changed (URL path → when) have not been fetched since."""
    with Session(engine) as session:
        rows = session.exec(select(FeedRow.url, FeedRow.last_fetch)).all()
    fetched = {urlsplit(url).path: _epoch(last) if last is not None else 0.0 for url, last in rows}
    return len([path for path, when in changes.items() if fetched[path] < when])


def due_before(engine: Engine, moment: float) -> int:
    """Enabled feeds due before `moment` and not polled yet (a poll moves the next check an interval on)."""
    cutoff = datetime.fromtimestamp(moment, UTC)
    query = select(func.count()).select_from(FeedRow).where(col(FeedRow.next_check) < cutoff)
    return _count(engine, query.where(col(FeedRow.enabled)))


# -- the feeds -----------------------------------------------------------------------------------------------


class Feeds:
    """The generated feeds on disk, and the changes of each cycle (one new item on a share of them)."""

    def __init__(self, root: Path, count: int, items: int, seed: int) -> None:
        self.root = root
        self.count = count
        self.seed = seed
        self.now = datetime.now(UTC).replace(microsecond=0)
        generated = generate_feeds(root, count, items, seed=seed, now=self.now)
        self.paths = generated.paths
        self.items = generated.items
        self._items = items
        self._current: dict[int, Feed] = {}
        self.added = 0  # items added by `change` so far

    def change(self, share: float, rng: random.Random) -> dict[str, float]:
        """Give `share` of the feeds, chosen at random, one new item each (its guid and text new to any
        store); returns the paths changed, with when."""
        chosen = rng.sample(range(self.count), max(1, round(self.count * share)))
        now = datetime.now(UTC).replace(microsecond=0)
        changed = {}
        for number in chosen:
            self.added += 1
            feed = self._current.get(number) or make_feed(number, self._items, seed=self.seed, now=self.now)
            fresh = make_feed(number, 1, seed=self.seed + self.added, now=now).items[0]
            fresh = replace(
                fresh,
                guid=f"outlet{number}-change{self.added}",
                link=f"{feed.site}/news/change{self.added}/{number}",
                published=now,
            )
            feed = replace(feed, items=(fresh, *feed.items))
            self._current[number] = feed
            (self.root / feed.path.lstrip("/")).write_text(render(feed, now), encoding="utf-8")
            changed[feed.path] = time.time()
        return changed


# -- (a) steady polling --------------------------------------------------------------------------------------


@dataclass
class CycleResult:
    polls: int
    lag_p50: float
    lag_p95: float
    lag_max: float
    cpu_seconds: float
    changed: int


@dataclass
class SteadyResult:
    label: str
    workers: int
    feeds: int
    warm_up_seconds: float
    warm_up_articles: int
    cycles: list[CycleResult]
    peak_rss_mb: list[float]
    overdue_at_end: int
    items_added: int
    articles_added: int
    items_waiting: int  # on feeds not polled since they changed (their next check fell after the run)
    lag_p95: float = float("nan")
    notes: list[str] = field(default_factory=list)


def warm_up(config: Path, store: Store, count: int, feeds: int, logs: Path, label: str) -> tuple[float, int]:
    """Every feed polled once (its items stored), then the workers stop. Returns (seconds, articles)."""
    engine = make_engine(store.url)
    started = time.monotonic()
    try:
        with workers(config, count, store.env, logs, f"{label}-warm-up") as running:
            last = 0.0
            while (left := unpolled(engine)) > 0:
                if any(w.process.poll() is not None for w in running):
                    raise BenchmarkError(f"{label}: a worker exited: {running[0].output_tail()}")
                if time.monotonic() - started > WARM_UP_TIMEOUT:
                    raise BenchmarkError(f"{label}: {left} feeds still unpolled after the warm-up timeout")
                if time.monotonic() - last > 15:
                    progress(f"{label}: warm-up, {feeds - left}/{feeds} feeds polled")
                    last = time.monotonic()
                time.sleep(1.0)
        return time.monotonic() - started, feed_articles(engine)
    finally:
        engine.dispose()


def steady(
    args: argparse.Namespace, config: Path, store: Store, count: int, feeds: Feeds, logs: Path, label: str
) -> SteadyResult:
    rng = random.Random(args.seed + count)
    warm_seconds, warm_articles = warm_up(config, store, count, feeds.count, logs, label)
    progress(f"{label}: warm-up done in {warm_seconds:.0f} s ({warm_articles} articles)")
    engine = make_engine(store.url)
    try:
        start = time.time() + STEADY_LEAD
        spread_schedule(engine, start, args.interval, rng)
        log_claims(engine)
        added_before = feeds.added
        finish = start + args.cycles * args.interval
        with workers(config, count, store.env, logs, label) as running:
            cpu: list[float] = []
            changed: list[int] = []
            change_times: dict[str, float] = {}
            time.sleep(max(0.0, start - time.time()))
            for cycle in range(args.cycles):
                cpu_before = sum(w.cpu_seconds() for w in running)
                paths = feeds.change(args.change_share, rng)
                change_times.update(paths)
                changed.append(len(paths))
                progress(f"{label}: cycle {cycle + 1}/{args.cycles}, {changed[-1]} feeds changed")
                time.sleep(max(0.0, start + (cycle + 1) * args.interval - time.time()))
                if any(w.process.poll() is not None for w in running):
                    raise BenchmarkError(f"{label}: a worker exited: {running[0].output_tail()}")
                cpu.append(sum(w.cpu_seconds() for w in running) - cpu_before)
            # The feeds due at the end of the last cycle are claimed at the next ticks: wait for them, up to
            # the lag target. What is still due then is left behind.
            while due_before(engine, finish) and time.time() < finish + TARGET_LAG_P95:
                time.sleep(1.0)
            left_behind = due_before(engine, finish)
            rss = [w.peak_rss_mb() for w in running]
        lags = claims(engine)
        cycles = []
        for cycle in range(args.cycles):
            begin = start + cycle * args.interval
            late = [lag for due, lag in lags if begin <= due < begin + args.interval]
            cycles.append(
                CycleResult(
                    polls=len(late),
                    lag_p50=percentile(late, 0.5),
                    lag_p95=percentile(late, 0.95),
                    lag_max=max(late, default=float("nan")),
                    cpu_seconds=cpu[cycle],
                    changed=changed[cycle],
                )
            )
        return SteadyResult(
            label=label,
            workers=count,
            feeds=feeds.count,
            warm_up_seconds=warm_seconds,
            warm_up_articles=warm_articles,
            cycles=cycles,
            peak_rss_mb=rss,
            overdue_at_end=left_behind,
            items_added=feeds.added - added_before,
            articles_added=feed_articles(engine) - warm_articles,
            items_waiting=unpolled_since(engine, change_times),
            lag_p95=percentile([lag for due, lag in lags if start <= due < finish], 0.95),
        )
    finally:
        engine.dispose()


# -- (b) slow feeds ------------------------------------------------------------------------------------------


class SlowServer:
    """An asyncio HTTP/1.1 server, in a thread of this process, on several loopback addresses: every GET
    waits `delay` seconds, then serves an empty feed with an ETag (304 to If-None-Match). Asyncio holds
    hundreds of waiting answers without a thread each, so the server is not what limits the workers."""

    _BODY = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Slow</title>'
        b"<link>https://slow.example/</link><description>slow feed</description></channel></rss>\n"
    )
    _ETAG = '"slow-1"'

    def __init__(self, addresses: Sequence[str], delay: float) -> None:
        self.addresses = list(addresses)
        self.delay = delay
        self.port = free_port(self.addresses)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-server", daemon=True)
        self._failure: BaseException | None = None

    def __enter__(self) -> SlowServer:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._failure is not None:
            raise BenchmarkError(f"the slow server did not start: {self._failure}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def url(self, number: int) -> str:
        return f"http://{self.addresses[number % len(self.addresses)]}:{self.port}/slow/{number:05d}.rss"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, self.addresses, self.port, backlog=1024)
            )
        except OSError as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {n.strip().lower(): v.strip() for n, _, v in (h.partition(":") for h in lines[1:])}
                await asyncio.sleep(self.delay)
                if headers.get("if-none-match") == self._ETAG:
                    answer = f"HTTP/1.1 304 Not Modified\r\nETag: {self._ETAG}\r\n\r\n".encode()
                else:
                    answer = (
                        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
                        f"ETag: {self._ETAG}\r\nContent-Length: {len(self._BODY)}\r\n\r\n"
                    ).encode() + self._BODY
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client closed the connection
        finally:
            writer.close()


@dataclass
class SlowResult:
    feeds: int
    delay: float
    seconds: dict[int, float]  # workers → seconds for one cycle
    cpu_seconds: dict[int, float]

    @property
    def speedup(self) -> float:
        counts = sorted(self.seconds)
        return self.seconds[counts[0]] / self.seconds[counts[-1]]


def slow_cycle(config: Path, store: Store, count: int, feeds: int, logs: Path) -> tuple[float, float]:
    """With `count` workers running, make every feed due at once and time until the last one is polled."""
    engine = make_engine(store.url)
    try:
        with workers(config, count, store.env, logs, f"slow-{count}") as running:
            cpu_before = sum(w.cpu_seconds() for w in running)
            due = datetime.now(UTC)
            with Session(engine) as session:
                session.execute(update(FeedRow).values(next_check=due))
                session.commit()
            waiting = select(func.count()).select_from(FeedRow).where(col(FeedRow.last_fetch) < due)
            deadline = time.monotonic() + SLOW_CYCLE_TIMEOUT
            while (left := _count(engine, waiting)) > 0:
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"slow feeds, {count} workers: {left} of {feeds} never polled")
                time.sleep(0.5)
            cpu = sum(w.cpu_seconds() for w in running) - cpu_before
        with Session(engine) as session:
            last = session.exec(select(func.max(FeedRow.last_fetch))).one()
        assert last is not None
        return _epoch(last) - due.timestamp(), cpu
    finally:
        engine.dispose()


def slow_feeds(args: argparse.Namespace, workdir: Path, logs: Path) -> SlowResult:
    addresses = [f"127.0.0.{n}" for n in range(1, args.hosts + 1)]
    with SlowServer(addresses, args.slow_delay) as server, postgres_schema(args.pg_url, args.keep) as store:
        opml = write_opml(workdir / "slow.opml", [server.url(n) for n in range(args.slow_feeds)])
        # An interval of an hour: after the measured cycle, nothing falls due again by itself.
        config = write_config(workdir / "slow", opml, 3600, tick=SLOW_TICK)
        progress(f"slow feeds: warm-up, {args.slow_feeds} feeds answering after {args.slow_delay:g} s")
        warm_up(config, store, args.workers, args.slow_feeds, logs, "slow")
        seconds: dict[int, float] = {}
        cpu: dict[int, float] = {}
        for count in (1, args.workers):
            progress(f"slow feeds: one cycle with {count} worker{'s' if count > 1 else ''}")
            seconds[count], cpu[count] = slow_cycle(config, store, count, args.slow_feeds, logs)
    return SlowResult(args.slow_feeds, args.slow_delay, seconds, cpu)


# -- report --------------------------------------------------------------------------------------------------


def verdicts(steady_results: Sequence[SteadyResult], slow: SlowResult | None) -> dict[str, bool]:
    passed = {}
    for result in steady_results:
        passed[f"{result.label}: lag p95"] = result.lag_p95 <= TARGET_LAG_P95 and result.overdue_at_end == 0
        passed[f"{result.label}: peak RSS"] = max(result.peak_rss_mb) <= TARGET_PEAK_RSS_MB
    passed["slow feeds: speed-up"] = slow is not None and slow.speedup >= TARGET_SLOW_SPEEDUP
    return passed


def print_report(
    setup: dict[str, Any],
    steady_results: Sequence[SteadyResult],
    slow: SlowResult | None,
    passed: dict[str, bool],
    skipped: Sequence[str],
) -> None:
    compression = REAL_INTERVAL / setup["interval"]
    print(
        f"{setup['feeds']:,} feeds ({setup['items']} items each at the start) on {setup['hosts']} loopback "
        f"hosts, served by {setup['server']}; {setup['change_share']:.0%} of them gain an item each cycle; "
        f"{setup['cycles']} cycle{'s' if setup['cycles'] > 1 else ''}; {setup['cpus']} CPUs; "
        f"Python {setup['python']}; "
        f"1-minute load average {setup['load_average_before']:.2f} before, "
        f"{setup['load_average_after']:.2f} after"
    )
    print(
        f"time compressed {compression:g}×: the 15-minute interval runs as {setup['interval']:g} s, so feeds "
        f"fall due at {setup['feeds'] / setup['interval']:.1f}/s instead of "
        f"{setup['feeds'] / REAL_INTERVAL:.1f}/s; the lag target stays {TARGET_LAG_P95:g} s. "
        "Workers use the default tick (15 s) and concurrency (64)."
    )
    print()
    for result in steady_results:
        rss = ", ".join(f"{mb:.0f}" for mb in result.peak_rss_mb)
        print(
            f"{result.label}: warm-up (first poll of every feed) {result.warm_up_seconds:.0f} s, "
            f"{result.warm_up_articles:,} articles; peak RSS per worker {rss} MB"
        )
        columns = [("cycle", 5), ("polled", 7), ("changed", 8), ("lag p50 s", 10), ("lag p95 s", 10)]
        columns += [("lag max s", 10), ("CPU s", 7)]
        print("  " + " ".join(f"{name:>{width}}" for name, width in columns))
        for n, cycle in enumerate(result.cycles, 1):
            print(
                f"  {n:>5} {cycle.polls:>7} {cycle.changed:>8} {cycle.lag_p50:>10.1f} {cycle.lag_p95:>10.1f} "
                f"{cycle.lag_max:>10.1f} {cycle.cpu_seconds:>7.1f}"
            )
        print(
            f"  all cycles: lag p95 {result.lag_p95:.1f} s; {result.overdue_at_end} feeds due in the last "
            f"cycle still unpolled {TARGET_LAG_P95:g} s after it; {result.items_added:,} items added: "
            f"{result.articles_added:,} stored, {result.items_waiting} on feeds not polled since they changed"
        )
        lost = result.items_added - result.articles_added - result.items_waiting
        if lost:
            print(f"  WARNING: {lost} items added to feeds polled since are not stored")
        print()
    if slow is not None:
        cycles = ", ".join(
            f"{count} worker{'s' if count > 1 else ''} {seconds:.1f} s (CPU {slow.cpu_seconds[count]:.1f} s)"
            for count, seconds in sorted(slow.seconds.items())
        )
        print(f"slow feeds: {slow.feeds:,} feeds, each answer held {slow.delay:g} s; one cycle: {cycles}")
        print()
    for line in skipped:
        print(f"NOT RUN: {line}")
    mark = {True: "PASS", False: "FAIL"}
    for result in steady_results:
        print(
            f"{result.label}: lag p95 {result.lag_p95:.1f} s, {result.overdue_at_end} overdue "
            f"(target ≤ {TARGET_LAG_P95:g} s, none overdue)  {mark[passed[f'{result.label}: lag p95']]}"
        )
        print(
            f"{result.label}: peak RSS {max(result.peak_rss_mb):.0f} MB per worker "
            f"(target ≤ {TARGET_PEAK_RSS_MB:g} MB)  {mark[passed[f'{result.label}: peak RSS']]}"
        )
    speedup = f"{slow.speedup:.2f}×" if slow is not None else "not measured"
    print(
        f"slow feeds: {setup['workers']} workers vs 1, cycle {speedup} faster "
        f"(target ≥ {TARGET_SLOW_SPEEDUP:g}×)  {mark[passed['slow feeds: speed-up']]}"
    )


# -- main ----------------------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, workdir: Path) -> int:
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    progress(f"generating {args.feeds} feeds × {args.items} items")
    addresses = [f"127.0.0.{n}" for n in range(1, args.hosts + 1)]
    results: list[SteadyResult] = []
    skipped: list[str] = []
    slow: SlowResult | None = None
    with ExitStack() as stack:
        feeds = Feeds(workdir / "www", args.feeds, args.items, args.seed)
        server = stack.enter_context(
            serve_folder(feeds.root, addresses, prefer_nginx=use_nginx(args.server, progress))
        )
        opml = write_opml(workdir / "feeds.opml", feed_urls(feeds.paths, addresses, server.port))
        sqlite_config = write_config(workdir / "sqlite", opml, args.interval)
        sqlite_store = Store("sqlite", f"sqlite:///{workdir / 'sqlite' / 'newswatch.db'}", {})
        results.append(steady(args, sqlite_config, sqlite_store, 1, feeds, logs, "1 worker, SQLite"))
        try:
            pg_store = stack.enter_context(postgres_schema(args.pg_url, args.keep))
        except BenchmarkError as exc:
            skipped.append(f"{args.workers} workers on PostgreSQL: {exc}")
        else:
            pg_config = write_config(workdir / "postgresql", opml, args.interval)
            label = f"{args.workers} workers, PostgreSQL"
            results.append(steady(args, pg_config, pg_store, args.workers, feeds, logs, label))
        server_kind = server.kind
    try:
        slow = slow_feeds(args, workdir, logs)
    except BenchmarkError as exc:
        skipped.append(f"slow feeds: {exc}")
    passed = verdicts(results, slow)
    setup = {
        "feeds": args.feeds,
        "items": args.items,
        "interval": args.interval,
        "cycles": args.cycles,
        "change_share": args.change_share,
        "hosts": args.hosts,
        "workers": args.workers,
        "server": server_kind,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }
    if args.json:
        report = {
            "setup": setup,
            "steady": [asdict(r) for r in results],
            "slow": None if slow is None else {**asdict(slow), "speedup": slow.speedup},
            "targets": {
                "lag_p95_seconds": TARGET_LAG_P95,
                "peak_rss_mb": TARGET_PEAK_RSS_MB,
                "slow_speedup": TARGET_SLOW_SPEEDUP,
            },
            "not_run": skipped,
            "passed": passed,
        }
        print(json.dumps(report, indent=2))
    else:
        print_report(setup, results, slow, passed, skipped)
    return 0 if all(passed.values()) and not skipped else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--feeds", type=positive, default=DEFAULT_FEEDS, help="number of feeds (10,000)")
    parser.add_argument("--items", type=positive, default=DEFAULT_ITEMS, help="items per feed at the start")
    parser.add_argument(
        "--interval",
        type=_interval,
        default=DEFAULT_INTERVAL,
        help="seconds standing in for the 15-minute poll interval (default 180; at least 60)",
    )
    parser.add_argument("--cycles", type=positive, default=DEFAULT_CYCLES, help="measured cycles (3)")
    parser.add_argument(
        "--change-share", type=_share, default=DEFAULT_CHANGE_SHARE, help="feeds gaining an item per cycle"
    )
    parser.add_argument("--workers", type=positive, default=DEFAULT_WORKERS, help="PostgreSQL workers (3)")
    parser.add_argument("--hosts", type=host_count, default=DEFAULT_HOSTS, help="loopback addresses (50)")
    parser.add_argument("--slow-feeds", type=positive, default=DEFAULT_SLOW_FEEDS, help="slow feeds (3,000)")
    parser.add_argument(
        "--slow-delay", type=_seconds, default=DEFAULT_SLOW_DELAY, help="seconds each slow answer takes (0.5)"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL database (a schema is created)")
    parser.add_argument(
        "--server", choices=("auto", "nginx", "python"), default="auto", help="feed server (nginx if found)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="feed generator and change seed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short look: 1,000 feeds, 60 s interval, one cycle, 1,000 slow feeds (explicit options win)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and PostgreSQL schemas")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in (argv or sys.argv[1:])}
        for name, value in QUICK.items():
            if name not in given:
                setattr(args, name, value)
    return args


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds ≥ 0, not {text!r}")
    return value


def _interval(text: str) -> float:
    value = _seconds(text)
    if value < 60:  # the shortest poll interval the config accepts
        raise argparse.ArgumentTypeError(f"expected at least 60 seconds, not {text!r}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share above 0 and at most 1, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_in_workdir(
        "scale",
        args.keep,
        lambda workdir: benchmark(args, workdir),
        kept="each worker's log",
        errors=(BenchmarkError, ServerError),
    )


if __name__ == "__main__":
    sys.exit(main())
