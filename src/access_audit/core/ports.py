"""The ports: small interfaces the core talks to. Adapters (SQLite, Elasticsearch, Kafka, the
in-process bus, Slack, console) implement them at the edges; the core imports no driver.

Lifecycle, in the order the pipeline calls them for one batch of records:

1. ``RecordSource.poll`` hands over raw records; they are parsed and enriched.
2. ``EventStore.existing_ids`` tells which events were stored before (a replay or a re-ingest):
   only the others go through the rules, so history never feeds the rules (or alerts) twice.
3. The rules run; ``EventStore.write_dead_letters`` and ``EventStore.write_events`` store the
   batch. Both are
   idempotent (the event id is the key). If either raises StoreUnavailableError, nothing of the
   batch counts as acknowledged: the pipeline waits and retries the same batch, and never
   commits the source.
4. ``EventStore.write_alerts`` and every ``AlertSink.emit`` receive the alerts the batch raised;
   ``AlertSink.flush`` makes them durable. A sink that fails its flush aborts the commit.
5. ``RecordSource.commit`` marks the batch done, and the rule state is checkpointed. A crash
   before this point replays the batch from the last checkpoint's state; replaying is safe
   because every write above is idempotent and alert ids are deterministic.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from access_audit.core.alerts import Alert
from access_audit.core.events import AccessEvent
from access_audit.core.records import DeadLetter, RawRecord


@runtime_checkable
class RecordSource(Protocol):
    def poll(self, max_records: int = 1000, timeout_s: float = 1.0) -> list[RawRecord]:
        """Next records after the last poll; empty when none arrived within the timeout."""
        ...

    def commit(self) -> None:
        """Everything returned by ``poll`` so far is processed and stored; never hand it over again."""
        ...

    def exhausted(self) -> bool:
        """True for bounded inputs (files) once everything was handed over; False for streams."""
        ...

    def close(self) -> None: ...


class EventStore(Protocol):
    def write_events(self, events: list[AccessEvent], docs: list[dict[str, Any]] | None = None) -> int:
        """Store events, keyed by their id; return how many were new (a replay returns 0).
        ``docs``, when given, are the events' ``to_doc()`` made by the caller (one per event).

        Called once per batch before the source is committed. Raises StoreUnavailableError when
        the store cannot take them now; the caller retries and does not commit.
        """
        ...

    def existing_ids(self, ids: list[str]) -> set[str]:
        """Which of these event ids are stored already (a replay). Called before detection, so
        events seen before do not feed the rules twice."""
        ...

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Store records that could not be accepted, with their reason. Same contract as events."""
        ...

    def write_alerts(self, alerts: list[Alert]) -> set[str]:
        """Insert or update alerts by id (a repeat updates the counter and last_seen); return the
        ids this call created: the pipeline's "new" flags and ``alerts_new`` are this answer."""
        ...

    def search(self, query: Any) -> list[AccessEvent]:
        """Events matching an ``access_audit.store.query.Query``, newest first unless it says otherwise."""
        ...

    def alerts(self, *, rule_id: str | None = None, limit: int = 100) -> list[Alert]: ...

    def stats(self) -> dict[str, Any]:
        """Counts of events and dead letters by log type and of alerts by rule."""
        ...

    def close(self) -> None: ...


class AlertSink(Protocol):
    def emit(self, alert: Alert, new: bool) -> None:
        """Called for each new alert (``new``) and each counter update of an open alert."""
        ...

    def flush(self) -> None:
        """Make emitted alerts durable; called before the source commits. Raising aborts the commit."""
        ...

    def close(self) -> None: ...


class DeadLetterSink(Protocol):
    def emit_dead_letter(self, letter: DeadLetter) -> None: ...

    def flush(self) -> None: ...


class Bus(Protocol):
    """A topic-based message bus: Kafka in production, an in-process queue when embedded."""

    def produce(self, topic: str, value: bytes, *, key: bytes | None = None,
                headers: dict[str, bytes] | None = None) -> None: ...

    def flush(self) -> None:
        """Block until everything produced is durable on the bus; raise BusError if it cannot be."""
        ...
