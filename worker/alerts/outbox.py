"""The transactional outbox: delivery rows written with their article, in the same transaction (invariant 2).

Each (article, target) gets at most one row. What kind of row depends on the target's policy and on what
the target already heard:
- `instant`   pending now (or at the end of quiet hours): the deliverer sends it on its own;
- `digest`    a digest-mode target: queued until its next digest slot;
- `followup`  a later report of a story this target was already alerted to: queued for the next digest,
              where it is listed as "also reported by" — one alert per story;
- `overflow`  an instant alert over the target's rate limit: queued and folded into a digest (deliverer);
- `roundup`   a digest message itself (no article; the articles are in its payload);
- `test`      `newswatch alerts test`.
Statuses: pending (to send), queued (waiting for a digest), digested (inside a roundup), sent, failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from worker.alerts import policy as rules
from worker.alerts.channels import Target, routes
from worker.config import AlertSettings
from worker.store.models import DELIVERY_PENDING, Article, Delivery
from worker.timeutil import utcnow

KIND_INSTANT = "instant"
KIND_DIGEST = "digest"
KIND_FOLLOWUP = "followup"
KIND_OVERFLOW = "overflow"
KIND_ROUNDUP = "roundup"
KIND_TEST = "test"

STATUS_QUEUED = "queued"
STATUS_DIGESTED = "digested"
# Rows that mean "this target has been (or is being) told about the story".
_ANNOUNCING = (KIND_INSTANT, KIND_DIGEST, KIND_OVERFLOW)


@dataclass(frozen=True)
class Router:
    """Decides which targets hear about a new article, and how. Built once per process (or reload)."""

    targets: tuple[Target, ...]
    settings: AlertSettings

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def enqueue(self, session: Session, article: Article, results: Sequence[Any]) -> int:
        """Write the delivery rows of a newly stored article; returns how many."""
        if (
            not self.targets
            or not article.alertable
            or article.duplicate_of is not None
            or article.id is None
        ):
            return 0
        now = utcnow()
        written = 0
        for target in self.targets:
            chosen = self.settings.policy_for(target.tags)
            names = sorted({r.tag for r in results if float(r.score) >= chosen.min_score})
            if not names or not routes(target, names):
                continue
            kind, status, due = self._plan(session, article, target, chosen, now)
            session.add(
                Delivery(
                    article_id=article.id,
                    kind=kind,
                    target_id=target.id,
                    target=target.display,
                    tags=names,
                    status=status,
                    next_attempt=due,
                )
            )
            written += 1
        return written

    def _plan(
        self, session: Session, article: Article, target: Target, chosen: rules.Policy, now: datetime
    ) -> tuple[str, str, datetime]:
        if chosen.one_per_story and self._story_announced(session, article, target):
            return KIND_FOLLOWUP, STATUS_QUEUED, rules.next_digest(now, chosen, self.zone)
        if chosen.mode == rules.MODE_DIGEST:
            return KIND_DIGEST, STATUS_QUEUED, rules.next_digest(now, chosen, self.zone)
        return KIND_INSTANT, DELIVERY_PENDING, rules.release_time(now, chosen, self.zone)

    @staticmethod
    def _story_announced(session: Session, article: Article, target: Target) -> bool:
        if article.story_id is None:
            return False
        row = session.exec(
            select(Delivery.id)
            .join(Article, col(Article.id) == col(Delivery.article_id))
            .where(
                col(Article.story_id) == article.story_id,
                col(Article.id) != article.id,
                col(Delivery.target_id) == target.id,
                col(Delivery.kind).in_(_ANNOUNCING),
            )
            .limit(1)
        ).first()
        return row is not None
