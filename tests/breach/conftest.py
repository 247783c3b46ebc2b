from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from breach_helpers import CONFIG

from access_audit.breach.repo import BreachRepo
from access_audit.breach.workflow import BreachWorkflow
from access_audit.testing import FrozenClock


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 27, 9, 0, tzinfo=UTC))  # 10:00 in Amsterdam (CET)


@pytest.fixture
def repo(tmp_path: Path):
    r = BreachRepo(tmp_path / "breach.db")
    yield r
    r.close()


@pytest.fixture
def wf(repo: BreachRepo, clock: FrozenClock) -> BreachWorkflow:
    return BreachWorkflow(repo, clock, CONFIG)
