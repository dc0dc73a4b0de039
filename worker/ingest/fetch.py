"""HTTP only: fetch one feed politely and defensively. No parsing, no database.

A feed server is untrusted input. Whatever it does — drip bytes forever, send a decompression bomb, redirect
in circles, point its DNS name at our private network — `Fetcher.fetch` returns a `FetchResult` whose `error`
is one line for the user; it does not raise.

Why it is built the way it is:
- Redirects are followed by hand, so each hop is counted, checked for loops and for its scheme, and the
  pipeline learns whether the feed moved for good (every hop 301/308).
- Bodies are read raw and inflated here, at most `_PIECE` bytes at a time, so the size cap applies to the
  decompressed size while it grows: a bomb is stopped after one piece past the cap, never inflated whole.
- httpx timeouts are per read, so a server dripping one byte a second never trips them; the whole request
  runs under one `asyncio.timeout`.
- The network policy lives in the connection layer (`_GuardedBackend`): the addresses it checks are the
  addresses it connects to. Checking a name first and letting the HTTP client resolve it again would let a
  DNS-rebinding server answer "public" to the check and "10.0.0.1" to the connection.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import math
import re
import socket
import ssl
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, TypeVar

import brotli
import httpcore
import httpx

from worker import USER_AGENT
from worker.errors import ConfigError, FetchError

# Every default is a named constant here and documented in config/newswatch.toml.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BODY_BYTES = 15 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_PER_HOST_LIMIT = 2

# Feed types first; a generic XML or JSON answer is still worth parsing, and anything beats a 406.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.7"
)
# Exactly the codings `_decoder_for` inflates.
ACCEPT_ENCODING = "gzip, deflate, br"

# Hosts whose idle connections are kept for their next request, and for how long. The total number of
# connections in use is bounded by the per-host semaphores and the caller's own concurrency.
_IDLE_HOSTS = 64
_KEEPALIVE_EXPIRY = 5.0
# Largest piece inflated in one step: the cap can be overshot by at most this much.
_PIECE = 64 * 1024
# Longest error message; the rest of a server's prose is cut.
_MAX_ERROR_CHARS = 300

_SCHEMES = ("http", "https")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_GONE = 410
_NOT_MODIFIED = 304
# Addresses in 64:ff9b::/96 are IPv4 addresses reached through NAT64 (IPv6-only hosts); judge the IPv4 one.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GZIP_WBITS = zlib.MAX_WBITS | 16
# "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)" → "wrong version number".
_SSL_NOISE = re.compile(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$")

_E = TypeVar("_E", bound=BaseException)


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT  # the whole request, body included
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # enforced on the decompressed size, while streaming
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    allow_private_networks: bool = False
    per_host_limit: int = DEFAULT_PER_HOST_LIMIT
    user_agent: str = USER_AGENT

    def __post_init__(self) -> None:
        # A zero semaphore would hang every fetch of a host; say so when the limits are made instead.
        problems = [
            f"http.{name} must be greater than 0, not {value}"
            for name, value in (
                ("connect_timeout", self.connect_timeout),
                ("timeout", self.timeout),
                ("max_body_bytes", self.max_body_bytes),
                ("per_host_limit", self.per_host_limit),
            )
            if not value > 0
        ]
        if self.max_redirects < 0:
            problems.append(f"http.max_redirects must be 0 or more, not {self.max_redirects}")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class FetchRequest:
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """What happened to one request. `error` is a one-line message for the user when it failed."""

    url: str  # the URL that was requested
    final_url: str  # after redirects
    status: int | None = None  # final HTTP status; None when no response arrived
    body: bytes | None = None  # None when not modified or failed
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    # The validators to send next time; on a 304 without them, the request's own are kept.
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # 304
    # Set when every redirect hop was 301/308 and the final answer was a success: the feed moved.
    permanent_url: str | None = None
    gone: bool = False  # 410: the feed is to be disabled
    retry_after: float | None = None  # seconds, from Retry-After on 429/503 (seconds or HTTP-date)
    fresh_for: float | None = None  # seconds, from Cache-Control max-age or Expires
    error: str | None = None
    elapsed: float = 0.0


class Fetcher:
    """Fetches feeds, at most `per_host_limit` at a time per host, each host on a pool of its own."""

    def __init__(self, limits: FetchLimits) -> None:
        self._limits = limits
        self._headers = {
            b"User-Agent": limits.user_agent.encode(),
            b"Accept": ACCEPT.encode(),
            b"Accept-Encoding": ACCEPT_ENCODING.encode(),
        }
        # Per-read limits; the whole request is bounded by `limits.timeout` in `_exchange`.
        self._timeouts = {"timeout": httpx.Timeout(limits.timeout, connect=limits.connect_timeout).as_dict()}
        self._hosts = _Hosts(limits.per_host_limit, _GuardedBackend(limits.allow_private_networks))

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._hosts.aclose()

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """Fetch one feed; every failure of the network or the server comes back as `error`."""
        started = time.monotonic()
        result = await self._fetch(request)
        return replace(result, elapsed=time.monotonic() - started)

    async def _fetch(self, request: FetchRequest) -> FetchResult:
        current = request.url
        try:
            url = _http_url(request.url)
            current = str(url)
            headers = _conditional_headers(request)
            budget = self._limits.timeout
            seen = {current}
            hops: list[int] = []  # statuses of the redirects followed
            while True:
                reply, budget = await self._exchange(url, headers, budget)
                location = reply.headers.get("location")
                if reply.status not in _REDIRECTS or location is None:
                    return _result(request, reply, hops)
                if len(hops) == self._limits.max_redirects:
                    raise FetchError(f"too many redirects (max {self._limits.max_redirects})")
                url = _redirect_target(reply.url, location)
                current = str(url)
                if current in seen:
                    raise FetchError("redirect loop")
                seen.add(current)
                hops.append(reply.status)
        except TimeoutError:
            error = f"timed out after {self._limits.timeout:g} s"
        except (FetchError, httpx.HTTPError, httpx.InvalidURL, OSError, zlib.error, brotli.error) as exc:
            error = self._describe(exc)
        return FetchResult(url=request.url, final_url=current, error=error)

    async def _exchange(
        self, url: httpx.URL, headers: dict[bytes, bytes], budget: float
    ) -> tuple[_Reply, float]:
        """One request under the host's semaphore and the remaining time budget, which is returned.

        Waiting for the semaphore is not charged: a feed queued behind its host's other feeds has not
        been slow.
        """
        async with self._hosts.use(url.host) as transport:
            started = time.monotonic()
            try:
                async with asyncio.timeout(budget):
                    reply = await self._send(transport, url, headers)
            finally:
                budget -= time.monotonic() - started
        return reply, budget

    async def _send(
        self, transport: _GuardedTransport, url: httpx.URL, headers: dict[bytes, bytes]
    ) -> _Reply:
        # The transport itself, not an httpx client: redirects, decoding and limits are ours already, and
        # the client's per-request work (cookies, auth, hooks, merging) cost more than the request.
        request = httpx.Request("GET", url, headers={**self._headers, **headers}, extensions=self._timeouts)
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            body = await self._read_body(response) if response.is_success else None
            if response.status_code == _NOT_MODIFIED:
                # Read to its (empty) end, so the connection goes back to the pool for the next feed.
                await self._read_body(response)
        finally:
            # Closing an unread response drops its connection: a redirect's or an error's body is not read.
            await response.aclose()
        return _Reply(url=url, status=response.status_code, headers=response.headers, body=body)

    async def _read_body(self, response: httpx.Response) -> bytes:
        cap = self._limits.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(_too_large(cap))
        decoder = _decoder_for(response.headers.get("content-encoding", ""))
        body = bytearray()
        received = 0
        async for chunk in response.aiter_raw():
            # The compressed size is capped too: a stream that inflates to nothing must still end.
            received += len(chunk)
            if received > cap:
                raise FetchError(_too_large(cap))
            for piece in decoder.decode(chunk):
                body += piece
                if len(body) > cap:
                    raise FetchError(_too_large(cap))
        return bytes(body)

    def _describe(self, exc: BaseException) -> str:
        """A one-line message for the user; the exception types are httpx's, the wording ours."""
        if isinstance(exc, FetchError):
            message = str(exc)
        elif (tls := _cause(exc, ssl.SSLError)) is not None:
            message = f"TLS error: {_ssl_reason(tls)}"
        elif isinstance(exc, httpx.ConnectTimeout):
            message = f"connection timed out after {self._limits.connect_timeout:g} s"
        elif isinstance(exc, httpx.TimeoutException):
            message = f"timed out after {self._limits.timeout:g} s"
        elif _cause(exc, ConnectionRefusedError) is not None:
            message = "connection refused"
        elif isinstance(exc, httpx.ConnectError):
            message = f"could not connect: {_sentence(exc)}"
        elif isinstance(exc, httpx.ProtocolError):
            message = f"HTTP protocol error: {_sentence(exc)}"
        elif isinstance(exc, httpx.TransportError | OSError):
            message = f"network error: {_sentence(exc)}"
        elif isinstance(exc, zlib.error | brotli.error):
            message = f"could not decompress the body: {_sentence(exc)}"
        elif isinstance(exc, httpx.InvalidURL):
            message = f"invalid URL: {_sentence(exc)}"
        else:
            message = f"HTTP error: {_sentence(exc)}"
        return _one_line(message)


