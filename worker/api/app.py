"""The read-only HTTP API (FastAPI): articles, search, feed health, Atom feeds per tag, health, metrics.

Every request reads through its own short transaction on a read-only engine (on SQLite, a WAL snapshot
that never waits for the daemon's writes). Handlers are plain functions, which FastAPI runs in its thread
pool as the synchronous store needs — except searches on SQLite, which run on the event loop (see
`run_search`). Bad parameters are 422s in FastAPI's own error shape, including those only the search module
can judge (query syntax, dates, cursors).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from anyio import to_thread
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from worker import __version__
from worker.api import metrics, page
from worker.api.auth import OPEN_PATHS, TokenAuth
from worker.api.schemas import MAX_ID, ArticleDetail, ArticlePage, FeedHealth, Health, Message
from worker.atom import FeedMeta, render_atom
from worker.errors import one_line
from worker.runtime import Runtime
from worker.store import feeds as feed_store
from worker.store.db import is_sqlite, make_engine, session_scope
from worker.store.models import Feed
from worker.store.queries import ArticleView, article_view
from worker.store.search import SearchFilters, SearchHit, SearchPage, parse_since, parse_until, search
from worker.store.search_syntax import QuerySyntaxError
from worker.timeutil import utcnow

log = logging.getLogger("newswatch.api")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ATOM_ENTRIES = 50
MAX_TEXT = 500
# Requests a server process handles at once (its handlers run in threads); more wait their turn on the event
# loop, costing nothing. Searches are CPU work that shares one GIL: with anyio's default of 40 threads the
# slowest searches took ~1.7 times as long at the same throughput (benchmarks/query.py, p95 235-285 ms
# against 145-165 ms with 1, 2 or 4).
HANDLER_THREADS = 4

DESCRIPTION = """Read-only access to what Newswatch stored.

Search syntax (`q`): words (all must occur), `"a phrase"`, `OR`, `NOT word` or `-word`, `prefix*`,
`(parentheses)`; operators in capitals. Matching ignores case and diacritics. Dates (`since`, `until`) are
ISO dates or times (`2025-05-01`, `2025-05-01T12:00:00Z`; a bare `until` date includes that day) or ages back
from now (`24h`, `7d`, `2w`). Duplicates are left out unless `include_duplicates=true` or `duplicates_of`
asks for them. Pages: pass back `next_cursor` as `cursor`.
"""


class AtomResponse(Response):
    media_type = "application/atom+xml"


class PrometheusResponse(PlainTextResponse):
    media_type = "text/plain; version=0.0.4"


def invalid(where: str, name: str, message: str, value: Any) -> RequestValidationError:
    """A 422 in FastAPI's own shape, for what only the handler can judge."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, name), "msg": message, "input": value}]
    )


def _no_nul(name: str, value: str | None) -> None:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
    if value is not None and "\x00" in value:
        raise invalid("query", name, "must not contain NUL characters", value)


def _no_tags() -> list[str]:
    # Not `list` itself: pydantic inspects a default factory's signature on every request, and a
    # builtin's costs ~0.1 ms to inspect, a Python function's a few µs.
    return []


async def article_filters(
    request: Request,
    tag: Annotated[
        list[str],
        Query(
            default_factory=_no_tags,
            description="Only articles with this tag; repeat for all of several tags.",
        ),
    ],
    feed: Annotated[str | None, Query(max_length=2000, description="Feed URL or id.")] = None,
    outlet: Annotated[str | None, Query(max_length=MAX_TEXT, description="Outlet (site) name.")] = None,
    since: Annotated[
        str | None, Query(max_length=64, description='Published at or after: a date or an age ("7d", "24h").')
    ] = None,
    until: Annotated[
        str | None, Query(max_length=64, description='Published before: a date (included) or an age ("7d").')
    ] = None,
    source: Annotated[
        Literal["feed", "seed"] | None, Query(description="feed: polled articles; seed: reference articles.")
    ] = None,
    include_duplicates: Annotated[bool, Query(description="Also list duplicates of other articles.")] = False,
    story_id: Annotated[str | None, Query(max_length=64, description="Only articles of this story.")] = None,
    duplicates_of: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only the duplicates of this article.")
    ] = None,
) -> SearchFilters:
    """The filters every listing shares, validated; dates parsed against now. (async: a few µs of
    parsing run on the event loop rather than through a thread of their own.)"""
    for parameter in request.query_params:
        # FastAPI would silently keep the last of repeated values: an ambiguous request is refused instead.
        values = request.query_params.getlist(parameter)
        if parameter != "tag" and len(values) > 1:
            raise invalid("query", parameter, "give this parameter once", values)
    tags = tuple(tag)
    for name in tags:
        _no_nul("tag", name)
        if not name or len(name) > 64:
            raise invalid("query", "tag", "a tag name has 1 to 64 characters", name)
    for parameter, text in (("feed", feed), ("outlet", outlet), ("story_id", story_id)):
        _no_nul(parameter, text)
    now = utcnow()
    bounds: dict[str, datetime] = {}
    for parameter, moment, parse in (("since", since, parse_since), ("until", until, parse_until)):
        if moment is not None:
            try:
                bounds[parameter] = parse(moment, now)
            except ValueError as exc:
                raise invalid("query", parameter, str(exc), moment) from exc
    return SearchFilters(
        tags=tags,
        feed=feed,
        outlet=outlet,
        since=bounds.get("since"),
        until=bounds.get("until"),
        source=source,
        include_duplicates=include_duplicates,
        story_id=story_id,
        duplicates_of=duplicates_of,
    )


