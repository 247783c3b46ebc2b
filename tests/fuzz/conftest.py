from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"  # as tests/conftest.py

sys.path.insert(0, str(Path(__file__).parent))

# CI-sized: bounded examples, a per-example deadline that catches a hang (or a quadratic blow-up)
# without flaking on a loaded two-core machine. `HYPOTHESIS_PROFILE=long` for a deeper local run.
settings.register_profile("ci", max_examples=300, deadline=2000, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=20_000, deadline=2000,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The shared datasets; ``ACCESS_AUDIT_DATASETS`` points elsewhere (a worktree has no ../shared)."""
    p = Path(os.environ.get("ACCESS_AUDIT_DATASETS") or DATASETS)
    if not p.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"datasets missing at {p}: CI must have ../shared beside the clone")
        pytest.skip(f"datasets not found at {p}")
    return p
