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
