"""The live API against its own OpenAPI schema (schemathesis), on both stores.

Every operation gets generated requests, valid and invalid; every response must conform to the schema
(status code, content type, headers, body), invalid input must be refused with a 4xx and nothing may be
a 5xx — hostile strings (NUL, huge numbers, odd Unicode) included, which PostgreSQL is pickier about.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.apiserver import live_server, sample_store
from worker.api.app import create_app

EXAMPLES = 30


@pytest.fixture
def api_schema(tmp_path: Path, store_url: str) -> Iterator[schemathesis.BaseSchema]:
    store = sample_store(tmp_path, store_url)
    with live_server(create_app(store.runtime)) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")
    store.runtime.engine.dispose()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The same examples on every run (a CI failure reproduces locally), and no .hypothesis/ folder.
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    # Some parameters mean more than their schema type can say (a date, a cursor of an earlier page, a
    # known feed): a schema-valid value can rightly be a 422, so "positive data acceptance" does not apply.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
