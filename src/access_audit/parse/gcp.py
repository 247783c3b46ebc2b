"""Google Cloud audit logs: Cloud Logging ``LogEntry`` records whose ``protoPayload`` is a
``google.cloud.audit.AuditLog`` (``logName`` ``.../logs/cloudaudit.googleapis.com%2Factivity``,
``data_access``, ``system_event``, ``policy``), as exported by a log sink or ``gcloud logging
read``; also the Eventarc CloudEvent that carries one under ``data``. Google Workspace audit logs
shared with Cloud Logging (``admin.googleapis.com``, ``login.googleapis.com``) are LogEntries too
and parse here.

Mapping (ECS on the left):

* ``@timestamp`` = ``timestamp``, else ``receiveTimestamp``.
* ``event.action`` = ``protoPayload.methodName`` (required; a Workspace entry without one uses
  ``metadata.event[0].eventName``); ``event.provider`` = ``protoPayload.serviceName``.
* ``event.outcome``: failure when ``protoPayload.status.code`` is not 0 (``event.reason`` =
  ``status.message``) or an ``authorizationInfo`` entry has ``granted: false``, else success.
* ``event.category``: iam for ``iam.googleapis.com`` and ``*IamPolicy`` methods, authentication
  for ``login.googleapis.com``, database for BigQuery, file for data-access entries of Cloud
  Storage, else configuration; ``event.type`` from the method's last verb (insert/create ->
  creation, delete -> deletion, get/list -> access, else change).
* ``user.name``/``email`` = ``authenticationInfo.principalEmail`` (else ``principalSubject``);
  ``source.ip`` = ``requestMetadata.callerIp``; ``user_agent.original`` =
  ``requestMetadata.callerSuppliedUserAgent``.
* ``resource``: ``protoPayload.resourceName`` (id and name), type = ``resource.type`` (the
  monitored resource: gce_network, pubsub_topic...).
* ``cloud``: provider gcp, ``account.id`` = ``resource.labels.project_id``, ``region`` =
  ``resourceLocation.currentLocations[0]`` or ``resource.labels.location``/``zone``.
* ``labels``: ``gcp_log_name`` (``logName``), ``gcp_log_id`` (the part after ``/logs/``, e.g.
  ``cloudaudit.googleapis.com%2Factivity``), ``gcp_resource_type``, ``gcp_permission`` and
  ``gcp_permission_granted`` (the first ``authorizationInfo`` entry), ``gcp_insert_id``,
  ``gcp_severity``, ``gcp_service_account_key``, ``gcp_delegation`` (the first
  ``serviceAccountDelegationInfo`` principal); for Workspace entries ``gworkspace_event_name``
  (``metadata.event[0].eventName``) and ``gworkspace_service`` (``serviceName``), as the
  ``gworkspace.activity`` parser writes them.

Never seen in a real record: ``status`` with a non-zero code, ``granted: false``,
``principalSubject``, the Workspace-in-Cloud-Logging form (``metadata.event``): built from Google's
documented AuditLog schema.
"""

from __future__ import annotations

from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    Cloud,
    EventInfo,
    Outcome,
    Resource,
    User,
    UserAgent,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import email_or_none, inner, unwrap, verb_type
from access_audit.parse.ecs import Fields, endpoint

_AUDIT_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"


def _entry(obj: dict[str, Any]) -> dict[str, Any]:
    """The LogEntry: the object itself, or the ``data`` of an Eventarc CloudEvent."""
    data = obj.get("data")
    if isinstance(data, dict) and "protoPayload" in data and "protoPayload" not in obj:
        return data
    return obj


def is_audit_entry(obj: dict[str, Any]) -> bool:
    pp = obj.get("protoPayload")
    if not isinstance(pp, dict):
        return False
    return pp.get("@type") == _AUDIT_TYPE or "cloudaudit.googleapis.com" in str(obj.get("logName", ""))


