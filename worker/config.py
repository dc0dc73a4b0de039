"""Settings: one TOML file plus NEWSWATCH_* environment overrides, validated in one place.

Every setting has a default here (and the same default, documented, in config/newswatch.toml). Loading
collects every problem before failing, so `newswatch check` can print them all, one line each, naming the
file, the key and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from worker.alerts.policy import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BASE,
    MODE_DIGEST,
    MODE_INSTANT,
    Policy,
    parse_clock,
    parse_quiet_hours,
)
from worker.errors import ConfigError
from worker.ingest import fetch

CONFIG_ENV = "NEWSWATCH_CONFIG"
ENV_PREFIX = "NEWSWATCH_"
REPO_DIR = Path(__file__).resolve().parents[1]
# Searched in order when neither --config nor NEWSWATCH_CONFIG names a file.
DEFAULT_CONFIG_LOCATIONS = (Path("config/newswatch.toml"), Path("/etc/newswatch/newswatch.toml"))

DEFAULT_POLL_INTERVAL = 30 * 60
DEFAULT_MIN_INTERVAL = 60
DEFAULT_MAX_BACKOFF = 24 * 3600
DEFAULT_JITTER = 0.1
DEFAULT_CONCURRENCY = 64
DEFAULT_TICK = 15
DEFAULT_LEASE = 300
DEFAULT_ALERT_MAX_AGE = 24 * 3600
DEFAULT_ALERT_CONCURRENCY = 8
DEFAULT_ALERT_LEASE = 120
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8484
DEFAULT_API_STALE_AFTER = 2 * 3600
# The most `newswatch serve` processes ([api] workers) a config may ask for, and the most the default gives:
# each worker holds up to HANDLER_THREADS database connections, and a PostgreSQL server allows 100 in all
# by default, which one worker per CPU of a large machine would take.
MAX_API_WORKERS = 64
MAX_DEFAULT_API_WORKERS = 4
DEFAULT_RETENTION_DAYS = 0  # 0 keeps every article forever
DEFAULT_MAINTENANCE_EVERY = 24 * 3600
DEFAULT_LOG_FORMAT = "text"
DEFAULT_POLICY = "default"
TEMPLATE_KEYS = ("title", "text", "markdown", "html")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def default_state_dir() -> Path:
    """systemd's StateDirectory when run as a service, else the XDG state folder of the user."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "newswatch"


def default_api_workers() -> int:
    """One `newswatch serve` process per CPU this process may run on (its affinity, where the OS tells), at
    most MAX_DEFAULT_API_WORKERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_API_WORKERS))


def local_zone_name() -> str:
    """The machine's IANA time zone (wall-clock alert rules default to it), UTC when unknown."""
    try:
        from tzlocal import get_localzone_name

        return get_localzone_name() or "UTC"
    except Exception:  # tzlocal raises its own errors for odd /etc/localtime set-ups
        return "UTC"


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like "90", "15m", "2h", "1d". Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("expected a positive duration")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError('expected a duration such as 900, "15m", "2h" or "1d"')


