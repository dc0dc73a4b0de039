"""Start-up shared by every command: settings, store (migrated), config feeds synced, seeds imported.

Faces (cli, daemon, api) call `open_runtime`; it is the one place that decides what "starting" means, and
(`prepare_reload`, `apply_reload`) what a reload on SIGHUP changes: feeds, tag rules, channels and alert
policies. Everything else is read once and needs a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from worker.config import AlertSettings, Settings, load_settings
from worker.errors import NewswatchError
from worker.ingest.opml import parse_opml
from worker.ingest.seeds import read_seed, seed_files
from worker.store import feeds as feed_store
from worker.store.articles import store_item
from worker.store.db import make_engine, migrate, session_scope
from worker.store.models import Article

if TYPE_CHECKING:
    from worker.alerts.channels import Target
    from worker.alerts.deliver import Deliverer
    from worker.alerts.outbox import Router
    from worker.analysis.tagging import Tagger
    from worker.ingest.pipeline import Pipeline
    from worker.store.dedup_index import DedupIndex

log = logging.getLogger("newswatch")

# What a reload replaces: these Settings fields, and these of Settings.alerts. The rest needs a restart.
RELOADED_SETTINGS = ("feeds", "opml_file", "tags_file")
RELOADED_ALERT_SETTINGS = ("channels_file", "policies")


@dataclass(frozen=True)
class Reload:
    """A new configuration, read and validated completely, not yet in force."""

    settings: Settings  # the running settings with the reloadable parts replaced
    feeds: list[feed_store.DeclaredFeed]
    tagger: Tagger
    targets: tuple[Target, ...]
    needs_restart: tuple[str, ...]  # settings that changed but apply only after a restart


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    _tagger: Tagger | None = field(default=None, repr=False)
    _index: DedupIndex | None = field(default=None, repr=False)
    _targets: tuple[Target, ...] | None = field(default=None, repr=False)
    _router: Router | None = field(default=None, repr=False)
    # Poll threads build the lazy parts while a reload may replace them: without the lock, a tagger
    # compiled from the old rules could overwrite the reloaded one.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def tagger(self) -> Tagger:
        """The tagger for the configured rules, compiled once per process (or reload)."""
        with self._lock:
            if self._tagger is None:
                from worker.analysis.tagging import Tagger
                from worker.tagrules import DEFAULT_RULES_PATH, load_rules

                self._tagger = Tagger(load_rules(self.settings.tags_file or DEFAULT_RULES_PATH))
            return self._tagger

    @property
    def targets(self) -> tuple[Target, ...]:
        """The alert targets of the channels file (none when no file is configured)."""
        with self._lock:
            if self._targets is None:
                self._targets = _load_targets(self.settings, self.tagger)
            return self._targets

    @property
    def router(self) -> Router:
        """The outbox router for the current targets and policies, built once per process (or reload)."""
        with self._lock:
            if self._router is None:
                from worker.alerts.outbox import Router

                self._router = Router(self.targets, self.settings.alerts)
            return self._router

    def pipeline(self, on_new: Callable[[], None] | None = None) -> Pipeline:
        """The poll pipeline of this runtime: its tagger, dedup index and outbox router."""
        from worker.ingest.pipeline import Pipeline

        return Pipeline(
            self.settings, self.engine, self.index, _LazyTagger(self), alerts=_LazyRouter(self), on_new=on_new
        )

    def deliverer(self, owner: str) -> Deliverer:
        from worker.alerts.deliver import Deliverer

        return Deliverer(self.engine, self.settings.alerts, self.targets, owner)

    @property
    def index(self) -> DedupIndex:
        if self._index is None:
            from worker.store.dedup_index import DedupIndex

            self._index = DedupIndex()
        return self._index

    def sync_feeds(self, declared: Sequence[feed_store.DeclaredFeed]) -> feed_store.SyncReport:
        """Make the store's config feeds match `declared` (one transaction) and log what changed."""
        with session_scope(self.engine) as session:
            report = feed_store.sync_declared(session, declared)
        if report.added or report.changed or report.disabled:
            log.info(
                "config feeds: %d added, %d changed, %d disabled",
                report.added,
                report.changed,
                report.disabled,
            )
        return report

    def prepare_reload(self) -> Reload:
        """Read the config file again, with its feeds (OPML too), tag rules and channels, and validate all
        of it; nothing changes yet. Raises ConfigError (or NewswatchError) naming what is wrong."""
        from worker.analysis.tagging import Tagger
        from worker.tagrules import DEFAULT_RULES_PATH, load_rules

        running = self.settings
        new = load_settings(running.config_file)
        settings = replace(
            running,
            **{name: getattr(new, name) for name in RELOADED_SETTINGS},
            alerts=replace(
                running.alerts, **{name: getattr(new.alerts, name) for name in RELOADED_ALERT_SETTINGS}
            ),
        )
        feeds = declared_feeds(settings)
        tagger = Tagger(load_rules(settings.tags_file or DEFAULT_RULES_PATH))
        targets = _load_targets(settings, tagger)
        return Reload(settings, feeds, tagger, targets, _needs_restart(running, new))

    def apply_reload(self, new: Reload) -> None:
        """Put a prepared reload in force: the pipeline reads tagger and router through this runtime on every
        item, so the next article stored uses them. Feeds are synced separately (`sync_feeds`)."""
        from worker.alerts.outbox import Router

        with self._lock:
            self._tagger = new.tagger
            self._targets = new.targets
            self._router = Router(new.targets, new.settings.alerts)
            self.settings = new.settings