@register
class GcpAuditParser(JsonParser):
    """Google Cloud audit log entries (Cloud Logging LogEntry with an AuditLog payload)."""

    name = "gcp.audit"
    aliases = ("google.cloudaudit", "gcp.cloudaudit")
    description = "Google Cloud audit logs (cloudaudit.googleapis.com LogEntry)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        return is_audit_entry(_entry(inner(obj)))

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        entry = _entry(unwrap(obj))
        f = Fields(entry, self.name)
        pp = f.obj_at("protoPayload")
        if pp is None:
            raise ParseError("missing field", "protoPayload is absent: not a Cloud Audit Logs entry",
                             parser=self.name)
        ts = f.time("timestamp", "receiveTimestamp")
        service = pp.text("serviceName")
        method = pp.text("methodName")
        ws_events = pp.objects("metadata.event") if pp.obj_at("metadata") is not None else []
        ws_name = ws_events[0].text("eventName") if ws_events else None
        method = method or ws_name
        if method is None:
            raise ParseError("missing field", "protoPayload.methodName is absent", parser=self.name)

        outcome, reason = Outcome.success, None
        if (st := pp.obj_at("status")) is not None and (code := st.number("code")) not in (None, 0):
            outcome, reason = Outcome.failure, st.text("message") or f"status code {int(code)}"
        labels: dict[str, str] = {}
        auths = pp.objects("authorizationInfo")
        for a in auths:
            if a.flag("granted") is False:
                outcome = Outcome.failure
                reason = reason or f"permission {a.text('permission')} not granted"
        if auths:
            if (perm := auths[0].text("permission")) is not None:
                labels["gcp_permission"] = perm
            if (granted := auths[0].flag("granted")) is not None:
                labels["gcp_permission_granted"] = "true" if granted else "false"
        log_name = f.text("logName")
        if log_name:
            labels["gcp_log_name"] = log_name
            labels["gcp_log_id"] = log_name.split("/logs/", 1)[-1]
        rtype = f.text("resource.type")
        labels.update(f.labels((("insertId", "gcp_insert_id"), ("severity", "gcp_severity"))))
        if rtype:
            labels["gcp_resource_type"] = rtype
        if ws_name is not None:  # a Workspace activity in Cloud Logging: the Reports API names too
            labels["gworkspace_event_name"] = ws_name
            if service:
                labels["gworkspace_service"] = service
        if (key_name := pp.text("authenticationInfo.serviceAccountKeyName")) is not None:
            labels["gcp_service_account_key"] = key_name
        for d in pp.objects("authenticationInfo.serviceAccountDelegationInfo"):
            who = d.text("firstPartyPrincipal.principalEmail") or d.text("principalSubject")
            if who:
                labels["gcp_delegation"] = who
                break

        principal = pp.text("authenticationInfo.principalEmail") or pp.text("authenticationInfo.principalSubject")
        verb = method.rsplit(".", 1)[-1]
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=[_category(service, method, log_name)],
                            type=[verb_type(verb)], action=method, outcome=outcome, reason=reason,
                            provider=service),
            user=User(name=principal, email=email_or_none(principal)) if principal else None,
            labels=labels,
        )
        if (ip := pp.text("requestMetadata.callerIp")) is not None:
            ev.source = endpoint(ip)
        if (agent := pp.text("requestMetadata.callerSuppliedUserAgent")) is not None:
            ev.user_agent = UserAgent(original=agent)
        if (rname := pp.text("resourceName")) is not None or rtype:
            ev.resource = Resource(type=rtype, id=rname, name=rname)
        region = None
        locs = pp.list_at("resourceLocation.currentLocations")
        if locs and isinstance(locs[0], str):
            region = locs[0]
        region = region or f.text("resource.labels.location") or f.text("resource.labels.zone")
        project = f.text("resource.labels.project_id")
        ev.cloud = Cloud(provider="gcp", region=region, account={"id": project} if project else None)
        return [ev]


def _category(service: str | None, method: str, log_name: str | None) -> str:
    if service == "iam.googleapis.com" or "iampolicy" in method.lower():
        return "iam"
    if service == "login.googleapis.com":
        return "authentication"
    if service and service.startswith("bigquery"):
        return "database"
    if service == "storage.googleapis.com" and log_name and "data_access" in log_name:
        return "file"
    return "configuration"
