"""Ingest benchmark (issue 2): Newswatch against the `reader` library, on the same local feeds, in one run.

Measures (a) the first poll, new entries per second end to end; (b) a re-poll where nothing changed, feeds
per second; (c) Newswatch's peak RSS. Targets: (a) ≥ 2× reader, (b) ≥ 3× reader, (c) ≤ 200 MB.

Both tools run as a user would run them, each poll in a process of its own, so that the wall time covers
the whole command (interpreter start, imports, opening the store) and the peak RSS is that process's own
(os.wait4 gives each child's rusage). reader is measured sequential (its default) and with a thread pool
(`workers=`); Newswatch is compared against the better of the two on each measure.

The feeds are spread over several loopback addresses, each a host of its own: a real subscription list
spans many sites, and with all feeds on one host a client's per-host politeness limit (Newswatch's
http.per_host_limit) would be measured instead of its ingest path. --hosts 1 measures that case.

    python benchmarks/ingest.py [--feeds 500] [--items 30] [--hosts 50] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from feedgen import DEFAULT_ITEMS, DEFAULT_SEED, feed_urls, generate_feeds, write_opml
from nginx import ServerError, StaticServer, serve_folder, use_nginx
from runner import BenchmarkError, host_count, positive, run_in_workdir

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FEEDS = 500
DEFAULT_HOSTS = 50
DEFAULT_READER_WORKERS = 20
CHILD_TIMEOUT = 1800.0  # seconds for one child process before the benchmark gives up
TARGET_FIRST_POLL_RATIO = 2.0  # (a) entries/s, Newswatch ÷ best reader
TARGET_REPOLL_RATIO = 3.0  # (b) feeds/s, Newswatch ÷ best reader
TARGET_PEAK_RSS_MB = 200.0  # (c) Newswatch's peak resident set, MB (10^6 bytes)
_MB = 1_000_000
_KIB = 1024  # ru_maxrss is in KiB on Linux
_OUTPUT_TAIL_CHARS = 1500
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")
_SUMMARY = re.compile(
    r"polled (\d+) feeds: (\d+) new articles \((\d+) duplicates\), "
    r"(\d+) updated, (\d+) unchanged, (\d+) with errors in ([\d.]+) s"
)


# -- child processes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    seconds: float  # wall time, start to exit
    peak_rss_mb: float
    stdout: str
    stderr: str
    statuses: dict[int, int]  # HTTP statuses the server answered while the child ran


def run_child(
    command: Sequence[str], server: StaticServer, workdir: Path, label: str, timeout: float
) -> ChildRun:
    """Run one process to its end and measure it alone: wall time, and its peak RSS from its own rusage."""
    before = server.statuses()
    out_path, err_path = workdir / f"{label}.out", workdir / f"{label}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=REPO, env=_child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen, which did not wait
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    if process.returncode != 0:
        timed_out = " (killed after the timeout)" if seconds >= timeout else ""
        raise BenchmarkError(
            f"{label} exited with status {process.returncode}{timed_out}: {_failure(stderr or stdout)}"
        )
    statuses = server.statuses() - before
    return ChildRun(seconds, usage.ru_maxrss * _KIB / _MB, stdout, stderr, dict(sorted(statuses.items())))


def _failure(output: str) -> str:
    """The exception line of a traceback (its parameters dumps can be huge), else the output's end."""
    if not output.strip():
        return "(no output)"
    errors = [line for line in output.splitlines() if _EXCEPTION_LINE.match(line)]
    if errors:
        return errors[-1][:_OUTPUT_TAIL_CHARS]
    return "\n" + output.strip()[-_OUTPUT_TAIL_CHARS:]


