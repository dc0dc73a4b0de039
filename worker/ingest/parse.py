"""Bytes → entries: feedparser (RSS, Atom, RDF) and JSON Feed. No network, no database.

Both formats are first read into the same raw shape (`_RawFeed`), then one builder applies every policy —
sanitising, plain text, identity, dates, limits — so RSS, Atom and JSON Feed entries are judged alike.

feedparser runs with its own sanitiser and relative-URI resolver switched off: both are pure-Python passes
over every HTML fragment that cost ~90 % of its time, and nh3 does the same work (stricter, in Rust),
resolving relative links against the base feedparser tracked for each fragment (xml:base, else the feed URL).
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import re
import time
import xml.sax
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from worker.analysis.text import normalize
from worker.analysis.urls import canonical_url
from worker.errors import ParseError
from worker.ingest.sanitize import (
    html_to_plain,
    html_to_text,
    sanitize_html,
    strip_control_chars,
    text_to_html,
)
from worker.timeutil import to_utc

# Limits: a hostile or broken feed must not make one poll slow or one row huge.
MAX_ENTRIES = 5_000  # per document; the rest is dropped with a warning
MAX_TITLE_CHARS = 1_000  # titles (feed and entry), after conversion to plain text
MAX_AUTHOR_CHARS = 300
MAX_TEXT_CHARS = 200_000  # plain text per entry
MAX_HTML_CHARS = 1_000_000  # raw HTML per fragment, cut before sanitising
MAX_URL_CHARS = 4_096  # longer links are treated as missing
MAX_GUID_CHARS = 1_000  # longer identities are replaced by their sha256
# Markup around a title is cut at this multiple of MAX_TITLE_CHARS before conversion, so a 5 MB title
# costs microseconds, while a title wrapped in ordinary markup still keeps its whole text.
TITLE_MARKUP_FACTOR = 8
MAX_WARNING_CHARS = 300

# Dates: a feed's clock may run a little ahead (time zones written wrong); beyond this it is wrong.
MAX_FUTURE_SKEW = timedelta(days=1)
# Earlier than this is a placeholder (epoch 0, year 1), not a publication date.
OLDEST_PLAUSIBLE_DATE = datetime(1990, 1, 1, tzinfo=UTC)

# RSS <ttl> is in minutes; zero, negative or beyond a week is ignored as nonsense.
MAX_TTL_MINUTES = 7 * 24 * 60

# Derived guids for items that reuse another item's guid: guid + "#" + this many hex digits.
SHORT_HASH_CHARS = 12
HASH_PREFIX = "sha256:"

JSON_FEED_TYPES = frozenset({"application/feed+json", "application/json"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# How much of the body start is sniffed for an HTML page, when a body is not a feed.
SNIFF_BYTES = 1_024

_JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(?:\.\d+)?/?$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")
_MAX_LANGUAGE_CHARS = 16  # the store's column width
_BOM = b"\xef\xbb\xbf"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HTML_MARKERS = (b"<!doctype html", b"<html")
# Runs of character references that may not name a character: the UTF-16 surrogate range (some CMSs write
# an emoji as two such references) and numbers beyond Unicode. expat rejects them and feedparser's fallback
# parser crashes on them. The pattern over-matches (55000-57999, >= 0x100000); the callback checks exactly.
_SUSPECT_CHAR_REFS = re.compile(
    rb"(?:&#(?:"
    rb"[xX]0*(?:[dD][89a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{5,})"  # hexadecimal
    rb"|0*(?:5[5-7][0-9]{3}|[1-9][0-9]{6,})"  # decimal
    rb");)+"
)
_CHAR_REF = re.compile(rb"&#([xX]?)([0-9a-fA-F]+);")
_HIGH_SURROGATES = range(0xD800, 0xDC00)
_LOW_SURROGATES = range(0xDC00, 0xE000)
_REPLACEMENT_CHARACTER = 0xFFFD
_MAX_CODE_POINT = 0x10FFFF
_MAX_CODE_POINT_DIGITS = 7  # 1114111 in decimal; hexadecimal needs six


@dataclass(frozen=True)
class ParsedEntry:
    guid: str  # identity inside the feed: guid, else canonical link, else hash of title+content
    url: str | None
    title: str  # plain text, normalised
    author: str | None
    summary_html: str | None  # sanitised HTML
    content_html: str | None  # sanitised HTML
    text: str  # plain text of the fullest body (content, else summary), `analysis.text.normalize`d
    published: datetime  # aware UTC; fetch time when missing/unparseable; clamped when in the future
    updated: datetime | None  # aware UTC
    lang: str | None
    dated: bool = True  # False when `published` is the fetch time because the feed gave no believable date


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    site_url: str | None
    ttl_seconds: int | None  # RSS <ttl>, in seconds
    entries: list[ParsedEntry] = field(default_factory=list)
    warning: str | None = None  # a recoverable parser complaint (feedparser bozo), recorded, not fatal
    lang: str | None = None  # the feed's language; entries without their own inherit it


@dataclass(frozen=True)
class _Body:
    """One body fragment as the feed gave it: HTML or plain text, and the URL its links are relative to."""

    value: str
    is_html: bool
    base: str | None


@dataclass(frozen=True)
class _RawEntry:
    guid: str | None
    url: str | None  # absolute http(s) or None
    title: str  # HTML (titles are always read as HTML: feeds escape them inconsistently)
    author: str | None
    summary: _Body | None
    content: _Body | None
    published: datetime | None  # aware UTC, as written (policy is applied later)
    updated: datetime | None
    created: datetime | None
    lang: str | None


@dataclass(frozen=True)
class _XmlContext:
    """What entries of one XML document inherit from it."""

    doc_base: str  # the document's URL: feedparser's base where no xml:base is in effect
    site_url: str | None
    lang: str | None
    header_lang: str | None  # HTTP Content-Language


@dataclass(frozen=True)
class _RawFeed:
    title: str | None
    site_url: str | None
    ttl_seconds: int | None
    lang: str | None
    entries: list[_RawEntry]
    warnings: list[str]


def parse_feed(body: bytes, headers: Mapping[str, str], url: str, fetched_at: datetime) -> ParsedFeed:
    """Parse a fetched body. Raises `worker.errors.ParseError` when it is not a feed at all."""
    headers = {name.lower(): value for name, value in headers.items()}
    start = body.removeprefix(_BOM).lstrip()[:SNIFF_BYTES]
    if not start:
        raise ParseError("empty body")
    if _is_json(start, _media_type(headers)):
        raw = _read_json_feed(body, url)
    else:
        raw = _read_xml_feed(body, headers, url)
    return _build(raw, to_utc(fetched_at))


# --- formats -------------------------------------------------------------------------------------------


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json(start: bytes, media_type: str) -> bool:
    """JSON when the body opens an object, or the server says JSON and the body is not markup."""
    return start.startswith(b"{") or (media_type in JSON_FEED_TYPES and not start.startswith(b"<"))


def _read_xml_feed(body: bytes, headers: Mapping[str, str], url: str) -> _RawFeed:
    warnings = []
    body, headers, repaired = _trust_utf8_bytes(body, headers)
    if repaired:
        warnings.append(f"declared {repaired}, but the bytes are UTF-8: read as UTF-8")
    response_headers = dict(headers)
    doc_base = _join(url, headers.get("content-location", "")) or url
    # feedparser resolves relative URIs — guids included — against Content-Location. It gets a sentinel base
    # instead, so that what was relative can be told apart: a guid keeps its text as written (an identity
    # must not change when the feed moves), and links are resolved against the real document URL.
    response_headers["content-location"] = _RELATIVE_BASE
    try:
        # BytesIO, never the bytes themselves: feedparser would try a bytes value as a file name first.
        result = feedparser.parse(
            io.BytesIO(_repair_char_refs(body)),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser is a large pure-Python parser; hostile input may break it
        raise ParseError(f"not a feed: the feed parser failed ({type(exc).__name__})") from exc

    feed = result.get("feed", {})
    entries: list[Any] = result.get("entries", [])
    if not result.get("version") and not entries:
        reason = _not_a_feed_reason(body, headers, result)
        if reason:
            raise ParseError(reason)
    if result.get("bozo"):
        warnings.append(f"ill-formed feed, parsed anyway: {_one_line(result.get('bozo_exception'))}")
    kept, limit_warning = _limit(entries)
    warnings.extend(limit_warning)

    context = _XmlContext(
        doc_base=doc_base,
        site_url=_http_url(_resolve(_str(feed, "link"), doc_base)),
        lang=_language(dict.get(feed, "language")),
        header_lang=_language(headers.get("content-language")),
    )
    return _RawFeed(
        title=_str(feed, "title"),
        site_url=context.site_url,
        ttl_seconds=_ttl_seconds(dict.get(feed, "ttl")),
        lang=context.lang,
        entries=[_xml_entry(entry, context) for entry in kept],
        warnings=warnings,
    )


_XML_DECLARED_ENCODING = re.compile(rb"""(<\?xml[^>]*?encoding\s*=\s*["'])([A-Za-z0-9._:-]+)(["'])""")
_CHARSET_PARAM = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._:-]+)\"?", re.IGNORECASE)
_UTF_FAMILY = ("utf-8", "utf8", "utf-16", "utf-32", "ucs-2", "ucs-4")


