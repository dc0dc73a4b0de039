"""Search on both stores (conftest's `store_url`): the same corpus, queries and answers on each.

Articles enter through `store_items` with the real tagger and dedup index, as the pipeline stores them, so
the index is kept in sync by what the migration installed (triggers on SQLite, a generated column on
PostgreSQL), not by anything the tests do.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from worker.analysis.tagging import Tagger
from worker.analysis.text import fold
from worker.ingest.seeds import read_seed
from worker.redact import redact_url
from worker.store import search as search_module
from worker.store.articles import NewArticle, store_items
from worker.store.db import session_scope
from worker.store.dedup_index import DedupIndex
from worker.store.fts import SQLITE_WINDOW_INDEX
from worker.store.models import SOURCE_FEED, Article, ArticleTag, Feed
from worker.store.search import SearchFilters, SearchPage, parse_since, parse_until, search
from worker.store.search_syntax import tokens
from worker.tagrules import DEFAULT_RULES_PATH, load_rules

SEED_FILE = sorted((Path(__file__).resolve().parents[1] / "seeds").glob("*.txt"))[0]
DAY = datetime(2025, 6, 10, 12, tzinfo=UTC)
KZ_FEED = "https://kz.example/rss?token=s3cret"

# name: (feed, title, text, days before DAY); our own texts.
ARTICLES = {
    "port": (
        "kz",
        "Tokayev opens the port of Aktau",
        "President Kassym-Jomart Tokayev opened the new container terminal in Aktau on the Caspian Sea. "
        "The port will ship grain to Türkiye.",
        1,
    ),
    "kazakh": (
        "kz",
        "Қазақстан Президенті Ақтауда",
        "Қазақстан Президенті Қасым-Жомарт Тоқаев Ақтау портына барды.",
        2,
    ),
    "turkish": (
        "tr",
        "Kırgızistan ve Türkiye anlaşma imzaladı",
        "Türkiye ile Kırgızistan arasında yeni bir ticaret anlaşması imzalandı.",
        3,
    ),
    "weather": (
        "kz",
        "Weather in Astana",
        "Rain and wind in Astana tomorrow; the visa office closes early.",
        4,
    ),
    "lookalike": (
        "tr",
        "Summit at the Vаrkert Bazaar",
        "Leaders met in Budapest on Wednesday.",
        5,
    ),  # Cyrillic а
    "tokaev": ("kz", "Delegation received", "Tokaev met the delegation of engineers in the capital.", 6),
    "shipping": (
        "tr",
        "Caspian shipping news",
        "Ships sailed from Baku to many ports across the sea; one of the ships later reached Aktau.",
        7,
    ),
}


@dataclass
class Corpus:
    engine: Engine
    ids: dict[str, int]
    feeds: dict[str, int]
    tagger: Tagger
    index: DedupIndex

    def find(self, query: str | None = None, limit: int = 50, **filters: object) -> list[str]:
        """The names of the hits, best first."""
        with Session(self.engine) as session:
            page = search(session, SearchFilters(query=query, **filters), limit=limit)  # type: ignore[arg-type]
        names = {article_id: name for name, article_id in self.ids.items()}
        return [names[hit.id] for hit in page.hits]

    def page(self, filters: SearchFilters, limit: int = 50, cursor: str | None = None) -> SearchPage:
        with Session(self.engine) as session:
            return search(session, filters, limit=limit, cursor=cursor)

    def store(self, name: str, feed: str, title: str, body: str, published: datetime) -> int:
        item = NewArticle(
            source=SOURCE_FEED,
            feed_id=self.feeds[feed],
            guid=name,
            url=f"https://{feed}.example/{name}",
            title=title,
            text=body,
            published=published,
            outlet="Kazinform" if feed == "kz" else "Anadolu Ajansı",
        )
        with session_scope(self.engine) as session:
            [stored] = store_items(session, [item], self.index, self.tagger)
            assert stored.article.id is not None
            return stored.article.id


@pytest.fixture
def corpus(engine: Engine) -> Corpus:
    with session_scope(engine) as session:
        feeds = {"kz": Feed(url=KZ_FEED, title="Kazinform"), "tr": Feed(url="https://tr.example/rss")}
        session.add_all(feeds.values())
        session.flush()
        feed_ids = {name: row.id for name, row in feeds.items() if row.id is not None}
    corpus = Corpus(engine, {}, feed_ids, Tagger(load_rules(DEFAULT_RULES_PATH)), DedupIndex())
    for name, (feed, title, body, days) in ARTICLES.items():
        corpus.ids[name] = corpus.store(name, feed, title, body, DAY - timedelta(days=days))
    # The same report through the other feed: an exact duplicate of "port".
    port = ARTICLES["port"]
    corpus.ids["port-copy"] = corpus.store("port-copy", "tr", port[1], port[2], DAY - timedelta(hours=12))
    with session_scope(engine) as session:
        [stored] = store_items(session, [read_seed(SEED_FILE).item()], corpus.index, corpus.tagger)
        assert stored.article.id is not None
        corpus.ids["seed"] = stored.article.id
    return corpus


def test_words_phrases_operators_and_prefixes(corpus: Corpus) -> None:
    assert set(corpus.find("tokayev aktau")) == {"port", "seed"}
    assert set(corpus.find("Tokayev AND Aktau")) == {"port", "seed"}
    assert set(corpus.find("tokayev OR tokaev")) == {"port", "tokaev", "seed"}
    assert corpus.find('"caspian sea"') == ["port"]
    assert corpus.find('"sea caspian"') == []
    assert corpus.find("container terminal") == ["port"]
    assert corpus.find("termin*") == ["port"]
    assert corpus.find('"container termin"*') == ["port"]
    assert corpus.find("(terminal OR visa) -grain") == ["weather"]
    assert corpus.find("astana NOT visa") == ["seed"]
    assert corpus.find("astana -visa -summit") == []


def test_query_and_text_are_folded_alike(corpus: Corpus) -> None:
    for query in ("Қазақстан", "ҚАЗАҚСТАН", "қазақстан"):
        assert corpus.find(query) == ["kazakh"], query
    assert set(corpus.find("turkiye")) == set(corpus.find("Türkiye")) == {"port", "turkish"}
    assert corpus.find("Kirgizistan") == corpus.find("Kırgızistan") == ["turkish"]
    # The seed's text spells it with a Cyrillic "а" (repaired on storage); this title still does (raw).
    assert set(corpus.find("Varkert")) == set(corpus.find("Vаrkert")) == {"seed", "lookalike"}
    assert "tokaev" not in corpus.find("Tokayev")  # different spellings are different words


def test_title_words_rank_above_a_passing_mention(corpus: Corpus) -> None:
    assert corpus.find("aktau")[:1] == ["port"]
    assert corpus.find("aktau").index("port") < corpus.find("aktau").index("shipping")
    page = corpus.page(SearchFilters(query="aktau"))
    ranks = [hit.rank for hit in page.hits]
    assert all(rank is not None for rank in ranks) and ranks == sorted(ranks, reverse=True)  # type: ignore[type-var]


def test_filters(corpus: Corpus) -> None:
    with Session(corpus.engine) as session:
        tagged = {
            tag: {row.article_id for row in session.exec(select(ArticleTag).where(ArticleTag.tag == tag))}
            for tag in ("kazakhstan", "ots")
        }
    names = {article_id: name for name, article_id in corpus.ids.items()}
    originals = set(corpus.ids) - {"port-copy"}
    assert "port" in {names[i] for i in tagged["kazakhstan"]}
    assert set(corpus.find(tags=("kazakhstan",))) == {names[i] for i in tagged["kazakhstan"]} & originals
    both = {names[i] for i in tagged["kazakhstan"] & tagged["ots"]} & originals
    assert both and set(corpus.find(tags=("kazakhstan", "ots"))) == both
    assert corpus.find("aktau", tags=("no-such-tag",)) == []

    kz = {"port", "kazakh", "weather", "tokaev"}
    assert set(corpus.find(feed=str(corpus.feeds["kz"]))) == set(corpus.find(feed=KZ_FEED)) == kz
    with pytest.raises(ValueError, match=r"no feed https://nowhere\.example/rss"):
        corpus.find(feed="https://nowhere.example/rss")
    assert set(corpus.find(outlet="anadolu ajansi")) == {"turkish", "lookalike", "shipping"}
    assert corpus.find("aktau", outlet="Kazinform") == ["port"]

    assert corpus.find(source="seed") == ["seed"]
    assert "seed" not in corpus.find(source="feed") and len(corpus.find(source="feed")) == len(ARTICLES)
    with pytest.raises(ValueError, match="source must be feed or seed"):
        corpus.find(source="rss")

    assert corpus.find(since=DAY - timedelta(days=3, hours=1), until=DAY - timedelta(days=1, hours=1)) == [
        "kazakh",
        "turkish",
    ]

    assert "port-copy" not in corpus.find("terminal")
    assert set(corpus.find("terminal", include_duplicates=True)) == {"port", "port-copy"}
    assert corpus.find(duplicates_of=corpus.ids["port"]) == ["port-copy"]

    with session_scope(corpus.engine) as session:
        for name in ("weather", "tokaev"):
            article = session.get(Article, corpus.ids[name])
            assert article is not None
            article.story_id = "s-test-story"
    assert corpus.find(story_id="s-test-story") == ["weather", "tokaev"]


def test_plans_for_rare_and_common_tags_agree(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite reads a rare tag's articles first, else probes each row's tags: the same answers either way."""
    cases: list[dict[str, Any]] = [
        {"tags": ("kazakhstan",)},
        {"tags": ("kazakhstan", "ots")},
        {"tags": ("ots",), "source": "seed"},
    ]
    read_first = [corpus.find(**case) for case in cases]  # every tag of this small corpus is rare
    monkeypatch.setattr(search_module, "DRIVER_ROWS", 0)
    assert [corpus.find(**case) for case in cases] == read_first
    assert all(read_first)


