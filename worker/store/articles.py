"""Storing one item: identity keys, duplicate detection, tags — the single way an article enters the store.

The pipeline (feed items), the seed importer and the dedup evaluator all call `store_item`, so every
article is decided by the same code. It runs inside the caller's transaction and never commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import delete, insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from worker.analysis.dedup import Decision, Document, content_hash, exact_decision
from worker.analysis.urls import canonical_url
from worker.store.models import (
    KEY_GUID,
    KEY_HASH,
    KEY_URL,
    SOURCE_SEED,
    Article,
    ArticleTag,
    Feed,
    IdentityKey,
    table_of,
)
from worker.timeutil import utcnow

Outcome = Literal["new", "updated", "unchanged", "tombstone"]

# Identity key values are capped so very long URLs still fit the indexed column; the hash keeps them unique.
_KEY_MAX = 255


@dataclass(frozen=True)
class NewArticle:
    """An item as it arrives, before the store decides whether it is new."""

    source: str
    feed_id: int | None
    guid: str
    url: str | None
    title: str
    text: str
    published: datetime
    author: str | None = None
    outlet: str | None = None
    lang: str | None = None
    summary_html: str | None = None
    content_html: str | None = None
    updated: datetime | None = None
    alertable: bool = True


@dataclass(frozen=True)
class StoredItem:
    article: Article
    outcome: Outcome


class NearDuplicateIndex(Protocol):
    """The near-duplicate and same-story index (worker.store.dedup_index.DedupIndex)."""

    def check(self, session: Session, doc: Document) -> Decision: ...

    def add(self, session: Session, article_id: int, doc: Document, story_id: str | None = None) -> None: ...

    def remove(self, session: Session, article_id: int) -> None: ...


class AlertPlanner(Protocol):
    """Writes the outbox rows of a new article (worker.alerts.outbox.Router)."""

    def enqueue(self, session: Session, article: Article, results: Sequence[Any]) -> int: ...


class TagSource(Protocol):
    """Anything that tags (worker.analysis.tagging.Tagger): results with tag, score and evidence."""

    def tag(self, title: str, text: str) -> Sequence[Any]: ...


def key_value(value: str) -> str:
    if len(value) <= _KEY_MAX:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
    return f"{value[: _KEY_MAX - 65]}#{digest}"


def guid_key(feed_id: int | None, guid: str) -> str:
    return key_value(f"{feed_id if feed_id is not None else 'seed'}:{guid}")


def document_of(article: Article) -> Document:
    return Document(
        title=article.title,
        text=article.text,
        canonical_url=article.canonical_url,
        outlet=article.outlet,
        published=article.published,
        feed_id=article.feed_id,
        source=article.source,
    )


_KEY_INSERT = {
    "sqlite": sqlite_insert(table_of(IdentityKey)).on_conflict_do_nothing(index_elements=["kind", "value"]),
    "postgresql": pg_insert(table_of(IdentityKey)).on_conflict_do_nothing(index_elements=["kind", "value"]),
}
# Core statements on the tables: the ORM's bulk path costs more per row than the inserts themselves.
_ARTICLE_TABLE = table_of(Article)
_ARTICLE_INSERT = insert(_ARTICLE_TABLE).returning(_ARTICLE_TABLE.c.id)
_TAG_INSERT = insert(table_of(ArticleTag))
# Any constant will do; it only has to be the same for every Newswatch process.
_PG_SEED_LOCK = 0x6E770004
# Lookups of many keys at once stay below SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 500


def _insert_keys(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert identity keys, ignoring those another worker inserted meanwhile (one statement)."""
    if rows:
        dialect = session.get_bind().dialect.name
        session.connection().execute(_KEY_INSERT["postgresql" if dialect == "postgresql" else "sqlite"], rows)


def _insert_key_if_absent(session: Session, kind: str, value: str, article_id: int) -> None:
    _insert_keys(session, [{"kind": kind, "value": value, "article_id": article_id, "created_at": utcnow()}])


@dataclass
class _Batch:
    """What one feed's items need to know of the store, read in a few queries instead of per item.

    Keys map (kind, value) to the owning article id (None: a tombstone); `meta` maps article ids to their
    (duplicate_of, story_id). Items stored by this batch are added as they go, so a later item of the same
    feed sees an earlier one.
    """

    keys: dict[tuple[str, str], int | None]
    meta: dict[int, tuple[int | None, str | None]]

    @classmethod
    def load(cls, session: Session, wanted: list[tuple[str, str]]) -> _Batch:
        keys: dict[tuple[str, str], int | None] = {}
        by_kind: dict[str, list[str]] = {}
        for kind, value in wanted:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in by_kind.items():
            for start in range(0, len(values), _LOOKUP_CHUNK):
                chunk = values[start : start + _LOOKUP_CHUNK]
                rows = session.exec(
                    select(IdentityKey.value, IdentityKey.article_id).where(
                        col(IdentityKey.kind) == kind, col(IdentityKey.value).in_(chunk)
                    )
                ).all()
                keys.update(((kind, value), article_id) for value, article_id in rows)
        return cls(keys, {})

    def owner_meta(self, session: Session, article_id: int) -> tuple[int | None, str | None]:
        if article_id not in self.meta:
            row = session.exec(
                select(Article.duplicate_of, Article.story_id).where(col(Article.id) == article_id)
            ).first()
            self.meta[article_id] = (row[0], row[1]) if row is not None else (None, None)
        return self.meta[article_id]


