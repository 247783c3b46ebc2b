"""The catalogue of event field paths, derived from the AccessEvent model.

Rules, the linter and the query language use it to reject unknown fields early and to know
which fields hold lists (``related.ip``, ``event.category``...).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from access_audit.core.events import AccessEvent


def _unwrap(ann: Any) -> tuple[list[Any], bool]:
    origin = typing.get_origin(ann)
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


def _collect(model: type[BaseModel], prefix: str, fields: dict[str, Any], lists: set[str], open_: set[str]) -> None:
    for name, f in model.model_fields.items():
        if f.exclude:
            continue
        key = f.alias if f.alias and f.alias.startswith("@") else name
        path = f"{prefix}{key}"
        inner, is_list = _unwrap(f.annotation)
        if is_list:
            lists.add(path)
        leaf = True
        for t in inner:
            if isinstance(t, type) and issubclass(t, BaseModel):
                _collect(t, path + ".", fields, lists, open_)
                leaf = False
            elif t is dict or typing.get_origin(t) is dict:
                open_.add(path + ".")
                leaf = False
        fields[path] = next((t for t in inner if t is not type(None)), None) if leaf else "object"


FIELD_TYPES: dict[str, Any] = {}
LIST_FIELDS: set[str] = set()
OPEN_PREFIXES: set[str] = set()
_collect(AccessEvent, "", FIELD_TYPES, LIST_FIELDS, OPEN_PREFIXES)


def known_field(path: str) -> bool:
    """Whether ``path`` names a field of AccessEvent (``labels.*`` and other maps are open)."""
    return path in FIELD_TYPES or any(path.startswith(p) and len(path) > len(p) for p in OPEN_PREFIXES)


def is_list_field(path: str) -> bool:
    return path in LIST_FIELDS
