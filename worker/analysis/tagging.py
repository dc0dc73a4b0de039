"""Topic tags with evidence: which configured names occur in an article, where, and how much they weigh.

A tag (kazakhstan, ots, or one a user adds) is data: terms with aliases per language, a weight each, optional
context and exclusions, a threshold. Matching is deliberately plain — names, not a model — so every decision
can be explained by the evidence it returns, and a wrong decision can be fixed by editing config/tags.toml.

Why the scoring has more than weights and a threshold (all of it configurable, see config/tags.toml):
- Where a name stands says whether it is the subject: the title counts most, the lead sentence more than the
  body, a dateline ("BISHKEK (Reuters) –") not at all — it is where the report was filed.
- "Azerbaijan, Kazakhstan, Kyrgyzstan and Uzbekistan signed …": a name in an enumeration of peers (other
  states and their leaders) is one name in a list, not the story, so it counts a fraction.
- Repeats add with diminishing returns, so one name said five times does not outweigh three different ones.

How matching stays fast: every alias of every rule goes into one Aho-Corasick automaton, keyed by the folded
stem of its most name-like word and woken only at word starts; a hit is confirmed by that alias's own regex
(word boundaries, allowed suffixes, the other words). Title and text are folded once per item, together, by
a vectorised equivalent of `worker.analysis.text.fold_with_offsets` that keeps every character in place, so
evidence offsets cost nothing in the common case.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any, NamedTuple

import ahocorasick

from worker.analysis.text import char_class, combining_marks, fold_with_offsets, repair_mixed_script

# ---------------------------------------------------------------------------------------------------------
# Defaults: what a rule file gets for every setting it leaves out.

DEFAULT_THRESHOLD = 3.0
DEFAULT_TITLE_MULTIPLIER = 2.0
DEFAULT_LEAD_MULTIPLIER = 1.5
DEFAULT_REPEAT_FACTOR = 0.5
DEFAULT_LIST_MULTIPLIER = 0.25
DEFAULT_LIST_MIN_PEERS = 2
DEFAULT_LIST_GAP_CHARS = 40
DEFAULT_DATELINE_MAX_CHARS = 40
DEFAULT_LEAD_MAX_CHARS = 300

# Between the words of a phrase: spaces, hyphens, dashes and quotes ("ФК «Астана»", "Nur-Sultan"), a few.
_WORD_GAP = r"[\s\-\u2010-\u2015'\"«»“”„‚‹›]{1,4}"
# What may stand before a word. The automaton scans the folded text with these turned into spaces and looks
# for " " + key, which wakes it only at word starts and keeps it fast (one branch at its root, not forty).
_WORD_STARTS = "\n-'\"«“„(/"
_KEY_START = " "
# Title and text are matched as one string; no phrase can run across this (it is not a word gap).
_FIELD_SEPARATOR = " | "
# Where an alias is split into words: "Nur-Sultan" is the words "nur" and "sultan".
_ALIAS_WORD_SPLIT = re.compile(r"[\s\-\u2010-\u2015]+")
_STEM_MARK = "|"
_TAG_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_FLOAT_TOLERANCE = 1e-9

TITLE = "title"
TEXT = "text"


# ---------------------------------------------------------------------------------------------------------
# Public types


@dataclass(frozen=True)
class Evidence:
    """One counted occurrence: `title[start:end]` (or `text[...]`) is `matched`; `weight` is its share of
    the score, after title/lead/list multipliers and repeat decay."""

    term: str
    matched: str
    field: str
    start: int
    end: int
    weight: float


@dataclass(frozen=True)
class TagResult:
    tag: str
    score: float
    evidence: tuple[Evidence, ...]


class RuleError(ValueError):
    """The rules are wrong; `problems` has one line per mistake, each naming the file and key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Language:
    """How words of one language inflect: endings a stem may carry, proclitics (Arabic "و", "ب") that may be
    glued in front, and whether words are delimited at all (not in Chinese or Japanese)."""

    code: str
    suffixes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    boundaries: bool = True


@dataclass(frozen=True)
class Alias:
    """One way of writing a name. `words` holds (stem, citation ending) pairs, folded; "Организаци|я" is the
    stem "организаци" whose ending "я" may be replaced by any suffix of the language."""

    text: str
    language: str
    words: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Term:
    """One concept (a country, a person, a company) with its aliases in all languages; repeats of any of its
    aliases diminish together."""

    name: str
    weight: float
    aliases: tuple[Alias, ...]
    exact: bool = False
    context: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhraseSet:
    """Named phrases that are not evidence themselves: context, `unless` conditions, or list peers."""

    name: str
    aliases: tuple[Alias, ...]


@dataclass(frozen=True)
class Scoring:
    threshold: float = DEFAULT_THRESHOLD
    title_multiplier: float = DEFAULT_TITLE_MULTIPLIER
    lead_multiplier: float = DEFAULT_LEAD_MULTIPLIER
    repeat_factor: float = DEFAULT_REPEAT_FACTOR
    list_multiplier: float = DEFAULT_LIST_MULTIPLIER
    list_min_peers: int = DEFAULT_LIST_MIN_PEERS
    list_gap_chars: int = DEFAULT_LIST_GAP_CHARS


