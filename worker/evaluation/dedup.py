"""Duplicate and same-story detection measured on a labelled file (the format of shared/eval/dupes.jsonl).

The rows go, in file order, through the real path an article takes — `store_item` on a fresh SQLite store
with the real `DedupIndex` — and the decisions it stores are scored pairwise, with the labelled data's own
rules (shared/eval/README.md):
- same article: pairs joined through `copy_of`, transitively, are positives. Pairs of one event whose
  texts overlap heavily without a `copy_of` (5-word-shingle containment in 0.5-0.8) are not scored.
  Every other pair is a negative.
- same story: pairs with the same `event_id` are positives, every other pair a negative.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, SQLModel, select

from worker.analysis.dedup import matching_words, shingle_hashes
from worker.errors import NewswatchError
from worker.store.articles import NewArticle, store_item
from worker.store.db import make_engine
from worker.store.dedup_index import DedupIndex
from worker.store.models import SOURCE_FEED, Article, Feed

REQUIRED_FIELDS = ("id", "event_id", "text")
# Rows without a usable date are all published at this instant: time then says nothing either way.
UNDATED = datetime(2000, 1, 1, tzinfo=UTC)
# Same-event pairs with a containment in this band and no copy_of link are left out of the score.
UNSCORED_CONTAINMENT = (0.5, 0.8)
FEED_URL_PREFIX = "eval://outlet/"


@dataclass(frozen=True)
class Row:
    id: str
    event_id: str
    url: str | None
    outlet: str | None
    date: str | None
    lang: str | None
    title: str
    text: str
    copy_of: str | None


def read_rows(path: Path) -> list[Row]:
    """The labelled rows of `path`; NewswatchError with the line number for anything malformed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise NewswatchError(f"cannot read {path}: {exc}") from exc
    rows: list[Row] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        rows.append(_row(path, number, line))
        if rows[-1].id in seen:
            raise NewswatchError(f"{path}:{number}: id {rows[-1].id!r} appears twice")
        seen.add(rows[-1].id)
    for row in rows:
        if row.copy_of is not None and row.copy_of not in seen:
            raise NewswatchError(f"{path}: row {row.id!r} is a copy of {row.copy_of!r}, not in the file")
    if not rows:
        raise NewswatchError(f"{path}: no rows")
    return rows


