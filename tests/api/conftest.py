"""Fixtures of the API tests: the same data in either store (SQLite, or a real Elasticsearch from
``scripts/services start elasticsearch``), an app over it, and a token for every role; for the
browser tests the app served on a free port and Debian's headless chromium (driven by Playwright)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_helpers import NOW, Env, build_env, drop_store

CHROMIUM = os.environ.get("ACCESS_AUDIT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def _missing(msg: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def served(sqlite_env) -> Iterator[tuple[str, Any]]:
    """The app on 127.0.0.1:<free port>, served by uvicorn in a thread."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(sqlite_env.app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", sqlite_env
    server.should_exit = True
    t.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium (never ``playwright install``: the browser is the system's)."""
    if not Path(CHROMIUM).exists():
        _missing(f"no chromium at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
