"""Snippets: the stretch of an article's text where the query's words are, with those words marked.

Computed here from the stored text rather than by the engines (FTS5 snippet(), ts_headline): the output is
the same on both stores, the words are found with the folding the index uses (so "kirgizistan" marks
"Kırgızistan" and "turkiye" marks "Türkiye"), and only the ≤ page-size texts shown are read.

A snippet is a tuple of `SnippetPart`s — plain text, each part marked or not — so every face renders it
safely its own way (escaped HTML with <mark>, rich text, JSON) and nothing is ever parsed back out of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice

from worker.analysis.text import fold, fold_with_offsets
from worker.store.search_syntax import Term

SNIPPET_WORDS = 32
# Words shown before the first match, so a match does not open the snippet cold.
LEAD_WORDS = 6
# Matches further into a long article are not looked for (the snippet costs the same for any length).
SCAN_CHARS = 20_000
ELLIPSIS = "…"

_TOKEN = re.compile(r"[^\W_]+")
# The same words in ASCII text, several times faster than the Unicode class (most text is ASCII).
_ASCII_TOKEN = re.compile(r"[A-Za-z0-9]+")
_SPACES = re.compile(r"\s+")
# fold() of single characters, kept: a text reuses a few dozen characters.
_CHAR_FOLD: dict[str, str] = {}


@dataclass(frozen=True)
class SnippetPart:
    text: str
    highlight: bool


def plain(parts: Sequence[SnippetPart]) -> str:
    return "".join(part.text for part in parts)


def _folded_same_length(text: str) -> str | None:
    """fold(text) when every character folds to exactly one (positions then stay the same), else None.

    Stored text is already `normalize`d (look-alike letters repaired, NFKC, no invisible characters), so
    folding it character by character is folding it whole.
    """
    if text.isascii():
        return text.lower()
    for ch in set(text):
        if ch not in _CHAR_FOLD:
            _CHAR_FOLD[ch] = " " if ch.isspace() else fold(ch)
        if len(_CHAR_FOLD[ch]) != 1:
            return None
    return "".join(_CHAR_FOLD[ch] for ch in text)


def _words(text: str) -> tuple[list[str], Callable[[int], list[tuple[int, int]]]]:
    """The folded words of `text`, and a function giving the spans in `text` of its first n words (found
    only when asked for: a snippet needs those up to its last word, not every word's)."""
    folded = _folded_same_length(text)
    if folded is not None:
        same = folded
        token = _ASCII_TOKEN if same.isascii() else _TOKEN
        return token.findall(same), lambda n: [m.span() for m in islice(token.finditer(same), n)]
    folded, offsets = fold_with_offsets(text)
    found = list(_TOKEN.finditer(folded))
    spans = [(offsets[m.start()], offsets[m.end() - 1] + 1) for m in found]
    return [m.group() for m in found], lambda n: spans[:n]


def _matches(words: list[str], terms: Sequence[Term]) -> list[tuple[int, int, int]]:
    """(first word, last word + 1, term number) of every place a term matches."""
    found = []
    for number, term in enumerate(terms):
        first, size = term.tokens[0], len(term.tokens)
        if size == 1 and term.prefix:
            starts = [i for i, word in enumerate(words) if word.startswith(first)]
        else:
            starts = _positions(words, first)
        for start in starts:
            end = start + size
            if end > len(words) or words[start : end - 1] != list(term.tokens[:-1]):
                continue
            last = words[end - 1]
            if last == term.tokens[-1] or (term.prefix and last.startswith(term.tokens[-1])):
                found.append((start, end, number))
    return sorted(found)


def _positions(words: list[str], word: str) -> list[int]:
    """Where `word` is in `words` (list.index: the comparisons run in C)."""
    found: list[int] = []
    with suppress(ValueError):
        while True:
            found.append(words.index(word, found[-1] + 1 if found else 0))
    return found


def _best_window(matches: list[tuple[int, int, int]], count: int) -> int:
    """The first word of the window showing the most different terms, then the most matches."""
    best, best_score = 0, (-1, -1)
    for start, _end, _number in matches:
        first = max(0, start - LEAD_WORDS)
        inside = [m for m in matches if m[0] >= first and m[1] <= first + count]
        score = (len({m[2] for m in inside}), len(inside))
        if score > best_score:
            best, best_score = first, score
    return best


def make_snippet(
    text: str, terms: Sequence[Term] = (), words: int = SNIPPET_WORDS
) -> tuple[SnippetPart, ...]:
    """About `words` words of `text` around the best matches of `terms` (the opening without terms)."""
    scanned = text[:SCAN_CHARS]
    folded_words, spans_of = _words(scanned)
    if not folded_words:
        return ()
    matches = _matches(folded_words, terms) if terms else []
    first = _best_window(matches, words) if matches else 0
    first = min(first, max(0, len(folded_words) - words))  # a full window, even near the end
    last = min(len(folded_words), first + words)
    spans = spans_of(last)
    marks = [(spans[s][0], spans[e - 1][1]) for s, e, _ in matches if s >= first and e <= last]
    parts: list[SnippetPart] = []
    if first > 0:
        parts.append(SnippetPart(ELLIPSIS + " ", False))
    # From the start or to the end of the text, the punctuation around the words comes along.
    cursor = spans[first][0] if first > 0 else 0
    for start, end in _merged(marks):
        if start > cursor:
            parts.append(SnippetPart(_SPACES.sub(" ", scanned[cursor:start]), False))
        parts.append(SnippetPart(_SPACES.sub(" ", scanned[start:end]), True))
        cursor = end
    stop = spans[last - 1][1] if last < len(folded_words) else len(scanned)
    if stop > cursor:
        parts.append(SnippetPart(_SPACES.sub(" ", scanned[cursor:stop]), False))
    if last < len(folded_words) or len(text) > len(scanned):
        parts.append(SnippetPart(" " + ELLIPSIS, False))
    return tuple(part for part in parts if part.text)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
