"""Salesforce event monitoring: logins (``salesforce.login``: the ``Login`` and ``LoginAs``
event types) and the other event types that record access (``salesforce.event``), one record
per JSON object with the upper-case column names of the EventLogFile CSVs (``EVENT_TYPE``,
``TIMESTAMP``, ``USER_ID``...), as Panther stores them. A Panther test row ``{"event": {...}}``
is read as its ``event``.

Common:

* ``@timestamp`` = ``TIMESTAMP_DERIVED`` (ISO 8601), else ``TIMESTAMP`` (the CSV's
  ``20130715233322.670``, or Panther's ``2023-05-04 21:36:47.569``; UTC), else ``p_event_time``.
* ``event.action`` = ``EVENT_TYPE`` (required); ``user.name`` = ``USER_NAME`` (``USERNAME`` in
  the real-time event stores), ``user.id`` = ``USER_ID_DERIVED`` (18 characters), else
  ``USER_ID``; a record without either is a dead letter.
* ``source`` = ``SOURCE_IP``, else ``CLIENT_IP`` (verbatim when Salesforce writes
  ``Salesforce.com IP``); ``user_agent.original`` = ``BROWSER_TYPE``.
* ``resource`` = the org (type organization, id = ``ORGANIZATION_ID``, name Salesforce), unless
  the event names a connected app or an object (below).
* labels ``salesforce_org_id``, ``salesforce_request_id``, ``salesforce_session_key``,
  ``salesforce_login_key``, ``salesforce_user_type``, ``salesforce_uri``, ``salesforce_api_type``,
  ``salesforce_api_version``, ``salesforce_tls_protocol``, ``salesforce_status`` (``STATUS``),
  ``salesforce_client_id``, ``salesforce_connection_type``, ``salesforce_oauth_scopes``,
  ``salesforce_job_id``, ``salesforce_api_total_count``.

``salesforce.login``:

* ``Login``: ``event.category`` authentication, ``type`` start; ``event.outcome`` success for
  ``LOGIN_STATUS`` ``LOGIN_NO_ERROR``, else failure with ``event.reason`` = ``LOGIN_STATUS``
  (``LOGIN_ERROR_INVALID_PASSWORD``...); ``authentication.method`` =
  ``AUTHENTICATION_METHOD_REFERENCE``; label ``salesforce_login_status``.
* ``LoginAs`` (an admin logged in as another user): ``user`` = the admin who impersonates
  (``DELEGATED_USER_NAME``, ``DELEGATED_USER_ID_DERIVED`` / ``DELEGATED_USER_ID``, required),
  ``user.target`` = the user impersonated (``USER_ID_DERIVED`` / ``USER_ID``, ``USER_NAME``); category
  authentication, type start, outcome success (Salesforce writes the event for a Login-As that
  took place; it has no status column).

``salesforce.event``, by ``EVENT_TYPE`` (table ``EVENT_TYPES``):

* ``ApiTotalUsage``, ``ApiConnectedApp``, ``ConnectedAppUsageEventStore``: category api, type
  access; ``resource`` = the connected app (type application, id = ``CONNECTED_APP_ID``, name =
  ``CONNECTED_APP_NAME``, owner = the org) when named.
* ``BulkApiResultEventStore``: category database, type from ``OPERATION_TYPE`` (query -> access,
  insert -> creation, update/upsert -> change, delete/hardDelete -> deletion); ``resource`` = the
  object (type object, name = ``ENTITY_NAME``, records = ``RECORDS_PROCESSED``, owner = the org).
* ``ApiAnomalyEventStore`` (Threat Detection): ``kind`` alert, category intrusion_detection,
  ``message`` = ``SUMMARY``, label ``salesforce_score`` (``SCORE``).
* ``OAuthTokenRefreshFailed``: category authentication, outcome failure;
  ``OAuthTokenRevoked``: category iam, type deletion.
* ``event.outcome`` from ``STATUS`` (Success / Failed) where there is one; ``Login`` /
  ``LoginAs`` are refused there (they are ``salesforce.login``).

Left out: the other event types (``URI``, ``ReportExport``, ``ApexExecution``... none has a
fixture, and page views and report exports would need their own mapping). They are not
auto-detected; given explicitly as ``salesforce.event`` they parse with the common fields only.

**Never seen in a real record**: every field (the datasets hold only Panther's hand-written
fixtures, all with a time); the CSV's compact ``TIMESTAMP``, ``LOGIN_STATUS`` values other than
``LOGIN_NO_ERROR`` and ``CLIENT_IP`` ``Salesforce.com IP`` come from Salesforce's documentation.
``ApiConnectedApp``, ``ConnectedAppUsageEventStore``, ``OAuthTokenRefreshFailed`` and
``OAuthTokenRevoked`` are read as the fixtures show them; their columns were not checked against
Salesforce's documentation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    Authentication,
    EventInfo,
    Outcome,
    Resource,
    User,
    UserAgent,
    UserTarget,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import email_or_none, inner, required, unwrap
from access_audit.parse.ecs import Fields, endpoint, has_keys

_TIME_KEYS = ("TIMESTAMP_DERIVED", "TIMESTAMP", "p_event_time")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,6}))?$")
_LOGIN_TYPES = frozenset({"Login", "LoginAs"})
# EVENT_TYPE -> (kind, category, type, default outcome)
EVENT_TYPES: dict[str, tuple[str, str, str, Outcome]] = {
    "ApiTotalUsage": ("event", "api", "access", Outcome.success),
    "ApiConnectedApp": ("event", "api", "access", Outcome.success),
    "ConnectedAppUsageEventStore": ("event", "api", "access", Outcome.success),
    "BulkApiResultEventStore": ("event", "database", "access", Outcome.success),
    "ApiAnomalyEventStore": ("alert", "intrusion_detection", "info", Outcome.unknown),
    "OAuthTokenRefreshFailed": ("event", "authentication", "start", Outcome.failure),
    "OAuthTokenRevoked": ("event", "iam", "deletion", Outcome.success),
}
_BULK_OPS = {"query": "access", "queryall": "access", "insert": "creation", "update": "change",
             "upsert": "change", "delete": "deletion", "harddelete": "deletion"}
_STATUS = {"success": Outcome.success, "succeeded": Outcome.success, "failed": Outcome.failure,
           "failure": Outcome.failure, "error": Outcome.failure}
_LABELS = (("ORGANIZATION_ID", "salesforce_org_id"), ("REQUEST_ID", "salesforce_request_id"),
           ("SESSION_KEY", "salesforce_session_key"), ("LOGIN_KEY", "salesforce_login_key"),
           ("USER_TYPE", "salesforce_user_type"), ("URI", "salesforce_uri"), ("API_TYPE", "salesforce_api_type"),
           ("API_VERSION", "salesforce_api_version"), ("TLS_PROTOCOL", "salesforce_tls_protocol"),
           ("STATUS", "salesforce_status"), ("CLIENT_ID", "salesforce_client_id"),
           ("CONNECTION_TYPE", "salesforce_connection_type"), ("OAUTH_SCOPES", "salesforce_oauth_scopes"),
           ("JOB_ID", "salesforce_job_id"), ("API_TOTAL_COUNT", "salesforce_api_total_count"))


def _time(f: Fields) -> datetime:
    """``TIMESTAMP`` in the CSV's compact ``YYYYMMDDHHMMSS.sss`` form, else the usual reading."""
    if not f.has("TIMESTAMP_DERIVED"):
        v = f.raw("TIMESTAMP")
        if isinstance(v, str) and (m := _COMPACT.match(v.strip())):
            y, mo, d, h, mi, s, frac = m.groups()
            try:
                return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                                int((frac or "0").ljust(6, "0")), tzinfo=UTC)
            except ValueError:
                raise ParseError("invalid timestamp", f"TIMESTAMP={v!r}", parser=f.parser) from None
    return f.time(*_TIME_KEYS)


