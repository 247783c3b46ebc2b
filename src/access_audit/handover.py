"""Scale-out: the two stages of a Kafka worker and the hand-over topics between them.

docs/design/topology.md has the picture; in short, the Kafka Streams way on our own adapters:

- **Stage 1** consumes the raw topics (group ``G``): parse, enrich, store, dead letters, exactly
  as the embedded pipeline does. Instead of running the rules it *hands over* each event to the
  hand-over topic of every rule that can use it (``rule.route_keys``: the rule's condition holds
  and the event carries the rule's key), on the partition of that key. One topic per grouping:
  ``G.by.user.name``, ``G.by.source.ip``, ``G.by.source.ip__user.name``, ``G.by._all`` (rules
  without a key). The partition is ``crc32(key) % partitions``, computed here, so both clients
  and every worker agree.
- **Stage 2** consumes the hand-over topics (group ``G.by``): per assigned partition, its own
  copy of the topic's rules and its own alert stage. Their state is checkpointed per partition
  with the partition's offset (``handover/<label>``), restored when the partition is assigned
  and written before it is revoked; on assignment the consumer seeks to the checkpointed offset,
  so the state and the position always agree, whatever Kafka committed last.
- Stage 2 drops an event id it has seen on that partition (``handover-seen/<label>``, the last
  ``seen_cap`` ids): a stage-1 replay after a crash hands over again everything it stored but
  had not committed, and the duplicates are not counted twice.

All rules run in stage 2, stateless ones included: a stateless rule's alerts fold by its dedup
fields (one alert per key and window, with a count), so the events of one key must meet on one
partition too, or two workers would each count half of the same alert.

Nothing here imports a Kafka client: the adapters (``ingest.kafka``, ``ingest.kafka_confluent``)
provide the hand-over consumer and producer.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import orjson

from access_audit.alert.manager import AlertManager
from access_audit.core.alerts import Alert
from access_audit.core.clock import Clock
from access_audit.core.errors import StoreUnavailableError
from access_audit.core.events import AccessEvent, EventValidationError
from access_audit.detect.engine import DetectionEngine
from access_audit.detect.rules import Rule
from access_audit.detect.state import Groups, key_text

log = logging.getLogger(__name__)

HANDOVER_VERSION = 1
ALL = "_all"


def topic_name(group_id: str, fields: list[str]) -> str:
    """``<group>.by.<fields>``; composite keys join with ``__`` (Kafka allows only ``[A-Za-z0-9._-]``)."""
    name = "__".join(re.sub(r"[^A-Za-z0-9._-]", "_", f) for f in fields) if fields else ALL
    return f"{group_id}.by.{name}"[:249]


def partition_of(key: tuple[Any, ...], partitions: int) -> int:
    """The hand-over partition of a rule key: the same on every worker and with either client."""
    return zlib.crc32(key_text(key).encode()) % partitions


class Handed(NamedTuple):
    """A message consumed from a hand-over topic."""

    topic: str
    partition: int
    offset: int
    value: bytes


class HandoverSource(Protocol):
    """The stage-2 consumer (``ingest.kafka.KafkaHandoverSource`` and the confluent one).

    Built with ``on_assign(parts) -> {part: offset to seek}`` and ``on_revoke(parts)``, which the
    client calls inside ``poll`` when the group rebalances."""

    def poll(self, max_records: int, timeout_s: float) -> list[Handed]: ...

    def commit(self, offsets: dict[tuple[str, int], int]) -> None: ...

    def lag(self) -> dict[tuple[str, int], int]: ...

    def close(self) -> None: ...


class HandoverProducer(Protocol):
    def send(self, topic: str, partition: int, key: bytes, value: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Topology:
    """Which rules run on which hand-over topic, derived from the loaded rules."""

    group_id: str
    topics: dict[str, list[Rule]] = field(default_factory=dict)  # topic -> its rules, in rule order
    fields: dict[str, list[str]] = field(default_factory=dict)  # topic -> the key fields
    topic_of: dict[str, str] = field(default_factory=dict)  # rule id -> topic

    @classmethod
    def of(cls, rules: Iterable[Rule], group_id: str) -> Topology:
        t = cls(group_id)
        for r in rules:
            fields = r.partition_fields()
            name = topic_name(group_id, fields)
            t.topics.setdefault(name, []).append(r)
            t.fields[name] = fields
            t.topic_of[r.id] = name
        return t

    @property
    def consumer_group(self) -> str:
        return f"{self.group_id}.by"

    def label(self, topic: str, partition: int) -> str:
        """The state namespace part of a partition: ``user.name:3``."""
        return f"{'+'.join(self.fields[topic]) or ALL}:{partition}"

    def describe(self, partitions: dict[str, int] | None = None) -> list[dict[str, Any]]:
        return [{"topic": t, "key": self.fields[t] or None, "partitions": (partitions or {}).get(t),
                 "rules": [r.id for r in rs], "stateful": sum(1 for r in rs if r.state_groups() is not None)}
                for t, rs in self.topics.items()]


class Router:
    """Stage 1: which hand-over messages an event becomes (at most one per topic and partition)."""

    def __init__(self, topology: Topology, engine: DetectionEngine, partitions: dict[str, int],
                 producer: HandoverProducer) -> None:
        self.topology = topology
        self.engine = engine  # the dispatch index picks the candidate rules; nothing is evaluated here
        self.partitions = partitions
        self.producer = producer
        self.handed = 0

    def plan(self, events: Iterable[AccessEvent]) -> list[tuple[str, int, bytes, bytes]]:
        out: list[tuple[str, int, bytes, bytes]] = []
        topic_of, parts, stats = self.topology.topic_of, self.partitions, self.engine.stats
        for ev in events:
            targets: dict[tuple[str, int], bytes] = {}
            for rule in self.engine.candidates(ev):
                try:
                    keys = rule.route_keys(ev)
                except Exception as e:  # a broken rule must not stop the others or the stream
                    stats.errors[rule.id] += 1
                    log.debug("rule %s failed to route event %s: %s", rule.id, ev.event.id, e)
                    continue
                if not keys:
                    continue
                topic = topic_of[rule.id]
                n = parts[topic]
                for k in keys:
                    kt = key_text(k).encode()
                    targets.setdefault((topic, zlib.crc32(kt) % n), kt)
            if targets:
                value = ev.to_json()
                out.extend((t, p, k, value) for (t, p), k in targets.items())
        return out

    def send(self, planned: list[tuple[str, int, bytes, bytes]]) -> None:
        """Produce and wait for the broker's acknowledgement (BusError otherwise: the batch is retried)."""
        for topic, p, key, value in planned:
            self.producer.send(topic, p, key, value)
        self.producer.flush()
        self.handed += len(planned)


