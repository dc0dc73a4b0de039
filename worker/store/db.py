"""Engine and sessions for both stores: embedded SQLite (default) and PostgreSQL (scale-out).

SQLite gets WAL (readers never block the writer), a busy timeout (a second process waits instead of
failing), foreign keys (off by default in SQLite) and synchronous=NORMAL (safe with WAL, much faster).
Migrations run at start under a lock, so several workers starting together migrate once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlmodel import Session, create_engine

from worker.errors import StoreError, one_line
from worker.store.fts import register_sqlite_functions

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration: a store already at it opens without loading alembic, which is a fifth of every
# command's start-up. tests/test_migrations.py checks it against alembic's own head.
SCHEMA_HEAD = "0003"
# Any constant will do; it only has to be the same for every Newswatch process.
_PG_MIGRATION_LOCK = 0x6E657773


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide where transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()
    register_sqlite_functions(dbapi_connection)  # nw_fold, which the full-text index triggers call


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock at BEGIN: a deferred transaction that later upgrades to a writer can
    # fail at once with "database is locked" despite the busy timeout; this one waits its turn instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_begin_read(connection: Any) -> None:
    # Deferred: a reader gets a WAL snapshot and neither waits for nor blocks the writer.
    connection.exec_driver_sql("BEGIN")


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; creates the SQLite file's folder. Raises StoreError for an unusable URL.

    `read_only` engines (the HTTP API) only read: on SQLite their transactions do not take the write lock.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database url {url!r} is not a valid SQLAlchemy URL") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_read if read_only else _sqlite_begin)
        return engine
    if backend == "postgresql":
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"database url {parsed.render_as_string()}: {exc}") from exc
    raise StoreError(f"database url {parsed.render_as_string()}: only sqlite and postgresql are supported")


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision. Raises StoreError when the database cannot be reached."""
    try:
        if _at_head(engine):
            return
        from alembic import command

        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise StoreError(f"cannot open database {engine.url.render_as_string()}: {_first_line(exc)}") from exc


def _at_head(engine: Engine) -> bool:
    with engine.connect() as connection:
        if not engine.dialect.has_table(connection, "alembic_version"):
            return False
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        return list(versions) == [SCHEMA_HEAD]


def check_connection(engine: Engine) -> None:
    """Raises StoreError with one line when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open database {engine.url.render_as_string()}: {_first_line(exc)}") from exc


def _first_line(exc: SQLAlchemyError) -> str:
    return one_line(getattr(exc, "orig", None) or exc)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back whole on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