Filters = Annotated[SearchFilters, Depends(article_filters)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Articles per page.")]
Cursor = Annotated[str | None, Query(max_length=MAX_TEXT, description="`next_cursor` of the previous page.")]


def _json_time(value: str | None) -> str | None:
    # pydantic's form of a UTC time ("…Z"); the stored times are all UTC.
    return value[:-6] + "Z" if value is not None and value.endswith("+00:00") else value


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """An `ArticleHit` as JSON: the same object as `newswatch search --format json` prints, times as
    pydantic writes them."""
    data = hit.as_json()
    data["published"] = _json_time(data["published"])
    data["updated"] = _json_time(data["updated"])
    return data


def page_response(page: SearchPage) -> Response:
    """An `ArticlePage`, written directly: validating and serialising the hits through pydantic cost more
    than the search itself. The schema stays the routes' response_model (tests/test_api_schema.py checks
    the live answers against it)."""
    body = {
        "items": [hit_json(hit) for hit in page.hits],
        "next_cursor": page.next_cursor,
        "total": page.total,
    }
    # orjson: a page of 20 hits in ~20 µs, where the json module took ~140 µs.
    return Response(orjson.dumps(body), media_type="application/json")


def detail_model(view: ArticleView, why: bool) -> ArticleDetail:
    # The same object as `newswatch show --format json` prints.
    return ArticleDetail.model_validate(view.as_json(why=why))


# The search module's ValueErrors say what was wrong in their message; these name the parameter.
_SEARCH_ERRORS = (("invalid cursor", "cursor"), ("no feed", "feed"), ("outlet", "outlet"))


def search_error(exc: ValueError, filters: SearchFilters, cursor: str | None) -> RequestValidationError:
    """The 422 for a search the search module refused."""
    message = str(exc)
    name = "q" if isinstance(exc, QuerySyntaxError) else None
    for prefix, parameter in _SEARCH_ERRORS:
        if name is None and message.startswith(prefix):
            name = parameter
    values = {"q": filters.query, "cursor": cursor, "feed": filters.feed, "outlet": filters.outlet}
    if name is None:
        return RequestValidationError([{"type": "value_error", "loc": ("query",), "msg": message}])
    return invalid("query", name, message, values[name])


def health_of(last_success: datetime | None, stale_after: float) -> tuple[Health, int]:
    """The /healthz answer and its status code, from the last successful poll (None: never)."""
    age = (utcnow() - last_success).total_seconds() if last_success is not None else None
    fresh = age is not None and age <= stale_after
    health = Health(
        status="ok" if fresh else "stale",
        database="ok",
        last_success=last_success,
        age_seconds=age,
        stale_after=stale_after,
    )
    return health, 200 if fresh else 503


def create_app(runtime: Runtime) -> FastAPI:
    """The application for `runtime`'s settings and store. It only reads: `newswatch run` writes."""
    settings = runtime.settings
    engine = make_engine(settings.database_url, read_only=True)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = HANDLER_THREADS
        yield
        engine.dispose()

    app = FastAPI(
        title="Newswatch",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
        # Operation ids are the handler names ("search_articles"): what generated clients call them.
        generate_unique_id_function=lambda route: route.name,
    )

    @app.exception_handler(SQLAlchemyError)
    async def database_unavailable(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.warning("database error: %s", one_line(getattr(exc, "orig", None) or exc))
        return JSONResponse({"detail": "the database is unavailable"}, status_code=503)

    def searched(filters: SearchFilters, limit: int, cursor: str | None) -> Response:
        with session_scope(engine) as session:
            try:
                result = search(session, filters, limit=limit, cursor=cursor)
            except ValueError as exc:
                raise search_error(exc, filters, cursor) from exc
        return page_response(result)

    # On SQLite a search is CPU work in this process, which a thread would only hand back and forth under
    # the GIL: it runs on the event loop itself, one at a time (benchmarks/query.py: ~10 % more requests a
    # second and a p95 of 67-70 ms against 81-83 ms through threads). On PostgreSQL it mostly waits for the
    # server, which threads overlap.
    inline = is_sqlite(engine)

    async def run_search(filters: SearchFilters, limit: int, cursor: str | None) -> Response:
        if inline:
            return searched(filters, limit, cursor)
        return await to_thread.run_sync(searched, filters, limit, cursor)

    @app.get(
        "/api/articles",
        tags=["articles"],
        summary="List articles, newest first",
        response_model=ArticlePage,
    )
    async def list_articles(
        filters: Filters, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Response:
        return await run_search(filters, limit, cursor)

    @app.get(
        "/api/search",
        tags=["articles"],
        summary="Full-text search, best match first",
        response_model=ArticlePage,
    )
    async def search_articles(
        q: Annotated[str, Query(min_length=1, max_length=MAX_TEXT, description="The search query.")],
        filters: Filters,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response:
        _no_nul("q", q)
        return await run_search(replace(filters, query=q), limit, cursor)

    @app.get(
        "/api/articles/{article_id}",
        tags=["articles"],
        summary="One article: text, tags with evidence, duplicate and story, deliveries",
        responses={404: {"model": Message, "description": "No such article."}},
    )
    def get_article(
        article_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        why: Annotated[bool, Query(description="Explain the duplicate and story decision.")] = False,
    ) -> ArticleDetail:
        with session_scope(engine) as session:
            view = article_view(session, article_id)
            if view is None:
                raise HTTPException(404, f"no article {article_id}")
            return detail_model(view, why)

    @app.get("/api/feeds", tags=["feeds"], summary="Every feed and its health")
    def list_feeds() -> list[FeedHealth]:
        with session_scope(engine) as session:
            rows = feed_store.health(session)
        return [FeedHealth.model_validate(row.as_json()) for row in rows]

    @app.get(
        "/feeds/{tag}.atom",
        tags=["feeds"],
        summary="Atom 1.0 feed of a tag's newest articles (duplicates folded)",
        response_class=AtomResponse,
        responses={200: {"content": {"application/atom+xml": {}}, "description": "An Atom 1.0 feed."}},
    )
    def tag_feed(tag: Annotated[str, Path(min_length=1, max_length=64)], request: Request) -> AtomResponse:
        _no_nul("tag", tag)
        with session_scope(engine) as session:
            result = search(session, SearchFilters(tags=(tag,)), limit=ATOM_ENTRIES)
        meta = FeedMeta(
            title=f"Newswatch: {tag}",
            subtitle=f"The newest articles tagged {tag}, duplicates folded",
            self_url=str(request.url),
            alternate_url=f"{request.base_url}?{urlencode({'tag': tag})}",
        )
        return AtomResponse(render_atom(result.hits, meta))

    @app.get(
        "/healthz",
        tags=["service"],
        summary="Database reachable and polling recent",
        responses={503: {"model": Health, "description": "Polling is stale or the database is unreachable."}},
    )
    def healthz(response: Response) -> Health:
        try:
            with session_scope(engine) as session:
                last_success = session.exec(select(func.max(Feed.last_success))).one()
        except SQLAlchemyError as exc:
            log.warning("health check: database unreachable: %s", one_line(getattr(exc, "orig", None) or exc))
            response.status_code = 503
            return Health(
                status="down",
                database="unreachable",
                last_success=None,
                age_seconds=None,
                stale_after=settings.api.stale_after,
            )
        health, response.status_code = health_of(last_success, settings.api.stale_after)
        return health

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics",
        response_class=PrometheusResponse,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4."}},
    )
    def prometheus() -> PrometheusResponse:
        with session_scope(engine) as session:
            collected = metrics.collect(session, utcnow())
        return PrometheusResponse(metrics.render(collected))

    app.include_router(page.router(engine, page.known_tags(runtime)))
    if settings.api.token:
        app.add_middleware(TokenAuth, token=settings.api.token)
        app.openapi = _with_bearer(app.openapi)  # type: ignore[method-assign]
    return app


def _with_bearer(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The OpenAPI schema saying that every operation but the open paths needs the bearer token."""

    def schema() -> dict[str, Any]:
        document = openapi()
        document.setdefault("components", {})["securitySchemes"] = {
            "token": {"type": "http", "scheme": "bearer"}
        }
        document["security"] = [{"token": []}]
        for path in OPEN_PATHS:
            for operation in document["paths"].get(path, {}).values():
                operation["security"] = []
        return document

    return schema
