"""Which alert updates are new: the store's answer, not the alert manager's memory.

The manager says ``new`` when it opens an alert it does not hold in memory. It can open an id the
store already has: after a restart from a checkpoint older than the last stored batch, or when it
swept an open alert and an out-of-order detection of the same window arrives. The store answers
``write_alerts`` with the ids it created, so the count of new alerts (``alerts_new``) and the
``new`` flag agree with the alerts index by construction (issue 15: ``alerts_new: 96`` against
95 documents).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from access_audit.core.alerts import Alert


class StoreFlagged(list[tuple[Alert, bool]]):
    """Alert updates whose ``new`` flags are the store's answer (what ``flag_created`` returns)."""


def flag_created(updates: Iterable[tuple[Alert, bool]], created: set[str]) -> StoreFlagged:
    """The updates again, with ``new`` True for exactly one update (the first) of each id in
    ``created`` (the ids ``write_alerts`` reported created) and False for the rest.

    Called right after ``write_alerts`` for the batch. A batch written again (the pipeline retries
    a write whose sinks or store failed after the alerts were stored) gets an empty ``created``
    from the store: updates already flagged by an earlier call keep their flags, so the retry
    counts each created alert once, not zero times.
    """
    prior = isinstance(updates, StoreFlagged)
    out = StoreFlagged()
    flagged: set[str] = set()
    for alert, was_new in updates:
        new = alert.id not in flagged and (alert.id in created or (prior and was_new))
        if new:
            flagged.add(alert.id)
        out.append((alert, new))
    return out


def deliver(store: Any, sinks: Sequence[Any], updates: Iterable[tuple[Alert, bool]]) -> StoreFlagged:
    """Store alert updates (the latest version of each id), then tell the sinks, each update with
    the store's ``new`` flag; idempotent, so a caller retries it while the store or a sink is down."""
    updates = updates if isinstance(updates, StoreFlagged) else list(updates)
    flagged = StoreFlagged()
    if updates:
        latest = {a.id: a for a, _ in updates}
        flagged = flag_created(updates, set(store.write_alerts(list(latest.values())) or ()))
    for alert, is_new in flagged:
        for sink in sinks:
            sink.emit(alert, is_new)
    for sink in sinks:
        sink.flush()
    return flagged


__all__ = ["StoreFlagged", "deliver", "flag_created"]
