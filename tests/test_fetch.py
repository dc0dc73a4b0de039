"""The fetcher against a real local server that misbehaves on purpose (tests/feedserver.py; the
`feed_server` fixture comes through tests/conftest.py)."""

from __future__ import annotations

import asyncio
import socket
import time
import tracemalloc
from dataclasses import replace
from email.utils import formatdate

import pytest

from tests.feedserver import FeedServer, sample_feed
from worker import USER_AGENT
from worker.errors import ConfigError
from worker.ingest import fetch as fetch_module
from worker.ingest.fetch import (
    ACCEPT_ENCODING,
    Fetcher,
    FetchLimits,
    FetchRequest,
    FetchResult,
    is_public_address,
)

MIB = 1024 * 1024
# Small limits keep the slow cases quick. The server is on loopback, so private networks are allowed
# except in the tests of that policy.
LIMITS = FetchLimits(allow_private_networks=True, connect_timeout=2.0, timeout=5.0, max_body_bytes=MIB)
PRIVATE_REFUSED = "(set http.allow_private_networks = true to allow)"
ONLY_HTTP = "(only http and https)"
# A fetcher that ignores its own deadline fails the test after this long instead of hanging it.
HANG_GUARD = 20.0


def fetch(
    url: str, etag: str | None = None, last_modified: str | None = None, **limits: object
) -> FetchResult:
    results = fetch_many([url], etag=etag, last_modified=last_modified, **limits)
    return results[0]


def fetch_many(
    urls: list[str], etag: str | None = None, last_modified: str | None = None, **limits: object
) -> list[FetchResult]:
    """Fetch `urls` concurrently through one Fetcher; checks what every result must satisfy."""

    async def run() -> list[FetchResult]:
        fetcher = Fetcher(replace(LIMITS, **limits))  # type: ignore[arg-type]
        async with fetcher, asyncio.timeout(HANG_GUARD):
            requests = [FetchRequest(url, etag, last_modified) for url in urls]
            return await asyncio.gather(*(fetcher.fetch(request) for request in requests))

    results = asyncio.run(run())
    for result in results:
        assert result.elapsed > 0
        if result.error is not None:
            assert "\n" not in result.error and result.body is None
    return results


# --- success, headers, conditional GET -------------------------------------------------------------


def test_fetches_a_feed_with_its_validators(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/feed.xml"))
    assert result.error is None
    assert (result.status, result.body) == (200, sample_feed())
    assert result.final_url == result.url == feed_server.url("/feed.xml")
    assert result.etag and result.last_modified
    assert result.headers["etag"] == result.etag  # lower-case names
    assert result.headers["content-type"].startswith("application/rss+xml")
    assert not result.not_modified and result.permanent_url is None and result.fresh_for is None


def test_sends_user_agent_accept_and_accept_encoding(feed_server: FeedServer) -> None:
    fetch(feed_server.url("/feed.xml"))
    fetch(feed_server.url("/feed.xml"), user_agent="Custom/1.0")
    first, second = (seen.headers for seen in feed_server.requests("/feed.xml"))
    assert first["user-agent"] == USER_AGENT
    assert "Newswatch" in USER_AGENT and "https://" in USER_AGENT
    assert second["user-agent"] == "Custom/1.0"
    assert first["accept"].startswith("application/rss+xml, application/atom+xml")
    assert first["accept-encoding"] == ACCEPT_ENCODING == "gzip, deflate, br"
    assert "if-none-match" not in first and "if-modified-since" not in first


def test_conditional_get_with_etag_gets_304(feed_server: FeedServer) -> None:
    first = fetch(feed_server.url("/feed.xml"))
    second = fetch(feed_server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.not_modified, second.body, second.error) == (304, True, None, None)
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    sent = feed_server.requests("/feed.xml")[1].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == (first.etag, first.last_modified)


def test_conditional_get_with_last_modified_only_gets_304(feed_server: FeedServer) -> None:
    first = fetch(feed_server.url("/feed.xml"))
    second = fetch(feed_server.url("/feed.xml"), last_modified=first.last_modified)
    assert second.not_modified and second.status == 304


def test_changed_document_is_fetched_in_full(feed_server: FeedServer) -> None:
    url = feed_server.set("/news.xml", "<rss>old</rss>")
    first = fetch(url)
    feed_server.set("/news.xml", "<rss>new</rss>")
    second = fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.body, second.not_modified) == (200, b"<rss>new</rss>", False)
    assert second.etag != first.etag


