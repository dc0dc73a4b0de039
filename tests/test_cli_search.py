"""`newswatch search`, `stats` and `show` as a user meets them: real polls of a local feed, real store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree
from sqlmodel import Session, select

from tests.conftest import write_config
from tests.feedserver import FeedServer, rss
from tests.test_cli import cli
from worker.cli.common import console
from worker.store.db import make_engine
from worker.store.models import Article, Delivery

ITEMS = [
    {
        "title": "Tokayev opens the port of Aktau",
        "guid": "a1",
        "link": "https://steppe.example/a1",
        "pubDate": "Tue, 10 Jun 2025 09:00:00 GMT",
        "description": "President Kassym-Jomart Tokayev opened the container terminal in Aktau, Kazakhstan.",
    },
    {
        "title": "Қазақстан Президенті Ақтауда",
        "guid": "a2",
        "link": "https://steppe.example/a2",
        "pubDate": "Mon, 09 Jun 2025 09:00:00 GMT",
        "description": "Қазақстан Президенті Тоқаев Ақтау портына барды.",
    },
    {
        "title": "Weather <b>report</b> [bold]markup[/bold]",
        "guid": "a3",
        "link": "https://steppe.example/a3",
        "pubDate": "Sun, 08 Jun 2025 09:00:00 GMT",
        "description": "Rain in the hills tomorrow, says the [red]forecast[/red].",
    },
]
# The first item again, through a second feed: an exact duplicate.
COPY = {**ITEMS[0], "guid": "b1", "link": "https://mirror.example/b1"}


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer) -> str:
    steppe = feed_server.set("/steppe.xml", rss("Steppe News", ITEMS))
    mirror = feed_server.set("/mirror.xml", rss("Mirror", [COPY]))
    # Two polls, so that the mirror's copy comes second and is the duplicate.
    for feeds in ([steppe], [steppe, mirror]):
        path = str(write_config(tmp_path, "".join(f'[[feeds]]\nurl = "{url}"\n' for url in feeds)))
        code, out, err = cli(capsys, "--config", path, "poll")
        assert code == 0, out + err
    return path


def found(capsys: pytest.CaptureFixture[str], config: str, *args: str) -> list[dict[str, Any]]:
    code, out, err = cli(capsys, "--config", config, "search", *args, "--format", "json")
    assert code == 0, err
    hits: list[dict[str, Any]] = json.loads(out)
    return hits


def ids(db: Path) -> dict[str, int]:
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        found = {a.guid: a.id for a in session.exec(select(Article)) if a.id is not None}
    engine.dispose()
    return found


def test_search_json_has_every_field_scripts_need(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    [hit] = found(capsys, config, "tokayev terminal")
    fields = {
        "id",
        "url",
        "title",
        "feed",
        "published",
        "source",
        "tags",
        "duplicate_of",
        "story_id",
        "snippet",
    }
    assert fields <= set(hit)
    assert hit["url"] == "https://steppe.example/a1" and hit["source"] == "feed"
    assert hit["duplicate_of"] is None and hit["story_id"]
    assert hit["feed"].endswith("/steppe.xml") and hit["published"].startswith("2025-06-10T09:00:00")
    assert {"name", "score", "evidence"} <= set(hit["tags"][0])
    assert "kazakhstan" in {t["name"] for t in hit["tags"]}
    assert "Tokayev" in hit["snippet"] and {"text": "Tokayev", "highlight": True} in hit["snippet_parts"]

    assert [h["title"] for h in found(capsys, config, "ҚАЗАҚСТАН")] == ["Қазақстан Президенті Ақтауда"]
    # The seed spells it with a Cyrillic "а".
    assert [h["source"] for h in found(capsys, config, "varkert", "--source", "seed")] == ["seed"]


def test_filters_and_duplicates(config: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stored = ids(tmp_path / "newswatch.db")
    assert [h["id"] for h in found(capsys, config, "terminal")] == [stored["a1"]]
    assert {h["id"] for h in found(capsys, config, "terminal", "--duplicates")} == {
        stored["a1"],
        stored["b1"],
    }
    [copy] = found(capsys, config, "--duplicates-of", str(stored["a1"]))
    assert copy["id"] == stored["b1"] and copy["duplicate_of"] == stored["a1"]
    hits = found(
        capsys,
        config,
        "--tag",
        "kazakhstan",
        "--source",
        "feed",
        "--since",
        "2025-06-09",
        "--until",
        "2025-06-09",
    )
    assert [h["title"] for h in hits] == ["Қазақстан Президенті Ақтауда"]
    assert len(found(capsys, config, "--outlet", "steppe news")) == 3


def test_search_mistakes_end_in_one_line(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in (
        (["search", "aktau OR -port"], "error: invalid query: NOT cannot stand inside OR"),
        (["search", '"aktau'], 'error: invalid query: a phrase is missing its closing "'),
        (["search", "--since", "last week"], "error: --since: expected a time such as 7d"),
        (["search", "--feed", "https://nowhere.example/x"], "error: no feed https://nowhere.example/x"),
        (["search", "--limit", "0"], "error: limit must be between 1 and 200"),
        (["search", "--cursor", "garbage"], "error: invalid cursor"),
        (["stats", "--since", "soon"], "error: --since: expected a time such as 7d"),
    ):
        code, out, err = cli(capsys, "--config", config, *args)
        assert code == 1 and err.startswith(message) and err.count("\n") == 1, (args, err)
        assert "Traceback" not in out + err


def test_table_pages_csv_and_atom(
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 250)  # whole lines, to look for whole titles
    code, out, err = cli(capsys, "--config", config, "search", "--limit", "2")
    assert code == 0 and "2 articles" in out and "Tokayev opens the port of Aktau" in out
    cursor = err.split("more: --cursor ")[1].strip()
    code, out, err = cli(capsys, "--config", config, "search", "--limit", "2", "--cursor", cursor)
    assert code == 0 and "Weather report [bold]markup[/bold]" in out  # printed, not interpreted
    assert "[red]forecast[/red]" in out

    code, out, _ = cli(capsys, "--config", config, "search", "aktau", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 and rows[0]["title"] == ITEMS[0]["title"]  # and the seed
    assert all(row["tags"].split(";")[0] for row in rows) and rows[0]["rank"]

    code, out, _ = cli(capsys, "--config", config, "search", "aktau", "--format", "atom")
    document = out.encode()
    parsed = feedparser.parse(document)
    assert parsed.bozo == 0 and len(parsed.entries) == 2 and parsed.feed.title == "Newswatch search: “aktau”"
    schema = etree.RelaxNG(etree.parse(str(Path(__file__).parent / "data" / "atom.rng")))
    assert schema.validate(etree.fromstring(document)), schema.error_log


def test_stats_count_tags_feeds_days_and_health(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "--config", config, "stats", "--since", "all", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["articles"] == 3 + 1 and data["duplicates"] == 1  # three items and the seed; one copy
    # The two Kazakhstan items and the seed (OTS too); not the copy.
    assert data["tags"] == [{"name": "kazakhstan", "articles": 3}, {"name": "ots", "articles": 1}]
    by_feed = {feed["title"]: (feed["articles"], feed["duplicates"]) for feed in data["feeds"]}
    assert by_feed == {"Steppe News": (3, 0), "Mirror": (0, 1), None: (1, 0)}
    days = {day["day"]: (day["articles"], day["duplicates"]) for day in data["days"]}
    assert days["2025-06-10"] == (1, 1) and days["2025-06-08"] == (1, 0) and days["2025-05-21"] == (1, 0)
    assert data["feed_health"] == {"summary": {"ok": 2}, "failing": []}
    code, out, _ = cli(capsys, "--config", config, "stats", "--since", "2025-06-09")
    assert code == 0 and "2 articles and 1 duplicates published since 2025-06-09" in out
    assert "per tag" in out and "Steppe News" in out and "feeds: 2 ok" in out


def test_show_has_the_whole_article_its_relations_and_deliveries(
    config: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stored = ids(tmp_path / "newswatch.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'newswatch.db'}")
    with Session(engine) as session:
        session.add(
            Delivery(
                article_id=stored["a1"],
                target_id="t1",
                target="json://hooks.example/***",
                status="failed",
                attempts=3,
                last_error="HTTP 500",
            )
        )
        session.commit()
    engine.dispose()
    code, out, err = cli(capsys, "--config", config, "show", str(stored["a1"]), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["text"] == ITEMS[0]["description"]
    assert [d["id"] for d in data["duplicates"]] == [stored["b1"]] and data["original"] is None
    [delivery] = data["deliveries"]
    assert delivery["target"] == "json://hooks.example/***" and delivery["status"] == "failed"
    assert delivery["attempts"] == 3 and delivery["last_error"] == "HTTP 500" and delivery["sent_at"] is None
    assert any(tag["evidence"] for tag in data["tags"])

    code, out, _ = cli(capsys, "--config", config, "show", str(stored["b1"]), "--format", "json")
    assert json.loads(out)["original"]["id"] == stored["a1"]
    code, out, _ = cli(capsys, "--config", config, "show", str(stored["a1"]))
    assert code == 0 and "duplicates:" in out and "deliveries" in out and "HTTP 500" in out
    assert ITEMS[0]["description"] in out
    code, out, _ = cli(capsys, "--config", config, "show", str(stored["b1"]))
    assert f"duplicate of #{stored['a1']}" in out
