"""Duplicate-detection lookups at scale: the SQLite-backed DedupIndex against in-memory peers, in one run.

    python benchmarks/dedup.py [--articles 1000000] [--checks 10000] [--sample 10000] [--db PATH] [--keep]

1. Fill a SQLite store with `--articles` synthetic articles (seeded vocabulary: common words, capitalised
   names, numbers; published over three years) by bulk insert: the rows of `article`, `dedup_profile` and
   `fingerprint` are computed by the real `worker.analysis.dedup.analyse` in `--workers` processes and
   written with executemany (fingerprints through an unindexed staging table, then copied in key order).
   With `--db PATH` an existing filled store is reused.
2. Check `--checks` new items through `DedupIndex.check` (what `store_item` calls for every item): half are
   near-duplicates of random stored articles (the first paragraph as a feed summary, a "read more"
   truncation, a copy with look-alike letters and a few words changed), half are fresh articles from the
   same vocabulary. Prints p50/p99 latency per check (text analysis included, and shown apart) and how many
   near-duplicates were found and fresh items wrongly called duplicates.
3. The peers, on the same kind of items against a `--sample` of the stored articles held in memory: brute
   force (compare with every sample article) and datasketch's MinHashLSH (MinHash of the same shingles,
   LSH query, the same containment confirmation). Their latency, their RSS, and the memory per article
   they need — what holding the full store in memory would take.

Every phase runs in a process of its own, so each peak RSS (getrusage) is that phase's alone.
Targets: p99 <= 2 ms per check on SQLite; peak RSS of the checking process <= 300 MB.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner import nearest_rank
from sqlmodel import Session, SQLModel

from worker.analysis.dedup import (
    Document,
    analyse,
    compare_articles,
    content_hash,
    encode_shingles,
    matching_words,
    shingle_hashes,
    term_period,
    term_period_key,
)
from worker.store.db import make_engine
from worker.store.dedup_index import BAND_LEAD, BAND_WINNOW, DedupIndex

DEFAULT_ARTICLES = 1_000_000
DEFAULT_CHECKS = 10_000
DEFAULT_SAMPLE = 10_000
DEFAULT_SEED = 20250521
DEFAULT_WORKERS = 2
# Brute force takes a sample-sized scan per item: this many items are enough for its latency.
BRUTE_FORCE_CHECKS = 300
CHUNK = 2_000
VOCABULARY = 40_000
NAMES = 20_000
SENTENCES = (6, 10)
SENTENCE_WORDS = (8, 20)
NAME_SHARE = 0.07
NUMBER_SHARE = 0.03
SPAN_DAYS = 3 * 365
START = datetime(2023, 1, 1, tzinfo=UTC)
LSH_THRESHOLD = 0.5
LSH_PERMUTATIONS = 128
TARGET_P99_MS = 2.0
TARGET_RSS_MB = 300.0
LOOKALIKE_SOURCES = "aeopc"
LOOKALIKES = str.maketrans(LOOKALIKE_SOURCES, "аеорс")
SPOILED_SHARE = 0.3
SPOILED_LETTERS = 12


# --- synthetic articles --------------------------------------------------------------------------------


class Vocabulary:
    """Deterministic words and names, drawn by Zipf's law (frequency ~ 1/rank) as in real text: the
    commonest word is about 9% of the words, the commonest name about 10% of the names."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        letters = "abcdefghiklmnoprstuvyz"
        self.words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(VOCABULARY)]
        syllables = [c + v for c in "bdgklmnprstvz" for v in "aeiou"]
        self.names = ["".join(rng.choices(syllables, k=rng.randint(2, 4))).capitalize() for _ in range(NAMES)]
        self.word_weights = list(itertools.accumulate(1 / rank for rank in range(1, VOCABULARY + 1)))
        self.name_weights = list(itertools.accumulate(1 / rank for rank in range(1, NAMES + 1)))

    def word(self, rng: random.Random) -> str:
        return rng.choices(self.words, cum_weights=self.word_weights)[0]

    def name(self, rng: random.Random) -> str:
        return rng.choices(self.names, cum_weights=self.name_weights)[0]


