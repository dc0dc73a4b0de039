"""Duplicate and same-story decisions, as pure functions: no I/O, no database.

Two questions are asked of every new item, against everything stored:

- Same article? The item is another wrapper of a stored text: a syndicated copy, a re-post under a new URL,
  a feed summary that is the beginning of the full text, a "read more" truncation, homoglyph-spoiled text,
  a title with an outlet prefix. Texts are reduced to their matching words (`matching_words`: HTML removed,
  `fold`ed, look-alike letters read as Latin), cut into word shingles, and compared by containment — the
  share of the shorter text's shingles found in the longer — because a summary is a small part of the
  article, so resemblance (Jaccard) would call it different. Candidates are found through keys that the
  store indexes: winnowed shingle hashes (Schleimer et al., the MOSS fingerprint) guarantee that any run of
  `WINNOW_GUARANTEE_WORDS` shared words yields a shared key whatever the lengths, and one lead key catches
  summaries too short for that.
- Same story? Another outlet's report of the same event: published within days, naming the same people,
  places and numbers, or reusing much of the same wording. A name is a run of capitalised words keyed by
  the consonant skeleton of its last word, the head every outlet keeps, so "President Kassym-Jomart
  Tokayev", "Tokayev" and "Токаев" meet. Precision comes first: names that many stories carry count for
  nothing, names that only one stored story carries count most, and the further apart the dates, the more
  evidence is needed (`compare_stories`).
"""

from __future__ import annotations

import hashlib
import html
import re
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from itertools import accumulate
from typing import Any

from worker.analysis.text import combining_marks, fold, normalize

CONTENT_HASH_MIN_CHARS = 40

# --- same article --------------------------------------------------------------------------------------
# Word shingles of this size are compared; the labelled data defines containment on 5-word shingles too.
SHINGLE_WORDS = 5
# Winnowing window (in shingles): about 2/(w+1) of the shingles become keys, and any shared run of
# w + SHINGLE_WORDS - 1 words is guaranteed to share one.
WINNOW_WINDOW = 15
WINNOW_GUARANTEE_WORDS = WINNOW_WINDOW + SHINGLE_WORDS - 1
# The lead key: the first words of the text, for feed summaries shorter than the winnowing guarantee.
LEAD_WORDS = 8
# Share of the shorter text's shingles that must be in the longer text to call them the same article.
# The labelled data leaves 0.5-0.8 between different reports unscored and calls 0.8 and more a copy.
DUPLICATE_CONTAINMENT = 0.8
# A text must have this many shingles (about a dozen words) to be found inside another.
MIN_CONTAINED_SHINGLES = 8
# The shared text must begin within this many shingles of the start of both texts: a summary, a
# truncation or a re-post begins where the article begins, give or take a byline or dateline; a quotation
# inside another article, or another outlet's edit with its own introduction, does not.
LEAD_SLACK_SHINGLES = 10
# A text found almost whole inside one of similar length is a copy wherever the shared part starts (one
# of them lost or gained an introduction sentence).
WHOLE_COPY_CONTAINMENT = 0.95
WHOLE_COPY_LENGTH_RATIO = 0.5
# A copy shares its beginning with the original (within LEAD_SLACK_SHINGLES), or is a whole copy: the keys
# of a document's first shingles are enough to find what it copies, and cost fewer index reads.
LOOKUP_SHINGLES = 48
# Fewer words than this in the text: the title is read as part of the body.
MIN_BODY_WORDS = 12

