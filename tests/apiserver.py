"""What the API tests share: a small store with known articles, and the app served live on loopback.

runtime = sample_store(tmp_path, store_url)          # config + store + SAMPLE articles
with live_server(create_app(runtime)) as base:        # uvicorn in a thread, on a free port
    httpx.get(f"{base}/api/articles")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from tests.conftest import write_config
from worker.cli.serve import base_url, listen, make_server
from worker.runtime import Runtime, open_runtime
from worker.store import feeds as feed_store
from worker.store.articles import NewArticle, store_item
from worker.store.db import session_scope
from worker.store.models import SOURCE_FEED, Delivery, Feed
from worker.timeutil import utcnow

START_TIMEOUT = 20.0
TOKEN = "s3cret-t0ken"
SECRET_FEED = "http://feeds.example/private.xml?token=feedsecret"


@dataclass(frozen=True)
class Sample:
    key: str
    feed: str
    title: str
    text: str
    age_days: float
    outlet: str


# Texts long enough for the tagger and dedup to decide as they do on real articles.
SAMPLE = (
    Sample(
        "tokayev",
        "http://feeds.example/astana.xml",
        "Tokayev opens the new Aktau seaport terminal",
        "President Kassym-Jomart Tokayev of Kazakhstan opened a container terminal in the Caspian port of "
        "Aktau on Tuesday. The terminal doubles the capacity of the port, officials in Astana said, and "
        "links Kazakhstan to Azerbaijan and Türkiye along the Middle Corridor.",
        1,
        "Astana Times",
    ),
    Sample(
        "tokayev-copy",
        "http://feeds.example/trend.xml",
        "Tokayev opens the new Aktau seaport terminal",
        "President Kassym-Jomart Tokayev of Kazakhstan opened a container terminal in the Caspian port of "
        "Aktau on Tuesday. The terminal doubles the capacity of the port, officials in Astana said, and "
        "links Kazakhstan to Azerbaijan and Türkiye along the Middle Corridor.",
        0.5,
        "Trend",
    ),
    Sample(
        "summit",
        "http://feeds.example/trend.xml",
        "Organization of Turkic States summit opens in Budapest",
        "Leaders of the Organization of Turkic States gathered in Budapest for an informal summit. The "
        "secretary general of the OTS said member states would sign a transport agreement and discuss "
        "energy links across the Caspian.",
        3,
        "Trend",
    ),
    Sample(
        "grain",
        "http://feeds.example/astana.xml",
        "Kazakhstan grain exports reach a record",
        "Kazakhstan exported a record volume of wheat last season, the agriculture ministry in Astana said. "
        "Most of the grain went to Central Asian neighbours and China by rail.",
        40,
        "Astana Times",
    ),
    Sample(
        "weather",
        SECRET_FEED,
        "Rain expected in Paris <b>all week</b>",
        "Forecasters expect rain in Paris for the whole week, with cooler temperatures and strong wind on "
        "the Atlantic coast. <script>alert(1)</script>",
        2,
        "Le Temps & Co",
    ),
)


@dataclass(frozen=True)
class SampleStore:
    runtime: Runtime
    ids: dict[str, int]  # SAMPLE key → article id
    now: datetime


def sample_store(
    directory: Path,
    store_url: str,
    *,
    token: str | None = None,
    last_success_age: float = 60.0,
) -> SampleStore:
    """A migrated store holding SAMPLE (plus the repository's seed), its feeds polled `last_success_age`
    seconds ago, and one pending and one sent alert delivery."""
    api = f'[api]\ntoken = "{token}"\n' if token else ""
    config = write_config(directory, api, database_url=store_url)
    runtime = open_runtime(config)
    now = utcnow()
    ids: dict[str, int] = {}
    with session_scope(runtime.engine) as session:
        feeds: dict[str, Feed] = {}
        for sample in SAMPLE:
            if sample.feed not in feeds:
                feeds[sample.feed] = feed_store.add_feed(session, sample.feed)
        for sample in SAMPLE:
            feed = feeds[sample.feed]
            item = NewArticle(
                source=SOURCE_FEED,
                feed_id=feed.id,
                guid=sample.key,
                url=f"https://news.example/{sample.key}",
                title=sample.title,
                text=sample.text,
                published=now - timedelta(days=sample.age_days),
                outlet=sample.outlet,
            )
            stored = store_item(session, item, runtime.index, runtime.tagger)
            assert stored.article.id is not None
            ids[sample.key] = stored.article.id
        for feed in feeds.values():
            feed.last_success = feed.last_fetch = now - timedelta(seconds=last_success_age)
            feed.polls = 3
        session.add(
            Delivery(
                article_id=ids["tokayev"],
                target_id="t1",
                target="json://hook.example/***",
                created_at=now - timedelta(minutes=10),
            )
        )
        session.add(
            Delivery(
                article_id=ids["summit"],
                target_id="t1",
                target="json://hook.example/***",
                status="sent",
                sent_at=now,
            )
        )
    return SampleStore(runtime, ids, now)


def set_last_success(runtime: Runtime, when: datetime | None) -> None:
    with session_scope(runtime.engine) as session:
        for feed in session.exec(select(Feed)):
            feed.last_success = when


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port in a thread; yields its base URL (no trailing /)."""
    sock = listen("127.0.0.1", 0)
    server = make_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the API server did not start")
        time.sleep(0.01)
    try:
        yield base_url(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
