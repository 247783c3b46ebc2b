"""Helpers the cloud and SaaS audit-log parsers share (Azure / Entra ID, Microsoft 365, Google
Cloud and Workspace, Okta, Duo, 1Password, Slack, Box, Salesforce, Zoom, OneLogin; CloudTrail,
GitHub and the Kubernetes audit log for ``required``, GitHub for ``add_geo``): the Panther test
wrapper, the opening of a record (required field, then time), the geolocation of the source,
when a user is no user, JSON-encoded columns, and small mappings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from access_audit.core.errors import ParseError
from access_audit.core.events import AccessEvent, Endpoint, Geo, GeoPoint, User
from access_audit.parse.ecs import Fields

# The keys of a row of ../shared/datasets/panther_tests: the vendor record is under "event".
_WRAPPER_KEYS = frozenset({"event", "log_type", "rule_id", "test_name", "expected_result", "rule_file", "has_mocks"})


def inner(obj: dict[str, Any]) -> dict[str, Any]:
    """The vendor record of a ``{"event": {...}}`` wrapper (a Panther test row), else ``obj``."""
    ev = obj.get("event")
    if isinstance(ev, dict) and "@timestamp" not in obj and _WRAPPER_KEYS.issuperset(obj):
        return ev
    return obj


def unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    """Replace a wrapper by its vendor record, in place, and return it.

    In place because the registry hands the decoded object on to the Sigma rules (``raw_obj``):
    they must see the vendor record, not the wrapper.
    """
    rec = inner(obj)
    if rec is not obj:
        obj.clear()
        obj.update(rec)
    return obj


def required(f: Fields, key: str) -> str:
    """The text at ``key``; a record without it is the dead letter ``missing field``
    (``<key> is absent``)."""
    v = f.text(key)
    if v is None:
        raise ParseError("missing field", f"{f.prefix}{key} is absent", parser=f.parser)
    return v


def open_record(obj: dict[str, Any], parser: str, key: str, time_keys: tuple[str, ...]) -> tuple[Fields, str, datetime]:
    """How a SaaS parser's ``parse_obj`` starts: the reader of the vendor record (a Panther wrapper
    unwrapped in place, see ``unwrap``), the text of its ``required`` field ``key`` (the action, as a
    rule), then the event time from the first of ``time_keys`` (``Fields.time``).

    The order is the dead letter's: a record without ``key`` and without a time is ``missing
    field``, not ``missing timestamp``.
    """
    f = Fields(unwrap(obj), parser)
    value = required(f, key)
    return f, value, f.time(*time_keys)


def objects(f: Fields, key: str) -> list[Fields]:
    """A list of objects, also when a Log Analytics export wrote it as a JSON string; a single
    object counts as a list of one."""
    v = f.raw(key)
    if isinstance(v, str) and v.lstrip()[:1] in ("[", "{"):
        try:
            v = orjson.loads(v)
        except orjson.JSONDecodeError:
            raise ParseError("wrong field type", f"{f.prefix}{key} is a string that is not valid JSON",
                             parser=f.parser) from None
        sub = Fields({key: v if isinstance(v, list) else [v]}, f.parser, f.prefix)
        return sub.objects(key)
    if isinstance(v, dict):
        return [Fields(v, f.parser, f"{f.prefix}{key}.")]
    return f.objects(key)


def geo_point(f: Fields, lat_key: str, lon_key: str) -> GeoPoint | None:
    """A point from two number fields (``latitude``/``longitude``, ``lat``/``lon``), None unless
    both are present; either of the wrong type is a dead letter (``Fields.number``)."""
    lat, lon = f.number(lat_key), f.number(lon_key)
    return GeoPoint(lat=lat, lon=lon) if lat is not None and lon is not None else None


def add_geo(ev: AccessEvent, geo: Geo | None) -> None:
    """Put ``geo`` on ``ev.source`` (an address-less source when there is none yet) if it names a
    place: a country (name or ISO code), a city or a point. An empty Geo is left out."""
    if geo is not None and (geo.country_iso_code or geo.country_name or geo.city_name or geo.location):
        ev.source = ev.source or Endpoint()
        ev.source.geo = geo


def identified(user: User | None) -> User | None:
    """The user when it has a name or an id; a User with neither (every field of the record absent)
    is no user, so the event has none."""
    return user if user is not None and (user.name or user.id) else None


def email_or_none(name: str | None) -> str | None:
    return name if name and "@" in name and " " not in name else None


def verb_type(verb: str) -> str:
    """ECS event.type from an operation verb (Add, Delete, Update, insert, CreateTopic...)."""
    v = verb.lower()
    if v.startswith(("add", "create", "insert", "new", "register", "invite")):
        return "creation"
    if v.startswith(("delete", "remove", "disable", "revoke", "destroy")):
        return "deletion"
    if v.startswith(("get", "list", "read", "view", "download", "search", "preview", "access")):
        return "access"
    return "change"