# --- same story ----------------------------------------------------------------------------------------
DAY_SECONDS = 86_400.0
# Reports of one event by different outlets appear within a day or so (time zones, late editions).
STORY_NEAR_DAYS = 1.5
# Beyond this no evidence joins two items into one story.
STORY_MAX_DAYS = 31.0
# Near in time: this many shared names and numbers, covering this share of the smaller set of them.
STORY_MIN_SHARED_TERMS = 4
STORY_MIN_TERM_OVERLAP = 0.4
# Any distance up to STORY_MAX_DAYS: much shared wording (shingle containment) ...
STORY_TEXT_OVERLAP = 0.3
# ... or very many shared names and numbers ...
STORY_STRONG_SHARED_TERMS = 8
STORY_STRONG_TERM_OVERLAP = 0.6
# ... or this many shared names and numbers that no other stored story carries (stronger evidence than
# names alone, so a smaller share of them is enough).
STORY_MIN_EXCLUSIVE_TERMS = 3
STORY_EXCLUSIVE_TERM_OVERLAP = 0.3
# Numbers with fewer digits (days of the month, small counts) are never exclusive to one story.
MIN_EXCLUSIVE_NUMBER_DIGITS = 3
# Names shorter than this (as consonant skeleton) are too ambiguous to key a story.
MIN_NAME_SKELETON = 3
# Story terms are indexed per period of this many days; a lookup reads the periods within STORY_MAX_DAYS of
# its date: at most two, as the window (2 * STORY_MAX_DAYS) is shorter than a period.
TERM_PERIOD_DAYS = 64
# Terms a lookup reads the index for (the first ones; all MAX_TERMS are indexed).
LOOKUP_TERMS = 12
# Terms kept per document (the first ones).
MAX_TERMS = 24
# All-capital words up to this length are acronyms (OTS, NATO), kept even when they open a sentence.
MAX_ACRONYM = 6
# Texts shorter than this (in words) also take names from the title.
MIN_TITLE_TERMS_WORDS = 24
# Names seen often enough to be worth remembering their keys (a name is keyed many times a day).
NAME_KEY_CACHE = 65_536
# Shingles kept in an article's stored profile (about as many words).
MAX_PROFILE_SHINGLES = 2000

# What each verdict means, for explanations (`newswatch show ID --why`).
DUPLICATE_RULE = (
    f"at least {DUPLICATE_CONTAINMENT:.0%} of the shorter text's {SHINGLE_WORDS}-word sequences are in the "
    f"other and the shared text starts within {LEAD_SLACK_SHINGLES} words of both beginnings, or at "
    f"least {WHOLE_COPY_CONTAINMENT:.0%} of a text at least {WHOLE_COPY_LENGTH_RATIO:.0%} as long as the "
    "other is in it"
)
STORY_RULES = {
    "text-overlap": f"at least {STORY_TEXT_OVERLAP:.0%} of the shorter text's wording is in the other, "
    f"within {STORY_MAX_DAYS:.0f} days",
    "terms-strong": f"at least {STORY_STRONG_SHARED_TERMS} shared names and numbers, "
    f"{STORY_STRONG_TERM_OVERLAP:.0%} of the smaller set, within {STORY_MAX_DAYS:.0f} days",
    "exclusive-terms": f"at least {STORY_MIN_EXCLUSIVE_TERMS} shared names and numbers that no other stored "
    f"story carries, {STORY_EXCLUSIVE_TERM_OVERLAP:.0%} of the smaller set, within {STORY_MAX_DAYS:.0f} days",
    "terms": f"at least {STORY_MIN_SHARED_TERMS} shared names and numbers, {STORY_MIN_TERM_OVERLAP:.0%} of "
    f"the smaller set, within {STORY_NEAR_DAYS:g} days",
}

_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"\w+")
# Words (starting with a letter) and numbers with their punctuation ("1,100", "36.8"), for story terms.
_TERM_TOKEN = r"[^\W\d_][^\W_]*|\d+(?:[.,]\d+)*"
# The next term token, after the gaps and lower-case ASCII words before it: those words are neither names
# nor numbers, and skipping them inside the regex spares a Python step for most words of a text. A skipped
# word still ends a name: the text between the name and the next token is then not a joiner.
_TERM_SCAN = re.compile(rf"(?:[a-z][^\W_]*+|[\W_]++)*+(?P<token>{_TERM_TOKEN})?")
# What ends the text before a sentence opens: a full stop (maybe closing a quotation), a line break, or
# an opening quotation mark.
_OPENS_SENTENCE = re.compile(r"(?:[.!?][\"'”’»)\]]?|[\n“\"«‘(\[])\s*$")
_OPENING_QUOTES = frozenset("«“\"‘'„")
_CLOSING_QUOTES = frozenset("»”\"’'“")
_THOUSANDS = re.compile(r"(?<=\d)[.,](?=\d{3}(?:\D|$))")
_VOWELS = re.compile(r"[aeiouy]")
# What may stand between two words of one name: "Kassym-Jomart Tokayev".
_NAME_JOINERS = frozenset({" ", "-", "\u2010"})
_REPEATS = re.compile(r"(.)\1+")

