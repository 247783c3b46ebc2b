"""The two stages of a Kafka worker, without a broker: placement, per-partition state, restore
and seek, replayed ids, a changed partition count (``access_audit.handover``).

The broker's part (consumer groups, rebalances, SIGKILL) is tested against the real Kafka in
tests/integration/test_scale_out.py; here the hand-over partitions are lists, which is all a
partition is to the stages.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from access_audit.alert.manager import AlertManager
from access_audit.app import load_ruleset
from access_audit.core.records import RawRecord
from access_audit.detect.engine import DetectionEngine
from access_audit.handover import Handed, Router, Stage2, Topology, partition_of
from access_audit.parse.base import ParserRegistry
from access_audit.pipeline import Pipeline
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock, ListSink

USER = "gprins@zorgwijk.nl"
T0 = datetime(2026, 11, 10, 2, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules():
    return load_ruleset().rules


def okta_failures(n: int, user: str = USER, start: int = 0):
    reg = ParserRegistry(clock=FrozenClock())
    out = []
    for i in range(start, start + n):
        raw = orjson.dumps({
            "uuid": f"f-{user}-{i}", "published": (T0 + timedelta(seconds=5 * i)).isoformat().replace("+00:00", "Z"),
            "eventType": "user.session.start", "version": "0", "severity": "INFO",
            "actor": {"id": "00ub1", "type": "User", "alternateId": user},
            "client": {"ipAddress": f"92.38.10.{20 + i}"},
            "outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}})
        res = reg.parse(RawRecord(data=raw, origin=f"okta:{i}", source="okta", log_type="okta.system",
                                  stream="okta", occurrence=i))
        out.extend(res.events)
    return out


class Bus:
    """Hand-over partitions as lists (what stage 1 produced, in order)."""

    def __init__(self) -> None:
        self.parts: dict[tuple[str, int], list[bytes]] = defaultdict(list)

    def send(self, topic: str, partition: int, key: bytes, value: bytes) -> None:
        self.parts[(topic, partition)].append(value)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self, tp: tuple[str, int], start: int = 0, end: int | None = None) -> list[Handed]:
        vals = self.parts[tp]
        return [Handed(tp[0], tp[1], off, vals[off]) for off in range(start, len(vals) if end is None else end)]


class Worker:
    """Stage 2 of one worker over a store, wired as ``app.build_worker`` wires it."""

    def __init__(self, rules, store, partitions: dict[str, int]) -> None:
        self.sink = ListSink()
        self.topology = Topology.of(rules, "g")
        self.pipeline = Pipeline(registry=ParserRegistry(clock=FrozenClock()), engine=DetectionEngine(rules),
                                 alerts=AlertManager(clock=FrozenClock()), store=store, sinks=[self.sink])
        self.stage2 = Stage2(self.topology, partitions, context=None, clock=FrozenClock(), store=store,
                             write_alerts=self.pipeline.write_alert_updates)
        self.pipeline.state_sources.append(self.stage2)

    def feed(self, msgs: list[Handed]) -> None:
        self.pipeline.write_alert_updates(self.stage2.detect(msgs))


def stage1(rules, events, partitions: dict[str, int] | None = None) -> tuple[Bus, Topology, dict[str, int]]:
    topo = Topology.of(rules, "g")
    parts = partitions or {t: 4 for t in topo.topics}
    bus = Bus()
    router = Router(topo, DetectionEngine(rules), parts, bus)
    router.send(router.plan(events))
    return bus, topo, parts


def test_topology_follows_the_rules_groupings(rules):
    topo = Topology.of(rules, "g")
    assert topo.topic_of["login_brute_force"] == "g.by.user.name"
    assert topo.topic_of["ssh_brute_force"] == "g.by.source.ip"
    # a sequence whose steps key on different fields lives on the topic of its own key
    assert topo.topic_of["privilege_granted_then_used"].startswith("g.by.user.name")
    assert all(t.replace(".", "").replace("_", "").replace("-", "").isalnum() for t in topo.topics)


def test_one_accounts_failures_from_many_addresses_meet_on_one_partition(rules):
    bus, _topo, parts = stage1(rules, okta_failures(12))
    by_user = {tp: v for tp, v in bus.parts.items() if tp[0] == "g.by.user.name"}
    assert list(by_user) == [("g.by.user.name", partition_of((USER,), parts["g.by.user.name"]))]
    assert len(next(iter(by_user.values()))) == 12
    by_ip = {tp for tp in bus.parts if tp[0] == "g.by.source.ip"}
    assert len(by_ip) > 1, "rules keyed by address see the same events spread by address"


def test_an_event_goes_only_to_the_topics_of_rules_that_can_use_it(rules):
    reg = ParserRegistry(clock=FrozenClock())
    ev = reg.parse(RawRecord(data=orjson.dumps({
        "uuid": "ok1", "published": "2026-11-10T02:10:00.000Z", "eventType": "user.session.end", "version": "0",
        "actor": {"id": "1", "type": "User", "alternateId": USER}, "outcome": {"result": "SUCCESS"}}),
        origin="o:1", source="o", log_type="okta.system", stream="o", occurrence=1)).events
    bus, topo, _ = stage1(rules, ev)
    # a sign-out feeds the per-user baselines (dormant, account status), no address-keyed rule
    assert {t for t, _ in bus.parts} == {"g.by.user.name"}
    assert len(bus.parts) == 1
    bus, _, _ = stage1([r for r in rules if topo.topic_of[r.id] != "g.by.user.name"], ev)
    assert not bus.parts


def test_restart_restores_the_partition_and_resumes_at_its_checkpoint(rules, tmp_path: Path):
    bus, _topo, parts = stage1(rules, okta_failures(12))
    tp = ("g.by.user.name", partition_of((USER,), parts["g.by.user.name"]))
    store = SqliteStore(tmp_path / "s.db")
    w1 = Worker(rules, store, parts)
    assert w1.stage2.assign([tp]) == {}
    w1.feed(bus.read(tp, 0, 6))
    assert w1.pipeline.checkpoint(force=True)
    w1.feed(bus.read(tp, 6, 8))  # processed, alerts maybe written, but no checkpoint: the worker dies

    w2 = Worker(rules, store, parts)
    assert w2.stage2.assign([tp]) == {tp: 6}, "the consumer seeks to the checkpointed offset"
    w2.feed(bus.read(tp, 6))
    w2.pipeline.checkpoint(force=True)
    brute = store.alerts(rule_id="login_brute_force", limit=10)
    assert len(brute) == 1 and brute[0].count == 12, [(a.id, a.count) for a in brute]
    store.close()


def test_a_replayed_hand_over_adds_nothing(rules, tmp_path: Path):
    events = okta_failures(12)
    bus, topo, parts = stage1(rules, events)
    tp = ("g.by.user.name", partition_of((USER,), parts["g.by.user.name"]))
    # stage 1 replays after a crash: the same events handed over again, at later offsets
    Router(topo, DetectionEngine(rules), parts, bus).send(Router(topo, DetectionEngine(rules), parts, bus).plan(events))
    assert len(bus.parts[tp]) == 24
    store = SqliteStore(tmp_path / "s.db")
    w = Worker(rules, store, parts)
    w.stage2.assign([tp])
    w.feed(bus.read(tp, 0, 14))
    w.pipeline.checkpoint(force=True)
    w2 = Worker(rules, store, parts)  # the ids seen before the checkpoint are remembered too
    w2.stage2.assign([tp])
    w2.feed(bus.read(tp, 14))
    brute = store.alerts(rule_id="login_brute_force", limit=10)
    assert [a.count for a in brute] == [12]
    assert w.stage2.tasks[tp].duplicates + w2.stage2.tasks[tp].duplicates == 12
    store.close()


def test_revoke_writes_the_state_the_next_owner_restores(rules, tmp_path: Path):
    bus, _topo, parts = stage1(rules, okta_failures(12))
    tp = ("g.by.user.name", partition_of((USER,), parts["g.by.user.name"]))
    store = SqliteStore(tmp_path / "s.db")
    w1 = Worker(rules, store, parts)
    w1.stage2.assign([tp])
    w1.feed(bus.read(tp, 0, 9))  # nine: below the threshold, all of it in the rule's state
    w1.stage2.revoke([tp], lambda: w1.pipeline.checkpoint(force=True))
    assert tp not in w1.stage2.tasks
    w2 = Worker(rules, store, parts)
    assert w2.stage2.assign([tp]) == {tp: 9}
    w2.feed(bus.read(tp, 9))
    assert [a.count for a in store.alerts(rule_id="login_brute_force", limit=10)] == [12]
    store.close()


def test_state_placed_by_another_partition_count_is_not_misread(rules, tmp_path: Path, caplog):
    bus, _topo, parts = stage1(rules, okta_failures(9))
    tp = ("g.by.user.name", partition_of((USER,), parts["g.by.user.name"]))
    store = SqliteStore(tmp_path / "s.db")
    w1 = Worker(rules, store, parts)
    w1.stage2.assign([tp])
    w1.feed(bus.read(tp))
    w1.pipeline.checkpoint(force=True)
    other = {t: 8 for t in parts}
    w2 = Worker(rules, store, other)
    with caplog.at_level(logging.WARNING):
        assert w2.stage2.assign([tp]) == {}
    assert "made for 4 partitions (now 8)" in caplog.text
    assert sum(r.state_size() for r in w2.stage2.tasks[tp].engine.rules) == 0
    store.close()


def test_a_sequence_step_keyed_on_another_field_advances_only_on_its_owner(rules):
    seq = next(r for r in rules if r.id == "privilege_granted_then_used")
    assert any(st.by and st.by != seq.by for st in seq.steps), "the rule this test is about keys its steps apart"
    topo = Topology.of([seq], "g")
    stage = Stage2(topo, {t: 4 for t in topo.topics}, context=None, clock=FrozenClock(), store=None,
                   write_alerts=lambda u: None)
    topic = topo.topic_of[seq.id]
    owners = [stage._task(topic, p).engine.rules[0] for p in range(4)]
    key = ("alice",)
    assert sum(bool(r.owns(key)) for r in owners) == 1  # type: ignore[attr-defined]


def test_messages_before_the_checkpointed_offset_are_not_run_again(rules, tmp_path: Path):
    """A consumer that did not seek (its assignment's restore failed and was redone before the first
    message) gets the partition from Kafka's older commit: what the checkpoint holds is skipped."""
    bus, _topo, parts = stage1(rules, okta_failures(12))
    tp = ("g.by.user.name", partition_of((USER,), parts["g.by.user.name"]))
    store = SqliteStore(tmp_path / "s.db")
    w1 = Worker(rules, store, parts)
    w1.stage2.assign([tp])
    w1.feed(bus.read(tp, 0, 7))
    w1.pipeline.checkpoint(force=True)
    w2 = Worker(rules, store, parts)  # no assign call: the first message restores the partition
    w2.feed(bus.read(tp, 0))
    assert [a.count for a in store.alerts(rule_id="login_brute_force", limit=10)] == [12]
    assert w2.stage2.tasks[tp].duplicates == 7
    store.close()
