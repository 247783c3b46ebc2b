"""The in-process bus of the embedded mode: topics as lists, consumer groups as offsets.

It behaves like the Kafka adapter where the pipeline can tell (records in order per topic,
offsets advanced only by ``commit``, a replay from the committed offset after a restart of the
consumer), so the embedded default and production run one code path. Like a Kafka topic's
retention, messages every group has committed past are dropped: ``run`` over a 10 GB file holds
one batch in memory, not the file (offsets stay absolute).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from access_audit.core.records import RawRecord

HEADER_LOG_TYPE = "log_type"
HEADER_ORIGIN = "origin"
HEADER_SOURCE = "source"
HEADER_STREAM = "aa-stream"
HEADER_OCCURRENCE = "aa-occ"


@dataclass
class Message:
    value: bytes
    key: bytes | None = None
    headers: dict[str, bytes] = field(default_factory=dict)
    offset: int = 0


class InMemoryBus:
    """Topics of messages in memory. Not durable: the embedded mode's durability is the store."""

    def __init__(self) -> None:
        self.topics: dict[str, list[Message]] = {}
        self.base: dict[str, int] = {}  # topic -> offset of its first retained message
        self.committed: dict[tuple[str, str], int] = {}  # (group, topic) -> next offset

    def produce(self, topic: str, value: bytes, *, key: bytes | None = None,
                headers: dict[str, bytes] | None = None) -> None:
        log = self.topics.setdefault(topic, [])
        log.append(Message(value, key, dict(headers or {}), self.base.get(topic, 0) + len(log)))

    def end_offset(self, topic: str) -> int:
        return self.base.get(topic, 0) + len(self.topics.get(topic, ()))

    def read(self, topic: str, offset: int, n: int) -> list[Message]:
        """Up to ``n`` messages from the absolute ``offset`` (not before the first retained one)."""
        start = max(0, offset - self.base.get(topic, 0))
        return self.topics.get(topic, [])[start:start + n]

    def commit(self, group: str, topic: str, offset: int) -> None:
        """Record the group's next offset and drop what every group of the topic has committed past."""
        self.committed[(group, topic)] = offset
        low = min(o for (_g, t), o in self.committed.items() if t == topic)
        drop = low - self.base.get(topic, 0)
        if drop > 0:
            del self.topics.setdefault(topic, [])[:drop]
            self.base[topic] = low

    def flush(self) -> None:
        return None

    def produce_record(self, topic: str, rec: RawRecord) -> None:
        headers = {HEADER_ORIGIN: rec.origin.encode(), HEADER_SOURCE: rec.source.encode(),
                   HEADER_STREAM: rec.stream.encode(), HEADER_OCCURRENCE: str(rec.occurrence).encode()}
        if rec.log_type:
            headers[HEADER_LOG_TYPE] = rec.log_type.encode()
        if rec.year:
            headers["year"] = str(rec.year).encode()
        self.produce(topic, rec.data, headers=headers)

    def source(self, topic: str, group: str = "access-audit") -> MemorySource:
        return MemorySource(self, topic, group)


class MemorySource:
    """RecordSource over one topic of an InMemoryBus for one consumer group."""

    def __init__(self, bus: InMemoryBus, topic: str, group: str) -> None:
        self.bus, self.topic, self.group = bus, topic, group
        # a group is known to the bus from its first consumer on: its messages are kept for it
        self._pos = bus.committed.setdefault((group, topic), bus.base.get(topic, 0))

    def poll(self, max_records: int = 1000, timeout_s: float = 0.0) -> list[RawRecord]:
        self._pos = max(self._pos, self.bus.base.get(self.topic, 0))  # "earliest" is the first retained
        msgs = self.bus.read(self.topic, self._pos, max_records)
        self._pos += len(msgs)
        return [record_from_message(self.topic, m) for m in msgs]

    def commit(self) -> None:
        self.bus.commit(self.group, self.topic, self._pos)

    def exhausted(self) -> bool:
        return self._pos >= self.bus.end_offset(self.topic)

    def lag(self) -> int:
        return self.bus.end_offset(self.topic) - self._pos

    def close(self) -> None:
        return None


def record_from_message(topic: str, m: Message, partition: int = 0) -> RawRecord:
    """A RawRecord from a bus message: log type, origin and source from headers, else the topic.

    Without our stream headers the message's place is its identity (stream ``bus:<topic>/<partition>``,
    occurrence = offset), as for foreign Kafka messages."""
    h = m.headers
    origin = h.get(HEADER_ORIGIN, b"").decode() or f"{topic}/{partition}/{m.offset}"
    year = h.get("year")
    occ = h.get(HEADER_OCCURRENCE)
    if occ is not None and occ.isdigit():
        stream, occurrence = h.get(HEADER_STREAM, b"").decode("utf-8", "replace"), int(occ)
    else:
        stream, occurrence = f"bus:{topic}/{partition}", m.offset
    return RawRecord(data=m.value, origin=origin, source=h.get(HEADER_SOURCE, b"").decode() or topic,
                     log_type=(h.get(HEADER_LOG_TYPE) or b"").decode() or None,
                     year=int(year) if year else None, stream=stream, occurrence=occurrence)