# Lower-case Cyrillic and Greek letters that look like Latin ones: a word made only of Latin letters and
# these is read as Latin ("а" typed for "a", "jараrоv" for "japarov").
_LOOKALIKE = dict(zip("аеорсухіјѕԁԛԝһӏοανικτρυ", "aeopcyxijsdqwhloavuktpu", strict=True))
_LOOKALIKE_TABLE = str.maketrans(_LOOKALIKE)
_LOOKALIKE_CHARS = frozenset(_LOOKALIKE)
_LOOKALIKE_CHAR = re.compile(f"[{''.join(_LOOKALIKE)}]")

# What `text.fold` does to single characters, as whole-string steps: its extra letter folds (dotless i,
# ø, ß…) and removing every combining mark (diacritics after NFD). Searches and a regex, not str.translate
# with tables that lack most characters: that costs ~0.1 µs a character of non-ASCII text.
_FOLD_EXTRA = (("ı", "i"), ("ø", "o"), ("đ", "d"), ("ł", "l"), ("ß", "ss"), ("æ", "ae"), ("œ", "oe"))


_COMBINING_MARK = combining_marks()

# Cyrillic (Russian, Kazakh, Kyrgyz, Ukrainian letters) to Latin, for keying names across scripts.
_CYRILLIC_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ғ": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "і": "i", "ї": "i", "к": "k", "қ": "k", "л": "l", "м": "m", "н": "n", "ң": "n",
    "о": "o", "ө": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ү": "u", "ұ": "u", "ф": "f",
    "х": "kh", "һ": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "",
    "э": "e", "є": "e", "ә": "a", "ю": "yu", "я": "ya",
}  # fmt: skip
_CYRILLIC_TABLE = str.maketrans(_CYRILLIC_LATIN)
# Spellings of one sound across transliterations ("Zhaparov"/"Japarov", "Berdimuhamedow"/"-dov").
_SOUND_FOLDS = (("shch", "s"), ("zh", "j"), ("kh", "h"), ("ts", "c"), ("ch", "c"), ("sh", "s"), ("w", "v"))


def content_hash(title: str, text: str) -> str | None:
    """Hash of the folded text (the title when the text is too short to identify an article).

    None when there is too little text to identify anything: two empty items are not the same article.
    """
    basis = " ".join(fold(text).split())
    if len(basis) < CONTENT_HASH_MIN_CHARS:
        basis = " ".join(fold(f"{title}\n{text}").split())
        if len(basis) < CONTENT_HASH_MIN_CHARS:
            return None
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """What detection knows of an item: the stored article fields it compares."""

    title: str
    text: str
    canonical_url: str | None
    outlet: str | None
    published: datetime
    feed_id: int | None = None
    source: str = "feed"


@dataclass(frozen=True)
class Decision:
    """The verdict on one new item against the store, with what decided it (for `show --why`)."""

    duplicate_of: int | None = None  # id of the ORIGINAL article (never of another duplicate)
    dup_method: str | None = None  # e.g. "url", "hash", "simhash+containment"
    dup_score: float | None = None
    story_of: int | None = None  # an article whose story this item joins; None starts a new story
    story_method: str | None = None
    story_score: float | None = None
    explain: dict[str, Any] = field(default_factory=dict)


# The story method of a same-article duplicate: it is in its original's story by definition.
STORY_SAME_ARTICLE = "same-article"


def exact_decision(kind: str, value: str, root: int) -> Decision:
    """An exact duplicate: an identity key (canonical URL or text hash) of `root` matched."""
    return Decision(
        duplicate_of=root,
        dup_method=kind,
        dup_score=1.0,
        story_of=root,
        story_method=f"{STORY_SAME_ARTICLE}:{kind}",
        story_score=1.0,
        explain={"matched_key": kind, "value": value, "article_id": root},
    )


# --- text preparation ----------------------------------------------------------------------------------


def plain_text(text: str) -> str:
    """`text` without HTML tags and entities: feeds put markup in what should be plain text."""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def _read_as_latin(word: str) -> str:
    if word.isascii() or not all(ch.isascii() or ch in _LOOKALIKE_CHARS for ch in word):
        return word
    return word.translate(_LOOKALIKE_TABLE)


def prepare(text: str) -> str:
    """`text` as detection reads it: markup removed, `normalize`d (once per text: the costly step)."""
    return normalize(plain_text(text))


