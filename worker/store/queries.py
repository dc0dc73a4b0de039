"""Read-side queries for showing stored articles (`newswatch show`, the API's article page) and `stats`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from worker.redact import redact_url
from worker.store.feeds import FeedHealth, health
from worker.store.models import Article, ArticleTag, Delivery, Feed

RELATED_LIMIT = 50


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _brief(article: Article) -> dict[str, Any]:
    """An article named from another one's page: enough to recognise it and to go there."""
    return {
        "id": article.id,
        "title": article.title,
        "outlet": article.outlet,
        "url": article.url,
        "published": article.published.isoformat(),
        "source": article.source,
    }


@dataclass(frozen=True)
class ArticleView:
    article: Article
    feed: Feed | None
    tags: list[ArticleTag]
    original: Article | None  # what this article duplicates
    story_siblings: list[Article]  # the other articles of its story, oldest first
    deliveries: list[Delivery]
    duplicates: list[Article]  # the articles that duplicate this one, oldest first

    def as_json(self, why: bool = False) -> dict[str, Any]:
        a = self.article
        data: dict[str, Any] = {
            "id": a.id,
            "source": a.source,
            "feed": redact_url(self.feed.url) if self.feed is not None else None,
            "outlet": a.outlet,
            "guid": a.guid,
            "url": a.url,
            "canonical_url": a.canonical_url,
            "title": a.title,
            "author": a.author,
            "lang": a.lang,
            "published": a.published.isoformat(),
            "fetched_at": a.fetched_at.isoformat(),
            "updated": _iso(a.updated),
            "text": a.text,
            "tags": [{"name": t.tag, "score": t.score, "evidence": t.evidence} for t in self.tags],
            "duplicate_of": a.duplicate_of,
            "original": _brief(self.original) if self.original is not None else None,
            "duplicates": [_brief(d) for d in self.duplicates],
            "story_id": a.story_id,
            "story_siblings": [_brief(s) for s in self.story_siblings],
            "alertable": a.alertable,
            "deliveries": [
                {
                    "id": d.id,
                    "kind": d.kind,
                    "target": d.target,  # stored redacted
                    "status": d.status,
                    "attempts": d.attempts,
                    "created_at": d.created_at.isoformat(),
                    "sent_at": _iso(d.sent_at),
                    "last_error": d.last_error,
                }
                for d in self.deliveries
            ],
        }
        if why:
            data["why"] = {
                "duplicate_of": a.duplicate_of,
                "dup_method": a.dup_method,
                "dup_score": a.dup_score,
                "story_id": a.story_id,
                "story_method": a.story_method,
                "story_score": a.story_score,
                "content_hash": a.content_hash,
                "details": a.dedup_explain or {},
            }
        return data


def article_view(session: Session, article_id: int, sibling_limit: int = RELATED_LIMIT) -> ArticleView | None:
    article = session.get(Article, article_id)
    if article is None:
        return None
    feed = session.get(Feed, article.feed_id) if article.feed_id is not None else None
    tags = list(
        session.exec(
            select(ArticleTag)
            .where(ArticleTag.article_id == article_id)
            .order_by(col(ArticleTag.score).desc())
        )
    )
    original = session.get(Article, article.duplicate_of) if article.duplicate_of is not None else None
    siblings: list[Article] = []
    if article.story_id is not None:
        siblings = list(
            session.exec(
                select(Article)
                .where(Article.story_id == article.story_id, Article.id != article_id)
                .order_by(col(Article.published))
                .limit(sibling_limit)
            )
        )
    duplicates = list(
        session.exec(
            select(Article)
            .where(Article.duplicate_of == article_id)
            .order_by(col(Article.published))
            .limit(sibling_limit)
        )
    )
    deliveries = list(
        session.exec(select(Delivery).where(Delivery.article_id == article_id).order_by(col(Delivery.id)))
    )
    return ArticleView(article, feed, tags, original, siblings, deliveries, duplicates)


# --- stats -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedCount:
    feed_id: int | None  # None: the seeds
    url: str | None  # redacted
    title: str | None
    articles: int
    duplicates: int


@dataclass(frozen=True)
class DayCount:
    day: str  # YYYY-MM-DD, UTC
    articles: int
    duplicates: int


@dataclass(frozen=True)
class Stats:
    """What the store holds, published since `since` (everything when None): duplicates are counted apart
    everywhere, and tags count only originals — a story told twice is tagged once."""

    since: datetime | None
    articles: int
    duplicates: int
    tags: list[tuple[str, int]]
    feeds: list[FeedCount]
    days: list[DayCount]
    health: list[FeedHealth]

    def health_summary(self) -> dict[str, int]:
        summary: dict[str, int] = {}
        for row in self.health:
            summary[row.status] = summary.get(row.status, 0) + 1
        return summary

    def as_json(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "articles": self.articles,
            "duplicates": self.duplicates,
            "tags": [{"name": name, "articles": count} for name, count in self.tags],
            "feeds": [
                {
                    "feed_id": f.feed_id,
                    "url": f.url,
                    "title": f.title,
                    "articles": f.articles,
                    "duplicates": f.duplicates,
                }
                for f in self.feeds
            ],
            "days": [{"day": d.day, "articles": d.articles, "duplicates": d.duplicates} for d in self.days],
            "feed_health": {
                "summary": self.health_summary(),
                "failing": [row.as_json() for row in self.health if row.status == "error"],
            },
        }


def _day(session: Session) -> ColumnElement[str]:
    published = col(Article.published)
    if session.get_bind().dialect.name == "sqlite":
        return func.substr(published, 1, 10)  # stored as "YYYY-MM-DD HH:MM:SS" in UTC
    return func.to_char(func.timezone("UTC", published), "YYYY-MM-DD")


def stats(session: Session, since: datetime | None = None) -> Stats:
    window = [col(Article.published) >= since] if since is not None else []
    duplicate = func.sum(case((col(Article.duplicate_of).is_not(None), 1), else_=0))
    by_feed = session.exec(
        select(col(Article.feed_id), func.count(), duplicate).where(*window).group_by(col(Article.feed_id))
    ).all()
    feeds = {feed.id: feed for feed in session.exec(select(Feed))}
    feed_counts = [
        FeedCount(
            feed_id,
            redact_url(feeds[feed_id].url) if feed_id in feeds else None,
            feeds[feed_id].title if feed_id in feeds else None,
            count - int(dups or 0),
            int(dups or 0),
        )
        for feed_id, count, dups in by_feed
    ]
    feed_counts.sort(key=lambda f: (-f.articles, f.feed_id or 0))
    day = _day(session)
    by_day = session.exec(
        select(day, func.count(), duplicate).where(*window).group_by(day).order_by(day)
    ).all()
    tag_count = func.count()
    by_tag = session.exec(
        select(ArticleTag.tag, tag_count)
        .join(Article, col(Article.id) == col(ArticleTag.article_id))
        .where(col(Article.duplicate_of).is_(None), *window)
        .group_by(col(ArticleTag.tag))
        .order_by(tag_count.desc(), col(ArticleTag.tag))
    ).all()
    return Stats(
        since=since,
        articles=sum(f.articles for f in feed_counts),
        duplicates=sum(f.duplicates for f in feed_counts),
        tags=[(tag, int(count)) for tag, count in by_tag],
        feeds=feed_counts,
        days=[DayCount(str(d), count - int(dups or 0), int(dups or 0)) for d, count, dups in by_day],
        health=health(session),
    )
