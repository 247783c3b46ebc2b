"""What travels between stages before and beside events: raw records and dead letters."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One raw log record as received, before parsing.

    ``origin`` says where it sits (``/abs/path:line`` or ``topic/partition/offset``) and feeds the
    deterministic event id; ``source`` names the stream it came from (a file, stdin, a topic);
    ``log_type`` is the parser to use, or None to auto-detect.
    """

    data: bytes
    origin: str
    source: str
    log_type: str | None = None
    year: int | None = None  # for syslog lines, which carry no year


@dataclass(slots=True)
class DeadLetter:
    """A record that could not be accepted, kept whole with the reason. Never dropped."""

    raw: bytes
    reason: str
    source: str
    origin: str
    log_type: str | None
    stage: str  # parse | store | detect
    received_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        text = self.raw.decode("utf-8", errors="replace")
        return {
            "@timestamp": self.received_at.isoformat(),
            "reason": self.reason,
            "stage": self.stage,
            "source": self.source,
            "origin": self.origin,
            "log_type": self.log_type,
            "raw_b64": base64.b64encode(self.raw).decode("ascii"),
            "raw_text": text,
            **({"extra": self.extra} if self.extra else {}),
        }
