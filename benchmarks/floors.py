"""Floors for the ingest benchmark: how fast the fixed components alone go on the same feeds.

Newswatch must use feedparser to parse and httpx to fetch (issue 2). These measure each alone, with
nothing of Newswatch around it, so a ratio against reader can be read against what the components allow:

- `parse DIR`: feedparser over every feed file in DIR (bytes from disk, no HTTP), with its sanitiser and
  relative-URI resolver off as Newswatch runs it; entries per CPU second of one core.
- `fetch FILE`: a conditional GET of each [url, etag, last_modified] in the JSON FILE through httpx's
  transport (one pool per host, 64 requests at a time, 2 per host, as Newswatch's defaults), reading each
  answer to its end; wall seconds and the statuses seen.

Each prints one JSON object. benchmarks/ingest.py runs them in child processes of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

CONCURRENCY = 64  # Newswatch's poll.concurrency default
PER_HOST = 2  # Newswatch's http.per_host_limit default


def parse_floor(directory: Path) -> dict[str, Any]:
    import feedparser

    bodies = [path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()]
    started = time.process_time()
    entries = 0
    for body in bodies:
        parsed = feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
        entries += len(parsed.entries)
    seconds = time.process_time() - started
    return {"feeds": len(bodies), "entries": entries, "cpu_seconds": seconds}


async def _fetch_all(requests: list[list[str | None]], ssl_context: ssl.SSLContext) -> Counter[int]:
    import httpx

    transports: dict[str, httpx.AsyncHTTPTransport] = {}
    host_slots: dict[str, asyncio.Semaphore] = {}
    slots = asyncio.Semaphore(CONCURRENCY)
    timeouts = {"timeout": httpx.Timeout(20.0, connect=10.0).as_dict()}

    async def one(url: str, etag: str | None, last_modified: str | None) -> int:
        parsed = httpx.URL(url)
        headers = {"If-None-Match": etag or "", "If-Modified-Since": last_modified or ""}
        host = parsed.host
        if host not in transports:
            limits = httpx.Limits(max_connections=PER_HOST)
            transports[host] = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)
        transport = transports[host]
        async with slots, host_slots.setdefault(host, asyncio.Semaphore(PER_HOST)):
            response = await transport.handle_async_request(
                httpx.Request("GET", parsed, headers=headers, extensions=timeouts)
            )
            async for _chunk in response.aiter_raw():
                pass
            await response.aclose()
            return response.status_code

    statuses = await asyncio.gather(*(one(str(u), e, m) for u, e, m in requests))
    for transport in transports.values():
        await transport.aclose()
    return Counter(statuses)


def fetch_floor(requests_file: Path) -> dict[str, Any]:
    requests = json.loads(requests_file.read_text(encoding="utf-8"))
    import httpx

    # Built before the clock starts, once for every host, as Newswatch does: loading the CA certificates
    # is not fetching.
    ssl_context = httpx.create_ssl_context()
    started = time.perf_counter()
    statuses = asyncio.run(_fetch_all(requests, ssl_context))
    seconds = time.perf_counter() - started
    return {"feeds": len(requests), "seconds": seconds, "statuses": dict(statuses)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("what", choices=("parse", "fetch"))
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    result = parse_floor(args.path) if args.what == "parse" else fetch_floor(args.path)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