@dataclass(frozen=True)
class TagRule:
    name: str
    description: str
    scoring: Scoring
    terms: tuple[Term, ...]
    sets: tuple[PhraseSet, ...] = ()
    peers: tuple[PhraseSet, ...] = ()
    exclude: tuple[Alias, ...] = ()


@dataclass(frozen=True)
class Layout:
    """Where the dateline and the lead of a text end; shared by all tags."""

    dateline_max_chars: int = DEFAULT_DATELINE_MAX_CHARS
    lead_max_chars: int = DEFAULT_LEAD_MAX_CHARS


@dataclass(frozen=True)
class RuleSet:
    """Parsed, validated rules: build with `rules_from_mapping`, compile with `Tagger`."""

    languages: tuple[Language, ...]
    tags: tuple[TagRule, ...]
    layout: Layout = Layout()
    source: str = "tags.toml"

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.tags)


# ---------------------------------------------------------------------------------------------------------
# Folding for matching.
#
# The reference is `text.fold_with_offsets`: a Python loop per character, exact but ~1 µs a character. Here
# the same result comes from C-speed string methods on every run of "plain" characters — those whose fold is
# one character that `_fold_plain` produces too — and from the reference only for the rare other characters
# (ligatures, ß, invisible characters, Hangul, astral). The plain set is derived by comparing both per
# character, so the two cannot drift apart. On top of the reference fold, apostrophe look-alikes become "'"
# (Uzbek "Qozogʻiston", Turkish "Kazakistan’ın").

# "İ" before lower(), which would make it two characters; then the letters text.fold treats specially, and
# "й", "ё", so that most Cyrillic text needs no NFD pass at all.
_BEFORE_LOWER = (("İ", "I"),)
# Not text.fold's: apostrophe look-alikes become "'", so that "Qozogʻiston" is "Qozog'iston".
_APOSTROPHES = (("\u2019", "'"), ("\u2018", "'"), ("\u02bc", "'"), ("\u02bb", "'"), ("`", "'"))
_ONE_TO_ONE = (
    ("й", "и"),
    ("ё", "е"),
    ("ı", "i"),
    ("ø", "o"),
    ("đ", "d"),
    ("ł", "l"),
    ("ς", "σ"),
    ("\u00a0", " "),
    ("\u202f", " "),
    *_APOSTROPHES,
)
# `repair_mixed_script` changes only words mixing Latin with Cyrillic or Greek letters. They are found from
# the runs of the text's minority script, which are few, so the scan stays cheap.
_LATIN_LETTERS = "A-Za-z\u00c0-\u024f"
_OTHER_LETTERS = "\u0370-\u03ff\u0400-\u04ff"
_LATIN_RUN = re.compile(f"[{_LATIN_LETTERS}]+")
_OTHER_RUN = re.compile(f"[{_OTHER_LETTERS}]+")
_SCRIPT_LETTER = re.compile(f"[{_LATIN_LETTERS}{_OTHER_LETTERS}]")
_REPAIR_ANCHOR = "a "
_BMP_END = 0x10000
# Ranges known to fold to themselves or known to be special, so start-up need not examine them one by one.
_IDENTITY_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF))
_SPECIAL_RANGES = ((0xAC00, 0xD7A3), (0xD800, 0xDFFF), (0x10000, 0x10FFFF))


def _fold_plain(segment: str) -> str:
    """The fold of a run of plain characters, one character for one."""
    for source, target in _BEFORE_LOWER:
        segment = segment.replace(source, target)
    folded = segment.lower()  # not casefold(): it maps ß to two letters; ς is handled below
    if folded.isascii():
        return folded.replace("`", "'")
    for source, target in _ONE_TO_ONE:
        folded = folded.replace(source, target)
    if unicodedata.is_normalized("NFD", folded):
        return folded
    decomposed = unicodedata.normalize("NFD", folded)
    # Latin text: dropping what is not ASCII drops exactly the marks when the length comes out right.
    ascii_only = decomposed.encode("ascii", "ignore")
    if len(ascii_only) == len(folded):
        return ascii_only.decode("ascii")
    return combining_marks().sub("", decomposed)


@functools.cache
def _special_class() -> str:
    """The characters `_fold_plain` cannot fold one for one exactly like `text.fold_with_offsets`."""
    special = []
    for code in range(0x80, _BMP_END):
        if any(a <= code <= b for a, b in _IDENTITY_RANGES + _SPECIAL_RANGES):
            continue
        ch = chr(code)
        reference = _unify_apostrophes(fold_with_offsets(ch)[0])
        if len(reference) != 1 or reference != _fold_plain(ch):
            special.append(code)
    return char_class(special, _SPECIAL_RANGES)


@functools.cache
def _special_chars() -> re.Pattern[str]:
    return re.compile(_special_class())


@functools.cache
def _special_or_other_chars() -> re.Pattern[str]:
    """Special characters, Cyrillic and Greek: what sends mostly-Latin text off the fastest path."""
    return re.compile(_special_class()[:-1] + _OTHER_LETTERS + "]")


@functools.cache
def _special_or_latin_chars() -> re.Pattern[str]:
    """Special characters and Latin letters: what sends mostly-Cyrillic text off the fastest path."""
    return re.compile(_special_class()[:-1] + _LATIN_LETTERS + "]")