class _LazyTagger:
    """The runtime's tagger, compiled only when something is tagged (an unchanged re-poll never is)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def tag(self, title: str, text: str) -> Sequence[Any]:
        return self.runtime.tagger.tag(title, text)


class _LazyRouter:
    """The runtime's outbox router, with the channels file read only when a new article needs routing."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def enqueue(self, session: Session, article: Article, results: Sequence[Any]) -> int:
        return self.runtime.router.enqueue(session, article, results)


def _load_targets(settings: Settings, tagger: Tagger) -> tuple[Target, ...]:
    from worker.alerts.channels import load_targets

    path = settings.alerts.channels_file
    routing = (*tagger.rules.tag_names, *(t for f in settings.feeds for t in f.tags))
    return tuple(load_targets(path, routing)) if path is not None else ()


def _needs_restart(running: Settings, new: Settings) -> tuple[str, ...]:
    """Names of the settings that differ between `running` and `new` and that a reload does not apply."""
    changed = [
        f.name
        for f in fields(Settings)
        if f.name not in (*RELOADED_SETTINGS, "alerts") and getattr(running, f.name) != getattr(new, f.name)
    ]
    changed += [
        f"alerts.{f.name}"
        for f in fields(AlertSettings)
        if f.name not in RELOADED_ALERT_SETTINGS
        and getattr(running.alerts, f.name) != getattr(new.alerts, f.name)
    ]
    return tuple(changed)


def declared_feeds(settings: Settings) -> list[feed_store.DeclaredFeed]:
    """The config's [[feeds]] plus those of the OPML file it names (config entries win on repeats)."""
    declared = [feed_store.DeclaredFeed(f.url, f.interval, f.tags, f.title) for f in settings.feeds]
    if settings.opml_file is not None:
        try:
            data = settings.opml_file.read_bytes()
        except OSError as exc:
            raise NewswatchError(
                f"{settings.opml_file}: cannot read OPML file: {exc.strerror or exc}"
            ) from exc
        known = {d.url for d in declared}
        for outline in parse_opml(data, str(settings.opml_file)):
            if outline.url not in known:
                declared.append(feed_store.DeclaredFeed(outline.url, title=outline.title))
    return declared


def open_runtime(config: str | Path | None = None, *, prepare: bool = True) -> Runtime:
    """Load settings and open the store; with `prepare`, migrate, sync config feeds and import seeds."""
    return start_runtime(load_settings(config), prepare=prepare)


def start_runtime(settings: Settings, *, prepare: bool = True) -> Runtime:
    """`open_runtime` for settings already loaded."""
    engine = make_engine(settings.database_url)
    runtime = Runtime(settings, engine)
    if prepare:
        migrate(engine)
        runtime.sync_feeds(declared_feeds(settings))
        if settings.seeds_auto_import and settings.seeds_dir is not None and settings.seeds_dir.is_dir():
            import_seeds(runtime, [settings.seeds_dir])
    return runtime


@dataclass(frozen=True)
class SeedReport:
    new: int
    updated: int
    unchanged: int


def import_seeds(
    runtime: Runtime, paths: Sequence[Path], progress: Callable[[Path], None] | None = None
) -> SeedReport:
    """Store seed documents as articles with source = seed, idempotently (the file name is the identity)."""
    counts = {"new": 0, "updated": 0, "unchanged": 0, "tombstone": 0}
    for path in seed_files(list(paths)):
        item = read_seed(path).item()
        with session_scope(runtime.engine) as session:
            stored = store_item(session, item, runtime.index, _LazyTagger(runtime))
        counts[stored.outcome] += 1
        if progress is not None:
            progress(path)
    return SeedReport(counts["new"], counts["updated"], counts["unchanged"] + counts["tombstone"])
