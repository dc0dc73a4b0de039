"""Untrusted feed HTML → HTML that is safe to display, and → plain text for analysis.

Feeds carry whatever their publishers (or whoever hijacked them) wrote: scripts, event handlers,
`javascript:` links, trackers in iframes. nh3 (the Rust ammonia sanitizer) rebuilds every fragment from a
small allow-list, so what we store can be shown in a browser, a mail or a chat message as it is.

The plain-text converter reads only nh3's output. That output is regular — lower-case tags, quoted
attributes, `<` and `>` escaped in text — so a few regular expressions convert it correctly and fast,
without a second HTML parser.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from urllib.parse import urlsplit

import nh3

# What a news article needs for display, nothing that runs, styles or embeds.
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt",
        "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
        "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table",
        "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt"}),
    "abbr": frozenset({"title"}),
    "td": frozenset({"colspan", "rowspan"}),
    "th": frozenset({"colspan", "rowspan"}),
}
# Tags removed together with everything inside them: their content is code, markup or fallback that a
# browser does not show (an HTML parser reads the inside of iframe, noembed, noframes and xmp as raw text).
DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "template", "svg", "math", "noscript", "title",
        "iframe", "noembed", "noframes", "xmp",
    }
)  # fmt: skip
# The allowed attributes that hold URLs: the only ones a base changes.
URL_ATTRIBUTES = frozenset({"href", "src"})
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
# Cleaners are cheap to build but feeds repeat their bases; keep the recent ones.
CLEANER_CACHE_SIZE = 256

# XHTML-minded feeds self-close elements whose inside an HTML parser reads as raw text (`<iframe src=x/>`):
# the parser would swallow the rest of the article into that element. They are closed explicitly first.
_SELF_CLOSED_RAW_TEXT = re.compile(
    r"<(script|style|iframe|noembed|noframes|noscript|xmp|textarea|title)\b([^>]*?)/>", re.IGNORECASE
)
# A tag of nh3's output: attribute values are always double-quoted.
_TAG_BODY = r'(?:[^>"]|"[^"]*")*'
_PARAGRAPH_END = re.compile(r"</(?:p|h[1-6]|blockquote|pre|table|ul|ol|dl|figure)>")
_LINE_BREAK = re.compile(
    r"<(?:br|hr|/?div|/?li|/?tr|/?dt|/?dd|/?caption|/?figcaption|p|h[1-6]|blockquote|pre|table|ul|ol|dl|figure)"
    r"(?:\s" + _TAG_BODY + r")?/?>"
)
_CELL_END = re.compile(r"</t[dh]>")
_ANY_TAG = re.compile(r"<" + _TAG_BODY + r">")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# Control characters other than tab and line breaks, and the two non-characters: feeds leak them from
# binary fields or broken encoders; PostgreSQL refuses NUL in text, and none of them is text.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _http_base(base_url: str | None) -> str | None:
    """`base_url` when it is an absolute http(s) URL nh3 can resolve against, else None."""
    if not base_url:
        return None
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return base_url


@lru_cache(maxsize=CLEANER_CACHE_SIZE)
def _cleaner(base_url: str | None) -> nh3.Cleaner:
    try:
        return _new_cleaner(base_url)
    except ValueError:  # a base nh3 cannot parse (an invalid international host name): links stay as written
        return _new_cleaner(None)


def _new_cleaner(base_url: str | None) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
        # Without a usable base, relative links stay relative: dropping them would lose more than it saves.
        url_relative=("rewrite_with_base", base_url) if base_url else "pass_through",
    )


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """`fragment` rebuilt from the allow-list, relative links resolved against `base_url` (http(s) only)."""
    if not fragment:
        return ""
    fragment = _SELF_CLOSED_RAW_TEXT.sub(r"<\1\2></\1>", fragment)
    # A cleaner is built per base, and feeds give each entry a base of its own: building one costs more
    # than cleaning the fragment. A fragment that nowhere spells a URL attribute comes out the same
    # whatever the base, so the shared cleaner without one does.
    lowered = fragment.lower()
    if not any(name in lowered for name in URL_ATTRIBUTES):
        base_url = None
    # After cleaning: character references (`&#1;`) become control characters only in the parser.
    return strip_control_chars(_cleaner(_http_base(base_url)).clean(fragment)).strip()


def strip_control_chars(text: str) -> str:
    """`text` without control characters (tab, CR and LF stay)."""
    return _CONTROL_CHARS.sub("", text)


def text_to_html(text: str) -> str:
    """Plain text as HTML: escaped, blank-line-separated paragraphs, line breaks kept."""
    text = strip_control_chars(text).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip() for p in _BLANK_LINE.split(text)]
    return "".join(
        "<p>" + html.escape(p, quote=False).replace("\n", "<br>") + "</p>" for p in paragraphs if p
    )


def html_to_text(sanitized: str) -> str:
    """Plain text of `sanitize_html` output: block elements become line breaks, entities unescaped.

    Whitespace is left for `analysis.text.normalize` to tidy. Only for sanitised HTML: raw HTML may hold
    comments, scripts or unquoted attributes this converter does not expect.
    """
    if not sanitized:
        return ""
    if "<" in sanitized:
        text = _PARAGRAPH_END.sub("\n\n", sanitized)
        text = _LINE_BREAK.sub("\n", text)
        text = _CELL_END.sub(" ", text)
        text = _ANY_TAG.sub("", text)
    else:
        text = sanitized
    return html.unescape(text) if "&" in text else text


def html_to_plain(fragment: str) -> str:
    """Plain text of untrusted HTML (sanitised first, so dropped content such as scripts stays dropped)."""
    return html_to_text(sanitize_html(fragment))
