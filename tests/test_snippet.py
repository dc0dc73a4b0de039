"""Snippets: the words shown around the matches, marked on folded words but cut from the original text; and
the fast implementation compared with a plain one on random texts."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from worker.analysis.text import fold, fold_with_offsets
from worker.store.search_syntax import Term, highlight_terms, parse
from worker.store.snippet import ELLIPSIS, LEAD_WORDS, SCAN_CHARS, SnippetPart, make_snippet, plain


def marked(parts: Sequence[SnippetPart]) -> list[str]:
    return [part.text for part in parts if part.highlight]


def snippet(text: str, query: str = "", words: int = 32) -> tuple[SnippetPart, ...]:
    return make_snippet(text, highlight_terms(parse(query)) if query else (), words)


def test_no_words_no_snippet() -> None:
    assert snippet("", "aktau") == () and snippet(" \n\n — … ", "aktau") == () and snippet("___") == ()


def test_without_terms_the_opening() -> None:
    text = " ".join(f"w{i}" for i in range(50))
    assert plain(snippet(text, words=5)) == "w0 w1 w2 w3 w4 " + ELLIPSIS
    assert snippet("Short text.") == (SnippetPart("Short text.", False),)


def test_matches_are_marked_on_folded_words_and_cut_from_the_text() -> None:
    text = "Ankara: Türkiye and Kırgızistan signed; TÜRKİYE's minister spoke."
    parts = snippet(text, "turkiye kirgizistan")
    assert marked(parts) == ["Türkiye", "Kırgızistan", "TÜRKİYE"] and plain(parts) == text
    assert marked(snippet("Президент Қазақстан Тоқаев", "қазақстан")) == ["Қазақстан"]


def test_texts_whose_folding_changes_length() -> None:
    # "ß" folds to "ss" and "ǅ" to "dz": positions are mapped back to the text's.
    parts = snippet("Die Straße nach ǅemal, STRASSE und ǆemal.", "strasse dzemal")
    assert marked(parts) == ["Straße", "ǅemal", "STRASSE", "ǆemal"]
    assert plain(parts) == "Die Straße nach ǅemal, STRASSE und ǆemal."


def test_prefixes_and_phrases() -> None:
    text = "Tokayev met Tokaev. The prime minister and the Prime  Minister's aide; minister prime."
    assert marked(snippet(text, "tokay*")) == ["Tokayev"]
    assert marked(snippet(text, "toka*")) == ["Tokayev", "Tokaev"]
    assert marked(snippet(text, '"prime minister"')) == ["prime minister", "Prime Minister"]
    assert marked(snippet(text, '"prime min"*')) == ["prime minister", "Prime Minister"]


def test_the_window_with_the_most_different_terms_wins() -> None:
    filler = " ".join(["word"] * 40)
    text = f"aktau aktau aktau {filler} aktau port {filler}"
    parts = snippet(text, "aktau port", words=10)
    assert marked(parts) == ["aktau", "port"] and parts[0] == SnippetPart(ELLIPSIS + " ", False)
    # Equal windows: the first; matches are led in by LEAD_WORDS words.
    text = f"{filler} aktau {filler} aktau {filler}"
    parts = snippet(text, "aktau", words=10)
    lead = " ".join(["word"] * LEAD_WORDS)
    assert plain(parts) == f"{ELLIPSIS} {lead} aktau word word word {ELLIPSIS}"


def test_whitespace_runs_become_one_space() -> None:
    text = "Aktau\n\nport\tsees  ships\u00a0daily.\nMore\r\nlines."
    parts = snippet(text, "port ships")
    assert plain(parts) == "Aktau port sees ships daily. More lines." and marked(parts) == ["port", "ships"]
    assert marked(snippet("Caspian\n\nSea, Caspian Sea", '"caspian sea"')) == ["Caspian Sea", "Caspian Sea"]


def test_only_the_first_scan_chars_are_looked_at() -> None:
    text = "opening words here " + "x" * SCAN_CHARS + " aktau"
    parts = snippet(text, "aktau")
    assert marked(parts) == [] and parts[-1] == SnippetPart(" " + ELLIPSIS, False)


# A plain implementation: every word's span found with a regex, every window scored against every match.
TOKEN = re.compile(r"[^\W_]+")


def reference(text: str, terms: Sequence[Term], size: int = 32) -> list[tuple[str, bool]]:
    scanned = text[:SCAN_CHARS]
    chars = [" " if ch.isspace() else fold(ch) for ch in scanned]
    if all(len(ch) == 1 for ch in chars):
        found = [(m.group(), m.span()) for m in TOKEN.finditer("".join(chars))]
    else:
        folded, offsets = fold_with_offsets(scanned)
        found = [(m.group(), (offsets[m.start()], offsets[m.end() - 1] + 1)) for m in TOKEN.finditer(folded)]
    words, spans = [w for w, _ in found], [s for _, s in found]
    if not words:
        return []
    matches = []
    for number, term in enumerate(terms):
        for start in range(len(words) - len(term.tokens) + 1):
            *head, tail = words[start : start + len(term.tokens)]
            if head == list(term.tokens[:-1]) and (
                tail == term.tokens[-1] or (term.prefix and tail.startswith(term.tokens[-1]))
            ):
                matches.append((start, start + len(term.tokens), number))
    first, best = 0, (-1, -1)
    for start, _, _ in sorted(matches):
        window = max(0, start - LEAD_WORDS)
        inside = [m for m in matches if m[0] >= window and m[1] <= window + size]
        if (len({m[2] for m in inside}), len(inside)) > best:
            first, best = window, (len({m[2] for m in inside}), len(inside))
    first = min(first, max(0, len(words) - size))
    last = min(len(words), first + size)
    cuts = sorted((spans[s][0], spans[e - 1][1]) for s, e, _ in matches if s >= first and e <= last)
    merged: list[list[int]] = []
    for start, end in cuts:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts = [(ELLIPSIS + " ", False)] if first > 0 else []
    cursor = spans[first][0] if first > 0 else 0
    for start, end in merged:
        parts += [(scanned[cursor:start], False)] if start > cursor else []
        parts.append((scanned[start:end], True))
        cursor = end
    stop = spans[last - 1][1] if last < len(words) else len(scanned)
    parts += [(scanned[cursor:stop], False)] if stop > cursor else []
    if last < len(words) or len(text) > len(scanned):
        parts.append((" " + ELLIPSIS, False))
    return [(re.sub(r"\s+", " ", piece), highlight) for piece, highlight in parts]


PIECES = ["aktau", "Aktau", "AKTAU", "port", "the", "a", "1", "23", "ß", "ǅ", "İ", "ı", "ü", "Ü", "қ", "Қ"]
PIECES += ["σ", "Σ", "ﬁ", "😀", ".", ",", "-", "_"]
PIECES += [" ", " ", " ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u200b", "\u0301", "\x00"]
# Without the characters folding to more or less than one ("ß" → "ss", "\u200b" → ""): the other way.
SAME_LENGTH = [piece for piece in PIECES if all(ch.isspace() or len(fold(ch)) == 1 for ch in piece)]


def test_same_as_the_plain_implementation_on_random_texts() -> None:
    rnd = random.Random(20250521)
    for _ in range(1500):
        pieces = rnd.choice([PIECES, SAME_LENGTH])
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 90)))
        tokens = TOKEN.findall(fold(text)) or ["aktau"]  # so that most terms match
        terms = []
        for _ in range(rnd.randint(1, 3)):
            start = rnd.randrange(len(tokens))
            phrase = tuple(tokens[start : start + rnd.randint(1, 2)])
            if rnd.random() < 0.3:
                phrase = (*phrase[:-1], phrase[-1][: max(1, len(phrase[-1]) - 1)])
            terms.append(Term(phrase, prefix=rnd.random() < 0.4))
        for size in (32, 1, 3, 7):
            got = [(part.text, part.highlight) for part in make_snippet(text, terms, size)]
            assert got == reference(text, terms, size), (text, terms, size)
