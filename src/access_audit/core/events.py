"""The access event: one normalised record of somebody accessing something.

Field names follow the Elastic Common Schema (ECS) so that events land in Elasticsearch in the
shape analysts already know (``@timestamp``, ``event.outcome``, ``user.name``, ``source.ip``...).
What ECS has no field for (the resource accessed and its data classification, the data subjects
whose data it holds) lives under ``resource``, a custom field set, as ECS advises for extensions.

Each event has a deterministic id: the hash of where the record came from, its log type and the
raw bytes. Replaying the same log therefore produces the same ids, and the stores (SQLite,
Elasticsearch) use that id to make a replay a no-op instead of a duplicate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)


class Outcome(StrEnum):
    success = "success"
    failure = "failure"
    unknown = "unknown"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", validate_assignment=False)


class GeoPoint(_Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Geo(_Model):
    country_iso_code: str | None = None
    country_name: str | None = None
    city_name: str | None = None
    location: GeoPoint | None = None
    timezone: str | None = None
    internal: bool | None = None  # private/reserved address: not geolocated


class EventInfo(_Model):
    id: str | None = None
    kind: str = "event"
    category: list[str] = Field(default_factory=list)
    type: list[str] = Field(default_factory=list)
    action: str | None = None
    outcome: Outcome = Outcome.unknown
    reason: str | None = None
    dataset: str | None = None  # our log type, e.g. "sshd", "aws.cloudtrail"
    module: str | None = None
    provider: str | None = None
    original: str | None = None  # the raw record, kept verbatim
    ingested: datetime | None = None
    severity: int | None = None


class UserTarget(_Model):
    name: str | None = None
    id: str | None = None
    email: str | None = None


class User(_Model):
    name: str | None = None
    id: str | None = None
    email: str | None = None
    domain: str | None = None
    full_name: str | None = None
    roles: list[str] = Field(default_factory=list)
    department: str | None = None  # custom: from the identity directory
    target: UserTarget | None = None


class Endpoint(_Model):
    ip: str | None = None
    port: int | None = Field(default=None, ge=0, le=65535)
    address: str | None = None
    domain: str | None = None
    geo: Geo | None = None


class Host(_Model):
    name: str | None = None
    hostname: str | None = None


class Service(_Model):
    name: str | None = None
    type: str | None = None


class Url(_Model):
    original: str | None = None
    domain: str | None = None
    path: str | None = None
    query: str | None = None


class HttpRequest(_Model):
    method: str | None = None
    referrer: str | None = None


class HttpResponseBody(_Model):
    bytes: int | None = None


class HttpResponse(_Model):
    status_code: int | None = Field(default=None, ge=100, le=999)
    body: HttpResponseBody | None = None


class Http(_Model):
    version: str | None = None
    request: HttpRequest | None = None
    response: HttpResponse | None = None


class UserAgent(_Model):
    original: str | None = None


class Process(_Model):
    name: str | None = None
    pid: int | None = None


class Cloud(_Model):
    provider: str | None = None
    region: str | None = None
    account: dict[str, str] | None = None  # {"id": ...}


class Related(_Model):
    ip: list[str] = Field(default_factory=list)
    user: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)


class Authentication(_Model):
    """How the actor authenticated (custom field set; ECS has none)."""

    method: str | None = None  # password, publickey, keyboard-interactive, sso...
    mfa: bool | None = None


class Resource(_Model):
    """What was accessed, and what kind of data it holds (custom field set).

    ``classification`` is the data classification (public, internal, confidential, personal,
    special); ``data_categories`` the personal-data categories (contact, financial, health, bsn...);
    ``subject_ids`` the data subjects whose records were touched, when the log says so;
    ``records`` the number of records read or written.
    """

    type: str | None = None  # bucket, table, repository, url, host, application...
    id: str | None = None
    name: str | None = None
    classification: str | None = None
    data_categories: list[str] = Field(default_factory=list)
    subject_ids: list[str] = Field(default_factory=list)
    records: int | None = Field(default=None, ge=0)
    owner: str | None = None


class AccessEvent(_Model):
    """One normalised access record. ``timestamp`` is serialised as ECS ``@timestamp``."""

    timestamp: datetime = Field(alias="@timestamp")
    event: EventInfo = Field(default_factory=EventInfo)
    user: User | None = None
    source: Endpoint | None = None
    destination: Endpoint | None = None
    host: Host | None = None
    service: Service | None = None
    url: Url | None = None
    http: Http | None = None
    user_agent: UserAgent | None = None
    process: Process | None = None
    cloud: Cloud | None = None
    authentication: Authentication | None = None
    resource: Resource | None = None
    related: Related = Field(default_factory=Related)
    labels: dict[str, str] = Field(default_factory=dict)
    message: str | None = None
    log_origin: str | None = Field(default=None, exclude=True)  # file:line or topic/partition/offset

    @field_validator("timestamp")
    @classmethod
    def _utc_and_plausible(cls, v: datetime) -> datetime:
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        if v < EARLIEST_PLAUSIBLE:
            raise ValueError(f"timestamp {v.isoformat()} is before {EARLIEST_PLAUSIBLE.year}: "
                             "not a plausible event time")
        return v

    @property
    def id(self) -> str:
        assert self.event.id is not None, "event id is assigned by the parser registry"
        return self.event.id

    def to_doc(self) -> dict[str, Any]:
        """The ECS document stored in Elasticsearch / SQLite (``@timestamp`` alias, no Nones)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> AccessEvent:
        return cls.model_validate(doc)

    def fill_related(self) -> AccessEvent:
        """Collect ips, users and hosts into ``related.*`` (ECS pivot fields)."""
        r = self.related
        for ip in (self.source.ip if self.source else None, self.destination.ip if self.destination else None):
            if ip and ip not in r.ip:
                r.ip.append(ip)
        users = [self.user.name if self.user else None,
                 self.user.target.name if self.user and self.user.target else None]
        for u in users:
            if u and u not in r.user:
                r.user.append(u)
        for h in (self.host.name if self.host else None,):
            if h and h not in r.hosts:
                r.hosts.append(h)
        return self