def _trust_utf8_bytes(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, Mapping[str, str], str | None]:
    """Bytes that are valid UTF-8 with multi-byte sequences, declared in a legacy charset, are read as UTF-8.

    Legacy 8-bit text is practically never valid UTF-8 once it has non-ASCII bytes, while servers and CMSs
    that declare windows-1251 or latin-1 for UTF-8 content are common. Returns the body and headers to
    parse, and the wrong declaration when one was overridden.
    """
    if body.isascii():
        return body, headers, None
    declared = [m.group(2).decode("ascii", "replace") for m in _XML_DECLARED_ENCODING.finditer(body[:512])]
    header = _CHARSET_PARAM.search(headers.get("content-type", ""))
    if header:
        declared.append(header.group(1))
    legacy = [d for d in declared if not d.lower().startswith(_UTF_FAMILY)]
    if not legacy:
        return body, headers, None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body, headers, None
    fixed = _XML_DECLARED_ENCODING.sub(rb"\1utf-8\3", body[:512], count=1) + body[512:]
    content_type = _CHARSET_PARAM.sub("charset=utf-8", headers.get("content-type", ""))
    return fixed, {**headers, "content-type": content_type}, legacy[0]


def _repair_char_refs(body: bytes) -> bytes:
    """Surrogate-pair references joined into the character they encode; other invalid ones become U+FFFD."""
    return _SUSPECT_CHAR_REFS.sub(_valid_char_refs, body) if b"&#" in body else body