def _fold_prepared(text: str) -> str:
    """`text.fold` of a `prepare`d text, in whole-string steps instead of character by character."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFD", _fold_extra(text).casefold())
    return _fold_extra(_COMBINING_MARK.sub("", folded))


def _fold_extra(text: str) -> str:
    for letter, folded in _FOLD_EXTRA:
        if letter in text:
            text = text.replace(letter, folded)
    return text


def words_of(prepared: str) -> list[str]:
    """The words detection compares, of a `prepare`d text: folded, look-alike letters read as Latin."""
    folded = _fold_prepared(prepared)
    words = _WORD.findall(folded)
    if _LOOKALIKE_CHAR.search(folded) is None:  # nothing to read as Latin: the usual case
        return words
    return [_read_as_latin(word) for word in words]


def matching_words(text: str) -> list[str]:
    """The words detection compares: folded, look-alike letters read as Latin, markup ignored."""
    return words_of(prepare(text))


def clean_title(title: str, outlet: str | None) -> str:
    """The title without the outlet's name around it ("Kazinform - …", "… | The Astana Times")."""
    outlet_words = set(matching_words(outlet)) if outlet else set()
    parts = re.split(r"\s+[|–—-]\s+|\s*\|\s*|^([^:]{1,60}):\s+", plain_text(title))
    kept = []
    for index, part in enumerate(p for p in parts if p is not None):
        words = matching_words(part)
        if not words:
            continue
        is_outlet = bool(outlet_words) and set(words) <= outlet_words
        # A short last segment after a bar is a site name even when the outlet is unknown.
        is_site_suffix = index > 0 and "|" in title and len(words) <= 4 and part == parts[-1]
        if not (is_outlet or is_site_suffix):
            kept.append(part.strip())
    return " - ".join(kept)


# blake2b with an 8-byte digest, to copy: copying is cheaper than constructing one with that parameter.
_BLAKE2B_64 = hashlib.blake2b(digest_size=8)


def _hash64(value: str) -> int:
    """A stable signed 64-bit hash (fits BIGINT on every database): blake2b with an 8-byte digest."""
    hasher = _BLAKE2B_64.copy()
    hasher.update(value.encode("utf-8"))
    return int.from_bytes(hasher.digest(), "big", signed=True)


def shingle_hashes(words: Sequence[str], size: int = SHINGLE_WORDS) -> list[int]:
    """Hashes of the `size`-word shingles, in text order (the first one is the text's lead).

    Each is `_hash64` of the shingle's words joined by spaces; they are hashed as slices of the whole
    text's bytes, so that no shingle is joined or encoded on its own.
    """
    if len(words) < size:
        return []
    text = " ".join(words)
    data = text.encode("utf-8")
    byte_lengths = map(len, words) if len(data) == len(text) else (len(w.encode("utf-8")) for w in words)
    ends = list(accumulate(length + 1 for length in byte_lengths))  # after each word and its space
    starts = [0, *ends[: len(words) - size]]  # of each shingle's first word
    digests = []
    for start, end in zip(starts, ends[size - 1 :], strict=True):
        hasher = _BLAKE2B_64.copy()
        hasher.update(data[start : end - 1])
        digests.append(hasher.digest())
    return list(struct.unpack(f">{len(digests)}q", b"".join(digests)))


def window_minima(hashes: Sequence[int], window: int = WINNOW_WINDOW) -> list[int]:
    """The minimum of every `window` consecutive hashes, in text order (one when there are fewer).

    A window's minimum is kept until it leaves the window or a smaller hash enters: the minima are looked
    for again only about twice per `window` hashes.
    """
    if len(hashes) <= window:
        return [min(hashes)] if hashes else []
    minima = []
    lowest, at = 0, -1  # the current window's minimum and where it is
    for start in range(len(hashes) - window + 1):
        end = start + window - 1
        if at < start:
            span = hashes[start : end + 1]
            lowest = min(span)
            at = start + span.index(lowest)
        elif hashes[end] <= lowest:
            lowest, at = hashes[end], end
        minima.append(lowest)
    return minima


def winnow(hashes: Sequence[int], window: int = WINNOW_WINDOW) -> set[int]:
    """The minimum hash of every window of `window` consecutive hashes (robust winnowing).

    Two texts sharing a run of `window` consecutive shingles pick the same minimum from it, so they share a
    key however long either text is — the property a summary-inside-article lookup needs.
    """
    return set(window_minima(hashes, window))


