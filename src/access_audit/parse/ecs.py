"""Generic JSON already in ECS shape, and the typed field reader the vendor JSON parsers share.

The ``ecs`` parser accepts documents that already follow our event model (as written by
Filebeat/Elastic Agent, ecs-logging libraries, or by this package's own ``to_doc``). It is tried
last when auto-detecting, because its shape (``@timestamp`` plus an ``event`` object) is the
most permissive.

``Fields`` is the reader the CloudTrail, Okta and GitHub parsers use on vendor objects: it looks
keys up exactly and then ignoring case (data-lake exports such as Panther's Snowflake tables
lower-case keys: ``eventtype``, ``authenticationcontext``), and it turns a wrong type into a
ParseError that names the field, so a malformed record becomes a dead letter with a reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec
import orjson

from access_audit.core.errors import ParseError
from access_audit.core.events import EARLIEST_PLAUSIBLE, AccessEvent, Endpoint
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, parse_time, register

_MAX_TIME_CHARS = 64


_SHAPES: dict[tuple[str, ...], dict[str, str]] = {}  # an object's keys -> {lower-cased key: key}


def _lower_names(shape: tuple[str, ...]) -> dict[str, str]:
    """The case-insensitive names of an object's keys (the first key of each lower-cased spelling),
    shared by every object with the same keys in the same order: records of one source mostly
    have one of a few shapes, so the map is built once per shape, not once per record."""
    names = _SHAPES.get(shape)
    if names is None:
        names = {}
        for k in shape:
            if isinstance(k, str):
                names.setdefault(k.lower(), k)
        if len(_SHAPES) >= 4096:  # bounded: a source of ever-new shapes starts the cache afresh
            _SHAPES.clear()
        _SHAPES[shape] = names
    return names


class Fields:
    """Typed, case-tolerant reads from one decoded JSON object.

    Absent keys and JSON ``null`` read as None. A value of the wrong type raises ParseError
    (reason ``wrong field type``) naming its dotted path, e.g. ``userIdentity.userName is int,
    expected string``. Dotted keys (``"sessionContext.attributes"``) walk nested objects.
    """

    __slots__ = ("_low", "obj", "parser", "prefix")

    def __init__(self, obj: dict[str, Any], parser: str, prefix: str = "") -> None:
        self.obj = obj
        self.parser = parser
        self.prefix = prefix
        self._low: dict[str, str] | None = None  # lower-cased key -> key, on the first miss

    def has(self, key: str) -> bool:
        return self.raw(key) is not None

    def _get(self, key: str) -> Any:
        obj = self.obj
        v = obj.get(key)
        if v is not None or key in obj:
            return v
        low = self._low
        if low is None:  # absent keys are common (errorCode, additionalEventData...)
            low = self._low = _lower_names(tuple(obj))
        name = low.get(key.lower())
        return None if name is None else obj[name]

    def raw(self, key: str) -> Any:
        """The value at a (dotted) key, whatever its type; None when absent."""
        if "." not in key:
            return self._get(key)
        head, _, rest = key.partition(".")
        sub = self.obj_at(head)
        return sub.raw(rest) if sub else None

    def text(self, key: str, *, numbers: bool = False) -> str | None:
        """A string (empty -> None). ``numbers=True`` also accepts ints (ids decoded as numbers)."""
        if "." not in key:  # the common case, inline: a key present as spelt (~17 reads a record)
            v = self.obj.get(key)
            if v.__class__ is str and v:
                return v
        v = self.raw(key)
        if v is None or v == "":
            return None
        if isinstance(v, str):
            return v
        if numbers and isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        raise self.wrong(key, v, "string")

    def flag(self, key: str) -> bool | None:
        """A boolean; also the strings true/false/yes/no in any case (CloudTrail writes both)."""
        v = self.raw(key)
        if v is None or v == "":
            return None
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[v.lower()]
        raise self.wrong(key, v, "boolean")

    def number(self, key: str) -> float | None:
        v = self.raw(key)
        if v is None:
            return None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        raise self.wrong(key, v, "number")

    def obj_at(self, key: str, *, json_string: bool = False) -> Fields | None:
        """A nested object (an empty string reads as absent, as some exports write it).

        ``json_string=True`` also accepts an object serialised as a JSON string.
        """
        v = self.raw(key)
        if v is None or v == "":
            return None
        if isinstance(v, str) and json_string and v.lstrip().startswith("{"):
            try:
                v = orjson.loads(v)
            except orjson.JSONDecodeError:
                raise ParseError("wrong field type", f"{self.prefix}{key} is a string that is not valid JSON",
                                 parser=self.parser) from None
        if isinstance(v, dict):
            return Fields(v, self.parser, f"{self.prefix}{key}.")
        raise self.wrong(key, v, "object")

    def list_at(self, key: str) -> list[Any]:
        v = self.raw(key)
        if v is None or v == "":
            return []
        if isinstance(v, list):
            return v
        raise self.wrong(key, v, "list")

    def objects(self, key: str) -> list[Fields]:
        """A list of objects; an element that is not an object is a wrong type."""
        out = []
        for i, item in enumerate(self.list_at(key)):
            if not isinstance(item, dict):
                raise self.wrong(f"{key}[{i}]", item, "object")
            out.append(Fields(item, self.parser, f"{self.prefix}{key}[{i}]."))
        return out

    def label(self, key: str) -> str | None:
        """A scalar as a label value (labels are strings): bools as true/false, numbers as text."""
        v = self.raw(key)
        if v is None or v == "":
            return None
        return scalar_text(v)

    def labels(self, pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
        """``{label: value}`` for each ``(key, label)`` pair whose key holds a scalar (``label``),
        in the pairs' order; absent keys are left out."""
        return {label: v for key, label in pairs if (v := self.label(key)) is not None}

    def time(self, *keys: str) -> datetime:
        """The event time from the first of ``keys`` present, UTC and no earlier than 1990.

        A key that is present but unparseable is an error (we do not fall back to the next key).
        Times in the future are the registry's check (it has the clock).
        """
        for key in keys:
            v = self.raw(key)
            if v is None or v == "":
                continue
            where = f"{self.prefix}{key}"
            if isinstance(v, str) and len(v) > _MAX_TIME_CHARS:
                raise ParseError("invalid timestamp", f"{where} is a {len(v)}-character string", parser=self.parser)
            try:
                ts = parse_time(v, field_name=where).astimezone(UTC)
            except OverflowError:
                raise ParseError("invalid timestamp", f"{where}={v!r} is out of range", parser=self.parser) from None
            except ParseError as e:
                raise ParseError(e.reason, e.detail, parser=self.parser) from None
            if ts < EARLIEST_PLAUSIBLE:
                raise ParseError("implausible timestamp", f"{where}={v!r} is before {EARLIEST_PLAUSIBLE.year}",
                                 parser=self.parser)
            return ts
        raise ParseError("missing timestamp", f"none of {', '.join(self.prefix + k for k in keys)} is present",
                         parser=self.parser)

    def wrong(self, key: str, value: Any, expected: str) -> ParseError:
        return ParseError("wrong field type", f"{self.prefix}{key} is {type(value).__name__}, expected {expected}",
                          parser=self.parser)

    @staticmethod
    def _lookup(obj: dict[str, Any], key: str) -> Any:
        v = obj.get(key)
        if v is not None or key in obj:
            return v
        low = key.lower()
        for k, val in obj.items():
            if k.lower() == low:
                return val
        return None


