"""The fast paths of text preparation give exactly what their plain definitions give.

Parsing and duplicate analysis run on every item, so their hot steps take shortcuts: searches instead of
str.translate, regexes that skip what cannot matter, a winnowing pass that keeps each window's minimum
while it can, shingle hashes taken from one encoded text, one shared sanitiser for fragments without
links. Each test compares a shortcut with the definition it replaced, written the plain way, on generated
text full of the cases the shortcut skips: an edit to either side that changes a decision fails here.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
import unicodedata
from datetime import UTC, datetime

import pytest

from worker.analysis import dedup, text
from worker.ingest import sanitize

SEED = 20240601
WHEN = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)

# Pieces of text that exercise every branch: names, acronyms, numbers, sentence and quotation openers,
# name joiners, calendar words, look-alike and mixed-script words, diacritics and combining marks,
# ligatures and full-width letters, caseless scripts, odd whitespace, invisible characters, markup.
_PIECES = (
    "the", "said", "on", "and", "a", "in", "of", "km5", "5km", "iPhone", "x_y", "état", "über", "прибыл",
    "в", "по", "сказал", "τον", "Tokayev", "Astana", "Kassym-Jomart", "President", "Mr", "OTS", "NATO",
    "UN", "ABCDEFGH", "Ali", "Today", "Monday", "October", "Токаев", "Тоқаев", "АПОЭЛ", "«Астана»",
    "Бауыржан", "Vаrkert", "jараrоv", "Мoсква", "αβγabc", "Ωmega", "×Москва", "Türkiye", "İstanbul",
    "Orbán", "Łódź", "straße", "Øresund", "æon", "œuvre", "ıi", "đ", "e\u0301", "a\u0308x", "\u0301",
    "ﬁnance", "Ｔｏｋａｙｅｖ", "１２３", "²", "ǅemal", "東京", "한국어", "٣٦٨", "1,100", "1.100", "36,8",
    "36.8", "2024", "7", "10", "007", "1,2,3", "\u00ad", "\u200b", "\ufeff", "<b>", "</b>", "&amp;", "&",
)  # fmt: skip
_GAPS = (
    " ", " ", " ", " ", "-", "\u2010", " - ", ". ", "! ", "? ", ", ", ": ", "\n", "\n\n", " \n \n ", "  ",
    "\t", "\xa0", "\u2003", "\u3000", "\r\n", "\r", " «", "» ", "“", "”", '"', "'", "(", ")", "_", "…",
)  # fmt: skip


def _texts(count: int, seed: int = SEED, longest: int = 60) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, longest)):
            parts.append(rng.choice(_PIECES))
            parts.append(rng.choice(_GAPS))
        out.append("".join(parts))
    return out


TEXTS = _texts(600)
LONG_TEXTS = _texts(60, seed=SEED + 1, longest=400)  # past MAX_TERMS, LOOKUP_SHINGLES, many windows

# --- the plain definitions ------------------------------------------------------------------------------

_PLAIN_SCRIPT_RUN = re.compile(r"[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]+")
_PLAIN_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_PLAIN_FOLD_EXTRA = str.maketrans({"ı": "i", "ø": "o", "đ": "d", "ł": "l", "ß": "ss", "æ": "ae", "œ": "oe"})
_PLAIN_COMBINING = dict.fromkeys(c for c in range(0x10000) if unicodedata.combining(chr(c)))
_PLAIN_TERM_TOKEN = re.compile(dedup._TERM_TOKEN)


def plain_repair(value: str) -> str:
    if value.isascii():
        return value
    return _PLAIN_SCRIPT_RUN.sub(lambda m: text._repair_word(m.group(0)), value)


def plain_normalize(value: str) -> str:
    if not value:
        return ""
    if not value.isascii():
        value = plain_repair(unicodedata.normalize("NFKC", value).translate(_PLAIN_INVISIBLE))
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = re.sub(r"[^\S\n]+", " ", value)
    value = re.sub(r"\n\s*\n+", "\n\n", value)
    return "\n".join(line.strip() for line in value.split("\n")).strip()


def plain_fold_prepared(value: str) -> str:
    if value.isascii():
        return value.lower()
    folded = unicodedata.normalize("NFD", value.translate(_PLAIN_FOLD_EXTRA).casefold())
    return folded.translate(_PLAIN_COMBINING).translate(_PLAIN_FOLD_EXTRA)


def plain_hash64(value: str) -> int:
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def plain_winnow(hashes: list[int], window: int) -> set[int]:
    if len(hashes) <= window:
        return {min(hashes)} if hashes else set()
    return {min(hashes[start : start + window]) for start in range(len(hashes) - window + 1)}


def plain_terms_of(clean: str) -> dict[str, str]:
    """Every token read in turn; a lower-case word closes the name being read."""
    terms: dict[str, str] = {}
    run: list[re.Match[str]] = []

    def close_run() -> None:
        if run:
            key = dedup._name_token_key(run[-1].group(0), clean, run[-1].start())
            if key is not None:
                terms.setdefault(f"n:{key}", clean[run[0].start() : run[-1].end()])
            run.clear()

    for match in _PLAIN_TERM_TOKEN.finditer(clean):
        token = match.group(0)
        if token[0].isdigit():
            close_run()
            number = dedup._number_key(token)
            if number is not None:
                terms.setdefault(f"#:{number}", token)
        elif not token[0].isupper() or dedup._name_token_key(token, clean, match.start()) is None:
            close_run()
        else:
            if run and clean[run[-1].end() : match.start()] not in dedup._NAME_JOINERS:
                close_run()
            run.append(match)
        if len(terms) >= dedup.MAX_TERMS:
            break
    close_run()
    return dict(list(terms.items())[: dedup.MAX_TERMS])


# --- text.normalize ----------------------------------------------------------------------------------


def test_other_space_is_every_whitespace_character_but_space_and_newline() -> None:
    every_character = "".join(map(chr, range(sys.maxunicode + 1)))
    whitespace = {ch for ch in every_character if ch.isspace()}
    assert set(text._OTHER_SPACE.findall(every_character)) == whitespace - {" ", "\n"}


def test_normalize_equals_its_definition() -> None:
    for value in TEXTS + LONG_TEXTS:
        assert text.normalize(value) == plain_normalize(value), repr(value)


def test_repair_mixed_script_equals_repairing_every_run() -> None:
    rng = random.Random(SEED)
    letters = "aoepcxyABEKMHOPCTXéÀ×÷ɏаеорсухіАВЕКМНОРСТХЖжѐӿ\u0483οανικτρυΑΒΕΖΗΩ\u037e\u0384"
    for _ in range(3000):
        value = "".join(rng.choice(letters + " -1.") for _ in range(rng.randint(1, 40)))
        assert text.repair_mixed_script(value) == plain_repair(value), repr(value)


# --- dedup: words and hashes --------------------------------------------------------------------------


def test_fold_prepared_equals_its_definition() -> None:
    for value in TEXTS + LONG_TEXTS:
        assert dedup._fold_prepared(value) == plain_fold_prepared(value), repr(value)
        prepared = dedup.prepare(value)
        assert dedup._fold_prepared(prepared) == plain_fold_prepared(prepared), repr(value)


def test_words_of_reads_look_alike_letters_as_latin_where_every_word_read_alone_does() -> None:
    for value in TEXTS + LONG_TEXTS:
        prepared = dedup.prepare(value)
        each = [dedup._read_as_latin(w) for w in dedup._WORD.findall(plain_fold_prepared(prepared))]
        assert dedup.words_of(prepared) == each, repr(value)


@pytest.mark.parametrize("size", [1, 2, 5, 6])
def test_shingle_hashes_are_the_hashes_of_the_joined_words(size: int) -> None:
    rng = random.Random(SEED)
    vocabulary = ["a", "word", "ü", "über", "токаев", "東京", "😀", "two words", "", "x" * 40]
    for length in range(12):
        words = [rng.choice(vocabulary) for _ in range(length)]
        expected = [plain_hash64(" ".join(words[i : i + size])) for i in range(len(words) - size + 1)]
        assert dedup.shingle_hashes(words, size) == expected, words


def test_hash64_is_blake2b_of_eight_bytes() -> None:
    for value in ("", "a", "kazakhstan astana tokayev met leaders", "токаев@412", "😀"):
        assert dedup._hash64(value) == plain_hash64(value)


@pytest.mark.parametrize("window", [1, 2, 3, 15, 16])
def test_window_minima_give_the_minimum_of_every_window(window: int) -> None:
    rng = random.Random(SEED + window)
    for length in range(60):
        for _ in range(5):
            hashes = [rng.randint(-6, 6) for _ in range(length)]  # few values: many ties
            assert dedup.winnow(hashes, window) == plain_winnow(hashes, window), hashes


def test_analysis_keys_are_the_winnow_of_all_and_of_the_first_shingles() -> None:
    rng = random.Random(SEED)
    for length in range(0, 120, 3):
        words = [f"w{rng.randint(0, 10**6)}" for _ in range(length)]
        analysis = dedup.analyse(dedup.Document("", " ".join(words), None, None, WHEN))
        hashes = [plain_hash64(" ".join(words[i : i + 5])) for i in range(len(words) - 4)]
        assert analysis.winnow_keys == plain_winnow(hashes, dedup.WINNOW_WINDOW)
        assert analysis.lead_winnow_keys == plain_winnow(hashes[: dedup.LOOKUP_SHINGLES], dedup.WINNOW_WINDOW)


# --- dedup: story terms ---------------------------------------------------------------------------------


def test_terms_of_equals_reading_every_token() -> None:
    reached_max = 0
    for value in TEXTS + LONG_TEXTS:
        prepared = dedup.prepare(value)
        terms = dedup.terms_of(prepared)
        assert list(terms.items()) == list(plain_terms_of(prepared).items()), repr(value)
        reached_max += len(terms) == dedup.MAX_TERMS
    assert reached_max >= 10  # the cut at MAX_TERMS is exercised


# --- sanitize: one cleaner for fragments without links ---------------------------------------------------


def test_a_base_changes_only_the_url_attributes() -> None:
    base = "http://example.com/a/"
    for tag, names in sanitize.ALLOWED_ATTRIBUTES.items():
        for name in names:
            fragment = f'<{tag} {name}="rel/x">t</{tag}>'
            if sanitize._cleaner(base).clean(fragment) != sanitize._cleaner(None).clean(fragment):
                assert name in sanitize.URL_ATTRIBUTES, (tag, name)


@pytest.mark.parametrize(
    ("fragment", "resolved"),
    [
        ('<a HREF="x">t</a>', 'href="http://example.com/a/x"'),
        ("<IMG Src=p.png>", 'src="http://example.com/a/p.png"'),
        ('<p>a</p><a href="">b</a>', 'href="http://example.com/a/"'),
    ],
)
def test_links_are_resolved_whatever_their_spelling(fragment: str, resolved: str) -> None:
    assert resolved in sanitize.sanitize_html(fragment, "http://example.com/a/")