@dataclass(frozen=True)
class _Reply:
    """The part of one response that outlives its connection."""

    url: httpx.URL
    status: int
    headers: httpx.Headers
    body: bytes | None  # read for 2xx only


def _http_url(raw: str) -> httpx.URL:
    """`raw` as an absolute http(s) URL, or a FetchError saying why not."""
    try:
        url = httpx.URL(raw.strip())
    except httpx.InvalidURL as exc:
        raise FetchError(_one_line(f"invalid URL {raw!r}: {_sentence(exc)}")) from exc
    if not url.scheme:
        raise FetchError(f"invalid URL {raw!r}: no scheme (expected http:// or https://)")
    if url.scheme not in _SCHEMES:
        raise FetchError(f"unsupported URL scheme '{url.scheme}' in {raw!r} (only http and https)")
    if not url.host:
        raise FetchError(f"invalid URL {raw!r}: no host")
    return url


def _redirect_target(base: httpx.URL, location: str) -> httpx.URL:
    try:
        target = base.join(location.strip())
    except httpx.InvalidURL as exc:
        raise FetchError(_one_line(f"invalid redirect location {location!r}: {_sentence(exc)}")) from exc
    if target.scheme not in _SCHEMES:
        raise FetchError(_one_line(f"redirect to unsupported URL scheme '{target.scheme}': {location!r}"))
    return target


