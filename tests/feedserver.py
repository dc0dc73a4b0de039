"""A local HTTP server that serves feeds and misbehaves on purpose, for every test that fetches.

    with FeedServer() as server:                      # or the `feed_server` fixture
        url = server.set("/news.xml", rss("News", [{"title": "One", "guid": "1"}]))
        ...                                           # fetch `url`
        assert server.hits("/news.xml") == 1

Static documents (`set`) answer conditional GETs: their ETag or Last-Modified gets a 304 until the document is
replaced. Misbehaviours are bound to a path with `behave(path, name, **params)`; see `BEHAVIOURS` for the
names and each function's keyword parameters. Ready-made paths exist for the common cases (listed in
`_install_canned`), so `server.url("/slow-drip")` works without setup.

The server binds 127.0.0.1 on an ephemeral port and answers from daemon threads. Streaming answers end when
the client goes away, when a write blocks longer than the socket timeout, or when the server stops, so no
test waits on them at shutdown.
"""

from __future__ import annotations

import hashlib
import socketserver
import sys
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from inspect import signature
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import brotli
import pytest

RSS_TYPE = "application/rss+xml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
WRONG_CHARSET_TYPE = "application/rss+xml; charset=windows-1251"  # for UTF-8 bytes
# How long a handler waits on a silent or stalled client before giving up on it.
SOCKET_TIMEOUT = 5.0
HUGE_TITLE_CHARS = 5_000_000
BOMB_WRITE = 64 * 1024
# How often the accept loop looks for a stop request: shutdown waits up to this long.
POLL_INTERVAL = 0.02
_MIB = 1024 * 1024
_ZEROS = bytes(_MIB)
# Content-Encoding sent for each `encoding` name accepted by `set` and the compression bomb.
_CODINGS = {"gzip": "gzip", "deflate": "deflate", "deflate-raw": "deflate", "br": "br"}


def rss(title: str, items: Iterable[Mapping[str, str]] = (), *, link: str = "https://example.org/") -> bytes:
    """An RSS 2.0 document, UTF-8. Each item maps element names (title, link, guid, description, pubDate,
    …) to their text, which is escaped."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>{escape(link)}</link><description>test feed</description>",
    ]
    for item in items:
        parts.append("<item>")
        parts.extend(f"<{name}>{escape(text)}</{name}>" for name, text in item.items())
        parts.append("</item>")
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


@cache
def sample_feed() -> bytes:
    """A small valid feed with two items, served at /feed.xml."""
    return rss(
        "Sample feed",
        [
            {
                "title": "First story",
                "link": "https://example.org/news/1",
                "guid": "https://example.org/news/1",
                "description": "The first story of the sample feed.",
                "pubDate": "Mon, 06 May 2024 08:00:00 GMT",
            },
            {
                "title": "Second story",
                "link": "https://example.org/news/2",
                "guid": "https://example.org/news/2",
                "description": "The second story of the sample feed.",
                "pubDate": "Tue, 07 May 2024 09:30:00 GMT",
            },
        ],
    )


@cache
def huge_title_feed() -> bytes:
    """A feed whose title alone is HUGE_TITLE_CHARS characters."""
    return rss("T" * HUGE_TITLE_CHARS, [{"title": "Only story", "guid": "huge-1"}])


@cache
def wrong_charset_feed() -> bytes:
    """UTF-8 bytes (Kazakh text) that declare windows-1251 in the XML prolog; served with the same wrong
    charset in Content-Type."""
    body = rss("Қазақстан жаңалықтары", [{"title": "Астанадағы жиын", "guid": "kz-1"}])
    return body.replace(b'encoding="utf-8"', b'encoding="windows-1251"', 1)


HTML_PAGE = (
    b"<!doctype html><html><head><title>Not a feed</title>"
    b'<link rel="alternate" type="application/rss+xml" href="/feed.xml"></head>'
    b"<body><h1>Welcome</h1><p>This is a web page, not a feed.</p></body></html>\n"
)


class Headers(dict[str, str]):
    """Request headers under lower-case names, looked up in any case: `headers["If-None-Match"]`."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class SeenRequest:
    method: str
    target: str  # path and query string, as requested
    headers: Headers
    client_port: int  # tells the client's connections apart


