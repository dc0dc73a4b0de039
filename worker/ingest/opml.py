"""OPML in and out: the feed-list format every reader exchanges. Pure: text in, text out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import format_datetime

from worker.errors import NewswatchError
from worker.timeutil import utcnow


@dataclass(frozen=True)
class OutlineFeed:
    url: str
    title: str | None = None


def parse_opml(data: bytes, source: str = "OPML") -> list[OutlineFeed]:
    """Every outline with an xmlUrl, nested folders included, in document order, without repeats."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise NewswatchError(f"{source}: not valid OPML/XML: {exc}") from exc
    if root.tag.lower() != "opml":
        raise NewswatchError(f"{source}: not an OPML document (root element <{root.tag}>)")
    feeds: list[OutlineFeed] = []
    seen: set[str] = set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url and url not in seen:
            seen.add(url)
            feeds.append(OutlineFeed(url, outline.get("title") or outline.get("text")))
    return feeds


def render_opml(feeds: Iterable[OutlineFeed], title: str = "Newswatch subscriptions") -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(utcnow())
    body = ET.SubElement(root, "body")
    for feed in feeds:
        label = feed.title or feed.url
        ET.SubElement(body, "outline", type="rss", text=label, title=label, xmlUrl=feed.url)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
