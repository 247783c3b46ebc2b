from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("ACCESS_AUDIT_DATASETS") or REPO.parent / "shared" / "datasets")  # worktrees: set it


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


ES_URL = os.environ.get("ACCESS_AUDIT_ELASTICSEARCH_URL", "http://127.0.0.1:19200")


@pytest.fixture(scope="session")
def es_url() -> str:
    """The real Elasticsearch node of scripts/services; fails in CI when it is not there, skips elsewhere."""
    from elasticsearch import Elasticsearch

    es = Elasticsearch(ES_URL, request_timeout=3, max_retries=0)
    try:
        es.cluster.health(timeout="2s")  # the integ-test build has no GET /, so no ping()
    except Exception as e:
        msg = f"no Elasticsearch at {ES_URL} ({type(e).__name__}): run scripts/services start elasticsearch"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    finally:
        es.close()
    return ES_URL
