"""The read side of search, the same on both stores: filters, full-text queries, ranking, snippets, pages.

First the page: the ids of the matching articles in order, `limit + 1` of them (the extra one says whether
there is a next page) — FTS5 on SQLite (title matches first, see TITLE_RANK), the tsvector with ts_rank_cd
on PostgreSQL, or, without a query, the newest first along the `published` index. Then those few articles,
their feeds and tags; snippets are cut from their text in Python (`worker.store.snippet`).

A query is ranked among its newest RANK_WINDOW matches (after the filters). Pages are keyset pages: the
cursor holds the sort key and id of the last hit, so a page costs the same at any depth and a hit is never
shown twice when articles arrive between pages. Ranked order is by score (lower is better: the rank
negated), then newest first; listing order is newest first, then id.

Errors a user can make — a bad query, an unknown feed, a bad source, limit or cursor — are ValueErrors with
a one-line message (the CLI prints it, the API answers 422).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, or_, select
from sqlmodel.sql.sqltypes import UTCDateTime

from worker.redact import redact_url
from worker.store.fts import FTS_TABLE, PG_RANK_WEIGHTS, PG_VECTOR_COLUMN, SQLITE_WINDOW_INDEX
from worker.store.models import SOURCE_FEED, SOURCE_SEED, Article, ArticleTag, Feed
from worker.store.search_syntax import (
    Node,
    Term,
    highlight_terms,
    in_field,
    matches,
    parse,
    to_fts5,
    to_tsquery,
    tokens,
)
from worker.store.search_syntax import with_filter as _with_filter
from worker.store.snippet import SnippetPart, make_snippet, plain
from worker.timeutil import to_utc

DEFAULT_LIMIT = 20
MAX_LIMIT = 200
# A query's matches are ranked among its newest RANK_WINDOW matches (filters applied): ranking every match
# of a common word would take seconds at a million articles, and in news the newest matter most.
RANK_WINDOW = 500
# On SQLite the window is ranked by where it matched: articles whose title alone matches the query first,
# then the others; newest first within each. FTS5's bm25 would weigh each query word by the number of
# articles that hold it, and counts them by reading every match of the word in the whole index: 10-25 ms
# a query for a common word or a phrase at a million articles, against ~1 ms for this (benchmarks/query.py).
TITLE_RANK = 2.0
TEXT_RANK = 1.0
# Up to this many matches, their titles are matched in Python rather than by FTS5 (see _titled).
TITLE_CHECK_ROWS = 100
# On SQLite, a tag with at most this many articles is read first (its articles then sorted by date).
DRIVER_ROWS = 5000
SOURCES = (SOURCE_FEED, SOURCE_SEED)

_RANKED = "r"
_NEWEST = "n"


@dataclass(frozen=True)
class SearchFilters:
    query: str | None = None  # the query syntax of worker.store.search_syntax
    tags: tuple[str, ...] = ()  # all must be present
    feed: str | None = None  # feed id or URL
    outlet: str | None = None  # the words of the outlet's name (case and accents ignored)
    since: datetime | None = None  # published at or after
    until: datetime | None = None  # published before
    source: str | None = None  # "feed" or "seed"
    include_duplicates: bool = False
    story_id: str | None = None
    duplicates_of: int | None = None  # the articles whose duplicate_of is this id


@dataclass(frozen=True)
class TagHit:
    name: str
    score: float
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "evidence": self.evidence}


@dataclass(frozen=True)
class SearchHit:
    id: int
    url: str | None
    title: str
    feed: str | None  # the feed's URL, redacted; None for seeds
    feed_id: int | None
    outlet: str | None
    author: str | None
    published: datetime
    updated: datetime | None
    source: str
    tags: tuple[TagHit, ...]
    duplicate_of: int | None
    story_id: str | None
    snippet: tuple[SnippetPart, ...]
    rank: float | None  # higher is better; None when there was no query

    @property
    def snippet_text(self) -> str:
        return plain(self.snippet)

    def as_json(self) -> dict[str, Any]:
        """The hit as `newswatch search --format json` and the HTTP API give it."""
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "feed": self.feed,
            "outlet": self.outlet,
            "author": self.author,
            "published": self.published.isoformat(),
            "updated": self.updated.isoformat() if self.updated else None,
            "source": self.source,
            "tags": [tag.as_json() for tag in self.tags],
            "duplicate_of": self.duplicate_of,
            "story_id": self.story_id,
            "snippet": self.snippet_text,
            "snippet_parts": [{"text": p.text, "highlight": p.highlight} for p in self.snippet],
            "rank": self.rank,
        }


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    next_cursor: str | None  # pass back as `cursor` for the next page; None on the last page
    # The number of hits when this first page holds them all; None otherwise (counting every match would
    # cost as much as the search itself).
    total: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "hits": [hit.as_json() for hit in self.hits],
            "next_cursor": self.next_cursor,
            "total": self.total,
        }


# --- times -----------------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_since(value: str, now: datetime) -> datetime:
    """A point in time: "7d", "24h", "30m", "2w" before `now`; a date (its midnight UTC); an ISO datetime
    (UTC when it names no zone). Raises ValueError with a one-line message."""
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return to_utc(now) - timedelta(seconds=int(relative.group(1)) * _UNITS[relative.group(2).lower()])
    try:
        if _DATE.match(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    raise ValueError(f"expected a time such as 7d, 24h, 2025-05-21 or 2025-05-21T08:00:00Z, got {value!r}")


def parse_until(value: str, now: datetime) -> datetime:
    """Like `parse_since`, except that a bare date means the end of that day (until is exclusive)."""
    moment = parse_since(value, now)
    return moment + timedelta(days=1) if _DATE.match(value.strip()) else moment


# --- cursors ---------------------------------------------------------------------------------------------


def _encode_cursor(kind: str, key: float | str, article_id: int) -> str:
    raw = json.dumps([kind, key, article_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str, kind: str) -> tuple[Any, int]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        got_kind, key, article_id = decoded
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValueError("invalid cursor: pass back the next_cursor of a previous page") from None
    if got_kind != kind or not isinstance(article_id, int):
        raise ValueError("invalid cursor: it belongs to a search with or without a query, not this one")
    if kind == _RANKED and isinstance(key, int | float):
        return float(key), article_id
    if kind == _NEWEST and isinstance(key, str):
        try:
            return to_utc(datetime.fromisoformat(key)), article_id
        except ValueError:
            pass
    raise ValueError("invalid cursor: pass back the next_cursor of a previous page")


# --- the search ------------------------------------------------------------------------------------------


def search(
    session: Session, filters: SearchFilters, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> SearchPage:
    """One page of the articles that match `filters`, best first (newest first without a query)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    query = filters.query.strip() if filters.query else ""
    node: Node | None = parse(query) if query else None
    shown = highlight_terms(node) if node is not None else []
    if filters.outlet is not None:
        words = tokens(filters.outlet)
        if not words:
            raise ValueError(f"outlet {filters.outlet!r} has no words to match")
        node = _with_filter(node, Term(tuple(words), field="outlet"))
    sqlite = session.get_bind().dialect.name == "sqlite"
    if query:
        assert node is not None
        rows = _ranked(session, node, filters, limit, cursor, sqlite)
        kind = _RANKED
    else:
        rows = _newest(session, node, filters, limit, cursor, sqlite)
        kind = _NEWEST
    more = len(rows) > limit
    rows = rows[:limit]
    hits = _load(session, rows, kind, shown)
    next_cursor = None
    if more:
        last_id, last_key = rows[-1]
        key = last_key if kind == _RANKED else to_utc(last_key).isoformat()
        next_cursor = _encode_cursor(kind, key, last_id)
    total = len(hits) if cursor is None and not more else None
    return SearchPage(hits, next_cursor, total)