def _valid_char_refs(match: re.Match[bytes]) -> bytes:
    codes = [_code_point(hex_mark, digits) for hex_mark, digits in _CHAR_REF.findall(match.group(0))]
    out: list[int] = []
    index = 0
    while index < len(codes):
        code = codes[index]
        following = codes[index + 1] if index + 1 < len(codes) else 0  # 0: no low surrogate follows
        if code in _HIGH_SURROGATES and following in _LOW_SURROGATES:
            out.append(0x10000 + ((code - 0xD800) << 10) + (following - 0xDC00))
            index += 2
            continue
        invalid = 0xD800 <= code < 0xE000 or code > _MAX_CODE_POINT
        out.append(_REPLACEMENT_CHARACTER if invalid else code)
        index += 1
    return b"".join(b"&#x%X;" % code for code in out)


def _code_point(hex_mark: bytes, digits: bytes) -> int:
    digits = digits.lstrip(b"0") or b"0"
    if len(digits) > _MAX_CODE_POINT_DIGITS:  # beyond Unicode; and int() refuses thousands of digits
        return _MAX_CODE_POINT + 1
    return int(digits, 16 if hex_mark else 10)


def _xml_entry(entry: dict[str, Any], context: _XmlContext) -> _RawEntry:
    link = _http_url(_resolve(_str(entry, "link"), context.doc_base))
    # Relative links in a body follow an explicit xml:base; else the entry's link, else the site's.
    fallback_base = link or context.site_url or context.doc_base
    content = _longest_content(dict.get(entry, "content"), context.doc_base, fallback_base)
    summary_detail = dict.get(entry, "summary_detail")
    # feedparser copies content into `summary` (without a summary_detail) when there is no summary.
    summary = (
        _xml_body(summary_detail, context.doc_base, fallback_base)
        if isinstance(summary_detail, Mapping)
        else None
    )
    if summary is not None and content is not None and summary.value == content.value:
        summary = None
    return _RawEntry(
        guid=_as_written(_str(entry, "id")),
        url=link,
        title=_str(entry, "title") or "",
        author=_str(entry, "author"),
        summary=summary,
        content=content,
        published=_struct_time(dict.get(entry, "published_parsed")),
        updated=_struct_time(dict.get(entry, "updated_parsed")),
        created=_struct_time(dict.get(entry, "created_parsed")),
        lang=_entry_language(entry, context.lang, context.header_lang),
    )