def check_feed_url(url: Any) -> str:
    """The URL when it is an absolute http(s) URL with a host. Raises ValueError."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("expected an http(s) URL")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url.strip()


@dataclass(frozen=True)
class FeedConfig:
    url: str
    interval: float | None = None
    tags: tuple[str, ...] = ()
    title: str | None = None


@dataclass(frozen=True)
class AlertSettings:
    channels_file: Path | None = None
    max_age: float = DEFAULT_ALERT_MAX_AGE  # items older than this never alert
    timezone: str = "UTC"  # for quiet hours, daily digests and times in messages
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_base: float = DEFAULT_RETRY_BASE
    concurrency: int = DEFAULT_ALERT_CONCURRENCY  # targets sent to at the same time (one message each)
    lease: float = DEFAULT_ALERT_LEASE
    # By apprise tag; "default" for targets none of whose tags has a policy.
    policies: Mapping[str, Policy] = field(default_factory=lambda: {DEFAULT_POLICY: Policy()})
    templates: Mapping[str, str] = field(default_factory=dict)

    def policy_for(self, apprise_tags: frozenset[str]) -> Policy:
        for tag in sorted(apprise_tags):
            if tag in self.policies:
                return self.policies[tag]
        return self.policies.get(DEFAULT_POLICY, Policy())


@dataclass(frozen=True)
class ApiSettings:
    host: str = DEFAULT_API_HOST
    port: int = DEFAULT_API_PORT
    # Required when `host` is not a loopback address: requests must carry "Authorization: Bearer <token>".
    token: str | None = None
    # /healthz answers 503 when the last successful poll is older than this.
    stale_after: float = DEFAULT_API_STALE_AFTER
    # Server processes sharing the listening socket: one Python process uses one CPU at a time (the GIL).
    workers: int = field(default_factory=default_api_workers)


@dataclass(frozen=True)
class RetentionSettings:
    days: int = DEFAULT_RETENTION_DAYS  # feed articles older than this are deleted (seeds never); 0 = keep
    maintenance_every: float = DEFAULT_MAINTENANCE_EVERY  # retention + VACUUM/ANALYZE this often


@dataclass(frozen=True)
class Settings:
    config_file: Path | None
    state_dir: Path
    database_url: str
    poll_interval: float = DEFAULT_POLL_INTERVAL
    poll_min_interval: float = DEFAULT_MIN_INTERVAL
    poll_max_backoff: float = DEFAULT_MAX_BACKOFF
    poll_jitter: float = DEFAULT_JITTER
    poll_concurrency: int = DEFAULT_CONCURRENCY
    poll_tick: float = DEFAULT_TICK
    poll_lease: float = DEFAULT_LEASE
    http: fetch.FetchLimits = field(default_factory=fetch.FetchLimits)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    log_format: str = DEFAULT_LOG_FORMAT  # "text" or "json" (--log-format overrides)
    tags_file: Path | None = None
    seeds_dir: Path | None = None
    seeds_auto_import: bool = True
    opml_file: Path | None = None
    feeds: tuple[FeedConfig, ...] = ()

    @property
    def fetch_limits(self) -> fetch.FetchLimits:
        return self.http


# The schema: section → key → (parser, description of what is expected). A parser raises ValueError.
Parser = Callable[[Any], Any]


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError("expected true or false")


def _number(low: float, high: float) -> Parser:
    def parse(value: Any) -> float:
        if isinstance(value, str):
            with suppress(ValueError):  # left a string: reported below as not a number
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ValueError(f"expected a number from {low:g} to {high:g}")
        return float(value)

    return parse


def _integer(low: int, high: int) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _duration(low: float, high: float) -> Parser:
    def parse(value: Any) -> float:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise ValueError(f"expected a duration from {low:g} s to {high:g} s")
        return seconds

    return parse


def _timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = _str(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError('expected an IANA time zone such as "Asia/Almaty" or "UTC"') from exc
    return name


def _choice(*allowed: str) -> Parser:
    def parse(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(repr(a) for a in allowed)}")
        return str(value)

    return parse


def _clock(value: Any) -> Any:
    return parse_clock(_str(value))


def _quiet(value: Any) -> Any:
    return parse_quiet_hours(_str(value))


# [alerts.policy.<apprise tag>]: how the targets carrying that tag are alerted.
POLICY_SCHEMA: dict[str, Parser] = {
    "mode": _choice(MODE_INSTANT, MODE_DIGEST),
    "digest_every": _duration(60, 7 * 86400),
    "digest_at": _clock,
    "quiet_hours": _quiet,
    "rate_limit": _integer(1, 100_000),
    "min_score": _number(0, 1_000_000),
    "one_per_story": _bool,
}


def _database_url(value: Any) -> str:
    url = _str(value)
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
        raise ValueError('expected "sqlite:///PATH" or "postgresql+psycopg://USER@HOST/DB"')
    return url


SCHEMA: dict[str, dict[str, Parser]] = {
    "": {"state_dir": _str, "opml": _str},
    "database": {"url": _database_url},
    "poll": {
        "interval": _duration(60, 7 * 86400),
        "min_interval": _duration(1, 86400),
        "max_backoff": _duration(60, 7 * 86400),
        "jitter": _number(0, 0.5),
        "concurrency": _integer(1, 1000),
        "tick": _duration(0.2, 3600),
        "lease": _duration(10, 86400),
    },
    "http": {
        "connect_timeout": _duration(0.1, 300),
        "timeout": _duration(0.1, 600),
        "max_body_bytes": _integer(1024, 1024**3),
        "max_redirects": _integer(0, 20),
        "per_host_limit": _integer(1, 100),
        "allow_private_networks": _bool,
        "user_agent": _str,
    },
    "alerts": {
        "max_age": _duration(0, 365 * 86400),
        "channels": _str,
        "timezone": _timezone,
        "max_attempts": _integer(1, 100),
        "retry_base": _duration(1, 86400),
        "concurrency": _integer(1, 256),
        "lease": _duration(10, 86400),
    },
    "api": {
        "host": _str,
        "port": _integer(1, 65535),
        "token": _str,
        "stale_after": _duration(60, 30 * 86400),
        "workers": _integer(1, MAX_API_WORKERS),
    },
    "retention": {"days": _integer(0, 100 * 365), "maintenance_every": _duration(60, 30 * 86400)},
    "log": {"format": _choice("text", "json")},
    "tagging": {"rules": _str},
    "seeds": {"dir": _str, "auto_import": _bool},
}
_FEED_KEYS = {"url", "interval", "tags", "title"}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Loader:
    """Collects problems while reading a config mapping, so all of them are reported at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.source}: {key}: {message}")

    def section_values(self, data: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        values: dict[str, dict[str, Any]] = {name: {} for name in SCHEMA}
        for key, value in data.items():
            if key == "feeds":
                continue
            if key in SCHEMA and key != "":
                if not isinstance(value, dict):
                    self.problem(key, f"expected a [{key}] table, got {_describe(value)}")
                    continue
                for sub, subvalue in value.items():
                    if key == "alerts" and sub in ("policy", "templates"):
                        continue  # tables of their own: see alert_tables
                    self._set(values, key, sub, subvalue)
            else:
                self._set(values, "", key, value)
        for name, raw in env.items():
            self._set_env(values, name, raw)
        return values

    def _set(self, values: dict[str, dict[str, Any]], section: str, key: str, value: Any) -> None:
        dotted = f"{section}.{key}" if section else key
        parser = SCHEMA[section].get(key)
        if parser is None:
            known = ", ".join(sorted(SCHEMA[section])) or "none"
            where = f"[{section}]" if section else "the top level"
            self.problem(dotted, f"unknown key (known keys in {where}: {known})")
            return
        try:
            values[section][key] = parser(value)
        except ValueError as exc:
            self.problem(dotted, f"{exc}, got {_describe(value)}")

    def _set_env(self, values: dict[str, dict[str, Any]], name: str, raw: str) -> None:
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            return
        rest = name[len(ENV_PREFIX) :].lower()
        for section, keys in SCHEMA.items():
            for key in keys:
                if rest == (f"{section}_{key}" if section else key):
                    try:
                        values[section][key] = keys[key](raw)
                    except ValueError as exc:
                        self.problems.append(f"environment {name}: {exc}, got {_describe(raw)}")
                    return

    def alert_tables(self, alerts: Any) -> tuple[dict[str, Policy], dict[str, str]]:
        """[alerts.policy.<tag>] tables and [alerts.templates]."""
        policies: dict[str, Policy] = {DEFAULT_POLICY: Policy()}
        templates: dict[str, str] = {}
        if not isinstance(alerts, dict):
            return policies, templates
        raw_policies = alerts.get("policy", {})
        if not isinstance(raw_policies, dict):
            self.problem("alerts.policy", "expected tables [alerts.policy.<apprise tag>]")
            raw_policies = {}
        for name, table in raw_policies.items():
            key = f"alerts.policy.{name}"
            if not isinstance(table, dict):
                self.problem(key, f"expected a table, got {_describe(table)}")
                continue
            fields: dict[str, Any] = {}
            for option, value in table.items():
                parser = POLICY_SCHEMA.get(option)
                if parser is None:
                    known = ", ".join(sorted(POLICY_SCHEMA))
                    self.problem(f"{key}.{option}", f"unknown key (known keys: {known})")
                    continue
                try:
                    fields[option] = parser(value)
                except ValueError as exc:
                    self.problem(f"{key}.{option}", f"{exc}, got {_describe(value)}")
            policies[name] = Policy(**fields)
        raw_templates = alerts.get("templates", {})
        if not isinstance(raw_templates, dict):
            self.problem("alerts.templates", "expected a table [alerts.templates]")
            raw_templates = {}
        for name, value in raw_templates.items():
            if name not in TEMPLATE_KEYS:
                self.problem(
                    f"alerts.templates.{name}", f"unknown key (known keys: {', '.join(TEMPLATE_KEYS)})"
                )
            elif not isinstance(value, str):
                self.problem(f"alerts.templates.{name}", f"expected a string, got {_describe(value)}")
            else:
                templates[name] = value
        return policies, templates

    def feeds(self, data: Any) -> tuple[FeedConfig, ...]:
        if data is None:
            return ()
        if not isinstance(data, list):
            self.problem("feeds", "expected [[feeds]] tables")
            return ()
        feeds: list[FeedConfig] = []
        seen: set[str] = set()
        for index, entry in enumerate(data):
            key = f"feeds[{index}]"
            if not isinstance(entry, dict):
                self.problem(key, f"expected a table with url = ..., got {_describe(entry)}")
                continue
            for unknown in sorted(set(entry) - _FEED_KEYS):
                self.problem(f"{key}.{unknown}", f"unknown key (known: {', '.join(sorted(_FEED_KEYS))})")
            feed = self._feed(key, entry)
            if feed is None:
                continue
            if feed.url in seen:
                self.problem(f"{key}.url", f"{feed.url} is listed twice")
                continue
            seen.add(feed.url)
            feeds.append(feed)
        return tuple(feeds)

    def _feed(self, key: str, entry: Mapping[str, Any]) -> FeedConfig | None:
        try:
            url = check_feed_url(entry.get("url"))
        except ValueError as exc:
            self.problem(f"{key}.url", f"{exc}" if "url" in entry else "missing; expected an http(s) URL")
            return None
        interval = None
        if "interval" in entry:
            try:
                interval = _duration(60, 7 * 86400)(entry["interval"])
            except ValueError as exc:
                self.problem(f"{key}.interval", f"{exc}, got {_describe(entry['interval'])}")
        tags = entry.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            self.problem(f"{key}.tags", f"expected a list of tag names, got {_describe(tags)}")
            tags = []
        title = entry.get("title")
        if title is not None and not isinstance(title, str):
            self.problem(f"{key}.title", f"expected a string, got {_describe(title)}")
            title = None
        return FeedConfig(url=url, interval=interval, tags=tuple(tags), title=title)


def find_config_file(explicit: str | Path | None) -> Path | None:
    """--config, else NEWSWATCH_CONFIG, else the first default location that exists, else None."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    for candidate in DEFAULT_CONFIG_LOCATIONS:
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError([f"{path}: config file not found"]) from exc
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc


def _resolve(base: Path, value: str | None, fallback: Path | None = None) -> Path | None:
    if value is None:
        return fallback
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def load_settings(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and resolve the settings. Raises ConfigError listing every problem."""
    env = os.environ if env is None else env
    path = find_config_file(explicit)
    data = _read_toml(path) if path is not None else {}
    loader = _Loader(str(path) if path is not None else "defaults")
    values = loader.section_values(data, env)
    feeds = loader.feeds(data.get("feeds"))
    policies, templates = loader.alert_tables(data.get("alerts"))
    if loader.problems:
        raise ConfigError(loader.problems)

    base = path.resolve().parent if path is not None else Path.cwd()
    top, db, poll, http, alerts, tagging, seeds = (
        values[name] for name in ("", "database", "poll", "http", "alerts", "tagging", "seeds")
    )
    api, retention, log = (values[name] for name in ("api", "retention", "log"))
    state_dir = _resolve(base, top.get("state_dir")) or default_state_dir()
    database_url = db.get("url") or f"sqlite:///{state_dir / 'newswatch.db'}"
    default_limits = fetch.FetchLimits()
    limits = fetch.FetchLimits(
        connect_timeout=http.get("connect_timeout", default_limits.connect_timeout),
        timeout=http.get("timeout", default_limits.timeout),
        max_body_bytes=http.get("max_body_bytes", default_limits.max_body_bytes),
        max_redirects=http.get("max_redirects", default_limits.max_redirects),
        allow_private_networks=http.get("allow_private_networks", default_limits.allow_private_networks),
        per_host_limit=http.get("per_host_limit", default_limits.per_host_limit),
        user_agent=http.get("user_agent", default_limits.user_agent),
    )
    repo_tags = REPO_DIR / "config" / "tags.toml"
    repo_seeds = REPO_DIR / "seeds"
    tags_default = base / "tags.toml" if (base / "tags.toml").is_file() else repo_tags
    channels_default = base / "channels.yml" if (base / "channels.yml").is_file() else None
    return Settings(
        config_file=path,
        state_dir=state_dir,
        database_url=database_url,
        poll_interval=poll.get("interval", DEFAULT_POLL_INTERVAL),
        poll_min_interval=poll.get("min_interval", DEFAULT_MIN_INTERVAL),
        poll_max_backoff=poll.get("max_backoff", DEFAULT_MAX_BACKOFF),
        poll_jitter=poll.get("jitter", DEFAULT_JITTER),
        poll_concurrency=poll.get("concurrency", DEFAULT_CONCURRENCY),
        poll_tick=poll.get("tick", DEFAULT_TICK),
        poll_lease=poll.get("lease", DEFAULT_LEASE),
        http=limits,
        alerts=AlertSettings(
            channels_file=_resolve(base, alerts.get("channels"), channels_default),
            max_age=alerts.get("max_age", DEFAULT_ALERT_MAX_AGE),
            timezone=alerts.get("timezone") or local_zone_name(),
            max_attempts=alerts.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
            retry_base=alerts.get("retry_base", DEFAULT_RETRY_BASE),
            concurrency=alerts.get("concurrency", DEFAULT_ALERT_CONCURRENCY),
            lease=alerts.get("lease", DEFAULT_ALERT_LEASE),
            policies=policies,
            templates=templates,
        ),
        api=ApiSettings(
            host=api.get("host", DEFAULT_API_HOST),
            port=api.get("port", DEFAULT_API_PORT),
            token=api.get("token"),
            stale_after=api.get("stale_after", DEFAULT_API_STALE_AFTER),
            workers=api.get("workers", default_api_workers()),
        ),
        retention=RetentionSettings(
            days=retention.get("days", DEFAULT_RETENTION_DAYS),
            maintenance_every=retention.get("maintenance_every", DEFAULT_MAINTENANCE_EVERY),
        ),
        log_format=log.get("format", DEFAULT_LOG_FORMAT),
        tags_file=_resolve(base, tagging.get("rules"), tags_default if tags_default.is_file() else None),
        seeds_dir=_resolve(base, seeds.get("dir"), repo_seeds if repo_seeds.is_dir() else None),
        seeds_auto_import=seeds.get("auto_import", True),
        opml_file=_resolve(base, top.get("opml")),
        feeds=feeds,
    )