def _conditions(
    session: Session, filters: SearchFilters, ident: Any, tags: Sequence[str]
) -> list[ColumnElement[bool]]:
    """The filters as SQL conditions; `ident` is the article id to probe `tags` with (the full-text row's
    own on SQLite, so that a tag is checked before the article row is read)."""
    conditions: list[ColumnElement[bool]] = [
        sa.exists().where(col(ArticleTag.article_id) == ident, col(ArticleTag.tag) == tag) for tag in tags
    ]
    if filters.feed is not None:
        conditions.append(col(Article.feed_id) == _feed_id(session, filters.feed))
    if filters.since is not None:
        conditions.append(col(Article.published) >= to_utc(filters.since))
    if filters.until is not None:
        conditions.append(col(Article.published) < to_utc(filters.until))
    if filters.source is not None:
        if filters.source not in SOURCES:
            raise ValueError(f"source must be feed or seed, got {filters.source!r}")
        conditions.append(col(Article.source) == filters.source)
    if filters.duplicates_of is not None:
        conditions.append(col(Article.duplicate_of) == filters.duplicates_of)
    elif not filters.include_duplicates:
        # "+ 0": nearly every row has no duplicate_of, yet SQLite would read them through its index (and
        # then sort them) instead of walking the order wanted.
        conditions.append((col(Article.duplicate_of) + 0).is_(None))
    if filters.story_id is not None:
        conditions.append(col(Article.story_id) == filters.story_id)
    return conditions


