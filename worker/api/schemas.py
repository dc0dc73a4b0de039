"""What the JSON API answers: pydantic models, so the OpenAPI schema at /docs says exactly that."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Source = Literal["feed", "seed"]
# Article ids are INTEGER columns, 32-bit on PostgreSQL: a larger number cannot name an article.
MAX_ID = 2**31 - 1


class Tag(BaseModel):
    name: str
    score: float
    evidence: list[dict[str, Any]] = Field(description="Which alias matched, where, and what it weighed.")


class SnippetPart(BaseModel):
    text: str
    highlight: bool = Field(description="Whether this part is where the query matched.")


class ArticleHit(BaseModel):
    id: int
    url: str | None
    title: str
    feed: str | None = Field(description="URL of the feed the article came from (secrets masked).")
    outlet: str | None
    author: str | None
    published: datetime
    updated: datetime | None
    source: Source
    tags: list[Tag]
    duplicate_of: int | None = Field(description="The original article when this one is a duplicate.")
    story_id: str | None
    snippet: str = Field(description="About 30 words of the text, around the matches of the query.")
    snippet_parts: list[SnippetPart] = Field(description="`snippet` in parts, the matched words marked.")
    rank: float | None = Field(description="Relevance of a full-text match (higher is better).")


class ArticlePage(BaseModel):
    items: list[ArticleHit]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    total: int | None = Field(description="Number of matches, when known.")


class Delivery(BaseModel):
    id: int
    kind: str = Field(description="instant, digest, followup, overflow or roundup.")
    target: str = Field(description="The alert target, secrets masked.")
    status: Literal["pending", "sent", "failed"]
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class ArticleBrief(BaseModel):
    """Another article, named from this one's view."""

    id: int
    title: str
    outlet: str | None
    url: str | None
    published: datetime
    source: Source


class DedupDecision(BaseModel):
    duplicate_of: int | None
    dup_method: str | None
    dup_score: float | None
    story_id: str | None
    story_method: str | None
    story_score: float | None
    content_hash: str | None
    details: dict[str, Any] = Field(description="Matched keys, fingerprints and scores.")


class ArticleDetail(BaseModel):
    id: int
    source: Source
    feed: str | None = Field(description="URL of the feed the article came from (secrets masked).")
    outlet: str | None
    guid: str
    url: str | None
    canonical_url: str | None
    title: str
    author: str | None
    lang: str | None
    published: datetime
    fetched_at: datetime
    updated: datetime | None
    text: str
    tags: list[Tag]
    duplicate_of: int | None = Field(description="The original article when this one is a duplicate.")
    original: ArticleBrief | None
    duplicates: list[ArticleBrief] = Field(description="Articles that duplicate this one (oldest first).")
    story_id: str | None
    story_siblings: list[ArticleBrief] = Field(description="Other articles of the same story (oldest first).")
    alertable: bool
    deliveries: list[Delivery]
    why: DedupDecision | None = Field(None, description="With `why=true`: what decided duplicate and story.")


class FeedHealth(BaseModel):
    id: int
    url: str
    title: str | None
    status: Literal["ok", "error", "disabled", "pending"]
    http_status: int | None
    articles: int
    error_count: int = Field(description="Consecutive failed polls.")
    last_error: str | None
    last_fetch: datetime | None
    next_check: datetime
    interval: int | None = Field(description="Poll interval in seconds (null: the default).")
    origin: str
    tags: list[str]


class Health(BaseModel):
    status: Literal["ok", "stale", "down"]
    database: Literal["ok", "unreachable"]
    last_success: datetime | None = Field(description="The most recent successful poll of any feed.")
    age_seconds: float | None = Field(description="Seconds since `last_success`.")
    stale_after: float = Field(description="`status` is stale (HTTP 503) past this many seconds.")


class Message(BaseModel):
    detail: str
