"""Unicode care for news text: one normal form for storage, one folded form for matching.

Real feeds mix scripts inside words (the seed spells "Vаrkert" with a Cyrillic "а"), carry compatibility
characters (ligatures, full-width letters, non-breaking spaces) and invisible characters (soft hyphens,
zero-width joiners). Everything that compares text — tagging, duplicate detection, search — goes through
this module so that the same decision is made in one place.

- `normalize` is for storage: NFKC, invisible characters removed, whitespace collapsed, mixed-script words
  repaired. It keeps case and diacritics, so it is still good to read.
- `fold` is for matching: `normalize`, then case folding, diacritics removed, Turkish dotless i folded.
- `fold_with_offsets` is `fold` plus, for every folded character, its index in the input, so that matches
  found in folded text can be reported at their place in what the user wrote.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

# Letters that look alike across Latin, Cyrillic and Greek. A word written mostly in one script gets its
# stray letters from the other scripts mapped to this script's look-alike.
_CYRILLIC_TO_LATIN = dict(
    zip(
        "аеорсухіјѕԁԛԝһӏАВЕКМНОРСТХІЈЅҮԚԜ",
        "aeopcyxijsdqwhlABEKMHOPCTXIJSYQW",
        strict=True,
    )
)
_GREEK_TO_LATIN = dict(zip("οανικτρυΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "oavuktpuABEZHIKMNOPTYX", strict=True))
_LATIN_TO_CYRILLIC = dict(zip("aeopcyxiABEKMHOPCTX", "аеорсухіАВЕКМНОРСТХ", strict=True))

_LATIN = "latin"
_CYRILLIC = "cyrillic"
_GREEK = "greek"

# Characters that carry no text: soft hyphen, zero-width space/joiners, word joiner, BOM.
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_INVISIBLE_CHARS = frozenset(_INVISIBLE)
_SPACES = re.compile(r"[^\S\n]+")
# Every whitespace character (str.isspace, which is what \s means) but " " and "\n", spelled out: a search
# for them is several times faster than for the negated class [^\S\n ]. A test checks the list is complete.
_OTHER_SPACE = re.compile(r"[\t\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_LATIN_BLOCK, _GREEK_BLOCK, _CYRILLIC_BLOCK = r"A-Za-z\u00c0-\u024f", r"\u0370-\u03ff", r"\u0400-\u04ff"
_SCRIPT_LETTERS = _LATIN_BLOCK + _GREEK_BLOCK + _CYRILLIC_BLOCK
# A whole run of script letters from more than one block: the only runs `_repair_word` may change. Runs of
# one block are refused by the negative lookahead (possessive, so linear in the run's length), without a
# Python call for each word.
_MIXED_SCRIPT_RUN = re.compile(
    rf"(?<![{_SCRIPT_LETTERS}])"
    rf"(?!(?:[{_LATIN_BLOCK}]++|[{_GREEK_BLOCK}]++|[{_CYRILLIC_BLOCK}]++)(?![{_SCRIPT_LETTERS}]))"
    rf"[{_SCRIPT_LETTERS}]++"
)
_HAS_CYRILLIC_OR_GREEK = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")
_HAS_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_WORD = re.compile(r"\w+")

# Folding for matching: Turkish/Azerbaijani dotless i and a few letters NFD does not decompose.
_FOLD_EXTRA = {"ı": "i", "ø": "o", "đ": "d", "ł": "l", "ß": "ss", "æ": "ae", "œ": "oe"}


def _script(ch: str) -> str | None:
    code = ord(ch)
    if ch.isascii() or 0x00C0 <= code <= 0x024F:
        return _LATIN if ch.isalpha() else None
    if 0x0400 <= code <= 0x04FF:
        return _CYRILLIC
    if 0x0370 <= code <= 0x03FF:
        return _GREEK
    return None


def _repair_word(word: str) -> str:
    counts = {_LATIN: 0, _CYRILLIC: 0, _GREEK: 0}
    for ch in word:
        script = _script(ch)
        if script is not None:
            counts[script] += 1
    if sum(1 for n in counts.values() if n) < 2:
        return word
    # Ties go to Latin: the common attack is a Latin word with a few Cyrillic letters.
    target = max((_LATIN, _CYRILLIC, _GREEK), key=lambda s: counts[s])
    out = []
    for ch in word:
        script = _script(ch)
        if script == target or script is None:
            out.append(ch)
        elif target == _LATIN:
            table = _CYRILLIC_TO_LATIN if script == _CYRILLIC else _GREEK_TO_LATIN
            out.append(table.get(ch, ch))
        elif target == _CYRILLIC and script == _LATIN:
            out.append(_LATIN_TO_CYRILLIC.get(ch, ch))
        else:
            out.append(ch)
    return "".join(out)


def repair_mixed_script(text: str) -> str:
    """Map look-alike letters inside mixed-script words to the word's main script ("Vаrkert" → "Varkert")."""
    if text.isascii() or not (_HAS_CYRILLIC_OR_GREEK.search(text) and _HAS_LATIN.search(text)):
        return text
    return _MIXED_SCRIPT_RUN.sub(lambda m: _repair_word(m.group(0)), text)


