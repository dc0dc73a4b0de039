"""The search page at `/` and the article page at `/articles/{id}`: server-rendered HTML, no JavaScript.

Jinja2 escapes everything it prints (autoescape); the only markup that comes from data is the highlight
of search snippets, which is built here from escaped text. Links are relative, so the pages also work
behind a reverse proxy that mounts them under a sub-path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape
from sqlalchemy.engine import Engine

from worker.api.schemas import MAX_ID
from worker.runtime import Runtime
from worker.store.db import session_scope
from worker.store.queries import article_view
from worker.store.search import SearchFilters, parse_since, parse_until, search
from worker.store.snippet import SnippetPart
from worker.tagrules import DEFAULT_RULES_PATH, load_rules
from worker.timeutil import utcnow

PAGE_SIZE = 20
# The choices of the date filter: (value of `since`, label).
PERIODS = (
    ("", "any time"),
    ("24h", "past day"),
    ("7d", "past week"),
    ("30d", "past month"),
    ("365d", "past year"),
)
_ID = re.compile(r"[0-9]{1,10}")

_env = Environment(
    loader=PackageLoader("worker.api", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)


def highlight(parts: Sequence[SnippetPart]) -> Markup:
    """A search snippet as HTML: its text escaped, the matched words in <mark>."""
    return Markup("").join(
        Markup("<mark>{}</mark>").format(part.text) if part.highlight else escape(part.text) for part in parts
    )


def when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def is_web_url(value: object) -> bool:
    """Whether a stored URL may become a link (a feed could send `javascript:` ones)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


_env.filters["highlight"] = highlight
_env.filters["when"] = when
_env.tests["web_url"] = is_web_url


def known_tags(runtime: Runtime) -> tuple[str, ...]:
    """The tags the filter offers: those of the tag rules and of the configured feeds."""
    settings = runtime.settings
    rules = load_rules(settings.tags_file or DEFAULT_RULES_PATH)
    return tuple(sorted({*rules.tag_names, *(t for f in settings.feeds for t in f.tags)}))


def _page(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**values), status_code=status)


def router(engine: Engine, tags: Sequence[str]) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    @pages.get("/", response_class=HTMLResponse)
    def search_page(
        q: Annotated[str, Query(max_length=500)] = "",
        tag: Annotated[str, Query(max_length=64)] = "",
        since: Annotated[str, Query(max_length=64)] = "",
        until: Annotated[str, Query(max_length=64)] = "",
        cursor: Annotated[str, Query(max_length=500)] = "",
    ) -> HTMLResponse:
        form = {"q": q.strip(), "tag": tag.strip(), "since": since.strip(), "until": until.strip()}
        shown = {k: v for k, v in form.items() if v}
        values: dict[str, Any] = {"form": form, "tags": tags, "periods": PERIODS, "hits": [], "error": None}
        try:
            if any("\x00" in v for v in (*form.values(), cursor)):
                raise ValueError("the search contains a NUL character")
            now = utcnow()
            filters = SearchFilters(
                query=form["q"] or None,
                tags=(form["tag"],) if form["tag"] else (),
                since=parse_since(form["since"], now) if form["since"] else None,
                until=parse_until(form["until"], now) if form["until"] else None,
            )
            with session_scope(engine) as session:
                result = search(session, filters, limit=PAGE_SIZE, cursor=cursor or None)
        except ValueError as exc:
            values["error"] = str(exc)
            return _page("search.html", 422, **values)
        values["hits"] = result.hits
        values["total"] = result.total
        values["query_for_tag"] = lambda name: "?" + urlencode({**shown, "tag": name})
        if result.next_cursor:
            values["next_href"] = "?" + urlencode({**shown, "cursor": result.next_cursor})
        return _page("search.html", **values)

    @pages.get("/articles/{article_id}", response_class=HTMLResponse)
    def article_page(article_id: str) -> HTMLResponse:
        view = None
        if _ID.fullmatch(article_id) and int(article_id) <= MAX_ID:
            with session_scope(engine) as session:
                view = article_view(session, int(article_id))
        if view is None:
            return _page("missing.html", 404, article_id=article_id)
        return _page("article.html", view=view, article=view.article)

    return pages
