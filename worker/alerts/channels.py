"""Alert targets: the apprise configuration, routing by tag, and sending one message to one target.

The channels file is apprise's own configuration (YAML or TEXT), so people can reuse the one they already
have; each URL's apprise tags say which Newswatch tags it receives. Apprise reports problems only through its
logger, so every call into apprise here runs inside a capture of that logger, kept per thread (the outbox
sends from a few threads at once): configuration problems become ConfigError lines, delivery problems become
`SendResult.error`. Captured records are not passed on, so apprise's own messages, which can quote a URL with
its secrets, never reach Newswatch's log; what we report is redacted first.

Decisions:
- A target without any apprise tag receives nothing (Newswatch always routes by tag; apprise would notify
  untagged URLs only when no tag is asked for). `target_warnings` says so, for `newswatch check`.
- Any apprise warning or error while reading the file is a configuration error: apprise drops what it cannot
  use (a bad entry, an invalid recipient) and carries on, and a silently missing target loses alerts.
- The same URL twice is one target with the union of the tags: one delivery per article and target.
- Timeouts are apprise's own and already short: HTTP services 4 s to connect and 4 s per read, e-mail 15 s per
  SMTP step; a URL may set others (`?cto=`, `?rto=`). Apprise does not retry (`retry=0`): the outbox does.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import apprise

from worker.alerts.render import Message
from worker.errors import ConfigError, one_line
from worker.redact import MASK, redact_url

# The apprise tag a target uses to receive every Newswatch tag.
ALL_TAGS = "all"
# Hex digits of the SHA-256 of the URL kept as a target's id.
ID_CHARS = 16
# Body limit for a service that declares none (apprise's own default).
DEFAULT_BODY_LIMIT = 32768
# How deep `include` lines of the channels file are followed (apprise ignores them at 0).
INCLUDE_DEPTH = 1
# The longest error line kept from a failed delivery or a configuration problem.
ERROR_CHARS = 500
# URL parts shorter than this are not masked literally in error text: masking them would garble the text, and
# a secret that short protects nothing.
MIN_SECRET_CHARS = 4
# Apprise schemas of plain e-mail, whose URL arguments `+Name=value` become message headers.
EMAIL_SCHEMAS = frozenset({"mailto", "mailtos"})
# URL arguments with these prefixes are passed to the service as they are (HTTP headers, query parameters) and
# often carry tokens; apprise's privacy form shows them, so the display masks their values.
PASS_THROUGH_PREFIXES = ("+", "-")

APPRISE_LOGGER = "apprise"
# The HTTP library under apprise logs request lines with the URL path, where some services keep a token
# (Mattermost): its records are dropped while a thread sends.
HTTP_LIBRARY_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager")
# Apprise's summary when a file gave no URL: replaced by our own "no targets" line.
_NOTHING_LOADED = "Failed to load Apprise configuration from"
# Apprise logs the exception behind a warning on the next DEBUG line, e.g. "Socket Exception: [Errno 111] …".
_EXCEPTION_DETAIL = re.compile(r"^[\w/ ]*Exception:\s*")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")

_FORMAT_NAMES = {
    apprise.NotifyFormat.TEXT: "text",
    apprise.NotifyFormat.MARKDOWN: "markdown",
    apprise.NotifyFormat.HTML: "html",
}
_APPRISE_FORMATS = {name: fmt for fmt, name in _FORMAT_NAMES.items()}


@dataclass(frozen=True)
class Target:
    """One apprise URL of the channels file. `url` holds secrets: print `display`, never `url`."""

    id: str  # stable identity: a hash of the URL (so editing the file keeps history per target)
    url: str = field(repr=False)
    display: str  # redacted URL (apprise privacy form)
    name: str  # a short human name: the first apprise tag that is not a Newswatch tag, else the service
    tags: frozenset[str]  # apprise tags: which Newswatch tags it receives ("kazakhstan", "ots", "all", …)
    service: str  # apprise schema, e.g. "mailto", "json", "mmost", "ntfy"
    body_format: str  # what the service reads best: "text", "markdown" or "html"
    body_limit: int  # the most characters the service accepts in a body
    title_limit: int  # the most characters of a title (0: the service has no title)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None  # one line, secrets redacted


def load_targets(path: Path, routing_tags: Iterable[str] = ()) -> list[Target]:
    """Every target of an apprise YAML (or text) config. Raises ConfigError naming the file and problem.

    `routing_tags` are the Newswatch tag names: a target's other tags name it (`name`).
    """
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the channels file: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: the channels file is not UTF-8 text ({exc.reason})"]) from exc
    # Apprise tells YAML from TEXT by the file name alone; the content says it better. When the content does
    # not say (its test is stricter than the TEXT parser), the name decides: its complaint is not kept.
    with _capture():
        config_format = apprise.ConfigBase.detect_config_format(content)
    with _capture() as records:
        try:
            config = apprise.AppriseConfig(asset=_asset(), recursion=INCLUDE_DEPTH)
            config.add(_file_url(path, config_format))
            servers = config.servers()
        except Exception as exc:  # an apprise bug on odd input is still the file's problem, not a traceback
            raise ConfigError([f"{path}: apprise cannot read it: {one_line(exc)}"]) from exc
    problems = [line for line in _lines(records) if not line.startswith(_NOTHING_LOADED)]
    if problems:
        raise ConfigError([_clean(f"{path}: {line}") for line in problems])
    # A file with no URL yet (the shipped one has only examples) is valid: alerts are simply off.
    return _targets(servers, {tag.lower() for tag in routing_tags})


def _file_url(path: Path, config_format: apprise.ConfigFormat | None) -> str:
    url = "file://" + quote(str(path.absolute()))
    return f"{url}?format={config_format.value}" if config_format else url


def target_warnings(targets: Sequence[Target]) -> list[str]:
    """What `newswatch check` should point out although the file is valid: targets that receive nothing."""
    return [
        f"{target.display}: no apprise tag, so it receives no alerts "
        f"(tag it with Newswatch tags or '{ALL_TAGS}')"
        for target in targets
        if not target.tags
    ]


def routes(target: Target, tags: Iterable[str]) -> bool:
    """Whether `target` receives an article carrying `tags`."""
    if ALL_TAGS in target.tags:
        return True
    return any(tag.lower() in target.tags for tag in tags)


def send(target: Target, message: Message) -> SendResult:
    """Send `message` to this one target; never raises for a failed delivery.

    A Message with an unknown body format is a programming error: ValueError.
    """
    body_format = _APPRISE_FORMATS.get(message.body_format)
    if body_format is None:
        raise ValueError(f"unknown body format {message.body_format!r}")
    url = _with_headers(target, message.headers)
    crash = None
    with _capture() as records:
        try:
            notifier = _notifier(url)
            accepted = notifier is not None and notifier.notify(
                body=message.body, title=message.title, body_format=body_format
            )
        except Exception as exc:  # a plugin's bug fails this delivery, not the outbox
            accepted, crash = False, f"{type(exc).__name__}: {one_line(exc)}"
    if accepted is True:
        return SendResult(ok=True)
    lines = _lines(records) + ([crash] if crash else [])
    text = "; ".join(lines) if lines else "the service did not accept the message (apprise gave no reason)"
    return SendResult(ok=False, error=_clean(text, _secrets(target.url, target.display)))


_notifiers: dict[str, apprise.Apprise] = {}
_notifiers_lock = threading.Lock()


def _notifier(url: str) -> apprise.Apprise | None:
    """One apprise instance per target URL, reused: parsing the URL costs more than a local send.

    Safe to share: the outbox sends one message per target at a time.
    """
    with _notifiers_lock:
        notifier = _notifiers.get(url)
    if notifier is None:
        notifier = apprise.Apprise(asset=_asset())
        if not notifier.add(url):
            return None
        with _notifiers_lock:
            _notifiers[url] = notifier
    return notifier


# ------------------------------------------------------------------------------------------------ targets


def _targets(servers: Iterable[apprise.NotifyBase], routing: set[str]) -> list[Target]:
    """One Target per distinct URL, in file order; a repeated URL adds its tags to the first."""
    by_id: dict[str, Target] = {}
    for server in servers:
        target = _target(server, routing)
        first = by_id.get(target.id)
        if first is not None:
            tags = first.tags | target.tags
            target = replace(first, tags=tags, name=_name(tags, routing, first.display, first.service))
        by_id[target.id] = target
    return list(by_id.values())


def _target(server: apprise.NotifyBase, routing: set[str]) -> Target:
    url: str = server.url(privacy=False)  # type: ignore[no-untyped-call]
    display = _display(server.url(privacy=True))  # type: ignore[no-untyped-call]
    service = urlsplit(url).scheme.lower()
    tags = frozenset(str(tag).lower() for tag in server.tags)
    fmt = _FORMAT_NAMES.get(server.notify_format, "text")
    body_limit = server.body_maxlen if server.body_maxlen and server.body_maxlen > 0 else DEFAULT_BODY_LIMIT
    title_limit = max(server.title_maxlen or 0, 0)
    if server.overflow_amalgamate_title and title_limit:
        # These services count the title inside the body limit.
        body_limit -= title_limit
    return Target(
        id=hashlib.sha256(url.encode()).hexdigest()[:ID_CHARS],
        url=url,
        display=display,
        name=_name(tags, routing, display, service),
        tags=tags,
        service=service,
        body_format=fmt,
        body_limit=body_limit,
        title_limit=title_limit,
    )


def _name(tags: frozenset[str], routing: set[str], display: str, service: str) -> str:
    own = sorted(tags - routing - {ALL_TAGS})
    if own:
        return own[0]
    host = urlsplit(display).hostname
    return f"{service} {host}" if host else service


def _display(privacy_url: str) -> str:
    """Apprise's privacy form, pass-through arguments masked, then our own redaction as a second net."""
    parts = urlsplit(privacy_url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(key.startswith(PASS_THROUGH_PREFIXES) for key, _ in pairs):
        masked = [(key, MASK if key.startswith(PASS_THROUGH_PREFIXES) else value) for key, value in pairs]
        parts = parts._replace(query=urlencode(masked, safe="*", quote_via=quote))
    return redact_url(urlunsplit(parts))


def _with_headers(target: Target, headers: dict[str, str]) -> str:
    """The target's URL with the message's e-mail headers as apprise `+Name=value` arguments."""
    if not headers or target.service not in EMAIL_SCHEMAS:
        return target.url
    # A line break in a header value would start another header.
    arguments = {f"+{name}": " ".join(value.splitlines()) for name, value in headers.items()}
    separator = "&" if urlsplit(target.url).query else "?"
    return target.url + separator + urlencode(arguments, quote_via=quote)


# ---------------------------------------------------------------------------------- apprise's log, secrets


def _asset() -> apprise.AppriseAsset:
    # Synchronous: the plugin runs in the calling thread, where its log records are captured.
    return apprise.AppriseAsset(async_mode=False)


_capturing = threading.local()  # .records: the list a capture of this thread collects into


@contextmanager
def _capture() -> Iterator[list[logging.LogRecord]]:
    """Apprise's log records of this thread while the block runs (the calls into apprise)."""
    records: list[logging.LogRecord] = []
    _capturing.records = records
    try:
        yield records
    finally:
        _capturing.records = None


class _TakenWhileCapturing(logging.Filter):
    """Takes the records of a capturing thread (kept when `keep`); other records pass from `outside_level`."""

    def __init__(self, *, keep: bool, outside_level: int) -> None:
        super().__init__()
        self._keep = keep
        self._outside_level = outside_level

    def filter(self, record: logging.LogRecord) -> bool:
        records: list[logging.LogRecord] | None = getattr(_capturing, "records", None)
        if records is None:
            return record.levelno >= self._outside_level
        if self._keep:
            records.append(record)
        return False


def _install_capture() -> None:
    apprise_log = logging.getLogger(APPRISE_LOGGER)
    # DEBUG: apprise logs the reason behind a warning ("Socket Exception: …") at DEBUG. Outside captures only
    # warnings go on, as with the default level.
    apprise_log.setLevel(logging.DEBUG)
    apprise_log.addFilter(_TakenWhileCapturing(keep=True, outside_level=logging.WARNING))
    for name in HTTP_LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(_TakenWhileCapturing(keep=False, outside_level=logging.NOTSET))


_install_capture()


def _lines(records: Iterable[logging.LogRecord]) -> list[str]:
    """Apprise's warnings and errors, each with the exception detail apprise logged after it."""
    lines: list[str] = []
    for record in records:
        text = record.getMessage().strip()
        if record.levelno >= logging.WARNING:
            if record.exc_info and record.exc_info[1] is not None:
                text = f"{text}: {one_line(record.exc_info[1])}"
            if text not in lines:
                lines.append(text)
        elif lines and _EXCEPTION_DETAIL.match(text):
            detail = _EXCEPTION_DETAIL.sub("", text, count=1)
            if detail in lines[:-1]:
                # A plugin warned, then apprise said it gave up on the entry: one line for both.
                lines.remove(detail)
            if detail and detail != lines[-1]:
                lines[-1] = f"{lines[-1]} ({detail})"
    return lines


def _secrets(url: str, display: str) -> list[str]:
    """The parts of `url` the display does not show: user, password, path segments, argument values."""
    parts = urlsplit(url)
    candidates = [parts.username, parts.password, *parts.path.split("/")]
    candidates += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    shown = unquote(display)
    secrets = {unquote(part) for part in candidates if part}
    return sorted(
        (s for s in secrets if len(s) >= MIN_SECRET_CHARS and s not in shown), key=len, reverse=True
    )


def _clean(text: str, secrets: Sequence[str] = ()) -> str:
    """One line, secrets masked, URLs redacted, at most ERROR_CHARS long."""
    for secret in secrets:
        text = text.replace(secret, MASK).replace(quote(secret, safe=""), MASK)
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def is_email(target: Target) -> bool:
    """E-mail targets get a subject line with the tag and a List-Id header."""
    return target.service in EMAIL_SCHEMAS
