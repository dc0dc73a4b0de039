"""Messages rendered for each target: its format, its limits, feed text escaped (feeds are untrusted).

Peers render one body for every target (changedetection.io #2299); a chat service then shows raw HTML, an
SMS gateway cuts the link off, and a Markdown service renders whatever links a feed title smuggles in. So a
message is rendered per target:

- Every piece of feed text is cleaned (control and bidi-override characters out, whitespace collapsed) and
  then escaped for the target's format; links are kept only when they are http(s).
- A message longer than the target's limit is cut in a fixed order — the excerpt, then the tag evidence
  (matched terms), then the headline, then the outlet — and the link is never cut. Cuts are made in the
  plain text before escaping, so an HTML body stays well-formed and an entity is never split.
- A service without a title (`title_limit` 0) gets the title as the first block of the body.
- User templates (`Templates`) receive values already escaped for their format, so a template cannot put
  unescaped feed text into a message; `check_templates` reports their mistakes for `newswatch check`.

Everything here is pure and deterministic: no I/O, and no clock unless the test message is not given its
time.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from string import Template
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from worker.errors import ConfigError
from worker.timeutil import to_utc, utcnow

FORMATS = ("text", "markdown", "html")
DEFAULT_TIMEZONE = "UTC"
TIME_FORMAT = "%Y-%m-%d %H:%M %Z"  # %Z: the zone's abbreviation, e.g. CEST
ELLIPSIS = "…"
NO_LIMIT = 0  # a body_limit of 0 (or less) means the service takes any length
# A cut looks this far back for a space, so that it ends between words.
WORD_BACKOFF = 20
LINK_SCHEMES = frozenset({"http", "https"})

# E-mail: a List-Id lets people filter alerts into a folder (RFC 2919).
LIST_ID = "Newswatch alerts <alerts.newswatch.local>"
LIST_ID_HEADER = "List-Id"

UNTITLED = "(no title)"
UNKNOWN_OUTLET = "unknown outlet"
UNTAGGED = "untagged"

PLACEHOLDERS = ("title", "outlet", "published", "url", "tags", "excerpt")

# Built-in templates. A line whose placeholders all come out empty is left out (no empty "Link:" line).
DEFAULT_TITLE_TEMPLATE = "${title}"
EMAIL_SUBJECT_TEMPLATE = "[${tags}] ${title}"
DEFAULT_TEXT_TEMPLATE = """\
${outlet} · ${published}
Tags: ${tags}

${excerpt}

${url}"""
DEFAULT_MARKDOWN_TEMPLATE = """\
${outlet} · ${published}

Tags: ${tags}

${excerpt}