def _sniff_type(obj: dict[str, Any]) -> str | None:
    rec = inner(obj)
    if not has_keys(rec, "EVENT_TYPE", "ORGANIZATION_ID"):
        return None
    v = Fields._lookup(rec, "EVENT_TYPE")
    return v if isinstance(v, str) else None


class _SalesforceParser(JsonParser):
    def start(self, obj: dict[str, Any]) -> tuple[Fields, str, datetime]:
        f = Fields(unwrap(obj), self.name)
        return f, required(f, "EVENT_TYPE"), _time(f)  # the CSV's compact TIMESTAMP needs _time

    @staticmethod
    def user(f: Fields, prefix: str = "") -> User | None:
        name = f.text(f"{prefix}USER_NAME") or (None if prefix else f.text("USERNAME"))
        uid = f.text(f"{prefix}USER_ID_DERIVED") or f.text(f"{prefix}USER_ID")
        if not (name or uid):
            return None
        return User(name=name or uid, id=uid, email=email_or_none(name))

    def require_user(self, f: Fields, prefix: str = "") -> User:
        user = self.user(f, prefix)
        if user is None:
            raise ParseError("missing field", f"{prefix}USER_NAME and {prefix}USER_ID are absent", parser=self.name)
        return user

    def common(self, f: Fields, ev: AccessEvent) -> None:
        ip = f.text("SOURCE_IP") or f.text("CLIENT_IP")
        if ip is not None:
            ev.source = endpoint(ip)
        if (ua := f.text("BROWSER_TYPE")) is not None:
            ev.user_agent = UserAgent(original=ua)
        if ev.resource is None:
            ev.resource = Resource(type="organization", id=f.text("ORGANIZATION_ID"), name="Salesforce")
        ev.labels.update(f.labels(_LABELS))