@dataclass(frozen=True)
class _Document:
    body: bytes  # as sent, after any Content-Encoding
    status: int
    headers: dict[str, str]
    etag: str
    last_modified: float  # seconds since the epoch, whole


@dataclass(frozen=True)
class _Behaviour:
    run: Callable[..., None]
    params: dict[str, Any]


class Exchange:
    """What a behaviour sees of one request: its path and query, and ways to answer it."""

    def __init__(self, handler: _Handler, stopping: threading.Event, path: str, query: dict[str, str]):
        self.handler = handler
        self.path = path
        self.query = query
        self._stopping = stopping

    @property
    def alive(self) -> bool:
        """False once the server is stopping: streaming loops end."""
        return not self._stopping.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep, but wake when the server stops; True when the full time passed."""
        return not self._stopping.wait(seconds)

    def reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        """A complete answer with a Content-Length; the connection may be kept alive."""
        self.handler.send_response(status)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        if status not in (204, 304):  # these have no body, and no Content-Length (RFC 9110 §8.6)
            self.handler.send_header("Content-Length", str(len(body)))
        self.handler.end_headers()
        self.handler.wfile.write(body)

    def start_stream(self, headers: Mapping[str, str] | None = None) -> None:
        """A 200 whose body ends when the connection closes (no length, no chunking)."""
        self.handler.send_response(200)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.send_header("Connection", "close")
        self.handler.end_headers()
        self.handler.close_connection = True

    def write(self, data: bytes) -> None:
        """Raises OSError when the client has gone, which ends the behaviour."""
        if data:
            self.handler.wfile.write(data)


def _slow_drip(ex: Exchange, *, interval: float = 0.25, chunk: bytes = b"<!-- drip -->\n") -> None:
    """A feed that starts promptly, then trickles `chunk` every `interval` seconds, forever."""
    ex.start_stream({"Content-Type": RSS_TYPE})
    ex.write(b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>\n')
    while ex.wait(interval):
        ex.write(chunk)


def _endless(ex: Exchange, *, block_size: int = 64 * 1024) -> None:
    """A body that never ends, sent as fast as the client reads."""
    ex.start_stream({"Content-Type": RSS_TYPE})
    block = b"<!--" + b"-" * max(0, block_size - 8) + b"-->\n"
    while ex.alive:
        ex.write(block)


def _compression_bomb(ex: Exchange, *, size: int = 1 << 30, encoding: str = "gzip") -> None:
    """`size` zero bytes, compressed on the fly (gzip: about 1 KiB per MiB; br: far less).

    Written in writes of BOMB_WRITE bytes, so that a client reads big compressed chunks at once: a client
    that inflates a whole chunk in one go then shows it in its memory use (64 KiB of gzip → 64 MiB).
    """
    compress, finish = _compressor(encoding)
    ex.start_stream({"Content-Type": RSS_TYPE, "Content-Encoding": _CODINGS[encoding]})
    pending = bytearray()
    inflated = 0
    while inflated < size and ex.alive:
        block = _ZEROS[: size - inflated]
        pending += compress(block)
        inflated += len(block)
        if len(pending) >= BOMB_WRITE:
            ex.write(bytes(pending))
            pending.clear()
    ex.write(bytes(pending) + finish())


def _redirect(ex: Exchange, *, to: str, statuses: Iterable[int] = (301,)) -> None:
    """A chain of redirects, one hop per status (`path?hop=1`, `path?hop=2`, …), the last one to `to`."""
    chain = list(statuses)
    hop = int(ex.query.get("hop", "0"))
    location = to if hop == len(chain) - 1 else f"{ex.path}?hop={hop + 1}"
    ex.reply(chain[hop], headers={"Location": location})


def _redirect_loop(ex: Exchange, *, status: int = 302) -> None:
    """`path` → `path?again=1` → `path` → …"""
    location = ex.path if "again" in ex.query else f"{ex.path}?again=1"
    ex.reply(status, headers={"Location": location})


def _retry_after(ex: Exchange, *, status: int = 429, seconds: int = 120, http_date: bool = False) -> None:
    """`status` with Retry-After `seconds` from now, as a number or as an HTTP-date."""
    value = formatdate(time.time() + seconds, usegmt=True) if http_date else str(seconds)
    ex.reply(status, b"come back later\n", {"Retry-After": value, "Content-Type": TEXT_TYPE})


def _slow(ex: Exchange, *, delay: float = 0.5, body: bytes | None = None) -> None:
    """Waits `delay` seconds, then serves `body` (the sample feed by default)."""
    if ex.wait(delay):
        ex.reply(200, sample_feed() if body is None else body, {"Content-Type": RSS_TYPE})


def _hang_up(ex: Exchange) -> None:
    """Closes the connection without answering."""
    ex.handler.close_connection = True


BEHAVIOURS: dict[str, Callable[..., None]] = {
    "slow-drip": _slow_drip,
    "endless": _endless,
    "compression-bomb": _compression_bomb,
    "redirect": _redirect,
    "redirect-loop": _redirect_loop,
    "retry-after": _retry_after,
    "slow": _slow,
    "hang-up": _hang_up,
}


def _install_canned(server: FeedServer) -> None:
    """The ready-made paths; `set` or `behave` on the same path replaces them."""
    server.set("/feed.xml", sample_feed())
    server.behave("/slow-drip", "slow-drip")
    server.behave("/endless", "endless")
    server.behave("/gzip-bomb", "compression-bomb", encoding="gzip")
    server.behave("/brotli-bomb", "compression-bomb", encoding="br")
    server.behave("/redirect-loop", "redirect-loop")
    server.behave("/moved-301", "redirect", to="/feed.xml", statuses=(301, 301, 301))
    server.behave("/found-302", "redirect", to="/feed.xml", statuses=(302,))
    server.behave("/permanent-308", "redirect", to="/feed.xml", statuses=(308,))
    server.set("/gone", b"this feed is gone\n", status=410, content_type=TEXT_TYPE)
    server.behave("/rate-limited", "retry-after", status=429, seconds=120)
    server.behave("/rate-limited-date", "retry-after", status=429, seconds=120, http_date=True)
    server.behave("/unavailable", "retry-after", status=503, seconds=30)
    server.set("/server-error", b"internal error\n", status=500, content_type=TEXT_TYPE)
    server.set("/empty", b"")
    server.set("/html", HTML_PAGE, content_type=HTML_TYPE)
    server.set(
        "/wrong-charset", wrong_charset_feed(), content_type="application/rss+xml; charset=windows-1251"
    )
    server.set("/huge-title", huge_title_feed())
    server.set("/max-age", sample_feed(), headers={"Cache-Control": "max-age=3600"})
    server.behave("/slow", "slow")
    server.behave("/hang-up", "hang-up")


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1 served from a daemon thread; a context manager.

    Subclasses set up their own state, then call `_serve(httpd, name)`. `_stopping` is set first on exit, so
    handlers that wait or stream notice it and end.
    """

    _httpd: ThreadingHTTPServer
    _thread: threading.Thread

    def _serve(self, httpd: ThreadingHTTPServer, name: str) -> None:
        self._stopping = threading.Event()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(POLL_INTERVAL,), name=name, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class FeedServer(LoopbackServer):
    """A threaded HTTP server on 127.0.0.1 serving feeds; use it as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, _Document | _Behaviour] = {}
        self._seen: defaultdict[str, list[SeenRequest]] = defaultdict(list)
        self._active = 0
        self._peak = 0
        self._serve(_HTTPServer(self), "feed-server")
        _install_canned(self)

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def set(
        self,
        path: str,
        body: bytes | str,
        status: int = 200,
        headers: Mapping[str, str | None] | None = None,
        *,
        content_type: str = RSS_TYPE,
        encoding: str | None = None,
    ) -> str:
        """Publish or replace a static document at `path`; returns its URL.

        `headers` are added last and win; a None value removes a header (e.g. {"ETag": None} for a server
        without validators). `encoding` ("gzip", "deflate", "deflate-raw" or "br") compresses the body and
        sends it whatever the client accepts, as some servers do.
        """
        data = body.encode() if isinstance(body, str) else body
        etag = f'"{hashlib.sha1(data).hexdigest()[:16]}"'
        last_modified = float(int(time.time()))
        previous = self._route(path)
        if isinstance(previous, _Document) and previous.etag != etag:
            # HTTP dates have whole seconds: a replacement within the same second must still look newer
            # to a client that only sends If-Modified-Since.
            last_modified = max(last_modified, previous.last_modified + 1)
        sent: dict[str, str | None] = {"Content-Type": content_type}
        if status == 200:
            sent |= {"ETag": etag, "Last-Modified": formatdate(last_modified, usegmt=True)}
        if encoding is not None:
            compress, finish = _compressor(encoding)
            data = compress(data) + finish()
            sent["Content-Encoding"] = _CODINGS[encoding]
        sent |= headers or {}
        kept = {name: value for name, value in sent.items() if value is not None}
        document = _Document(data, status, kept, kept.get("ETag", ""), last_modified)
        with self._lock:
            self._routes[path] = document
        return self.url(path)

    def behave(self, path: str, name: str, **params: Any) -> str:
        """Bind `path` to the misbehaviour `name` (a key of BEHAVIOURS) with its keyword `params`."""
        if name not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(sorted(BEHAVIOURS))}")
        run = BEHAVIOURS[name]
        signature(run).bind(None, **params)  # a wrong parameter fails here, not in a server thread
        with self._lock:
            self._routes[path] = _Behaviour(run, params)
        return self.url(path)

    def hits(self, target: str) -> int:
        """How many requests arrived for exactly `target`, a path with its query string if any: the hops of
        a redirect chain are counted apart ("/old.xml", "/old.xml?hop=1", …)."""
        return len(self.requests(target))

    def requests(self, target: str) -> list[SeenRequest]:
        """The requests for exactly `target`, oldest first."""
        with self._lock:
            return list(self._seen[target])

    @property
    def max_concurrent(self) -> int:
        """The most requests answered at the same time so far, over all paths."""
        with self._lock:
            return self._peak

    def _route(self, path: str) -> _Document | _Behaviour | None:
        with self._lock:
            return self._routes.get(path)

    def _record(self, request: SeenRequest) -> None:
        with self._lock:
            self._seen[request.target].append(request)

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
            self._peak = max(self._peak, self._active)
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, feed_server: FeedServer) -> None:
        self.feed_server = feed_server
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the FQDN of the address, a reverse DNS query; the tests need none.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away is routine here; anything else is a bug in this file and is printed.
        if not isinstance(sys.exception(), OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT
    server: _HTTPServer

    def do_GET(self) -> None:
        feed_server = self.server.feed_server
        path, _, query_string = self.path.partition("?")
        headers = Headers((name.lower(), value) for name, value in self.headers.items())
        feed_server._record(SeenRequest(self.command, self.path, headers, self.client_address[1]))
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        with feed_server._in_flight():
            try:
                self._answer(feed_server, path, query, headers)
            except OSError:
                self.close_connection = True

    def _answer(self, feed_server: FeedServer, path: str, query: dict[str, str], headers: Headers) -> None:
        route = feed_server._route(path)
        exchange = Exchange(self, feed_server._stopping, path, query)
        if route is None:
            exchange.reply(404, b"not found\n", {"Content-Type": TEXT_TYPE})
        elif isinstance(route, _Behaviour):
            route.run(exchange, **route.params)
        elif route.status == 200 and _unchanged(headers, route):
            validators = ("ETag", "Last-Modified", "Cache-Control")
            exchange.reply(304, headers={k: v for k, v in route.headers.items() if k in validators})
        else:
            exchange.reply(route.status, route.body, route.headers)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest output is for failures."""


def _unchanged(headers: Headers, document: _Document) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or document.etag in tags
    if_modified_since = headers.get("If-Modified-Since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError):
        return False
    return document.last_modified <= since


def _compressor(encoding: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    """(compress, finish) for one of the names in _CODINGS."""
    if encoding == "br":
        brotli_compressor = brotli.Compressor(quality=5)
        return brotli_compressor.process, brotli_compressor.finish
    wbits = {"gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS, "deflate-raw": -zlib.MAX_WBITS}[encoding]
    zlib_compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return zlib_compressor.compress, zlib_compressor.flush


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A fresh FeedServer per test."""
    with FeedServer() as server:
        yield server