def _row(path: Path, number: int, line: str) -> Row:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise NewswatchError(f"{path}:{number}: not a JSON object ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise NewswatchError(f"{path}:{number}: not a JSON object")
    missing = [name for name in REQUIRED_FIELDS if not isinstance(data.get(name), str)]
    if missing:
        raise NewswatchError(f"{path}:{number}: missing or non-text field(s): {', '.join(missing)}")

    def optional(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) and value else None

    return Row(
        id=data["id"],
        event_id=data["event_id"],
        url=optional("url"),
        outlet=optional("outlet"),
        date=optional("date"),
        lang=optional("lang"),
        title=optional("title") or "",
        text=data["text"],
        copy_of=optional("copy_of"),
    )


def published_of(date: str | None) -> datetime:
    """UTC midnight of the row's date; a month or year alone means its first day; none means `UNDATED`."""
    if date is None:
        return UNDATED
    for layout in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(date.strip(), layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    return UNDATED


def evaluate_dedup(path: Path) -> dict[str, Any]:
    """Run every row of `path` through `store_item` on a temporary store and score the decisions."""
    rows = read_rows(path)
    items = decide(rows)
    return {
        "same_article": _score(_article_pairs(items), _gold_article_pairs(rows), _unscored_pairs(rows)),
        "same_story": _score(_story_pairs(items), _gold_story_pairs(rows), set()),
        "items": items,
    }


def decide(rows: list[Row]) -> list[dict[str, Any]]:
    """The stored decision for each row: {"id", "duplicate_of" (a row id or None), "story_id"}."""
    with tempfile.TemporaryDirectory(prefix="newswatch-eval-") as folder:
        engine = make_engine(f"sqlite:///{folder}/eval.db")
        try:
            SQLModel.metadata.create_all(engine)
            article_ids = _ingest(engine, rows)
            with Session(engine) as session:
                articles = {a.id: a for a in session.exec(select(Article)).all()}
        finally:
            engine.dispose()
    row_of = {article_id: row_id for row_id, article_id in article_ids.items()}
    items = []
    for row in rows:
        article = articles[article_ids[row.id]]
        items.append(
            {
                "id": row.id,
                "duplicate_of": row_of.get(article.duplicate_of) if article.duplicate_of else None,
                "story_id": article.story_id,
            }
        )
    return items


def _ingest(engine: Any, rows: list[Row]) -> dict[str, int]:
    """Store the rows in file order, one commit each; row id -> article id."""
    index = DedupIndex()
    feeds: dict[str, int] = {}
    article_ids: dict[str, int] = {}
    for row in rows:
        with Session(engine, expire_on_commit=False) as session:
            outlet = row.outlet or "unknown"
            if outlet not in feeds:
                feed = Feed(url=f"{FEED_URL_PREFIX}{len(feeds)}", title=outlet)
                session.add(feed)
                session.flush()
                assert feed.id is not None
                feeds[outlet] = feed.id
            item = NewArticle(
                source=SOURCE_FEED,
                feed_id=feeds[outlet],
                guid=row.id,
                url=row.url,
                title=row.title,
                text=row.text,
                published=published_of(row.date),
                outlet=row.outlet,
                lang=row.lang,
            )
            stored = store_item(session, item, index, tagger=None)
            session.commit()
            if stored.article.id is None:
                raise NewswatchError(f"row {row.id!r} was not stored ({stored.outcome})")
            article_ids[row.id] = stored.article.id
    return article_ids


# --- scoring -------------------------------------------------------------------------------------------

Pair = tuple[str, str]


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def _pairs_of_groups(groups: dict[str, list[str]]) -> set[Pair]:
    return {_pair(a, b) for members in groups.values() for a, b in itertools.combinations(members, 2)}


def _group(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for member, key in keys:
        groups.setdefault(key, []).append(member)
    return groups


def _article_pairs(items: list[dict[str, Any]]) -> set[Pair]:
    return _pairs_of_groups(_group((i["id"], i["duplicate_of"] or i["id"]) for i in items))


def _story_pairs(items: list[dict[str, Any]]) -> set[Pair]:
    return _pairs_of_groups(_group((i["id"], i["story_id"]) for i in items))


def _copy_root(rows: list[Row]) -> dict[str, str]:
    parent = {row.id: row.copy_of or row.id for row in rows}

    def root(row_id: str) -> str:
        seen = set()
        while parent[row_id] != row_id and row_id not in seen:
            seen.add(row_id)
            row_id = parent[row_id]
        return row_id

    return {row.id: root(row.id) for row in rows}


def _gold_article_pairs(rows: list[Row]) -> set[Pair]:
    roots = _copy_root(rows)
    return _pairs_of_groups(_group((row.id, roots[row.id]) for row in rows))


def _gold_story_pairs(rows: list[Row]) -> set[Pair]:
    return _pairs_of_groups(_group((row.id, row.event_id) for row in rows))


def _unscored_pairs(rows: list[Row]) -> set[Pair]:
    """Same-event pairs without a copy_of link whose texts overlap heavily: the labels do not judge them."""
    roots = _copy_root(rows)
    shingles = {row.id: set(shingle_hashes(matching_words(row.text))) for row in rows}
    low, high = UNSCORED_CONTAINMENT
    unscored = set()
    for members in _group((row.id, row.event_id) for row in rows).values():
        for a, b in itertools.combinations(members, 2):
            if roots[a] == roots[b] or not shingles[a] or not shingles[b]:
                continue
            overlap = len(shingles[a] & shingles[b]) / min(len(shingles[a]), len(shingles[b]))
            if low <= overlap <= high:
                unscored.add(_pair(a, b))
    return unscored


def _score(predicted: set[Pair], gold: set[Pair], unscored: set[Pair]) -> dict[str, Any]:
    predicted, gold = predicted - unscored, gold - unscored
    true_positives = len(predicted & gold)
    false_positives = sorted(predicted - gold)
    false_negatives = sorted(gold - predicted)
    precision = true_positives / len(predicted) if predicted else 1.0
    recall = true_positives / len(gold) if gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "pairs": len(gold),
        "true_positives": true_positives,
        "false_positives": [list(p) for p in false_positives],
        "false_negatives": [list(p) for p in false_negatives],
        "unscored": len(unscored),
    }


def iter_false_positive_ids(section: dict[str, Any]) -> Iterator[str]:
    """The row ids involved in a section's false positives, each once, in order."""
    seen: set[str] = set()
    for pair in section["false_positives"]:
        for row_id in pair:
            if row_id not in seen:
                seen.add(row_id)
                yield row_id
