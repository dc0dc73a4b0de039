"""The tables. Every column that holds time is an aware UTC datetime (see `worker.timeutil`).

Identity (DESIGN invariant 1): each identity key of an article — feed+guid, canonical URL, content hash —
is a row of `identity_key`, unique on (kind, value). The first article to hold a key owns it; a later item
carrying a key that is already owned is that article again (same feed+guid: an update) or an exact
duplicate of it (stored for the record with `duplicate_of`, owning only its own feed+guid key). Rows whose
article is gone are tombstones: retention keeps them so a deleted item is never ingested again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from worker.timeutil import utcnow

FEED_ORIGIN_CONFIG = "config"
FEED_ORIGIN_USER = "user"

SOURCE_FEED = "feed"
SOURCE_SEED = "seed"

KEY_GUID = "guid"
KEY_URL = "url"
KEY_HASH = "hash"

DELIVERY_PENDING = "pending"
DELIVERY_SENT = "sent"
DELIVERY_FAILED = "failed"


def table_of(model: Any) -> Table:
    """The Core table of a model: statements on it skip the ORM's per-row bookkeeping on hot paths."""
    table: Table = model.__table__
    return table


class Feed(SQLModel, table=True):
    __tablename__ = "feed"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    # The URL as the config declares it: a permanent redirect changes `url`, not this.
    config_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True, index=True))
    origin: str = Field(default=FEED_ORIGIN_USER, max_length=16)
    title: str | None = Field(default=None, sa_column=Column(Text))
    site_url: str | None = Field(default=None, sa_column=Column(Text))
    enabled: bool = Field(default=True, index=True)
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text))
    interval_seconds: int | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

    etag: str | None = Field(default=None, sa_column=Column(Text))
    last_modified: str | None = Field(default=None, sa_column=Column(Text))
    body_hash: str | None = Field(default=None, max_length=64)
    http_status: int | None = None
    error_count: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_fetch: datetime | None = None
    last_success: datetime | None = None
    next_check: datetime = Field(default_factory=utcnow, index=True)
    polls: int = 0

    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Article(SQLModel, table=True):
    __tablename__ = "article"
    __table_args__ = (UniqueConstraint("feed_id", "guid", name="uq_article_feed_guid"),)

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int | None = Field(default=None, foreign_key="feed.id", index=True, ondelete="SET NULL")
    source: str = Field(default=SOURCE_FEED, max_length=8, index=True)
    guid: str = Field(sa_column=Column(Text, nullable=False))
    url: str | None = Field(default=None, sa_column=Column(Text))
    canonical_url: str | None = Field(default=None, sa_column=Column(Text, index=True))
    content_hash: str | None = Field(default=None, max_length=64, index=True)

    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    author: str | None = Field(default=None, sa_column=Column(Text))
    outlet: str | None = Field(default=None, sa_column=Column(Text))
    lang: str | None = Field(default=None, max_length=16)
    summary_html: str | None = Field(default=None, sa_column=Column(Text))
    content_html: str | None = Field(default=None, sa_column=Column(Text))
    # Plain text, `analysis.text.normalize`d: what tagging, dedup and search read.
    text: str = Field(default="", sa_column=Column(Text, nullable=False))

    published: datetime = Field(default_factory=utcnow, index=True)
    updated: datetime | None = None
    fetched_at: datetime = Field(default_factory=utcnow)
    changed_at: datetime | None = None
    # False when the item is too old to alert (e.g. the backlog of a feed's first poll) or is a seed.
    alertable: bool = True

    duplicate_of: int | None = Field(default=None, foreign_key="article.id", index=True, ondelete="SET NULL")
    dup_method: str | None = Field(default=None, max_length=32)
    dup_score: float | None = None
    story_id: str | None = Field(default=None, max_length=64, index=True)
    story_method: str | None = Field(default=None, max_length=32)
    story_score: float | None = None
    # What decided duplicate_of and story_id (matched keys, fingerprints, scores): `newswatch show --why`.
    dedup_explain: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class IdentityKey(SQLModel, table=True):
    __tablename__ = "identity_key"

    kind: str = Field(primary_key=True, max_length=8)
    value: str = Field(primary_key=True, max_length=255)
    # NULL once the article was deleted by retention: the key stays as a tombstone.
    article_id: int | None = Field(default=None, foreign_key="article.id", index=True, ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow)