# The SQLite form of a stored time: what SQLAlchemy's bind processing of `Article.published` gives.
_SQLITE = sqlite_dialect.dialect()
_sqlite_time = UTCDateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)


def _sqlite_time_param(moment: datetime) -> Any:
    assert _sqlite_time is not None  # SQLite keeps times as text: there is always a processor
    return _sqlite_time(moment)


def _sqlite_conditions(session: Session, filters: SearchFilters) -> tuple[list[str], list[Any]]:
    """`_conditions` as SQLite SQL text and its parameters, for the ranked search's driver-level query
    (over `article` and the full-text row): keep the two in step (tests/test_search.py compares them)."""
    conditions: list[str] = []
    params: list[Any] = []
    for tag in filters.tags:
        conditions.append(
            f"EXISTS (SELECT 1 FROM article_tag WHERE article_tag.article_id = {FTS_TABLE}.rowid "
            "AND article_tag.tag = ?)"
        )
        params.append(tag)
    if filters.feed is not None:
        conditions.append("article.feed_id = ?")
        params.append(_feed_id(session, filters.feed))
    if filters.since is not None:
        conditions.append("article.published >= ?")
        params.append(_sqlite_time_param(filters.since))
    if filters.until is not None:
        conditions.append("article.published < ?")
        params.append(_sqlite_time_param(filters.until))
    if filters.source is not None:
        if filters.source not in SOURCES:
            raise ValueError(f"source must be feed or seed, got {filters.source!r}")
        conditions.append("article.source = ?")
        params.append(filters.source)
    if filters.duplicates_of is not None:
        conditions.append("article.duplicate_of = ?")
        params.append(filters.duplicates_of)
    elif not filters.include_duplicates:
        conditions.append("article.duplicate_of + 0 IS NULL")  # "+ 0": see _conditions
    if filters.story_id is not None:
        conditions.append("article.story_id = ?")
        params.append(filters.story_id)
    return conditions, params


def _feed_id(session: Session, ref: str) -> int:
    ref = ref.strip()
    if ref.isdigit():
        found = session.exec(select(Feed.id).where(Feed.id == int(ref))).first()
    else:
        found = session.exec(
            select(Feed.id).where(or_(col(Feed.url) == ref, col(Feed.config_url) == ref))
        ).first()
    if found is None:
        raise ValueError(f"no feed {redact_url(ref)} (see `newswatch feeds list`)")
    return found


def _fts() -> sa.TableClause:
    return sa.table(FTS_TABLE, sa.column("rowid", sa.Integer))


def _fts_match(node: Node) -> sa.TextClause:
    return sa.text(f"{FTS_TABLE} MATCH :fts_query").bindparams(fts_query=to_fts5(node))


def _pg_vector() -> ColumnElement[Any]:
    return sa.literal_column(f"article.{PG_VECTOR_COLUMN}", TSVECTOR)


def _pg_match(node: Node) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
    tsquery = sa.cast(sa.literal(to_tsquery(node)), TSQUERY)
    return tsquery, _pg_vector().op("@@")(tsquery)


