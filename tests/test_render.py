"""Per-target alert messages: fields, escaping of hostile feed text, cutting, templates, digests, e-mail.

Markdown bodies are checked the way a chat client sees them: rendered by a CommonMark renderer
(markdown-it-py, which lets raw HTML through) with its own link filter switched off, so that escaping in
render.py is the only thing between a feed and a live link or tag.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

from worker.alerts.render import (
    ELLIPSIS,
    FORMATS,
    LIST_ID,
    PLACEHOLDERS,
    AlertItem,
    Message,
    TagLine,
    Templates,
    check_templates,
    check_timezone,
    render_alert,
    render_digest,
    render_test,
)
from worker.errors import ConfigError

URL = "https://telex.hu/kulfold/2024/05/03/tokayev_(visit)?utm=x&page=2"
HOSTILE = "<script>alert(1)</script> **bold** [x](javascript:alert(1)) <img src=x onerror=alert(1)>"
PUBLISHED = datetime(2024, 5, 3, 14, 5, tzinfo=UTC)  # 16:05 CEST in Budapest
ALLOWED_TAGS = {"div", "p", "b", "strong", "a", "ul", "li", "br"}
VOID_TAGS = {"br"}
LOOSE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt|quot|#x27);)")


def make_item(**changes: object) -> AlertItem:
    fields: dict[str, object] = {
        "article_id": 1,
        "title": "Tokayev meets Orbán in Budapest",
        "outlet": "Telex",
        "url": URL,
        "published": PUBLISHED,
        "tags": (
            TagLine("kazakhstan", 0.93, ("Tokayev", "Kazakhstan")),
            TagLine("ots", 0.71, ("Organization of Turkic States",)),
        ),
        "excerpt": "The Kazakh president arrived in Budapest on Friday for talks on energy and transport.",
    }
    fields.update(changes)
    return AlertItem(**fields)  # type: ignore[arg-type]


class Page(HTMLParser):
    """What a browser would build from an HTML body: tags, links, visible text, nesting mistakes."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.hrefs: list[str] = []
        self.problems: list[str] = []
        self._open: list[str] = []
        self._text: list[str] = []
        self.feed(body)
        self.close()
        if self._open:
            self.problems.append(f"unclosed {self._open}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")
        if tag not in VOID_TAGS:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open.pop() != tag:
            self.problems.append(f"stray </{tag}>")

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self._text).split())


def as_html(body: str, body_format: str) -> str:
    if body_format == "markdown":
        renderer = MarkdownIt("commonmark")  # raw HTML on, as in chat clients that allow it
        # Its own filter of javascript: links off: render.py alone must keep hostile links out.
        renderer.validateLink = lambda url: True  # type: ignore[method-assign]
        html: str = renderer.render(body)
        return html
    assert body_format == "html"
    return body


def assert_safe(body: str, body_format: str) -> Page:
    """The body is well-formed and inert: known tags only, no event handlers, only http(s) links."""
    if body_format == "html":
        assert not LOOSE_AMPERSAND.search(body), body
    page = Page(as_html(body, body_format))
    assert page.problems == []
    assert set(page.tags) <= ALLOWED_TAGS, page.tags
    assert all(name == "href" for name, _ in page.attributes), page.attributes
    assert all(href.startswith(("https://", "http://")) for href in page.hrefs), page.hrefs
    return page


def visible(message: Message) -> str:
    """What the reader sees of title and body."""
    if message.body_format == "text":
        return " ".join(f"{message.title} {message.body}".split())
    return " ".join(f"{message.title} {assert_safe(message.body, message.body_format).text}".split())


def links(message: Message) -> list[str]:
    if message.body_format == "text":
        return re.findall(r"https?://\S+", message.body)
    return [unquote(href) for href in assert_safe(message.body, message.body_format).hrefs]


# --- fields --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body_format", FORMATS)
def test_an_alert_shows_every_field(body_format: str) -> None:
    message = render_alert(make_item(), body_format, 4000, 250, timezone="Europe/Budapest")
    assert message.title == "Tokayev meets Orbán in Budapest"
    seen = visible(message)
    for part in (
        "Telex",
        "2024-05-03 16:05 CEST",
        "kazakhstan (Tokayev, Kazakhstan)",
        "ots (Organization of Turkic States)",
        "arrived in Budapest on Friday for talks on energy and transport.",
    ):
        assert part in seen, part
    assert URL in links(message)
    assert message.body_format == body_format
    assert message.headers == {}


