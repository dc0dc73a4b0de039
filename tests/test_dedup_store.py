"""Duplicate and same-story detection through `store_item` on a real SQLite store."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from worker.ingest.seeds import read_seed
from worker.store.articles import NewArticle, store_item
from worker.store.db import make_engine
from worker.store.dedup_index import BAND_WINNOW, DUP_POSTINGS_PER_KEY, DedupIndex, rebuild_dedup
from worker.store.models import (
    SOURCE_FEED,
    Article,
    DedupProfile,
    DedupStoryTerm,
    Feed,
    Fingerprint,
)

DEFAULT_PUBLISHED = datetime(2025, 5, 21, 12, tzinfo=UTC)
SEEDS = Path(__file__).resolve().parents[1] / "seeds"
SEED_FILE = sorted(SEEDS.glob("*.txt"))[0]

# Our own report of another OTS summit (Shusha, July 2024): same organisation, same president, other event.
SHUSHA_SUMMIT = (
    "Leaders of the Organization of Turkic States gathered in Shusha on Saturday for an informal summit "
    "hosted by Azerbaijani President Ilham Aliyev. Kazakh President Kassym-Jomart Tokayev called for "
    "closer transport links across the Caspian Sea and praised the reconstruction of the Karabakh "
    "region.\n\nThe heads of state adopted a declaration on the Middle Corridor and on cooperation in "
    "digital development, and agreed that the next summit will be held in Bishkek in the autumn."
)
# Our own rewrite of the seed's event, as another outlet would report it the same day.
SEED_EVENT_REWRITE = (
    "Kazakh President Kassym-Jomart Tokayev addressed the informal summit of the Organization of Turkic "
    "States at the Varkert Bazar in Budapest, thanking Viktor Orbán for organising the meeting. He said "
    "Kazakhstan has named a permanent representative to the organisation, that the OTS Parliamentary "
    "Assembly meets in Astana on June 11-12, and that Aktau is this year's cultural capital of the Turkic "
    "world while Almaty becomes its youth capital."
)
# Another Tokayev event two days later: the same president, nothing else in common.
OTHER_TOKAYEV_EVENT = (
    "President Kassym-Jomart Tokayev received a delegation of Chinese energy companies in Astana on "
    "Friday to discuss new wind farms in the Zhambyl region. The companies plan to invest 1.2 billion "
    "dollars over five years, the presidential press service Akorda said after the meeting."
)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """Both stores (conftest's `store_url`): SQLite, and PostgreSQL where it runs."""
    engine = make_engine(store_url)
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


class Store:
    """Items in, decisions out, one commit per item as the pipeline does."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.index = DedupIndex()
        self.feeds: dict[str, int] = {}
        self.seed_published = DEFAULT_PUBLISHED
        self.seed_text = ""
        self.seed_title = ""

    def feed(self, outlet: str) -> int:
        if outlet not in self.feeds:
            with Session(self.engine) as session:
                feed = Feed(url=f"https://{outlet}.example/rss", title=outlet)
                session.add(feed)
                session.commit()
                assert feed.id is not None
                self.feeds[outlet] = feed.id
        return self.feeds[outlet]

    def put(
        self,
        text: str,
        *,
        title: str = "",
        outlet: str = "wire",
        guid: str | None = None,
        url: str | None = None,
        published: datetime | None = None,
    ) -> Article:
        item = NewArticle(
            source=SOURCE_FEED,
            feed_id=self.feed(outlet),
            guid=guid or f"{outlet}-{len(text)}-{hash(text)}",
            url=url,
            title=title,
            text=text,
            published=published or self.seed_published,
            outlet=outlet,
        )
        return self._store(item)

    def put_seed(self, path: Path) -> Article:
        seed = read_seed(path)
        self.seed_published = seed.published
        self.seed_text = seed.text
        self.seed_title = seed.title
        return self._store(seed.item())

    def _store(self, item: NewArticle) -> Article:
        with Session(self.engine, expire_on_commit=False) as session:
            stored = store_item(session, item, self.index, tagger=None)
            session.commit()
            return stored.article


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine)


@pytest.fixture
def seed(store: Store) -> Article:
    return store.put_seed(SEED_FILE)


def alone_in_story(engine: Engine, article: Article) -> bool:
    """Whether `article` started a story that no other stored article is in."""
    with Session(engine) as session:
        members = session.execute(
            select(col(Article.id)).where(col(Article.story_id) == article.story_id)
        ).all()
    return article.story_id is not None and [m[0] for m in members] == [article.id]


def first_paragraph(text: str) -> str:
    return text.split("\n\n")[0]


def test_feed_summary_of_the_seed_is_a_duplicate(store: Store, seed: Article) -> None:
    summary = store.put(first_paragraph(store.seed_text), title=store.seed_title, outlet="kazinform")
    assert summary.duplicate_of == seed.id
    assert summary.dup_method is not None and summary.dup_method.endswith("+containment")
    assert summary.story_id == seed.story_id
    assert not summary.alertable


def test_same_text_at_a_tracking_url_is_a_duplicate(store: Store, seed: Article) -> None:
    base = "https://news.example/2025/05/tokayev-budapest"
    first = store.put(store.seed_text, outlet="mirror", url=f"{base}?utm_source=rss&utm_medium=feed")
    second = store.put(store.seed_text + " ", outlet="mirror2", url=f"{base}?fbclid=abc")
    assert first.duplicate_of == seed.id
    assert second.duplicate_of == seed.id  # the root, not the first copy


def test_homoglyph_spoiled_copy_is_a_duplicate(store: Store, seed: Article) -> None:
    # Inside words (repaired by normalisation) and a lone Cyrillic "а" word (read as Latin by dedup).
    spoiled = store.seed_text.replace("Budapest", "Вudареst").replace(" a ", " а ")
    assert spoiled != store.seed_text
    copy = store.put(spoiled, outlet="spoiler", url="https://spoiler.example/a/1")
    assert copy.duplicate_of == seed.id


def test_outlet_suffix_in_the_title_and_markup_in_the_text_is_a_duplicate(
    store: Store, seed: Article
) -> None:
    paragraphs = store.seed_text.split("\n\n")
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    copy = store.put(html, title=f"{store.seed_title} | The Astana Times", outlet="The Astana Times")
    assert copy.dup_method is not None and "containment" in copy.dup_method
    assert copy.duplicate_of == seed.id


def test_a_different_ots_summit_is_neither_duplicate_nor_same_story(store: Store, seed: Article) -> None:
    other = store.put(SHUSHA_SUMMIT, outlet="trend", published=datetime(2024, 7, 6, 14, tzinfo=UTC))
    assert other.duplicate_of is None
    assert alone_in_story(store.engine, other)


def test_another_outlets_report_of_the_seed_event_is_the_same_story(store: Store, seed: Article) -> None:
    report = store.put(
        SEED_EVENT_REWRITE, outlet="akorda-watch", published=store.seed_published + timedelta(hours=6)
    )
    assert report.duplicate_of is None
    assert report.story_id == seed.story_id
    assert report.story_method in ("terms", "exclusive-terms", "terms-strong")


def test_another_event_of_the_same_president_days_later_is_another_story(store: Store, seed: Article) -> None:
    store.put(SEED_EVENT_REWRITE, outlet="akorda-watch", published=store.seed_published + timedelta(hours=6))
    other = store.put(
        OTHER_TOKAYEV_EVENT, outlet="astana-daily", published=store.seed_published + timedelta(days=2)
    )
    assert other.story_id not in (seed.story_id, None)


def test_items_without_text_are_their_own_stories(store: Store, seed: Article) -> None:
    empty = store.put("", title="", outlet="blank", url="https://blank.example/1")
    short = store.put("Budapest", title="Tokayev", outlet="blank", url="https://blank.example/2")
    assert empty.duplicate_of is None and short.duplicate_of is None
    assert alone_in_story(store.engine, empty) and alone_in_story(store.engine, short)


def test_explanation_says_what_matched_and_is_json(store: Store, seed: Article) -> None:
    summary = store.put(first_paragraph(store.seed_text), outlet="kazinform")
    report = store.put(SEED_EVENT_REWRITE, outlet="akorda-watch", published=store.seed_published)
    assert summary.dedup_explain is not None and report.dedup_explain is not None
    same_article = json.loads(json.dumps(summary.dedup_explain))["same_article"]
    assert same_article["verdict"] == "duplicate"
    assert same_article["of_article"] == seed.id
    assert same_article["containment"] == 1.0
    assert set(same_article["found_by_keys"]) <= {"winnow", "lead"}
    explain = json.loads(json.dumps(report.dedup_explain))
    assert explain["same_article"]["verdict"] == "new"
    assert explain["same_story"]["verdict"] == "joined"
    assert explain["same_story"]["article"] == seed.id
    assert "Budapest" in " ".join(explain["same_story"]["shared_terms"])
    assert explain["same_story"]["days_apart"] == 0


def test_updated_article_is_reindexed(engine: Engine, store: Store, seed: Article) -> None:
    first = store.put(OTHER_TOKAYEV_EVENT, outlet="astana-daily", guid="item-1")
    changed = OTHER_TOKAYEV_EVENT.replace("wind farms", "solar plants")
    again = store.put(changed, outlet="astana-daily", guid="item-1")
    assert again.id == first.id
    with Session(engine) as session:
        rows = session.execute(
            select(func.count()).select_from(DedupProfile).where(col(DedupProfile.article_id) == first.id)
        ).scalar_one()
        assert rows == 1
    # The new wording is what is indexed now: a copy of it is found.
    copy = store.put(changed, outlet="copycat", url="https://copycat.example/1")
    assert copy.duplicate_of == first.id


def test_deleting_an_article_drops_its_index_rows(engine: Engine, store: Store, seed: Article) -> None:
    with Session(engine) as session:
        session.delete(session.get(Article, seed.id))
        session.commit()
        assert session.execute(select(func.count()).select_from(Fingerprint)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(DedupProfile)).scalar_one() == 0


def test_a_key_shared_by_many_articles_does_not_hide_a_copy(engine: Engine, store: Store) -> None:
    boilerplate = (
        "This article is available to subscribers only, sign in or choose one of our plans to continue "
        "reading the full story and get unlimited access to the archive of the newspaper."
    )

    words = [f"{a}{b}" for a in ("north", "south", "river", "market", "school", "bridge") for b in "klmnprst"]

    def item(i: int) -> str:
        own = " ".join(random.Random(i).choices(words, k=30))
        return f"Report {i}: {own}. " + boilerplate

    for i in range(DUP_POSTINGS_PER_KEY + 10):
        store.put(item(i), outlet=f"o{i}", published=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=i))
    with Session(engine) as session:
        widest = session.execute(
            select(func.count())
            .select_from(Fingerprint)
            .where(col(Fingerprint.band) == BAND_WINNOW)
            .group_by(col(Fingerprint.value))
            .order_by(func.count().desc())
            .limit(1)
        ).scalar_one()
        first_id = session.execute(select(func.min(Article.id))).scalar_one()
    assert widest > DUP_POSTINGS_PER_KEY  # the boilerplate's keys are read only partly
    # The oldest item, beyond the postings read for the boilerplate, is still found by its own keys.
    copy = store.put(item(0).replace("approved", "has approved"), outlet="late", url="https://late.example/0")
    assert copy.duplicate_of == first_id
    # Sharing the boilerplate alone makes nobody a duplicate.
    fresh = store.put(
        "A completely different notice about the weather and the harvest in the southern valleys this "
        "autumn, with rain expected on Thursday. " + boilerplate,
        outlet="weather",
    )
    assert fresh.duplicate_of is None


def test_names_many_stories_carry_are_no_evidence(store: Store, seed: Article) -> None:
    when = store.seed_published + timedelta(days=100)
    first = store.put(
        "Regional governor Zhanibek Sultanov opened the new rolling mill of Qazaq Steel in Karaganda, "
        "where the company expects to employ 4500 people within two years.",
        outlet="steel-daily",
        published=when,
    )
    follow_up = store.put(
        "The rolling mill that Qazaq Steel opened in Karaganda is running at half capacity, governor "
        "Zhanibek Sultanov told reporters during a visit.",
        outlet="metal-news",
        published=when + timedelta(days=5),
    )
    assert follow_up.story_id == first.story_id  # three names only that story carries

    # Many other stories around the same dates each carry one of those names.
    others = (
        "Aruzhan Bekova",
        "Bolat Nurov",
        "Dana Saparova",
        "Erlan Tulegenov",
        "Gulnara Abenova",
        "Marat Ospan",
    )
    for i, person in enumerate(others):
        for name in ("Zhanibek Sultanov", "Qazaq Steel", "Karaganda"):
            store.put(
                f"{person} and {name} were mentioned in report number {i} about the district of "
                f"{person.split()[1]}ovka, which has new schools.",
                outlet=f"local-{i}-{name}",
                published=when + timedelta(days=i + 1, hours=len(name)),
            )
    again = store.put(
        "Governor Zhanibek Sultanov said Qazaq Steel will build a second mill in Karaganda next year.",
        outlet="metal-news",
        published=when + timedelta(days=9),
    )
    assert alone_in_story(store.engine, again)
    with Session(store.engine) as session:
        assert session.execute(select(func.count()).select_from(DedupStoryTerm)).scalar_one() > 0


def test_rebuild_reproduces_the_decisions(engine: Engine, store: Store, seed: Article) -> None:
    store.put(first_paragraph(store.seed_text), outlet="kazinform")
    store.put(store.seed_text, outlet="mirror", url="https://mirror.example/x?utm_source=a")
    store.put(SEED_EVENT_REWRITE, outlet="akorda-watch", published=store.seed_published + timedelta(hours=3))
    store.put(SHUSHA_SUMMIT, outlet="trend", published=datetime(2024, 7, 6, tzinfo=UTC))
    before = _decisions(engine)
    progress: list[tuple[int, int]] = []
    assert rebuild_dedup(engine, lambda done, total: progress.append((done, total))) == len(before)
    assert progress[-1] == (len(before), len(before))
    assert _decisions(engine) == before


def _decisions(engine: Engine) -> dict[int, tuple[int | None, str | None]]:
    with Session(engine) as session:
        articles = session.execute(select(Article).order_by(col(Article.id))).scalars().all()
        return {a.id: (a.duplicate_of, a.story_id) for a in articles if a.id is not None}
