from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def fault_servers() -> Iterator[None]:
    """The fault instance (Kafka 29092, Elasticsearch 29200, its own state dir): started here, and
    stopped at the end when this session started it. The shared servers are never touched."""
    import subprocess

    from harness import services

    try:
        services("status", timeout=60)
        started = False
    except subprocess.CalledProcessError:
        try:
            services("start", timeout=600)
        except (subprocess.CalledProcessError, FileNotFoundError, subprocess.TimeoutExpired) as e:
            msg = f"cannot start the fault instance of scripts/services: {e}"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
        started = True
    yield
    if started:
        services("stop")
