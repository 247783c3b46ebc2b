"""Every parser, fuzzed: mutated real records, structure-aware JSON edits, random bytes.

Property: ``ParserRegistry.parse`` returns for every input, in bounded time, either events that
serialise and read back, or one dead letter with the raw bytes and a reason that is not a crash.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from gen import LOG_TYPES, load_seeds, mutate_bytes, record_input
from hypothesis import given, settings
from hypothesis import strategies as st

from access_audit.core.events import AccessEvent
from access_audit.core.records import RawRecord
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REGISTRY = ParserRegistry(clock=FrozenClock(NOW))


@pytest.fixture(scope="module")
def seeds(datasets: Path) -> tuple[list[bytes], list[dict[str, Any]]]:
    lines, objs = load_seeds(datasets)
    assert len(lines) > 500 and len(objs) > 100, "the fuzzer needs the shared datasets as seeds"
    return lines, objs


def check(data: bytes, log_type: str | None) -> None:
    """The property, for one input (also used by bench/fuzz.py and the regression tests)."""
    rec = RawRecord(data, "fuzz:1", "fuzz", log_type, 2026)
    res = REGISTRY.parse(rec)
    assert bool(res.events) != bool(res.dead_letters), "events or one dead letter, never both or neither"
    if res.dead_letters:
        assert len(res.dead_letters) == 1
        d = res.dead_letters[0]
        assert d.raw == data and d.reason and d.stage == "parse"
        assert not d.reason.startswith("parser crashed"), d.reason
        return
    for ev in res.events:
        assert ev.id and ev.timestamp.tzinfo is not None
        doc = ev.to_doc()
        orjson.dumps(doc)  # both stores serialise it
        back = AccessEvent.from_doc(orjson.loads(orjson.dumps(doc)))
        assert back.id == ev.id and back.timestamp == ev.timestamp


@given(rng=st.randoms(use_true_random=False))
def test_generated_records_never_crash_a_parser(seeds, rng: random.Random) -> None:
    check(*record_input(rng, *seeds))


@given(data=st.binary(max_size=400), log_type=st.sampled_from(LOG_TYPES))
def test_random_bytes(data: bytes, log_type: str | None) -> None:
    check(data, log_type)


@given(text=st.text(max_size=300), log_type=st.sampled_from(LOG_TYPES))
def test_random_text(text: str, log_type: str | None) -> None:
    check(text.encode("utf-8", "surrogatepass"), log_type)


@given(rng=st.randoms(use_true_random=False), log_type=st.sampled_from(LOG_TYPES))
def test_every_log_type_on_every_seed_line(seeds, rng: random.Random, log_type: str | None) -> None:
    check(mutate_bytes(rng, rng.choice(seeds[0]), rng.randint(0, 2)), log_type)


def test_huge_and_deep_inputs_become_dead_letters_fast() -> None:
    import time

    for data in (b"{" * 100_000, b"[" * 100_000, b'{"a":' * 50_000, b"x" * (2 << 20), b"Dec 10 " + b" " * 500_000):
        t0 = time.perf_counter()
        check(data, None)
        assert time.perf_counter() - t0 < 2.0