@pytest.mark.parametrize("body_format", FORMATS)
def test_without_a_service_title_the_title_opens_the_body(body_format: str) -> None:
    message = render_alert(make_item(), body_format, 4000, 0)
    assert message.title == ""
    assert visible(message).startswith("Tokayev meets Orbán in Budapest Telex")


def test_an_outlet_is_named_by_the_host_when_the_feed_gives_none() -> None:
    message = render_alert(make_item(outlet=None, url="https://www.index.hu/a"), "text", 4000, 250)
    assert message.body.startswith("index.hu · ")


def test_an_unknown_body_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown body format 'rtf'"):
        render_alert(make_item(), "rtf", 4000, 250)


# --- hostile feed text ---------------------------------------------------------------------------------


def hostile_item(url: str | None = URL) -> AlertItem:
    return make_item(
        title=HOSTILE,
        outlet=HOSTILE,
        url=url,
        tags=(TagLine("kazakhstan", 1.0, (HOSTILE,)),),
        excerpt=HOSTILE,
    )


@pytest.mark.parametrize("body_format", ["markdown", "html"])
@pytest.mark.parametrize("title_limit", [0, 250])
def test_hostile_feed_text_is_shown_not_run(body_format: str, title_limit: int) -> None:
    message = render_alert(hostile_item(), body_format, 4000, title_limit)
    page = assert_safe(message.body, body_format)
    # The text is all there, as text: escaped, not deleted.
    expected = 4 if title_limit == 0 else 3  # outlet, terms, excerpt (+ title)
    assert page.text.count(HOSTILE) == expected
    assert [unquote(href) for href in page.hrefs] == [URL]


def test_markdown_escapes_every_control_character_of_feed_text() -> None:
    body = render_alert(hostile_item(), "markdown", 4000, 250).body
    escaped = (
        r"\<script\>alert\(1\)\</script\> \*\*bold\*\* \[x\]\(javascript:alert\(1\)\) "
        r"\<img src=x onerror=alert\(1\)\>"
    )
    assert body.count(escaped) == 3
    for marker in ("# Breaking", "- item", "+ item", "1. item", "> quote", "a | b", "`code`", "_em_", "{x}!"):
        shown = render_alert(make_item(excerpt=marker), "markdown", 4000, 250)
        assert marker in visible(shown), marker


@pytest.mark.parametrize(
    "url", ["https://example.org/a)b(c", "https://example.org/a>b<c", "https://example.org/a\\b`c_d_"]
)
def test_markdown_keeps_awkward_links_whole(url: str) -> None:
    templates = Templates(markdown="[${title}](${url})")
    for message in (
        render_alert(make_item(url=url), "markdown", 4000, 250),  # an autolink
        render_alert(make_item(url=url), "markdown", 4000, 250, templates),
        render_digest([make_item(url=url)], "markdown", 4000, 250),
    ):
        assert links(message) == [url], message.body


@pytest.mark.parametrize("body_format", FORMATS)
@pytest.mark.parametrize(
    "bad_url",
    [
        "javascript:steal()",
        " JavaScript:steal()",
        "java\tscript:steal()",
        "data:text/html,steal",
        "/steal",
        "https:steal",
    ],
)
def test_only_http_links_are_kept(body_format: str, bad_url: str) -> None:
    message = render_alert(make_item(url=bad_url), body_format, 4000, 0)
    assert links(message) == []
    assert "steal" not in message.body
    assert "Tokayev meets Orbán" in visible(message)


def test_plain_text_loses_control_and_direction_characters() -> None:
    title = "Breaking\x00\x1b[31m news\u202e txt.exe\r\nline"
    message = render_alert(make_item(title=title, excerpt="a\x07b\tc\u2066d"), "text", 4000, 0)
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", message.body)
    assert message.body.startswith("Breaking [31m news txt.exe line\n\n")
    assert "a b cd" in message.body


# --- cutting -------------------------------------------------------------------------------------------


EXCERPT_WORDS = "Zebra & <crossing> (of) *words* at the border."


def long_item() -> AlertItem:
    return make_item(
        title="Zhenis Quarterly: Tokayev & Orbán sign <energy> deal in Budapest after long talks",
        tags=(
            TagLine("kazakhstan", 0.93, ("Tokayev", "Kazakhstan", "Astana", "Kazakh president")),
            TagLine("ots", 0.71, ("Organization of Turkic States", "Turkic Council")),
        ),
        excerpt=" ".join([EXCERPT_WORDS] * 40),
    )