_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False}


def has_keys(obj: dict[str, Any], *keys: str) -> bool:
    """Whether every key is present (ignoring case) with a non-null value: for cheap sniffing."""
    return all(Fields._lookup(obj, k) is not None for k in keys)


def code_number(v: Any) -> int | None:
    """An event code or type number as exports write it: an int, or a string of up to six digits;
    None for anything else (a bool, a longer or non-numeric string, a float)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit() and len(v) < 7:
        return int(v)
    return None


def scalar_text(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (str, int, float)):
        return str(v)
    return None


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})+\.?$")


def endpoint(value: str) -> Endpoint:
    """An endpoint from an address as a log wrote it: ``ip`` when it is an IP address, ``domain``
    when it is a host name (``ec2.amazonaws.com``), and always the verbatim ``address`` (ECS)."""
    v = value.strip()
    ip, domain = _classify_address(v)
    return Endpoint(ip=ip, domain=domain, address=v)


@lru_cache(maxsize=65536)
def _classify_address(v: str) -> tuple[str | None, str | None]:
    """(normalised ip, None) or (None, lower-cased host name) or (None, None): addresses repeat a
    lot within a log, and ``ipaddress`` parsing is the expensive part."""
    ip = v[1:-1] if v.startswith("[") and v.endswith("]") else v
    try:
        return str(ipaddress.ip_address(ip)), None
    except ValueError:
        pass
    if _HOSTNAME.match(v) and not v.replace(".", "").isdigit():
        return None, v.rstrip(".").lower()
    return None, None


# --- the ecs parser -----------------------------------------------------------------------------

_KNOWN = frozenset(f.encode_name for f in msgspec.structs.fields(AccessEvent))
_LIST_FIELDS = (("event", "category"), ("event", "type"), ("user", "roles"),
                ("related", "ip"), ("related", "user"), ("related", "hosts"))


@register
class EcsParser(JsonParser):
    """JSON documents already in ECS shape (``@timestamp`` plus ECS field sets).

    Fields our model knows are validated into the AccessEvent; dotted top-level keys
    (``"event.action": ...``, as ecs-logging writes some) are expanded first. Unknown top-level
    scalars become ``labels`` (dots replaced by ``_``); other unknown fields are dropped from the
    event but stay in ``event.original``. A single string where ECS allows an array
    (``event.category: "authentication"``) is accepted. The document's own ``event.id`` and
    ``event.dataset`` are replaced by ours and kept as ``labels.original_event_id`` /
    ``labels.original_dataset``.
    """

    name = "ecs"
    aliases = ("json", "ecs.json")
    description = "JSON documents already in Elastic Common Schema shape"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        return "@timestamp" in obj and isinstance(obj.get("event"), dict)

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        ts = Fields(obj, self.name).time("@timestamp")
        doc: dict[str, Any] = {}
        labels: dict[str, str] = {}
        dotted = []
        for key, value in obj.items():
            if key in _KNOWN:
                doc[key] = value
            elif "." in key and key.split(".", 1)[0] in _KNOWN:
                dotted.append((key, value))
            elif (text := scalar_text(value)) is not None:
                labels[key.replace(".", "_")] = text
        for key, value in dotted:  # after the nested fields, which win over a dotted duplicate
            _put_dotted(doc, key.split("."), value, self.name)
        doc["@timestamp"] = ts
        for path in _LIST_FIELDS:
            parent = doc.get(path[0])
            if isinstance(parent, dict) and isinstance(parent.get(path[1]), str):
                parent[path[1]] = [parent[path[1]]]
        given = doc.get("labels")
        if given is not None:
            if not isinstance(given, dict):
                raise ParseError("wrong field type", f"labels is {type(given).__name__}, expected object",
                                 parser=self.name)
            labels.update({str(k): t for k, v in given.items() if (t := scalar_text(v)) is not None})
        event = doc.get("event")
        if isinstance(event, dict):
            event = doc["event"] = dict(event)
            for field, label in (("id", "original_event_id"), ("dataset", "original_dataset")):
                if (text := scalar_text(event.pop(field, None))) is not None:
                    labels[label] = text
            if isinstance(event.get("outcome"), str):
                event["outcome"] = event["outcome"].lower()
        doc["labels"] = labels
        return [AccessEvent.from_doc(doc)]


def _put_dotted(doc: dict[str, Any], parts: list[str], value: Any, parser: str) -> None:
    node = doc
    for part in parts[:-1]:
        nxt = node.get(part, {})
        if not isinstance(nxt, dict):
            raise ParseError("conflicting fields", f"{'.'.join(parts)} and a non-object {part!r}", parser=parser)
        node[part] = nxt = dict(nxt)  # a copy: never mutate the decoded input
        node = nxt
    node.setdefault(parts[-1], value)
