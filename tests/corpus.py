"""The feedparser test corpus (../shared/corpora/feedparser-tests): its files and their simulated headers.

Shared by every test that runs real-world-shaped feeds through the code (parsing, storing). The corpus lives
outside the repository; `NEWSWATCH_CORPORA` points at another corpora folder. Tests skip when it is missing,
except on CI (`CI=true`), where a missing corpus is a failure.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CORPORA_ENV = "NEWSWATCH_CORPORA"
CORPUS_NAME = "feedparser-tests"
DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
# Feed documents; the corpus also holds LICENSE and SOURCE.md, which are about it, not part of it.
FEED_SUFFIXES = frozenset({".xml", ".json"})

# feedparser's own runner reads simulated HTTP headers from comment lines like
# "Header:  Content-type: text/xml; charset=utf-8" (tests/helpers.py in feedparser).
_HEADER_LINE = re.compile(r"^Header:\s+([^:\r\n]+):(.*)$", re.MULTILINE)


def corpus_dir() -> Path:
    """Where the feedparser corpus is expected (it may be missing)."""
    corpora = os.environ.get(CORPORA_ENV)
    return (Path(corpora) if corpora else DEFAULT_CORPORA) / CORPUS_NAME


def corpus_files() -> list[Path]:
    """Every feed document of the corpus, recursively, sorted; empty when the corpus is missing."""
    root = corpus_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in FEED_SUFFIXES)


def corpus_headers(path: Path) -> dict[str, str]:
    """The simulated response headers a corpus file declares, names lower-cased; {} when it declares none.

    The few UTF-16/32 files carry their comment in that encoding; none of them declares headers, so reading
    every file as UTF-8 finds all there are.
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    headers: dict[str, str] = {}
    for name, value in _HEADER_LINE.findall(text):
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


def require_corpus() -> Path:
    """The corpus folder; skips the calling test when it is missing, fails instead on CI."""
    root = corpus_dir()
    if not corpus_files():
        message = f"feedparser corpus missing at {root} (set {CORPORA_ENV})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root