def test_title_matches_first_then_newest(corpus: Corpus) -> None:
    assert set(corpus.find("caspian")) == {"port", "shipping"}
    assert corpus.find("caspian")[0] == "shipping"  # "Caspian shipping news"; "port" has it in its text only
    hits = corpus.page(SearchFilters(query="astana OR aktau OR the")).hits
    assert len(hits) >= 5
    for earlier, later in itertools.pairwise(hits):
        assert earlier.rank is not None and later.rank is not None and earlier.rank >= later.rank
        if earlier.rank == later.rank:
            assert earlier.id > later.id  # equal ranks: newest first


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # SQLite's ranking only
def test_title_checks_in_python_and_by_the_index_agree(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite matches the titles of a few hits in Python, of many by FTS5: the same ranks either way."""
    queries = [
        "aktau", "tokayev OR delegation", '"caspian shipping"', "aktau -port", "ship*", "Қазақстан",
        "kirgizistan", "Varkert", "summit (bazaar OR budapest)", "the OR in OR aktau",
    ]  # fmt: skip
    cases = [SearchFilters(query=q) for q in queries] + [SearchFilters(query="aktau", outlet="kazinform")]

    def ranked() -> list[list[tuple[int, float | None]]]:
        return [[(hit.id, hit.rank) for hit in corpus.page(case).hits] for case in cases]

    in_python = ranked()
    ranks = {rank for hits in in_python for _, rank in hits}
    assert ranks == {search_module.TITLE_RANK, search_module.TEXT_RANK}
    monkeypatch.setattr(search_module, "TITLE_CHECK_ROWS", 0)
    assert ranked() == in_python


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # SQLite's window index only
def test_the_usual_window_joins_through_its_index(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without article filters but "not a duplicate", SQLite's window reads duplicate_of from its narrow
    index (INDEXED BY: SQLite fails the query if it cannot), with the same hits as through the rows."""
    usual = [
        SearchFilters(query=q) for q in ("aktau", "tokayev OR delegation", '"caspian shipping"', "ship*")
    ]
    usual.append(SearchFilters(query="aktau", tags=("kazakhstan",)))
    assert all(SQLITE_WINDOW_INDEX in search_module._window_index(case) for case in usual)
    for other in ({"since": DAY}, {"feed": KZ_FEED}, {"include_duplicates": True}, {"story_id": "s"}):
        assert search_module._window_index(SearchFilters(query="aktau", **other)) == ""

    def pages() -> list[list[int]]:
        return [[hit.id for hit in corpus.page(case).hits] for case in usual]

    through_index = pages()
    assert all(through_index) and corpus.ids["port-copy"] not in through_index[0]
    monkeypatch.setattr(search_module, "_window_index", lambda _filters: "")
    assert pages() == through_index


def test_ranked_filters_agree_with_the_listing(corpus: Corpus) -> None:
    """On SQLite the ranked search writes its filters as driver-level SQL, the listing through SQLAlchemy:
    each filter keeps the same articles either way."""
    names = {article_id: name for name, article_id in corpus.ids.items()}
    everything = {
        names[hit.id]
        for hit in corpus.page(SearchFilters(query="the OR in OR of OR aktau", include_duplicates=True)).hits
    }
    assert len(everything) >= 6
    cases: list[dict[str, Any]] = [
        {},
        {"tags": ("kazakhstan",)},
        {"tags": ("kazakhstan", "ots")},
        {"feed": str(corpus.feeds["kz"])},
        {"feed": KZ_FEED},
        {"since": DAY - timedelta(days=3, hours=1), "until": DAY - timedelta(days=1, hours=1)},
        {"until": DAY - timedelta(days=4)},
        {"source": "seed"},
        {"source": "feed", "include_duplicates": True},
        {"duplicates_of": corpus.ids["port"]},
    ]
    for case in cases:
        listed = set(corpus.find(**case))
        found = corpus.find("the OR in OR of OR aktau", **case)
        assert set(found) == listed & everything, case


def test_ranking_considers_the_newest_matches(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(corpus.find("aktau")) == {"port", "shipping", "seed"}
    monkeypatch.setattr(search_module, "RANK_WINDOW", 2)
    assert set(corpus.find("aktau")) == {"shipping", "seed"}  # the two stored last


def test_hits_carry_what_the_faces_show(corpus: Corpus) -> None:
    [hit] = corpus.page(SearchFilters(query='"caspian sea"')).hits
    assert hit.id == corpus.ids["port"] and hit.url == "https://kz.example/port"
    assert hit.title == ARTICLES["port"][1] and hit.outlet == "Kazinform" and hit.source == "feed"
    assert hit.feed == redact_url(KZ_FEED) and "s3cret" not in hit.feed
    assert hit.published == DAY - timedelta(days=1) and hit.duplicate_of is None and hit.story_id
    kazakhstan = next(tag for tag in hit.tags if tag.name == "kazakhstan")
    assert kazakhstan.score > 0 and kazakhstan.evidence
    assert [part.text for part in hit.snippet if part.highlight] == ["Caspian Sea"]
    assert hit.snippet_text == ARTICLES["port"][2]
    data = hit.as_json()
    assert data["snippet"] == hit.snippet_text and data["tags"][0].keys() == {"name", "score", "evidence"}
    assert {"id", "url", "title", "feed", "published", "source", "duplicate_of", "story_id"} <= data.keys()

    [turkish] = corpus.page(SearchFilters(query="kirgizistan")).hits
    assert [part.text for part in turkish.snippet if part.highlight] == ["Kırgızistan"]
    [copy] = corpus.page(SearchFilters(duplicates_of=corpus.ids["port"])).hits
    assert copy.duplicate_of == corpus.ids["port"] and copy.rank is None


def test_pages_are_complete_and_disjoint(corpus: Corpus) -> None:
    for filters in (
        SearchFilters(include_duplicates=True),
        SearchFilters(query="aktau OR tokayev OR türkiye"),
    ):
        everything = [hit.id for hit in corpus.page(filters).hits]
        assert len(everything) > 3
        seen: list[int] = []
        cursor = None
        while True:
            page = corpus.page(filters, limit=2, cursor=cursor)
            seen.extend(hit.id for hit in page.hits)
            assert page.total is None or (cursor is None and page.total == len(page.hits))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == everything
    newest = corpus.page(SearchFilters(include_duplicates=True)).hits
    assert [hit.published for hit in newest] == sorted((hit.published for hit in newest), reverse=True)
    assert corpus.page(SearchFilters(source="seed")).total == 1


def test_user_mistakes_are_value_errors(corpus: Corpus) -> None:
    first = corpus.page(SearchFilters(), limit=1)
    assert first.next_cursor is not None
    with pytest.raises(ValueError, match="belongs to a search with or without a query"):
        corpus.page(SearchFilters(query="aktau"), cursor=first.next_cursor)
    with pytest.raises(ValueError, match="invalid cursor"):
        corpus.page(SearchFilters(), cursor="not-a-cursor")
    for limit in (0, 201):
        with pytest.raises(ValueError, match="limit must be between 1 and 200"):
            corpus.page(SearchFilters(), limit=limit)
    with pytest.raises(ValueError, match="invalid query: NOT cannot stand inside OR"):
        corpus.find("aktau OR -visa")
    with pytest.raises(ValueError, match="has no words"):
        corpus.find(outlet="!!!")


def test_engine_syntax_in_queries_is_just_text(corpus: Corpus) -> None:
    """FTS5 and tsquery operators typed by a user never reach either engine as operators."""
    alphabet = "aktu ()\"*-:^{}+.,'\\&|!<>NEAROTD"
    rng = random.Random(6)
    queries = ["aktau & !port", "aktau:* | x", "'aktau' <-> 'port'", "title:aktau", "NEAR(aktau port)"]
    queries += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16))) for _ in range(150)]
    answered = 0
    for query in queries:
        try:
            corpus.find(query)
        except ValueError:
            continue
        answered += 1
    assert answered > 50
    assert corpus.find("aktau & !port") == corpus.find("aktau port")


