"""Start-up shared by every command: settings, store (migrated), config feeds synced, seeds imported.

Faces (cli, daemon, api) call `open_runtime`; it is the one place that decides what "starting" means.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from worker.config import Settings, load_settings
from worker.errors import NewswatchError
from worker.ingest.opml import parse_opml
from worker.ingest.seeds import read_seed, seed_files
from worker.store import feeds as feed_store
from worker.store.articles import NewArticle, store_item
from worker.store.db import make_engine, migrate, session_scope
from worker.store.models import SOURCE_SEED, Article

if TYPE_CHECKING:
    from worker.alerts.channels import Target
    from worker.alerts.deliver import Deliverer
    from worker.alerts.outbox import Router
    from worker.analysis.tagging import Tagger
    from worker.ingest.pipeline import Pipeline
    from worker.store.dedup_index import DedupIndex

log = logging.getLogger("newswatch")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    _tagger: Tagger | None = field(default=None, repr=False)
    _index: DedupIndex | None = field(default=None, repr=False)
    _targets: tuple[Target, ...] | None = field(default=None, repr=False)

    @property
    def tagger(self) -> Tagger:
        """The tagger for the configured rules, compiled once per process (or reload)."""
        if self._tagger is None:
            from worker.analysis.tagging import Tagger
            from worker.tagrules import DEFAULT_RULES_PATH, load_rules

            self._tagger = Tagger(load_rules(self.settings.tags_file or DEFAULT_RULES_PATH))
        return self._tagger

    @property
    def targets(self) -> tuple[Target, ...]:
        """The alert targets of the channels file (none when no file is configured)."""
        if self._targets is None:
            from worker.alerts.channels import load_targets

            path = self.settings.alerts.channels_file
            routing = (*self.tagger.rules.tag_names, *(t for f in self.settings.feeds for t in f.tags))
            self._targets = tuple(load_targets(path, routing)) if path is not None else ()
        return self._targets

    @property
    def router(self) -> Router:
        from worker.alerts.outbox import Router

        return Router(self.targets, self.settings.alerts)

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


class _LazyTagger:
    """The runtime's tagger, compiled only when something is tagged (an unchanged re-poll never is)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def tag(self, title: str, text: str) -> Sequence[Any]:
        return self.runtime.tagger.tag(title, text)


class _LazyRouter:
    """The outbox router, with the channels file read only when a new article needs routing."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._router: Router | None = None

    def enqueue(self, session: Session, article: Article, results: Sequence[Any]) -> int:
        if self._router is None:
            self._router = self.runtime.router
        return self._router.enqueue(session, article, results)


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
    settings = load_settings(config)
    engine = make_engine(settings.database_url)
    runtime = Runtime(settings, engine)
    if prepare:
        migrate(engine)
        declared = declared_feeds(settings)
        with session_scope(engine) as session:
            report = feed_store.sync_declared(session, declared)
        if report.added or report.changed or report.disabled:
            log.info(
                "config feeds: %d added, %d changed, %d disabled",
                report.added,
                report.changed,
                report.disabled,
            )
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
        doc = read_seed(path)
        item = NewArticle(
            source=SOURCE_SEED,
            feed_id=None,
            guid=doc.guid,
            url=None,
            title=doc.title,
            text=doc.text,
            published=doc.published,
            outlet="seed",
            alertable=False,
        )
        with session_scope(runtime.engine) as session:
            stored = store_item(session, item, runtime.index, _LazyTagger(runtime))
        counts[stored.outcome] += 1
        if progress is not None:
            progress(path)
    return SeedReport(counts["new"], counts["updated"], counts["unchanged"] + counts["tombstone"])
