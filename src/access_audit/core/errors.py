"""One root error type, one subclass per stage, each carrying the context that locates it."""

from __future__ import annotations


class AccessAuditError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(AccessAuditError):
    """Settings or a config file are invalid."""


class ParseError(AccessAuditError):
    """A raw record could not be turned into an AccessEvent.

    ``reason`` is a short machine-friendly phrase, ``detail`` the human explanation. The record
    itself is kept by the caller (it goes to the dead-letter store with this error's text).
    """

    def __init__(self, reason: str, detail: str = "", *, parser: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.parser = parser
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"[{self.parser}] " if self.parser else ""
        return f"{where}{self.reason}" + (f": {self.detail}" if self.detail else "")


class RuleError(AccessAuditError):
    """A detection rule is invalid (at load) or failed while evaluating an event."""

    def __init__(self, message: str, *, rule_id: str | None = None, source: str | None = None) -> None:
        self.rule_id = rule_id
        self.source = source  # "file:line"
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [p for p in (self.source, self.rule_id) if p]
        return (": ".join(parts) + ": " if parts else "") + self.message


class RuleLoadErrors(AccessAuditError):
    """Every problem found while loading a rule set, reported at once (not only the first)."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} rule problem(s):\n" + "\n".join(f"  {e}" for e in errors))


class StoreError(AccessAuditError):
    """The event store refused or failed an operation."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached now; the caller should wait and retry, never skip."""


class BusError(AccessAuditError):
    """The message bus failed (context: topic/partition/offset where known)."""

    def __init__(self, message: str, *, topic: str | None = None, partition: int | None = None,
                 offset: int | None = None) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        loc = ":".join(str(x) for x in (topic, partition, offset) if x is not None)
        super().__init__(f"{loc}: {message}" if loc else message)


class NotifyError(AccessAuditError):
    """A notifier could not deliver (after its own retries)."""


class QueryError(AccessAuditError):
    """A query is malformed (position-aware where possible)."""
