"""The near-duplicate and same-story index, kept in the database so every worker sees the same one.

`store_item` asks `DedupIndex.check` about each item that is not an exact duplicate, then `add`s it. Three
tables hold the index; a lookup never re-reads or re-folds stored texts:

- `fingerprint`, same-article keys told apart by `band`. BAND_WINNOW: winnowed 5-word-shingle hashes; any
  run of `WINNOW_GUARANTEE_WORDS` words shared by two texts gives them a shared key, so a summary is found
  inside its article whatever their lengths. BAND_LEAD: the hash of the first words, for summaries too
  short for that guarantee.
- `dedup_profile`, one row per article: the shingles and terms the comparisons need.
- `dedup_story_term`, one row per (name or number, period, story): how many stories carry a term around a
  date tells whether it is evidence. A term many stories carry (a head of state) is generic; one only a
  single story carries is exclusive to it.

Every lookup is bounded: a same-article key reads at most a fixed number of postings (the newest) and a
term at most one story more than "generic", so a boilerplate sentence or a very common name costs the
same as a rare one, however large the store.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col
from sqlmodel.sql.sqltypes import UTCDateTime

from worker.analysis.dedup import (
    DUPLICATE_RULE,
    STORY_MAX_DAYS,
    STORY_MIN_EXCLUSIVE_TERMS,
    STORY_RULES,
    STORY_SAME_ARTICLE,
    Analysis,
    ArticleMatch,
    Decision,
    Document,
    Profile,
    StoryMatch,
    analyse,
    compare_articles,
    compare_stories,
    content_hash,
    day_number,
    decode_shingles,
    encode_shingles,
    exact_decision,
    periods_around,
    term_period,
    term_period_key,
)
from worker.store.articles import document_of, guid_key, new_story_id, record_decision
from worker.store.models import Article, DedupProfile, DedupStoryTerm, Fingerprint, table_of

BAND_WINNOW = 1
BAND_LEAD = 2
_BAND_NAMES = {BAND_WINNOW: "winnow", BAND_LEAD: "lead"}

# Postings read per same-article key: a key shared by more articles is boilerplate, not evidence.
DUP_POSTINGS_PER_KEY = 32
# Articles compared for same-article, those sharing the most keys first.
DUP_CANDIDATES = 4
# A term carried by more stories than this around a date is generic (a head of state, the country): not
# evidence. A lookup reads at most one story more than this per term and period.
MAX_TERM_STORIES = 5
# Stories compared for same-story (one article of each), those sharing the most terms first.
STORY_CANDIDATES = 8
# Articles re-decided per transaction by `rebuild_dedup`.
REBUILD_BATCH = 500

STORY_NEW = "new"


@dataclass(frozen=True)
class _Stored:
    """A candidate article as the lookup sees it."""

    article_id: int
    root_id: int
    story_id: str | None
    profile: Profile


@dataclass(frozen=True)
class _TermStats:
    """What the story-term index says about the document's terms near its date."""

    # term -> story -> (its latest article carrying the term, that article's day), within the window
    stories: dict[str, dict[str, tuple[int, int]]]
    crowded: frozenset[str]  # terms with more stories in a period than a lookup reads

    def generic(self) -> frozenset[str]:
        many = (t for t, stories in self.stories.items() if len(stories) > MAX_TERM_STORIES)
        return self.crowded.union(many)

    def exclusive_to(self, story_id: str | None) -> frozenset[str]:
        return frozenset(
            t for t, stories in self.stories.items() if t not in self.crowded and set(stories) == {story_id}
        )

    def candidates(self, exclude: set[int]) -> list[int]:
        """One article per story sharing enough non-generic terms to pass some rule, best stories first.

        The article is the story's one that carries the most of the shared terms (the latest on a tie).
        """
        generic = self.generic()
        shared: dict[str, Counter[tuple[int, int]]] = defaultdict(Counter)
        for term, stories in self.stories.items():
            if term in generic:
                continue
            for story_id, (article_id, day) in stories.items():
                shared[story_id][(day, article_id)] += 1
        ranked = []
        for articles in shared.values():
            count = sum(articles.values())
            if count >= STORY_MIN_EXCLUSIVE_TERMS:
                (_day, article_id), _n = max(articles.items(), key=lambda item: (item[1], item[0]))
                if article_id not in exclude:
                    ranked.append((count, article_id))
        ranked.sort(reverse=True)
        return [article_id for _count, article_id in ranked[:STORY_CANDIDATES]]


