"""The pure scheduling decisions: backoff, server hints, Retry-After, 410, moves."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from worker.ingest.fetch import FetchResult
from worker.ingest.schedule import PollDecision, SchedulePolicy, backoff_delay, decide

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = SchedulePolicy(interval=1800, min_interval=60, max_backoff=86400, jitter=0.0)
OK = FetchResult(url="https://x/f", final_url="https://x/f", status=200, body=b"<rss/>")


def _decide(
    result: FetchResult, errors: int = 0, ttl_seconds: float | None = None, parse_error: str | None = None
) -> PollDecision:
    return decide(
        NOW, result, errors, POLICY, random.Random(1), ttl_seconds=ttl_seconds, parse_error=parse_error
    )


def test_success_uses_the_interval_and_clears_errors() -> None:
    d = _decide(OK, errors=3)
    assert d.next_check == NOW + timedelta(seconds=1800)
    assert d.error_count == 0 and d.last_error is None


def test_hints_only_raise_the_delay_and_are_capped_at_a_day() -> None:
    assert _decide(OK, ttl_seconds=3600).next_check == NOW + timedelta(hours=1)
    assert _decide(OK, ttl_seconds=60).next_check == NOW + timedelta(minutes=30)
    fresh = FetchResult(url="u", final_url="u", status=200, body=b"x", fresh_for=10 * 86400)
    assert _decide(fresh).next_check == NOW + timedelta(days=1)


def test_failures_back_off_exponentially_and_never_give_up() -> None:
    assert [backoff_delay(n, POLICY) for n in (1, 2, 3, 4)] == [1800, 3600, 7200, 14400]
    assert backoff_delay(50, POLICY) == 86400
    failed = FetchResult(url="u", final_url="u", status=500, error="HTTP 500 Internal Server Error")
    d = _decide(failed, errors=2)
    assert d.error_count == 3 and d.last_error == "HTTP 500 Internal Server Error"
    assert d.next_check == NOW + timedelta(seconds=7200)
    assert d.disable_reason is None


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    limited = FetchResult(url="u", final_url="u", status=429, error="HTTP 429", retry_after=5 * 3600)
    assert _decide(limited).next_check == NOW + timedelta(hours=5)


def test_gone_disables_and_moves_are_reported() -> None:
    gone = FetchResult(url="u", final_url="u", status=410, gone=True, error="HTTP 410 Gone")
    assert _decide(gone).disable_reason == "HTTP 410 Gone"
    moved = FetchResult(
        url="u", final_url="https://new/f", status=200, body=b"x", permanent_url="https://new/f"
    )
    assert _decide(moved).moved_to == "https://new/f"


def test_parse_errors_count_as_failures() -> None:
    d = _decide(OK, parse_error="not a feed: got an HTML page")
    assert d.error_count == 1 and d.last_error == "not a feed: got an HTML page"


def test_jitter_spreads_within_bounds() -> None:
    policy = SchedulePolicy(interval=1000, min_interval=60, max_backoff=86400, jitter=0.1)
    rng = random.Random(7)
    delays = {(decide(NOW, OK, 0, policy, rng).next_check - NOW).total_seconds() for _ in range(50)}
    assert len(delays) > 40 and min(delays) >= 900 and max(delays) <= 1100