def _repair_confusables(text: str, mostly_latin: bool) -> str:
    """`repair_mixed_script`, applied only to the words that mix scripts (same length, same offsets)."""
    runs, other = (_OTHER_RUN, _LATIN_RUN) if mostly_latin else (_LATIN_RUN, _OTHER_RUN)
    repaired = text
    for run in runs.finditer(text):
        start, end = run.span()
        touches_other = (start > 0 and other.match(text, start - 1)) or other.match(text, end)
        if not touches_other:
            continue
        while start and _SCRIPT_LETTER.match(text, start - 1):
            start -= 1
        while end < len(text) and _SCRIPT_LETTER.match(text, end):
            end += 1
        # repair_mixed_script skips texts without an ASCII letter ("ĞКø"); the anchor keeps it from doing so.
        word = repair_mixed_script(_REPAIR_ANCHOR + text[start:end])[len(_REPAIR_ANCHOR) :]
        repaired = repaired[:start] + word + repaired[end:]
    return repaired


def _unify_apostrophes(folded: str) -> str:
    for source, target in _APOSTROPHES:
        folded = folded.replace(source, target)
    return folded


def fold_for_matching(text: str) -> tuple[str, list[int] | None]:
    """The folded text, and the index in `text` of each folded character — or None when that is the
    identity (the usual case: then folded[i] comes from text[i])."""
    if text.isascii():
        return _fold_plain(text), None
    mostly_latin = 2 * len(text.encode("latin-1", "ignore")) >= len(text)
    # One scan decides the common case: no special character, and nothing of the other script to mix with.
    ordinary = _special_or_other_chars() if mostly_latin else _special_or_latin_chars()
    if ordinary.search(text) is None:
        return _fold_plain(text), None
    text = _repair_confusables(text, mostly_latin)
    special = _special_chars()
    if special.search(text) is None:
        return _fold_plain(text), None
    pieces: list[str] = []
    offsets: list[int] = []
    position = 0
    for match in special.finditer(text):
        index = match.start()
        if index > position:
            pieces.append(_fold_plain(text[position:index]))
            offsets.extend(range(position, index))
        folded = _unify_apostrophes(fold_with_offsets(match.group())[0])
        pieces.append(folded)
        offsets.extend([index] * len(folded))
        position = index + 1
    pieces.append(_fold_plain(text[position:]))
    offsets.extend(range(position, len(text)))
    return "".join(pieces), offsets


def _fold_term(text: str) -> str:
    """The folded form of a configured alias, suffix or prefix: the same fold as the text it is matched in."""
    return fold_for_matching(text)[0]


# ---------------------------------------------------------------------------------------------------------
# Reading rules from a mapping (parsed TOML). Every problem is collected, so one run lists them all.

