"""Prometheus metrics, computed from the database on each scrape.

The database is the only state that every worker shares (any number of `newswatch run` processes may
write to it), so a scrape reads a few aggregate queries instead of counters kept in one process's memory.
Each query reads an index or the small feed table, so a scrape stays cheap on a large store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from worker.store.models import (
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SENT,
    SOURCE_FEED,
    SOURCE_SEED,
    Article,
    Delivery,
    Feed,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Literal["counter", "gauge"]
    help: str
    # (labels, value) pairs; one pair without labels for a plain metric.
    samples: tuple[tuple[tuple[tuple[str, str], ...], float], ...]


def _plain(name: str, kind: Literal["counter", "gauge"], help: str, value: float) -> Metric:
    return Metric(name, kind, help, (((), value),))


def _by(name: str, label: str, help: str, values: dict[str, int]) -> Metric:
    return Metric(name, "gauge", help, tuple((((label, k),), float(v)) for k, v in sorted(values.items())))


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def collect(session: Session, now: datetime) -> list[Metric]:
    """Every metric, from five aggregate queries."""
    enabled = col(Feed.enabled)
    failing = and_(enabled, col(Feed.error_count) > 0)
    feeds = sa.select(
        func.coalesce(func.sum(Feed.polls), 0),
        func.coalesce(func.sum(case((enabled, Feed.error_count), else_=0)), 0),
        func.coalesce(func.sum(case((enabled, 1), else_=0)), 0),
        func.coalesce(func.sum(case((failing, 1), else_=0)), 0),
        func.max(Feed.last_success),
    )
    polls, errors, enabled_feeds, failing_feeds, last_success = session.connection().execute(feeds).one()
    articles = {SOURCE_FEED: 0, SOURCE_SEED: 0}
    articles.update(session.exec(select(Article.source, func.count()).group_by(col(Article.source))).all())
    duplicates = session.exec(select(func.count()).where(col(Article.duplicate_of).is_not(None))).one()
    alerts = {DELIVERY_PENDING: 0, DELIVERY_SENT: 0, DELIVERY_FAILED: 0}
    alerts.update(session.exec(select(Delivery.status, func.count()).group_by(col(Delivery.status))).all())
    oldest_pending = session.exec(
        select(func.min(Delivery.created_at)).where(Delivery.status == DELIVERY_PENDING)
    ).one()
    return [
        _plain("newswatch_polls_total", "counter", "Feed polls done, over all feeds.", float(polls)),
        _plain("newswatch_feeds", "gauge", "Enabled feeds.", float(enabled_feeds)),
        _plain(
            "newswatch_feeds_failing",
            "gauge",
            "Enabled feeds whose last poll failed (fetch or parse error).",
            float(failing_feeds),
        ),
        _plain(
            "newswatch_fetch_errors",
            "gauge",
            "Consecutive failed polls, summed over enabled feeds (a success resets a feed's count).",
            float(errors),
        ),
        _plain(
            "newswatch_last_success_age_seconds",
            "gauge",
            "Seconds since the most recent successful poll of any feed (0 before the first).",
            _age(now, last_success),
        ),
        _by("newswatch_articles", "source", "Articles stored, by source (feed or seed).", articles),
        _plain(
            "newswatch_duplicates",
            "gauge",
            "Stored articles that duplicate an earlier one.",
            float(duplicates),
        ),
        _by("newswatch_alerts", "status", "Alert deliveries in the outbox, by status.", alerts),
        _plain(
            "newswatch_outbox_depth",
            "gauge",
            "Alert deliveries not sent yet (due, retrying, or queued for a digest).",
            float(alerts[DELIVERY_PENDING]),
        ),
        _plain(
            "newswatch_outbox_oldest_age_seconds",
            "gauge",
            "Age of the oldest pending alert delivery (0 when none is pending).",
            _age(now, oldest_pending),
        ),
    ]


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _labels(labels: Sequence[tuple[str, str]]) -> str:
    if not labels:
        return ""
    escaped = ((k, v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')) for k, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"


def render(metrics: Iterable[Metric]) -> str:
    """The Prometheus text exposition format, version 0.0.4."""
    lines: list[str] = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        lines.extend(f"{metric.name}{_labels(labels)} {_number(value)}" for labels, value in metric.samples)
    return "\n".join(lines) + "\n"