def lead_key(words: Sequence[str]) -> int | None:
    """Hash of the first `LEAD_WORDS` words, or None when the text is shorter than that."""
    if len(words) < LEAD_WORDS:
        return None
    return _hash64(" ".join(words[:LEAD_WORDS]))


# --- terms: names and numbers --------------------------------------------------------------------------


@lru_cache(maxsize=NAME_KEY_CACHE)
def _latin(word: str) -> str:
    """`word` folded, in Latin letters where it was written in Cyrillic ("АПОЭЛ" → "apoel")."""
    return _read_as_latin(fold(word)).translate(_CYRILLIC_TABLE)


@lru_cache(maxsize=NAME_KEY_CACHE)
def name_key(word: str) -> str | None:
    """The script- and spelling-independent key of a name: its Latin consonant skeleton.

    "Токаев", "Tokayev", "Tokáyev" and Polish "Tokajewa" all give "tkv". None when the skeleton is too
    short to tell names apart.
    """
    latin = _latin(word)
    if not latin.isascii() or not latin.isalpha():
        return None
    for spelling, sound in _SOUND_FOLDS:
        latin = latin.replace(spelling, sound)
    latin = latin.replace("j", "y")
    skeleton = latin[0] + _VOWELS.sub("", latin[1:])
    skeleton = _REPEATS.sub(r"\1", skeleton)
    return skeleton if len(skeleton) >= MIN_NAME_SKELETON else None


# Capitalised in English but not names: every story of a month has some.
_CALENDAR_WORDS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
)  # fmt: skip


def _number_key(token: str) -> str | None:
    """A number as written in any locale ("1,100", "1.100" → "1100"; "36,8" → "36.8"), two digits or more."""
    number = _THOUSANDS.sub("", token).replace(",", ".")
    digits = sum(ch.isdigit() for ch in number)
    return number if digits >= 2 else None


def _opens_sentence(text: str, start: int, end: int) -> bool:
    """Whether the word at `start:end` opens a sentence or a quotation — unless the quotation is just this
    word, as Russian and Kazakh quote names («Астана», «Самрук-Казына»)."""
    if start == 0:
        return True
    if _OPENS_SENTENCE.search(text, max(0, start - 3), start) is None:
        return False
    return not (text[start - 1] in _OPENING_QUOTES and text[end : end + 1] in _CLOSING_QUOTES)


_CALENDAR_KEYS = frozenset(key for word in _CALENDAR_WORDS if (key := name_key(word)) is not None)


def _name_token_key(token: str, clean: str, start: int) -> str | None:
    """The key of a word that is a name here, or None (lower-case, too short, or opening a sentence)."""
    if not token[0].isupper() or len(token) < 2:
        return None
    if token.isupper() and len(token) <= MAX_ACRONYM:
        return _latin(token)
    if len(token) < 3 or _opens_sentence(clean, start, start + len(token)):
        return None
    key = name_key(token)
    return None if key in _CALENDAR_KEYS else key


def story_terms(text: str) -> dict[str, str]:
    """The names and numbers of `text` (see `terms_of`)."""
    return terms_of(prepare(text))


def terms_of(clean: str) -> dict[str, str]:
    """The names and numbers of a `prepare`d text: {key: the name or number as first written}.

    A name is a run of capitalised words that do not open a sentence (a sentence's first word is
    capitalised whatever it is), joined by spaces or hyphens, or an acronym. Its key is the `name_key` of
    its last word, the head that every outlet keeps: "President Kassym-Jomart Tokayev", "Mr Tokayev" and
    "Токаев" are one name, "n:tkv". Numbers are keyed "#:" and their digits. Scripts without capitals give
    numbers only. The first `MAX_TERMS` terms are kept: news puts what matters first.
    """
    terms: dict[str, str] = {}
    run: list[tuple[int, int, str]] = []  # the words of the name being read: start, end, name key

    def close_run() -> None:
        if run:
            terms.setdefault(f"n:{run[-1][2]}", clean[run[0][0] : run[-1][1]])
            run.clear()

    for match in _TERM_SCAN.finditer(clean):
        token = match.group("token")
        if token is None:  # the gap at the end of the text
            continue
        start = match.start("token")
        first = token[0]
        if first.isdigit():
            close_run()
            number = _number_key(token)
            if number is not None:
                terms.setdefault(f"#:{number}", token)
        elif not first.isupper() or (key := _name_token_key(token, clean, start)) is None:
            close_run()
        else:
            if run and clean[run[-1][1] : start] not in _NAME_JOINERS:
                close_run()
            run.append((start, start + len(token), key))
        if len(terms) >= MAX_TERMS:
            break
    close_run()
    return dict(list(terms.items())[:MAX_TERMS])