def _remove_invisible(text: str) -> str:
    # Not str.translate: with a table that lacks most characters it costs ~0.1 µs a character of non-ASCII
    # text (a failed lookup each), while a search per invisible character runs in C and usually finds none.
    for ch in _INVISIBLE:
        if ch in text:
            text = text.replace(ch, "")
    return text


def normalize(text: str) -> str:
    """The stored form of text: NFKC, no invisible characters, tidy whitespace, repaired mixed scripts."""
    if not text:
        return ""
    if not text.isascii():
        text = _remove_invisible(unicodedata.normalize("NFKC", text))
        text = repair_mixed_script(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Replacing every single space by itself costs ~35 µs a text: rewrite only what is not single spaces.
    if "  " in text or _OTHER_SPACE.search(text):
        text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _fold_char(ch: str) -> str:
    if ch.isascii():
        return ch.lower()
    extra = _FOLD_EXTRA.get(ch)
    if extra is not None:
        return extra
    folded = ch.casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _FOLD_EXTRA.get(stripped, stripped)


class _FoldTable(dict[int, str]):
    """`_fold_char` as a str.translate table: each character is folded once, then looked up in C."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """The matching form: `normalize`d, case-folded, without diacritics ("Türkiye" → "turkiye")."""
    text = normalize(text)
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD_TABLE)


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """`fold` of the raw text, and for each folded character the index of its source character in `text`.

    Unlike `fold` this does not collapse whitespace, so offsets stay exact; matching on either gives the
    same words.
    """
    out: list[str] = []
    offsets: list[int] = []
    repaired = repair_mixed_script(text)
    for index, ch in enumerate(repaired):
        if ch in _INVISIBLE_CHARS:
            continue
        piece = unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch
        for sub in piece:
            folded = _fold_char(sub)
            out.append(folded)
            offsets.extend([index] * len(folded))
    return "".join(out), offsets


def words(text: str) -> list[str]:
    """The folded words of `text`; apostrophes split ("Kazakistan'ın" → "kazakistan", "in")."""
    return _WORD.findall(fold(text))


def char_class(codes: Iterable[int], ranges: Iterable[tuple[int, int]] = ()) -> str:
    """A regex character class of `codes` (consecutive ones as ranges) and of the inclusive `ranges`."""
    spans: list[list[int]] = []
    for code in sorted(codes):
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    parts = [f"\\U{a:08x}-\\U{b:08x}" if a != b else f"\\U{a:08x}" for a, b in spans]
    parts += [f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


@functools.cache
def combining_marks() -> re.Pattern[str]:
    """Every combining mark of the Basic Multilingual Plane (the diacritics NFD splits off)."""
    return re.compile(char_class(c for c in range(0x300, 0x10000) if unicodedata.combining(chr(c))))