<${url}>"""
DEFAULT_HTML_TEMPLATE = """\
<div>
<p>${outlet} · ${published}</p>
<p>Tags: ${tags}</p>
<p>${excerpt}</p>
<p><a href="${url}">${url}</a></p>
</div>"""

_DEFAULT_BODY_TEMPLATES = {
    "text": DEFAULT_TEXT_TEMPLATE,
    "markdown": DEFAULT_MARKDOWN_TEMPLATE,
    "html": DEFAULT_HTML_TEMPLATE,
}

DIGEST_TITLE = "Newswatch digest"
# A digest names at most this many later reports per article, then counts the rest.
DIGEST_MAX_ALSO_REPORTED = 5

TEST_TITLE = "Newswatch test message"


@dataclass(frozen=True)
class TagLine:
    name: str
    score: float
    terms: tuple[str, ...]  # the matched terms, as written in the article


@dataclass(frozen=True)
class AlertItem:
    """What an alert says about one article."""

    article_id: int
    title: str
    outlet: str | None
    url: str | None
    published: datetime
    tags: tuple[TagLine, ...]
    excerpt: str  # plain text, already cut to a short length
    # Later reports of the same story (outlet, title, url): "also reported by".
    also_reported_by: tuple[tuple[str, str, str | None], ...] = ()


@dataclass(frozen=True)
class Message:
    title: str  # always plain text ("" when the service has no title: it is then in the body)
    body: str
    body_format: str  # "text", "markdown" or "html"
    headers: dict[str, str] = field(default_factory=dict)  # extra e-mail headers (List-Id)


@dataclass(frozen=True)
class Templates:
    """User overrides (config [alerts.templates]); None keeps the built-in template.

    `string.Template` syntax with the `PLACEHOLDERS`. Body templates receive values escaped for their
    format: in HTML `${url}` is safe both in `href="${url}"` and as text; in Markdown it is safe both in
    `<${url}>` and in `[text](${url})`. The title template receives plain text (titles are plain
    everywhere), and its `${tags}` is the tag names only. The title template also makes e-mail subjects
    and the headline of each article in a digest.
    """

    title: str | None = None
    text: str | None = None
    markdown: str | None = None
    html: str | None = None


# --- cleaning and escaping -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Bidi embeddings, overrides and isolates: they can make a headline read differently from what it says.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_WHITESPACE = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>])")
# In a Markdown link (autolink or destination) these would end it or be read as markup.
_MARKDOWN_URL_ESCAPES = {ord(ch): f"%{ord(ch):02X}" for ch in "()<>\\`"}


def _clean(text: str) -> str:
    """Feed text as one line of plain text: nothing invisible that changes how it reads."""
    return _WHITESPACE.sub(" ", _CONTROL.sub(" ", _BIDI.sub("", text))).strip()


def _safe_url(url: str | None) -> str | None:
    """The link when it is http(s) with a host; anything else (javascript:, data:, relative) is dropped."""
    if not url:
        return None
    url = url.strip()
    if _CONTROL.search(url) or _BIDI.search(url) or _WHITESPACE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or not parts.hostname:
        return None
    return url


def _markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _markdown_url(url: str) -> str:
    return url.translate(_MARKDOWN_URL_ESCAPES)


def _html_escape(text: str) -> str:
    return html.escape(text, quote=True)


def _plain(text: str) -> str:
    return text


@dataclass(frozen=True)
class _Style:
    """How one body format escapes text, writes links and blocks."""

    name: str
    escape: Callable[[str], str]
    href: Callable[[str], str]  # a safe URL made safe to put in this format's link syntax
    strong: Callable[[str], str]  # emphasis around already escaped text
    block: Callable[[str], str]  # one paragraph of already escaped text
    separator: str  # between blocks


_STYLES: dict[str, _Style] = {
    "text": _Style("text", _plain, _plain, _plain, _plain, "\n\n"),
    "markdown": _Style("markdown", _markdown_escape, _markdown_url, lambda s: f"**{s}**", _plain, "\n\n"),
    "html": _Style(
        "html", _html_escape, _html_escape, lambda s: f"<b>{s}</b>", lambda s: f"<p>{s}</p>", "\n"
    ),
}


def _style(body_format: str) -> _Style:
    try:
        return _STYLES[body_format]
    except KeyError:
        raise ValueError(f"unknown body format {body_format!r}: expected text, markdown or html") from None


def _link(style: _Style, text: str, url: str | None) -> str:
    """Escaped `text`, linked to `url` where the format has links (plain text shows the URL elsewhere)."""
    if url is None or style.name == "text":
        return style.escape(text)
    if style.name == "markdown":
        return f"[{style.escape(text)}]({style.href(url)})"
    return f'<a href="{style.href(url)}">{style.escape(text)}</a>'


def _bare_link(style: _Style, url: str, limit: int) -> str:
    """The link alone, the last thing a short limit leaves (past the limit if it must: a cut link is useless).

    HTML shows the URL twice (target and text), so when that is too long the text is just the host.
    """
    if style.name == "markdown":
        return f"<{style.href(url)}>"
    if style.name == "html":
        whole = f'<a href="{style.href(url)}">{style.escape(url)}</a>'
        return whole if _fits(whole, limit) else _link(style, urlsplit(url).hostname or url, url)
    return url


# --- time zones --------------------------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            [f"time zone {name!r}: not an IANA time zone name (e.g. Europe/Budapest)"]
        ) from None


def check_timezone(name: str) -> list[str]:
    """One line per problem with the alert time zone, for `newswatch check`."""
    try:
        _zone(name)
    except ConfigError as exc:
        return exc.problems
    return []


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return to_utc(moment).astimezone(zone).strftime(TIME_FORMAT)


# --- cutting -----------------------------------------------------------------------------------------------


def _fits(text: str, limit: int) -> bool:
    return limit <= NO_LIMIT or len(text) <= limit


def _cut(text: str, size: int) -> str:
    """`text` in at most `size` characters, "…" included, ending between words when a space is near."""
    if len(text) <= size:
        return text
    if size <= len(ELLIPSIS):
        return ELLIPSIS[:size]
    kept = text[: size - len(ELLIPSIS)]
    space = kept.rfind(" ")
    if text[len(kept)] != " " and space >= len(kept) - WORD_BACKOFF and space > 0:
        kept = kept[:space]
    return kept.rstrip() + ELLIPSIS


def _longest(render: Callable[[int], str], size: int, limit: int) -> str | None:
    """The longest `render(n)`, n in 0..size, within `limit`; None when even `render(0)` is too long.

    Renders grow with n (more kept text never makes a shorter message), so a binary search finds it in
    a handful of renders however long the text is.
    """
    if not _fits(render(0), limit):
        return None
    low, high = 0, size  # render(low) fits
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(render(middle), limit):
            low = middle
        else:
            high = middle - 1
    return render(low)


def _fit_title(render: Callable[[str], str], headline: str, limit: int) -> str:
    """A title within `limit`: the headline is cut first, so a "[tag] " prefix of the template stays."""
    whole = render(headline)
    if _fits(whole, limit):
        return whole
    kept = _longest(lambda n: render(_cut(headline, n)), len(headline), limit)
    return kept if kept is not None else _cut(whole, limit)


def _fit_plain(style: _Style, text: str, limit: int) -> str:
    """The last resort: `text` alone, cut to fit once escaped."""
    return _longest(lambda n: style.block(style.escape(_cut(text, n))), len(text), limit) or ""


# --- templates ---------------------------------------------------------------------------------------------


def _substitute(source: str, values: Mapping[str, str]) -> str:
    """The template filled in; lines whose placeholders are all empty are left out, blank runs collapse."""
    lines = []
    for line in map(Template, source.split("\n")):
        names = line.get_identifiers()
        # An unknown placeholder counts as filled: it stays visible, as safe_substitute leaves it.
        if names and not any(values.get(name, "?") for name in names):
            continue
        lines.append(line.safe_substitute(values))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _body_template(templates: Templates, body_format: str) -> str:
    user: str | None = getattr(templates, body_format)
    return user if user is not None else _DEFAULT_BODY_TEMPLATES[body_format]


def check_templates(templates: Templates) -> list[str]:
    """One line per problem in the user's templates, for `newswatch check`."""
    known = ", ".join(f"${{{name}}}" for name in PLACEHOLDERS)
    problems = []
    for name in ("title", *FORMATS):
        source: str | None = getattr(templates, name)
        if source is None:
            continue
        where = f"alerts.templates.{name}"
        template = Template(source)
        for match in template.pattern.finditer(source):
            if match.group("invalid") is not None:
                line = source.count("\n", 0, match.start()) + 1
                column = match.start() - source.rfind("\n", 0, match.start())
                problems.append(
                    f"{where}: stray '$' at line {line}, column {column} "
                    "(write $$ for a dollar sign, ${name} for a placeholder)"
                )
        for identifier in template.get_identifiers():
            if identifier not in PLACEHOLDERS:
                problems.append(f"{where}: unknown placeholder ${{{identifier}}} (known: {known})")
        if name != "title" and "url" not in template.get_identifiers():
            problems.append(f"{where}: no ${{url}}, so alerts would not link to the article")
    return problems


