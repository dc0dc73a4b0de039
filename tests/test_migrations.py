"""The migrations build exactly the schema the models describe, on both stores."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import worker.store.models  # noqa: F401  (the tables)
from worker.store.db import migrate


def test_migrated_store_matches_the_models(engine: Engine) -> None:
    migrate(engine)  # a second run is a no-op
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