def _child_env() -> dict[str, str]:
    """The caller's environment without NEWSWATCH_* overrides (the benchmark's config must be the one read),
    with the working tree importable and wide lines so the one-line summaries are not wrapped."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSWATCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "1000"
    return env


# -- results ---------------------------------------------------------------------------------------------


@dataclass
class ToolResult:
    name: str
    feeds: int
    first_seconds: float
    entries: int
    repoll_seconds: float
    peak_rss_mb: float
    first_statuses: dict[int, int]
    repoll_statuses: dict[int, int]
    # Time of the poll work alone, measured inside the process around the poll (Newswatch: the pass that
    # `poll` reports; reader: the update_feeds() call), without interpreter start, imports, opening the store.
    first_call_seconds: float | None = None
    repoll_call_seconds: float | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.first_seconds

    @property
    def feeds_per_second(self) -> float:
        return self.feeds / self.repoll_seconds

    @property
    def work_entries_per_second(self) -> float:
        return self.entries / (self.first_call_seconds or self.first_seconds)

    @property
    def work_feeds_per_second(self) -> float:
        return self.feeds / (self.repoll_call_seconds or self.repoll_seconds)

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "entries_per_second": round(self.entries_per_second, 1),
            "feeds_per_second": round(self.feeds_per_second, 1),
        }


def check_polls(result: ToolResult, expected_entries: int) -> None:
    """Note what would make the comparison unfair: missing entries, failed fetches, refetching re-polls."""
    if result.entries != expected_entries:
        result.problems.append(f"stored {result.entries} entries, expected {expected_entries}")
    if result.first_statuses.get(200, 0) != result.feeds:
        result.problems.append(
            f"first poll: expected {result.feeds} × 200, server answered {result.first_statuses}"
        )
    if result.repoll_statuses.get(304, 0) != result.feeds:
        result.problems.append(
            f"re-poll: expected {result.feeds} × 304, server answered {result.repoll_statuses}"
        )


# -- Newswatch -------------------------------------------------------------------------------------------


def newswatch_config(directory: Path) -> Path:
    """Defaults except what a loopback benchmark needs: a store of its own, private addresses allowed."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "newswatch.toml"
    path.write_text(
        f'state_dir = "{directory}"\n'
        f'[database]\nurl = "sqlite:///{directory / "newswatch.db"}"\n'
        "[http]\nallow_private_networks = true\n",
        encoding="utf-8",
    )
    return path


def newswatch_database(workdir: Path) -> Path:
    return workdir / "newswatch" / "newswatch.db"


def run_newswatch(opml: Path, server: StaticServer, workdir: Path, feeds: int, timeout: float) -> ToolResult:
    directory = workdir / "newswatch"
    config = newswatch_config(directory)
    base = [sys.executable, "-m", "worker", "--config", str(config)]
    progress("newswatch: importing the feeds (not timed)")
    run_child([*base, "feeds", "import", str(opml)], server, workdir, "newswatch-import", timeout)
    # What every command pays before any work, for reading the re-poll figure.
    start = run_child([*base, "--version"], server, workdir, "newswatch-start", timeout)
    progress("newswatch: first poll")
    first = run_child([*base, "poll", "--all"], server, workdir, "newswatch-first", timeout)
    entries = _count_feed_articles(newswatch_database(workdir))
    progress("newswatch: re-poll")
    again = run_child([*base, "poll", "--all"], server, workdir, "newswatch-repoll", timeout)
    result = ToolResult(
        name="newswatch",
        feeds=feeds,
        first_seconds=first.seconds,
        entries=entries,
        repoll_seconds=again.seconds,
        peak_rss_mb=max(first.peak_rss_mb, again.peak_rss_mb),
        first_statuses=first.statuses,
        repoll_statuses=again.statuses,
    )
    result.notes.append(f"process start and CLI imports alone (--version): {start.seconds:.2f} s")
    for label, run in (("first poll", first), ("re-poll", again)):
        result.problems.extend(_summary_problems(label, run.stdout + run.stderr, feeds))
    result.first_call_seconds = _pass_seconds(first.stdout + first.stderr)
    result.repoll_call_seconds = _pass_seconds(again.stdout + again.stderr)
    result.notes.append(
        f"the poll pass alone (as `poll` reports it): first poll {result.first_call_seconds or 0:.2f} s, "
        f"re-poll {result.repoll_call_seconds or 0:.2f} s"
    )
    return result


