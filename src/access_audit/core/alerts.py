"""Alerts: what the security team sees. One alert per finding, with a counter for repeats."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def default_risk(self) -> int:
        return _RISK[self]


_RANK = {Severity.info: 0, Severity.low: 1, Severity.medium: 2, Severity.high: 3, Severity.critical: 4}
_RISK = {Severity.info: 10, Severity.low: 25, Severity.medium: 50, Severity.high: 75, Severity.critical: 95}


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    escalated = "escalated"
    false_positive = "false_positive"
    resolved = "resolved"


class Alert(BaseModel):
    """One finding of one rule for one dedup key.

    ``first_seen``/``last_seen`` are event times. Repeats of the same dedup key inside the
    rule's suppression window raise ``count`` and extend ``last_seen`` instead of making a new
    alert. ``event_ids`` is the evidence (capped; ``count`` says how many there were).
    """

    model_config = ConfigDict(extra="ignore")

    id: str
    rule_id: str
    title: str
    description: str = ""
    severity: Severity
    risk_score: int = Field(ge=0, le=100)
    dedup_key: str
    first_seen: datetime
    last_seen: datetime
    created_at: datetime  # wall-clock time the alert was raised
    count: int = 1
    event_ids: list[str] = Field(default_factory=list)
    group: dict[str, Any] = Field(default_factory=dict)  # the group-by field values
    user: str | None = None
    source_ip: str | None = None
    host: str | None = None
    resource: str | None = None
    data_categories: list[str] = Field(default_factory=list)
    personal_data: bool = False
    mitre: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    log_types: list[str] = Field(default_factory=list)
    query: str | None = None  # a query that shows the evidence
    status: AlertStatus = AlertStatus.open
    context: dict[str, Any] = Field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def alert_id(rule_id: str, dedup_key: str, first_event_id: str) -> str:
    """Deterministic: a replay of the same events raises an alert with the same id."""
    return hashlib.blake2b(f"{rule_id}\x00{dedup_key}\x00{first_event_id}".encode(), digest_size=12).hexdigest()


def window_alert_id(rule_id: str, dedup_key: str, window_start: int) -> str:
    """The id of the alert of one rule, dedup key and suppression window (its start, epoch seconds
    in event time): the same whichever detection arrives first (docs/design/decisions.md, section 3)."""
    return hashlib.blake2b(f"alert\x00{rule_id}\x00{dedup_key}\x00{window_start}".encode(),
                           digest_size=12).hexdigest()


def keep_lifecycle(new_doc: dict[str, Any], stored_doc: dict[str, Any] | None) -> dict[str, Any]:
    """A pipeline write of an alert keeps what people did to it (status, history).

    The pipeline only moves counters and ``last_seen``; acknowledging, escalating, marking a false
    positive or resolving is done by people (``lifecycle=True`` writes), and a later counter
    update must not undo it.
    """
    if not stored_doc:
        return new_doc
    new_doc["status"] = stored_doc.get("status", new_doc.get("status"))
    history = (stored_doc.get("context") or {}).get("history")
    if history:
        new_doc.setdefault("context", {})["history"] = history
    return new_doc
