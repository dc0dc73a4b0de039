"""Retention and maintenance on both stores: old feed articles go, seeds stay, tombstones keep them gone."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import worker.store.retention as retention_module
from tests.conftest import write_config
from tests.feedserver import FeedServer, rss
from tests.receivers import WebhookReceiver
from tests.test_cli import cli
from worker.config import RetentionSettings
from worker.store.articles import FeedTags, NewArticle, guid_key, store_items
from worker.store.db import make_engine, session_scope
from worker.store.dedup_index import DedupIndex
from worker.store.models import (
    DELIVERY_PENDING,
    DELIVERY_SENT,
    SOURCE_FEED,
    SOURCE_SEED,
    Article,
    ArticleTag,
    DedupProfile,
    DedupStoryTerm,
    Delivery,
    Feed,
    Fingerprint,
    IdentityKey,
)
from worker.store.retention import PG_MAINTENANCE_LOCK, apply_retention, run_maintenance
from worker.timeutil import utcnow

DAYS = 30
# Distinct reports: no two share enough text or names to be taken for duplicates of each other.
TEXTS = {
    "old-1": "Kazakhstan's grain board raised the wheat export quota for Kostanay farmers this autumn.",
    "old-2": "Astana's new light rail line carried its first passengers between the airport and Nurly Zhol.",
    "young": "Kazakhstan's central bank left its base rate at 15.25 percent, citing slower inflation.",
    "backlog": "Archive: the Baikonur cosmodrome lease was extended by Russia and Kazakhstan until 2050.",
    "seed": "Reference: the Organization of Turkic States adopted its charter amendments in Nakhchivan.",
}
_WORDS = ["steppe", "river", "council", "tender", "budget", "railway", "harbour", "grain", "quota", "summit"]
_WORDS += ["treaty", "pipeline", "airport", "reservoir", "ministry", "region", "province", "district"]
_WORDS += ["market", "bond", "tariff", "wheat", "copper", "uranium", "festival"]


def _item(feed_id: int | None, guid: str, body: str, url: str | None = None) -> NewArticle:
    return NewArticle(
        source=SOURCE_FEED if feed_id is not None else SOURCE_SEED,
        feed_id=feed_id,
        guid=guid,
        url=url,
        title=body.split(":")[0][:60] if ":" in body else body[:60],
        text=body,
        published=utcnow(),
        alertable=feed_id is not None,
    )


def _store(engine: Engine, items: list[NewArticle]) -> list[int]:
    with session_scope(engine) as session:
        stored = store_items(session, items, DedupIndex(), FeedTags(None, ["kazakhstan"]))
        return [s.article.id or 0 for s in stored]


def _feed(engine: Engine, url: str) -> int:
    with session_scope(engine) as session:
        feed = Feed(url=url)
        session.add(feed)
        session.flush()
        assert feed.id is not None
        return feed.id


def _age(engine: Engine, ids: list[int], days: float, *, fetched: bool = True) -> None:
    """Make articles look `days` old: by their date, and (with `fetched`) by when they were fetched."""
    when = utcnow() - timedelta(days=days)
    values = {"published": when, "fetched_at": when} if fetched else {"published": when}
    with session_scope(engine) as session:
        session.execute(update(Article).where(col(Article.id).in_(ids)).values(**values))


def _rows(engine: Engine, article_id: Any, ids: list[int]) -> int:
    """Rows whose `article_id` column (e.g. Fingerprint.article_id) names one of `ids`."""
    with Session(engine) as session:
        return int(session.exec(select(func.count()).where(col(article_id).in_(ids))).one())


def _delivery(engine: Engine, article_id: int, status: str) -> None:
    with session_scope(engine) as session:
        session.add(
            Delivery(article_id=article_id, target_id="t1", target="json://127.0.0.1/hook", status=status)
        )


def test_retention_deletes_old_feed_articles_keeps_seeds_and_leaves_tombstones(engine: Engine) -> None:
    feed_a = _feed(engine, "https://a.example/feed.xml")
    feed_b = _feed(engine, "https://b.example/feed.xml")
    [seed] = _store(engine, [_item(None, "seed-1", TEXTS["seed"])])
    old_1, old_2 = _store(
        engine,
        [
            _item(feed_a, "old-1", TEXTS["old-1"], "https://a.example/old-1"),
            _item(feed_a, "old-2", TEXTS["old-2"], "https://a.example/old-2"),
        ],
    )
    # Another outlet's copy of old-2 (the same link with tracking): stored as its exact duplicate.
    [copy] = _store(engine, [_item(feed_b, "copy", TEXTS["old-2"], "https://a.example/old-2?utm_source=x")])
    young, backlog = _store(
        engine,
        [
            _item(feed_a, "young", TEXTS["young"], "https://a.example/young"),
            _item(feed_a, "backlog", TEXTS["backlog"], "https://a.example/backlog"),
        ],
    )
    _age(engine, [seed], 400)
    _age(engine, [old_1, old_2], DAYS + 10)
    _age(engine, [backlog], 400, fetched=False)  # an old date, but fetched today: kept for now
    _delivery(engine, old_1, DELIVERY_PENDING)
    _delivery(engine, young, DELIVERY_SENT)
    gone = [old_1, old_2]
    with Session(engine) as session:
        copy_story = session.exec(select(Article.story_id).where(col(Article.id) == copy)).one()
        keys_before = session.exec(
            select(IdentityKey.kind, IdentityKey.value).where(col(IdentityKey.article_id).in_(gone))
        ).all()
        assert session.exec(select(Article.duplicate_of).where(col(Article.id) == copy)).one() == old_2
    assert {kind for kind, _ in keys_before} == {"guid", "url", "hash"}
    dependants = [m.article_id for m in (Fingerprint, DedupProfile, ArticleTag, Delivery, DedupStoryTerm)]
    assert all(_rows(engine, column, gone) for column in dependants)

    with Session(engine) as session:
        assert apply_retention(session, DAYS, utcnow()) == 2
        assert apply_retention(session, 0, utcnow()) == 0

    with Session(engine) as session:
        left = set(session.exec(select(Article.id)).all())
        assert left == {seed, copy, young, backlog}
        tombstones = session.exec(
            select(IdentityKey.kind, IdentityKey.value).where(col(IdentityKey.article_id).is_(None))
        ).all()
        assert sorted(tombstones) == sorted(keys_before)
        survivor = session.get(Article, copy)
        assert survivor is not None and survivor.duplicate_of is None and survivor.story_id == copy_story
    assert not any(_rows(engine, column, gone) for column in dependants)
    assert all(_rows(engine, column, [young]) for column in dependants[:4])  # (story terms: texts with names)

    # Polled again: the same entry, and a third outlet's copy of a deleted link, are tombstones.
    feed_c = _feed(engine, "https://c.example/feed.xml")
    again = [
        _item(feed_a, "old-1", TEXTS["old-1"], "https://a.example/old-1"),
        _item(feed_c, "elsewhere", TEXTS["old-2"] + " (syndicated)", "https://a.example/old-2"),
    ]
    with session_scope(engine) as session:
        outcomes = [s.outcome for s in store_items(session, again, DedupIndex(), None)]
        assert outcomes == ["tombstone", "tombstone"]
    with Session(engine) as session:
        assert len(session.exec(select(Article.id)).all()) == 4
        key = session.get(IdentityKey, ("guid", guid_key(feed_a, "old-1")))
        assert key is not None and key.article_id is None


def test_retention_deletes_in_batches_of_short_transactions(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = _feed(engine, "https://a.example/feed.xml")
    rng = random.Random(7)
    ids = _store(
        engine, [_item(feed, f"g{n}", " ".join(rng.choice(_WORDS) for _ in range(40))) for n in range(7)]
    )
    _age(engine, ids, DAYS + 1)
    monkeypatch.setattr(retention_module, "RETENTION_BATCH", 3)
    commits: list[int] = []
    event.listen(engine, "commit", lambda _connection: commits.append(1))
    with Session(engine) as session:
        assert apply_retention(session, DAYS, utcnow()) == 7
    assert len(commits) == 3  # 3 + 3 + 1 articles


def _fill(engine: Engine, feed: int, count: int, rng: random.Random) -> list[int]:
    """`count` articles of about 3 KB of text each, stored in batches like polls would."""
    ids: list[int] = []
    for start in range(0, count, 20):
        items = [
            _item(feed, f"bulk-{n}", " ".join(rng.choice(_WORDS) for _ in range(400)))
            for n in range(start, min(count, start + 20))
        ]
        ids += _store(engine, items)
    return ids


def test_maintenance_deletes_analyzes_and_vacuums_on_both_stores(engine: Engine) -> None:
    feed = _feed(engine, "https://a.example/feed.xml")
    ids = _fill(engine, feed, 120, random.Random(1))
    _age(engine, ids[:100], DAYS + 1)
    settings = RetentionSettings(days=DAYS)

    report = run_maintenance(engine, settings)
    assert (report.deleted, report.analyzed, report.vacuumed, report.skipped) == (100, True, True, False)
    assert report.tombstones >= 200  # a guid key and a hash key each at least
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Article)).one() == 20
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert connection.execute(text("PRAGMA freelist_count")).scalar() == 0
            assert connection.execute(text("SELECT count(*) FROM sqlite_stat1")).scalar()

    again = run_maintenance(engine, settings)
    assert (again.deleted, again.tombstones, again.analyzed, again.vacuumed) == (0, 0, True, False)
    off = run_maintenance(engine, RetentionSettings(days=0), now=utcnow() + timedelta(days=10_000))
    assert (off.deleted, off.analyzed) == (0, True)


@pytest.mark.postgres
def test_one_postgresql_worker_maintains_at_a_time_and_concurrent_runs_are_harmless(
    pg_engine: Engine,
) -> None:
    feed = _feed(pg_engine, "https://a.example/feed.xml")
    ids = _fill(pg_engine, feed, 60, random.Random(2))
    _age(pg_engine, ids, DAYS + 1)
    settings = RetentionSettings(days=DAYS)

    with pg_engine.connect() as other_worker:
        other_worker.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_MAINTENANCE_LOCK})
        skipped = run_maintenance(pg_engine, settings)
        other_worker.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MAINTENANCE_LOCK})
    assert (skipped.skipped, skipped.deleted, skipped.analyzed) == (True, 0, False)
    assert "another worker" in skipped.describe(DAYS)

    # Four workers at once: each article is deleted once, whoever runs, and nobody fails.
    start = threading.Barrier(4)
    reports: list[retention_module.MaintenanceReport] = []
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            reports.append(run_maintenance(pg_engine, settings))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(r.deleted for r in reports) == 60
    assert any(not r.skipped for r in reports)
    with Session(pg_engine) as session:
        assert session.exec(select(func.count()).select_from(Article)).one() == 0


def _kz_item(guid: str, title: str) -> dict[str, str]:
    return {
        "title": title,
        "link": f"https://steppe.example/{guid}",
        "guid": guid,
        "description": f"{title}. Reported from Astana, Kazakhstan.",
        "pubDate": format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True),
    }


def test_a_feed_polled_after_retention_never_stores_or_alerts_its_deleted_items_again(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    store_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
) -> None:
    first = [
        _kz_item("k1", "Tokayev opens a wind farm near Ereymentau"),
        _kz_item("k2", "Kazatomprom signs a uranium supply deal with a French utility"),
    ]
    url = feed_server.set("/kz.xml", rss("Steppe News", first))
    (tmp_path / "channels.yml").write_text(
        f"version: 1\nurls:\n  - json://127.0.0.1:{webhook.port}/hook:\n      tag: kazakhstan\n",
        encoding="utf-8",
    )
    config = str(
        write_config(
            tmp_path,
            '[alerts]\nchannels = "channels.yml"\ntimezone = "UTC"\n'
            "[alerts.policy.default]\nrate_limit = 100000\none_per_story = false\n"
            f'[[feeds]]\nurl = "{url}"\n',
            database_url=store_url,
        )
    )
    code, out, err = cli(capsys, "--config", config, "poll")
    assert code == 0 and "alerts: 2 sent" in out, out + err

    engine = make_engine(store_url)
    try:
        with Session(engine) as session:
            ids = [i for i in session.exec(select(Article.id).where(Article.source == SOURCE_FEED)) if i]
        _age(engine, ids, DAYS + 5)  # time passes: the two articles are now past retention
        code, out, err = cli(capsys, "--config", config, "maintain", "--retention-days", str(DAYS))
        assert code == 0 and "deleted 2 feed articles" in out, out + err

        # The feed still serves both items, and a new one: only the new one is stored and alerted.
        third = _kz_item("k3", "Almaty metro opens two stations on its second line")
        feed_server.set("/kz.xml", rss("Steppe News", [*first, third]))
        code, out, err = cli(capsys, "--config", config, "poll", "--all")
        assert code == 0 and "1 new articles" in out and "alerts: 1 sent" in out, out + err
        with Session(engine) as session:
            stored = session.exec(select(Article.guid).where(Article.source == SOURCE_FEED)).all()
            assert stored == ["k3"]
            assert session.exec(select(func.count()).select_from(Delivery)).one() == 1
    finally:
        engine.dispose()
    titles: Counter[str] = Counter()
    for request in webhook.accepted:
        payload = request.json()
        said = payload["title"] + payload["message"]
        titles.update(item["title"] for item in [*first, third] if item["title"] in said)
    assert titles == Counter(i["title"] for i in [*first, third]), titles


def test_maintain_without_retention_only_analyzes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path))
    code, out, err = cli(capsys, "--config", config, "maintain")
    assert code == 0, err
    assert "retention off" in out and "analyzed" in out
