"""What travels between stages before and beside events: raw records and dead letters."""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One raw log record as received, before parsing.

    ``origin`` says where it sits (``/abs/path:line`` or ``topic/partition/offset``): shown in dead
    letters, and the event id of stores of id scheme 1. ``source`` names where it was read (a file,
    stdin, a topic); ``log_type`` is the parser to use, or None to auto-detect.

    ``stream`` and ``occurrence`` feed the event id (scheme 2, docs/design/decisions.md §2): the
    configured source name (``--source-name``, ``""`` by default) and the number of earlier
    records with the same log type, stream and bytes in the same input.
    """

    data: bytes
    origin: str
    source: str
    log_type: str | None = None
    year: int | None = None  # for syslog lines, which carry no year
    stream: str = ""
    occurrence: int = 0


OCCURRENCE_WINDOW = 65_536


class OccurrenceCounter:
    """Counts identical records of one input, so that two identical lines stay two events.

    Remembers the last ``window`` distinct (log type, stream, bytes); identical records further
    apart than that are counted as the first again (documented edge case). Deterministic: the
    same input prefix always gives the same counts, which is what makes appends and rotations safe.
    """

    def __init__(self, window: int = OCCURRENCE_WINDOW) -> None:
        self.window = window
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def next(self, log_type: str | None, stream: str, data: bytes) -> int:
        """The occurrence number of this record (0 for the first), counting it."""
        h = hashlib.blake2b(digest_size=16)
        h.update((log_type or "").encode())
        h.update(b"\x00")
        h.update(stream.encode("utf-8", "surrogateescape"))
        h.update(b"\x00")
        h.update(data)
        key = h.digest()
        seen = self._seen
        n = seen.get(key)
        if n is None:
            seen[key] = 1
            if len(seen) > self.window:
                seen.popitem(last=False)
            return 0
        seen[key] = n + 1
        seen.move_to_end(key)
        return n


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

    def to_row(self) -> dict[str, Any]:
        """The listing shape (``dead-letters list``): the raw record as text, bad bytes replaced."""
        return {"received_at": self.received_at.isoformat(), "stage": self.stage, "reason": self.reason,
                "source": self.source, "origin": self.origin, "log_type": self.log_type,
                "raw": self.raw.decode("utf-8", "replace")}

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
