"""Secrets out of sight (DESIGN invariant 6): URLs carry passwords and tokens; logs and screens must not.

Apprise URLs (later) and feed URLs with credentials both go through `redact_url` before they are printed or
logged. Exports that exist to move a configuration (OPML) keep what they must.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that hold credentials by convention.
_SECRET_PARAMS = re.compile(
    r"^(?:.*token.*|.*secret.*|.*passw(?:or)?d.*|pass|pwd|key|api_?key|apikey|auth.*|sig(?:nature)?|access_key)$",
    re.IGNORECASE,
)


def _is_secret(name: str) -> bool:
    # apprise passes "+Header=value" and "-param=value" through to the service: the prefix is not the name.
    return _SECRET_PARAMS.match(name.lstrip("+- ")) is not None  # parse_qsl turns a "+" into a space


def redact_url(url: str) -> str:
    """`url` with the password of its userinfo and secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # A bare user part is often a token itself (https://TOKEN@host/): masked too.
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_is_secret(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _is_secret(k) else v) for k, v in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing to mask: unchanged (re-joining would turn "sqlite:////abs" into "sqlite://abs")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