class DedupIndex:
    """The database-backed near-duplicate and same-story index (see the module docstring)."""

    def __init__(self) -> None:
        # store_item checks a document and then adds the same one: analyse it once.
        self._last: tuple[Document, Analysis] | None = None

    def analyse(self, doc: Document) -> Analysis:
        """The text analysis of `doc`, kept for the `check` and `add` that follow (store_item calls both)."""
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0] == doc:
            return last[1]
        analysis = analyse(doc)
        self._last = (doc, analysis)
        return analysis

    def check(self, session: Session, doc: Document) -> Decision:
        """The verdict on `doc` against everything indexed (it is not indexed itself yet)."""
        analysis = self.analyse(doc)
        key_hits, terms = _lookup(session, analysis)
        dup_ids = [a for a, _ in Counter({a: sum(k.values()) for a, k in key_hits.items()}).most_common()]
        dup_ids = dup_ids[:DUP_CANDIDATES]
        stored = _load(session, dup_ids + terms.candidates(exclude=set(dup_ids)))
        explain: dict[str, Any] = {}
        duplicate = _best_duplicate(analysis.profile, [s for s in stored if s.article_id in key_hits])
        if duplicate is not None:
            original, copy = duplicate
            keys = key_hits[original.article_id]
            explain["same_article"] = {
                "verdict": "duplicate",
                "of_article": original.root_id,
                "matched_article": original.article_id,
                "found_by_keys": {_BAND_NAMES[band]: n for band, n in sorted(keys.items())},
                "rule": DUPLICATE_RULE,
                **copy.explain(),
            }
            return Decision(
                duplicate_of=original.root_id,
                dup_method="+".join(_BAND_NAMES[band] for band in sorted(keys)) + "+containment",
                dup_score=round(copy.containment, 4),
                story_of=original.root_id,
                story_method=STORY_SAME_ARTICLE,
                story_score=round(copy.containment, 4),
                explain=explain,
            )
        explain["same_article"] = _closest_article(analysis.profile, stored, key_hits)
        story = _best_story(analysis.profile, stored, terms)
        explain["same_story"] = _story_explain(story, analysis, terms)
        if story is None or story[1].method is None:
            return Decision(explain=explain)
        candidate, match = story
        return Decision(
            story_of=candidate.article_id,
            story_method=match.method,
            story_score=match.score,
            explain=explain,
        )

    def add(self, session: Session, article_id: int, doc: Document, story_id: str | None = None) -> None:
        """Index the stored article `article_id` whose content is `doc` and whose story is `story_id`
        (read from the article when not given). Core statements on the session's connection: the ORM's
        bulk path costs more than the inserts themselves."""
        analysis = self.analyse(doc)
        connection = session.connection()
        rows = [{"band": BAND_WINNOW, "value": v, "article_id": article_id} for v in analysis.winnow_keys]
        if analysis.lead_key is not None:
            rows.append({"band": BAND_LEAD, "value": analysis.lead_key, "article_id": article_id})
        if rows:
            connection.execute(_FINGERPRINT_INSERT, rows)
        connection.execute(
            _PROFILE_INSERT,
            {
                "article_id": article_id,
                "shingles": encode_shingles(analysis.profile.shingles),
                "terms": " ".join(sorted(analysis.profile.terms)),
            },
        )
        if analysis.term_words:
            if story_id is None:
                story_id = connection.execute(
                    select(col(Article.story_id)).where(col(Article.id) == article_id)
                ).scalar_one_or_none()
            if story_id is not None:  # the story is decided before indexing: nothing to attribute otherwise
                _upsert_story_terms(connection, article_id, story_id, analysis)

    def remove(self, session: Session, article_id: int) -> None:
        """Forget `article_id` (before its updated content is added again)."""
        session.execute(delete(Fingerprint).where(col(Fingerprint.article_id) == article_id))
        session.execute(delete(DedupProfile).where(col(DedupProfile.article_id) == article_id))
        session.execute(delete(DedupStoryTerm).where(col(DedupStoryTerm.article_id) == article_id))

    def clear(self, session: Session) -> None:
        """Forget every article (before a rebuild)."""
        for table in (Fingerprint, DedupProfile, DedupStoryTerm):
            session.execute(delete(table))


