"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("config_url", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("site_url", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("body_hash", sa.String(length=64), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_fetch", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_check", sa.DateTime(timezone=True), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url"),
    )
    with op.batch_alter_table("feed", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_config_url"), ["config_url"], unique=False)
        batch_op.create_index(batch_op.f("ix_feed_enabled"), ["enabled"], unique=False)
        batch_op.create_index(batch_op.f("ix_feed_next_check"), ["next_check"], unique=False)

    op.create_table(
        "article",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("guid", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("outlet", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(length=16), nullable=True),
        sa.Column("summary_html", sa.Text(), nullable=True),
        sa.Column("content_html", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alertable", sa.Boolean(), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("dup_method", sa.String(length=32), nullable=True),
        sa.Column("dup_score", sa.Float(), nullable=True),
        sa.Column("story_id", sa.String(length=64), nullable=True),
        sa.Column("story_method", sa.String(length=32), nullable=True),
        sa.Column("story_score", sa.Float(), nullable=True),
        sa.Column("dedup_explain", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["duplicate_of"], ["article.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["feed_id"], ["feed.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("feed_id", "guid", name="uq_article_feed_guid"),
    )
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_canonical_url"), ["canonical_url"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_content_hash"), ["content_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_duplicate_of"), ["duplicate_of"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_feed_id"), ["feed_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_published"), ["published"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_source"), ["source"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_story_id"), ["story_id"], unique=False)

    op.create_table(
        "article_tag",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id", "tag"),
    )
    with op.batch_alter_table("article_tag", schema=None) as batch_op:
        batch_op.create_index("ix_article_tag_tag", ["tag", "article_id"], unique=False)

    op.create_table(
        "dedup_profile",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("shingles", sa.LargeBinary(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id"),
    )
    op.create_table(
        "dedup_story_term",
        sa.Column("term_key", sa.BigInteger(), nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("term_key", "story_id"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("dedup_story_term", schema=None) as batch_op:
        batch_op.create_index("ix_dedup_story_term_article", ["article_id"], unique=False)

    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("article_id", "target_id", name="uq_delivery_article_target"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_due", ["status", "next_attempt"], unique=False)
        batch_op.create_index("ix_delivery_target", ["target_id", "status", "sent_at"], unique=False)

    op.create_table(
        "fingerprint",
        sa.Column("band", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("band", "value", "article_id"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("fingerprint", schema=None) as batch_op:
        batch_op.create_index("ix_fingerprint_article", ["article_id"], unique=False)

    op.create_table(
        "identity_key",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("kind", "value"),
    )
    with op.batch_alter_table("identity_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_key_article_id"), ["article_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identity_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_key_article_id"))

    op.drop_table("identity_key")
    with op.batch_alter_table("fingerprint", schema=None) as batch_op:
        batch_op.drop_index("ix_fingerprint_article")

    op.drop_table("fingerprint")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_target")
        batch_op.drop_index("ix_delivery_due")

    op.drop_table("delivery")
    with op.batch_alter_table("dedup_story_term", schema=None) as batch_op:
        batch_op.drop_index("ix_dedup_story_term_article")

    op.drop_table("dedup_story_term")
    op.drop_table("dedup_profile")
    with op.batch_alter_table("article_tag", schema=None) as batch_op:
        batch_op.drop_index("ix_article_tag_tag")

    op.drop_table("article_tag")
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_story_id"))
        batch_op.drop_index(batch_op.f("ix_article_source"))
        batch_op.drop_index(batch_op.f("ix_article_published"))
        batch_op.drop_index(batch_op.f("ix_article_feed_id"))
        batch_op.drop_index(batch_op.f("ix_article_duplicate_of"))
        batch_op.drop_index(batch_op.f("ix_article_content_hash"))
        batch_op.drop_index(batch_op.f("ix_article_canonical_url"))

    op.drop_table("article")
    with op.batch_alter_table("feed", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_next_check"))
        batch_op.drop_index(batch_op.f("ix_feed_enabled"))
        batch_op.drop_index(batch_op.f("ix_feed_config_url"))

    op.drop_table("feed")