def _exact_duplicate(
    session: Session, batch: _Batch, url: str | None, digest: str | None
) -> Decision | Literal["tombstone"] | None:
    for kind, value in ((KEY_URL, url), (KEY_HASH, digest)):
        if value is None or (kind, key_value(value)) not in batch.keys:
            continue
        owner_id = batch.keys[(kind, key_value(value))]
        if owner_id is None:
            return "tombstone"
        duplicate_of, _ = batch.owner_meta(session, owner_id)
        root = duplicate_of if duplicate_of is not None else owner_id
        return exact_decision(kind, value, root)
    return None


def replace_tags(session: Session, article_id: int, results: Sequence[Any]) -> None:
    session.execute(delete(ArticleTag).where(col(ArticleTag.article_id) == article_id))
    rows = _tag_rows(article_id, results)
    if rows:
        session.connection().execute(_TAG_INSERT, rows)


def _tag_rows(article_id: int, results: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "article_id": article_id,
            "tag": result.tag,
            "score": round(float(result.score), 4),
            "evidence": [_evidence_dict(e) for e in result.evidence],
        }
        for result in results
    ]


def _evidence_dict(evidence: Any) -> dict[str, Any]:
    if isinstance(evidence, dict):
        return dict(evidence)
    fields = ("term", "matched", "field", "start", "end", "weight")
    return {name: getattr(evidence, name) for name in fields if hasattr(evidence, name)}


def record_decision(article: Article, decision: Decision) -> None:
    """Copy a dedup verdict onto its article (the story id is the caller's: it may need a lookup)."""
    article.duplicate_of = decision.duplicate_of
    article.dup_method = decision.dup_method
    article.dup_score = decision.dup_score
    article.story_method = decision.story_method
    article.story_score = decision.story_score
    article.dedup_explain = decision.explain or None


def new_story_id(guid_key_value: str) -> str:
    """A new story's id: derived from its first article's feed+guid key, so it is known before the insert."""
    return "s" + hashlib.sha256(guid_key_value.encode("utf-8")).hexdigest()[:15]


def store_item(
    session: Session,
    item: NewArticle,
    index: NearDuplicateIndex,
    tagger: TagSource | None,
    alerts: AlertPlanner | None = None,
) -> StoredItem:
    """Store one item (see `store_items`)."""
    return store_items(session, [item], index, tagger, alerts)[0]


def store_items(
    session: Session,
    items: Sequence[NewArticle],
    index: NearDuplicateIndex,
    tagger: TagSource | None,
    alerts: AlertPlanner | None = None,
) -> list[StoredItem]:
    """Store each item once, in order: an update when its feed+guid is known, else a new (maybe duplicate)
    article with its identity keys, index entries, tags and outbox rows — all in the caller's transaction.

    Identity keys are read for the whole batch in a few queries and written in one statement at the end.
    """
    if session.get_bind().dialect.name == "postgresql" and any(item.feed_id is None for item in items):
        # A seed has no feed, so no unique (feed, guid) stops two workers starting together from each
        # inserting it: they take turns, and the second reads the first one's keys.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SEED_LOCK})
    gkeys = [guid_key(item.feed_id, item.guid) for item in items]
    located = [(canonical_url(item.url), content_hash(item.title, item.text)) for item in items]
    wanted = [(KEY_GUID, g) for g in gkeys]
    for curl, digest in located:
        if curl is not None:
            wanted.append((KEY_URL, key_value(curl)))
        if digest is not None:
            wanted.append((KEY_HASH, digest))
    batch = _Batch.load(session, wanted)
    now = utcnow()
    new_keys: list[dict[str, Any]] = []
    new_tags: list[dict[str, Any]] = []
    stored: list[StoredItem] = []
    for item, gkey, (curl, digest) in zip(items, gkeys, located, strict=True):
        if (KEY_GUID, gkey) in batch.keys:
            owner = batch.keys[(KEY_GUID, gkey)]
            existing = session.get(Article, owner) if owner is not None else None
            if existing is None:
                stored.append(StoredItem(Article(title=item.title, guid=item.guid), "tombstone"))
            else:
                stored.append(_update(session, existing, item, index, tagger))
            continue
        result = _store_new(session, batch, item, gkey, curl, digest, index, now)
        if result is None:
            stored.append(StoredItem(Article(title=item.title, guid=item.guid), "tombstone"))
            continue
        article = result
        assert article.id is not None
        for kind, value in ((KEY_GUID, gkey), (KEY_URL, curl and key_value(curl)), (KEY_HASH, digest)):
            if value is not None and (kind, value) not in batch.keys:
                batch.keys[(kind, value)] = article.id
                new_keys.append({"kind": kind, "value": value, "article_id": article.id, "created_at": now})
        results = tagger.tag(article.title, article.text) if tagger is not None else []
        new_tags.extend(_tag_rows(article.id, results))
        if alerts is not None:
            # The outbox rows commit with the article or not at all (invariant 2).
            alerts.enqueue(session, article, results)
        stored.append(StoredItem(article, "new"))
    _insert_keys(session, new_keys)
    if new_tags:
        session.connection().execute(_TAG_INSERT, new_tags)
    return stored