def _upsert_story_terms(connection: Connection, article_id: int, story_id: str, analysis: Analysis) -> None:
    """Record that the article's story carries its terms in its period (the latest article wins)."""
    day = int(analysis.profile.day)
    period = term_period(analysis.profile.day)
    rows = [
        {
            "term_key": term_period_key(term, period),
            "story_id": story_id,
            "article_id": article_id,
            "day": day,
        }
        for term in analysis.term_words
    ]
    connection.execute(_STORY_TERM_UPSERT[connection.dialect.name == "postgresql"], rows)


def _story_term_upsert(postgresql: bool) -> Any:
    # Built once and run with many rows (executemany): a VALUES list of varying length would be
    # compiled anew for every article.
    statement = (pg_insert if postgresql else sqlite_insert)(table_of(DedupStoryTerm))
    return statement.on_conflict_do_update(
        index_elements=["term_key", "story_id"],
        set_={"article_id": statement.excluded.article_id, "day": statement.excluded.day},
        where=col(DedupStoryTerm.day) <= statement.excluded.day,
    )


_STORY_TERM_UPSERT = {False: _story_term_upsert(False), True: _story_term_upsert(True)}
_FINGERPRINT_INSERT = insert(table_of(Fingerprint))
_PROFILE_INSERT = insert(table_of(DedupProfile))


# --- lookups -------------------------------------------------------------------------------------------


# One branch per key, each a bounded index range scan; `kind` is the band, or 0 for a story term.
# `{o}name{c}` is the driver's placeholder for a named parameter.
_DUP_BRANCH = (
    "SELECT band AS kind, value AS k, article_id, CAST(NULL AS VARCHAR(64)) AS story_id, "
    "CAST(NULL AS INTEGER) AS day FROM fingerprint WHERE band = {o}b{i}{c} AND value = {o}v{i}{c} "
    f"ORDER BY article_id DESC LIMIT {DUP_POSTINGS_PER_KEY}"
)
# Any rows will do for a term: more than MAX_TERM_STORIES of them make it generic, and fewer are all of them
# (no ORDER BY, so a term carried by thousands of stories costs a few rows, not a sort).
_TERM_BRANCH = (
    "SELECT 0 AS kind, term_key AS k, article_id, story_id, day FROM dedup_story_term "
    f"WHERE term_key = {{o}}t{{i}}{{c}} LIMIT {MAX_TERM_STORIES + 1}"
)
_TERM_KIND = 0
# Named parameters as each driver spells them (sqlite3 ":name", psycopg "%(name)s").
_PLACEHOLDERS = {"sqlite": (":", ""), "postgresql": ("%(", ")s")}


@lru_cache(maxsize=4096)
def _lookup_sql(dup_keys: int, term_keys: int, dialect: str) -> str:
    """The one statement of a lookup: the newest postings of each same-article key and the stories of each
    term near the date, as a union of per-key LIMITs. Plain SQL for the driver, built once per shape: it
    runs once per new item, where SQLAlchemy's statement and result handling would cost more than SQLite's
    index reads."""
    o, c = _PLACEHOLDERS[dialect]
    branches = [_DUP_BRANCH.format(o=o, c=c, i=i) for i in range(dup_keys)]
    branches += [_TERM_BRANCH.format(o=o, c=c, i=i) for i in range(term_keys)]
    return " UNION ALL ".join(f"SELECT * FROM ({b}) AS k{n}" for n, b in enumerate(branches))