@pytest.mark.parametrize("body_format", FORMATS)
def test_cutting_keeps_the_link_and_the_markup_whole(body_format: str) -> None:
    for limit in range(140, 1400, 9):
        for title_limit in (0, 250):
            message = render_alert(long_item(), body_format, limit, title_limit)
            assert len(message.body) <= limit, (limit, message.body)
            assert URL in links(message), (limit, message.body)
            if body_format != "text":
                assert_safe(message.body, body_format)


@pytest.mark.parametrize("body_format", FORMATS)
def test_the_excerpt_gives_way_before_the_tag_evidence(body_format: str) -> None:
    evidence_cut = excerpt_cut = False
    for limit in range(120, 1400, 11):
        seen = visible(render_alert(long_item(), body_format, limit, 250))
        evidence_whole = "kazakhstan (Tokayev, Kazakhstan, Astana, Kazakh president)" in seen
        if "Zebra" in seen:
            assert evidence_whole, limit
            excerpt_cut |= "border." not in seen[-120:]
        evidence_cut |= not evidence_whole
        if "Telex" in seen:  # short of the bare link, the tag names stay
            assert "kazakhstan" in seen and "ots" in seen, limit
    assert evidence_cut and excerpt_cut  # both stages were reached


def test_a_cut_ends_with_an_ellipsis_between_words() -> None:
    body = render_alert(long_item(), "text", 600, 250).body
    excerpt = body.split("\n\n")[1]
    assert excerpt.endswith(ELLIPSIS)
    assert excerpt[:-1].split()[-1] in EXCERPT_WORDS.split()


@pytest.mark.parametrize("body_format", FORMATS)
def test_a_limit_below_the_link_leaves_the_link_alone(body_format: str) -> None:
    message = render_alert(long_item(), body_format, 40, 0)
    assert links(message) == [URL]
    assert "Zebra" not in message.body


@pytest.mark.parametrize("body_format", FORMATS)
def test_titles_are_cut_to_the_title_limit(body_format: str) -> None:
    message = render_alert(long_item(), body_format, 4000, 30)
    assert len(message.title) <= 30
    assert message.title.startswith("Zhenis Quarterly")
    assert message.title.endswith(ELLIPSIS)


# --- time zones ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "zone", "shown"),
    [
        (PUBLISHED, "Europe/Budapest", "2024-05-03 16:05 CEST"),
        (datetime(2024, 1, 3, 14, 5, tzinfo=UTC), "Europe/Budapest", "2024-01-03 15:05 CET"),
        (PUBLISHED, "Asia/Almaty", "2024-05-03 19:05 +05"),
        (PUBLISHED, "UTC", "2024-05-03 14:05 UTC"),
        (datetime(2024, 5, 3, 14, 5), "Europe/Budapest", "2024-05-03 16:05 CEST"),  # naive: UTC
        (PUBLISHED, "America/New_York", "2024-05-03 10:05 EDT"),
        (
            datetime(2024, 5, 3, 20, 5, tzinfo=timezone(timedelta(hours=6))),
            "Europe/Budapest",
            "2024-05-03 16:05 CEST",
        ),
    ],
)
def test_published_time_is_shown_in_the_configured_zone(published: datetime, zone: str, shown: str) -> None:
    message = render_alert(make_item(published=published), "text", 4000, 250, timezone=zone)
    assert shown in message.body


def test_an_unknown_time_zone_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="'Europe/Atlantis': not an IANA time zone name"):
        render_alert(make_item(), "text", 4000, 250, timezone="Europe/Atlantis")
    assert check_timezone("Europe/Budapest") == []
    assert check_timezone("../etc/passwd") == [
        "time zone '../etc/passwd': not an IANA time zone name (e.g. Europe/Budapest)"
    ]


# --- templates -----------------------------------------------------------------------------------------


def test_a_user_template_replaces_the_built_in_one() -> None:
    templates = Templates(title="News: ${title}", text="${tags} | ${title}\nRead: ${url}")
    message = render_alert(make_item(), "text", 4000, 250, templates)
    assert message.title == "News: Tokayev meets Orbán in Budapest"
    assert message.body == (
        "kazakhstan (Tokayev, Kazakhstan); ots (Organization of Turkic States)"
        " | Tokayev meets Orbán in Budapest\n"
        f"Read: {URL}"
    )