def _conditional_headers(request: FetchRequest) -> dict[bytes, bytes]:
    # As bytes: httpx refuses non-ASCII header strings, and a server may have sent a non-ASCII ETag
    # (httpx decodes response headers as UTF-8 when they are valid UTF-8).
    headers: dict[bytes, bytes] = {}
    if request.etag:
        headers[b"If-None-Match"] = request.etag.encode()
    if request.last_modified:
        headers[b"If-Modified-Since"] = request.last_modified.encode()
    return headers


def _result(request: FetchRequest, reply: _Reply, hops: list[int]) -> FetchResult:
    status = reply.status
    now = _server_now(reply.headers)
    base = FetchResult(
        url=request.url,
        final_url=str(reply.url),
        status=status,
        headers=dict(reply.headers.items()),
        fresh_for=_fresh_for(reply.headers, now),
    )
    if status == _NOT_MODIFIED or 200 <= status < 300:
        moved = bool(hops) and all(hop in _PERMANENT_REDIRECTS for hop in hops)
        return replace(
            base,
            body=reply.body,
            not_modified=status == _NOT_MODIFIED,
            etag=reply.headers.get("etag") or (request.etag if status == _NOT_MODIFIED else None),
            last_modified=reply.headers.get("last-modified")
            or (request.last_modified if status == _NOT_MODIFIED else None),
            permanent_url=str(reply.url) if moved else None,
        )
    error = f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
    if status in _REDIRECTS:
        return replace(base, error=f"{error} without a Location header")
    if status == _GONE:
        return replace(base, gone=True, error=f"{error}: the feed was removed")
    if status in _RETRY_AFTER_STATUSES:
        retry_after = _retry_after(reply.headers.get("retry-after"), now)
        if retry_after is not None:
            error = f"{error} (retry after {retry_after:g} s)"
        return replace(base, retry_after=retry_after, error=error)
    return replace(base, error=error)