def article_text(vocabulary: Vocabulary, rng: random.Random) -> str:
    paragraphs = []
    for _ in range(3):
        sentences = []
        for _ in range(rng.randint(*SENTENCES) // 3 + 1):
            words = []
            for position in range(rng.randint(*SENTENCE_WORDS)):
                roll = rng.random()
                if position and roll < NAME_SHARE:
                    words.append(vocabulary.name(rng))
                elif roll < NAME_SHARE + NUMBER_SHARE:
                    words.append(str(rng.randint(10, 99_999)))
                else:
                    words.append(vocabulary.word(rng))
            sentences.append(" ".join(words).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def article_rng(seed: int, article_id: int) -> random.Random:
    return random.Random(seed * 1_000_003 + article_id)


def stored_document(vocabulary: Vocabulary, seed: int, article_id: int) -> Document:
    """Stored article `article_id`, regenerated from the seed alone."""
    rng = article_rng(seed, article_id)
    text = article_text(vocabulary, rng)
    published = START + timedelta(seconds=rng.randrange(SPAN_DAYS * 86_400))
    return Document(title="", text=text, canonical_url=None, outlet="wire", published=published)


def near_duplicate(doc: Document, rng: random.Random) -> Document:
    """A feed summary (first paragraph), a "read more" truncation, or an edited copy — a third of the
    edited copies also spoiled with look-alike Cyrillic letters, a dozen of them as in real spoiled text."""
    kind = rng.randrange(3)
    if kind == 0:
        text = doc.text.split("\n\n")[0]
    elif kind == 1:
        text = doc.text[: len(doc.text) * 2 // 3].rsplit(" ", 1)[0] + " […] Read more"
    else:
        words = doc.text.split(" ")
        for _ in range(max(1, len(words) // 40)):
            words[rng.randrange(len(words))] = "changed"
        text = " ".join(words)
        if rng.random() < SPOILED_SHARE:
            letters = list(text)
            spots = [i for i, ch in enumerate(letters) if ch in LOOKALIKE_SOURCES]
            for i in rng.sample(spots, min(SPOILED_LETTERS, len(spots))):
                letters[i] = letters[i].translate(LOOKALIKES)
            text = "".join(letters)
    published = doc.published + timedelta(hours=rng.randint(1, 48))
    return Document(title="", text=text, canonical_url=None, outlet="mirror", published=published)


@dataclass(frozen=True)
class CheckItem:
    doc: Document
    original: int | None  # the stored article it is a near-duplicate of


def check_items(
    vocabulary: Vocabulary, seed: int, count: int, population: list[int], fresh_from: int
) -> list[CheckItem]:
    rng = random.Random(seed + 1)
    items = []
    for i in range(count):
        if i % 2 == 0:
            original = rng.choice(population)
            items.append(
                CheckItem(near_duplicate(stored_document(vocabulary, seed, original), rng), original)
            )
        else:
            items.append(CheckItem(stored_document(vocabulary, seed, fresh_from + i), None))
    return items


# --- fill ----------------------------------------------------------------------------------------------


Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[int, int, int]], list[tuple[Any, ...]]]


def _rows(args: tuple[int, int, int]) -> Rows:
    """The rows of articles `first` to `last - 1`: article, dedup_profile, fingerprint, dedup_story_term."""
    seed, first, last = args
    vocabulary = worker_vocabulary(seed)
    articles: list[tuple[Any, ...]] = []
    profiles: list[tuple[Any, ...]] = []
    keys: list[tuple[int, int, int]] = []
    story_terms: list[tuple[Any, ...]] = []
    fetched = START.strftime("%Y-%m-%d %H:%M:%S.%f")
    for article_id in range(first, last):
        doc = stored_document(vocabulary, seed, article_id)
        analysis = analyse(doc)
        published = doc.published.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        articles.append(
            (
                article_id,
                "feed",
                f"g{article_id}",
                content_hash("", doc.text),
                "",
                doc.outlet,
                doc.text,
                published,
                fetched,
                1,
                f"s{article_id}",
                "new",
            )
        )
        profiles.append(
            (article_id, encode_shingles(analysis.profile.shingles), " ".join(sorted(analysis.profile.terms)))
        )
        keys.extend((BAND_WINNOW, value, article_id) for value in analysis.winnow_keys)
        if analysis.lead_key is not None:
            keys.append((BAND_LEAD, analysis.lead_key, article_id))
        period = term_period(analysis.profile.day)
        story_terms.extend(
            (term_period_key(term, period), f"s{article_id}", article_id, int(analysis.profile.day))
            for term in analysis.term_words
        )
    return articles, profiles, keys, story_terms


_VOCABULARY: Vocabulary | None = None


def worker_vocabulary(seed: int) -> Vocabulary:
    """The vocabulary of `seed`, built once per (worker) process."""
    global _VOCABULARY
    if _VOCABULARY is None:
        _VOCABULARY = Vocabulary(seed)
    return _VOCABULARY


def fill(db: Path, articles: int, seed: int, workers: int) -> dict[str, Any]:
    """Create the schema and bulk-insert `articles` synthetic articles with their index rows."""
    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{db}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("PRAGMA cache_size = -200000")
    # Secondary indexes are built once at the end, from sorted data, instead of row by row.
    indexes = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('article', 'fingerprint', 'dedup_story_term')"
    ).fetchall()
    for name, _sql in indexes:
        connection.execute(f"DROP INDEX {name}")
    connection.execute("CREATE TEMP TABLE fp_stage (band INTEGER, value INTEGER, article_id INTEGER)")
    connection.execute(
        "CREATE TEMP TABLE st_stage (term_key INTEGER, story_id TEXT, article_id INTEGER, day INTEGER)"
    )
    connection.execute("BEGIN")
    done = keys_total = 0
    chunks = [(seed, first, min(first + CHUNK, articles + 1)) for first in range(1, articles + 1, CHUNK)]
    with multiprocessing.Pool(workers) as pool:
        for article_rows, profile_rows, key_rows, story_term_rows in pool.imap(_rows, chunks):
            connection.executemany(
                "INSERT INTO article (id, source, guid, content_hash, title, outlet, text, published, "
                "fetched_at, alertable, story_id, story_method) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                article_rows,
            )
            connection.executemany(
                "INSERT INTO dedup_profile (article_id, shingles, terms) VALUES (?, ?, ?)", profile_rows
            )
            connection.executemany("INSERT INTO fp_stage VALUES (?, ?, ?)", key_rows)
            connection.executemany("INSERT INTO st_stage VALUES (?, ?, ?, ?)", story_term_rows)
            done += len(article_rows)
            keys_total += len(key_rows)
            if done % 100_000 < CHUNK:
                print(f"  filled {done:,} articles ({time.perf_counter() - started:.0f}s)", flush=True)
    generated = time.perf_counter() - started
    connection.execute(
        "INSERT INTO fingerprint SELECT band, value, article_id FROM fp_stage "
        "ORDER BY band, value, article_id"
    )
    connection.execute("DROP TABLE fp_stage")
    # Each synthetic article is a story of its own: no two rows share (term_key, story_id).
    connection.execute("INSERT INTO dedup_story_term SELECT * FROM st_stage ORDER BY term_key, story_id")
    connection.execute("DROP TABLE st_stage")
    for _name, sql in indexes:
        connection.execute(sql)
    connection.execute("COMMIT")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.close()
    return {
        "articles": done,
        "fingerprint_rows": keys_total,
        "seconds": round(time.perf_counter() - started, 1),
        "generate_and_insert_seconds": round(generated, 1),
        "db_mb": round(db.stat().st_size / 2**20),
        "rss_mb": peak_rss_mb(),
    }


# --- measurements --------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def latency_summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(nearest_rank(ms, 0.5), 3),
        "p99_ms": round(nearest_rank(ms, 0.99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def sqlite_checks(db: Path, articles: int, checks: int, seed: int) -> dict[str, Any]:
    vocabulary = Vocabulary(seed)
    items = check_items(vocabulary, seed, checks, list(range(1, articles + 1)), fresh_from=articles + 1)
    engine = make_engine(f"sqlite:///{db}")
    index = DedupIndex()
    timings, analysis_times, lookup_times = [], [], []
    found = wrong = joined = 0
    with Session(engine) as session:
        for item in items[: min(200, len(items))]:  # the statement cache and the B-tree roots
            index.check(session, item.doc)
        for item in items:
            started = time.perf_counter()
            decision = index.check(session, item.doc)
            timings.append(time.perf_counter() - started)
            # The same check in two halves: analysing the text, then the lookup (analysis kept by the index).
            fresh = DedupIndex()
            started = time.perf_counter()
            fresh.analyse(item.doc)
            analysis_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            fresh.check(session, item.doc)
            lookup_times.append(time.perf_counter() - started)
            if item.original is not None:
                found += decision.duplicate_of == item.original
            else:
                wrong += decision.duplicate_of is not None
                joined += decision.story_of is not None
    engine.dispose()
    near = sum(1 for i in items if i.original is not None)
    return {
        "checks": len(items),
        **latency_summary(timings),
        "analysis_p50_ms": latency_summary(analysis_times)["p50_ms"],
        "analysis_p99_ms": latency_summary(analysis_times)["p99_ms"],
        "lookup_p50_ms": latency_summary(lookup_times)["p50_ms"],
        "lookup_p99_ms": latency_summary(lookup_times)["p99_ms"],
        "near_duplicates_found": f"{found}/{near}",
        "fresh_called_duplicates": f"{wrong}/{len(items) - near}",
        "fresh_joined_to_a_story": f"{joined}/{len(items) - near}",
        "rss_mb": peak_rss_mb(),
    }


def _sample(articles: int, size: int, seed: int) -> list[int]:
    return sorted(random.Random(seed + 2).sample(range(1, articles + 1), min(size, articles)))


def brute_force(articles: int, sample_size: int, checks: int, seed: int) -> dict[str, Any]:
    vocabulary = Vocabulary(seed)
    sample = _sample(articles, sample_size, seed)
    base_rss = peak_rss_mb()
    profiles = {i: analyse(stored_document(vocabulary, seed, i)).profile for i in sample}
    held = peak_rss_mb() - base_rss
    items = check_items(vocabulary, seed, checks, sample, fresh_from=articles + 1)
    timings, found = [], 0
    for item in items:
        started = time.perf_counter()
        profile = analyse(item.doc).profile
        best = max(
            ((i, m) for i, p in profiles.items() if (m := compare_articles(profile, p)).is_duplicate),
            key=lambda im: im[1].containment,
            default=None,
        )
        timings.append(time.perf_counter() - started)
        found += item.original is not None and best is not None and best[0] == item.original
    return {"sample": len(sample), "checks": len(items), **latency_summary(timings), "found": found,
            "rss_mb": peak_rss_mb(), "kb_per_article": round(held * 1024 / len(sample), 2)}  # fmt: skip


def datasketch_lsh(articles: int, sample_size: int, checks: int, seed: int) -> dict[str, Any]:
    from datasketch import MinHash, MinHashLSH

    vocabulary = Vocabulary(seed)
    sample = _sample(articles, sample_size, seed)

    def minhash(doc: Document) -> MinHash:
        shingles = [str(h).encode() for h in shingle_hashes(matching_words(doc.text))]
        m = MinHash(num_perm=LSH_PERMUTATIONS)
        m.update_batch(shingles)
        return m

    base_rss = peak_rss_mb()
    started = time.perf_counter()
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=LSH_PERMUTATIONS)
    profiles = {}
    for i in sample:
        doc = stored_document(vocabulary, seed, i)
        lsh.insert(i, minhash(doc))
        profiles[i] = analyse(doc).profile
    build = time.perf_counter() - started
    held = peak_rss_mb() - base_rss
    items = check_items(vocabulary, seed, checks, sample, fresh_from=articles + 1)
    timings, found = [], 0
    for item in items:
        started = time.perf_counter()
        profile = analyse(item.doc).profile
        candidates = lsh.query(minhash(item.doc))
        best = max(
            ((i, m) for i in candidates if (m := compare_articles(profile, profiles[i])).is_duplicate),
            key=lambda im: im[1].containment,
            default=None,
        )
        timings.append(time.perf_counter() - started)
        found += item.original is not None and best is not None and best[0] == item.original
    near = sum(1 for i in items if i.original is not None)
    return {
        "sample": len(sample),
        "checks": len(items),
        **latency_summary(timings),
        "found": f"{found}/{near}",
        "build_s": round(build, 1),
        "rss_mb": peak_rss_mb(),
        "kb_per_article": round(held * 1024 / len(sample), 2),
    }


def _run_and_send(connection: Any, function: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> None:
    connection.send(function(*args))
    connection.close()


def in_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `function(*args)` in a fresh process, so that its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_run_and_send, args=(sender, function, args))
    process.start()
    sender.close()
    try:
        result: dict[str, Any] = receiver.recv()
    except EOFError as exc:
        raise SystemExit(f"{function.__name__} failed (exit code {process.exitcode})") from exc
    finally:
        process.join()
    return result


# --- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=DEFAULT_ARTICLES)
    parser.add_argument("--checks", type=int, default=DEFAULT_CHECKS)
    parser.add_argument(
        "--sample", type=int, default=DEFAULT_SAMPLE, help="articles held by the in-memory peers"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--db", type=Path, help="reuse (or create) this store instead of a temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = parser.parse_args(argv)

    folder = None if args.db else tempfile.mkdtemp(prefix="newswatch-dedup-bench-")
    db = args.db or Path(folder or ".") / "bench.db"
    try:
        if db.exists():
            print(f"reusing {db} ({db.stat().st_size / 2**20:.0f} MB)")
        else:
            print(f"filling {db} with {args.articles:,} articles ({args.workers} workers)…", flush=True)
            print("  fill:", in_process(fill, db, args.articles, args.seed, args.workers), flush=True)
        sqlite = in_process(sqlite_checks, db, args.articles, args.checks, args.seed)
        print("DedupIndex.check on SQLite:", sqlite, flush=True)
        brute = in_process(
            brute_force, args.articles, args.sample, min(args.checks, BRUTE_FORCE_CHECKS), args.seed
        )
        print("brute force in memory:     ", brute, flush=True)
        lsh = in_process(datasketch_lsh, args.articles, args.sample, args.checks, args.seed)
        print("datasketch MinHashLSH:     ", lsh, flush=True)
    finally:
        if folder is not None and not args.keep:
            for path in Path(folder).iterdir():
                path.unlink()
            os.rmdir(folder)
    print()
    print(
        f"SQLite, {args.articles:,} articles: check p50 {sqlite['p50_ms']} ms, p99 {sqlite['p99_ms']} ms "
        f"(target <= {TARGET_P99_MS}); lookup alone p99 {sqlite['lookup_p99_ms']} ms; "
        f"peak RSS {sqlite['rss_mb']} MB (target <= {TARGET_RSS_MB})"
    )
    print(
        f"brute force over {brute['sample']:,} articles: p99 {brute['p99_ms']} ms "
        f"({brute['p99_ms'] / sqlite['p99_ms']:.0f}x the SQLite check), "
        f"{brute['kb_per_article']} KB per article"
    )
    lsh_gb = lsh["kb_per_article"] * args.articles / 2**20
    print(
        f"MinHashLSH over {lsh['sample']:,} articles: p99 {lsh['p99_ms']} ms "
        f"({lsh['p99_ms'] / sqlite['p99_ms']:.1f}x), {lsh['kb_per_article']} KB per article in memory, "
        f"{lsh_gb:.1f} GB for {args.articles:,}; found {lsh['found']} near-duplicates"
    )
    met = sqlite["p99_ms"] <= TARGET_P99_MS and sqlite["rss_mb"] <= TARGET_RSS_MB
    print("targets met" if met else "TARGETS NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
