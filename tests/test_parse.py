"""parse_feed: fetched bytes → entries, for every format and every way a feed goes wrong."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from worker.errors import ParseError
from worker.ingest import parse
from worker.ingest.parse import ParsedEntry, ParsedFeed, parse_feed
from worker.ingest.sanitize import html_to_text, sanitize_html

FETCHED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FEED_URL = "https://news.example.kz/feed.xml"
RSS_TYPE = {"content-type": "application/rss+xml; charset=utf-8"}
ATOM_TYPE = {"content-type": "application/atom+xml; charset=utf-8"}
JSON_TYPE = {"content-type": "application/feed+json"}


def _parse(body: bytes | str, headers: dict[str, str] | None = None) -> ParsedFeed:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return parse_feed(data, RSS_TYPE if headers is None else headers, FEED_URL, FETCHED_AT)


UTF8_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'


def _rss(items: str, channel: str = "", declaration: str = UTF8_DECLARATION) -> str:
    return (
        declaration + '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Example news</title><link>https://news.example.kz/</link>{channel}{items}</channel></rss>"
    )


def _item(
    guid: str = "", title: str = "A title", link: str = "", description: str = "", extra: str = ""
) -> str:
    parts = [f"<title>{title}</title>"]
    if guid:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if link:
        parts.append(f"<link>{link}</link>")
    if description:
        parts.append(f"<description>{description}</description>")
    return "<item>" + "".join(parts) + extra + "</item>"


def _only(feed: ParsedFeed) -> ParsedEntry:
    assert len(feed.entries) == 1, feed.entries
    return feed.entries[0]


# --- formats -------------------------------------------------------------------------------------------


def test_rss2_entry_fields() -> None:
    feed = _parse(
        _rss(
            "<item><title>Astana hosts the OTS summit</title>"
            "<link>https://news.example.kz/2024/ots-summit?utm_source=rss</link>"
            '<guid isPermaLink="false">news-1001</guid>'
            "<pubDate>Tue, 30 Apr 2024 09:15:00 +0500</pubDate>"
            "<dc:creator>Aigerim S.</dc:creator>"
            "<description><![CDATA[<p>Short <b>summary</b>.</p>]]></description>"
            "<content:encoded><![CDATA[<p>First paragraph.</p><p>Second <em>paragraph</em>.</p>]]>"
            "</content:encoded></item>",
            channel="<language>en-US</language><ttl>30</ttl>",
        )
    )
    assert feed.title == "Example news"
    assert feed.site_url == "https://news.example.kz/"
    assert feed.ttl_seconds == 30 * 60
    assert feed.lang == "en-us"
    assert feed.warning is None
    entry = _only(feed)
    assert entry.guid == "news-1001"
    assert entry.url == "https://news.example.kz/2024/ots-summit?utm_source=rss"
    assert entry.title == "Astana hosts the OTS summit"
    assert entry.author == "Aigerim S."
    assert entry.summary_html == "<p>Short <b>summary</b>.</p>"
    assert entry.content_html == "<p>First paragraph.</p><p>Second <em>paragraph</em>.</p>"
    assert entry.text == "First paragraph.\n\nSecond paragraph."  # content wins over the summary
    assert entry.published == datetime(2024, 4, 30, 4, 15, tzinfo=UTC)
    assert entry.updated is None
    assert entry.lang == "en-us"


def test_atom10_entry_fields() -> None:
    feed = _parse(
        """<?xml version="1.0" encoding="utf-8"?>
        <feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en" xml:base="https://blog.example.org/">
          <title type="html">Turkic &lt;i&gt;world&lt;/i&gt; blog</title>
          <link rel="alternate" href="https://blog.example.org/"/>
          <entry xml:lang="tr">
            <id>tag:blog.example.org,2024:entry-7</id>
            <title>Türkiye ve Kazakistan</title>
            <link rel="alternate" href="posts/7.html"/>
            <author><name>Ayşe</name></author>
            <published>2024-04-29T10:00:00+03:00</published>
            <updated>2024-04-30T08:00:00Z</updated>
            <summary>Özet</summary>
            <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">
              <p>Metin <a href="about.html">hakkında</a>.</p></div></content>
          </entry>
        </feed>""",
        ATOM_TYPE,
    )
    assert feed.title == "Turkic world blog"
    assert feed.site_url == "https://blog.example.org/"
    assert feed.lang == "en"
    entry = _only(feed)
    assert entry.guid == "tag:blog.example.org,2024:entry-7"
    assert entry.url == "https://blog.example.org/posts/7.html"  # resolved against xml:base
    assert entry.title == "Türkiye ve Kazakistan"
    assert entry.author == "Ayşe"
    assert entry.published == datetime(2024, 4, 29, 7, 0, tzinfo=UTC)
    assert entry.updated == datetime(2024, 4, 30, 8, 0, tzinfo=UTC)
    assert entry.lang == "tr"  # the entry's own xml:lang beats the feed's
    assert entry.summary_html == "<p>Özet</p>"  # plain text, escaped into HTML
    assert entry.content_html is not None
    # xml:base beats the entry link (which would give /posts/about.html).
    assert 'href="https://blog.example.org/about.html"' in entry.content_html
    assert entry.text == "Metin hakkında."


def test_rdf_rss10() -> None:
    feed = _parse(
        """<?xml version="1.0"?>
        <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
                 xmlns:dc="http://purl.org/dc/elements/1.1/">
          <channel rdf:about="https://rdf.example.com/">
            <title>RDF channel</title><link>https://rdf.example.com/</link><dc:language>ru</dc:language>
          </channel>
          <item rdf:about="https://rdf.example.com/a">
            <title>First</title><link>https://rdf.example.com/a</link>
            <description>One &amp; only</description><dc:date>2024-04-01T12:00:00Z</dc:date>
          </item>
          <item rdf:about="https://rdf.example.com/b">
            <title>Second</title><link>https://rdf.example.com/b</link>
          </item>
        </rdf:RDF>""",
        {"content-type": "application/rdf+xml"},
    )
    assert feed.title == "RDF channel"
    assert feed.lang == "ru"
    assert [e.title for e in feed.entries] == ["First", "Second"]
    first, second = feed.entries
    # RSS 1.0 items have no guid element: the canonical link is their identity.
    assert first.guid == "https://rdf.example.com/a"
    assert first.text == "One & only"
    assert first.published == datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
    assert first.lang == "ru"
    assert second.published == FETCHED_AT


def test_json_feed_1_0() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1",
        "title": "JSON news",
        "home_page_url": "https://json.example.com/",
        "feed_url": "https://json.example.com/feed.json",
        "author": {"name": "Desk"},
        "items": [
            {
                "id": 42,  # numbers are common in 1.0 feeds although the spec asks for strings
                "url": "/stories/42",
                "title": "Numbers &amp; words",
                "content_html": '<p>Body with <a href="more.html">a link</a>.</p><script>x()</script>',
                "summary": "A summary.",
                "date_published": "2024-04-30T10:00:00+02:00",
                "date_modified": "2024-04-30T11:00:00Z",
            }
        ],
    }
    feed = _parse(json.dumps(doc), JSON_TYPE)
    assert feed.title == "JSON news"
    assert feed.site_url == "https://json.example.com/"
    assert feed.ttl_seconds is None
    entry = _only(feed)
    assert entry.guid == "42"
    assert entry.url == "https://json.example.com/stories/42"
    assert entry.title == "Numbers & words"
    assert entry.author == "Desk"  # inherited from the feed
    assert entry.content_html == (
        '<p>Body with <a href="https://json.example.com/stories/more.html" '
        'rel="noopener noreferrer nofollow">a link</a>.</p>'
    )
    assert entry.summary_html == "<p>A summary.</p>"
    assert entry.text == "Body with a link."
    assert entry.published == datetime(2024, 4, 30, 8, 0, tzinfo=UTC)
    assert entry.updated == datetime(2024, 4, 30, 11, 0, tzinfo=UTC)


def test_json_feed_1_1_detected_without_content_type() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Жаңалықтар",
        "language": "kk-KZ",
        "authors": [{"name": "Feed author"}],
        "items": [
            {
                "id": "kz-1",
                "url": "https://json.example.kz/kz-1",
                "content_text": "Бірінші жол.\nЕкінші жол < үшінші.",
                "authors": [{"name": "Айгүл"}, {"name": "Ерлан"}],
                "language": "ru",
                "date_published": "Tue, 30 Apr 2024 09:00:00 GMT",  # RFC 822, not RFC 3339: accepted
            },
            {"id": "kz-2", "title": "No language of its own", "content_text": "Мәтін."},
        ],
    }
    feed = _parse(b"\n  " + json.dumps(doc, ensure_ascii=False).encode("utf-8"), {})
    assert feed.title == "Жаңалықтар"
    assert feed.lang == "kk-kz"
    first, second = feed.entries
    assert first.author == "Айгүл, Ерлан"
    assert first.lang == "ru"
    assert first.content_html == "<p>Бірінші жол.<br>Екінші жол &lt; үшінші.</p>"
    assert first.text == "Бірінші жол.\nЕкінші жол < үшінші."
    assert first.title == ""
    assert first.published == datetime(2024, 4, 30, 9, 0, tzinfo=UTC)
    assert second.author == "Feed author"
    assert second.lang == "kk-kz"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"title": "an API answer", "items": []}', "not a feed: JSON without a JSON Feed version"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [', "not a feed: invalid JSON"),
        (b"[" * 100_000, "not a feed: JSON nested too deeply"),
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match="^" + reason.replace("(", r"\(")):
        _parse(body, {"content-type": "application/json"})


# --- encodings -----------------------------------------------------------------------------------------

RUSSIAN_TITLE = "Новости Казахстана"


def _cp1251_rss(declaration: str) -> bytes:
    return _rss(_item(guid="r1", title=RUSSIAN_TITLE), declaration=declaration).encode("cp1251")


def test_charset_from_http_header_only() -> None:
    body = _cp1251_rss('<?xml version="1.0"?>')
    entry = _only(_parse(body, {"content-type": "application/rss+xml; charset=windows-1251"}))
    assert entry.title == RUSSIAN_TITLE


def test_undeclared_legacy_charset_is_detected() -> None:
    # No charset in the header nor the declaration: chardet (a dependency) recognises windows-1251.
    body = _cp1251_rss('<?xml version="1.0"?>')
    assert _only(_parse(body, {"content-type": "application/rss+xml"})).title == RUSSIAN_TITLE


def test_http_charset_overrides_a_wrong_xml_declaration() -> None:
    body = _cp1251_rss('<?xml version="1.0" encoding="utf-8"?>')
    feed = _parse(body, {"content-type": "application/xml; charset=windows-1251"})
    assert _only(feed).title == RUSSIAN_TITLE


def test_charset_from_xml_declaration_only() -> None:
    body = _cp1251_rss('<?xml version="1.0" encoding="windows-1251"?>')
    assert _only(_parse(body, {"content-type": "application/rss+xml"})).title == RUSSIAN_TITLE


def test_utf8_byte_order_mark() -> None:
    body = b"\xef\xbb\xbf" + _rss(_item(guid="b1", title="Қазақстан")).encode("utf-8")
    assert _only(_parse(body)).title == "Қазақстан"


# --- sanitising, text, entities -------------------------------------------------------------------------


def test_hostile_html_is_removed_and_its_text_kept() -> None:
    description = (
        "<![CDATA["
        '<p onclick="steal()">Hello <a href="javascript:alert(1)">click</a> '
        '<a href="/world" onmouseover="x()">world</a></p>'
        "<script>document.cookie</script><style>p{display:none}</style>"
        '<iframe src="https://evil.example/"></iframe><img src="pic.png" alt="A picture" onerror="y()">'
        "]]>"
    )
    entry = _only(_parse(_rss(_item(guid="h1", link="https://news.example.kz/a/1", description=description))))
    assert entry.summary_html == (
        '<p>Hello <a rel="noopener noreferrer nofollow">click</a> '
        '<a href="https://news.example.kz/world" rel="noopener noreferrer nofollow">world</a></p>'
        '<img src="https://news.example.kz/a/pic.png" alt="A picture">'
    )
    assert entry.text == "Hello click world"


def test_sanitize_html_allow_list() -> None:
    dirty = (
        '<h2 id="x" class="big">Head</h2><table><tr><td style="color:red">cell</td></tr></table>'
        '<blockquote cite="http://q">quote</blockquote><ul><li>one</li></ul><form><input value="v"></form>'
    )
    assert sanitize_html(dirty) == (
        "<h2>Head</h2><table><tbody><tr><td>cell</td></tr></tbody></table>"
        "<blockquote>quote</blockquote><ul><li>one</li></ul>"
    )


def test_html_to_text_block_elements_become_lines() -> None:
    html = sanitize_html(
        "<h1>Title</h1><p>One<br>two</p><ul><li>a</li><li>b</li></ul>"
        "<table><tr><td>x</td><td>y</td></tr></table>"
        '<p>A &amp; B &lt;c&gt; &#8217; &nbsp;end</p><img alt="x>y">'
    )
    text = html_to_text(html)
    assert [line.strip() for line in text.split("\n") if line.strip()] == [
        "Title", "One", "two", "a", "b", "x y", "A & B <c> \u2019 \u00a0end",
    ]  # fmt: skip


def test_entities_and_cdata() -> None:
    feed = _parse(
        _rss(
            _item(guid="e1", title="AT&amp;amp;T &#8220;quoted&#8221; &lt;b&gt;bold&lt;/b&gt;")
            + _item(guid="e2", title="<![CDATA[Tom & Jerry <i>again</i>]]>",
                    description="&lt;p&gt;Escaped &amp;amp; markup&lt;/p&gt;")
        )
    )  # fmt: skip
    first, second = feed.entries
    assert first.title == "AT&T \u201cquoted\u201d bold"
    assert second.title == "Tom & Jerry again"
    assert second.summary_html == "<p>Escaped &amp; markup</p>"
    assert second.text == "Escaped & markup"


def test_plain_text_content_is_escaped_not_interpreted() -> None:
    feed = _parse(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>p1</id><title>x</title>'
        '<content type="text">if a &lt; b &amp;&amp; c &gt; d then &lt;script&gt;</content></entry></feed>',
        ATOM_TYPE,
    )
    entry = _only(feed)
    assert entry.content_html == "<p>if a &lt; b &amp;&amp; c &gt; d then &lt;script&gt;</p>"
    assert entry.text == "if a < b && c > d then <script>"


def test_text_is_unicode_normalised() -> None:
    # NFKC folds the "ﬁ" ligature and full-width digits; the Cyrillic "а" in "Vаrkert" is repaired;
    # the soft hyphen and non-breaking space go.
    description = "The ﬁnal ２０２４ V\u0430rkert meet\u00ading\u00a0today"
    entry = _only(_parse(_rss(_item(guid="u1", title="V\u0430rkert ﬁles", description=description))))
    assert entry.title == "Varkert files"
    assert entry.text == "The final 2024 Varkert meeting today"


# --- identity ------------------------------------------------------------------------------------------


def test_guid_falls_back_to_canonical_link_then_to_a_content_hash() -> None:
    feed = _parse(
        _rss(
            _item(title="Linked", link="http://www.news.example.kz/a/2/?utm_source=rss&id=5")
            + _item(title="Bare", description="Nothing but text")
        )
    )
    linked, bare = feed.entries
    assert linked.guid == "https://news.example.kz/a/2?id=5"
    expected = hashlib.sha256(b"Bare\nNothing but text").hexdigest()
    assert bare.guid == parse.HASH_PREFIX + expected


def test_repeated_guid_with_different_items_keeps_both() -> None:
    first_item = _item(guid="dup", title="First story", link="https://news.example.kz/1")
    items = first_item + _item(guid="dup", title="Second story", link="https://news.example.kz/2")
    feed = _parse(_rss(items))
    first, second = feed.entries
    assert first.guid == "dup"
    assert second.guid.startswith("dup#")
    assert len(second.guid) == len("dup#") + parse.SHORT_HASH_CHARS
    assert second.title == "Second story"
    # Derived from the item itself, so the next poll gives it the same identity.
    assert [e.guid for e in _parse(_rss(items)).entries] == [first.guid, second.guid]


def test_exact_repeats_are_dropped() -> None:
    one = _item(guid="same", title="Same story", link="https://news.example.kz/s", description="Text")
    other = _item(guid="same", title="Other story", link="https://news.example.kz/o")
    feed = _parse(_rss(one + other + one + other))
    assert [e.title for e in feed.entries] == ["Same story", "Other story"]
    assert len({e.guid for e in feed.entries}) == 2


def test_overlong_guid_is_hashed() -> None:
    guid = "g" * (parse.MAX_GUID_CHARS + 1)
    entry = _only(_parse(_rss(_item(guid=guid))))
    assert entry.guid == parse.HASH_PREFIX + hashlib.sha256(guid.encode()).hexdigest()


# --- dates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_elements", "published", "dated"),
    [
        ("", FETCHED_AT, False),
        ("<pubDate>not a date at all</pubDate>", FETCHED_AT, False),
        ("<pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate>", FETCHED_AT, False),  # epoch placeholder
        ("<pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate>", FETCHED_AT, False),  # far future: clamped
        ("<pubDate>Wed, 01 May 2024 20:00:00 GMT</pubDate>", datetime(2024, 5, 1, 20, tzinfo=UTC), True),
        ("<pubDate>Wed, 01 May 2024 18:00:00 -0600</pubDate>", datetime(2024, 5, 2, tzinfo=UTC), True),
        ("<dc:date>2024-03-01T00:00:00Z</dc:date>", datetime(2024, 3, 1, tzinfo=UTC), True),  # updated only
    ],
    ids=["missing", "garbage", "epoch", "far-future", "hours-ahead", "offset", "updated-only"],
)
def test_published_date_policy(date_elements: str, published: datetime, dated: bool) -> None:
    entry = _only(_parse(_rss(_item(guid="d1", extra=date_elements))))
    assert entry.published == published
    assert entry.dated is dated
    assert entry.published.tzinfo is not None


def test_naive_fetch_time_is_taken_as_utc() -> None:
    feed = parse_feed(_rss(_item(guid="n1")).encode(), RSS_TYPE, FEED_URL, FETCHED_AT.replace(tzinfo=None))
    assert _only(feed).published == FETCHED_AT


# --- limits --------------------------------------------------------------------------------------------


def test_five_megabyte_title_is_capped() -> None:
    huge = "<b>" + "Kazakhstan " * (5_000_000 // 11) + "</b>"
    entry = _only(_parse(_rss(_item(guid="big", title=huge))))
    assert len(entry.title) <= parse.MAX_TITLE_CHARS
    assert entry.title.startswith("Kazakhstan Kazakhstan")


def test_text_is_capped() -> None:
    body = "<p>" + "word " * (parse.MAX_TEXT_CHARS // 4) + "</p>"
    entry = _only(_parse(_rss(_item(guid="long", description=f"<![CDATA[{body}]]>"))))
    assert len(entry.text) == parse.MAX_TEXT_CHARS - 1  # cut mid-separator, trailing space stripped


def test_entry_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_ENTRIES", 3)
    feed = _parse(_rss("".join(_item(guid=f"c{i}", title=f"Item {i}") for i in range(5))))
    assert [e.title for e in feed.entries] == ["Item 0", "Item 1", "Item 2"]
    assert feed.warning == "kept the first 3 of 5 entries"


# --- not feeds, broken feeds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"", RSS_TYPE, "empty body"),
        (b" \r\n\t ", RSS_TYPE, "empty body"),
        (b"\xef\xbb\xbf\n", RSS_TYPE, "empty body"),
        (
            b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Welcome</p></body></html>",
            {"content-type": "text/html; charset=utf-8"},
            "not a feed: got an HTML page",
        ),
        (b"<html><body><p>Moved</body></html>", {}, "not a feed: got an HTML page"),
        (
            b"\x00\x01\x02 binary garbage \xff\xfe",
            {"content-type": "application/octet-stream"},
            "not a feed:",
        ),
        (b"<config><value>1</value></config>", {"content-type": "application/xml"}, "not a feed:"),
        (b"/etc/hostname", {}, "not a feed:"),  # never read as a file name
    ],
    ids=["empty", "whitespace", "bom-only", "html-page", "html-sniffed", "binary", "other-xml", "file-name"],
)
def test_not_a_feed(body: bytes, headers: dict[str, str], reason: str) -> None:
    with pytest.raises(ParseError) as info:
        _parse(body, headers)
    message = str(info.value)
    assert message.startswith(reason)
    assert "\n" not in message


def test_ill_formed_feed_keeps_entries_with_a_warning() -> None:
    body = _rss(_item(guid="i1", title="Fish & chips") + _item(guid="i2", title="Second"))
    feed = _parse(body.replace("</channel></rss>", ""))
    assert [e.title for e in feed.entries] == ["Fish & chips", "Second"]
    assert feed.warning is not None
    assert feed.warning.startswith("ill-formed feed, parsed anyway:")
    assert "\n" not in feed.warning


def test_feed_served_as_html_is_still_read() -> None:
    feed = _parse(_rss(_item(guid="w1", title="Wrong type")), {"content-type": "text/html"})
    assert _only(feed).title == "Wrong type"
    assert feed.warning is not None


def test_empty_items_are_skipped_with_a_warning() -> None:
    feed = _parse(_rss("<item></item>" + _item(guid="k1", title="Kept")))
    assert [e.title for e in feed.entries] == ["Kept"]
    assert feed.warning == "empty entries skipped (no title, link or text): 1"


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [("60", 3600), (" 15 ", 900), ("0", None), ("-5", None), ("soon", None), ("99999999", None)],
)
def test_ttl(ttl: str, seconds: int | None) -> None:
    assert _parse(_rss("", channel=f"<ttl>{ttl}</ttl>")).ttl_seconds == seconds


def test_feed_without_items_is_a_feed() -> None:
    feed = _parse(_rss(""))
    assert feed.entries == []
    assert feed.title == "Example news"


def test_future_updated_is_clamped() -> None:
    extra = "<pubDate>Tue, 30 Apr 2024 00:00:00 GMT</pubDate><dc:date>2099-01-01T00:00:00Z</dc:date>"
    entry = _only(_parse(_rss(_item(guid="f1", extra=extra))))
    assert entry.published == datetime(2024, 4, 30, tzinfo=UTC)
    assert entry.updated == FETCHED_AT


def test_channel_language_beats_the_http_content_language() -> None:
    headers = {**RSS_TYPE, "content-language": "en"}
    feed = _parse(_rss(_item(guid="l1", description="Текст"), channel="<language>ru</language>"), headers)
    assert feed.lang == "ru"
    assert _only(feed).lang == "ru"
    assert _only(_parse(_rss(_item(guid="l2", description="Text")), headers)).lang == "en"


# --- characters that are not text ----------------------------------------------------------------------


def test_surrogate_pair_references_become_the_character() -> None:
    # Some CMSs write an emoji as two UTF-16 surrogate references; expat rejects them, feedparser crashes.
    title = "Smile &#55357;&#56832; &#xD83D;&#xDE00; lone &#xD800; kept &#55000; &#57400;"
    feed = _parse(_rss(_item(guid="s1", title=title)))
    assert _only(feed).title == "Smile \U0001f600 \U0001f600 lone \ufffd kept \ud6d8 \ue038"
    assert feed.warning is None


def test_character_references_beyond_unicode_are_replaced() -> None:
    title = f"big &#x110000; huge &#99999999999; endless &#{'9' * 5000}; padded &#x0000041; last &#x10FFFD;"
    feed = _parse(_rss(_item(guid="s2", title=title)))
    assert _only(feed).title == "big \ufffd huge \ufffd endless \ufffd padded A last \U0010fffd"
    assert feed.warning is None


def test_control_characters_are_removed() -> None:
    feed = _parse(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>c1</id><title>x</title>'
        '<content type="text">nul&#0;here&#1;and&#x7f;bell</content></entry></feed>',
        ATOM_TYPE,
    )
    entry = _only(feed)
    assert entry.text == "nulhereandbell"
    assert entry.content_html == "<p>nulhereandbell</p>"


def test_control_characters_are_removed_from_json_fields() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "id\u0000-1", "title": "Ti\u0001tle", "content_text": "te\u0000xt"}],
    }
    entry = _only(_parse(json.dumps(doc), JSON_TYPE))
    assert (entry.guid, entry.title, entry.text) == ("id-1", "Title", "text")


def test_control_character_references_in_html_are_removed() -> None:
    assert sanitize_html("<p>a&#1;b&#x7f;c&#0;d</p>") == "<p>abc\ufffdd</p>"


def test_relative_links_without_entry_link_follow_the_site_link() -> None:
    body = _rss(_item(guid="r2", description="<![CDATA[<a href='x/y.html'>y</a>]]>")).encode()
    feed = parse_feed(body, RSS_TYPE, "https://feeds.example.net/kz/rss.xml", FETCHED_AT)
    summary = _only(feed).summary_html
    assert summary is not None
    assert 'href="https://news.example.kz/x/y.html"' in summary  # not the feed's own address


def test_relative_guids_keep_their_text_so_identity_survives_a_feed_move() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title><link>/home</link>'
        b"<item><title>x</title><guid>12345</guid><description>&lt;a href=&quot;rel/1&quot;&gt;x&lt;/a&gt;"
        b"</description></item></channel></rss>"
    )
    old = parse_feed(body, {}, "http://h.example/feeds/rss.xml", FETCHED_AT)
    moved = parse_feed(body, {}, "https://cdn.example/rss", FETCHED_AT)
    assert old.entries[0].guid == moved.entries[0].guid == "12345"
    assert old.site_url == "http://h.example/home"
    summary = old.entries[0].summary_html
    assert summary is not None and 'href="http://h.example/feeds/rel/1"' in summary


def test_utf8_bytes_declared_as_a_legacy_charset_are_read_as_utf8() -> None:
    text = _rss(
        _item(guid="w1", title="Астанадағы жиын"), declaration='<?xml version="1.0" encoding="windows-1251"?>'
    )
    feed = parse_feed(
        text.encode("utf-8"),
        {"content-type": "application/rss+xml; charset=windows-1251"},
        FEED_URL,
        FETCHED_AT,
    )
    assert _only(feed).title == "Астанадағы жиын"
    assert feed.warning is not None and "declared windows-1251, but the bytes are UTF-8" in feed.warning
