"""Storing one item: identity keys, duplicate detection, tags — the single way an article enters the store.

The pipeline (feed items), the seed importer and the dedup evaluator all call `store_item`, so every
article is decided by the same code. It runs inside the caller's transaction and never commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from worker.analysis.dedup import Decision, Document, content_hash
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

    def add(self, session: Session, article_id: int, doc: Document) -> None: ...

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
    import hashlib

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


def _insert_key_if_absent(session: Session, kind: str, value: str, article_id: int) -> None:
    values = {"kind": kind, "value": value, "article_id": article_id, "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(IdentityKey).values(**values)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["kind", "value"]))


def _key_owner(session: Session, kind: str, value: str | None) -> tuple[bool, int | None]:
    """(key exists, owning article id — None for a tombstone)."""
    if value is None:
        return False, None
    key = session.get(IdentityKey, (kind, key_value(value)))
    return (key is not None, key.article_id if key is not None else None)


def _root(session: Session, article_id: int) -> Article | None:
    article = session.get(Article, article_id)
    if article is not None and article.duplicate_of is not None:
        return session.get(Article, article.duplicate_of) or article
    return article


def _exact_duplicate(
    session: Session, url: str | None, digest: str | None
) -> Decision | Literal["tombstone"] | None:
    for kind, value in ((KEY_URL, url), (KEY_HASH, digest)):
        exists, owner_id = _key_owner(session, kind, value)
        if not exists:
            continue
        if owner_id is None:
            return "tombstone"
        root = _root(session, owner_id)
        if root is None or root.id is None:
            continue
        return Decision(
            duplicate_of=root.id,
            dup_method=kind,
            dup_score=1.0,
            story_of=root.id,
            story_method=f"same-article:{kind}",
            story_score=1.0,
            explain={"matched_key": kind, "value": value, "article_id": root.id},
        )
    return None


def replace_tags(session: Session, article_id: int, results: Sequence[Any]) -> None:
    session.execute(delete(ArticleTag).where(col(ArticleTag.article_id) == article_id))
    for result in results:
        session.add(
            ArticleTag(
                article_id=article_id,
                tag=result.tag,
                score=round(float(result.score), 4),
                evidence=[_evidence_dict(e) for e in result.evidence],
            )
        )


def _evidence_dict(evidence: Any) -> dict[str, Any]:
    if isinstance(evidence, dict):
        return dict(evidence)
    fields = ("term", "matched", "field", "start", "end", "weight")
    return {name: getattr(evidence, name) for name in fields if hasattr(evidence, name)}


def _apply_decision(article: Article, decision: Decision, session: Session) -> None:
    article.duplicate_of = decision.duplicate_of
    article.dup_method = decision.dup_method
    article.dup_score = decision.dup_score
    article.story_method = decision.story_method
    article.story_score = decision.story_score
    article.dedup_explain = decision.explain or None
    if decision.story_of is not None:
        joined = session.get(Article, decision.story_of)
        if joined is not None and joined.story_id is not None:
            article.story_id = joined.story_id
            return
    article.story_id = f"s{article.id}"
    article.story_method = article.story_method or "new"


def store_item(
    session: Session,
    item: NewArticle,
    index: NearDuplicateIndex,
    tagger: TagSource | None,
    alerts: AlertPlanner | None = None,
) -> StoredItem:
    """Store `item` once: an update when its feed+guid is known, else a new (maybe duplicate) article."""
    gkey = guid_key(item.feed_id, item.guid)
    exists, owner_id = _key_owner(session, KEY_GUID, gkey)
    if exists:
        if owner_id is None:
            return StoredItem(Article(title=item.title, guid=item.guid), "tombstone")
        article = session.get(Article, owner_id)
        if article is not None:
            return _update(session, article, item, index, tagger)

    curl = canonical_url(item.url)
    digest = content_hash(item.title, item.text)
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
        alertable=item.alertable and item.source != SOURCE_SEED,
    )
    doc = document_of(article)
    exact = _exact_duplicate(session, curl, digest)
    if exact == "tombstone":
        return StoredItem(article, "tombstone")
    decision = exact if exact is not None else index.check(session, doc)

    session.add(article)
    session.flush()
    assert article.id is not None
    _apply_decision(article, decision, session)
    if decision.duplicate_of is not None:
        article.alertable = False

    _insert_key_if_absent(session, KEY_GUID, gkey, article.id)
    if curl is not None:
        _insert_key_if_absent(session, KEY_URL, key_value(curl), article.id)
    if digest is not None:
        _insert_key_if_absent(session, KEY_HASH, digest, article.id)
    index.add(session, article.id, doc)
    results = tagger.tag(article.title, article.text) if tagger is not None else []
    replace_tags(session, article.id, results)
    if alerts is not None:
        # The outbox rows commit with the article or not at all (invariant 2).
        alerts.enqueue(session, article, results)
    return StoredItem(article, "new")


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