def test_the_index_follows_updates_and_deletes(corpus: Corpus) -> None:
    changed = "President Tokayev opened a new ferry terminal in Kuryk instead."
    corpus.store("port", "kz", ARTICLES["port"][1], changed, DAY - timedelta(days=1))  # same guid: an update
    assert corpus.find("kuryk") == ["port"]
    assert corpus.find('"caspian sea"') == []
    with session_scope(corpus.engine) as session:
        session.delete(session.get(Article, corpus.ids["weather"]))
    assert corpus.find("visa") == []
    assert corpus.find("astana") == ["seed"]


def test_times_for_since_and_until() -> None:
    now = datetime(2025, 6, 10, 12, 30, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since(" 24h ", now) == now - timedelta(hours=24)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2025-05-21", now) == datetime(2025, 5, 21, tzinfo=UTC)
    assert parse_until("2025-05-21", now) == datetime(2025, 5, 22, tzinfo=UTC)
    assert parse_since("2025-05-21T08:00:00Z", now) == datetime(2025, 5, 21, 8, tzinfo=UTC)
    assert parse_since("2025-05-21T08:00:00+05:00", now) == datetime(2025, 5, 21, 3, tzinfo=UTC)
    assert parse_since("2025-05-21T08:00", now) == datetime(2025, 5, 21, 8, tzinfo=UTC)
    for bad in ("yesterday", "7 days", "2025-13-01", ""):
        with pytest.raises(ValueError, match="expected a time such as 7d, 24h, 2025-05-21"):
            parse_since(bad, now)


def squeeze(value: str) -> str:
    return " ".join(value.split())


@pytest.mark.postgres
def test_postgres_folds_and_splits_words_as_python_does(pg_url: str) -> None:
    """The SQL functions of migration 0002 against worker.analysis.text.fold and the query tokenizer."""
    from worker.store.db import make_engine, migrate

    engine = make_engine(pg_url)
    migrate(engine)
    ranges = [(0x20, 0x2FF), (0x370, 0x6FF), (0x1E00, 0x1FFF), (0x2000, 0x206F), (0xFB00, 0xFB06)]
    chars = [chr(c) for start, end in ranges for c in range(start, end + 1) if not chr(c).isspace()]
    chars = [c for c in chars if c.isprintable()]
    rng = random.Random(1)
    lookalikes = "аеорсухіјѕАВЕКМНОРСТХοανικτρυ"
    words = [
        "".join(rng.choice("abcdekmnoprstxy" + lookalikes + "қәғ") for _ in range(6)) for _ in range(300)
    ]
    samples = [
        "Vаrkert Bazaar",
        "Kazakh\u00adstan İstanbul Straße Œuvre ﬁnance ＡＢＣ x²",
        "covid-19 astana.gov.kz 3.14 a@b.com 1,000 Kazakistan'ın «Қазақстан» — ½",
        "Tokayev's <b>visit</b> &amp; 10% “quotes” ΆΘΗΝΑ ΣΟΦΙΑΣ Ёлка Йошкар-Ола",
    ]
    with engine.connect() as connection:
        folded = connection.execute(
            text("SELECT nw_fold(x) FROM unnest(CAST(:xs AS text[])) AS x"), {"xs": chars}
        )
        # Whitespace aside (fold also tidies it; it only separates words): the same text.
        assert [squeeze(row[0]) for row in folded] == [squeeze(fold(c)) for c in chars]
        for sample in [*samples, " ".join(words)]:
            pg_folded = connection.execute(text("SELECT nw_fold(:s)"), {"s": sample}).scalar_one()
            assert squeeze(pg_folded) == fold(sample)
            lexemes = connection.execute(
                text(
                    "SELECT u.lexeme FROM unnest(nw_search_words(nw_fold(:s))) AS u, "
                    "unnest(u.positions) AS p ORDER BY p"
                ),
                {"s": sample},
            )
            assert [row[0] for row in lexemes] == tokens(sample), sample
    engine.dispose()
