"""When to look at a feed again: pure decisions, no I/O (reader's Decider is the model).

Given what one poll saw, `decide` says the feed's next state: when to check next, how many errors in a row,
whether to disable it, where it moved. The pipeline applies the decision in the same transaction as the
feed's items.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.ingest.fetch import FetchResult

# Server hints (RSS <ttl>, Cache-Control, Expires, Retry-After) may delay a check, but never by more.
MAX_HINT_DELAY = 24 * 3600.0


@dataclass(frozen=True)
class SchedulePolicy:
    interval: float  # seconds between checks of a healthy feed
    min_interval: float  # no check sooner than this, whatever happened
    max_backoff: float  # cap of the exponential backoff of a failing feed
    jitter: float  # fraction of the delay, drawn at random both ways, so feeds spread out over time


@dataclass(frozen=True)
class PollDecision:
    next_check: datetime
    error_count: int
    last_error: str | None
    disable_reason: str | None = None  # set when the feed must stop being polled (410 Gone)
    moved_to: str | None = None  # the feed's new URL after a permanent redirect


def _jittered(seconds: float, policy: SchedulePolicy, rng: random.Random) -> float:
    spread = seconds * policy.jitter
    return max(policy.min_interval, seconds + rng.uniform(-spread, spread))


def backoff_delay(error_count: int, policy: SchedulePolicy) -> float:
    """Exponential: interval, 2×, 4×, … capped at max_backoff (never "give up after N")."""
    exponent = min(max(error_count - 1, 0), 30)
    return float(min(policy.interval * (2**exponent), policy.max_backoff))


def success_delay(policy: SchedulePolicy, ttl_seconds: float | None, fresh_for: float | None) -> float:
    """The interval, raised (never lowered) by the feed's own hints, each capped at a day."""
    hints = [min(h, MAX_HINT_DELAY) for h in (ttl_seconds, fresh_for) if h is not None and h > 0]
    return max([policy.interval, *hints])


def decide(
    now: datetime,
    result: FetchResult,
    previous_errors: int,
    policy: SchedulePolicy,
    rng: random.Random,
    *,
    interval: float | None = None,
    ttl_seconds: float | None = None,
    parse_error: str | None = None,
) -> PollDecision:
    """The feed's next state after one poll. `interval` overrides the policy's for this feed."""
    if interval is not None:
        policy = SchedulePolicy(interval, policy.min_interval, policy.max_backoff, policy.jitter)
    if result.gone:
        message = result.error or "HTTP 410 Gone: the feed was removed by its publisher"
        return PollDecision(now, previous_errors + 1, message, disable_reason=message)

    error = result.error or parse_error
    if error is not None:
        errors = previous_errors + 1
        delay = backoff_delay(errors, policy)
        if result.retry_after is not None:
            delay = max(delay, min(result.retry_after, MAX_HINT_DELAY))
        return PollDecision(
            now + timedelta(seconds=_jittered(delay, policy, rng)),
            errors,
            error,
            moved_to=result.permanent_url,
        )

    delay = success_delay(policy, ttl_seconds, result.fresh_for)
    return PollDecision(
        now + timedelta(seconds=_jittered(delay, policy, rng)), 0, None, moved_to=result.permanent_url
    )
