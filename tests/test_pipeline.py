"""One poll end to end on real parts: loopback feed server, real fetcher, parser and store (both kinds)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from tests.conftest import write_config
from tests.feedserver import FeedServer, rss
from worker.ingest.fetch import Fetcher
from worker.ingest.pipeline import PollSummary
from worker.runtime import Runtime, open_runtime
from worker.store import feeds as feed_store
from worker.store.db import session_scope
from worker.store.models import Article, Feed, IdentityKey
from worker.timeutil import utcnow


def _runtime(tmp_path: Path, store_url: str, http: str = "timeout = 5") -> Runtime:
    return open_runtime(write_config(tmp_path, database_url=store_url, http=http))


def _poll(runtime: Runtime, every: bool = True) -> PollSummary:
    pipeline = runtime.pipeline()

    async def one_pass() -> PollSummary:
        async with Fetcher(runtime.settings.http) as fetcher:
            return await pipeline.run_pass(fetcher)

    try:
        if every:
            pipeline.make_due()
        return asyncio.run(one_pass())
    finally:
        pipeline.close()


def _add(runtime: Runtime, *urls: str) -> None:
    with session_scope(runtime.engine) as session:
        for url in urls:
            feed_store.add_feed(session, url)


def _feed(runtime: Runtime, url: str) -> Feed:
    with session_scope(runtime.engine) as session:
        feed = session.exec(select(Feed).where(col(Feed.url) == url)).first()
        assert feed is not None
        return feed


def _articles(runtime: Runtime) -> list[Article]:
    with session_scope(runtime.engine) as session:
        return list(session.exec(select(Article).where(Article.source == "feed").order_by(col(Article.id))))


def _items(n: int, start: int = 0, hours_ago: int = 1) -> list[dict[str, str]]:
    when = format_datetime(utcnow() - timedelta(hours=hours_ago), usegmt=True)
    return [
        {
            "title": f"Story number {i} about the steppe railway",
            "link": f"https://news.example/story/{i}",
            "guid": f"story-{i}",
            "description": f"Story {i}: the railway between two towns opened its {i}th station today.",
            "pubDate": when,
        }
        for i in range(start, start + n)
    ]


def test_poll_stores_every_item_once_and_repoll_is_conditional(
    tmp_path: Path, store_url: str, feed_server: FeedServer
) -> None:
    runtime = _runtime(tmp_path, store_url)
    url = feed_server.set("/news.xml", rss("News", _items(5)))
    _add(runtime, url)

    first = _poll(runtime)
    assert (first.feeds, first.new, first.errors) == (1, 5, 0)
    assert len(_articles(runtime)) == 5

    second = _poll(runtime)
    assert (second.new, second.unchanged) == (0, 1)
    assert feed_server.requests("/news.xml")[-1].headers.get("If-None-Match")
    assert len(_articles(runtime)) == 5

    items = _items(6)
    items[0]["description"] = "Body of story 0, corrected: the railway opened its first station yesterday."
    feed_server.set("/news.xml", rss("News", items))
    third = _poll(runtime)
    assert (third.new, third.updated) == (1, 1)
    stored = _articles(runtime)
    assert len(stored) == 6
    assert "corrected" in stored[0].text and stored[0].changed_at is not None

    feed = _feed(runtime, url)
    assert (feed.error_count, feed.last_error, feed.http_status, feed.polls) == (0, None, 200, 3)
    assert feed.title == "News" and feed.etag
    with session_scope(runtime.engine) as session:
        keys = session.exec(
            select(func.count())
            .select_from(IdentityKey)
            .where(IdentityKey.kind == "guid", col(IdentityKey.value).notlike("seed:%"))
        ).one()
    assert keys == 6


def test_same_body_without_validators_is_not_parsed_again(tmp_path: Path, feed_server: FeedServer) -> None:
    runtime = _runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    url = feed_server.set(
        "/plain.xml", rss("Plain", _items(2)), headers={"ETag": None, "Last-Modified": None}
    )
    _add(runtime, url)
    assert _poll(runtime).new == 2
    again = _poll(runtime)
    assert (again.unchanged, again.new, again.updated) == (1, 0, 0)


BROKEN = {
    "/slow-drip": "timed out",
    "/endless": "larger than",
    "/gzip-bomb": "larger than",
    "/redirect-loop": "redirect",
    "/server-error": "HTTP 500",
    "/empty": "empty",
    "/html": "HTML",
    "/hang-up": "",
}


def test_misbehaving_servers_are_recorded_on_their_feeds_and_the_pass_goes_on(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # Small limits keep the test quick; the production defaults are exercised in test_fetch.
    runtime = _runtime(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", "timeout = 2\nmax_body_bytes = 8388608"
    )
    good = feed_server.set("/good.xml", rss("Good", _items(3)))
    _add(runtime, good, *(feed_server.url(path) for path in BROKEN))
    _add(runtime, feed_server.url("/wrong-charset"), feed_server.url("/huge-title"))

    summary = _poll(runtime)

    assert summary.feeds == len(BROKEN) + 3
    assert summary.errors == len(BROKEN)
    for path, expected in BROKEN.items():
        feed = _feed(runtime, feed_server.url(path))
        assert feed.error_count == 1 and feed.last_error, path
        assert expected in feed.last_error, (path, feed.last_error)
        assert feed.enabled and feed.next_check > utcnow() + timedelta(minutes=20), path
    assert _feed(runtime, good).error_count == 0
    titles = {a.title for a in _articles(runtime)}
    assert "Астанадағы жиын" in titles  # declared windows-1251, really UTF-8: still read right
    huge = _feed(runtime, feed_server.url("/huge-title"))
    assert huge.error_count == 0 and huge.title is not None and len(huge.title) <= 1000


def test_gone_disables_rate_limit_waits_and_permanent_moves_update_the_url(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    runtime = _runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    feed_server.set("/new-home.xml", rss("Moved", _items(2)))
    feed_server.behave("/old-home.xml", "redirect", to="/new-home.xml", statuses=(301, 308))
    _add(
        runtime, feed_server.url("/gone"), feed_server.url("/rate-limited"), feed_server.url("/old-home.xml")
    )

    _poll(runtime)

    gone = _feed(runtime, feed_server.url("/gone"))
    assert not gone.enabled and "410" in (gone.disabled_reason or "")
    limited = _feed(runtime, feed_server.url("/rate-limited"))
    assert limited.error_count == 1 and limited.next_check >= utcnow() + timedelta(minutes=29)
    moved = _feed(runtime, feed_server.url("/new-home.xml"))
    assert moved.error_count == 0 and len(_articles(runtime)) == 2

    _poll(runtime)
    assert feed_server.hits("/gone") == 1  # a disabled feed is not polled again
    assert feed_server.hits("/old-home.xml") == 1  # the new URL is polled directly


def test_first_poll_alerts_nothing_older_than_the_age_limit(tmp_path: Path, feed_server: FeedServer) -> None:
    runtime = _runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    items = _items(2, hours_ago=72) + _items(1, start=2, hours_ago=1)
    url = feed_server.set("/backlog.xml", rss("Backlog", items))
    _add(runtime, url)
    _poll(runtime)
    alertable = {a.guid: a.alertable for a in _articles(runtime)}
    assert alertable == {"story-0": False, "story-1": False, "story-2": True}


def test_an_item_carried_by_two_feeds_is_one_article_and_one_exact_duplicate(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    runtime = _runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    item = _items(1)
    a = feed_server.set("/a.xml", rss("Outlet A", item))
    tracked = [dict(item[0], link=item[0]["link"] + "?utm_source=rss&fbclid=x", guid="other-guid")]
    b = feed_server.set("/b.xml", rss("Outlet B", tracked))
    _add(runtime, a)
    _poll(runtime)
    _add(runtime, b)
    summary = _poll(runtime)
    assert summary.duplicates == 1
    first, second = _articles(runtime)
    assert second.duplicate_of == first.id and second.dup_method == "url"
    assert second.story_id == first.story_id and not second.alertable


@pytest.mark.parametrize("path", ["/feed.xml"])
def test_feed_health_listing(tmp_path: Path, feed_server: FeedServer, path: str) -> None:
    runtime = _runtime(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    _add(runtime, feed_server.url(path), feed_server.url("/server-error"))
    _poll(runtime)
    with session_scope(runtime.engine) as session:
        rows = {row.url: row.as_json() for row in feed_store.health(session)}
    ok = rows[feed_server.url(path)]
    bad = rows[feed_server.url("/server-error")]
    assert ok["status"] == "ok" and ok["articles"] == 2 and ok["http_status"] == 200
    assert bad["status"] == "error" and bad["error_count"] == 1 and "500" in bad["last_error"]
    assert set(ok) >= {
        "url",
        "title",
        "status",
        "http_status",
        "articles",
        "error_count",
        "last_error",
        "last_fetch",
        "next_check",
    }