# --- one alert ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Article:
    """One article's fields as clean plain text: what gets cut, before anything is escaped."""

    title: str
    outlet: str
    published: str
    url: str | None
    tags: tuple[tuple[str, tuple[str, ...]], ...]  # (name, distinct terms)
    excerpt: str
    terms_shown: int  # how many matched terms the tag evidence shows, taken in turn from each tag


def _outlet(outlet: str | None, url: str | None) -> str:
    """The outlet's name, else its host: a reader wants to know who reports before opening the link."""
    name = _clean(outlet or "")
    if name:
        return name
    host = urlsplit(url).hostname if url else None
    return host.removeprefix("www.") if host else UNKNOWN_OUTLET


def _article(item: AlertItem, zone: ZoneInfo) -> _Article:
    url = _safe_url(item.url)
    tags = tuple(
        (_clean(tag.name), tuple(dict.fromkeys(t for t in map(_clean, tag.terms) if t))) for tag in item.tags
    )
    return _Article(
        title=_clean(item.title) or UNTITLED,
        outlet=_outlet(item.outlet, url),
        published=_when(item.published, zone),
        url=url,
        tags=tags,
        excerpt=_clean(item.excerpt),
        terms_shown=sum(len(terms) for _, terms in tags),
    )


def _tag_names(tags: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    return ", ".join(name for name, _ in tags) or UNTAGGED


def _terms_per_tag(tags: Sequence[tuple[str, tuple[str, ...]]], budget: int) -> Counter[int]:
    """How many terms each tag shows when only `budget` are shown: each tag's first term before any second."""
    turns = sorted((depth, index) for index, (_, terms) in enumerate(tags) for depth in range(len(terms)))
    return Counter(index for _, index in turns[:budget])


def _tag_evidence(article: _Article, style: _Style) -> str:
    """Each tag with the terms that matched, "tag (term, term, …)" when some are cut."""
    counts = _terms_per_tag(article.tags, article.terms_shown)
    shown = []
    for index, (name, terms) in enumerate(article.tags):
        kept = list(terms[: counts[index]])
        if kept and len(kept) < len(terms):
            kept.append(ELLIPSIS)
        evidence = f" ({style.escape(', '.join(kept))})" if kept else ""
        shown.append(style.strong(style.escape(name)) + evidence)
    return "; ".join(shown) or style.escape(UNTAGGED)


def _plain_values(article: _Article) -> dict[str, str]:
    return {
        "title": article.title,
        "outlet": article.outlet,
        "published": article.published,
        "url": article.url or "",
        "tags": _tag_names(article.tags),
        "excerpt": article.excerpt,
    }


def _title(template: str, article: _Article) -> str:
    return _clean(Template(template).safe_substitute(_plain_values(article)))


def _alert_body(article: _Article, style: _Style, template: str, title_template: str | None) -> str:
    values = {
        "title": style.escape(article.title),
        "outlet": style.escape(article.outlet),
        "published": style.escape(article.published),
        "url": style.href(article.url) if article.url else "",
        "tags": _tag_evidence(article, style),
        "excerpt": style.escape(article.excerpt),
    }
    body = _substitute(template, values)
    heading = _title(title_template, article) if title_template is not None else ""
    if not heading:
        return body
    return style.block(style.strong(style.escape(heading))) + style.separator + body


# The order in which an alert gives way to a short limit: (size of the field, the article with it cut).
_ALERT_CUTS: tuple[tuple[Callable[[_Article], int], Callable[[_Article, int], _Article]], ...] = (
    (lambda a: len(a.excerpt), lambda a, n: replace(a, excerpt=_cut(a.excerpt, n))),
    (lambda a: a.terms_shown, lambda a, n: replace(a, terms_shown=n)),
    (lambda a: len(a.title), lambda a, n: replace(a, title=_cut(a.title, n))),
    (lambda a: len(a.outlet), lambda a, n: replace(a, outlet=_cut(a.outlet, n))),
)


def _cutting(
    render: Callable[[_Article], str], cut: Callable[[_Article, int], _Article], article: _Article
) -> Callable[[int], str]:
    return lambda n: render(cut(article, n))


def _fit_alert(article: _Article, limit: int, render: Callable[[_Article], str], style: _Style) -> str:
    body = render(article)
    if _fits(body, limit):
        return body
    for size, cut in _ALERT_CUTS:
        kept = _longest(_cutting(render, cut, article), size(article), limit)
        if kept is not None:
            return kept
        article = cut(article, 0)
    if article.url is not None:
        return _bare_link(style, article.url, limit)
    return _fit_plain(style, article.title, limit)


def _headers(email: bool) -> dict[str, str]:
    return {LIST_ID_HEADER: LIST_ID} if email else {}


def render_alert(
    item: AlertItem,
    body_format: str,
    body_limit: int,
    title_limit: int,
    templates: Templates = Templates(),
    timezone: str = DEFAULT_TIMEZONE,
    *,
    email: bool = False,
) -> Message:
    """The alert for one article, as one target reads best.

    `email=True` (the outbox passes it for mailto targets) makes the title a subject naming the tags,
    "[kazakhstan] Tokayev meets Orbán in Budapest", and adds the List-Id header. Raises ConfigError for an
    unknown time zone and ValueError for an unknown body format.
    """
    style = _style(body_format)
    article = _article(item, _zone(timezone))
    title_template = templates.title or (EMAIL_SUBJECT_TEMPLATE if email else DEFAULT_TITLE_TEMPLATE)
    body_template = _body_template(templates, body_format)
    in_body = title_template if title_limit <= 0 else None

    def render(draft: _Article) -> str:
        return _alert_body(draft, style, body_template, in_body)

    body = _fit_alert(article, body_limit, render, style)
    title = ""
    if in_body is None:
        title = _fit_title(
            lambda headline: _title(title_template, replace(article, title=headline)),
            article.title,
            title_limit,
        )
    return Message(title=title, body=body, body_format=body_format, headers=_headers(email))


# --- digests -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One article of a digest, as clean plain text."""

    title: str
    outlet: str
    published: str
    url: str | None
    other_tags: tuple[str, ...]
    also: tuple[tuple[str, str | None], ...]  # (outlet, url) of later reports
    also_more: int  # later reports not named


def _later_report(outlet: str, url: str | None) -> tuple[str, str | None]:
    safe = _safe_url(url)
    return _outlet(outlet, safe), safe


def _entry(item: AlertItem, group: str, title_template: str, zone: ZoneInfo) -> _Entry:
    article = _article(item, zone)
    also = tuple(_later_report(outlet, link) for outlet, _title, link in item.also_reported_by)
    return _Entry(
        title=_title(title_template, article),
        outlet=article.outlet,
        published=article.published,
        url=article.url,
        other_tags=tuple(name for name in _item_tags(item) if name != group),
        also=also[:DIGEST_MAX_ALSO_REPORTED],
        also_more=max(0, len(also) - DIGEST_MAX_ALSO_REPORTED),
    )


def _item_tags(item: AlertItem) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for name in (_clean(tag.name) for tag in item.tags) if name)) or (
        UNTAGGED,
    )