# --- profiles ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What is compared of one stored article; kept in the store so a lookup never re-reads texts."""

    shingles: tuple[int, ...]  # 32-bit shingle hashes in text order (the first one is the lead)
    terms: frozenset[str]
    day: float  # published, in days since the epoch

    @cached_property
    def shingle_set(self) -> frozenset[int]:
        return frozenset(self.shingles)


@dataclass(frozen=True)
class Analysis:
    """A new document's profile and the keys it is looked up and indexed under."""

    profile: Profile
    winnow_keys: frozenset[int]  # all of them: what the document is indexed under
    lead_winnow_keys: frozenset[int]  # those of its beginning: what it is looked up by
    lead_key: int | None
    term_words: dict[str, str]  # term -> the name or number as written, for explanations

    def lookup_terms(self) -> list[str]:
        """The terms a lookup reads the index for: the first ones, which name what the report is about."""
        return list(self.term_words)[:LOOKUP_TERMS]


def _body_words(prepared: str, title: str, outlet: str | None) -> list[str]:
    """The words that identify an article: its text, with the title when the text alone is too short."""
    words = words_of(prepared)
    if len(words) < MIN_BODY_WORDS:
        words = matching_words(clean_title(title, outlet)) + words
    return words


def day_number(published: datetime) -> float:
    """`published` in days since the epoch (a naive datetime is taken as UTC)."""
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return published.timestamp() / DAY_SECONDS


def analyse(doc: Document) -> Analysis:
    prepared = prepare(doc.text)
    words = _body_words(prepared, doc.title, doc.outlet)
    hashes = shingle_hashes(words)
    term_words = terms_of(prepared)
    if len(words) < MIN_TITLE_TERMS_WORDS:
        for key, word in story_terms(clean_title(doc.title, doc.outlet)).items():
            term_words.setdefault(key, word)
    # The store keeps 32 bits of each shingle hash: plenty to measure containment, half the space.
    shingles = tuple(h >> 32 for h in hashes[:MAX_PROFILE_SHINGLES])
    minima = window_minima(hashes)
    return Analysis(
        profile=Profile(shingles=shingles, terms=frozenset(term_words), day=day_number(doc.published)),
        winnow_keys=frozenset(minima),
        # The windows within the first LOOKUP_SHINGLES (≥ WINNOW_WINDOW) shingles are the text's first ones.
        lead_winnow_keys=frozenset(minima[: LOOKUP_SHINGLES - WINNOW_WINDOW + 1]),
        lead_key=lead_key(words),
        term_words=term_words,
    )