def test_replacement_within_the_same_second_is_modified_since(feed_server: FeedServer) -> None:
    url = feed_server.set("/news.xml", "<rss>old</rss>", headers={"ETag": None})
    first = fetch(url)
    feed_server.set("/news.xml", "<rss>new</rss>", headers={"ETag": None})
    second = fetch(url, last_modified=first.last_modified)
    assert first.etag is None and (second.status, second.body) == (200, b"<rss>new</rss>")


def fetch_in_turn(urls: list[str], etag: str | None = None) -> list[FetchResult]:
    """Fetch `urls` one after another through one Fetcher (as a pass reaches a host's feeds in turn)."""

    async def run() -> list[FetchResult]:
        async with Fetcher(LIMITS) as fetcher, asyncio.timeout(HANG_GUARD):
            return [await fetcher.fetch(FetchRequest(url, etag)) for url in urls]

    return asyncio.run(run())


def test_a_304_leaves_its_connection_open_for_the_next_feed_of_the_host(feed_server: FeedServer) -> None:
    url = feed_server.url("/feed.xml")
    etag = fetch(url).etag
    results = fetch_in_turn([url, url, url], etag)
    assert [r.status for r in results] == [304, 304, 304]
    ports = {seen.client_port for seen in feed_server.requests("/feed.xml")[1:]}
    assert len(ports) == 1, "each 304 opened a connection of its own"


def test_idle_connections_of_the_least_recent_hosts_are_closed(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_module, "_IDLE_HOSTS", 1)
    by_ip = feed_server.url("/feed.xml")
    by_name = by_ip.replace("127.0.0.1", "localhost")
    results = fetch_in_turn([by_ip, by_ip, by_name, by_ip])
    assert all(r.status == 200 for r in results)
    first, again, _other, later = [s.client_port for s in feed_server.requests("/feed.xml")]
    assert first == again  # kept while the host was the most recent
    assert later != first  # closed once another host's pool was the one kept


def test_304_without_validators_keeps_those_of_the_request(feed_server: FeedServer) -> None:
    url = feed_server.set("/bare-304", b"", status=304)
    result = fetch(url, etag='"abc"', last_modified="Mon, 06 May 2024 08:00:00 GMT")
    assert result.not_modified
    assert (result.etag, result.last_modified) == ('"abc"', "Mon, 06 May 2024 08:00:00 GMT")