def _tag_counts(items: Sequence[AlertItem]) -> list[tuple[str, int]]:
    """Articles per tag, biggest first (an article with two tags counts in both)."""
    counts: dict[str, int] = {}
    for item in items:
        for name in _item_tags(item):
            counts[name] = counts.get(name, 0) + 1
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))


def _groups(
    items: Sequence[AlertItem], title_template: str, zone: ZoneInfo
) -> list[tuple[str, list[_Entry]]]:
    """Articles by tag, each listed once: under its biggest group, naming its other tags; newest first."""
    order = [name for name, _ in _tag_counts(items)]
    rank = {name: index for index, name in enumerate(order)}
    grouped: dict[str, list[AlertItem]] = {name: [] for name in order}
    for item in items:
        grouped[min(_item_tags(item), key=rank.__getitem__)].append(item)
    return [
        (name, [_entry(item, name, title_template, zone) for item in sorted(members, key=_newest_first)])
        for name, members in grouped.items()
        if members
    ]


def _newest_first(item: AlertItem) -> tuple[float, int]:
    return (-to_utc(item.published).timestamp(), item.article_id)


def _digest_title(items: Sequence[AlertItem]) -> str:
    count = len(items)
    noun = "article" if count == 1 else "articles"
    tags = ", ".join(f"{name} {n}" for name, n in _tag_counts(items))
    return f"{DIGEST_TITLE}: {count} {noun}" + (f" ({tags})" if tags else "")