@pytest.mark.parametrize("body_format", ["markdown", "html"])
def test_user_templates_receive_escaped_values(body_format: str) -> None:
    source = {
        "markdown": "[${title}](${url}) ${outlet}",
        "html": '<p><a href="${url}">${title}</a> ${excerpt}</p>',
    }
    templates = Templates(**{body_format: source[body_format]})
    message = render_alert(hostile_item(URL), body_format, 4000, 250, templates)
    page = assert_safe(message.body, body_format)
    assert HOSTILE in page.text
    assert [unquote(href) for href in page.hrefs] == [URL]


def test_a_template_line_with_only_empty_values_is_left_out() -> None:
    templates = Templates(text="${title}\nLink: ${url}\nBy ${outlet}")
    body = render_alert(make_item(url="javascript:x"), "text", 4000, 250, templates).body
    assert body == "Tokayev meets Orbán in Budapest\nBy Telex"


def test_check_templates_names_each_mistake() -> None:
    assert check_templates(Templates()) == []
    assert check_templates(Templates(title="[${tags}] $title", html="<a href='${url}'>${title}</a>")) == []
    problems = check_templates(
        Templates(title="${headline}", text="${title} ${url} costs $5", markdown="${title}")
    )
    known = ", ".join(f"${{{name}}}" for name in PLACEHOLDERS)
    assert problems == [
        f"alerts.templates.title: unknown placeholder ${{headline}} (known: {known})",
        "alerts.templates.text: stray '$' at line 1, column 23"
        " (write $$ for a dollar sign, ${name} for a placeholder)",
        "alerts.templates.markdown: no ${url}, so alerts would not link to the article",
    ]


# --- e-mail --------------------------------------------------------------------------------------------


def test_an_email_has_a_tagged_subject_and_a_list_id() -> None:
    message = render_alert(
        make_item(tags=(TagLine("kazakhstan", 1.0, ("Tokayev",)),)), "html", 100_000, 250, email=True
    )
    assert message.title == "[kazakhstan] Tokayev meets Orbán in Budapest"
    assert message.headers == {"List-Id": LIST_ID}
    assert LIST_ID == "Newswatch alerts <alerts.newswatch.local>"
    page = assert_safe(message.body, "html")
    assert "arrived in Budapest" in page.text
    assert "img" not in page.tags and "style" not in message.body  # no external CSS or images


def test_a_long_subject_keeps_its_tags() -> None:
    message = render_alert(long_item(), "html", 100_000, 40, email=True)
    assert message.title.startswith("[kazakhstan, ots] Zhenis")
    assert len(message.title) <= 40


# --- digests -------------------------------------------------------------------------------------------

KZ = TagLine("kazakhstan", 0.9, ("Astana",))
OTS = TagLine("ots", 0.8, ("OTS",))


DIGEST_ORDER = (6, 3, 2, 1, 0, 5, 4)


def article_link(n: int) -> str:
    return f"https://news{n}.example/a_(b)?id={n}"


def digest_items() -> list[AlertItem]:
    """7 articles: 4 kazakhstan, 2 ots, 1 both; the oldest was also reported by 7 outlets."""
    start = datetime(2024, 5, 3, 6, 0, tzinfo=UTC)
    tags = [(KZ,)] * 4 + [(OTS,)] * 2 + [(KZ, OTS)]
    also = tuple((f"Outlet {n}", f"Story again {n}", f"https://later{n}.example/s") for n in range(7))
    return [
        make_item(
            article_id=n,
            title=f"Story {n} [{HOSTILE}]",
            outlet=f"Source {n}",
            url=article_link(n),
            published=start + timedelta(hours=n),
            tags=tags[n],
            also_reported_by=also if n == 0 else (),
        )
        for n in range(7)
    ]


