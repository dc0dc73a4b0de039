"""The deliverer: claims due outbox rows, renders each for its target, sends it, and only then marks it sent.

One message per target at a time: a crash between sending and marking can repeat at most the message that
was in flight to each target (its lease expires and it is sent again), and nothing is lost. Sends run in
threads (apprise is synchronous); every database step is a short transaction of its own. Claims use leases
(and SKIP LOCKED on PostgreSQL), so several workers share the outbox without sending anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from worker import failpoints
from worker.alerts import policy as rules
from worker.alerts.channels import SendResult, Target, is_email, send
from worker.alerts.outbox import (
    KIND_OVERFLOW,
    KIND_ROUNDUP,
    STATUS_DIGESTED,
    STATUS_QUEUED,
)
from worker.alerts.render import AlertItem, Message, TagLine, Templates, render_alert, render_digest
from worker.config import AlertSettings
from worker.store.db import session_scope
from worker.store.leases import skip_locked
from worker.store.models import (
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SENT,
    Article,
    ArticleTag,
    Delivery,
)
from worker.timeutil import utcnow

log = logging.getLogger("newswatch.alerts")

EXCERPT_CHARS = 280
DIGEST_MAX_ITEMS = 100  # articles in one digest message; more go in the next one
GONE_TARGET = "target no longer in the channels file"


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    target_id: str
    attempts: int


@dataclass
class DeliverySummary:
    sent: int = 0
    failed: int = 0  # attempts that failed (the row may be retried)
    gave_up: int = 0  # rows marked failed for good
    digests: int = 0
    errors: list[str] = field(default_factory=list)


class Deliverer:
    def __init__(
        self, engine: Engine, settings: AlertSettings, targets: Sequence[Target], owner: str
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.targets = {t.id: t for t in targets}
        self.owner = owner
        self.zone = ZoneInfo(settings.timezone)
        self.templates = Templates(**{k: v for k, v in settings.templates.items()})
        self._pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="newswatch-send")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def use(self, targets: Sequence[Target], settings: AlertSettings) -> None:
        """Take the targets and policies of a reloaded config (the rest of `settings` needs a restart).

        Rows of a target no longer in the channels file then fail as GONE_TARGET, as after a restart.
        """
        self.targets = {t.id: t for t in targets}
        self.settings = settings

    # -- digests ------------------------------------------------------------------------------------------

    def build_digests(self) -> int:
        """Fold each target's due queued rows (digest items, follow-ups, overflow) into one roundup row."""
        now = utcnow()
        built = 0
        with session_scope(self.engine) as session:
            due_targets = session.exec(
                select(Delivery.target_id)
                .where(col(Delivery.status) == STATUS_QUEUED, col(Delivery.next_attempt) <= now)
                .distinct()
            ).all()
        for target_id in due_targets:
            with session_scope(self.engine) as session:
                query = (
                    select(Delivery)
                    .where(
                        col(Delivery.target_id) == target_id,
                        col(Delivery.status) == STATUS_QUEUED,
                        col(Delivery.next_attempt) <= now,
                    )
                    .order_by(col(Delivery.id))
                    .limit(DIGEST_MAX_ITEMS)
                )
                query = skip_locked(query, session)
                rows = list(session.exec(query))
                if not rows:
                    continue
                roundup = Delivery(
                    kind=KIND_ROUNDUP,
                    target_id=target_id,
                    target=rows[0].target,
                    tags=sorted({t for row in rows for t in row.tags}),
                    payload={"deliveries": [r.id for r in rows], "articles": [r.article_id for r in rows]},
                    status=DELIVERY_PENDING,
                    next_attempt=now,
                )
                session.add(roundup)
                session.flush()
                for row in rows:
                    row.status = STATUS_DIGESTED
                    row.payload = {**(row.payload or {}), "roundup": roundup.id}
                built += 1
        return built

    # -- claiming -----------------------------------------------------------------------------------------

    def due_targets(self) -> list[str]:
        """Targets with a due row and no message of theirs in flight (here or in another worker)."""
        now = utcnow()
        with session_scope(self.engine) as session:
            busy = set(
                session.exec(
                    select(Delivery.target_id).where(
                        col(Delivery.status) == DELIVERY_PENDING, col(Delivery.lease_until) > now
                    )
                ).all()
            )
            due = session.exec(
                select(Delivery.target_id)
                .where(col(Delivery.status) == DELIVERY_PENDING, col(Delivery.next_attempt) <= now)
                .distinct()
            ).all()
        return [t for t in due if t not in busy]

    def claim_next(self, target_id: str) -> tuple[Claimed, Message | None] | None:
        """Lease the target's next due row and render it, in one transaction (None: nothing due).

        Rows over the target's rate limit are folded into its next digest on the way.
        """
        now = utcnow()
        with session_scope(self.engine) as session:
            query = (
                select(Delivery)
                .where(
                    col(Delivery.target_id) == target_id,
                    col(Delivery.status) == DELIVERY_PENDING,
                    col(Delivery.next_attempt) <= now,
                    (col(Delivery.lease_until).is_(None)) | (col(Delivery.lease_until) <= now),
                )
                .order_by(col(Delivery.next_attempt), col(Delivery.id))
                .limit(1)
            )
            query = skip_locked(query, session)
            while True:
                row = session.exec(query).first()
                if row is None:
                    return None
                if row.kind == KIND_ROUNDUP or not self._over_rate(session, row):
                    break
                session.flush()  # folded into the digest: look at the next row
            row.lease_owner = self.owner
            row.lease_until = now + timedelta(seconds=self.settings.lease)
            assert row.id is not None
            claimed = Claimed(row.id, row.target_id, row.attempts)
            target = self.targets.get(target_id)
            if target is None:
                return claimed, None
            try:
                return claimed, self._render(session, row, target)
            except Exception:  # a rendering bug must not wedge the outbox: recorded on the row by deliver()
                log.exception("could not render delivery %s", row.id)
                return claimed, None

    def _over_rate(self, session: Session, row: Delivery) -> bool:
        """Over the target's rate limit: the row folds into the next digest (queued a window from now)."""
        target = self.targets.get(row.target_id)
        if target is None:
            return False
        chosen = self.settings.policy_for(target.tags)
        since = utcnow() - timedelta(seconds=rules.RATE_WINDOW)
        sent = session.exec(
            select(func.count())
            .select_from(Delivery)
            .where(
                col(Delivery.target_id) == row.target_id,
                col(Delivery.status) == DELIVERY_SENT,
                col(Delivery.sent_at) >= since,
            )
        ).one()
        if not rules.over_rate_limit(int(sent), chosen):
            return False
        row.kind = KIND_OVERFLOW
        row.status = STATUS_QUEUED
        row.next_attempt = rules.release_time(
            utcnow() + timedelta(seconds=rules.RATE_WINDOW), chosen, self.zone
        )
        return True

    # -- one delivery -------------------------------------------------------------------------------------

    def deliver_target(self, target_id: str) -> DeliverySummary:
        """Send the target's due messages one after another until none is due (runs in a worker thread)."""
        summary = DeliverySummary()
        while (next_one := self.claim_next(target_id)) is not None:
            claimed, message = next_one
            result = self.deliver(claimed, message)
            if result.ok:
                summary.sent += 1
                continue
            summary.failed += 1
            target = self.targets.get(target_id)
            summary.errors.append(f"{target.display if target else target_id}: {result.error}")
            log.warning("delivery %s failed: %s", claimed.delivery_id, result.error)
            break  # the target is failing: its other rows wait for their own retry, not this round
        return summary

    def deliver(self, claimed: Claimed, message: Message | None) -> SendResult:
        """Send a claimed, rendered message and mark the row; only a target's acceptance marks it sent."""
        target = self.targets.get(claimed.target_id)
        if target is None:
            result = SendResult(False, GONE_TARGET)
            self._mark(claimed, result, give_up=True)
            return result
        if message is None:
            result = SendResult(False, "could not render the message (see the log)")
            self._mark(claimed, result)
            return result
        failpoints.hit("deliver:claimed")
        result = send(target, message)
        failpoints.hit("deliver:sent")
        self._mark(claimed, result)
        return result

    def _render(self, session: Session, row: Delivery, target: Target) -> Message:
        fmt, limit, title_limit = target.body_format, target.body_limit, target.title_limit
        zone, email = self.settings.timezone, is_email(target)
        if row.kind == KIND_ROUNDUP:
            ids = [i for i in (row.payload or {}).get("articles", []) if i is not None]
            items = _digest_items(session, ids)
            return render_digest(items, fmt, limit, title_limit, self.templates, zone, email=email)
        assert row.article_id is not None
        item = _alert_item(session, row.article_id)
        return render_alert(item, fmt, limit, title_limit, self.templates, zone, email=email)

    def _mark(self, claimed: Claimed, result: SendResult, give_up: bool = False) -> None:
        """Record the outcome, only if the row is still ours (an expired lease may have passed it on)."""
        now = utcnow()
        attempts = claimed.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "lease_owner": None, "lease_until": None}
        if result.ok:
            values.update(status=DELIVERY_SENT, sent_at=now, last_error=None)
        elif give_up or rules.gives_up(attempts, self.settings.max_attempts):
            values.update(status=DELIVERY_FAILED, last_error=result.error)
        else:
            delay = rules.retry_delay(attempts, self.settings.retry_base)
            values.update(last_error=result.error, next_attempt=now + timedelta(seconds=delay))
        with session_scope(self.engine) as session:
            session.execute(
                update(Delivery)
                .where(col(Delivery.id) == claimed.delivery_id, col(Delivery.lease_owner) == self.owner)
                .values(**values)
            )

    # -- loops --------------------------------------------------------------------------------------------

    async def run_once(self) -> DeliverySummary:
        """Deliver everything that is due now: targets in parallel, each target's messages in order."""
        summary = DeliverySummary()
        loop = asyncio.get_running_loop()
        summary.digests += await loop.run_in_executor(self._pool, self.build_digests)
        while targets := await loop.run_in_executor(self._pool, self.due_targets):
            rounds = await asyncio.gather(
                *(loop.run_in_executor(self._pool, self.deliver_target, t) for t in targets)
            )
            for one in rounds:
                summary.sent += one.sent
                summary.failed += one.failed
                summary.errors.extend(one.errors)
            if not any(one.sent for one in rounds):
                break  # only failures: what is left waits for its retry time
        return summary

    async def run_forever(self, stop: asyncio.Event, wake: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver continuously: at once when `wake` is set (new alerts stored), else every `idle` seconds."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the store may be briefly unavailable; the next round retries
                log.exception("delivery round failed")
            wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            await asyncio.wait(waiters, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()


def release_failed(engine: Engine, delivery_id: int | None = None) -> int:
    """`alerts retry`: failed rows (or one row) become pending again, with a fresh attempt budget."""
    with session_scope(engine) as session:
        query = update(Delivery).where(col(Delivery.status) == DELIVERY_FAILED)
        if delivery_id is not None:
            query = update(Delivery).where(
                col(Delivery.id) == delivery_id, col(Delivery.status) != DELIVERY_SENT
            )
        result = session.execute(
            query.values(
                status=DELIVERY_PENDING, attempts=0, next_attempt=utcnow(), lease_owner=None, lease_until=None
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _alert_item(session: Session, article_id: int) -> AlertItem:
    article = session.get(Article, article_id)
    assert article is not None
    tags = session.exec(
        select(ArticleTag)
        .where(col(ArticleTag.article_id) == article_id)
        .order_by(col(ArticleTag.score).desc())
    ).all()
    lines = tuple(
        TagLine(
            t.tag, t.score, tuple(dict.fromkeys(str(e.get("matched") or e.get("term")) for e in t.evidence))
        )
        for t in tags
    )
    excerpt = (
        article.text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "…"
        if len(article.text) > EXCERPT_CHARS
        else article.text
    )
    return AlertItem(
        article_id=article_id,
        title=article.title,
        outlet=article.outlet,
        url=article.url,
        published=article.published,
        tags=lines,
        excerpt=excerpt,
    )


def _digest_items(session: Session, article_ids: Sequence[int]) -> list[AlertItem]:
    """One item per story, headed by the story's first article (even if an earlier alert already carried
    it); the other articles of the digest in that story are listed as "also reported by"."""
    articles = {a.id: a for a in session.exec(select(Article).where(col(Article.id).in_(article_ids)))}
    by_story: dict[str | None, list[Article]] = defaultdict(list)
    for article_id in article_ids:
        article = articles.get(article_id)
        if article is not None:
            by_story[article.story_id].append(article)
    items = []
    for story_id, group in by_story.items():
        heads = [_story_head(session, story_id)] if story_id is not None else []
        for head in heads or group:
            assert head.id is not None
            also = tuple((a.outlet or "", a.title, a.url) for a in group if a.id != head.id) if heads else ()
            item = _alert_item(session, head.id)
            items.append(replace(item, also_reported_by=also))
    return items


def _story_head(session: Session, story_id: str) -> Article:
    head = session.exec(
        select(Article)
        .where(col(Article.story_id) == story_id, col(Article.duplicate_of).is_(None))
        .order_by(col(Article.published), col(Article.id))
        .limit(1)
    ).first()
    assert head is not None
    return head
