"""The in-process bus keeps only what a consumer group has not committed (bounded memory for `run`)."""

from __future__ import annotations

from access_audit.core.records import RawRecord
from access_audit.ingest.memory import InMemoryBus


def _fill(bus: InMemoryBus, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        bus.produce_record("raw", RawRecord(f"line {i}".encode(), f"f:{i}", "f", None, None, stream="f", occurrence=i))


def test_committed_messages_are_dropped_and_offsets_stay_absolute():
    bus = InMemoryBus()
    src = bus.source("raw")
    _fill(bus, 10)
    got = src.poll(4)
    assert [r.data for r in got] == [f"line {i}".encode() for i in range(4)]
    assert len(bus.topics["raw"]) == 10, "nothing is dropped before the commit"
    src.commit()
    assert len(bus.topics["raw"]) == 6 and bus.base["raw"] == 4
    _fill(bus, 5, 10)
    assert bus.topics["raw"][-1].offset == 14 and src.lag() == 11
    rest = src.poll(100)
    assert [r.data for r in rest] == [f"line {i}".encode() for i in range(4, 15)]
    assert src.exhausted()
    src.commit()
    assert bus.topics["raw"] == [] and bus.end_offset("raw") == 15


def test_a_restarted_consumer_replays_from_its_commit_and_slow_groups_keep_their_messages():
    bus = InMemoryBus()
    fast, slow = bus.source("raw", "fast"), bus.source("raw", "slow")
    _fill(bus, 6)
    fast.poll(6)
    fast.commit()
    slow.poll(2)
    slow.commit()
    assert bus.base["raw"] == 2, "only what both groups committed is dropped"
    slow.poll(2)  # read but not committed: a restart replays them
    again = bus.source("raw", "slow")
    assert [r.occurrence for r in again.poll(10)] == [2, 3, 4, 5]
    late = bus.source("raw", "new-group")  # a new group starts at the first retained message
    assert [r.occurrence for r in late.poll(10)] == [2, 3, 4, 5]