@register
class SalesforceLoginParser(_SalesforceParser):
    """Salesforce Login and LoginAs events (event monitoring)."""

    name = "salesforce.login"
    aliases = ("salesforce.loginas",)
    description = "Salesforce event monitoring Login and LoginAs events"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        return _sniff_type(obj) in _LOGIN_TYPES

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, etype, ts = self.start(obj)
        status: str | None = None
        if etype == "LoginAs":
            user = self.require_user(f, "DELEGATED_")
            target_id = f.text("USER_ID_DERIVED") or f.text("USER_ID")
            target_name = f.text("USER_NAME")
            if target_id or target_name:
                user.target = UserTarget(name=target_name, id=target_id, email=email_or_none(target_name))
            outcome, reason = Outcome.success, None
        elif etype == "Login":
            user = self.require_user(f)
            status = required(f, "LOGIN_STATUS")
            ok = status == "LOGIN_NO_ERROR"
            outcome, reason = (Outcome.success, None) if ok else (Outcome.failure, status)
        else:
            raise ParseError("unexpected event type", f"EVENT_TYPE={etype!r} is not Login or LoginAs "
                             "(the others are salesforce.event)", parser=self.name)
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=["authentication"], type=["start"], action=etype,
                            outcome=outcome, reason=reason, provider="salesforce"),
            user=user,
        )
        if status is not None:
            ev.labels["salesforce_login_status"] = status
            if (method := f.text("AUTHENTICATION_METHOD_REFERENCE")) is not None:
                ev.authentication = Authentication(method=method)
        self.common(f, ev)
        return [ev]


@register
class SalesforceEventParser(_SalesforceParser):
    """Salesforce event monitoring records other than logins: API usage, connected apps, bulk API
    results, OAuth tokens, API anomalies."""

    name = "salesforce.event"
    aliases = ("salesforce.eventlogfile",)
    description = "Salesforce event monitoring: API, connected-app, bulk API, OAuth and anomaly events"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        return _sniff_type(obj) in EVENT_TYPES

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, etype, ts = self.start(obj)
        if etype in _LOGIN_TYPES:
            raise ParseError("unexpected event type", f"EVENT_TYPE={etype!r} is salesforce.login", parser=self.name)
        user = self.require_user(f)
        kind, category, typ, outcome = EVENT_TYPES.get(etype, ("event", "", "info", Outcome.unknown))
        if (status := f.text("STATUS")) is not None:
            outcome = _STATUS.get(status.lower(), outcome)
        org = f.text("ORGANIZATION_ID")
        resource = None
        labels: dict[str, str] = {}
        if (entity := f.text("ENTITY_NAME")) is not None:
            records = f.number("RECORDS_PROCESSED")
            if records is not None and (records < 0 or records != int(records)):
                raise ParseError("invalid field value", f"RECORDS_PROCESSED={records!r}", parser=self.name)
            resource = Resource(type="object", name=entity, owner=org,
                                records=int(records) if records is not None else None)
            if (op := f.text("OPERATION_TYPE")) is not None:
                typ = _BULK_OPS.get(op.lower(), typ)
                labels["salesforce_operation"] = op
        if resource is None and (f.has("CONNECTED_APP_ID") or f.has("CONNECTED_APP_NAME")):
            resource = Resource(type="application", id=f.text("CONNECTED_APP_ID"),
                                name=f.text("CONNECTED_APP_NAME"), owner=org)
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind=kind, category=[category] if category else [], type=[typ], action=etype,
                            outcome=outcome, provider="salesforce"),
            user=user,
            resource=resource,
            labels=labels,
        )
        if kind == "alert":
            ev.message = f.text("SUMMARY")
            if (score := f.label("SCORE")) is not None:
                ev.labels["salesforce_score"] = score
        self.common(f, ev)
        return [ev]
