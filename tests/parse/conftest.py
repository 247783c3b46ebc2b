"""Shared fixtures for the parser tests: a registry on a frozen clock, the shared datasets, and
a checker that runs a whole vendor dataset through the registry (by log type and auto-detected).

The datasets live outside the repository, in ``../shared/datasets`` next to the checkout; they are
read in place, never copied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from access_audit.core.events import AccessEvent
from access_audit.core.records import DeadLetter, RawRecord
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> ParserRegistry:
    return ParserRegistry(clock=FrozenClock(NOW))


@pytest.fixture(scope="session")
def panther(datasets: Path) -> Callable[[str], list[dict[str, Any]]]:
    """Rows of ``panther_tests/<log type>.jsonl``; each wraps the vendor event under ``event``."""

    def load(log_type: str) -> list[dict[str, Any]]:
        path = datasets / "panther_tests" / f"{log_type}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    return load


ParseOne = Callable[..., "AccessEvent | DeadLetter"]


@pytest.fixture
def parse_one(registry: ParserRegistry) -> ParseOne:
    """Parse one record; returns its single event or its dead letter (never raises)."""

    def parse(data: bytes | dict[str, Any] | str, log_type: str | None = None, origin: str = "test:1",
              occurrence: int = 0, stream: str = "") -> Any:
        if isinstance(data, dict):
            data = orjson.dumps(data)
        elif isinstance(data, str):
            data = data.encode()
        res = registry.parse(RawRecord(data=data, origin=origin, source="test", log_type=log_type,
                                       occurrence=occurrence, stream=stream))
        assert len(res.events) + len(res.dead_letters) >= 1
        if res.dead_letters:
            assert not res.events
            return res.dead_letters[0]
        assert len(res.events) == 1, "use registry.parse directly for multi-event records"
        return res.events[0]

    return parse


def usable_time(event: dict[str, Any], keys: Iterable[str]) -> bool:
    """Independent of the parsers: does the first present time field hold a real date?"""
    for key in keys:
        v = next((val for k, val in event.items() if k.lower() == key.lower()), None)
        if v in (None, ""):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return True
        try:
            datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return False


@dataclass
class DatasetReport:
    """What happened to one dataset. Failures are (label, reason) pairs."""

    total: int = 0
    parsed: int = 0
    with_time: int = 0
    parsed_with_time: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # events with a usable time
    timeless_failures: list[tuple[str, str]] = field(default_factory=list)
    auto_misses: list[tuple[str, str]] = field(default_factory=list)
    wrong_parser: list[tuple[str, str]] = field(default_factory=list)
    events: dict[int, AccessEvent] = field(default_factory=dict)

    def assert_ok(self, min_rate: float = 0.98) -> None:
        """At least ``min_rate`` of the events that carry a real timestamp parse; every other
        failure is the fixture's missing or placeholder timestamp; auto-detection picks the same
        parser (same event id) for at least ``min_rate`` of the parsed events and never another."""
        rate = self.parsed_with_time / self.with_time
        assert rate >= min_rate, (f"{self.parsed_with_time}/{self.with_time} = {rate:.1%} of events with a "
                                  f"timestamp parsed; failing:\n{_lines(self.failures)}")
        not_time = [(lb, r) for lb, r in self.timeless_failures if "timestamp" not in r]
        assert not not_time, f"events without a usable timestamp failed for another reason:\n{_lines(not_time)}"
        assert not self.wrong_parser, f"auto-detect disagreed:\n{_lines(self.wrong_parser)}"
        auto_rate = 1 - len(self.auto_misses) / max(self.parsed, 1)
        assert auto_rate >= min_rate, f"auto-detect missed:\n{_lines(self.auto_misses)}"


def _lines(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"  {label}: {reason}" for label, reason in pairs)


@pytest.fixture
def run_dataset(registry: ParserRegistry) -> Callable[..., DatasetReport]:
    """Run every row through the registry twice (log type given, then auto-detect) and report."""

    def run(rows: list[dict[str, Any]], log_type: str, time_keys: tuple[str, ...]) -> DatasetReport:
        rep = DatasetReport()
        for i, row in enumerate(rows):
            data = orjson.dumps(row["event"])
            origin = f"panther/{log_type}:{i}"
            label = f"#{i} {row['rule_id']} / {row['test_name']}"
            typed = registry.parse(RawRecord(data=data, origin=origin, source="panther", log_type=log_type))
            auto = registry.parse(RawRecord(data=data, origin=origin, source="panther"))
            timed = usable_time(row["event"], time_keys)
            rep.total += 1
            rep.with_time += timed
            if typed.events:
                rep.parsed += 1
                rep.parsed_with_time += timed
                rep.events[i] = typed.events[0]
                if not auto.events:
                    rep.auto_misses.append((label, auto.dead_letters[0].reason))
                elif auto.events[0].event.dataset != log_type or auto.events[0].id != typed.events[0].id:
                    rep.wrong_parser.append((label, f"picked {auto.events[0].event.dataset}"))
            else:
                (rep.failures if timed else rep.timeless_failures).append((label, typed.dead_letters[0].reason))
                if auto.events:
                    rep.wrong_parser.append((label, f"{auto.events[0].event.dataset} parsed what {log_type} refused"))
        return rep

    return run


@pytest.fixture(scope="session")
def find() -> Callable[[list[dict[str, Any]], str], dict[str, Any]]:
    """The vendor event of the Panther test with this name (``rule_id`` to disambiguate)."""

    def lookup(rows: list[dict[str, Any]], test_name: str, rule_id: str | None = None) -> dict[str, Any]:
        for row in rows:
            if row["test_name"] == test_name and (rule_id is None or row["rule_id"] == rule_id):
                return dict(row["event"])
        raise LookupError(f"no Panther test named {test_name!r}")

    return lookup