def _driver_rows(session: Session, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of `sql` run by the database driver itself, inside the session's transaction."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    rows: list[tuple[Any, ...]] = driver.execute(sql, params).fetchall()
    return rows


def _lookup(session: Session, analysis: Analysis) -> tuple[dict[int, Counter[int]], _TermStats]:
    """Articles sharing same-article keys with the document (article id -> {band: keys shared}), and the
    stories carrying each of its terms within STORY_MAX_DAYS of its date."""
    dup_keys = [(BAND_WINNOW, v) for v in sorted(analysis.lead_winnow_keys)]
    if analysis.lead_key is not None:
        dup_keys.append((BAND_LEAD, analysis.lead_key))
    day = analysis.profile.day
    periods = periods_around(day)
    term_of = {term_period_key(term, period): term for term in analysis.lookup_terms() for period in periods}
    hits: dict[int, Counter[int]] = defaultdict(Counter)
    stories: dict[str, dict[str, tuple[int, int]]] = {t: {} for t in analysis.term_words}
    if not dup_keys and not term_of:
        return hits, _TermStats(stories, frozenset())
    params: dict[str, Any] = {}
    for i, (band, value) in enumerate(dup_keys):
        params[f"b{i}"] = band
        params[f"v{i}"] = value
    term_keys = sorted(term_of)
    for i, key in enumerate(term_keys):
        params[f"t{i}"] = key
    dialect = "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"
    rows = _driver_rows(session, _lookup_sql(len(dup_keys), len(term_keys), dialect), params)
    read: Counter[int] = Counter()
    for kind, key, article_id, story_id, story_day in rows:
        if kind != _TERM_KIND:
            hits[article_id][kind] += 1
            continue
        read[key] += 1
        if abs(story_day - day) <= STORY_MAX_DAYS:
            known = stories[term_of[key]].get(story_id)
            if known is None or known[1] < story_day:
                stories[term_of[key]][story_id] = (article_id, story_day)
    crowded = frozenset(term_of[key] for key, n in read.items() if n > MAX_TERM_STORIES)
    return hits, _TermStats(stories, crowded)


_PROFILES_SQL = (
    text(
        "SELECT p.article_id, p.shingles, p.terms, a.published, a.duplicate_of, a.story_id "
        "FROM dedup_profile AS p JOIN article AS a ON a.id = p.article_id WHERE p.article_id IN :ids"
    )
    .bindparams(bindparam("ids", expanding=True))
    .columns(published=UTCDateTime())
)


def _load(session: Session, article_ids: Iterable[int]) -> list[_Stored]:
    ids = list(dict.fromkeys(article_ids))
    if not ids:
        return []
    rows = session.connection().execute(_PROFILES_SQL, {"ids": ids})
    by_id = {
        article_id: _Stored(
            article_id=article_id,
            root_id=duplicate_of if duplicate_of is not None else article_id,
            story_id=story_id,
            profile=Profile(
                shingles=decode_shingles(shingles),
                terms=frozenset(terms.split()),
                day=day_number(published),
            ),
        )
        for article_id, shingles, terms, published, duplicate_of, story_id in rows
    }
    return [by_id[i] for i in ids if i in by_id]


# --- decisions -----------------------------------------------------------------------------------------


def _best_duplicate(profile: Profile, stored: Sequence[_Stored]) -> tuple[_Stored, ArticleMatch] | None:
    """The stored text this one is a copy of: the highest containment, the oldest root on a tie."""
    matches = [(s, compare_articles(profile, s.profile)) for s in stored]
    duplicates = [(s, m) for s, m in matches if m.is_duplicate]
    if not duplicates:
        return None
    return max(duplicates, key=lambda sm: (sm[1].containment, -sm[0].root_id))


def _closest_article(
    profile: Profile, stored: Sequence[_Stored], key_hits: dict[int, Counter[int]]
) -> dict[str, Any]:
    candidates = [s for s in stored if s.article_id in key_hits]
    if not candidates:
        return {"verdict": "new", "candidates": 0}
    best = max(candidates, key=lambda s: compare_articles(profile, s.profile).containment)
    match = compare_articles(profile, best.profile)
    return {
        "verdict": "new",
        "candidates": len(candidates),
        "closest_article": best.article_id,
        "rule": DUPLICATE_RULE,
        **match.explain(),
    }


def _best_story(
    profile: Profile, stored: Sequence[_Stored], terms: _TermStats
) -> tuple[_Stored, StoryMatch] | None:
    """The candidate whose story this report joins (the strongest evidence), or the closest one."""
    generic = terms.generic()
    matches = [
        (s, compare_stories(profile, s.profile, generic, terms.exclusive_to(s.story_id))) for s in stored
    ]
    if not matches:
        return None
    return max(
        matches,
        key=lambda sm: (sm[1].method is not None, sm[1].score, len(sm[1].shared_terms), sm[0].article_id),
    )


def _story_explain(
    story: tuple[_Stored, StoryMatch] | None, analysis: Analysis, terms: _TermStats
) -> dict[str, Any]:
    def words(keys: Iterable[str]) -> list[str]:
        return sorted(analysis.term_words.get(k, k) for k in keys)

    explain: dict[str, Any] = {"generic_terms": words(terms.generic())}
    if story is None:
        return {"verdict": "new story", "candidates": 0, **explain}
    candidate, match = story
    return {
        "verdict": "joined" if match.method else "new story",
        "method": match.method,
        "rule": STORY_RULES.get(match.method or "", "no rule met by the closest stored report"),
        "article" if match.method else "closest_article": candidate.article_id,
        "story_id": candidate.story_id,
        "days_apart": round(match.days_apart, 2),
        "shared_terms": words(match.shared_terms),
        "exclusive_terms": words(match.exclusive_terms),
        "term_overlap": round(match.term_overlap, 3),
        "text_overlap": round(match.text_overlap, 3),
        **explain,
    }


# --- rebuild -------------------------------------------------------------------------------------------


ProgressCallback = Callable[[int, int], None]


def rebuild_dedup(engine: Engine, progress: ProgressCallback | None = None) -> int:
    """Re-decide every stored article in published order, each against those before it.

    For after a threshold change. Exact duplicates (same canonical URL or content hash as an earlier
    article) are decided as `store_item` decides them; the rest by the index. Commits every
    `REBUILD_BATCH` articles; returns how many articles were decided.
    """
    index = DedupIndex()
    with Session(engine, expire_on_commit=False) as session:
        total = session.execute(select(func.count()).select_from(Article)).scalar_one()
        index.clear(session)
        session.execute(
            update(Article).values(
                duplicate_of=None,
                dup_method=None,
                dup_score=None,
                story_id=None,
                story_method=None,
                story_score=None,
                dedup_explain=None,
            )
        )
        session.commit()
        done = 0
        after: tuple[datetime, int] | None = None
        while True:
            query = select(Article).order_by(col(Article.published), col(Article.id)).limit(REBUILD_BATCH)
            if after is not None:
                query = query.where(tuple_(col(Article.published), col(Article.id)) > tuple_(*after))
            batch = session.execute(query).scalars().all()
            if not batch:
                break
            for article in batch:
                _redecide(session, index, article)
            session.commit()
            done += len(batch)
            last = batch[-1]
            assert last.id is not None
            after = (last.published, last.id)
            if progress is not None:
                progress(done, total)
    return done


def _redecide(session: Session, index: DedupIndex, article: Article) -> None:
    """Decide `article` again as `store_item` decides a new item (its identity keys stay as they are)."""
    assert article.id is not None
    doc = document_of(article)
    decision = _exact_duplicate(session, article) or index.check(session, doc)
    record_decision(article, decision)
    joined = session.get(Article, decision.story_of) if decision.story_of is not None else None
    if joined is not None and joined.story_id is not None:
        article.story_id = joined.story_id
    else:
        article.story_id = new_story_id(guid_key(article.feed_id, article.guid))
        article.story_method = article.story_method or STORY_NEW
    session.flush()
    index.add(session, article.id, doc)


def _exact_duplicate(session: Session, article: Article) -> Decision | None:
    """An earlier-decided article with the same canonical URL or content hash, as `store_item` finds it.

    "Earlier-decided" is "has a story again": the rebuild cleared every story and decides in published order.
    """
    digest = article.content_hash or content_hash(article.title, article.text)
    for kind, column, value in (
        ("url", col(Article.canonical_url), article.canonical_url),
        ("hash", col(Article.content_hash), digest),
    ):
        if value is None:
            continue
        row = session.execute(
            select(col(Article.id), col(Article.duplicate_of))
            .where(column == value, col(Article.story_id).is_not(None), col(Article.id) != article.id)
            .order_by(col(Article.published), col(Article.id))
            .limit(1)
        ).first()
        if row is not None:
            root = row[1] if row[1] is not None else row[0]
            return exact_decision(kind, value, root)
    return None