def _server_now(headers: httpx.Headers) -> datetime:
    """The server's clock when it answered: Retry-After and Expires dates are read against it, which
    keeps a skewed local clock out of the arithmetic."""
    return _http_date(headers.get("date", "")) or datetime.now(UTC)


def _http_date(value: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    # "-0000" and obsolete forms come back naive; HTTP dates are always GMT.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _seconds(value: str) -> float | None:
    """A non-negative finite number of seconds, or None."""
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _retry_after(value: str | None, now: datetime) -> float | None:
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    when = _http_date(value)
    return None if when is None else max(0.0, (when - now).total_seconds())


def _fresh_for(headers: httpx.Headers, now: datetime) -> float | None:
    """Seconds the response stays fresh (RFC 9111 §4.2): lifetime from max-age or Expires, minus Age."""
    directives = _cache_directives(headers.get("cache-control", ""))
    if "no-cache" in directives or "no-store" in directives:
        return None
    lifetime = _seconds(directives.get("max-age") or "")
    if lifetime is None:
        expires = headers.get("expires")
        if expires is None:
            return None
        when = _http_date(expires)
        # An Expires that is not a date ("0", "-1") means already expired (RFC 9111 §5.3).
        lifetime = 0.0 if when is None else (when - now).total_seconds()
    age = _seconds(headers.get("age", "")) or 0.0
    return max(0.0, lifetime - age)


def _cache_directives(value: str) -> dict[str, str]:
    directives: dict[str, str] = {}
    for part in value.split(","):
        name, _, argument = part.partition("=")
        if name.strip():
            directives[name.strip().lower()] = argument.strip().strip('"')
    return directives


def _too_large(cap: int) -> str:
    mib = 1024 * 1024
    size = f"{cap // mib} MiB" if cap % mib == 0 else f"{cap} bytes"
    return f"body larger than {size}"


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]:
        """The output of `data`, in pieces of at most `_PIECE` bytes, produced lazily."""
        ...


class _Identity:
    def decode(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data


class _ZlibDecoder:
    """gzip, zlib or raw deflate. Data after the end of the stream is ignored, as browsers do."""

    def __init__(self, wbits: int) -> None:
        self._inflater = zlib.decompressobj(wbits)

    def decode(self, data: bytes) -> Iterator[bytes]:
        while not self._inflater.eof:
            piece = self._inflater.decompress(data, _PIECE)
            if piece:
                yield piece
            data = self._inflater.unconsumed_tail
            # A full piece may leave output inside zlib even when all input was taken: ask again.
            if not data and len(piece) < _PIECE:
                return


class _DeflateDecoder:
    """HTTP "deflate" is meant to be zlib-wrapped, but many servers send raw deflate; the first two bytes
    tell them apart."""

    def __init__(self) -> None:
        self._head = b""
        self._inner: _ZlibDecoder | None = None

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._inner is None:
            self._head += data
            if len(self._head) < 2:
                return
            cmf, flg = self._head[0], self._head[1]
            zlib_wrapped = (cmf & 0x0F) == zlib.DEFLATED and ((cmf << 8) | flg) % 31 == 0
            self._inner = _ZlibDecoder(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        yield from self._inner.decode(data)


class _BrotliDecoder:
    def __init__(self) -> None:
        self._inflater = brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        # Needs brotli >= 1.2 (output_buffer_limit); older versions inflate a whole chunk at once.
        piece = self._inflater.process(data, output_buffer_limit=_PIECE)
        while True:
            if piece:
                yield piece
            if self._inflater.can_accept_more_data():
                return
            piece = self._inflater.process(b"", output_buffer_limit=_PIECE)


def _decoder_for(content_encoding: str) -> _Decoder:
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return _Identity()
    if coding in ("gzip", "x-gzip"):
        return _ZlibDecoder(_GZIP_WBITS)
    if coding == "deflate":
        return _DeflateDecoder()
    if coding == "br":
        return _BrotliDecoder()
    # We only ask for these; stacked codings ("gzip, br") are not worth the code.
    raise FetchError(_one_line(f"unsupported Content-Encoding: {content_encoding}"))


def is_public_address(address: str) -> bool:
    """Whether `address` may be fetched when private networks are not allowed.

    IPv4-mapped (::ffff:10.0.0.1) and NAT64 (64:ff9b::a00:1) addresses are judged by their IPv4 address.
    """
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        # Also catches what has no flag of its own, e.g. shared address space (100.64.0.0/10).
        or not ip.is_global
    )


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves names itself, applies the network policy, and connects only to the addresses it checked.

    This is the DNS-rebinding defence: the connection is pinned to the checked address, because no second
    lookup happens. TLS still verifies the certificate against the host name, which httpcore passes to
    `start_tls` separately.
    """

    def __init__(self, allow_private_networks: bool) -> None:
        self._allow_private_networks = allow_private_networks
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await _resolve(host, port)
                if not self._allow_private_networks:
                    _refuse_private(host, addresses)
                return await self._connect_any(addresses, port, local_address, socket_options)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {host} within {timeout:g} s") from exc

    async def _connect_any(
        self,
        addresses: list[str],
        port: int,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        """The first address that accepts, in resolver order (which already prefers what is reachable)."""
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # getaddrinfo returns at least one address or raises
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"could not resolve host {host}: {exc.strerror}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _refuse_private(host: str, addresses: list[str]) -> None:
    # Every address must pass: a name that also resolves privately is refused, not half-trusted.
    for address in addresses:
        if not is_public_address(address):
            raise FetchError(
                f"refused private address {address} for host {host} "
                "(set http.allow_private_networks = true to allow)"
            )


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool that connects through `_GuardedBackend`.

    httpx takes no network backend, so the pool it built is replaced by an equal one that has ours. This
    relies on the private `_pool` attribute, stable across httpx 0.x (pinned below 1 in pyproject.toml).
    """

    def __init__(self, backend: _GuardedBackend, ssl_context: ssl.SSLContext, connections: int) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=_KEEPALIVE_EXPIRY,
            network_backend=backend,
        )


