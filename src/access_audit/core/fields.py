"""The catalogue of event field paths, derived from the AccessEvent model.

Rules, the linter and the query language use it to reject unknown fields early and to know
which fields hold lists (``related.ip``, ``event.category``...). ``accessor`` turns a dotted path
into a getter compiled once (the rules' per-event field access).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import msgspec

from access_audit.core.events import AccessEvent, get_field


def _unwrap(ann: Any) -> tuple[list[Any], bool]:
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(ann)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        is_list = False
        for a in typing.get_args(ann):
            inner, lst = _unwrap(a)
            out += inner
            is_list |= lst
        return out, is_list
    if origin is list:
        return [a for a in typing.get_args(ann)], True
    return [ann], False


def _is_struct(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, msgspec.Struct)


def _collect(model: type[msgspec.Struct], prefix: str, fields: dict[str, Any], lists: set[str],
             open_: set[str], structs: dict[str, type[msgspec.Struct]]) -> None:
    for f in msgspec.structs.fields(model):
        path = f"{prefix}{f.encode_name}"
        inner, is_list = _unwrap(f.type)
        if is_list:
            lists.add(path)
        leaf = True
        for t in inner:
            if _is_struct(t):
                structs[path] = t
                _collect(t, path + ".", fields, lists, open_, structs)
                leaf = False
            elif t is dict or typing.get_origin(t) is dict:
                open_.add(path + ".")
                leaf = False
        fields[path] = next((t for t in inner if t is not type(None)), None) if leaf else "object"


FIELD_TYPES: dict[str, Any] = {}
LIST_FIELDS: set[str] = set()
OPEN_PREFIXES: set[str] = set()
STRUCT_FIELDS: dict[str, type[msgspec.Struct]] = {}
_collect(AccessEvent, "", FIELD_TYPES, LIST_FIELDS, OPEN_PREFIXES, STRUCT_FIELDS)


def known_field(path: str) -> bool:
    """Whether ``path`` names a field of AccessEvent (``labels.*`` and other maps are open)."""
    return path in FIELD_TYPES or any(path.startswith(p) and len(path) > len(p) for p in OPEN_PREFIXES)


def is_list_field(path: str) -> bool:
    return path in LIST_FIELDS


Accessor = Callable[[AccessEvent], Any]


@lru_cache(maxsize=4096)
def accessor(path: str) -> Accessor:
    """A getter for a dotted field path (``source.geo.country_iso_code``, ``labels.x``,
    ``@timestamp``), compiled once: a chain of attribute reads with None checks, then dict
    lookups past a map field. Paths outside the catalogue fall back to ``get_field``."""
    parts = path.split(".")
    if path == "@timestamp":
        return _timestamp
    steps: list[tuple[str, bool]] = []  # (name, is a dict key)
    prefix = ""
    in_map = False
    for p in parts:
        if in_map:
            steps.append((p, True))
            continue
        name = "timestamp" if p == "@timestamp" else p
        here = f"{prefix}{p}"
        if here not in FIELD_TYPES:
            tup = tuple(parts)
            return lambda ev: get_field(ev, tup)
        steps.append((name, False))
        if here + "." in OPEN_PREFIXES:
            in_map = True
        prefix = here + "."
    lines = ["def get(ev):", "    o = ev"]
    for i, (name, is_key) in enumerate(steps):
        if i:
            lines.append("    if o is None: return None")
        lines.append(f"    o = o.get({name!r})" if is_key else f"    o = o.{name}")
    lines.append("    return o")
    ns: dict[str, Any] = {}
    exec("\n".join(lines), ns)  # the source is built from catalogue names only, never from input
    fn: Accessor = ns["get"]
    return fn


def _timestamp(ev: AccessEvent) -> Any:
    return ev.timestamp


# --- privacy classes ----------------------------------------------------------------------------
#: How much a field says about a person, for the roles that see pseudonyms (engineer, auditor):
#: ``personal`` identifies someone (filtered by pseudonym only, shown as pseudonyms), ``free_text``
#: can hold anything (shown as one pseudonym per value, never searched, filtered or counted),
#: ``quasi`` narrows people down only together with other facts (shown and filtered as it is),
#: ``safe`` describes systems, not people. A field missing here is treated as ``personal``
#: (default deny): a new field of the model stays hidden until someone classifies it.
PERSONAL, QUASI, FREE_TEXT, SAFE = "personal", "quasi", "free_text", "safe"
_P, _Q, _F, _S = PERSONAL, QUASI, FREE_TEXT, SAFE
FIELD_CLASSES: dict[str, str] = {
    "@timestamp": _S, "event.id": _S, "event.kind": _S, "event.category": _S, "event.type": _S,
    "event.action": _S, "event.outcome": _S, "event.reason": _F, "event.dataset": _S, "event.module": _S,
    "event.provider": _S, "event.original": _F, "event.ingested": _S, "event.severity": _S,
    "user.name": _P, "user.id": _P, "user.email": _P, "user.domain": _Q, "user.full_name": _P, "user.roles": _Q,
    "user.department": _Q, "user.target.name": _P, "user.target.id": _P, "user.target.email": _P,
    "source.ip": _P, "source.port": _S, "source.address": _P, "source.domain": _P,
    "source.geo.country_iso_code": _Q, "source.geo.country_name": _Q, "source.geo.city_name": _Q,
    "source.geo.location.lat": _P, "source.geo.location.lon": _P, "source.geo.timezone": _Q,
    "source.geo.internal": _S,
    "destination.ip": _P, "destination.port": _S, "destination.address": _P, "destination.domain": _Q,
    "destination.geo.country_iso_code": _S, "destination.geo.country_name": _S, "destination.geo.city_name": _S,
    "destination.geo.location.lat": _Q, "destination.geo.location.lon": _Q, "destination.geo.timezone": _S,
    "destination.geo.internal": _S,
    "host.name": _Q, "host.hostname": _Q, "service.name": _S, "service.type": _S,
    "url.original": _F, "url.domain": _S, "url.path": _F, "url.query": _F,
    "url.extension": _S, "http.response.bytes": _S, "http.response.mime_type": _S,
    "http.version": _S, "http.request.method": _S, "http.request.referrer": _F, "http.response.status_code": _S,
    "http.response.body.bytes": _S, "user_agent.original": _Q, "process.name": _S, "process.pid": _S,
    "cloud.provider": _S, "cloud.region": _S, "authentication.method": _S, "authentication.mfa": _S,
    "resource.type": _S, "resource.id": _P, "resource.name": _S, "resource.classification": _S,
    "resource.data_categories": _S, "resource.subject_ids": _P, "resource.records": _S, "resource.owner": _Q,
    "related.ip": _P, "related.user": _P, "related.hosts": _Q,
    "labels.purpose": _F, "labels.justification": _F,
    "message": _F,
}


def field_class(path: str) -> str:
    """The privacy class of a field path: personal, quasi, free_text or safe (unknown: personal)."""
    return FIELD_CLASSES.get(path, PERSONAL)


def hidden_from_pseudonymised(path: str) -> bool:
    """Whether a role that sees pseudonyms gets this field's values as pseudonyms."""
    return field_class(path) in (PERSONAL, FREE_TEXT)
