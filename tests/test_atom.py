"""Atom output: parsed by feedparser without complaint, valid against RFC 4287's RELAX NG schema, and the
RFC's rules the schema cannot express (an entry has a link or content; the feed has an author)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from worker.atom import ATOM_NS, FeedMeta, entry_id, render_atom
from worker.store.search import SearchHit, TagHit
from worker.store.snippet import SnippetPart

SCHEMA = Path(__file__).resolve().parent / "data" / "atom.rng"
PUBLISHED = datetime(2025, 5, 21, 9, 30, tzinfo=UTC)


def hit(article_id: int, url: str | None = None, **fields: object) -> SearchHit:
    values: dict[str, object] = {
        "id": article_id,
        "url": url,
        "title": f"Article {article_id}",
        "feed": "https://kz.example/rss",
        "feed_id": 1,
        "outlet": "Kazinform",
        "author": None,
        "published": PUBLISHED - timedelta(hours=article_id),
        "updated": None,
        "source": "feed",
        "tags": (),
        "duplicate_of": None,
        "story_id": f"s{article_id}",
        "snippet": (
            SnippetPart("President ", False),
            SnippetPart("Tokayev", True),
            SnippetPart(" spoke.", False),
        ),
        "rank": None,
    }
    values.update(fields)
    return SearchHit(**values)  # type: ignore[arg-type]


HITS = [
    hit(
        1,
        "https://kz.example/news/1?a=1&b=2",
        title="Tokayev <b>opens</b> the port & the terminal",
        author="Aigerim S.",
        updated=PUBLISHED + timedelta(hours=2),
        tags=(TagHit("kazakhstan", 2.5, [{"term": "Tokayev"}]), TagHit("ots", 1.0, [])),
    ),
    hit(2, "https://tr.example/2", title="Kırgızistan ve Türkiye — «anlaşma»\x0b imzaladı"),
    hit(3, None, title="", source="seed", feed=None, snippet=(SnippetPart("Seed text\x00 here", False),)),
]
META = FeedMeta(
    title="Newswatch: kazakhstan",
    self_url="http://127.0.0.1:8080/feeds/kazakhstan.atom",
    alternate_url="http://127.0.0.1:8080/?tag=kazakhstan",
    subtitle="Articles tagged kazakhstan",
)


@pytest.fixture(scope="module")
def schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def test_feed_validates_against_the_rfc_4287_schema(schema: etree.RelaxNG) -> None:
    document = render_atom(HITS, META)
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = etree.fromstring(document)
    assert schema.validate(root), schema.error_log
    atom = {"a": ATOM_NS}
    assert root.findall("a:author/a:name", atom)[0].text == "Newswatch"
    for entry in root.findall("a:entry", atom):
        has_link = entry.find("a:link[@rel='alternate']", atom) is not None
        assert has_link or entry.find("a:content", atom) is not None  # RFC 4287 4.1.1.1
        assert entry.findtext("a:id", namespaces=atom).startswith("urn:uuid:")


def test_schema_rejects_what_the_rfc_forbids(schema: etree.RelaxNG) -> None:
    """The schema is not a rubber stamp: a feed without id or with a bad date fails."""
    good = render_atom(HITS[:1], META).decode()
    for broken in (
        good.replace("<id>", "<nid>", 1).replace("</id>", "</nid>", 1),
        good.replace("2025-05-21T11:30:00Z", "21 May 2025", 1),
        good.replace('rel="alternate" href', 'rel="alternate" hreflang="not a tag" href', 1),
    ):
        assert broken != good
        assert not schema.validate(etree.fromstring(broken.encode()))


def test_feedparser_reads_it_without_complaint() -> None:
    parsed = feedparser.parse(render_atom(HITS, META))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Newswatch: kazakhstan"
    assert parsed.feed.links[0].href == META.self_url
    first, second, seed = parsed.entries
    assert first.title == "Tokayev <b>opens</b> the port & the terminal"  # text, not markup
    assert first.link == "https://kz.example/news/1?a=1&b=2"
    assert first.summary == "President Tokayev spoke."
    assert first.author == "Aigerim S."
    assert [t.term for t in first.tags] == ["kazakhstan", "ots"]
    assert first.updated_parsed[:5] == (2025, 5, 21, 11, 30)
    assert first.published_parsed[:5] == (2025, 5, 21, 8, 30)
    assert second.title == "Kırgızistan ve Türkiye — «anlaşma» imzaladı"  # control character dropped
    assert seed.title == "(no title)" and seed.content[0].value == "Seed text here"
    assert not seed.get("links")
    assert len({first.id, second.id, seed.id}) == 3
    assert parsed.feed.updated_parsed[:5] == (2025, 5, 21, 11, 30)  # the newest entry's


def test_ids_are_stable_and_an_empty_feed_is_valid(schema: etree.RelaxNG) -> None:
    assert render_atom(HITS, META) == render_atom(HITS, META)
    assert entry_id(HITS[0]) == entry_id(hit(1, "https://kz.example/news/1?a=1&b=2"))
    assert entry_id(HITS[0]) != entry_id(HITS[1])
    empty = render_atom([], FeedMeta(title="nothing yet"))
    assert schema.validate(etree.fromstring(empty)), schema.error_log
    assert feedparser.parse(empty).bozo == 0
