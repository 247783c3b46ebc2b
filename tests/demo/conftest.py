from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from access_audit.app import build_embedded
from access_audit.demo import generate, write_files
from access_audit.demo.context import write_context
from access_audit.demo.generator import DEFAULT_START
from access_audit.ingest.files import LineReader
from access_audit.ingest.memory import InMemoryBus
from access_audit.settings import Settings
from access_audit.testing import FrozenClock, ListSink


@dataclass
class PipelineRun:
    stats: Any  # the pipeline's run statistics (records, events, dead_letters)
    stored: int  # events in the store
    alerts: list[Any]


@pytest.fixture
def through_pipeline(tmp_path: Path) -> Iterator[Callable[..., PipelineRun]]:
    """Run demo log files through the embedded pipeline as ``access-audit demo`` does: the demo's
    directory and catalogue, the default rule pack, no log type given (each file is recognised),
    the clock a day after a window of ``days`` days."""
    stores = []

    def run(paths: list[Path], days: int) -> PipelineRun:
        data = tmp_path / f"data-{len(stores)}"
        directory, resources = write_context(data)
        emb = build_embedded(Settings(data_dir=data, identity_file=directory, resources_file=resources, rules=[]),
                             sinks=[ListSink()], clock=FrozenClock(DEFAULT_START + timedelta(days=days + 1)))
        stores.append(emb.store)
        bus = InMemoryBus()
        for rec in LineReader(paths):
            bus.produce_record("raw", rec)
        stats = emb.pipeline.run(bus.source("raw"), batch_size=500)
        return PipelineRun(stats, emb.store.stats()["events"]["total"], emb.store.alerts(limit=1000))

    yield run
    for store in stores:
        store.close()


@pytest.fixture
def demo_source(tmp_path: Path,
                through_pipeline: Callable[..., PipelineRun]) -> Callable[..., tuple[Path, PipelineRun, int]]:
    """One demo source's file of a ``days``-day window (seed 7) run alone through the pipeline:
    (its path, the run, how many records of ``log_type`` the demo generated)."""
    def go(source: str, log_type: str, days: int = 7) -> tuple[Path, PipelineRun, int]:
        recs, _ = generate(seed=7, days=days)
        path = write_files(recs, tmp_path / "logs")[source]
        return path, through_pipeline([path], days), sum(1 for r in recs if r.log_type == log_type)
    return go
