"""When an alert goes out: pure decisions about modes, quiet hours, digests, rate limits and retries.

No I/O: the outbox asks these functions and writes what they answer. Times are aware datetimes; wall-clock
rules (quiet hours, a daily digest at 08:00) are read in the configured time zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

MODE_INSTANT = "instant"
MODE_DIGEST = "digest"

DEFAULT_RATE_LIMIT = 20  # messages per minute per target; more fold into a digest
DEFAULT_DIGEST_EVERY = 3600.0  # seconds; also how often follow-up reports ("also reported by") go out
DEFAULT_MAX_ATTEMPTS = 10
DEFAULT_RETRY_BASE = 90.0  # seconds; doubling: 10 attempts span about 25 h
RATE_WINDOW = 60.0  # seconds the rate limit counts over


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time  # may be before start: the window crosses midnight

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Policy:
    """How one target is alerted (config [alerts.policy.<apprise tag>] or [alerts.policy.default])."""

    mode: str = MODE_INSTANT
    digest_every: float = DEFAULT_DIGEST_EVERY
    digest_at: time | None = None  # a daily digest at this local time (mode digest)
    quiet_hours: QuietHours | None = None
    rate_limit: int = DEFAULT_RATE_LIMIT
    min_score: float = 0.0
    one_per_story: bool = True


def parse_clock(value: str) -> time:
    """ "08:00" → time(8, 0). Raises ValueError."""
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError) as exc:
        raise ValueError('expected a time of day such as "08:00"') from exc


def parse_quiet_hours(value: str) -> QuietHours:
    """ "22:00-07:00" → QuietHours. Raises ValueError."""
    try:
        start, end = value.split("-")
        quiet = QuietHours(parse_clock(start), parse_clock(end))
    except ValueError as exc:
        raise ValueError('expected a range of local times such as "22:00-07:00"') from exc
    if quiet.start == quiet.end:
        raise ValueError("quiet hours must not start and end at the same time")
    return quiet


def quiet_until(now: datetime, policy: Policy, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet window `now` falls in (held messages go then), or None outside one."""
    quiet = policy.quiet_hours
    if quiet is None:
        return None
    local = now.astimezone(zone)
    if not quiet.contains(local.timetz().replace(tzinfo=None)):
        return None
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(now.tzinfo)


def release_time(now: datetime, policy: Policy, zone: ZoneInfo) -> datetime:
    """When a message due `now` may go: now, or the end of the quiet hours it falls in."""
    return quiet_until(now, policy, zone) or now


def next_digest(now: datetime, policy: Policy, zone: ZoneInfo) -> datetime:
    """The next digest slot after `now`: daily at `digest_at` local time, else every `digest_every`
    (aligned to the clock, so all items of a period share one digest); then pushed past quiet hours."""
    if policy.digest_at is not None:
        local = now.astimezone(zone)
        slot = local.replace(
            hour=policy.digest_at.hour, minute=policy.digest_at.minute, second=0, microsecond=0
        )
        if slot <= local:
            slot += timedelta(days=1)
        due = slot.astimezone(now.tzinfo)
    else:
        period = max(60.0, policy.digest_every)
        epoch = now.timestamp()
        due = datetime.fromtimestamp(math.floor(epoch / period) * period + period, tz=now.tzinfo)
    return release_time(due, policy, zone)


def over_rate_limit(sent_last_window: int, policy: Policy) -> bool:
    return sent_last_window >= policy.rate_limit


def retry_delay(attempts: int, base: float = DEFAULT_RETRY_BASE) -> float:
    """Seconds before attempt `attempts + 1`: base, 2×, 4×, … (attempts counts the failures so far)."""
    return base * float(2 ** max(attempts - 1, 0))


def gives_up(attempts: int, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> bool:
    return attempts >= max_attempts
