"""Snippets: the stretch of an article's text where the query's words are, with those words marked.

Computed here from the stored text rather than by the engines (FTS5 snippet(), ts_headline): the output is
the same on both stores, the words are found with the folding the index uses (so "kirgizistan" marks
"Kırgızistan" and "turkiye" marks "Türkiye"), and only the ≤ page-size texts shown are read.

A snippet is a tuple of `SnippetPart`s — plain text, each part marked or not — so every face renders it
safely its own way (escaped HTML with <mark>, rich text, JSON) and nothing is ever parsed back out of it.

One is cut for each hit of a search page, so the work per word runs in C where it can: the text is folded
and its words told apart by one `str.translate` and split off by `str.split`, where they are is summed up
only to the snippet's last word, and the whitespace regex runs only on pieces that need it.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import accumulate, compress, count, islice, repeat
from operator import add, sub

from worker.analysis.text import fold, fold_with_offsets
from worker.store.search_syntax import Term

SNIPPET_WORDS = 32
# Words shown before the first match, so a match does not open the snippet cold.
LEAD_WORDS = 6
# Matches further into a long article are not looked for (the snippet costs the same for any length).
SCAN_CHARS = 20_000
ELLIPSIS = "…"

# A word: a run of letters and digits (the same as str.isalnum), as the index's tokenizer sees them.
_TOKEN = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"\s+")

# Given n, where the first n words of a text start and end in it (two lists).
_Bounds = Callable[[int], tuple[list[int], list[int]]]


@dataclass(frozen=True)
class SnippetPart:
    text: str
    highlight: bool


def plain(parts: Sequence[SnippetPart]) -> str:
    return "".join(part.text for part in parts)


class _WordChars(dict[int, str | None]):
    """A `str.translate` table: each character `fold`ed, " " for the ones that are then no word character,
    and None (dropped) for the ones folding to more or less than one character. Filled as characters are
    met: a text reuses a few dozen, and for ASCII text `str.translate` then looks each up only once.

    Stored text is already `normalize`d (look-alike letters repaired, NFKC, no invisible characters), so
    folding it character by character is folding it whole.
    """

    def __missing__(self, code: int) -> str | None:
        ch = chr(code)
        folded = " " if ch.isspace() else fold(ch)
        value = None if len(folded) != 1 else folded if folded.isalnum() else " "
        self[code] = value
        return value


_WORD_CHARS = _WordChars()


def _words(text: str) -> tuple[list[str], _Bounds]:
    """The folded words of `text`, and a function giving where in `text` its first n words are (found only
    when asked for: a snippet needs those up to its last word, not every word's)."""
    marked = text.translate(_WORD_CHARS)
    if len(marked) == len(text):
        # Every character kept its place: the words are the runs between spaces, split off in C.
        pieces = marked.split(" ")  # the words, and an empty piece for each further non-word character
        words = list(filter(None, pieces))
        return words, lambda n: _bounds(pieces, words, n)
    # A character folds to several or none: map the folded text's positions back to the text's.
    folded, offsets = fold_with_offsets(text)
    found = list(_TOKEN.finditer(folded))
    starts = [offsets[m.start()] for m in found]
    ends = [offsets[m.end() - 1] + 1 for m in found]
    return [m.group() for m in found], lambda n: (starts[:n], ends[:n])


def _bounds(pieces: list[str], words: list[str], n: int) -> tuple[list[int], list[int]]:
    """Where the first n words start and end in the text that `pieces` are split from at single spaces.

    In C (accumulate, map, compress) rather than a Python loop over the words: piece k ends after the
    pieces up to k and the k spaces between them, and the words are the pieces that are not empty.
    """
    piece_ends = map(add, accumulate(map(len, pieces)), count())
    ends = list(islice(compress(piece_ends, pieces), n))
    return list(map(sub, ends, map(len, words))), ends


def _matches(words: list[str], terms: Sequence[Term]) -> list[tuple[int, int, int]]:
    """(first word, last word + 1, term number) of every place a term matches."""
    found: list[tuple[int, int, int]] = []
    for number, term in enumerate(terms):
        first, size = term.tokens[0], len(term.tokens)
        if size == 1:
            # A one-word term matches wherever its word is found.
            starts = _prefixed(words, first) if term.prefix else _positions(words, first)
            found += [(start, start + 1, number) for start in starts]
            continue
        for start in _positions(words, first):
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


def _prefixed(words: list[str], prefix: str) -> list[int]:
    """Where a word starting with `prefix` is in `words` (compress and map: the loop runs in C)."""
    return list(compress(count(), map(str.startswith, words, repeat(prefix))))


def _best_window(matches: list[tuple[int, int, int]], terms: Sequence[Term], width: int) -> int:
    """The first word of the window showing the most different terms, then the most matches (the first
    of equal windows)."""
    starts = [start for start, _end, _number in matches]
    firsts = [max(0, start - LEAD_WORDS) for start in starts]  # the windows: each match opens one
    # The matches are sorted: the ones starting in a window are the slice between two bisections.
    los = list(map(bisect_left, repeat(starts), firsts))
    his = list(map(bisect_left, repeat(starts), [first + width for first in firsts]))
    phrases = any(len(term.tokens) > 1 for term in terms)
    numbers = [number for _start, _end, number in matches]
    best, best_score = 0, (-1, -1)
    for first, lo, hi in zip(firsts, los, his, strict=True):
        if phrases:  # a phrase can start inside the window and end past it
            inside = [number for _start, end, number in matches[lo:hi] if end <= first + width]
        else:
            inside = numbers[lo:hi]
        score = (len(set(inside)), len(inside))
        if score > best_score:
            best, best_score = first, score
    return best


def make_snippet(
    text: str, terms: Sequence[Term] = (), words: int = SNIPPET_WORDS
) -> tuple[SnippetPart, ...]:
    """About `words` words of `text` around the best matches of `terms` (the opening without terms)."""
    scanned = text[:SCAN_CHARS]
    folded_words, bounds = _words(scanned)
    if not folded_words:
        return ()
    matches = _matches(folded_words, terms) if terms else []
    first = _best_window(matches, terms, words) if matches else 0
    first = min(first, max(0, len(folded_words) - words))  # a full window, even near the end
    last = min(len(folded_words), first + words)
    starts, ends = bounds(last)
    marks = [(starts[s], ends[e - 1]) for s, e, _ in matches if s >= first and e <= last]
    parts: list[SnippetPart] = []
    if first > 0:
        parts.append(SnippetPart(ELLIPSIS + " ", False))
    # From the start or to the end of the text, the punctuation around the words comes along.
    cursor = starts[first] if first > 0 else 0
    # No part is empty: marks are merged, so each starts past the cursor.
    for start, end in _merged(marks):
        if start > cursor:
            parts.append(SnippetPart(_tidy(scanned[cursor:start]), False))
        parts.append(SnippetPart(_tidy(scanned[start:end]), True))
        cursor = end
    stop = ends[last - 1] if last < len(folded_words) else len(scanned)
    if stop > cursor:
        parts.append(SnippetPart(_tidy(scanned[cursor:stop]), False))
    if last < len(folded_words) or len(text) > len(scanned):
        parts.append(SnippetPart(" " + ELLIPSIS, False))
    return tuple(parts)


def _tidy(piece: str) -> str:
    """`piece` with each run of whitespace as one space."""
    # Every whitespace character but " " is unprintable: most pieces need nothing done.
    if piece.isprintable() and "  " not in piece:
        return piece
    # Stored text's other whitespace is its line breaks: replacing those is several times cheaper than the
    # regex, which is left for the pieces where that does not make single spaces.
    tidied = piece.replace("\n\n", " ").replace("\n", " ")
    return tidied if tidied.isprintable() and "  " not in tidied else _SPACES.sub(" ", piece)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