def _entry_language(entry: dict[str, Any], feed_lang: str | None, header_lang: str | None) -> str | None:
    """The entry's own xml:lang, else the feed's language.

    feedparser seeds every fragment's language with the HTTP Content-Language; a fragment language equal
    to it was inherited from the header, not written by the feed, and must not beat the feed's <language>.
    """
    own = _detail_language(entry)
    return own if own and own != header_lang else feed_lang


def _detail_language(entry: dict[str, Any]) -> str | None:
    """The language in effect on the entry's content or summary."""
    contents = dict.get(entry, "content")
    details = [*(contents if isinstance(contents, list) else []), dict.get(entry, "summary_detail")]
    for detail in details:
        if isinstance(detail, Mapping):
            lang = _language(detail.get("language"))
            if lang:
                return lang
    return None


def _longest_content(contents: object, doc_base: str, fallback_base: str) -> _Body | None:
    """The fullest of an entry's content elements (Atom allows several; RSS has one content:encoded)."""
    if not isinstance(contents, Sequence):
        return None
    bodies = [_xml_body(c, doc_base, fallback_base) for c in contents if isinstance(c, Mapping)]
    readable = [b for b in bodies if b is not None]
    return max(readable, key=lambda b: len(b.value)) if readable else None


def _xml_body(detail: Mapping[str, Any], doc_base: str, fallback_base: str) -> _Body | None:
    """One fragment; its base is feedparser's when an xml:base set it (it differs from the document's)."""
    value = detail.get("value")
    kind = str(detail.get("type") or "text/html").lower()
    if not isinstance(value, str) or not value.strip():
        return None
    if "html" in kind:
        base = detail.get("base")
        own_base = isinstance(base, str) and base != _RELATIVE_BASE  # an xml:base set it
        resolved = _http_url(_resolve(base, doc_base)) if own_base else fallback_base
        return _Body(value, is_html=True, base=resolved)
    if kind.startswith("text/"):
        return _Body(value, is_html=False, base=None)
    return None  # base64 images and other media carry no text


