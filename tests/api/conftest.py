"""Fixtures of the API tests: the same data in either store (SQLite, or a real Elasticsearch from
``scripts/services start elasticsearch``), an app over it, and a token for every role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_helpers import NOW, Env, build_env, drop_store


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient` is deprecated")

@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """The app over either store, with the same data: every test using it runs on both."""
    e = build_env(request.param, tmp_path)
    yield e
    e.client.close()
    e.repo.close()
    e.app.state.tokens.close()
    drop_store(e.store)


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[Env]:
    e = build_env("sqlite", tmp_path)
    yield e
    e.client.close()
    e.repo.close()
    e.app.state.tokens.close()
    e.store.close()


@pytest.fixture
def now() -> datetime:
    return NOW.astimezone(UTC)
