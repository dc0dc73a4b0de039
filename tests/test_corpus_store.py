"""Every corpus file through the whole storing step: parse, dedup, tag, store, feed state — no crash."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import func, select

from tests.conftest import write_config
from tests.corpus import corpus_dir, corpus_files, corpus_headers, require_corpus
from worker.ingest.fetch import FetchResult
from worker.ingest.pipeline import FeedSnapshot
from worker.runtime import open_runtime
from worker.store import feeds as feed_store
from worker.store.db import session_scope
from worker.store.models import Article


def test_every_corpus_file_is_stored_or_recorded_as_a_feed_error(tmp_path: Path) -> None:
    require_corpus()
    runtime = open_runtime(write_config(tmp_path))
    pipeline = runtime.pipeline()
    crashes: list[str] = []
    stored_any = 0
    try:
        for path in corpus_files():
            url = f"https://corpus.example/{path.relative_to(corpus_dir())}"
            with session_scope(runtime.engine) as session:  # one feed a file, claimed as the scheduler would
                feed = feed_store.add_feed(session, url)
                feed.lease_owner = pipeline.owner
                feed_id = feed.id
            assert feed_id is not None
            result = FetchResult(
                url=url, final_url=url, status=200, body=path.read_bytes(), headers=corpus_headers(path)
            )
            outcome = pipeline.process(FeedSnapshot(feed_id, url, None, None), result)
            stored_any += outcome.new
            if outcome.skipped or (outcome.error or "").startswith("could not store"):
                crashes.append(f"{path.name}: {outcome.error or f'{outcome.skipped} entries skipped'}")
    finally:
        pipeline.close()
    assert crashes == []
    with session_scope(runtime.engine) as session:
        assert session.exec(select(func.count()).select_from(Article)).one() >= stored_any > 500
