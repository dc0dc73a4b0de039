"""Seed documents: reference articles that dedup compares against and that never alert (invariant 3).

Format: a leading `date YYYY-MM-DD`, then the body (on the same line or the next). The title is the body's
first sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from worker.analysis.text import normalize
from worker.errors import NewswatchError
from worker.store.articles import NewArticle
from worker.store.models import SOURCE_SEED

SEED_SUFFIXES = (".txt", ".md")
TITLE_MAX = 200
_DATE_PREFIX = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})(?:\s+|$)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")


@dataclass(frozen=True)
class SeedDocument:
    path: Path
    guid: str  # the file name: re-importing the same file updates the same article
    title: str
    text: str
    published: datetime

    def item(self) -> NewArticle:
        """The seed as it enters the store: no feed, no URL, never alerting (invariant 3)."""
        return NewArticle(
            source=SOURCE_SEED,
            feed_id=None,
            guid=self.guid,
            url=None,
            title=self.title,
            text=self.text,
            published=self.published,
            outlet="seed",
            alertable=False,
        )


def derive_title(text: str) -> str:
    first = text.strip().split("\n", 1)[0]
    sentence = _SENTENCE_END.split(first, 1)[0].strip()
    if len(sentence) > TITLE_MAX:
        sentence = sentence[: TITLE_MAX - 1].rsplit(" ", 1)[0] + "…"
    return sentence


def read_seed(path: Path) -> SeedDocument:
    """Raises NewswatchError naming the file when it is unreadable or not in the seed format."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise NewswatchError(f"{path}: cannot read seed: {exc}") from exc
    match = _DATE_PREFIX.match(raw)
    if not match:
        raise NewswatchError(f"{path}: a seed starts with `date YYYY-MM-DD`, got {raw.strip()[:40]!r}")
    body = raw[match.end() :]
    try:
        published = datetime.strptime(match.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise NewswatchError(f"{path}: bad date {match.group(1)!r}: {exc}") from exc
    text = normalize(body)
    if not text:
        raise NewswatchError(f"{path}: the seed has no text after its date")
    return SeedDocument(path, f"seed:{path.name}", derive_title(text), text, published)


def seed_files(paths: list[Path]) -> list[Path]:
    """The seed files named, folders expanded (sorted, so imports are reproducible)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SEED_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise NewswatchError(f"{path}: no such seed file or folder")
    return files
