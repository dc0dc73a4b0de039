"""Canonical URLs: one spelling per article address, so that the same link compares equal.

Folds what outlets and trackers vary without changing the page: scheme (https), host case and `www.`/`m.`/
`amp.` prefixes, default ports, fragments, tracking parameters, query order, trailing slashes, AMP paths.
"""

from __future__ import annotations

import re
from contextlib import suppress
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

# Parameters that identify a campaign or a click, never the page.
_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_", "__hs", "_hs")
_TRACKING_NAMES = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "yclid",
        "msclkid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "cmpid",
        "amp",
        "amp_js_v",
        "usqp",
        "outputtype",
        "s_cid",
        "ocid",
        "ncid",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "sr_share",
        "at_medium",
        "at_campaign",
        "oly_enc_id",
        "oly_anon_id",
        "vero_id",
        "wt.mc_id",
        "__twitter_impression",
    }
)
# Host prefixes of mobile and AMP mirrors of the same site.
_MIRROR_HOST = re.compile(r"^(?:www\d*|m|mobile|amp)\.")
# "/amp", "/amp/", "/amp.html" at the end of a path, or "/amp/" at its start.
_AMP_SUFFIX = re.compile(r"/amp(?:\.html?)?/?$")
_AMP_PREFIX = re.compile(r"^/amp(?=/)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_NAMES or lowered.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str | None) -> str | None:
    """The canonical form of an http(s) URL, or None when `url` is not one."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    with suppress(UnicodeError):  # not IDNA-encodable: keep the host as written
        host = host.encode("idna").decode("ascii")
    host = _MIRROR_HOST.sub("", host)
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"

    path = quote(unquote(parts.path or "/"), safe="/:@!$&'()*+,;=-._~%")
    path = re.sub(r"/{2,}", "/", path)
    path = _AMP_PREFIX.sub("", path)
    path = _AMP_SUFFIX.sub("", path) or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    if path.endswith(("/index.html", "/index.htm", "/index.php")):
        path = path.rsplit("/", 1)[0] or "/"

    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k))
    return urlunsplit(("https", netloc, path, urlencode(query), ""))
