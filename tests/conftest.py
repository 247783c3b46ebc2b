from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def datasets() -> Path:
    if not DATASETS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"datasets missing at {DATASETS}: CI must have ../shared beside the clone")
        pytest.skip(f"datasets not found at {DATASETS}")
    return DATASETS


@pytest.fixture
def openssh_log(datasets: Path) -> Path:
    return datasets / "loghub" / "OpenSSH_2k.log"