def _store_new(
    session: Session,
    batch: _Batch,
    item: NewArticle,
    gkey: str,
    curl: str | None,
    digest: str | None,
    index: NearDuplicateIndex,
    now: datetime,
) -> Article | None:
    """Insert one new article (None: its URL or text is a tombstone of a deleted one)."""
    article = Article(
        feed_id=item.feed_id,
        source=item.source,
        guid=item.guid,
        url=item.url,
        canonical_url=curl,
        content_hash=digest,
        title=item.title,
        author=item.author,
        outlet=item.outlet,
        lang=item.lang,
        summary_html=item.summary_html,
        content_html=item.content_html,
        text=item.text,
        published=item.published,
        updated=item.updated,
        fetched_at=now,
        alertable=item.alertable and item.source != SOURCE_SEED,
    )
    doc = document_of(article)
    exact = _exact_duplicate(session, batch, curl, digest)
    if exact == "tombstone":
        return None
    decision = exact if exact is not None else index.check(session, doc)
    record_decision(article, decision)
    joined_story = batch.owner_meta(session, decision.story_of)[1] if decision.story_of is not None else None
    article.story_id = joined_story or new_story_id(gkey)
    if joined_story is None:
        article.story_method = article.story_method if decision.story_of is not None else "new"
    if decision.duplicate_of is not None:
        article.alertable = False
    values = article.model_dump(exclude={"id"})
    article.id = session.connection().execute(_ARTICLE_INSERT, values).scalar_one()
    batch.meta[article.id] = (article.duplicate_of, article.story_id)
    index.add(session, article.id, doc, article.story_id)
    return article


def _update(
    session: Session, article: Article, item: NewArticle, index: NearDuplicateIndex, tagger: TagSource | None
) -> StoredItem:
    """The same entry seen again: refresh it when its content changed; it stays one article."""
    if (article.title, article.text, article.url, article.content_html, article.summary_html) == (
        item.title,
        item.text,
        item.url,
        item.content_html,
        item.summary_html,
    ):
        return StoredItem(article, "unchanged")
    assert article.id is not None
    article.title = item.title
    article.text = item.text
    article.url = item.url
    article.canonical_url = canonical_url(item.url)
    article.content_hash = content_hash(item.title, item.text)
    article.summary_html = item.summary_html
    article.content_html = item.content_html
    article.author = item.author
    article.updated = item.updated
    article.changed_at = utcnow()
    if article.canonical_url is not None:
        _insert_key_if_absent(session, KEY_URL, key_value(article.canonical_url), article.id)
    if article.content_hash is not None:
        _insert_key_if_absent(session, KEY_HASH, article.content_hash, article.id)
    index.remove(session, article.id)
    index.add(session, article.id, document_of(article))
    if tagger is not None:
        replace_tags(session, article.id, tagger.tag(article.title, article.text))
    return StoredItem(article, "updated")


@dataclass(frozen=True)
class _FeedTag:
    tag: str
    score: float
    evidence: tuple[dict[str, Any], ...]


class FeedTags:
    """The tagger's tags plus the tags the config gives a whole feed (score 1, evidence "feed")."""

    def __init__(self, tagger: TagSource | None, feed_tags: Sequence[str]) -> None:
        self.tagger = tagger
        self.feed_tags = tuple(feed_tags)

    def tag(self, title: str, text: str) -> Sequence[Any]:
        results = list(self.tagger.tag(title, text)) if self.tagger is not None else []
        present = {r.tag for r in results}
        for name in self.feed_tags:
            if name not in present:
                results.append(_FeedTag(name, 1.0, ({"term": "feed", "field": "feed"},)))
        return results


def retag_all(
    session_factory: Callable[[], AbstractContextManager[Session]],
    tagger: TagSource,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Re-tag every stored article after the rules changed, `batch` articles a transaction."""
    done = 0
    last_id = 0
    while True:
        with session_factory() as session:
            rows = session.exec(
                select(Article.id, Article.title, Article.text, Article.feed_id)
                .where(col(Article.id) > last_id)
                .order_by(col(Article.id))
                .limit(batch)
            ).all()
            if not rows:
                return done
            feeds = {
                f.id: f.tags for f in session.exec(select(Feed).where(col(Feed.id).in_({r[3] for r in rows})))
            }
            for article_id, title, text, feed_id in rows:
                assert article_id is not None
                replace_tags(session, article_id, FeedTags(tagger, feeds.get(feed_id, [])).tag(title, text))
                last_id = article_id
            done += len(rows)
        if progress is not None:
            progress(len(rows))