def _one() -> int:
    return 1


@dataclass
class _Task:
    """One assigned hand-over partition: its rules, its alert stage, the ids it has seen, its offset."""

    topic: str
    partition: int
    label: str
    engine: DetectionEngine
    alerts: AlertManager
    seen: Groups
    offset: int | None = None
    offset_dirty: bool = False
    duplicates: int = 0
    events: int = 0

    @property
    def meta_ns(self) -> str:
        return f"handover/{self.label}"

    @property
    def seen_ns(self) -> str:
        return f"handover-seen/{self.label}"


def clone_rules(rules: list[Rule]) -> list[Rule]:
    """Fresh copies of compiled rules, each with empty state (``dataclasses.replace`` re-runs
    ``__post_init__``): one set per partition, so partitions never share a group."""
    return [dataclasses.replace(r) for r in rules]


class Stage2:
    """The rules and the alert stage of every assigned hand-over partition.

    ``write_alerts(updates)`` stores the alert updates and tells the sinks (``Pipeline.write_alert_updates``);
    it is idempotent, so a batch whose write fails is written again, never detected again.
    """

    def __init__(self, topology: Topology, partitions: dict[str, int], *, context: Any, clock: Clock,
                 store: Any, write_alerts: Callable[[list[tuple[Alert, bool]]], object],
                 seen_cap: int = 200_000, lateness: Callable[[list[str]], Any] | None = None) -> None:
        self.topology = topology
        self.lateness = lateness
        self.partitions = partitions
        self.context = context
        self.clock = clock
        self.store = store
        self.write_alerts = write_alerts
        self.seen_cap = seen_cap
        self.tasks: dict[tuple[str, int], _Task] = {}
        self._to_commit: dict[tuple[str, int], int] = {}  # offsets whose state rows are pending
        self.undecodable = 0
        self.busy = False

    # --- assignment ---------------------------------------------------------------------------

    def _task(self, topic: str, partition: int) -> _Task:
        label = self.topology.label(topic, partition)
        rules = clone_rules(self.topology.topics.get(topic, []))
        for r in rules:
            if r.kind == "sequence":  # only the step keys this partition owns advance here
                n = self.partitions[topic]
                r.owns = lambda key, _p=partition, _n=n: partition_of(key, _n) == _p  # type: ignore[attr-defined]
        engine = DetectionEngine(rules, self.context, partition=label,  # type: ignore[arg-type]
                                 lateness=self.lateness)
        return _Task(topic, partition, label, engine, AlertManager(clock=self.clock, partition=label),  # type: ignore[arg-type]
                     Groups(self.seen_cap))

    def assign(self, parts: list[tuple[str, int]], *, strict: bool = False) -> dict[tuple[str, int], int]:
        """Restore the state of newly assigned partitions; returns the offsets to seek to.

        Called by the client's rebalance callback, where it must not raise: a partition whose state
        cannot be read (the store is down) is left unassigned here and restored by ``detect``
        before its first message (``strict``: raise, so the caller retries)."""
        seek: dict[tuple[str, int], int] = {}
        for tp in parts:
            if tp in self.tasks:
                continue
            task = self._task(*tp)
            try:
                self._restore(task)
            except StoreUnavailableError as e:
                if strict:
                    raise
                log.warning("hand-over partition %s: state not restored yet (%s); restoring before its "
                            "first message", task.label, e)
                continue
            self.tasks[tp] = task
            if task.offset is not None:
                seek[tp] = task.offset
            log.info("hand-over partition %s assigned (state restored up to offset %s)", task.label, task.offset)
        return seek

    def _restore(self, task: _Task) -> None:
        read = getattr(self.store, "read_state", None)
        if read is None:
            return
        drop = getattr(self.store, "drop_state", None)
        meta_rows = dict(read(task.meta_ns))
        meta: dict[str, Any] = {}
        if "" in meta_rows:
            try:
                meta = orjson.loads(meta_rows[""])
            except orjson.JSONDecodeError:
                meta = {}
        n = self.partitions[task.topic]
        if meta and (meta.get("v") != HANDOVER_VERSION or meta.get("partitions") != n):
            # keys were placed by another partition count: this state belongs to other keys now
            log.warning("hand-over partition %s: stored state was made for %s partitions (now %s); "
                        "starting fresh", task.label, meta.get("partitions"), n)
            if drop is not None:
                for ns in [task.meta_ns, task.seen_ns, task.alerts.namespace,
                           *(task.engine.namespace(r) for r in task.engine.rules)]:
                    drop(ns)
            return
        task.engine.restore_rows(read, drop)
        load = getattr(self.store, "alerts_by_ids", None)
        if load is not None:
            task.alerts.restore_rows(read, load)
        task.seen.load(read(task.seen_ns))
        if isinstance(meta.get("offset"), int):
            task.offset = meta["offset"]

    def revoke(self, parts: list[tuple[str, int]], checkpoint: Callable[[], bool]) -> None:
        """Before a partition moves away: write its state (``checkpoint`` writes every pending row
        and commits the offsets), then forget it."""
        gone = [tp for tp in parts if tp in self.tasks]
        if not gone:
            return
        if not checkpoint():
            log.warning("hand-over partitions %s revoked before their state was written; the new owner "
                        "continues from the last checkpoint (nothing is counted twice)",
                        ", ".join(self.tasks[tp].label for tp in gone))
        for tp in gone:
            del self.tasks[tp]

    # --- processing ----------------------------------------------------------------------------

    def detect(self, msgs: list[Handed]) -> list[tuple[Alert, bool]]:
        """Run the partition's rules over the batch (once: state moves). Returns the alert updates.
        Only the restores can fail (the store is down), before anything moved: retry freely."""
        # Restores first (StoreUnavailableError here changes nothing: the caller retries the batch).
        missing = sorted({(m.topic, m.partition) for m in msgs} - set(self.tasks))
        if missing:
            self.assign(missing, strict=True)
        updates: list[tuple[Alert, bool]] = []
        for m in msgs:
            task = self.tasks[(m.topic, m.partition)]
            if task.offset is not None and m.offset < task.offset:
                task.duplicates += 1  # before the checkpointed position (no seek happened): seen
                continue
            task.offset = m.offset + 1
            task.offset_dirty = True
            try:
                ev = AccessEvent.from_json(m.value)
            except (EventValidationError, ValueError) as e:
                self.undecodable += 1  # written by stage 1, so never expected; logged, never a crash
                log.error("hand-over message %s/%s@%s is not an event (%s); skipped", m.topic, m.partition,
                          m.offset, e)
                continue
            eid = ev.event.id or ""
            if eid in task.seen:
                task.duplicates += 1
                continue
            task.seen.touch(eid, _one)
            task.events += 1
            for det in task.engine.process(ev):
                upd = task.alerts.process(det)
                updates.append((upd.alert, upd.new))
        return updates

    # --- state ---------------------------------------------------------------------------------

    def checkpoint_rows(self) -> tuple[list[tuple[str, str, bytes]], list[tuple[str, str]], list[str]]:
        ups: list[tuple[str, str, bytes]] = []
        dels: list[tuple[str, str]] = []
        drops: list[str] = []
        for task in self.tasks.values():
            e_ups, e_dels, e_drops = task.engine.checkpoint_rows()
            a_ups, a_dels = task.alerts.checkpoint_rows()
            s_ups, s_dels, _ = task.seen.changes()
            ups += e_ups + a_ups + [(task.seen_ns, k, v) for k, v in s_ups]
            dels += e_dels + a_dels + [(task.seen_ns, k) for k in s_dels]
            drops += e_drops
            if task.offset_dirty and task.offset is not None:
                ups.append((task.meta_ns, "", orjson.dumps({"v": HANDOVER_VERSION, "offset": task.offset,
                                                            "partitions": self.partitions[task.topic]})))
                self._to_commit[(task.topic, task.partition)] = task.offset
                task.offset_dirty = False
        return ups, dels, drops

    def take_commits(self) -> dict[tuple[str, int], int]:
        """After a checkpoint was written: the offsets it holds, to commit to Kafka (for the lag;
        the position a partition resumes from is the checkpointed one)."""
        out = {tp: o for tp, o in self._to_commit.items() if tp in self.tasks}
        self._to_commit.clear()
        return out

    def state_sizes(self) -> Iterator[tuple[str, int]]:
        for task in self.tasks.values():
            yield task.label, sum(r.state_size() for r in task.engine.rules) + len(task.alerts.open)
