"""Every file of feedparser's own test corpus goes through `parse_feed` without an unhandled exception.

The corpus is 2,100 small feeds written to break parsers: wrong encodings, ill-formed XML, hostile HTML,
odd dates. A file may be refused with a `ParseError`; anything else raised is a bug. What is returned must
keep the parser's promises: unique guids, sane dates, bounded sizes, HTML without anything that runs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.corpus import corpus_dir, corpus_files, corpus_headers, require_corpus
from worker.errors import ParseError
from worker.ingest import parse
from worker.ingest.parse import ParsedFeed, parse_feed
from worker.ingest.sanitize import html_to_plain

FETCHED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CORPUS_FILES = corpus_files()

# What sanitised HTML must never contain: executable tags, event handlers, URLs of other schemes.
_UNSAFE_TAG = re.compile(r"<(?:script|style|iframe|object|embed|form|input|svg|math|meta|link|base)\b", re.I)
_EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
_UNSAFE_URL = re.compile(r'\s(?:href|src)="(?!https?:|mailto:)[a-z][a-z0-9+.-]*:', re.I)


def _url_for(path: Path) -> str:
    """Where the file would have been fetched from, so that relative links have a base."""
    return f"http://127.0.0.1:8097/{path.relative_to(corpus_dir()).as_posix()}"


def _assert_promises(feed: ParsedFeed) -> None:
    guids = [entry.guid for entry in feed.entries]
    assert len(guids) == len(set(guids)), "guids repeat inside one document"
    assert len(feed.entries) <= parse.MAX_ENTRIES
    assert feed.warning is None or "\n" not in feed.warning
    assert feed.title is None or len(feed.title) <= parse.MAX_TITLE_CHARS
    for entry in feed.entries:
        assert entry.guid.strip()
        assert len(entry.title) <= parse.MAX_TITLE_CHARS and "\n" not in entry.title
        assert len(entry.text) <= parse.MAX_TEXT_CHARS
        assert entry.published.utcoffset() == timedelta(0)
        assert parse.OLDEST_PLAUSIBLE_DATE <= entry.published <= FETCHED_AT + parse.MAX_FUTURE_SKEW
        assert entry.url is None or entry.url.startswith(("http://", "https://"))
        for fragment in (entry.summary_html, entry.content_html):
            if fragment is None:
                continue
            assert not _UNSAFE_TAG.search(fragment), fragment
            assert not _EVENT_HANDLER.search(fragment), fragment
            assert not _UNSAFE_URL.search(fragment), fragment


def test_corpus_is_present() -> None:
    require_corpus()
    # The corpus snapshot holds 2,107 documents; far fewer means a broken copy, not a smaller corpus.
    assert len(CORPUS_FILES) > 2_000


@pytest.mark.parametrize(
    "path", CORPUS_FILES, ids=[p.relative_to(corpus_dir()).as_posix() for p in CORPUS_FILES]
)
def test_corpus_file_parses(path: Path) -> None:
    try:
        feed = parse_feed(path.read_bytes(), corpus_headers(path), _url_for(path), FETCHED_AT)
    except ParseError as exc:
        message = str(exc)
        assert message and "\n" not in message
        assert message.startswith(("not a feed", "empty body"))
        return
    _assert_promises(feed)


# feedparser's oracle for a hostile fragment, e.g. `entries[0]['content'][0]['value'] == 'safe description'`.
_EXPECT = re.compile(
    r"Expect:\s*not bozo and entries\[0\]\['(content|summary|description|title)'\]"
    r"(?:\[0\]\['value'\])? == '(.*)'\s*$",
    re.MULTILINE,
)
SAFE_TEXT = "safe description"
# Where we keep less than feedparser, on purpose: an HTML parser reads the inside of <iframe> as raw text,
# which a browser never shows, so we drop it.
DELIBERATE_DIFFERENCES = {"entry_content_iframe.xml": "safe", "entry_summary_iframe.xml": "safe"}


def _safe_text_oracles() -> list[tuple[Path, str]]:
    """Sanitize cases whose expected result, read as text, is exactly "safe description"."""
    oracles = []
    for path in CORPUS_FILES:
        if path.parent.name != "sanitize":
            continue
        match = _EXPECT.search(path.read_text(encoding="utf-8", errors="replace"))
        if match and html_to_plain(match.group(2)) == SAFE_TEXT:
            oracles.append((path, match.group(1)))
    return oracles


def test_corpus_hostile_fragments_keep_only_their_safe_text() -> None:
    """feedparser's sanitize oracles, compared as plain text: the safe words survive, nothing else does."""
    require_corpus()
    oracles = _safe_text_oracles()
    assert len(oracles) > 50  # the snapshot has 88; a handful would mean the oracle pattern broke
    wrong = []
    for path, field in oracles:
        feed = parse_feed(path.read_bytes(), corpus_headers(path), _url_for(path), FETCHED_AT)
        entry = feed.entries[0]
        got = entry.title if field == "title" else entry.text
        if got != DELIBERATE_DIFFERENCES.get(path.name, SAFE_TEXT):
            wrong.append(f"{path.name}: {got!r}")
    assert not wrong, wrong
