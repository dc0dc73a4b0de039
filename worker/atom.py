"""Atom 1.0 (RFC 4287) documents of search hits: `newswatch search --format atom` and the API's tag feeds.

Pure: hits and a little feed metadata in, UTF-8 bytes out. Ids are `urn:uuid:` URIs derived from what they
name (the article's id, URL and date; the feed's own URL), so they stay the same from one request to the
next and readers do not show an entry twice. Entries carry the article's link, its snippet as a text
summary (as text content when there is no link: RFC 4287 wants one of the two) and a category per tag.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from worker import __version__
from worker.store.search import SearchHit
from worker.timeutil import utcnow

ATOM_NS = "http://www.w3.org/2005/Atom"
GENERATOR_URI = "https://github.com/newswatch/newswatch"
FEED_AUTHOR = "Newswatch"
NO_TITLE = "(no title)"
# Characters XML 1.0 cannot carry at all; feeds do contain them now and then.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

ET.register_namespace("", ATOM_NS)


@dataclass(frozen=True)
class FeedMeta:
    title: str
    self_url: str | None = None  # where the document is served: link rel="self"
    alternate_url: str | None = None  # the web page showing the same: link rel="alternate"
    id: str | None = None  # default: a urn:uuid of self_url (or of the title without one)
    subtitle: str | None = None
    updated: datetime | None = None  # default: the newest entry's update, or now for an empty feed


def _uuid_urn(name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def entry_id(hit: SearchHit) -> str:
    return _uuid_urn(f"newswatch:article:{hit.id}:{hit.url or ''}:{hit.published.isoformat()}")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _add(parent: ET.Element, name: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{name}", {k: _text(v) for k, v in attributes.items()})
    if text is not None:
        element.text = _text(text)
    return element


def render_atom(hits: Sequence[SearchHit], meta: FeedMeta) -> bytes:
    """An Atom feed document with one entry per hit, in the given order."""
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _add(feed, "id", meta.id or _uuid_urn(meta.self_url or f"newswatch:feed:{meta.title}"))
    _add(feed, "title", meta.title, type="text")
    if meta.subtitle:
        _add(feed, "subtitle", meta.subtitle, type="text")
    updates = [hit.updated or hit.published for hit in hits]
    _add(feed, "updated", _time(meta.updated or max(updates, default=utcnow())))
    _add(_add(feed, "author"), "name", FEED_AUTHOR)
    _add(feed, "generator", "Newswatch", uri=GENERATOR_URI, version=__version__)
    if meta.self_url:
        _add(feed, "link", rel="self", type="application/atom+xml", href=meta.self_url)
    if meta.alternate_url:
        _add(feed, "link", rel="alternate", type="text/html", href=meta.alternate_url)
    for hit in hits:
        entry = _add(feed, "entry")
        _add(entry, "id", entry_id(hit))
        _add(entry, "title", hit.title or NO_TITLE, type="text")
        _add(entry, "updated", _time(hit.updated or hit.published))
        _add(entry, "published", _time(hit.published))
        if hit.author:
            _add(_add(entry, "author"), "name", hit.author)
        if hit.url:
            _add(entry, "link", rel="alternate", href=hit.url)
            _add(entry, "summary", hit.snippet_text, type="text")
        else:
            _add(entry, "content", hit.snippet_text, type="text")
        for tag in hit.tags:
            _add(entry, "category", term=tag.name)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