def term_period(day: float) -> int:
    return int(day // TERM_PERIOD_DAYS)


def periods_around(day: float) -> list[int]:
    """The periods overlapping `day` ± STORY_MAX_DAYS: where the stories near in time are indexed."""
    return sorted({term_period(day - STORY_MAX_DAYS), term_period(day), term_period(day + STORY_MAX_DAYS)})


def term_period_key(term: str, period: int) -> int:
    """The index key of a story term in a period."""
    return _hash64(f"{term}@{period}")


def encode_shingles(shingles: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(shingles)}i", *shingles)


def decode_shingles(blob: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(blob) // 4}i", blob)


# --- comparisons ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleMatch:
    """How much of one text is inside another, and where the shared part begins in each."""

    containment: float
    shared: int
    shorter: int
    longer: int
    # Index of the first shingle found in the other text (its length when none), in the shorter and the
    # longer text.
    offset_shorter: int
    offset_longer: int

    @property
    def lead_aligned(self) -> bool:
        return max(self.offset_shorter, self.offset_longer) <= LEAD_SLACK_SHINGLES

    @property
    def whole_copy(self) -> bool:
        return (
            self.containment >= WHOLE_COPY_CONTAINMENT
            and self.shorter >= WHOLE_COPY_LENGTH_RATIO * self.longer
        )

    @property
    def is_duplicate(self) -> bool:
        if self.shorter < MIN_CONTAINED_SHINGLES or self.containment < DUPLICATE_CONTAINMENT:
            return False
        return self.lead_aligned or self.whole_copy

    def explain(self) -> dict[str, Any]:
        return {
            "containment": round(self.containment, 3),
            "shared_shingles": self.shared,
            "shingles_of_shorter": self.shorter,
            "shingles_of_longer": self.longer,
            "shared_text_starts_at_shingle": {"shorter": self.offset_shorter, "longer": self.offset_longer},
        }


def _first_shared(shingles: Sequence[int], other: frozenset[int]) -> int:
    return next((i for i, value in enumerate(shingles) if value in other), len(shingles))


def compare_articles(a: Profile, b: Profile) -> ArticleMatch:
    """Containment of the shorter text's shingles in the longer, and where the shared text begins."""
    short, long = (a, b) if len(a.shingle_set) <= len(b.shingle_set) else (b, a)
    short_set, long_set = short.shingle_set, long.shingle_set
    shared = len(short_set & long_set)
    return ArticleMatch(
        containment=shared / len(short_set) if short_set else 0.0,
        shared=shared,
        shorter=len(short_set),
        longer=len(long_set),
        offset_shorter=_first_shared(short.shingles, long_set),
        offset_longer=_first_shared(long.shingles, short_set),
    )


@dataclass(frozen=True)
class StoryMatch:
    """The evidence that two reports are of the same event; `method` is None when it is not enough."""

    method: str | None
    score: float
    days_apart: float
    shared_terms: frozenset[str]
    exclusive_terms: frozenset[str]
    term_overlap: float
    text_overlap: float


def _is_small_number(term: str) -> bool:
    """Days of the month and small counts: every story of a month has some, whatever its subject."""
    return term.startswith("#:") and sum(ch.isdigit() for ch in term) < MIN_EXCLUSIVE_NUMBER_DIGITS


def compare_stories(
    a: Profile,
    b: Profile,
    generic: frozenset[str] = frozenset(),
    exclusive: frozenset[str] = frozenset(),
) -> StoryMatch:
    """Whether `a` and `b` report the same event.

    `generic` terms are carried by too many stories to be evidence; `exclusive` terms are carried by no
    stored story but `b`'s. The tiers, from the least to the most dependent on time:
    - text-overlap: much of the shorter text's wording is in the other (a rewrite of the same copy);
    - terms-strong: very many shared names and numbers;
    - exclusive-terms: several shared names and numbers that no other story carries;
    - terms: within a day and a half, several shared names and numbers.
    """
    days = abs(a.day - b.day)
    terms_a, terms_b = a.terms - generic, b.terms - generic
    shared = terms_a & terms_b
    smaller = min(len(terms_a), len(terms_b))
    term_overlap = len(shared) / smaller if smaller else 0.0
    text_overlap = containment(a.shingles, b.shingles)
    exclusive_shared = {t for t in shared & exclusive if not _is_small_number(t)}
    method: str | None = None
    if days <= STORY_MAX_DAYS:
        if text_overlap >= STORY_TEXT_OVERLAP:
            method = "text-overlap"
        elif len(shared) >= STORY_STRONG_SHARED_TERMS and term_overlap >= STORY_STRONG_TERM_OVERLAP:
            method = "terms-strong"
        elif (
            len(exclusive_shared) >= STORY_MIN_EXCLUSIVE_TERMS
            and term_overlap >= STORY_EXCLUSIVE_TERM_OVERLAP
        ):
            method = "exclusive-terms"
        elif (
            days <= STORY_NEAR_DAYS
            and len(shared) >= STORY_MIN_SHARED_TERMS
            and term_overlap >= STORY_MIN_TERM_OVERLAP
        ):
            method = "terms"
    return StoryMatch(
        method=method,
        score=round(max(text_overlap, term_overlap), 4) if method else 0.0,
        days_apart=days,
        shared_terms=frozenset(shared),
        exclusive_terms=frozenset(exclusive_shared),
        term_overlap=term_overlap,
        text_overlap=text_overlap,
    )


def containment(a: Iterable[int], b: Iterable[int]) -> float:
    """Share of the smaller set found in the other (0 when either is empty)."""
    set_a, set_b = set(a), set(b)
    if not set_a or not set_b:
        return 0.0
    return len(set_a & set_b) / min(len(set_a), len(set_b))