def _also_reported(style: _Style, entry: _Entry) -> str:
    """The later reports' outlets (linked where the format links), "" when there are none."""
    named = [_link(style, outlet, url) for outlet, url in entry.also]
    if entry.also_more:
        named.append(style.escape(f"{entry.also_more} more"))
    return ", ".join(named)


def _entry_line(style: _Style, entry: _Entry) -> str:
    """Title (linked where the format links), outlet and time, other tags."""
    line = _link(style, entry.title, entry.url) + style.escape(f" — {entry.outlet}, {entry.published}")
    if entry.other_tags:
        line += style.escape(f" (also tagged {', '.join(entry.other_tags)})")
    return line


def _digest_entry(style: _Style, entry: _Entry) -> str:
    line = _entry_line(style, entry)
    also = _also_reported(style, entry)
    if style.name == "text":
        lines = [
            f"- {line}",
            *([f"  {entry.url}"] if entry.url else []),
            *([f"  Also reported by {also}"] if also else []),
        ]
        return "\n".join(lines)
    if style.name == "markdown":
        return f"- {line}" + (f"; also reported by {also}" if also else "")
    return f"<li>{line}" + (f"<br>Also reported by {also}" if also else "") + "</li>"


def _digest_group(style: _Style, name: str, entries: Sequence[_Entry]) -> str:
    heading = style.block(style.strong(style.escape(name)))
    listed = "\n".join(_digest_entry(style, entry) for entry in entries)
    if style.name == "html":
        listed = f"<ul>\n{listed}\n</ul>"
    return heading + style.separator + listed


