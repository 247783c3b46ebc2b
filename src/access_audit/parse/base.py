"""Parser base classes and the name-keyed registry.

A parser turns one raw record into zero or more AccessEvents, or raises ParseError with a reason.
The registry picks the parser (by the record's log type, or by sniffing), assigns the
deterministic ids, keeps the raw record on the event, and turns every failure, expected or not,
into a DeadLetter: nothing a source handed over is ever dropped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson

from access_audit.core.clock import Clock, SystemClock
from access_audit.core.errors import ParseError
from access_audit.core.events import AccessEvent, EventValidationError, event_id, validate_event
from access_audit.core.records import DeadLetter, RawRecord

FUTURE_TOLERANCE = timedelta(days=2)
MAX_RECORD_BYTES = 1 << 20


class Parser(ABC):
    """Turns raw records of one log type into AccessEvents.

    ``name`` is the log type (``sshd``, ``aws.cloudtrail``...), also written to ``event.dataset``.
    Parsers may keep per-source state (the syslog year); the registry creates one instance.
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    json: ClassVar[bool] = False
    # Line parsers are asked in descending order: a format that refines another's must come first
    # (Squid's combined lines are NCSA combined lines with a Squid tail, so ``squid.access`` is 1).
    sniff_priority: ClassVar[int] = 0
    clock: Clock | None = None  # set by the registry; parsers that infer dates use it

    def sniff(self, data: bytes) -> bool:
        """Cheap check whether a (non-JSON) line looks like this log type; used to auto-detect."""
        return False

    @abstractmethod
    def parse(self, record: RawRecord) -> list[AccessEvent]:
        """Parse one record. Raise ParseError (with a reason) when it cannot."""


class JsonParser(Parser):
    """A parser of one JSON object per record. The registry decodes once and passes the object.

    A log type with a JSON and a line shape (``mysql.audit``) sets ``json = False``: it is then
    sniffed among the line parsers too, and its ``parse`` gets the records that are not JSON.
    """

    json = True

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        """Whether a decoded JSON object looks like this log type."""
        return False

    @abstractmethod
    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        """Parse one decoded object. Raise ParseError when it cannot."""

    def parse(self, record: RawRecord) -> list[AccessEvent]:
        return self.parse_obj(decode_json(record.data), record)