class Fingerprint(SQLModel, table=True):
    """Locality-sensitive fingerprint bands: the near-duplicate index lives in the database, not in memory.

    `band` namespaces the kinds of keys (see `worker.store.dedup_index`): winnowed shingle hashes, the
    lead key, story terms. On SQLite the table is its primary key (WITHOUT ROWID): one B-tree, half the
    space of a rowid table with a separate key index.
    """

    __tablename__ = "fingerprint"
    __table_args__ = (Index("ix_fingerprint_article", "article_id"), {"sqlite_with_rowid": False})

    # The primary key (band, value, article_id) is the lookup index: "which articles share this band value".
    band: int = Field(primary_key=True)
    value: int = Field(sa_column=Column(BigInteger, primary_key=True))
    article_id: int = Field(foreign_key="article.id", primary_key=True, ondelete="CASCADE")


class ArticleTag(SQLModel, table=True):
    __tablename__ = "article_tag"
    __table_args__ = (Index("ix_article_tag_tag", "tag", "article_id"),)

    article_id: int = Field(foreign_key="article.id", primary_key=True, ondelete="CASCADE")
    tag: str = Field(primary_key=True, max_length=64)
    score: float = 0.0
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Delivery(SQLModel, table=True):
    """One alert to one target: the transactional outbox (DESIGN invariant 2)."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("article_id", "target_id", name="uq_delivery_article_target"),
        Index("ix_delivery_due", "status", "next_attempt"),
        # The rate limit counts a target's recent sends; claims look for a target's next due row.
        Index("ix_delivery_target", "target_id", "status", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    article_id: int | None = Field(default=None, foreign_key="article.id", ondelete="CASCADE")
    kind: str = Field(default="instant", max_length=16)
    # Stable id of the apprise target (a hash of its URL) and its redacted form for display.
    target_id: str = Field(max_length=64)
    target: str = Field(sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    status: str = Field(default=DELIVERY_PENDING, max_length=16)
    attempts: int = 0
    next_attempt: datetime = Field(default_factory=utcnow)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None


class DedupProfile(SQLModel, table=True):
    """What duplicate and story detection compare of one article, so a lookup never re-reads texts.

    Derived from the article by `worker.analysis.dedup.analyse`; `newswatch dedup rebuild` recomputes it.
    """

    __tablename__ = "dedup_profile"

    article_id: int = Field(foreign_key="article.id", primary_key=True, ondelete="CASCADE")
    # 32-bit shingle hashes in text order, little-endian (worker.analysis.dedup.encode_shingles).
    shingles: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The story terms (names and numbers), space-separated.
    terms: str = Field(default="", sa_column=Column(Text, nullable=False))


class DedupStoryTerm(SQLModel, table=True):
    """Which stories carried a name or number in a period: the same-story index.

    One row per (term in a period, story) — not per article — so a lookup reads the few stories that
    carried a term around a date, however many articles did. `term_key` hashes the term with its period
    (`worker.analysis.dedup.term_period_key`). On SQLite the table is its primary key (WITHOUT ROWID).
    """

    __tablename__ = "dedup_story_term"
    __table_args__ = (Index("ix_dedup_story_term_article", "article_id"), {"sqlite_with_rowid": False})

    term_key: int = Field(sa_column=Column(BigInteger, primary_key=True))
    story_id: str = Field(primary_key=True, max_length=64)
    # The story's latest article carrying the term in the period, and its day (days since the epoch).
    article_id: int = Field(foreign_key="article.id", ondelete="CASCADE")
    day: int