def _digest_body(
    style: _Style, groups: Sequence[tuple[str, list[_Entry]]], shown: int, heading: str | None
) -> str:
    """The digest with its first `shown` articles (in listing order) and a line counting the rest."""
    blocks = [style.block(style.strong(style.escape(heading)))] if heading else []
    left = shown
    for name, entries in groups:
        if left <= 0:
            break
        blocks.append(_digest_group(style, name, entries[:left]))
        left -= len(entries)
    hidden = sum(len(entries) for _, entries in groups) - shown
    if hidden > 0:
        blocks.append(style.block(style.escape(f"{ELLIPSIS} and {hidden} more")))
    return style.separator.join(blocks)


def render_digest(
    items: Sequence[AlertItem],
    body_format: str,
    body_limit: int,
    title_limit: int,
    templates: Templates = Templates(),
    timezone: str = DEFAULT_TIMEZONE,
    *,
    email: bool = False,
) -> Message:
    """One message listing several articles, grouped by tag, for one target.

    Too long for the target, it drops whole articles from the end and says "… and N more", so every
    link it shows is whole. Of `templates` only the title template applies (to each article's headline):
    the rest lay out a single alert. `email=True` adds the List-Id header (the title names the tags).
    """
    style = _style(body_format)
    zone = _zone(timezone)
    groups = _groups(items, templates.title or DEFAULT_TITLE_TEMPLATE, zone)
    total = sum(len(entries) for _, entries in groups)
    title = _digest_title(items)
    heading = title if title_limit <= 0 else None
    body = _longest(lambda shown: _digest_body(style, groups, shown, heading), total, body_limit)
    if body is None:
        body = _fit_plain(style, f"{title} {ELLIPSIS} and {total} more" if total else title, body_limit)
    return Message(
        title="" if heading else _cut(title, title_limit),
        body=body,
        body_format=body_format,
        headers=_headers(email),
    )


# --- test message ------------------------------------------------------------------------------------------


def render_test(
    body_format: str,
    body_limit: int,
    title_limit: int,
    tag: str | None = None,
    *,
    sent_at: datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    email: bool = False,
) -> Message:
    """The message of `newswatch alerts test`: says it is a test, when it was sent, which routing it tries.

    `sent_at` defaults to now; give it for a deterministic message.
    """
    style = _style(body_format)
    tag = _clean(tag) if tag else None
    title = f"[{tag}] {TEST_TITLE}" if email and tag else TEST_TITLE
    routing = (
        f"It exercises the routing of tag {tag}: this target receives alerts for articles tagged {tag}."
        if tag
        else "It was sent to this target directly, without tag routing."
    )
    lines = [
        f"This is a test message from Newswatch, sent {_when(sent_at or utcnow(), _zone(timezone))}.",
        routing,
        "If you can read this, Newswatch can deliver alerts here.",
    ]
    blocks = [style.block(style.escape(line)) for line in lines]
    if title_limit <= 0:
        blocks.insert(0, style.block(style.strong(style.escape(title))))
    body = style.separator.join(blocks)
    if not _fits(body, body_limit):
        body = _fit_plain(style, " ".join(lines), body_limit)
    return Message(
        title="" if title_limit <= 0 else _cut(title, title_limit),
        body=body,
        body_format=body_format,
        headers=_headers(email),
    )