def _not_a_feed_reason(body: bytes, headers: Mapping[str, str], result: Mapping[str, Any]) -> str | None:
    """Why a document without a known format or entries is not a feed; None when it still names a channel.

    feedparser reports no version for some real feeds (CDF channels), so a title or link is enough.
    """
    start = body[:SNIFF_BYTES].lower()
    if _media_type(headers) in HTML_TYPES or any(marker in start for marker in _HTML_MARKERS):
        return "not a feed: got an HTML page"
    feed = result.get("feed", {})
    if _str(feed, "title") or _str(feed, "link"):
        return None
    error = result.get("bozo_exception")
    if isinstance(error, xml.sax.SAXException):
        return f"not a feed: not well-formed XML ({_one_line(error)})"
    return "not a feed: no RSS, Atom or RDF document in the body"


def _read_json_feed(body: bytes, url: str) -> _RawFeed:
    try:
        doc = json.loads(body)
    except RecursionError as exc:
        raise ParseError("not a feed: JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ParseError(f"not a feed: invalid JSON ({_one_line(exc)})") from exc
    if not isinstance(doc, dict) or not _JSON_FEED_VERSION.match(str(doc.get("version", ""))):
        raise ParseError("not a feed: JSON without a JSON Feed version")

    feed_url = _http_url(_json_str(doc, "feed_url"), url) or _http_url(url)
    site_url = _http_url(_json_str(doc, "home_page_url"), feed_url)
    items = doc.get("items")
    warnings = [] if isinstance(items, list) else ["JSON Feed without an 'items' list"]
    kept, limit_warning = _limit(items if isinstance(items, list) else [])
    warnings.extend(limit_warning)
    lang = _language(doc.get("language"))
    feed_authors = _json_authors(doc)
    return _RawFeed(
        title=_json_str(doc, "title"),
        site_url=site_url,
        ttl_seconds=None,
        lang=lang,
        entries=[
            _json_entry(item, site_url or feed_url, lang, feed_authors)
            for item in kept
            if isinstance(item, dict)
        ],
        warnings=warnings,
    )


def _json_entry(
    item: dict[str, Any], base: str | None, feed_lang: str | None, feed_authors: str | None
) -> _RawEntry:
    link = _http_url(_json_str(item, "url"), base) or _http_url(_json_str(item, "external_url"), base)
    body_base = link or base
    content_html = _json_str(item, "content_html")
    content_text = _json_str(item, "content_text")
    summary = _json_str(item, "summary")  # plain text by the spec
    if content_html:
        content: _Body | None = _Body(content_html, is_html=True, base=body_base)
    elif content_text:
        content = _Body(content_text, is_html=False, base=None)
    else:
        content = None
    return _RawEntry(
        guid=_json_str(item, "id"),
        url=link,
        title=_json_str(item, "title") or "",
        author=_json_authors(item) or feed_authors,
        summary=_Body(summary, is_html=False, base=None) if summary else None,
        content=content,
        published=_iso_datetime(_json_str(item, "date_published")),
        updated=_iso_datetime(_json_str(item, "date_modified")),
        created=None,
        lang=_language(item.get("language")) or feed_lang,
    )


def _json_str(obj: Mapping[str, Any], key: str) -> str | None:
    """A string member; numbers are accepted too (JSON Feed 1.0 producers often write numeric ids)."""
    value = obj.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return strip_control_chars(_valid_unicode(value)) if isinstance(value, str) and value.strip() else None


def _json_authors(obj: Mapping[str, Any]) -> str | None:
    """Author names: JSON Feed 1.1 `authors` (a list), else 1.0 `author` (one object)."""
    authors = obj.get("authors")
    if not isinstance(authors, list):
        authors = [obj.get("author")]
    names = [_json_str(a, "name") for a in authors if isinstance(a, dict)]
    return ", ".join(n.strip() for n in names if n) or None


def _valid_unicode(text: str) -> str:
    """`text` without lone surrogates: JSON may escape them ("\\ud800"); no encoder or database takes them."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


# --- policy ------------------------------------------------------------------------------------------


def _build(raw: _RawFeed, fetched_at: datetime) -> ParsedFeed:
    """Entries in document order, each guid once: the store keys articles by feed+guid, so a guid a feed
    reuses for a different item gets a derived one (neither item overwrites the other); exact repeats go."""
    entries: list[ParsedEntry] = []
    taken: set[str] = set()
    seen: set[tuple[str, str]] = set()  # (guid as given, fingerprint) of items already kept
    empty = 0
    for item in raw.entries:
        entry = _entry(item, fetched_at)
        if entry is None:
            empty += 1
            continue
        fingerprint = _sha256("\x1f".join((entry.url or "", entry.title, entry.text)))
        if (entry.guid, fingerprint) in seen:
            continue  # the same item twice in one document
        seen.add((entry.guid, fingerprint))
        guid = _unique_guid(entry.guid, fingerprint, taken)
        taken.add(guid)
        entries.append(entry if guid == entry.guid else replace(entry, guid=guid))
    warnings = list(raw.warnings)
    if empty:
        warnings.append(f"empty entries skipped (no title, link or text): {empty}")
    return ParsedFeed(
        title=_plain(raw.title or "", MAX_TITLE_CHARS) or None,
        site_url=raw.site_url,
        ttl_seconds=raw.ttl_seconds,
        entries=entries,
        warning="; ".join(warnings)[:MAX_WARNING_CHARS] or None,
        lang=raw.lang,
    )


def _entry(item: _RawEntry, fetched_at: datetime) -> ParsedEntry | None:
    """The stored form of one item, or None when it carries nothing to store."""
    content_html = _sanitized(item.content)
    summary_html = _sanitized(item.summary)
    body, body_html = (item.content, content_html) if item.content else (item.summary, summary_html)
    if body is None:
        text = ""
    elif body.is_html:
        text = html_to_text(body_html or "")
    else:
        text = strip_control_chars(body.value[:MAX_HTML_CHARS])
    text = normalize(text)[:MAX_TEXT_CHARS].rstrip()
    title = _plain(item.title, MAX_TITLE_CHARS)
    if not (title or text or item.url):
        return None
    published, dated = _published((item.published, item.updated, item.created), fetched_at)
    return ParsedEntry(
        guid=_identity(item.guid, item.url, title, text),
        url=item.url,
        title=title,
        author=_plain(item.author or "", MAX_AUTHOR_CHARS) or None,
        summary_html=summary_html,
        content_html=content_html,
        text=text,
        published=published,
        updated=_plausible(item.updated, fetched_at),
        lang=item.lang,
        dated=dated,
    )


def _sanitized(body: _Body | None) -> str | None:
    if body is None:
        return None
    value = body.value[:MAX_HTML_CHARS]
    return (sanitize_html(value, body.base) if body.is_html else text_to_html(value)) or None


def _plain(fragment: str, limit: int) -> str:
    """One line of plain text from an HTML fragment, at most `limit` characters."""
    if not fragment:
        return ""
    text = normalize(html_to_plain(fragment[: limit * TITLE_MARKUP_FACTOR]))
    return " ".join(text.split("\n"))[:limit].rstrip()


def _identity(guid: str | None, url: str | None, title: str, text: str) -> str:
    """The item's own id; else its canonical link; else a hash of what it says."""
    identity = (guid or "").strip() or canonical_url(url) or HASH_PREFIX + _sha256(f"{title}\n{text}")
    return identity if len(identity) <= MAX_GUID_CHARS else HASH_PREFIX + _sha256(identity)


def _unique_guid(guid: str, fingerprint: str, taken: set[str]) -> str:
    """`guid`, or for a different item reusing it, a derived guid stable across polls of the same feed."""
    if guid not in taken:
        return guid
    derived = f"{guid}#{fingerprint[:SHORT_HASH_CHARS]}"
    # Only a real guid spelled like a derived one can collide; widen the hash until it does not.
    width = SHORT_HASH_CHARS
    while derived in taken and width < len(fingerprint):
        width += SHORT_HASH_CHARS
        derived = f"{guid}#{fingerprint[:width]}"
    return derived


def _published(dates: Sequence[datetime | None], fetched_at: datetime) -> tuple[datetime, bool]:
    """The first real one of published, updated, created, and whether the feed gave a believable date.

    Without one, the fetch time stands in: the item was new to us then, which is what alerting needs.
    """
    for value in dates:
        if value is not None and value >= OLDEST_PLAUSIBLE_DATE:
            if value > fetched_at + MAX_FUTURE_SKEW:
                return fetched_at, False
            return value, True
    return fetched_at, False


def _plausible(value: datetime | None, fetched_at: datetime) -> datetime | None:
    """`value` unless it is a placeholder; a date beyond the clock skew becomes the fetch time."""
    if value is None or value < OLDEST_PLAUSIBLE_DATE:
        return None
    return fetched_at if value > fetched_at + MAX_FUTURE_SKEW else value


def _struct_time(value: object) -> datetime | None:
    """feedparser's parsed dates are UTC `struct_time`s; out-of-range fields mean unparseable."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        # timegm normalises a leap second (:60) instead of rejecting it.
        return _EPOCH + timedelta(seconds=calendar.timegm(value))
    except (OverflowError, ValueError):
        return None


def _iso_datetime(value: str | None) -> datetime | None:
    """RFC 3339 as JSON Feed requires; RFC 822 too, because producers mix them up."""
    if not value:
        return None
    try:
        return to_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out of range by its offset
        pass
    try:
        return to_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _ttl_seconds(value: object) -> int | None:
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    return minutes * 60 if 0 < minutes <= MAX_TTL_MINUTES else None


def _language(value: object) -> str | None:
    """A lower-case BCP 47-like tag ("en-us"); its primary subtag when the whole is too long."""
    if not isinstance(value, str):
        return None
    tag = value.strip().lower().replace("_", "-")
    if not _LANGUAGE.match(tag):
        return None
    return tag if len(tag) <= _MAX_LANGUAGE_CHARS else tag.split("-", 1)[0]


# --- small helpers ------------------------------------------------------------------------------------


def _limit(items: list[Any]) -> tuple[list[Any], list[str]]:
    if len(items) <= MAX_ENTRIES:
        return items, []
    return items[:MAX_ENTRIES], [f"kept the first {MAX_ENTRIES} of {len(items)} entries"]


def _str(mapping: dict[str, Any], key: str) -> str | None:
    # dict.get, not FeedParserDict.get: the latter maps missing keys to others (updated → published).
    value = dict.get(mapping, key)
    return strip_control_chars(value) if isinstance(value, str) and value.strip() else None


_RELATIVE_HOST = "https://relative.newswatch.invalid"
_RELATIVE_BASE = _RELATIVE_HOST + "/~doc/"


def _as_written(value: str | None) -> str | None:
    """A URI feedparser resolved against the sentinel base, back as the feed wrote it."""
    if value is None:
        return None
    if value.startswith(_RELATIVE_BASE):
        return value[len(_RELATIVE_BASE) :]
    if value.startswith(_RELATIVE_HOST):
        return value[len(_RELATIVE_HOST) :]
    return value


def _resolve(value: str | None, doc_base: str) -> str | None:
    """A URI feedparser resolved against the sentinel base, resolved against the document's URL instead."""
    written = _as_written(value)
    if written is None or written == value:
        return value
    return _join(doc_base, written)


def _join(base: str | None, ref: str) -> str | None:
    try:
        return urljoin(base or "", ref)
    except ValueError:
        return None


def _http_url(value: object, base: str | None = None) -> str | None:
    """`value` as an absolute http(s) URL (resolved against `base`), or None."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_URL_CHARS:
        return None
    url = _join(base, value.strip()) if base else value.strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return None
    return parts.scheme.lower() + url[len(parts.scheme) :] if valid else None


def _one_line(exc: object) -> str:
    message = " ".join(str(exc).split()) if exc is not None else ""
    message = message or (type(exc).__name__ if exc is not None else "unknown error")
    return message[:MAX_WARNING_CHARS]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
