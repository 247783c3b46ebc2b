"""Test doubles that users of the library may need too: a frozen clock, a list sink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from access_audit.core.alerts import Alert


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kw: float) -> None:
        self._now += timedelta(**kw)

    def set(self, now: datetime) -> None:
        self._now = now


class ListSink:
    """An AlertSink that keeps what it was given: ``new`` alerts and ``updates``."""

    def __init__(self) -> None:
        self.new: list[Alert] = []
        self.updates: list[Alert] = []
        self.flushes = 0

    def emit(self, alert: Alert, new: bool) -> None:
        (self.new if new else self.updates).append(alert.model_copy(deep=True))

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        return None