_LAYOUT_KEYS = {"dateline_max_chars", "lead_max_chars"}
_SCORING_NUMBERS: dict[str, tuple[float, float | None]] = {
    # key: (minimum, maximum)
    "threshold": (0.0, None),
    "title_multiplier": (0.0, None),
    "lead_multiplier": (0.0, None),
    "repeat_factor": (0.0, 1.0),
    "list_multiplier": (0.0, None),
}
_NUMBER_BOUNDS = {**_SCORING_NUMBERS, "weight": (0.0, None)}
_POSITIVE_NUMBERS = {"threshold", "weight"}  # must be greater than their minimum, not equal to it
_SCORING_INTEGERS = {"list_min_peers": 1, "list_gap_chars": 0}
_LANGUAGE_KEYS = {"suffixes", "prefixes", "boundaries"}
_TAG_KEYS = {"description", "terms", "sets", "peers", "exclude", *_SCORING_NUMBERS, *_SCORING_INTEGERS}
_TERM_SETTINGS = {"weight", "exact", "context", "unless"}
_TOP_KEYS = {"layout", "defaults", "languages", "tags"}


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.source}: {key}: {message}")

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.problem(key, f"expected a table, got {_describe(value)}")
        return {}

    def unknown_keys(self, table: Mapping[str, Any], allowed: Iterable[str], key: str) -> None:
        known = sorted(allowed)
        for name in table:
            if name not in known:
                self.problem(
                    f"{key}.{name}" if key else name, f"unknown key (expected one of {', '.join(known)})"
                )

    def number(self, table: Mapping[str, Any], name: str, key: str, default: float) -> float:
        value = table.get(name, default)
        low, high = _NUMBER_BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(f"{key}.{name}", f"expected a number, got {_describe(value)}")
            return default
        positive = name in _POSITIVE_NUMBERS
        if value < low or (positive and value == low) or (high is not None and value > high):
            if positive:
                bounds = f"greater than {low:g}"
            else:
                bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            self.problem(f"{key}.{name}", f"expected a number {bounds}, got {value!r}")
            return default
        return float(value)

    def integer(self, table: Mapping[str, Any], name: str, key: str, default: int, minimum: int) -> int:
        value = table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(f"{key}.{name}", f"expected a whole number, got {_describe(value)}")
            return default
        if value < minimum:
            self.problem(f"{key}.{name}", f"expected a whole number of at least {minimum}, got {value!r}")
            return default
        return value

    def strings(self, value: Any, key: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(key, f"expected a list of strings, got {_describe(value)}")
            return []
        return list(value)

    def boolean(self, table: Mapping[str, Any], name: str, key: str, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            self.problem(f"{key}.{name}", f"expected true or false, got {_describe(value)}")
            return default
        return value


def _read_layout(reader: _Reader, data: Any) -> Layout:
    table = reader.table(data, "layout")
    reader.unknown_keys(table, _LAYOUT_KEYS, "layout")
    return Layout(
        dateline_max_chars=reader.integer(
            table, "dateline_max_chars", "layout", DEFAULT_DATELINE_MAX_CHARS, 0
        ),
        lead_max_chars=reader.integer(table, "lead_max_chars", "layout", DEFAULT_LEAD_MAX_CHARS, 0),
    )


def _read_scoring(reader: _Reader, table: Mapping[str, Any], key: str, base: Scoring) -> Scoring:
    def number(name: str) -> float:
        return reader.number(table, name, key, getattr(base, name))

    def integer(name: str) -> int:
        return reader.integer(table, name, key, getattr(base, name), _SCORING_INTEGERS[name])

    return Scoring(
        threshold=number("threshold"),
        title_multiplier=number("title_multiplier"),
        lead_multiplier=number("lead_multiplier"),
        repeat_factor=number("repeat_factor"),
        list_multiplier=number("list_multiplier"),
        list_min_peers=integer("list_min_peers"),
        list_gap_chars=integer("list_gap_chars"),
    )


def _read_affixes(reader: _Reader, table: Mapping[str, Any], name: str, key: str) -> tuple[str, ...]:
    folded = []
    for item in reader.strings(table.get(name, []), f"{key}.{name}"):
        affix = _fold_term(item.strip())
        if not affix:
            reader.problem(f"{key}.{name}", "empty string in the list")
        elif affix not in folded:
            folded.append(affix)
    return tuple(folded)


def _read_languages(reader: _Reader, data: Any) -> dict[str, Language]:
    languages: dict[str, Language] = {}
    for code, value in reader.table(data, "languages").items():
        key = f"languages.{code}"
        table = reader.table(value, key)
        reader.unknown_keys(table, _LANGUAGE_KEYS, key)
        languages[code] = Language(
            code=code,
            suffixes=_read_affixes(reader, table, "suffixes", key),
            prefixes=_read_affixes(reader, table, "prefixes", key),
            boundaries=reader.boolean(table, "boundaries", key, True),
        )
    return languages


def _parse_alias(reader: _Reader, raw: str, language: str, key: str) -> Alias | None:
    words = []
    for word in _ALIAS_WORD_SPLIT.split(raw.strip()):
        if not word:
            continue
        stem, mark, ending = word.partition(_STEM_MARK)
        if _STEM_MARK in ending or (mark and not stem):
            reader.problem(key, f"{raw!r}: a word takes at most one '|', after its stem")
            return None
        folded_stem = _fold_term(stem)
        if not any(ch.isalnum() for ch in folded_stem):
            reader.problem(key, f"{raw!r}: the word {word!r} has no letter or digit")
            return None
        words.append((folded_stem, _fold_term(ending)))
    if not words:
        reader.problem(key, "empty alias")
        return None
    return Alias(text=raw.strip().replace(_STEM_MARK, ""), language=language, words=tuple(words))


def _read_aliases(
    reader: _Reader,
    table: Mapping[str, Any],
    key: str,
    languages: Mapping[str, Language],
    skip: Iterable[str] = (),
) -> tuple[Alias, ...]:
    """Aliases from a table of language code → list of strings."""
    aliases = []
    settings = set(skip)
    for code, value in table.items():
        if code in settings:
            continue
        if code not in languages:
            allowed = ", ".join(sorted(settings)) + " or " if settings else ""
            known = ", ".join(sorted(languages)) or "none defined"
            reader.problem(
                f"{key}.{code}", f"unknown key: expected {allowed}a language of [languages] ({known})"
            )
            continue
        for raw in reader.strings(value, f"{key}.{code}"):
            alias = _parse_alias(reader, raw, code, f"{key}.{code}")
            if alias is not None:
                aliases.append(alias)
    return tuple(aliases)


def _read_sets(
    reader: _Reader, data: Any, key: str, languages: Mapping[str, Language]
) -> tuple[PhraseSet, ...]:
    sets = []
    for name, value in reader.table(data, key).items():
        aliases = _read_aliases(reader, reader.table(value, f"{key}.{name}"), f"{key}.{name}", languages)
        if not aliases:
            reader.problem(f"{key}.{name}", "no aliases")
        sets.append(PhraseSet(name=name, aliases=aliases))
    return tuple(sets)


def _read_names(
    reader: _Reader, table: Mapping[str, Any], name: str, key: str, known: set[str]
) -> tuple[str, ...]:
    names = reader.strings(table.get(name, []), f"{key}.{name}")
    for item in names:
        if item not in known:
            reader.problem(
                f"{key}.{name}", f"unknown set or term {item!r} (known: {', '.join(sorted(known)) or 'none'})"
            )
    return tuple(names)


def _read_terms(
    reader: _Reader, data: Any, key: str, languages: Mapping[str, Language], known: set[str]
) -> tuple[Term, ...]:
    terms = []
    for name, value in reader.table(data, key).items():
        term_key = f"{key}.{name}"
        table = reader.table(value, term_key)
        if "weight" not in table:
            reader.problem(f"{term_key}.weight", "missing (every term needs a weight)")
        aliases = _read_aliases(reader, table, term_key, languages, skip=_TERM_SETTINGS)
        if not aliases:
            reader.problem(term_key, 'no aliases (add a list per language, e.g. en = ["…"])')
        terms.append(
            Term(
                name=name,
                weight=reader.number(table, "weight", term_key, 1.0),
                aliases=aliases,
                exact=reader.boolean(table, "exact", term_key, False),
                context=_read_names(reader, table, "context", term_key, known),
                unless=_read_names(reader, table, "unless", term_key, known),
            )
        )
    return tuple(terms)


def _read_tag(
    reader: _Reader, name: str, data: Any, languages: Mapping[str, Language], defaults: Scoring
) -> TagRule:
    key = f"tags.{name}"
    if not _TAG_NAME.match(name):
        reader.problem(key, "a tag name is lower-case letters, digits, '-' and '_'")
    table = reader.table(data, key)
    reader.unknown_keys(table, _TAG_KEYS, key)
    description = table.get("description", "")
    if not isinstance(description, str):
        reader.problem(f"{key}.description", f"expected a string, got {_describe(description)}")
        description = ""
    sets = _read_sets(reader, table.get("sets", {}), f"{key}.sets", languages)
    term_names = set(reader.table(table.get("terms", {}), f"{key}.terms"))
    for clash in sorted(term_names & {s.name for s in sets}):
        reader.problem(f"{key}.sets.{clash}", "a set and a term have the same name")
    terms = _read_terms(
        reader, table.get("terms", {}), f"{key}.terms", languages, term_names | {s.name for s in sets}
    )
    if not terms:
        reader.problem(f"{key}.terms", "a tag needs at least one term")
    exclude = _read_aliases(
        reader, reader.table(table.get("exclude", {}), f"{key}.exclude"), f"{key}.exclude", languages
    )
    return TagRule(
        name=name,
        description=description,
        scoring=_read_scoring(reader, table, key, defaults),
        terms=terms,
        sets=sets,
        peers=_read_sets(reader, table.get("peers", {}), f"{key}.peers", languages),
        exclude=exclude,
    )


def rules_from_mapping(data: Mapping[str, Any], source: str = "tags.toml") -> RuleSet:
    """Validate parsed rules; raise RuleError listing every problem as "<source>: <key>: <what is wrong>"."""
    reader = _Reader(source)
    reader.unknown_keys(data, _TOP_KEYS, "")
    layout = _read_layout(reader, data.get("layout", {}))
    defaults_table = reader.table(data.get("defaults", {}), "defaults")
    reader.unknown_keys(defaults_table, set(_SCORING_NUMBERS) | set(_SCORING_INTEGERS), "defaults")
    defaults = _read_scoring(reader, defaults_table, "defaults", Scoring())
    languages = _read_languages(reader, data.get("languages", {}))
    tags = tuple(
        _read_tag(reader, name, value, languages, defaults)
        for name, value in reader.table(data.get("tags", {}), "tags").items()
    )
    if reader.problems:
        raise RuleError(reader.problems)
    return RuleSet(languages=tuple(languages.values()), tags=tags, layout=layout, source=source)


# ---------------------------------------------------------------------------------------------------------
# Compiling: one automaton, one anchored regex per alias.

_TERM, _SET, _PEER, _EXCLUDE = range(4)


class _Pattern(NamedTuple):
    kind: int
    tag: int
    ref: int  # index of the term, set or peer within its tag; unused for exclusions
    alias: str
    regex: re.Pattern[str]
    # The automaton key is one word of the alias (see _key_word): `reach` is how far before the key the
    # alias can start, `span` how long a match can be.
    reach: int
    span: int


class _Hit(NamedTuple):
    pattern: _Pattern
    field: str
    start: int  # offsets in the original field
    end: int


_MAX_GAP = 4  # the {1,4} of _WORD_GAP


def _word_regex(stem: str, ending: str, language: Language, exact: bool) -> tuple[str, int]:
    """A word's pattern and its longest match."""
    if exact or not (language.suffixes or ending):
        return re.escape(stem + ending), len(stem + ending)
    endings = sorted({ending, *language.suffixes} - {""}, key=lambda e: (-len(e), e))
    return re.escape(stem) + "(?:" + "|".join(map(re.escape, endings)) + ")?", len(stem) + len(endings[0])


def _key_word(alias: Alias, names: Set[str]) -> int:
    """The index of the word to look the alias up by. Common words ("capital", "government") would wake the
    matcher all the time, so: a word written with a capital or a digit, as names are; then one that is a
    name of the rules by itself (its key fires anyway); then the longest."""
    written = [w for w in _ALIAS_WORD_SPLIT.split(alias.text.strip()) if w]

    def rank(index: int) -> tuple[bool, bool, int]:
        word = written[index] if len(written) == len(alias.words) else ""
        name_like = word != word.lower() or any(ch.isdigit() for ch in word)
        stem = alias.words[index][0]
        return name_like, stem in names, len(stem)

    return max(range(len(alias.words)), key=rank)


def _aliases_of(rule: TagRule) -> Iterable[tuple[int, int, Alias, bool]]:
    """(kind, index of the term/set/peer, alias, exact) for every alias of a tag."""
    for index, term in enumerate(rule.terms):
        for alias in term.aliases:
            yield _TERM, index, alias, term.exact
    for index, phrase_set in enumerate(rule.sets):
        for alias in phrase_set.aliases:
            yield _SET, index, alias, False
    for index, peer in enumerate(rule.peers):
        for alias in peer.aliases:
            yield _PEER, index, alias, False
    for alias in rule.exclude:
        yield _EXCLUDE, 0, alias, False


def _merged_aliases(rules: RuleSet) -> Iterable[tuple[int, int, int, Alias, Language, bool]]:
    """Every alias once: one written alike under several languages ("Kazakhstan" in en, fr, it) becomes
    one pattern taking the suffixes of all of them, so that a hit is confirmed once, not once a language."""
    languages = {language.code: language for language in rules.languages}
    merged: dict[tuple[Any, ...], tuple[Alias, Language]] = {}
    for tag_index, rule in enumerate(rules.tags):
        for kind, ref, alias, exact in _aliases_of(rule):
            language = languages[alias.language]
            key = (tag_index, kind, ref, alias.words, exact, language.boundaries, language.prefixes)
            if key in merged:
                first, known = merged[key]
                suffixes = known.suffixes + tuple(x for x in language.suffixes if x not in known.suffixes)
                language = Language(
                    f"{known.code}+{language.code}", suffixes, known.prefixes, known.boundaries
                )
                alias = first
            merged[key] = (alias, language)
    for (tag_index, kind, ref, _, exact, _, _), (alias, language) in merged.items():
        yield tag_index, kind, ref, alias, language, exact


def _build_automaton(rules: RuleSet) -> Any:
    """The one matcher: automaton key → (length of the word key, the patterns confirming it)."""
    aliases = list(_merged_aliases(rules))
    if not aliases:
        return None
    single_words = {alias.words[0][0] for _, _, _, alias, _, _ in aliases if len(alias.words) == 1}
    grouped: dict[str, tuple[int, list[_Pattern]]] = {}
    for tag_index, kind, ref, alias, language, exact in aliases:
        key, regex, reach, span = _compile_alias(alias, language, exact, single_words)
        pattern = _Pattern(kind, tag_index, ref, alias.text, regex, reach, span)
        for automaton_key in _automaton_keys(key, language):
            grouped.setdefault(automaton_key, (len(key), []))[1].append(pattern)
    automaton = ahocorasick.Automaton()
    for automaton_key, (length, patterns) in grouped.items():
        automaton.add_word(automaton_key, (length, tuple(patterns)))
    automaton.make_automaton()
    return automaton


def _word_starts_as_spaces(folded: str) -> str:
    for ch in _WORD_STARTS:
        folded = folded.replace(ch, _KEY_START)
    return folded


def _scan_form(folded: str) -> str:
    """What the automaton reads: a space before the text, and every word-start character a space."""
    return _KEY_START + _word_starts_as_spaces(folded)


def _automaton_keys(key: str, language: Language) -> list[str]:
    """The key as the scan form shows it ("qozog'iston" reads "qozog iston"), after a word start."""
    if not language.boundaries:
        return [_word_starts_as_spaces(key)]
    starts = ["", *language.prefixes]
    return [_KEY_START + _word_starts_as_spaces(start + key) for start in starts]


def _compile_alias(
    alias: Alias, language: Language, exact: bool, names: Set[str] = frozenset()
) -> tuple[str, re.Pattern[str], int, int]:
    """The automaton key, the regex confirming a hit, how far before the key the alias can start, and how
    long a match can be."""
    words = [_word_regex(stem, ending, language, exact) for stem, ending in alias.words]
    key_index = _key_word(alias, names)
    stem, ending = alias.words[key_index]
    key = stem + ending if exact or not (language.suffixes or ending) else stem
    reach = sum(longest + _MAX_GAP for _, longest in words[:key_index])
    span = sum(longest + _MAX_GAP for _, longest in words) - _MAX_GAP
    body = _WORD_GAP.join(pattern for pattern, _ in words)
    if not language.boundaries:
        return key, re.compile(body), reach, span
    # Not glued to a preceding letter, except through a proclitic of the language ("و" + "كازاخستان").
    starts = [r"(?<!\w)"] + [f"(?<=(?<!\\w){re.escape(prefix)})" for prefix in language.prefixes]
    return key, re.compile("(?:" + "|".join(starts) + ")" + body + r"(?!\w)"), reach, span


def _confirm(pattern: _Pattern, folded: str, start: int) -> re.Match[str] | None:
    """The alias's match around its key found at `start`, if the whole alias is there."""
    if not pattern.reach:
        return pattern.regex.match(folded, start)
    position = max(0, start - pattern.reach)
    # One character past the longest possible match, so that the closing (?!\w) still sees the text.
    stop = start + pattern.span + 1
    while (match := pattern.regex.search(folded, position, stop)) is not None and match.start() <= start:
        if match.end() > start:
            return match
        position = match.start() + 1
    return None


# Dateline: "BISHKEK (Reuters) – ", "ALMATY, Kazakhstan (AP) — ", "July 28, 18:41 Moscow time — ",
# "WASHINGTON: ", or a short first line "Beijing, China". Told from an opening phrase by what datelines carry:
# a digit, a comma, a parenthesis or a word in capitals.
_DATELINE_END = re.compile(r"\s[-–—]{1,2}\s|:\s|\n")
_DATELINE_MARK = re.compile(r"[\d,(]|\b[^\W\d_]{3,}\b")
# A sentence ends at a full stop followed by a space, a quote or the end — but not after an initial
# ("Kassym-Jomart K. Tokayev", "U.S.") — or at a line break.
_SENTENCE_END = re.compile(r"(?<!\b\w)[.!?…](?=[\s\"'”»)]|$)|[。！？؟\n]")


@dataclass
class _Layout:
    """Where the dateline and the lead end in one text (computed only for texts with hits)."""

    dateline_end: int
    lead_end: int


def _measure_layout(text: str, layout: Layout) -> _Layout:
    dateline_end = 0
    head = text[: layout.dateline_max_chars + 4]
    match = _DATELINE_END.search(head)
    if match and 0 < match.start() <= layout.dateline_max_chars:
        prefix = head[: match.start()]
        marks = _DATELINE_MARK.finditer(prefix)
        if any(not m.group().isalpha() or m.group().isupper() for m in marks):
            dateline_end = match.end()
    lead_stop = dateline_end + layout.lead_max_chars
    end = _SENTENCE_END.search(text, dateline_end, lead_stop)
    while end is not None and not text[dateline_end : end.start()].strip():
        end = _SENTENCE_END.search(text, end.end(), lead_stop)  # skip blank lines after the dateline
    lead_end = end.end() if end is not None else min(len(text), lead_stop)
    return _Layout(dateline_end=dateline_end, lead_end=lead_end)


class Tagger:
    """Compiled rules. Build once per rule set (it compiles the automaton); `tag` is then pure and fast."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._thresholds = {rule.name: rule.scoring.threshold for rule in rules.tags}
        _special_chars()  # the one-off start-up cost of fast folding, paid here rather than on first use
        self._automaton = _build_automaton(rules)
        self._conditions = [_conditions(rule) for rule in rules.tags]

    def tag(self, title: str, text: str) -> list[TagResult]:
        """The tags whose score reaches their threshold, highest score first."""
        return [result for result in self.explain(title, text) if self.passes(result)]

    def threshold(self, tag: str) -> float:
        return self._thresholds[tag]

    def passes(self, result: TagResult) -> bool:
        # A tolerance, so that 2.0 × 1.5 reaches a threshold of 3.0 whatever the float rounding.
        return result.score >= self._thresholds[result.tag] - _FLOAT_TOLERANCE

    def explain(self, title: str, text: str) -> list[TagResult]:
        """Every tag with any counted evidence, passing or not, highest score first (for `tags test`)."""
        hits = self._find(title, text)
        if not hits:
            return []
        by_tag: dict[int, list[_Hit]] = {}
        for hit in hits:
            by_tag.setdefault(hit.pattern.tag, []).append(hit)
        results = []
        layout: list[_Layout] = []  # measured once, on demand
        for tag_index, tag_hits in by_tag.items():
            result = self._score(tag_index, tag_hits, title, text, layout)
            if result is not None:
                results.append(result)
        results.sort(key=lambda r: (-r.score, r.tag))
        return results

    def _find(self, title: str, text: str) -> list[_Hit]:
        """Every confirmed alias occurrence in title and text, folded and scanned in one pass."""
        if self._automaton is None or not (title or text):
            return []
        combined = title + _FIELD_SEPARATOR + text
        text_start = len(title) + len(_FIELD_SEPARATOR)
        folded, offsets = fold_for_matching(combined)
        hits = []
        # `last` indexes the scan form, one longer in front: the key's word starts at folded[last - length].
        for last, (key_length, patterns) in self._automaton.iter(_scan_form(folded)):
            for pattern in patterns:
                match = _confirm(pattern, folded, last - key_length)
                if match is None:
                    continue
                start, end = match.span()
                if offsets is not None:
                    start, end = offsets[start], offsets[end - 1] + 1
                if start < text_start:
                    hits.append(_Hit(pattern, TITLE, start, end))
                else:
                    hits.append(_Hit(pattern, TEXT, start - text_start, end - text_start))
        return hits

    def _score(
        self, tag_index: int, hits: list[_Hit], title: str, text: str, layout: list[_Layout]
    ) -> TagResult | None:
        rule = self.rules.tags[tag_index]
        terms: list[_Hit] = []
        excluded: list[_Hit] = []
        peers: list[_Hit] = []
        present: set[tuple[int, int]] = set()
        for hit in hits:
            kind = hit.pattern.kind
            if kind == _TERM:
                terms.append(hit)
            elif kind == _EXCLUDE:
                excluded.append(hit)
            elif kind == _PEER:
                peers.append(hit)
            else:
                present.add((_SET, hit.pattern.ref))
        if excluded:
            terms = [h for h in terms if not any(_overlaps(h, x) for x in excluded)]
        present.update((_TERM, h.pattern.ref) for h in terms)
        conditions = self._conditions[tag_index]
        counted = _leftmost_longest([h for h in terms if conditions[h.pattern.ref].allows(present)])
        if not counted:
            return None
        listed: set[int] = set()
        if len(peers) >= rule.scoring.list_min_peers:
            peers = [h for h in peers if not any(_overlaps(h, c) for c in counted)]
            listed = _listed(counted, peers, {TITLE: title, TEXT: text}, rule.scoring)
        contributions: dict[int, list[tuple[float, int]]] = {}
        for index, hit in enumerate(counted):
            weight = rule.terms[hit.pattern.ref].weight * self._position_multiplier(hit, text, rule, layout)
            if index in listed:
                weight *= rule.scoring.list_multiplier
            if weight > 0:
                contributions.setdefault(hit.pattern.ref, []).append((weight, index))
        evidence = []
        for items in contributions.values():
            items.sort(key=lambda item: (-item[0], item[1]))  # strongest first, then in reading order
            for rank, (weight, index) in enumerate(items):
                hit = counted[index]
                source = title if hit.field == TITLE else text
                evidence.append(
                    Evidence(
                        term=hit.pattern.alias,
                        matched=source[hit.start : hit.end],
                        field=hit.field,
                        start=hit.start,
                        end=hit.end,
                        weight=weight * rule.scoring.repeat_factor**rank,
                    )
                )
        if not evidence:
            return None
        evidence.sort(key=lambda e: (e.field != TITLE, e.start))
        return TagResult(tag=rule.name, score=sum(e.weight for e in evidence), evidence=tuple(evidence))

    def _position_multiplier(self, hit: _Hit, text: str, rule: TagRule, layout: list[_Layout]) -> float:
        if hit.field == TITLE:
            return rule.scoring.title_multiplier
        if not layout:
            layout.append(_measure_layout(text, self.rules.layout))
        if hit.start < layout[0].dateline_end:
            return 0.0
        if hit.start < layout[0].lead_end:
            return rule.scoring.lead_multiplier
        return 1.0


@dataclass(frozen=True)
class _Condition:
    """A term's context and unless lists, as the (kind, index) of the sets and terms they name."""

    context: frozenset[tuple[int, int]]
    unless: frozenset[tuple[int, int]]

    def allows(self, present: set[tuple[int, int]]) -> bool:
        if self.context and self.context.isdisjoint(present):
            return False
        return self.unless.isdisjoint(present)


def _conditions(rule: TagRule) -> list[_Condition]:
    names = {term.name: (_TERM, i) for i, term in enumerate(rule.terms)}
    names.update({phrase_set.name: (_SET, i) for i, phrase_set in enumerate(rule.sets)})
    return [
        _Condition(frozenset(names[n] for n in term.context), frozenset(names[n] for n in term.unless))
        for term in rule.terms
    ]


def _overlaps(a: _Hit, b: _Hit) -> bool:
    return a.field == b.field and a.start < b.end and b.start < a.end


def _leftmost_longest(hits: list[_Hit]) -> list[_Hit]:
    """Overlapping hits of one tag count once: "Kassym-Jomart Tokayev" is not also "Tokayev". The result is
    in reading order: title first."""
    chosen: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (h.field != TITLE, h.start, h.start - h.end)):
        if chosen and _overlaps(chosen[-1], hit):
            continue
        chosen.append(hit)
    return chosen


def _listed(counted: list[_Hit], peers: list[_Hit], fields: Mapping[str, str], scoring: Scoring) -> set[int]:
    """Indexes of the counted hits that stand in an enumeration with at least `list_min_peers` peers.

    An enumeration is a chain of hits (this tag's and peers') in one sentence, each at most `list_gap_chars`
    from the next: "Ilham Aliyev, President of the Republic of Kazakhstan Kassym-Jomart Tokayev, President
    of the Kyrgyz Republic …". Two peers that are one entity (Kyrgyz, Japarov) count once.
    """
    listed: set[int] = set()
    for field, source in fields.items():
        # (start, end, index of this tag's hit or -1, peer entity or -1), in reading order
        marks = [(h.start, h.end, i, -1) for i, h in enumerate(counted) if h.field == field]
        marks += [(h.start, h.end, -1, h.pattern.ref) for h in peers if h.field == field]
        marks.sort()
        chain: list[tuple[int, int, int, int]] = []
        for mark in marks:
            if chain:
                gap = source[chain[-1][1] : mark[0]]
                if len(gap) > scoring.list_gap_chars or _SENTENCE_END.search(gap):
                    listed.update(_listed_in_chain(chain, scoring))
                    chain = []
            chain.append(mark)
        listed.update(_listed_in_chain(chain, scoring))
    return listed


def _listed_in_chain(chain: list[tuple[int, int, int, int]], scoring: Scoring) -> list[int]:
    entities = {entity for _, _, _, entity in chain if entity >= 0}
    if len(entities) < scoring.list_min_peers:
        return []
    return [own for _, _, own, _ in chain if own >= 0]