def decode_json(data: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ParseError("invalid JSON", str(e)) from None
    if not isinstance(obj, dict):
        raise ParseError("invalid JSON", f"expected an object, got {type(obj).__name__}")
    return obj


_REGISTRY: dict[str, type[Parser]] = {}


def register(cls: type[Parser]) -> type[Parser]:
    """Class decorator: make a parser available by its name and aliases."""
    for n in (cls.name, *cls.aliases):
        if n in _REGISTRY and _REGISTRY[n] is not cls:
            raise ValueError(f"parser name {n!r} registered twice")
        _REGISTRY[n] = cls
    return cls


def parser_names() -> list[str]:
    """The canonical names of the registered parsers."""
    _load_builtin()
    return sorted({c.name for c in _REGISTRY.values()})


def known_log_types() -> set[str]:
    """Every name a parser answers to (names and aliases)."""
    _load_builtin()
    return set(_REGISTRY)


BUILTIN_MODULES = ("syslog", "http_access", "cloudtrail", "okta", "github", "ecs", "s3_honeybucket",
                   "azure", "o365", "gcp", "gworkspace", "auditd", "kubernetes", "pgaudit", "mysql_audit",
                   "windows", "duo", "onelogin", "onepassword", "box", "salesforce", "zoom", "slack", "squid")


def _load_builtin() -> None:
    # Importing the modules registers them; kept lazy so importing base stays cheap.
    import importlib

    for mod in BUILTIN_MODULES:
        importlib.import_module(f"access_audit.parse.{mod}")


@dataclass
class ParseResult:
    events: list[AccessEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class ParserRegistry:
    """Chooses a parser per record and never lets a record vanish.

    ``parse`` always returns: the events of the record, or a dead letter that carries the raw
    bytes and the reason. Unexpected exceptions in a parser are a bug, but still become a dead
    letter (reason ``parser crashed``) instead of stopping the stream.
    """

    def __init__(self, clock: Clock | None = None, *, id_scheme: int = 2) -> None:
        _load_builtin()
        self.clock = clock or SystemClock()
        # 2: ids from stream, bytes and occurrence (stable under rename and rotation); 1: ids from
        # the origin, for a store written before scheme 2 (its replays stay recognised).
        self.id_scheme = id_scheme
        self._instances: dict[type[Parser], Parser] = {}
        self.by_name: dict[str, Parser] = {}
        for n, cls in _REGISTRY.items():
            inst = self._instances.get(cls)
            if inst is None:
                inst = self._instances[cls] = cls()
                inst.clock = self.clock
            self.by_name[n] = inst
        self._json_parsers: list[JsonParser] = [p for p in self._instances.values() if isinstance(p, JsonParser)]
        # ECS last: it is the most permissive shape.
        self._json_parsers.sort(key=lambda p: p.name == "ecs")
        self._line_parsers = sorted((p for p in self._instances.values() if not p.json),
                                    key=lambda p: -p.sniff_priority)

    def get(self, name: str) -> Parser:
        try:
            return self.by_name[name]
        except KeyError:
            raise ParseError("unknown log type", f"{name!r}; known: {', '.join(parser_names())}") from None

    def detect(self, data: bytes) -> tuple[Parser, dict[str, Any] | None]:
        """Pick a parser by content. Returns the parser and the decoded JSON object, if any."""
        head = data.lstrip()[:1]
        if head == b"{":
            obj = decode_json(data)
            for jp in self._json_parsers:
                if jp.sniff_obj(obj):
                    return jp, obj
            raise ParseError("unrecognised JSON record", "no parser recognises its fields")
        for lp in self._line_parsers:
            if lp.sniff(data):
                return lp, None
        raise ParseError("unrecognised format", "no parser recognises this line")

    def parse(self, record: RawRecord) -> ParseResult:
        now = self.clock.now()
        log_type = record.log_type
        try:
            if len(record.data) > MAX_RECORD_BYTES:
                raise ParseError("record too large", f"{len(record.data)} bytes > {MAX_RECORD_BYTES}")
            obj: dict[str, Any] | None = None
            if log_type:
                parser = self.get(log_type)
                log_type = parser.name  # dead letters are grouped under the canonical name, not an alias
                if isinstance(parser, JsonParser) and (parser.json or record.data.lstrip()[:1] == b"{"):
                    obj = decode_json(record.data)
                    events = parser.parse_obj(obj, record)
                else:
                    events = parser.parse(record)
            else:
                parser, obj = self.detect(record.data)
                log_type = parser.name
                events = (parser.parse_obj(obj, record) if obj is not None  # type: ignore[attr-defined]
                          else parser.parse(record))
            if not events:
                raise ParseError("no events", "the record holds no access event")
            if obj is not None and len(events) == 1 and "Records" not in obj and events[0].raw_obj is None:
                # Sigma rules read the vendor record, decoded once, here (a parser of a list of
                # records, a CloudTrail file or a Kubernetes EventList, set each event's own).
                events[0].raw_obj = obj  # type: ignore[misc]
            for i, ev in enumerate(events):
                if ev.timestamp > now + FUTURE_TOLERANCE:
                    raise ParseError("timestamp in the future",
                                     f"{ev.timestamp.isoformat()} is after {now.isoformat()}")
                e = ev.event
                e.dataset = parser.name
                if self.id_scheme == 1:
                    e.id = event_id(record.origin if i == 0 else f"{record.origin}#{i}", parser.name, record.data)
                else:
                    e.id = event_id(record.stream, parser.name, record.data, record.occurrence, i)
                if e.original is None:
                    e.original = record.data.decode("utf-8", errors="replace")
                e.ingested = now
                ev.log_origin = record.origin  # type: ignore[misc]
                validate_event(ev)
                ev.fill_related()
            return ParseResult(events=events)
        except ParseError as err:
            reason = str(err)
        except EventValidationError as err:
            reason = f"invalid field values: {err}"
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as err:
            reason = f"malformed record: {type(err).__name__}: {err}"
        except Exception as err:  # a parser bug must not stop the stream or lose the record
            reason = f"parser crashed: {type(err).__name__}: {err}"
        return ParseResult(dead_letters=[DeadLetter(
            raw=record.data, reason=reason, source=record.source, origin=record.origin,
            log_type=log_type, stage="parse", received_at=now)])


def parse_time(value: Any, *, field_name: str) -> datetime:
    """Parse an ISO 8601 string or epoch seconds/milliseconds into an aware datetime."""

    if value is None or value == "":
        raise ParseError("missing timestamp", f"field {field_name!r} is absent")
    if isinstance(value, bool):
        raise ParseError("invalid timestamp", f"{field_name}={value!r}")
    if isinstance(value, (int, float)):
        secs = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(secs, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ParseError("invalid timestamp", f"{field_name}={value!r} is out of range") from None
    if isinstance(value, str):
        s = value.strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ParseError("invalid timestamp", f"{field_name}={value!r}") from None
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    raise ParseError("invalid timestamp", f"{field_name} has type {type(value).__name__}")