def event_id(where: str, log_type: str, raw: bytes, occurrence: int | None = None, part: int = 0) -> str:
    """Deterministic id of a raw record (docs/design/decisions.md §2).

    Scheme 2 (``occurrence`` given): ``where`` is the stream name (``""`` unless configured) and
    ``occurrence`` the number of earlier records with the same log type, stream and bytes in the
    same input; ``part`` numbers the events of a record that holds several. The id does not
    depend on the file's path or name, so a renamed, rotated or copied file is recognised.
    ``blake2b-128("v2" 0 log_type 0 stream 0 raw 0 occurrence[#part])``

    Scheme 1 (``occurrence`` None): ``where`` is the origin (``/abs/path:line``,
    ``topic/partition/offset``): the ids of stores written before scheme 2, and of synthetic events.
    """
    h = hashlib.blake2b(digest_size=16)
    if occurrence is None:
        h.update(where.encode("utf-8", "surrogateescape"))
        h.update(b"\x00")
        h.update(log_type.encode())
        h.update(b"\x00")
        h.update(raw)
        return h.hexdigest()
    h.update(b"v2\x00")
    h.update(log_type.encode())
    h.update(b"\x00")
    h.update(where.encode("utf-8", "surrogateescape"))
    h.update(b"\x00")
    h.update(raw)
    h.update(b"\x00")
    h.update(str(occurrence).encode() if not part else f"{occurrence}#{part}".encode())
    return h.hexdigest()


_MISSING = object()


def get_field(event: AccessEvent, path: tuple[str, ...]) -> Any:
    """Value at a dotted ECS path (pre-split), or None. ``("@timestamp",)`` is the timestamp.

    Labels are reachable as ``labels.<key>``. This is on the per-event hot path: keep it plain.
    """
    obj: Any = event
    for part in path:
        if obj is None:
            return None
        if isinstance(obj, dict):
            obj = obj.get(part)
            continue
        if part == "@timestamp":
            part = "timestamp"
        obj = getattr(obj, part, None)
    return obj
