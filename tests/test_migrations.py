"""The migrations build exactly the schema the models describe, on both stores, plus the full-text index
(which the models leave out: FTS5's tables on SQLite, a generated tsvector column on PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

import worker.store.models  # noqa: F401  (the tables)
from worker.store.db import MIGRATIONS_DIR, SCHEMA_HEAD, make_engine, migrate
from worker.store.fts import (
    FTS_TABLE,
    PG_FUNCTIONS,
    PG_VECTOR_COLUMN,
    PG_VECTOR_INDEX,
    SQLITE_TRIGGERS,
    SQLITE_WINDOW_INDEX,
    is_search_object,
)


def _not_search_index(_object: Any, name: str | None, _type: str, reflected: bool, compare_to: Any) -> bool:
    return not (reflected and compare_to is None and is_search_object(name))


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": _not_search_index}
        )
        return list(compare_metadata(context, SQLModel.metadata))


def _search_objects(connection: Connection) -> set[str]:
    """The full-text index's objects present in the store."""
    if connection.dialect.name == "sqlite":
        query = text("SELECT name FROM sqlite_master WHERE name IN (:table, :index) OR type = 'trigger'")
        rows = connection.execute(query, {"table": FTS_TABLE, "index": SQLITE_WINDOW_INDEX})
        return {row[0] for row in rows}
    found = {str(column["name"]) for column in inspect(connection).get_columns("article")} & {
        PG_VECTOR_COLUMN
    }
    found |= {str(index["name"]) for index in inspect(connection).get_indexes("article")} & {PG_VECTOR_INDEX}
    rows = connection.execute(
        text("SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace")
    )
    return found | ({row[0] for row in rows} & set(PG_FUNCTIONS))


def _expected(connection: Connection) -> set[str]:
    if connection.dialect.name == "sqlite":
        return {FTS_TABLE, SQLITE_WINDOW_INDEX, *SQLITE_TRIGGERS}
    return {PG_VECTOR_COLUMN, PG_VECTOR_INDEX, *PG_FUNCTIONS}


def test_migrated_store_matches_the_models(engine: Engine) -> None:
    migrate(engine)  # a second run is a no-op
    assert _differences(engine) == []


def test_the_search_index_exists_and_goes_with_its_migration(engine: Engine) -> None:
    with engine.connect() as connection:
        assert _search_objects(connection) == _expected(connection)
        if connection.dialect.name == "postgresql":
            kind = connection.execute(
                text(
                    "SELECT attgenerated FROM pg_attribute "
                    "WHERE attrelid = 'article'::regclass AND attname = :column"
                ),
                {"column": PG_VECTOR_COLUMN},
            ).scalar_one()
            assert kind == "s"  # stored generated column: PostgreSQL keeps it in sync by itself
            method = connection.execute(
                text(
                    "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                    "WHERE c.oid = to_regclass(:i)"
                ),
                {"i": PG_VECTOR_INDEX},
            ).scalar_one()
            assert method == "gin"
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
        assert _search_objects(connection) == set()
    migrate(engine)
    with engine.connect() as connection:
        assert _search_objects(connection) == _expected(connection)
    assert _differences(engine) == []


def test_schema_head_is_the_newest_migration() -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_a_store_at_the_newest_schema_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(make_engine(url))
    script = (
        "import sys\n"
        "from worker.store.db import make_engine, migrate\n"
        f"migrate(make_engine({url!r}))\n"
        "print('alembic' in sys.modules)\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"