def test_non_ascii_etag_is_sent_back_without_failing(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/feed.xml"), etag='"Қ-1"')
    assert result.error is None and result.status == 200


def test_empty_body_is_a_success(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/empty"))
    assert (result.status, result.body, result.error) == (200, b"", None)


# --- bodies: compression and the size cap ----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "br"])
def test_compressed_bodies_are_inflated(feed_server: FeedServer, encoding: str) -> None:
    body = sample_feed() * 50
    result = fetch(feed_server.set("/packed", body, encoding=encoding))
    assert result.error is None
    assert result.body == body


def test_unsupported_content_encoding_is_an_error(feed_server: FeedServer) -> None:
    result = fetch(feed_server.set("/zstd", b"\x28\xb5\x2f\xfd", headers={"Content-Encoding": "zstd"}))
    assert result.error == "unsupported Content-Encoding: zstd"


def test_corrupt_gzip_is_an_error(feed_server: FeedServer) -> None:
    url = feed_server.set("/corrupt", b"\x1f\x8b not gzip at all", headers={"Content-Encoding": "gzip"})
    result = fetch(url)
    assert result.error is not None and result.error.startswith("could not decompress the body")


def test_body_of_exactly_the_cap_is_accepted(feed_server: FeedServer) -> None:
    result = fetch(feed_server.set("/at-cap", b"x" * MIB))
    assert result.error is None and result.body is not None and len(result.body) == MIB


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_body_over_the_cap_is_refused(feed_server: FeedServer, encoding: str | None) -> None:
    # Compressed, the body is small on the wire: only its inflated size is over the cap.
    result = fetch(feed_server.set("/over-cap", b"x" * (MIB + 1), encoding=encoding))
    assert result.error == "body larger than 1 MiB"
    assert result.status is None


def test_endless_body_is_capped(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/endless"))
    assert result.error == "body larger than 1 MiB"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compression_bomb_stops_early(feed_server: FeedServer, encoding: str) -> None:
    url = feed_server.behave("/bomb", "compression-bomb", size=64 * MIB, encoding=encoding)
    tracemalloc.start()
    try:
        result = fetch(url)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.error == "body larger than 1 MiB"  # not a timeout: it stopped early
    # Inflating a whole read of the bomb at once would take up to 64 MiB.
    assert peak < 8 * MIB


# --- time limits --------------------------------------------------------------------------------


def test_slow_drip_hits_the_overall_deadline(feed_server: FeedServer) -> None:
    # A byte every 0.1 s never trips a per-read timeout; only the whole-request deadline stops it.
    url = feed_server.behave("/drip", "slow-drip", interval=0.1)
    result = fetch(url, timeout=1.5)
    assert result.error == "timed out after 1.5 s"
    assert result.status is None
    assert 1.5 <= result.elapsed < 4.0


def test_slow_answer_within_the_deadline_succeeds(feed_server: FeedServer) -> None:
    url = feed_server.behave("/slowish", "slow", delay=0.3)
    result = fetch(url, timeout=1.5)
    assert result.error is None and result.body == sample_feed()
    assert result.elapsed >= 0.3


# --- redirects ----------------------------------------------------------------------------------


def test_chain_of_301_sets_the_permanent_url(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/moved-301"))
    assert result.error is None and result.body == sample_feed()
    assert result.final_url == result.permanent_url == feed_server.url("/feed.xml")
    hops = ["/moved-301", "/moved-301?hop=1", "/moved-301?hop=2", "/feed.xml"]
    assert [feed_server.hits(hop) for hop in hops] == [1, 1, 1, 1]


def test_308_sets_the_permanent_url(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/permanent-308"))
    assert result.permanent_url == feed_server.url("/feed.xml")


@pytest.mark.parametrize("statuses", [(302,), (307,), (301, 302, 301), (308, 303)])
def test_a_temporary_hop_means_no_permanent_move(feed_server: FeedServer, statuses: tuple[int, ...]) -> None:
    result = fetch(feed_server.behave("/hops", "redirect", to="/feed.xml", statuses=statuses))
    assert result.error is None and result.body == sample_feed()
    assert result.final_url == feed_server.url("/feed.xml")
    assert result.permanent_url is None


def test_permanent_redirect_to_an_error_does_not_move_the_feed(feed_server: FeedServer) -> None:
    result = fetch(feed_server.behave("/to-404", "redirect", to="/missing", statuses=(301,)))
    assert result.error == "HTTP 404 Not Found"
    assert result.final_url == feed_server.url("/missing")
    assert result.permanent_url is None


def test_redirect_loop_is_an_error(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/redirect-loop"))
    assert result.error == "redirect loop"
    assert feed_server.hits("/redirect-loop") == feed_server.hits("/redirect-loop?again=1") == 1


def test_five_redirects_are_followed_six_are_too_many(feed_server: FeedServer) -> None:
    five = fetch(feed_server.behave("/five", "redirect", to="/feed.xml", statuses=[301] * 5))
    six = fetch(feed_server.behave("/six", "redirect", to="/feed.xml", statuses=[301] * 6))
    assert five.error is None and five.permanent_url == feed_server.url("/feed.xml")
    assert six.error == "too many redirects (max 5)"
    assert feed_server.hits("/six?hop=5") == 1 and feed_server.hits("/feed.xml") == 1  # from `five` only


def test_redirect_to_another_scheme_is_an_error(feed_server: FeedServer) -> None:
    url = feed_server.set("/to-ftp", b"", status=302, headers={"Location": "ftp://example.org/feed"})
    result = fetch(url)
    assert result.error == "redirect to unsupported URL scheme 'ftp': 'ftp://example.org/feed'"


def test_redirect_without_location_is_an_error(feed_server: FeedServer) -> None:
    result = fetch(feed_server.set("/nowhere", b"", status=302))
    assert result.error == "HTTP 302 Found without a Location header"
    assert result.status == 302


# --- error statuses -----------------------------------------------------------------------------


def test_410_marks_the_feed_gone(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/gone"))
    assert (result.status, result.gone) == (410, True)
    assert result.error == "HTTP 410 Gone: the feed was removed"


def test_429_with_retry_after_in_seconds(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/rate-limited"))
    assert (result.status, result.retry_after) == (429, 120.0)
    assert result.error == "HTTP 429 Too Many Requests (retry after 120 s)"
    assert not result.gone


def test_429_with_retry_after_as_http_date(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/rate-limited-date"))
    assert result.status == 429
    assert result.retry_after is not None and 118 <= result.retry_after <= 121


def test_retry_after_in_the_past_is_zero(feed_server: FeedServer) -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    result = fetch(feed_server.set("/past", b"", status=429, headers=headers))
    assert result.retry_after == 0.0


def test_unreadable_retry_after_is_ignored(feed_server: FeedServer) -> None:
    result = fetch(feed_server.set("/garbled", b"", status=503, headers={"Retry-After": "soon"}))
    assert result.retry_after is None
    assert result.error == "HTTP 503 Service Unavailable"


def test_503_with_retry_after(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/unavailable"))
    assert (result.status, result.retry_after) == (503, 30.0)
    assert result.error == "HTTP 503 Service Unavailable (retry after 30 s)"


@pytest.mark.parametrize(
    ("path", "error"), [("/server-error", "HTTP 500 Internal Server Error"), ("/none", "HTTP 404 Not Found")]
)
def test_other_error_statuses(feed_server: FeedServer, path: str, error: str) -> None:
    result = fetch(feed_server.url(path))
    assert result.error == error
    assert result.retry_after is None and not result.gone and result.body is None


# --- freshness ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "fresh_for"),
    [
        ({"Cache-Control": "max-age=3600"}, 3600.0),
        ({"Cache-Control": 'public, max-age="600"', "Age": "100"}, 500.0),
        ({"Cache-Control": "max-age=60", "Expires": "Wed, 21 Oct 2015 07:28:00 GMT"}, 60.0),
        ({"Cache-Control": "no-cache, max-age=600"}, None),
        ({"Cache-Control": "no-store"}, None),
        ({"Expires": "0"}, 0.0),
        ({"Expires": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({}, None),
    ],
)
def test_fresh_for(feed_server: FeedServer, headers: dict[str, str], fresh_for: float | None) -> None:
    assert fetch(feed_server.set("/fresh", sample_feed(), headers=headers)).fresh_for == fresh_for


def test_fresh_for_from_expires(feed_server: FeedServer) -> None:
    expires = formatdate(time.time() + 600, usegmt=True)
    result = fetch(feed_server.set("/expires", sample_feed(), headers={"Expires": expires}))
    assert result.fresh_for is not None and 598 <= result.fresh_for <= 600


def test_fresh_for_is_reported_on_304(feed_server: FeedServer) -> None:
    first = fetch(feed_server.url("/max-age"))
    second = fetch(feed_server.url("/max-age"), etag=first.etag)
    assert second.not_modified and second.fresh_for == first.fresh_for == 3600.0


# --- network policy -----------------------------------------------------------------------------


def test_loopback_is_refused_without_sending_a_request(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/feed.xml"), allow_private_networks=False)
    assert result.error == f"refused private address 127.0.0.1 for host 127.0.0.1 {PRIVATE_REFUSED}"
    assert result.status is None
    assert feed_server.hits("/feed.xml") == 0


def test_name_resolving_to_loopback_is_refused(feed_server: FeedServer) -> None:
    result = fetch(f"http://localhost:{feed_server.port}/feed.xml", allow_private_networks=False)
    assert result.error is not None and result.error.startswith("refused private address ")
    assert result.error.endswith(f" for host localhost {PRIVATE_REFUSED}")
    assert feed_server.hits("/feed.xml") == 0


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("100.64.0.1", "100.64.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[::ffff:10.0.0.1]", "::ffff:10.0.0.1"),
        ("[fe80::1]", "fe80::1"),
    ],
)
def test_private_literal_addresses_are_refused(feed_server: FeedServer, host: str, address: str) -> None:
    # The loopback forms would reach the test server (IPv4-mapped connects to it on dual-stack systems).
    result = fetch(f"http://{host}:{feed_server.port}/feed.xml", allow_private_networks=False)
    assert result.error == f"refused private address {address} for host {address} {PRIVATE_REFUSED}"
    assert feed_server.hits("/feed.xml") == 0


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "::", "fe80::1", "fc00::1",
     "ff02::1", "2001:db8::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1"],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:84e5", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


# --- bad URLs and broken connections ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://example.org/feed", f"unsupported URL scheme 'ftp' in 'ftp://example.org/feed' {ONLY_HTTP}"),
        ("file:///etc/passwd", f"unsupported URL scheme 'file' in 'file:///etc/passwd' {ONLY_HTTP}"),
        ("javascript:alert(1)", f"unsupported URL scheme 'javascript' in 'javascript:alert(1)' {ONLY_HTTP}"),
        ("example.org/feed", "invalid URL 'example.org/feed': no scheme (expected http:// or https://)"),
        ("", "invalid URL '': no scheme (expected http:// or https://)"),
        ("http://", "invalid URL 'http://': no host"),
    ],
)
def test_bad_urls_are_errors(url: str, error: str) -> None:
    result = fetch(url)
    assert result.error == error
    assert (result.url, result.final_url, result.status) == (url, url, None)


def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert fetch(f"http://127.0.0.1:{port}/feed.xml").error == "connection refused"


def test_tls_to_a_plain_http_server_is_a_tls_error(feed_server: FeedServer) -> None:
    result = fetch(f"https://127.0.0.1:{feed_server.port}/feed.xml")
    assert result.error is not None and result.error.startswith("TLS error: ")
    assert "[SSL" not in result.error and "_ssl.c" not in result.error


def test_server_hanging_up_is_an_error(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/hang-up"))
    assert result.error == "HTTP protocol error: server disconnected without sending a response"


# --- per-host concurrency -----------------------------------------------------------------------


@pytest.mark.parametrize("per_host_limit", [2, 3])
def test_per_host_limit_caps_concurrent_requests(feed_server: FeedServer, per_host_limit: int) -> None:
    url = feed_server.behave("/slowly", "slow", delay=0.3)
    results = fetch_many([url] * 6, per_host_limit=per_host_limit)
    assert [result.error for result in results] == [None] * 6
    assert feed_server.max_concurrent == per_host_limit


def test_hosts_have_separate_limits(feed_server: FeedServer) -> None:
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)}
    if "127.0.0.1" not in addresses:
        pytest.skip("localhost does not resolve to 127.0.0.1 here")
    feed_server.behave("/slowly", "slow", delay=0.3)
    urls = [f"http://{host}:{feed_server.port}/slowly" for host in ("127.0.0.1", "localhost")] * 2
    results = fetch_many(urls, per_host_limit=1)
    assert [result.error for result in results] == [None] * 4
    assert feed_server.max_concurrent == 2


# --- limits -------------------------------------------------------------------------------------


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError) as raised:
        FetchLimits(per_host_limit=0, timeout=-1, max_redirects=-1)
    assert raised.value.problems == [
        "http.timeout must be greater than 0, not -1",
        "http.per_host_limit must be greater than 0, not 0",
        "http.max_redirects must be 0 or more, not -1",
    ]
