"""Read-side queries for showing stored articles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from worker.store.models import Article, ArticleTag, Delivery, Feed


@dataclass(frozen=True)
class ArticleView:
    article: Article
    feed: Feed | None
    tags: list[ArticleTag]
    original: Article | None
    story_siblings: list[Article]
    deliveries: list[Delivery]

    def as_json(self, why: bool = False) -> dict[str, Any]:
        a = self.article
        data: dict[str, Any] = {
            "id": a.id,
            "source": a.source,
            "feed": self.feed.url if self.feed is not None else None,
            "outlet": a.outlet,
            "guid": a.guid,
            "url": a.url,
            "canonical_url": a.canonical_url,
            "title": a.title,
            "author": a.author,
            "lang": a.lang,
            "published": a.published.isoformat(),
            "fetched_at": a.fetched_at.isoformat(),
            "updated": a.updated.isoformat() if a.updated else None,
            "text": a.text,
            "tags": [{"name": t.tag, "score": t.score, "evidence": t.evidence} for t in self.tags],
            "duplicate_of": a.duplicate_of,
            "story_id": a.story_id,
            "story_siblings": [s.id for s in self.story_siblings],
            "alertable": a.alertable,
            "deliveries": [
                {"id": d.id, "target": d.target, "status": d.status, "attempts": d.attempts}
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


def article_view(session: Session, article_id: int, sibling_limit: int = 50) -> ArticleView | None:
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
    deliveries = list(session.exec(select(Delivery).where(Delivery.article_id == article_id)))
    return ArticleView(article, feed, tags, original, siblings, deliveries)
