"""The access event: one normalised record of somebody accessing something.

Field names follow the Elastic Common Schema (ECS) so that events land in Elasticsearch in the
shape analysts already know (``@timestamp``, ``event.outcome``, ``user.name``, ``source.ip``...).
What ECS has no field for (the resource accessed and its data classification, the data subjects
whose data it holds) lives under ``resource``, a custom field set, as ECS advises for extensions.

The event is a tree of msgspec Structs (docs/design/decisions.md, section 1): building one costs a
fraction of a pydantic model and ``msgspec.json.encode`` writes the stored document directly. Nothing
is validated on construction, which is the hot path of every parser; validation happens at the edges:
``validate_event`` (called by the parser registry on every parsed event) checks the few constrained
values, and ``AccessEvent.from_doc`` validates a stored or supplied document.

Each event has a deterministic id (see ``event_id``). Replaying the same log produces the same ids,
and the stores (SQLite, Elasticsearch) use that id to make a replay a no-op instead of a duplicate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import msgspec

EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)

# The layout of the stored document. 1: the pydantic model's JSON (until 0.1); 2: msgspec, empty
# lists and maps omitted. Both decode with ``AccessEvent.from_doc``.
DOC_VERSION = 2


class Outcome(StrEnum):
    success = "success"
    failure = "failure"
    unknown = "unknown"


class _Model(msgspec.Struct, omit_defaults=True, kw_only=True):
    """Base of the event's parts: None and empty values are left out of the stored document."""


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
StatusCode = Annotated[int, msgspec.Meta(ge=100, le=999)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class GeoPoint(_Model):
    lat: Latitude
    lon: Longitude


class Geo(_Model):
    country_iso_code: str | None = None
    country_name: str | None = None
    city_name: str | None = None
    location: GeoPoint | None = None
    timezone: str | None = None
    internal: bool | None = None  # private/reserved address: not geolocated


class EventInfo(_Model):
    id: str | None = None
    kind: str | None = None  # "event" unless the parser says otherwise (set in __post_init__)
    category: list[str] = []
    type: list[str] = []
    action: str | None = None
    outcome: Outcome | None = None  # Outcome.unknown unless the parser knows (set in __post_init__)
    reason: str | None = None
    dataset: str | None = None  # our log type, e.g. "sshd", "aws.cloudtrail"
    module: str | None = None
    provider: str | None = None
    original: str | None = None  # the raw record, kept verbatim
    ingested: datetime | None = None
    severity: int | None = None

    def __post_init__(self) -> None:
        # Defaults that must appear in every stored document (queries on event.kind/outcome).
        if self.kind is None:
            self.kind = "event"
        if self.outcome is None:
            self.outcome = Outcome.unknown


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
    roles: list[str] = []
    department: str | None = None  # custom: from the identity directory
    target: UserTarget | None = None


class Endpoint(_Model):
    ip: str | None = None
    port: Port | None = None
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
    extension: str | None = None  # of the path's last segment, without the dot (ECS): exe, php


class HttpRequest(_Model):
    method: str | None = None
    referrer: str | None = None


class HttpResponseBody(_Model):
    bytes: int | None = None


class HttpResponse(_Model):
    status_code: StatusCode | None = None
    bytes: int | None = None  # the whole response, headers and body (ECS), when the log counts that
    mime_type: str | None = None
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
    ip: list[str] = []
    user: list[str] = []
    hosts: list[str] = []


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
    data_categories: list[str] = []
    subject_ids: list[str] = []
    records: NonNegative | None = None
    owner: str | None = None


class AccessEvent(_Model, dict=True):
    """One normalised access record. ``timestamp`` is serialised as ECS ``@timestamp``.

    Two attributes travel with the event but are never stored (``dict=True`` gives the Struct a
    ``__dict__`` for them): ``log_origin`` (file:line or topic/partition/offset) and ``raw_obj``,
    the vendor record the parser decoded, which Sigma rules read instead of decoding it again.
    """

    timestamp: datetime = msgspec.field(name="@timestamp")
    event: EventInfo = msgspec.field(default_factory=EventInfo)
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
    related: Related = msgspec.field(default_factory=Related)
    labels: dict[str, str] = {}
    message: str | None = None

    log_origin: ClassVar[str | None] = None  # instance value set by the registry (not stored)
    raw_obj: ClassVar[Any] = None  # instance value set by JSON parsers (not stored)

    def __post_init__(self) -> None:
        ts = self.timestamp
        if ts.tzinfo is None:
            ts = self.timestamp = ts.replace(tzinfo=UTC)
        elif ts.utcoffset():
            ts = self.timestamp = ts.astimezone(UTC)
        if ts < EARLIEST_PLAUSIBLE:
            raise ValueError(f"timestamp {ts.isoformat()} is before {EARLIEST_PLAUSIBLE.year}: "
                             "not a plausible event time")

    @property
    def id(self) -> str:
        assert self.event.id is not None, "event id is assigned by the parser registry"
        return self.event.id

    def to_doc(self) -> dict[str, Any]:
        """The ECS document stored in Elasticsearch / SQLite (``@timestamp``, no Nones)."""
        doc: dict[str, Any] = msgspec.to_builtins(self)
        return doc

    def to_json(self) -> bytes:
        """``to_doc`` encoded as JSON, in one step (what the stores write)."""
        return _ENCODER.encode(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> AccessEvent:
        """Validate a document (stored, supplied to the API, or ECS input) into an event.

        Raises ``EventValidationError`` (a ValueError) naming the field that is wrong.
        """
        try:
            return msgspec.convert(doc, cls, strict=False)
        except msgspec.ValidationError as e:
            raise EventValidationError.of(e) from None

    @classmethod
    def from_json(cls, data: bytes | str) -> AccessEvent:
        try:
            return _DECODER.decode(data)
        except msgspec.ValidationError as e:
            raise EventValidationError.of(e) from None

    def fill_related(self) -> AccessEvent:
        """Collect ips, users and hosts into ``related.*`` (ECS pivot fields)."""
        r = self.related
        for ip in (self.source.ip if self.source else None, self.destination.ip if self.destination else None):
            if ip and ip not in r.ip:
                r.ip.append(ip)
        u = self.user
        if u is not None:
            for name in (u.name, u.target.name if u.target else None):
                if name and name not in r.user:
                    r.user.append(name)
        h = self.host.name if self.host else None
        if h and h not in r.hosts:
            r.hosts.append(h)
        return self


class EventValidationError(ValueError):
    """An event document has a field of the wrong type or out of range (the message names it)."""

    @classmethod
    def of(cls, e: msgspec.ValidationError) -> EventValidationError:
        """``field.path: what is wrong`` from msgspec's ``what is wrong - at `$.field.path```."""
        text = str(e)
        what, sep, where = text.rpartition(" - at `$")
        if not sep:
            return cls(text)
        path = where.rstrip("`").lstrip(".").replace("[", ".").replace("]", "")
        return cls(f"{path}: {what}")


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(AccessEvent, strict=False)


def validate_event(ev: AccessEvent) -> None:
    """Check the constrained values of a parsed event (the parser registry calls it once per
    event): ports, HTTP status codes, coordinates, record counts. Raises EventValidationError.

    Construction does not validate (it is the parsers' hot path); these are the only values a
    parser can get out of range from its input, so they are checked here, by hand, cheaply.
    """
    for name, ep in (("source", ev.source), ("destination", ev.destination)):
        if ep is None:
            continue
        if ep.port is not None and not (isinstance(ep.port, int) and 0 <= ep.port <= 65535):
            raise EventValidationError(f"{name}.port: {ep.port!r} is not a port (0-65535)")
        loc = ep.geo.location if ep.geo is not None else None
        if loc is not None and not (-90 <= loc.lat <= 90 and -180 <= loc.lon <= 180):
            raise EventValidationError(f"{name}.geo.location: ({loc.lat}, {loc.lon}) is not a coordinate")
    resp = ev.http.response if ev.http is not None else None
    if resp is not None and resp.status_code is not None and not (100 <= resp.status_code <= 999):
        raise EventValidationError(f"http.response.status_code: {resp.status_code!r} is not a status code")
    res = ev.resource
    if res is not None and res.records is not None and res.records < 0:
        raise EventValidationError(f"resource.records: {res.records!r} is negative")


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