def _pass_seconds(output: str) -> float | None:
    match = _SUMMARY.search(" ".join(output.split()))
    return float(match[7]) if match else None


def _count_feed_articles(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT count(*) FROM article WHERE source = 'feed'").fetchone()
    return int(row[0])


@dataclass(frozen=True)
class Floors:
    """The fixed components alone on the same feeds (benchmarks/floors.py): not judged, for reading the
    ratios against what feedparser and httpx allow."""

    parse_entries: int
    parse_cpu_seconds: float
    fetch_feeds: int
    fetch_seconds: float
    fetch_statuses: dict[str, int]

    @property
    def parse_entries_per_second(self) -> float:
        return self.parse_entries / self.parse_cpu_seconds


def run_floors(feed_dir: Path, database: Path, server: StaticServer, workdir: Path, timeout: float) -> Floors:
    """feedparser over the feed files; the re-poll's conditional GETs with Newswatch's stored validators."""
    script = str(Path(__file__).resolve().parent / "floors.py")
    requests_file = workdir / "floor-requests.json"
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT url, etag, last_modified FROM feed ORDER BY id").fetchall()
    requests_file.write_text(json.dumps(rows), encoding="utf-8")
    progress("floors: feedparser alone, httpx alone")
    parse = [sys.executable, script, "parse", str(feed_dir)]
    parsed = json.loads(run_child(parse, server, workdir, "floor-parse", timeout).stdout)
    fetched = json.loads(
        run_child(
            [sys.executable, script, "fetch", str(requests_file)], server, workdir, "floor-fetch", timeout
        ).stdout
    )
    return Floors(
        parse_entries=parsed["entries"],
        parse_cpu_seconds=parsed["cpu_seconds"],
        fetch_feeds=fetched["feeds"],
        fetch_seconds=fetched["seconds"],
        fetch_statuses=fetched["statuses"],
    )


def _summary_problems(label: str, output: str, feeds: int) -> list[str]:
    match = _SUMMARY.search(" ".join(output.split()))
    if match is None:
        return [f"{label}: no summary line in the output of `poll`"]
    polled, errors = int(match[1]), int(match[6])
    problems = []
    if polled != feeds:
        problems.append(f"{label}: polled {polled} feeds of {feeds}")
    if errors:
        problems.append(f"{label}: {errors} feeds with errors")
    return problems


# -- reader ------------------------------------------------------------------------------------------------


def reader_supports_workers() -> bool:
    from reader import Reader

    return "workers" in inspect.signature(Reader.update_feeds_iter).parameters


def run_reader(
    urls_file: Path, server: StaticServer, workdir: Path, feeds: int, workers: int, timeout: float
) -> ToolResult:
    name = f"reader (workers={workers})"
    label = f"reader-w{workers}"
    database = workdir / f"{label}.sqlite"
    base = [sys.executable, str(Path(__file__).resolve()), "--db", str(database), "--urls", str(urls_file)]
    base += ["--workers", str(workers)]
    progress(f"{name}: adding the feeds (not timed)")
    run_child([*base, "--run-reader", "add"], server, workdir, f"{label}-add", timeout)
    calls: list[dict[str, Any]] = []
    runs: list[ChildRun] = []
    for phase in ("first poll", "re-poll"):
        progress(f"{name}: {phase}")
        result_file = workdir / f"{label}-{len(runs)}.json"
        run = run_child(
            [*base, "--run-reader", "poll", "--result", str(result_file)],
            server,
            workdir,
            f"{label}-{len(runs)}",
            timeout,
        )
        runs.append(run)
        calls.append(json.loads(result_file.read_text(encoding="utf-8")))
    first, again = runs
    result = ToolResult(
        name=name,
        feeds=feeds,
        first_seconds=first.seconds,
        entries=calls[0]["entries"],
        repoll_seconds=again.seconds,
        peak_rss_mb=max(first.peak_rss_mb, again.peak_rss_mb),
        first_statuses=first.statuses,
        repoll_statuses=again.statuses,
        first_call_seconds=calls[0]["seconds"],
        repoll_call_seconds=calls[1]["seconds"],
        notes=[
            f"update_feeds() call alone: first poll {calls[0]['seconds']:.2f} s, "
            f"re-poll {calls[1]['seconds']:.2f} s",
            f"sgmllib module: {calls[0]['sgmllib']}",
        ],
    )
    for phase, call in zip(("first poll", "re-poll"), calls, strict=True):
        if call["errors"]:
            result.problems.append(
                f"{phase}: {len(call['errors'])} feeds with errors, e.g. {call['errors'][0]}"
            )
    return result


def reader_child(phase: str, database: Path, urls_file: Path, workers: int, result_file: Path | None) -> None:
    """Runs inside the child process: add the feeds, or update them all once (due or not, like poll --all)."""
    sgmllib_source = _provide_sgmllib()
    from reader import UpdatedFeed, make_reader

    reader = make_reader(str(database))
    try:
        if phase == "add":
            for url in urls_file.read_text(encoding="utf-8").split():
                reader.add_feed(url, exist_ok=True)
            return
        counts: Counter[str] = Counter()
        errors = []
        options: dict[str, Any] = {"workers": workers} if workers > 1 else {}
        started = time.perf_counter()
        # update_feeds_iter is what update_feeds runs; iterating it ourselves also tells the errors apart.
        for url, value in reader.update_feeds_iter(scheduled=False, **options):
            if isinstance(value, UpdatedFeed):
                counts["new"] += value.new
                counts["modified"] += value.modified
            elif value is None:
                counts["not_modified"] += 1
            else:
                errors.append(f"{url}: {value}")
        seconds = time.perf_counter() - started
        entries = reader.get_entry_counts().total
        summary = {
            "seconds": seconds,
            "entries": entries,
            "errors": errors,
            "sgmllib": sgmllib_source,
            **counts,
        }
        if result_file is not None:
            result_file.write_text(json.dumps(summary), encoding="utf-8")
    finally:
        reader.close()


def _provide_sgmllib() -> str:
    """reader 3.x vendors a feedparser that imports `sgmllib` (from the sgmllib3k package), while feedparser
    ≥ 6.0.12 depends on feedparser-sgmllib instead: the same Python 2.7 module under another name. An
    environment can thus hold reader without the module it imports; alias it rather than fail."""
    try:
        import sgmllib  # noqa: F401
    except ImportError:
        import feedparser_sgmllib

        sys.modules["sgmllib"] = feedparser_sgmllib
        return "feedparser_sgmllib (aliased as sgmllib)"
    return "sgmllib"


# -- report ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    first_poll_ratio: float  # the poll work alone (judged)
    repoll_ratio: float
    whole_first_ratio: float  # whole processes, start-up included (shown)
    whole_repoll_ratio: float
    best_first: str
    best_repoll: str
    passed: dict[str, bool]


def judge(newswatch: ToolResult, readers: Sequence[ToolResult]) -> Verdict:
    best_first = max(readers, key=lambda r: r.work_entries_per_second)
    best_repoll = max(readers, key=lambda r: r.work_feeds_per_second)
    first_ratio = newswatch.work_entries_per_second / best_first.work_entries_per_second
    repoll_ratio = newswatch.work_feeds_per_second / best_repoll.work_feeds_per_second
    whole_first = newswatch.entries_per_second / max(r.entries_per_second for r in readers)
    whole_repoll = newswatch.feeds_per_second / max(r.feeds_per_second for r in readers)
    passed = {
        "a": first_ratio >= TARGET_FIRST_POLL_RATIO,
        "b": repoll_ratio >= TARGET_REPOLL_RATIO,
        "c": newswatch.peak_rss_mb <= TARGET_PEAK_RSS_MB,
    }
    return Verdict(
        first_ratio, repoll_ratio, whole_first, whole_repoll, best_first.name, best_repoll.name, passed
    )


def print_report(
    setup: dict[str, Any], results: Sequence[ToolResult], verdict: Verdict, floors: Floors
) -> None:
    print(
        f"{setup['feeds']} feeds × {setup['items']} items ({setup['feed_bytes'] / _MB:.1f} MB of feeds, "
        f"{setup['topical_items']} items mention Kazakhstan/OTS) on {setup['hosts']} loopback hosts, "
        f"served by {setup['server']}; {setup['cpus']} CPUs; Python {setup['python']}; "
        f"reader {setup['reader']}; 1-minute load average {setup['load_average_before']:.2f} before, "
        f"{setup['load_average_after']:.2f} after"
    )
    print()
    header = (
        f"{'':22} {'first poll s':>12} {'entries':>8} {'entries/s':>10} "
        f"{'re-poll s':>10} {'feeds/s':>8} {'peak RSS MB':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:22} {r.first_seconds:12.2f} {r.entries:8d} {r.entries_per_second:10.0f} "
            f"{r.repoll_seconds:10.2f} {r.feeds_per_second:8.0f} {r.peak_rss_mb:12.1f}"
        )
    print()
    print("Seconds are wall time of the whole process (start, imports, store, poll), one process per poll.")
    print(
        "reader's update_feeds() is sequential by default (workers=1); all feeds updated (scheduled=False)."
    )
    for r in results:
        for note in r.notes:
            print(f"  {r.name}: {note}")
    print()
    for r in results:
        for problem in r.problems:
            print(f"WARNING {r.name}: {problem}")
    print(
        f"whole processes: first poll {verdict.whole_first_ratio:.2f}×, "
        f"re-poll {verdict.whole_repoll_ratio:.2f}× "
        "(shown, not judged: interpreter start and imports are not polling)"
    )
    print("judged on the poll work alone, measured the same way for both tools:")
    mark = {True: "PASS", False: "FAIL"}
    print(
        f"(a) first poll, entries/s: newswatch / {verdict.best_first} = {verdict.first_poll_ratio:.2f}× "
        f"(target ≥ {TARGET_FIRST_POLL_RATIO:g}×)  {mark[verdict.passed['a']]}"
    )
    print(
        f"(b) re-poll, feeds/s:      newswatch / {verdict.best_repoll} = {verdict.repoll_ratio:.2f}× "
        f"(target ≥ {TARGET_REPOLL_RATIO:g}×)  {mark[verdict.passed['b']]}"
    )
    print(
        f"(c) newswatch peak RSS:    {results[0].peak_rss_mb:.1f} MB "
        f"(target ≤ {TARGET_PEAK_RSS_MB:g} MB)  {mark[verdict.passed['c']]}"
    )
    print_floors(floors, results[1:], verdict)


def print_floors(floors: Floors, readers: Sequence[ToolResult], verdict: Verdict) -> None:
    """What feedparser and httpx alone do on the same feeds, against the rates the targets ask for."""
    best_first = next(r for r in readers if r.name == verdict.best_first)
    best_repoll = next(r for r in readers if r.name == verdict.best_repoll)
    needed_rate = TARGET_FIRST_POLL_RATIO * best_first.work_entries_per_second
    needed_seconds = best_repoll.feeds / (TARGET_REPOLL_RATIO * best_repoll.work_feeds_per_second)
    parse_rate = floors.parse_entries_per_second
    print(
        "floors: the components Newswatch must use, alone on the same feeds (shown, not judged):\n"
        f"  feedparser alone: {parse_rate:,.0f} entries per CPU second on one core "
        f"({parse_rate / best_first.work_entries_per_second:.2f}× {best_first.name}); (a) asks for "
        f"{needed_rate:,.0f} entries/s with fetching, sanitising, duplicate detection, tagging and storing "
        "on top\n"
        f"  httpx alone: {floors.fetch_feeds} conditional GETs in {floors.fetch_seconds:.2f} s "
        f"(statuses {floors.fetch_statuses}); (b) asks for the whole re-poll in {needed_seconds:.2f} s"
    )


def progress(message: str) -> None:
    print(f"[ingest] {message}", file=sys.stderr, flush=True)


# -- main --------------------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, workdir: Path) -> int:
    feed_root = workdir / "www"
    progress(f"generating {args.feeds} feeds × {args.items} items in {feed_root}")
    load_before = os.getloadavg()[0]
    generated = generate_feeds(feed_root, args.feeds, args.items, seed=args.seed)
    addresses = [f"127.0.0.{n}" for n in range(1, args.hosts + 1)]
    with serve_folder(feed_root, addresses, prefer_nginx=use_nginx(args.server, progress)) as server:
        urls = feed_urls(generated.paths, addresses, server.port)
        opml = write_opml(workdir / "feeds.opml", urls)
        urls_file = workdir / "feeds.txt"
        urls_file.write_text("\n".join(urls) + "\n", encoding="utf-8")
        newswatch = run_newswatch(opml, server, workdir, args.feeds, args.timeout)
        feed_dir = feed_root / Path(generated.paths[0].lstrip("/")).parent
        floors = run_floors(feed_dir, newswatch_database(workdir), server, workdir, args.timeout)
        worker_counts = [1]
        if reader_supports_workers() and args.reader_workers > 1:
            worker_counts.append(args.reader_workers)
        readers = [run_reader(urls_file, server, workdir, args.feeds, n, args.timeout) for n in worker_counts]
    results = [newswatch, *readers]
    for result in results:
        check_polls(result, generated.items)
    verdict = judge(newswatch, readers)
    from importlib.metadata import version

    setup = {
        "feeds": args.feeds,
        "items": args.items,
        "hosts": args.hosts,
        "seed": args.seed,
        "feed_bytes": generated.bytes,
        "topical_items": generated.topical_items,
        "server": server.kind,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "reader": version("reader"),
        # Other work on the machine skews both tools, not always alike: say how busy it was.
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }
    if args.json:
        report = {
            "setup": setup,
            "results": [r.as_json() for r in results],
            "ratios": {"first_poll": verdict.first_poll_ratio, "repoll": verdict.repoll_ratio},
            "best_reader": {"first_poll": verdict.best_first, "repoll": verdict.best_repoll},
            "targets": {
                "first_poll_ratio": TARGET_FIRST_POLL_RATIO,
                "repoll_ratio": TARGET_REPOLL_RATIO,
                "peak_rss_mb": TARGET_PEAK_RSS_MB,
            },
            "passed": verdict.passed,
            "floors": {
                **asdict(floors),
                "parse_entries_per_second": round(floors.parse_entries_per_second, 1),
            },
        }
        print(json.dumps(report, indent=2))
    else:
        print_report(setup, results, verdict, floors)
    return 0 if all(verdict.passed.values()) else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--feeds", type=positive, default=DEFAULT_FEEDS, help="number of feeds (default: 500)"
    )
    parser.add_argument("--items", type=positive, default=DEFAULT_ITEMS, help="items per feed (default: 30)")
    parser.add_argument(
        "--hosts", type=host_count, default=DEFAULT_HOSTS, help="loopback addresses to spread the feeds over"
    )
    parser.add_argument(
        "--reader-workers",
        type=positive,
        default=DEFAULT_READER_WORKERS,
        help="reader's parallel configuration",
    )
    parser.add_argument(
        "--server",
        choices=("auto", "nginx", "python"),
        default="auto",
        help="feed server (default: nginx if found)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="feed generator seed")
    parser.add_argument(
        "--timeout", type=_seconds, default=CHILD_TIMEOUT, help="seconds allowed per child process"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and print its path")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    # The reader side runs in child processes of this same script.
    parser.add_argument("--run-reader", choices=("add", "poll"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_reader:
        if args.db is None or args.urls is None:
            print("error: --run-reader needs --db and --urls", file=sys.stderr)
            return 2
        reader_child(args.run_reader, args.db, args.urls, args.workers, args.result)
        return 0
    return run_in_workdir(
        "ingest",
        args.keep,
        lambda workdir: benchmark(args, workdir),
        kept="each process's full output",
        errors=(BenchmarkError, ServerError),
    )


if __name__ == "__main__":
    sys.exit(main())
