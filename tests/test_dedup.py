"""Duplicate and same-story detection as pure functions (worker.analysis.dedup)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from worker.analysis.dedup import (
    DUPLICATE_CONTAINMENT,
    MAX_PROFILE_SHINGLES,
    STORY_MAX_DAYS,
    WINNOW_GUARANTEE_WORDS,
    Document,
    Profile,
    analyse,
    clean_title,
    compare_articles,
    compare_stories,
    decode_shingles,
    encode_shingles,
    lead_key,
    matching_words,
    name_key,
    shingle_hashes,
    story_terms,
    winnow,
)

WHEN = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)

# A made-up report, three paragraphs, for the same-article comparisons.
ARTICLE = (
    "Engineers in the port city of Aktau began testing a new ferry terminal on Tuesday, the regional "
    "administration said, after two years of construction that cost more than 140 million dollars.\n\nThe "
    "terminal is designed to handle up to four million tonnes of cargo a year and will shorten the "
    "waiting time for trucks crossing the Caspian Sea, officials told reporters at the opening "
    "ceremony.\n\nRegional governor Nurlan Bekov said the project would create about 900 permanent jobs and "
    "that a second phase, including a grain silo and a rail spur, was expected to be finished by the end "
    "of next year."
)
OTHER = (
    "A cold snap brought heavy snow to the northern regions over the weekend, closing several highways "
    "and delaying flights at two airports, the emergencies ministry reported on Sunday. Road crews worked "
    "through the night to clear the main routes, and schools in three districts stayed closed on Monday "
    "morning."
)


def doc(text: str, title: str = "", outlet: str | None = None, published: datetime = WHEN) -> Document:
    return Document(title=title, text=text, canonical_url=None, outlet=outlet, published=published)


def profile_of(text: str, published: datetime = WHEN) -> Profile:
    return analyse(doc(text, published=published)).profile


# --- text preparation ----------------------------------------------------------------------------------


def test_matching_words_fold_case_diacritics_and_markup() -> None:
    assert matching_words("<p>Viktor ORBÁN &amp; Türkiye</p>") == ["viktor", "orban", "turkiye"]


def test_matching_words_read_lookalike_letters_as_latin() -> None:
    # Mixed-script words, a Latin word written mostly in Cyrillic look-alikes, and a lone Cyrillic "а".
    spoiled = "Sаdyr Jараrоv met а сrowd"
    assert matching_words(spoiled) == ["sadyr", "japarov", "met", "a", "crowd"]


def test_matching_words_keep_real_cyrillic_words() -> None:
    assert matching_words("Токаев прибыл в Будапешт") == ["токаев", "прибыл", "в", "будапешт"]


@pytest.mark.parametrize(
    ("title", "outlet", "expected"),
    [
        ("Kazinform - Ferry terminal opens in Aktau", "Kazinform", "Ferry terminal opens in Aktau"),
        (
            "Ferry terminal opens in Aktau | The Astana Times",
            "The Astana Times",
            "Ferry terminal opens in Aktau",
        ),
        ("Ferry terminal opens in Aktau | Some Site", None, "Ferry terminal opens in Aktau"),
        ("Digital Journal (AFP): Ferry terminal opens", "Digital Journal (AFP)", "Ferry terminal opens"),
        ("Kazakhstan - EU talks resume", None, "Kazakhstan - EU talks resume"),
        (" | World Bulletin", "World Bulletin", ""),
    ],
)
def test_clean_title_drops_the_outlet_name(title: str, outlet: str | None, expected: str) -> None:
    assert clean_title(title, outlet) == expected


# --- keys ----------------------------------------------------------------------------------------------


def test_winnowing_guarantees_a_shared_key_for_a_long_enough_shared_run() -> None:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(5000)]
    for _ in range(50):
        shared = rng.choices(vocabulary, k=WINNOW_GUARANTEE_WORDS)
        a = rng.choices(vocabulary, k=rng.randrange(0, 300)) + shared + rng.choices(vocabulary, k=40)
        b = rng.choices(vocabulary, k=rng.randrange(0, 30)) + shared
        assert winnow(shingle_hashes(a)) & winnow(shingle_hashes(b))


def test_winnowing_keeps_a_small_share_of_the_shingles() -> None:
    words = [f"w{i}" for i in range(1000)]
    keys = winnow(shingle_hashes(words))
    assert 50 < len(keys) < 250  # about 2 / (window + 1) of 996 shingles


def test_lead_key_needs_enough_words() -> None:
    assert lead_key(["a", "b"]) is None
    words = matching_words(ARTICLE)
    assert lead_key(words) == lead_key(words[:12]) != lead_key(words[1:13])


def test_profile_shingles_survive_the_store_encoding() -> None:
    shingles = profile_of(ARTICLE).shingles
    assert decode_shingles(encode_shingles(shingles)) == shingles


def test_profile_keeps_a_bounded_number_of_shingles() -> None:
    long_text = " ".join(f"word{i}" for i in range(MAX_PROFILE_SHINGLES + 500))
    assert len(profile_of(long_text).shingles) == MAX_PROFILE_SHINGLES


# --- names and numbers ---------------------------------------------------------------------------------


def test_name_key_meets_across_scripts_and_spellings() -> None:
    keys = {name_key(w) for w in ("Tokayev", "Токаев", "Tokáyev", "Tokajewa", "Тоқаев")}
    assert keys == {"tkv"}
    assert name_key("Japarov") == name_key("Жапаров")
    assert name_key("Berdimuhamedov") == name_key("Berdimuhamedow") == name_key("Бердымухамедов")
    assert name_key("Orban") != name_key("Erdogan")
    assert name_key("Ali") is None  # too short to tell names apart


def test_story_terms_take_names_acronyms_and_numbers_not_sentence_openers() -> None:
    terms = story_terms(
        "Officials met in Aktau on Tuesday. The OTS said 1,100 trucks and 36,8 tonnes. “Today we open,” he "
        "said."
    )
    assert terms["n:" + str(name_key("Aktau"))] == "Aktau"
    assert terms["n:ots"] == "OTS"
    assert "#:1100" in terms
    assert "#:36.8" in terms
    assert "n:" + str(name_key("Officials")) not in terms  # opens the text
    assert "n:" + str(name_key("Today")) not in terms  # opens a quotation


def test_story_terms_key_a_name_by_its_last_word() -> None:
    terms = story_terms("Officials said President Kassym-Jomart Tokayev met Tokayev's guests in Astana.")
    assert terms == {"n:tkv": "President Kassym-Jomart Tokayev", "n:astn": "Astana"}


def test_story_terms_meet_across_scripts() -> None:
    russian = story_terms("Футбольный клуб «Астана» обыграл АПОЭЛ, гол забил Бауыржан Джолчиев.")
    english = story_terms("Reports say FC Astana beat APOEL after Bauyrzhan Dzholchiyev scored.")
    assert set(russian) == set(english) == {"n:astn", "n:apoel", "n:dlcv"}


def test_story_terms_skip_calendar_words() -> None:
    assert story_terms("They met on Monday, October 10, in Aktau.") == {"#:10": "10", "n:akt": "Aktau"}


def test_story_terms_of_caseless_scripts_are_numbers() -> None:
    assert set(story_terms("셰브론은 카자흐스탄 텡기즈 프로젝트를 368억 달러 확대한다")) == {"#:368"}


# --- same article --------------------------------------------------------------------------------------


def test_first_paragraph_is_a_duplicate_of_the_article() -> None:
    summary = ARTICLE.split("\n\n")[0]
    match = compare_articles(profile_of(summary), profile_of(ARTICLE))
    assert match.containment == 1.0
    assert match.lead_aligned
    assert match.is_duplicate


def test_read_more_truncation_and_homoglyphs_are_duplicates() -> None:
    truncated = ARTICLE[:400].rsplit(" ", 1)[0] + " […] Read more"
    spoiled = ARTICLE.replace("terminal", "tеrminаl").replace(" a ", " а ")
    for variant in (truncated, spoiled):
        match = compare_articles(profile_of(variant), profile_of(ARTICLE))
        assert match.is_duplicate, match


def test_small_edits_keep_a_duplicate() -> None:
    edited = ARTICLE.replace("Tuesday", "Wednesday").replace("900", "950").replace("about", "around")
    match = compare_articles(profile_of(edited), profile_of(ARTICLE))
    assert DUPLICATE_CONTAINMENT <= match.containment < 1.0
    assert match.is_duplicate


def test_whole_copy_with_an_added_introduction_is_a_duplicate() -> None:
    intro = (
        "This story was first published by our partners and is republished here with their kind permission. "
    )
    match = compare_articles(profile_of(intro + ARTICLE), profile_of(ARTICLE))
    assert not match.lead_aligned
    assert match.whole_copy
    assert match.is_duplicate


def test_a_quotation_inside_another_article_is_not_a_duplicate() -> None:
    quoted = ARTICLE.split("\n\n")[1]
    host = OTHER + " " + quoted + " " + OTHER.replace("snow", "rain")
    match = compare_articles(profile_of(quoted), profile_of(host))
    assert match.containment == 1.0
    assert not match.is_duplicate


def test_another_outlets_edit_with_its_own_introduction_is_not_a_duplicate() -> None:
    own_intro = (
        "The long-awaited terminal is the largest investment the region has seen in a decade, and local "
        "business owners have been waiting for it with a mix of hope and impatience, writes our "
        "correspondent. "
    )
    first_paragraph = ARTICLE.split("\n\n")[0]
    match = compare_articles(profile_of(first_paragraph), profile_of(own_intro + ARTICLE))
    assert match.containment == 1.0
    assert not match.is_duplicate


def test_different_texts_are_not_duplicates() -> None:
    match = compare_articles(profile_of(OTHER), profile_of(ARTICLE))
    assert match.containment == 0.0
    assert not match.is_duplicate


def test_texts_too_short_are_never_duplicates() -> None:
    match = compare_articles(profile_of("Engineers in the port city of Aktau"), profile_of(ARTICLE))
    assert not match.is_duplicate


# --- same story ----------------------------------------------------------------------------------------


def terms_profile(terms: set[str], published: datetime = WHEN, shingles: tuple[int, ...] = ()) -> Profile:
    return Profile(
        shingles=shingles, terms=frozenset(terms), day=analyse(doc("", published=published)).profile.day
    )


EVENT = {"n:ktw", "n:bkv", "n:caspn", "#:140", "#:900"}


def test_shared_names_near_in_time_are_one_story() -> None:
    match = compare_stories(terms_profile(EVENT), terms_profile(EVENT | {"n:x1"}, WHEN + timedelta(hours=20)))
    assert match.method == "terms"


def test_shared_names_days_apart_are_not_enough() -> None:
    match = compare_stories(terms_profile(EVENT), terms_profile(EVENT, WHEN + timedelta(days=4)))
    assert match.method is None


def test_names_no_other_story_carries_join_across_days() -> None:
    later = terms_profile(EVENT, WHEN + timedelta(days=12))
    match = compare_stories(later, terms_profile(EVENT), exclusive=frozenset({"n:ktw", "n:bkv", "#:140"}))
    assert match.method == "exclusive-terms"
    assert match.exclusive_terms == {"n:ktw", "n:bkv", "#:140"}


def test_generic_names_are_no_evidence() -> None:
    generic = frozenset({"n:ktw", "n:bkv", "n:caspn"})
    match = compare_stories(terms_profile(EVENT), terms_profile(EVENT), generic=generic)
    assert match.shared_terms == {"#:140", "#:900"}
    assert match.method is None


def test_shared_wording_joins_a_story_within_the_window_only() -> None:
    rewrite = ARTICLE.split("\n\n")[1] + " " + OTHER
    same = compare_stories(profile_of(rewrite), profile_of(ARTICLE, WHEN + timedelta(days=9)))
    assert same.method == "text-overlap"
    too_late = compare_stories(
        profile_of(rewrite), profile_of(ARTICLE, WHEN + timedelta(days=STORY_MAX_DAYS + 1))
    )
    assert too_late.method is None