def _ranked(
    session: Session, node: Node, filters: SearchFilters, limit: int, cursor: str | None, sqlite: bool
) -> list[tuple[int, Any]]:
    """Ranked ids and scores (lower is better), then newest first: the newest RANK_WINDOW matches (filters
    applied) are ranked, the page is cut from them."""
    after = _decode_cursor(cursor, _RANKED) if cursor is not None else None
    if sqlite:
        # Driver-level SQL: building, compiling and reading these through SQLAlchemy costs more than what
        # SQLite itself spends on them. FTS5 drives (an id list cannot: FTS5 re-runs the whole match for
        # each rowid it is given) and hands its rows over newest first.
        conditions, params = _sqlite_conditions(session, filters)
        window = (
            f"SELECT article.id FROM {FTS_TABLE} JOIN article{_window_index(filters)} "
            f"ON article.id = {FTS_TABLE}.rowid "
            f"WHERE {FTS_TABLE} MATCH ?{''.join(' AND ' + c for c in conditions)} "
            f"ORDER BY {FTS_TABLE}.rowid DESC LIMIT {RANK_WINDOW}"
        )
        driver_connection: Any = session.connection().connection.driver_connection
        with closing(driver_connection.cursor()) as driver:
            ids: list[int] = [row[0] for row in driver.execute(window, (to_fts5(node), *params)).fetchall()]
            if not ids:
                return []
            titled = _titled(driver, in_field(node, "title"), ids)
        scored = [(-TITLE_RANK if article_id in titled else -TEXT_RANK, article_id) for article_id in ids]
        scored.sort(key=lambda row: row[0])  # stable: newest first within a score, as the window came
        if after is not None:
            key, last = after
            scored = [(score, i) for score, i in scored if score > key or (score == key and i < last)]
        return [(article_id, score) for score, article_id in scored[: limit + 1]]
    tsquery, match = _pg_match(node)
    label_weights: ColumnElement[Any] = sa.literal_column(f"'{PG_RANK_WEIGHTS}'::float4[]")
    rank = sa.func.ts_rank_cd(label_weights, _pg_vector(), tsquery, 1)
    # float4 → float8: the cursor's score must compare equal to the row's own when it comes back.
    negated: ColumnElement[float] = sa.cast(-rank, sa.Double())
    page = (
        sa.select(col(Article.id).label("id"), negated.label("score"))
        .where(match, *_conditions(session, filters, col(Article.id), filters.tags))
        .order_by(col(Article.id).desc())
        .limit(RANK_WINDOW)
        .subquery()
    )
    statement = sa.select(page.c.id, page.c.score).order_by(page.c.score, page.c.id.desc()).limit(limit + 1)
    if after is not None:
        key, last = after
        statement = statement.where(or_(page.c.score > key, sa.and_(page.c.score == key, page.c.id < last)))
    return [(int(row[0]), float(row[1])) for row in session.connection().execute(statement)]


def _window_index(filters: SearchFilters) -> str:
    """For the usual search — the article filter is only "not a duplicate" — the SQLite window's join reads
    SQLITE_WINDOW_INDEX, where SQLite's planner would read each match's wide article row. Other filters keep
    the planner's choice (they need the row, or an index of their own serves them better)."""
    others = (
        filters.feed, filters.since, filters.until, filters.source, filters.story_id, filters.duplicates_of,
    )  # fmt: skip
    if filters.include_duplicates or any(value is not None for value in others):
        return ""
    return f" INDEXED BY {SQLITE_WINDOW_INDEX}"


_TITLE_MATCHES = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ? AND rowid BETWEEN ? AND ?"


def _titled(driver: Any, title_node: Node, ids: list[int]) -> set[int]:
    """Which of the window's `ids` (newest first) have a title that matches `title_node`."""
    if len(ids) > TITLE_CHECK_ROWS:
        # One pass over the window's stretch of the index: a full window of a word is a short stretch.
        rows = driver.execute(_TITLE_MATCHES, (to_fts5(title_node), ids[-1], ids[0]))
        return {row[0] for row in rows}
    # A few matches (a phrase, rare words) can lie across the whole index, where a pass would read all
    # of it again: their titles are read and matched here instead, folded and split as the index does.
    marks = ", ".join("?" * len(ids))
    rows = driver.execute(f"SELECT id, title FROM article WHERE id IN ({marks})", ids)
    return {article_id for article_id, title in rows if matches(title_node, tokens(title), "title")}


def _rare_tag_ids(session: Session, tags: Sequence[str]) -> tuple[str, list[int]] | None:
    """The rarest of `tags` and its articles' ids, when it has at most DRIVER_ROWS of them."""
    connection = session.connection()
    best: tuple[str, int] | None = None
    for tag in tags:
        of_tag = sa.select(col(ArticleTag.article_id)).where(col(ArticleTag.tag) == tag)
        capped = sa.select(sa.func.count()).select_from(of_tag.limit(DRIVER_ROWS + 1).subquery())
        count = connection.execute(capped).scalar_one()
        if count <= DRIVER_ROWS and (best is None or count < best[1]):
            best = (tag, count)
    if best is None:
        return None
    ids = connection.execute(sa.select(col(ArticleTag.article_id)).where(col(ArticleTag.tag) == best[0]))
    return best[0], [row[0] for row in ids]