@dataclass
class _Host:
    slots: asyncio.Semaphore
    transport: _GuardedTransport
    users: int = 0  # fetches holding or waiting for a slot


class _Hosts:
    """A semaphore and a small connection pool per host.

    One pool per host rather than one shared pool: httpcore looks through every connection of a pool for
    each request it places, so a pool shared by many hosts costs more per request the more hosts are
    polled at once. The pools of hosts not in use are kept for the next request, `_IDLE_HOSTS` of them
    (the most recently used); older ones are closed, so idle connections stay bounded however many hosts
    the feeds are on.
    """

    def __init__(self, per_host: int, backend: _GuardedBackend) -> None:
        self._per_host = per_host
        self._backend = backend
        # One context for every pool: building one loads the CA certificates, which is slow.
        self._ssl_context = httpx.create_ssl_context(trust_env=False)
        self._busy: dict[str, _Host] = {}
        self._idle: OrderedDict[str, _Host] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def use(self, host: str) -> AsyncIterator[_GuardedTransport]:
        """The host's transport, while holding one of its slots."""
        entry = self._busy.get(host) or self._idle.pop(host, None)
        if entry is None:
            transport = _GuardedTransport(self._backend, self._ssl_context, self._per_host)
            entry = _Host(asyncio.Semaphore(self._per_host), transport)
        self._busy[host] = entry
        entry.users += 1
        try:
            async with entry.slots:
                yield entry.transport
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._busy[host]
                self._idle[host] = entry
                if len(self._idle) > _IDLE_HOSTS:
                    _, oldest = self._idle.popitem(last=False)
                    # Closed in the background: this may run while the fetch is being cancelled.
                    task = asyncio.ensure_future(oldest.transport.aclose())
                    self._closing.add(task)
                    task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        hosts = [*self._busy.values(), *self._idle.values()]
        self._busy.clear()
        self._idle.clear()
        await asyncio.gather(*(h.transport.aclose() for h in hosts), *self._closing, return_exceptions=True)


def _cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of type `kind` in `exc`'s chain of causes, or None."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
    return None


def _ssl_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    return _SSL_NOISE.sub("", str(exc.strerror or exc)) or type(exc).__name__


def _sentence(exc: BaseException) -> str:
    """An exception's text as the tail of our sentence: no trailing period, lower-case start."""
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    # "Server disconnected" reads on as "server disconnected"; "SSL" and "HTTP" keep their capitals.
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_ERROR_CHARS else line[: _MAX_ERROR_CHARS - 1] + "…"