@pytest.mark.parametrize("body_format", FORMATS)
def test_a_digest_groups_articles_by_tag(body_format: str) -> None:
    message = render_digest(digest_items(), body_format, 100_000, 250, timezone="Europe/Budapest")
    assert message.title == "Newswatch digest: 7 articles (kazakhstan 5, ots 3)"
    seen = visible(message)
    # Newest first in each group; the article with both tags is in the bigger group.
    assert re.search(
        r"\) kazakhstan\W+Story 6 .*Story 3 .*Story 2 .*Story 1 .*Story 0 .*\bots\W+Story 5 .*Story 4 ", seen
    )
    assert all(seen.count(f"Story {n} ") == 1 for n in range(7))  # an article is listed once
    assert "Source 6, 2024-05-03 14:00 CEST (also tagged ots)" in seen
    assert "Also reported by Outlet 0, Outlet 1, Outlet 2, Outlet 3, Outlet 4, 2 more".lower() in seen.lower()
    assert seen.count(HOSTILE) == 7
    found = links(message)
    assert [link for link in found if "news" in link] == [article_link(n) for n in DIGEST_ORDER]
    if body_format != "text":
        assert [f"https://later{n}.example/s" for n in range(5)] == [
            link for link in found if "later" in link
        ]


def test_a_digest_does_not_depend_on_the_order_it_is_given() -> None:
    items = digest_items()
    first = render_digest(items, "html", 100_000, 250)
    random.Random(7).shuffle(items)
    assert render_digest(items, "html", 100_000, 250) == first


def test_a_digest_writes_headlines_with_the_title_template() -> None:
    templates = Templates(title="${outlet}: ${title}", text="ignored ${url}")
    message = render_digest(digest_items()[5:6], "html", 100_000, 250, templates, "Asia/Almaty")
    page = assert_safe(message.body, "html")
    assert f"Source 5: Story 5 [{HOSTILE}] — Source 5, 2024-05-03 16:00 +05" in page.text
    assert "ignored" not in page.text


def test_a_digest_of_one() -> None:
    message = render_digest(digest_items()[5:6], "text", 100_000, 0, email=True)
    assert message.title == ""
    assert message.body.startswith("Newswatch digest: 1 article (ots 1)\n\nots\n\n- Story 5")
    assert message.headers == {"List-Id": LIST_ID}


@pytest.mark.parametrize("body_format", FORMATS)
def test_a_long_digest_drops_whole_articles_and_counts_them(body_format: str) -> None:
    items = digest_items()
    full = render_digest(items, body_format, 100_000, 0).body
    shown_counts = set()
    for limit in range(120, len(full) + 50, 23):
        message = render_digest(items, body_format, limit, 0)
        assert len(message.body) <= limit, limit
        seen = visible(message)
        shown = [n for n in DIGEST_ORDER if f"Story {n} " in seen]
        shown_counts.add(len(shown))
        assert shown == list(DIGEST_ORDER[: len(shown)])  # trailing articles go first
        assert [link for link in links(message) if "news" in link] == [article_link(n) for n in shown]
        if len(shown) < 7:
            assert seen.endswith(f"{ELLIPSIS} and {7 - len(shown)} more"), seen
        else:
            assert not re.search(r"and \d+ more$", seen)
    assert {0, 7} < shown_counts and len(shown_counts) >= 4


# --- the test message ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body_format", FORMATS)
def test_the_test_message_says_what_it_tests(body_format: str) -> None:
    sent = datetime(2024, 12, 24, 17, 30, tzinfo=UTC)
    routed = render_test(body_format, 4000, 250, "kazakhstan", sent_at=sent, timezone="Europe/Budapest")
    assert routed.title == "Newswatch test message"
    seen = visible(routed)
    assert "test message from Newswatch, sent 2024-12-24 18:30 CET" in seen
    assert "routing of tag kazakhstan" in seen
    direct = render_test(body_format, 4000, 0, None, sent_at=sent, email=True)
    assert direct.title == "" and direct.headers == {"List-Id": LIST_ID}
    assert visible(direct).startswith("Newswatch test message This is a test message")
    assert "without tag routing" in visible(direct)
    if body_format != "text":
        assert_safe(routed.body, body_format)


def test_the_test_message_is_dated_now_by_default() -> None:
    before = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = render_test("text", 4000, 250).body
    after = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert f"sent {before}." in body or f"sent {after}." in body


def test_the_test_message_subject_names_the_tag() -> None:
    sent = datetime(2024, 12, 24, 17, 30, tzinfo=UTC)
    message = render_test("html", 100_000, 250, "ots", sent_at=sent, email=True)
    assert message.title == "[ots] Newswatch test message"
    short = render_test("text", 60, 250, "ots", sent_at=sent)
    assert len(short.body) <= 60 and short.body.endswith(ELLIPSIS)