def _newest(
    session: Session, node: Node | None, filters: SearchFilters, limit: int, cursor: str | None, sqlite: bool
) -> list[tuple[int, Any]]:
    """Listed ids, newest first: along the published index, each row's tags probed — unless (SQLite, whose
    planner knows no tag's frequency) a rare tag's few articles are read first and sorted."""
    tags = list(filters.tags)
    conditions: list[ColumnElement[bool]] = []
    rare = _rare_tag_ids(session, tags) if sqlite and tags else None
    if rare is not None:
        tags.remove(rare[0])
        conditions.append(
            col(Article.id).in_(
                sa.select(sa.column("value")).select_from(sa.func.json_each(json.dumps(rare[1])))
            )
        )
    conditions += _conditions(session, filters, col(Article.id), tags)
    if node is not None:  # the outlet filter, without a query
        if sqlite:
            fts = _fts()
            conditions.append(col(Article.id).in_(sa.select(fts.c.rowid).where(_fts_match(node))))
        else:
            conditions.append(_pg_match(node)[1])
    published = col(Article.published)
    statement = (
        sa.select(col(Article.id), published)
        .where(*conditions)
        .order_by(published.desc(), col(Article.id).desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        key, before = _decode_cursor(cursor, _NEWEST)
        # "<=" first lets both stores start the scan of the published index at the cursor.
        statement = statement.where(published <= key, or_(published < key, col(Article.id) < before))
    rows = session.connection().execute(statement)
    return [(cast(int, row[0]), row[1]) for row in rows]  # a primary key: never None


_HIT_COLUMNS: tuple[Any, ...] = tuple(
    col(column)
    for column in (
        Article.id, Article.url, Article.title, Article.feed_id, Feed.url, Article.outlet,
        Article.author, Article.published, Article.updated, Article.source, Article.duplicate_of,
        Article.story_id, Article.text,
    )
)  # fmt: skip


# Built once: a page's statements differ only in their ids.
_PAGE_ARTICLES = (
    sa.select(*_HIT_COLUMNS)
    .outerjoin(Feed, col(Feed.id) == col(Article.feed_id))
    .where(col(Article.id).in_(sa.bindparam("ids", expanding=True)))
)
_PAGE_TAGS = (
    sa.select(
        col(ArticleTag.article_id), col(ArticleTag.tag), col(ArticleTag.score), col(ArticleTag.evidence)
    )
    .where(col(ArticleTag.article_id).in_(sa.bindparam("ids", expanding=True)))
    .order_by(col(ArticleTag.score).desc(), col(ArticleTag.tag))
)


def _load(session: Session, rows: list[tuple[int, Any]], kind: str, shown: Sequence[Term]) -> list[SearchHit]:
    """The hits of the page, in the page's order: the articles' fields, feeds, tags and snippets."""
    ids = [article_id for article_id, _ in rows]
    if not ids:
        return []
    connection = session.connection()
    articles = {row[0]: row for row in connection.execute(_PAGE_ARTICLES, {"ids": ids})}
    tags: dict[int, list[TagHit]] = {}
    for article_id, tag, score, evidence in connection.execute(_PAGE_TAGS, {"ids": ids}):
        tags.setdefault(article_id, []).append(TagHit(tag, score, list(evidence)))
    hits = []
    for article_id, score in rows:
        row = articles.get(article_id)
        if row is None:  # deleted between the two queries
            continue
        (_, url, title, feed_id, feed_url, outlet, author, published, updated, source, dup, story, text) = row
        hits.append(
            SearchHit(
                id=article_id,
                url=url,
                title=title,
                feed=redact_url(feed_url) if feed_url else None,
                feed_id=feed_id,
                outlet=outlet,
                author=author,
                published=published,
                updated=updated,
                source=source,
                tags=tuple(tags.get(article_id, ())),
                duplicate_of=dup,
                story_id=story,
                snippet=make_snippet(text or title, shown),
                rank=-score if kind == _RANKED else None,
            )
        )
    return hits
