"""Shared fixtures: stores (SQLite and PostgreSQL), config files, the misbehaving feed server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.feedserver import feed_server  # noqa: F401  (fixture)
from tests.receivers import smtp_server, webhook  # noqa: F401  (fixtures)
from worker.store.db import make_engine, migrate

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PG_URL = os.environ.get("NEWSWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_shared(path: Path) -> Path:
    """A file of ../shared: skipped where it is missing, a failure under CI=true."""
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing (required under CI=true)")
        pytest.skip(f"{path} is missing")
    return path


def _pg_admin_connect() -> object:
    import psycopg

    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(plain, connect_timeout=3, autocommit=True)


@pytest.fixture(scope="session")
def pg_available() -> bool:
    try:
        _pg_admin_connect().close()  # type: ignore[attr-defined]
    except Exception as exc:  # any failure to connect means "no server here"
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI=true: {exc}")
        return False
    return True


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not pg_available:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set NEWSWATCH_TEST_PG_URL)")
    schema = f"nw_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_connect()
    admin.execute(f"CREATE SCHEMA {schema}")  # type: ignore[attr-defined]
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both stores: the same test runs on the embedded default and on the scale store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A migrated store on the PostgreSQL server only (for what SQLite's single writer cannot show)."""
    engine = make_engine(pg_url)
    migrate(engine)
    yield engine
    engine.dispose()


def write_config(
    directory: Path, body: str = "", *, database_url: str | None = None, http: str = "timeout = 5"
) -> Path:
    """A config for tests: its own store, private networks allowed (the feed server is on loopback).

    `http` holds extra lines of the [http] table; `body` is appended last (feeds, other tables).
    """
    db = database_url or f"sqlite:///{directory / 'newswatch.db'}"
    text = (
        f'state_dir = "{directory}"\n'
        f'[database]\nurl = "{db}"\n'
        f"[http]\nallow_private_networks = true\n{http}\n"
        f'[tagging]\nrules = "{REPO / "config" / "tags.toml"}"\n'
        f'[seeds]\ndir = "{REPO / "seeds"}"\n'
        "[poll]\njitter = 0\n" + body
    )
    path = directory / "newswatch.toml"
    path.write_text(text, encoding="utf-8")
    return path
