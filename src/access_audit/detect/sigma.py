"""Sigma rules (https://sigmahq.io) evaluated in our stream, on the object model of pySigma.

pySigma parses a file (``SigmaCollection.from_yaml``: single rules, multi-document files with
correlation rules, meta filters) and applies the value modifiers, so a ``contains`` value arrives as
a wildcard string, ``cidr`` as a network, ``base64offset`` as an expansion of three encodings. This
module compiles that model into our rule objects, whose predicates run on an AccessEvent; it never
converts rules into a query language.

Matching semantics (Sigma's defaults):

* a detection mapping is the AND of its fields, a list is the OR of its maps or values
  (``|all``: AND); the condition supports ``and``/``or``/``not``, brackets, ``1 of x*``,
  ``all of x*``, ``1 of them``/``all of them``; a list of conditions is their OR;
* strings compare case-insensitively (``|cased``, and values produced by the ``base64``,
  ``base64offset``, ``wide``/``utf16*`` modifiers, compare exactly), ``*`` and ``?`` are
  wildcards, a field value must match as a whole;
* ``re`` is searched (unanchored, as rule authors write ``^...$`` when they mean it), case-
  sensitive unless ``|i``; ``cidr``, ``exists``, ``gt``/``gte``/``lt``/``lte``/``neq``, ``fieldref``
  and the timestamp parts (``|hour``...) are supported; ``null`` matches an absent or null field;
* keywords (values without a field) are searched in the event's ``message`` and in
  ``event.original`` (the raw record);
* a field holding a list matches when any element matches.

Field resolution, per log source. A Sigma rule names fields the vendor's way; a field is
resolved, in this order, through (1) the mapping table of the rule's log source (``FIELD_TABLES``:
Sigma field -> ECS path, for fields whose ECS value is the vendor's value verbatim), (2) for JSON
log types, the raw record: ``event.original`` parsed once per event (small LRU keyed by event id)
and walked by dotted path, list elements fanned out, keys matched exactly first and then ignoring
case (SigmaHQ's Okta rules write ``eventtype``), (3) the ECS path of that name. For the line-based
log types (``http``, ``syslog``, ``squid.access``) a field that none of these can ever resolve is reported at load
instead of silently never matching.

Linux auditd (``linux.auditd``) is line-based but its records are key=value fields, so (2) applies
too: the raw record is ``parse.auditd.sigma_fields``, every field name with its values over the
records of the event's serial (``type`` lists SYSCALL, EXECVE, PATH...). A selection therefore
matches when each of its fields matches in some record of the serial, not necessarily the same one
(``type: EXECVE`` + ``a0: wget`` needs an EXECVE record and an ``a0`` of wget; SYSCALL's own
``a0`` is a hex register value, which rules on EXECVE arguments do not match in practice).
``SYSCALL`` is the ENRICHED name, else the name of the number for x86-64/i386/aarch64.

Log sources map onto our log types (``event.dataset``), see ``logsource_types``; a log source may
gate the events its rules see (``SOURCE_GATES``: Kubernetes rules see only the final stage of a
request, ResponseComplete or Panic, not its RequestReceived/ResponseStarted records). Correlation rules
(``event_count``, ``value_count``, ``temporal``, ``temporal_ordered``) become stateful rules with
windows on event time and bounded per-group state; their ``group-by`` fields (and ``aliases``)
resolve per referenced rule as above. Following Sigma, a rule referenced by a correlation without
``generate: true`` does not alert on its own. References resolve within the file, then across the
other Sigma files of the same load (``SigmaLibrary``); a base rule found only in another file keeps
alerting on its own too (its file was loaded without knowing of the correlation).

What cannot be evaluated is reported as a RuleError with file:line and the reason, never skipped
silently: pySigma's own errors (unknown modifier, bad condition...), unsupported log sources,
placeholders (``|expand``, they need a processing pipeline), correlation conditions other than
``gte``/``gt`` (``lt``/``lte``/``eq``/``neq`` need the window to close), extended (boolean)
correlation conditions, correlations over correlations, ``value_sum``/``avg``/``percentile``/``median``,
and references to rules that are missing or broken.

Rule metadata: id = the file stem for a single-document file, ``sigma_<title slug>`` for each rule
of a multi-document file (kept unique within the file); level -> severity (informational -> info);
tags kept, ``attack.tNNNN[.NNN]`` also as MITRE technique ids; falsepositives, references, the
Sigma id and log source kept on the rule. Sigma rules carry no inline tests and are not asked for.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import orjson
import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionIdentifier,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionSelector,
)
from sigma.correlations import (
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
)
from sigma.exceptions import SigmaError, SigmaRuleLocation, SigmaRuleNotFoundError
from sigma.modifiers import (
    SigmaBase64Modifier,
    SigmaBase64OffsetModifier,
    SigmaCaseSensitiveModifier,
    SigmaExpandModifier,
    SigmaUTF16BEModifier,
    SigmaUTF16Modifier,
    SigmaWideModifier,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaDetections, SigmaLogSource, SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from access_audit.core.alerts import Severity
from access_audit.core.errors import RuleError
from access_audit.core.events import AccessEvent
from access_audit.core.fields import accessor, known_field
from access_audit.detect.prefilter import IndexKey, Requirement, merge_and, merge_or
from access_audit.detect.rules import MAX_EVIDENCE, Detection, GroupState, Rule, _Groups, _hashable

Predicate = Callable[[AccessEvent], bool]
Getter = Callable[[AccessEvent], list[Any]]  # the values of one Sigma field on an event ([] = absent)
ValueTest = Callable[[list[Any], AccessEvent], bool]

_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# --- log sources and field tables -------------------------------------------------------------

JSON_LOG_TYPES = frozenset({"aws.cloudtrail", "okta.system", "github.audit", "ecs"})
# Cloud identity sources (parse/azure.py, o365.py, gcp.py, gworkspace.py).
JSON_LOG_TYPES |= {"azure.signinlogs", "azure.auditlogs", "azure.activitylogs", "azure.riskdetection",
                   "o365.audit", "gcp.audit", "gworkspace.activity"}
# Line-based log types whose raw record Sigma still reads by field name (parse/auditd.py: the
# key=value fields of every record of the event, ``sigma_fields``).
RAW_LINE_LOG_TYPES = frozenset({"linux.auditd"})
JSON_LOG_TYPES |= {"kubernetes.audit"}  # parse/kubernetes.py
JSON_LOG_TYPES |= {"duo.authentication", "duo.administrator", "onelogin.events"}  # parse/duo.py, onelogin.py
JSON_LOG_TYPES |= {"windows.security"}  # parse/windows.py: EventData flattened, Sigma's names are its keys

# Sigma field -> ECS path, only where the ECS value is the vendor's value verbatim (the parsers'
# normalised values, such as event.outcome, are left to the raw record). Keys compare ignoring case.
FIELD_TABLES: dict[str, dict[str, str]] = {
    "aws": {
        "eventName": "event.action",
        "eventSource": "event.provider",
        "awsRegion": "cloud.region",
        "sourceIPAddress": "source.address",
        "userAgent": "user_agent.original",
        "eventID": "labels.aws_event_id",
        "eventType": "labels.aws_event_type",
        "userIdentity.type": "labels.aws_identity_type",
        "userIdentity.arn": "labels.aws_identity_arn",
        "userIdentity.accessKeyId": "labels.aws_access_key_id",
        "userIdentity.principalId": "user.id",
        "errorMessage": "message",
    },
    "okta": {
        "eventType": "event.action",
        "displayMessage": "message",
        "actor.alternateId": "user.name",
        "actor.id": "user.id",
        "actor.displayName": "user.full_name",
        "client.ipAddress": "source.ip",
        "client.userAgent.rawUserAgent": "user_agent.original",
        "client.geographicalContext.country": "source.geo.country_name",
        "client.geographicalContext.city": "source.geo.city_name",
        "outcome.reason": "event.reason",
        "uuid": "labels.okta_uuid",
        "severity": "labels.okta_severity",
        "transaction.id": "labels.okta_transaction_id",
    },
    "github": {
        "action": "event.action",
        "actor": "user.name",
        "actor_ip": "source.ip",
        "user": "user.target.name",
        "user_agent": "user_agent.original",
        "actor_location.country_code": "source.geo.country_iso_code",
        "org": "labels.org",
        "business": "labels.business",
        "visibility": "labels.visibility",
        "previous_visibility": "labels.previous_visibility",
    },
    # Entra ID sign-ins: SigmaHQ writes Log Analytics column names; on the diagnostic-settings form
    # they sit under ``properties`` (the raw walk misses them), so they come from the event.
    # ``Status`` is labels.azure_status, Success/Failure from the result code (derived).
    "azure_signin": {
        "ResultType": "labels.azure_result_type",
        "ResultDescription": "labels.azure_result_description",
        "Status": "labels.azure_status",
        "AuthenticationRequirement": "labels.azure_auth_requirement",
        "ResourceDisplayName": "resource.name",
        "userAgent": "user_agent.original",
        "conditionalAccessStatus": "labels.azure_conditional_access",
        "RiskState": "labels.azure_risk_state",
        "ClientApp": "labels.azure_client_app",
        "ClientAppUsed": "labels.azure_client_app",
        "AppDisplayName": "labels.azure_app_name",
        "AppId": "labels.azure_app_id",
        "Username": "user.name",
        "UserPrincipalName": "user.name",
        "IPAddress": "source.ip",
        "DeviceDetail.deviceId": "labels.azure_device_id",
        "DeviceDetail.isCompliant": "labels.azure_device_compliant",
        "DeviceDetail.trusttype": "labels.azure_device_trust_type",
        "operationName": "event.action",
    },
    # Entra ID audit: ``properties.message`` / ActivityDisplayName / OperationName are the activity
    # (event.action, trimmed); Category is the directory category, Status the result.
    "azure_audit": {
        "properties.message": "event.action",
        "ActivityDisplayName": "event.action",
        "OperationName": "event.action",
        "ActivityType": "event.action",
        "Category": "labels.azure_audit_category",
        "LoggedByService": "event.provider",
        "Status": "labels.azure_status",
        "properties.result": "labels.azure_status",
        "Initiatedby": "user.name",
        "Target": "user.target.name",
        "failure_status_reason": "event.reason",
    },
    "azure_activity": {
        "operationName": "event.action",
        "OperationNameValue": "event.action",
        "CategoryValue": "labels.azure_category",
        "ResourceProviderValue": "event.provider",
        "ResourceId": "resource.id",
    },
    "azure_risk": {
        "riskEventType": "event.action",
    },
    # Microsoft 365 unified audit log; eventSource/eventName/status are the names SigmaHQ's
    # threat_management rules give Workload, the alert Name (else Operation) and Status.
    "m365": {
        "Operation": "event.action",
        "Workload": "event.provider",
        "eventSource": "event.provider",
        "eventName": "labels.o365_event_name",
        "status": "labels.o365_status",
        "UserId": "user.name",
        "ClientIP": "source.address",
        "RequestType": "labels.o365_request_type",
    },
    # Cloud Audit Logs: Elastic's gcp.audit.* names and the Eventarc ``data.`` prefix. The
    # permission is that of the first authorizationInfo entry.
    "gcp": {
        "gcp.audit.method_name": "event.action",
        "data.protoPayload.methodName": "event.action",
        "data.protoPayload.serviceName": "event.provider",
        "data.protoPayload.resource.type": "labels.gcp_resource_type",
        "data.protoPayload.logName": "labels.gcp_log_id",
        "data.protoPayload.authorizationInfo.permission": "labels.gcp_permission",
        "data.protoPayload.authorizationInfo.granted": "labels.gcp_permission_granted",
        "protoPayload.methodName": "event.action",
        "protoPayload.serviceName": "event.provider",
    },
    # Google Workspace, in the Reports API form and as LogEntries in Cloud Logging.
    "gworkspace": {
        "eventService": "labels.gworkspace_service",
        "eventName": "labels.gworkspace_event_name",
        "protoPayload.serviceName": "labels.gworkspace_service",
        "protoPayload.metadata.event.eventName": "labels.gworkspace_event_name",
        "setting_name": "labels.gworkspace_setting_name",
        "new_value": "labels.gworkspace_new_value",
        "old_value": "labels.gworkspace_old_value",
    },
    # Kubernetes audit events: SigmaHQ names the audit.k8s.io fields (verb, objectRef.resource,
    # responseStatus.code, sourceIPs...), read from the raw record. Two rules write ``apiGroup`` for
    # objectRef.apiGroup; ``hostPath`` and ``capabilities`` stand for the pod spec of the request
    # body (hostPath volume paths, added capabilities), which the parser collects.
    "kubernetes": {
        "apiGroup": "labels.k8s_api_group",
        "hostPath": "labels.k8s_host_path",
        "capabilities": "labels.k8s_capabilities",
    },
    # The Sigma webserver taxonomy (W3C extended log field names) on NCSA access log events.
    "webserver": {
        "c-ip": "source.ip",
        "cs-method": "http.request.method",
        "c-uri": "url.original",
        "cs-uri": "url.original",
        "c-uri-stem": "url.path",
        "cs-uri-stem": "url.path",
        "c-uri-query": "url.query",
        "cs-uri-query": "url.query",
        "sc-status": "http.response.status_code",
        "cs-username": "user.name",
        "c-useragent": "user_agent.original",
        "cs-user-agent": "user_agent.original",
        "cs-referer": "http.request.referrer",
        "cs-referrer": "http.request.referrer",
        "cs-host": "url.domain",
        "sc-bytes": "http.response.body.bytes",
    },
    # The Sigma proxy taxonomy (W3C extended log names, sigma-specification's Taxonomy) on Squid
    # events (parse/squid.py). Squid logs the absolute URL: c-uri is all of it (a rule that writes
    # a bare path as the whole c-uri does not match); cs-host/r-dns are the URL's host, an address
    # included. sc-bytes is the reply to the client (W3C's server-to-client; the taxonomy's text
    # swaps cs-/sc-bytes). Squid logs neither cookies nor the request size: a rule naming cs-cookie
    # or cs-bytes is reported at load.
    "proxy": {
        "c-ip": "source.ip",
        "src_ip": "source.ip",
        "dst_ip": "destination.ip",
        "cs-method": "http.request.method",
        "c-uri": "url.original",
        "cs-uri": "url.original",
        "c-uri-stem": "url.path",
        "cs-uri-stem": "url.path",
        "c-uri-query": "url.query",
        "cs-uri-query": "url.query",
        "c-uri-extension": "url.extension",
        "cs-host": "url.domain",
        "r-dns": "url.domain",
        "c-useragent": "user_agent.original",
        "cs-user-agent": "user_agent.original",
        "cs-referer": "http.request.referrer",
        "cs-referrer": "http.request.referrer",
        "cs-version": "http.version",
        "cs-username": "user.name",
        "sc-status": "http.response.status_code",
        "sc-bytes": "http.response.bytes",
    },
    # Cisco Duo and OneLogin: SigmaHQ names the API's own fields, read from the record; these
    # are the ones whose ECS value is the vendor's verbatim.
    "duo": {
        "access_device.ip": "source.ip",
        "reason": "event.reason",
        "username": "user.name",
    },
    # Windows Security (service security): SigmaHQ names the event's own fields (EventID,
    # TargetUserName, LogonType, IpAddress, SubjectUserName...), read from the record; ``Computer``
    # is NXLog's ``Hostname`` in the OTRF exports.
    "windows": {
        "Computer": "host.name",
        "Hostname": "host.name",
    },
    "onelogin": {
        "event_type_id": "labels.onelogin_event_type_id",  # a number or a string of digits: the label is one form
        "ipaddr": "source.ip",
    },
    # Linux auditd: SigmaHQ names the audit record's own fields (type, key, exe, comm, a0..,
    # SYSCALL, name, nametype, cwd, euid, unit...), read from the record (``RAW_LINE_LOG_TYPES``);
    # the table only adds the ECS fields the same rules may name.
    "auditd": {
        "hostname": "host.name",
        "user": "user.name",
    },
    # auth.log / secure (sshd, PAM, su, sudo): rules are mostly keywords; these are the field
    # names SigmaHQ's Linux rules and correlations use.
    "linux": {
        "user": "user.name",
        "user_name": "user.name",
        "username": "user.name",
        "pam_user": "user.name",
        "target_user": "user.target.name",
        "client_ip": "source.ip",
        "src_ip": "source.ip",
        "source_ip": "source.ip",
        "pam_rhost": "source.ip",
        "src_port": "source.port",
        "host": "host.name",
        "hostname": "host.name",
        "deviceProcessName": "service.name",
        "program": "service.name",
        "process": "process.name",
        "pid": "process.pid",
        "message": "message",
        "msg": "message",
    },
}
_TABLES_CI: dict[str, dict[str, str]] = {k: {f.lower(): p for f, p in t.items()} for k, t in FIELD_TABLES.items()}

_LINUX_SERVICES = {"auth", "sshd", "sudo", "su", "syslog"}
# Daemons that log through syslog: their rules are keywords on the message, and see only the
# lines of that daemon's program (the syslog tag: ``CRON[123]:``, ``vsftpd[88]:``, ``clamd:``).
_LINUX_DAEMONS: dict[str, frozenset[str]] = {
    "cron": frozenset({"cron", "crond", "crontab", "anacron"}),
    "clamav": frozenset({"clamd", "freshclam", "clamscan", "clamav-milter", "clamonacc", "clamdscan"}),
    "guacamole": frozenset({"guacd", "guacamole", "tomcat", "tomcat9"}),
    "vsftpd": frozenset({"vsftpd"}),
}
for _svc in _LINUX_DAEMONS:
    FIELD_TABLES[f"linux.{_svc}"] = FIELD_TABLES["linux"]
    _TABLES_CI[f"linux.{_svc}"] = _TABLES_CI["linux"]


def logsource_types(ls: SigmaLogSource) -> tuple[str, tuple[str, ...]] | None:
    """(field table, our log types) for a Sigma log source, or None when no log type of ours carries it.

    product aws (service cloudtrail) -> aws.cloudtrail; product or service okta -> okta.system;
    product github (service audit) -> github.audit; category webserver (or product apache/nginx)
    -> http; category proxy (or product squid) -> squid.access; product linux with no service or
    service auth/sshd/sudo/su/syslog -> syslog, service cron/clamav/guacamole/vsftpd -> syslog
    lines of that daemon's program, service auditd ->
    linux.auditd; product azure with
    service signinlogs/auditlogs/activitylogs/riskdetection -> azure.<service>, pim ->
    azure.riskdetection and azure.auditlogs; product m365 (audit, exchange, threat_management,
    threat_detection) -> o365.audit; product gcp service gcp.audit -> gcp.audit, service
    google_workspace.* -> gworkspace.activity and gcp.audit; product kubernetes (service audit,
    category none or application) -> kubernetes.audit; product cisco service duo ->
    duo.authentication and duo.administrator; product onelogin (service onelogin.events) ->
    onelogin.events; product windows service security -> windows.security (other Windows channels
    and categories, such as process_creation, have no log type here). The database audit types
    (postgresql.pgaudit, mysql.audit) have no Sigma log source: SigmaHQ has no rules for them.
    """
    cat = (ls.category or "").lower() or None
    prod = (ls.product or "").lower() or None
    svc = (ls.service or "").lower() or None
    if prod == "aws" and cat is None and svc in (None, "cloudtrail"):
        return "aws", ("aws.cloudtrail",)
    if (prod == "okta" or (prod is None and svc == "okta")) and cat is None and svc in (None, "okta"):
        return "okta", ("okta.system",)
    if prod == "github" and cat is None and svc in (None, "audit"):
        return "github", ("github.audit",)
    if cat == "webserver" or (cat is None and prod in ("apache", "nginx") and svc in (None, "access")):
        return "webserver", ("http",)
    if (cat == "proxy" and prod in (None, "squid")) or (cat is None and prod == "squid" and svc in (None, "access")):
        return "proxy", ("squid.access",)
    if prod == "linux" and cat is None and svc == "auditd":
        return "auditd", ("linux.auditd",)
    if prod == "linux" and cat is None and (svc is None or svc in _LINUX_SERVICES):
        return "linux", ("syslog",)  # no service: any Linux log, which is syslog here
    if prod == "linux" and cat is None and svc in _LINUX_DAEMONS:
        return f"linux.{svc}", ("syslog",)
    if prod == "azure" and cat is None and svc in _AZURE_SERVICES:
        return _AZURE_SERVICES[svc]
    if prod == "m365" and cat is None and svc in ("audit", "exchange", "threat_management", "threat_detection"):
        return "m365", ("o365.audit",)
    if prod == "gcp" and cat is None and svc == "gcp.audit":
        return "gcp", ("gcp.audit",)
    if prod == "gcp" and cat is None and svc is not None and svc.startswith("google_workspace."):
        return "gworkspace", ("gworkspace.activity", "gcp.audit")
    if prod == "kubernetes" and cat in (None, "application") and svc in (None, "audit"):
        return "kubernetes", ("kubernetes.audit",)
    if prod == "cisco" and cat is None and svc == "duo":
        return "duo", ("duo.authentication", "duo.administrator")
    if prod == "onelogin" and cat is None and svc in (None, "onelogin.events"):
        return "onelogin", ("onelogin.events",)
    if prod == "windows" and cat is None and svc == "security":
        return "windows", ("windows.security",)
    return None


# Events a log source's rules never see. The API server writes a record per stage of a request
# (same auditID); a Sigma rule matches the request once, on its ResponseComplete (or Panic) record.
_K8S_FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})
SOURCE_GATES: dict[str, Callable[[AccessEvent], bool]] = {
    "kubernetes": lambda ev: ev.labels.get("k8s_stage") in _K8S_FINAL_STAGES,
}


def _program_gate(programs: frozenset[str]) -> Callable[[AccessEvent], bool]:
    def gate(ev: AccessEvent) -> bool:
        name = ev.process.name if ev.process else None
        return name is not None and name.split("(", 1)[0].lower() in programs
    return gate


for _svc, _progs in _LINUX_DAEMONS.items():
    SOURCE_GATES[f"linux.{_svc}"] = _program_gate(_progs)


# PIM alerts have no log of their own: SigmaHQ matches riskEventType as on risk detections; PIM
# activity is in the audit log (LoggedByService PIM).
_AZURE_SERVICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "signinlogs": ("azure_signin", ("azure.signinlogs",)),
    "auditlogs": ("azure_audit", ("azure.auditlogs",)),
    "activitylogs": ("azure_activity", ("azure.activitylogs",)),
    "riskdetection": ("azure_risk", ("azure.riskdetection",)),
    "pim": ("azure_risk", ("azure.riskdetection", "azure.auditlogs")),
}


def _describe_logsource(ls: SigmaLogSource) -> str:
    return " ".join(f"{k}={v}" for k, v in (("category", ls.category), ("product", ls.product),
                                             ("service", ls.service)) if v)


# --- the raw record ---------------------------------------------------------------------------

_MISSING = object()
_NESTED = object()  # a reference to a correlation rule
_RAW_CACHE: OrderedDict[str, tuple[str, Any]] = OrderedDict()
_RAW_CACHE_SIZE = 512


def raw_record(ev: AccessEvent) -> Any:
    """The decoded JSON of ``event.original`` (the vendor record), or None when it is not JSON.

    Decoded once per event: every Sigma rule that looks at the same event shares the result (an
    LRU keyed by event id, checked against the text so a reused id never gives a stale record).
    For a CloudTrail file (``{"Records": [...]}``) the record of this event is picked by eventID,
    for a Kubernetes EventList the item by auditID and stage.
    """
    obj = ev.raw_obj  # decoded by the parser, when the event came from one (not from a store)
    if obj is not None:
        return obj
    orig = ev.event.original
    if not orig:
        return None
    line_type = ev.event.dataset in RAW_LINE_LOG_TYPES
    if not line_type and orig.lstrip()[:1] != "{":
        return None
    key = ev.event.id
    if key is not None:
        hit = _RAW_CACHE.get(key)
        if hit is not None and (hit[0] is orig or hit[0] == orig):
            with contextlib.suppress(KeyError):  # evicted meanwhile
                _RAW_CACHE.move_to_end(key)
            return hit[1]
    if line_type:
        from access_audit.parse.auditd import sigma_fields

        obj = sigma_fields(orig)
    else:
        try:
            obj = orjson.loads(orig)
        except orjson.JSONDecodeError:
            obj = None
    if isinstance(obj, dict) and isinstance(obj.get("Records"), list):
        obj = _pick_record(ev, obj["Records"])
    elif isinstance(obj, dict) and obj.get("kind") == "EventList" and isinstance(obj.get("items"), list):
        obj = _pick_audit_item(ev, obj["items"])
    if key is not None:
        _RAW_CACHE[key] = (orig, obj)
        if len(_RAW_CACHE) > _RAW_CACHE_SIZE:
            _RAW_CACHE.popitem(last=False)
    return obj


def _pick_record(ev: AccessEvent, records: list[Any]) -> Any:
    eid = ev.labels.get("aws_event_id")
    for rec in records:
        if isinstance(rec, dict) and eid is not None and str(rec.get("eventID")) == eid:
            return rec
    if len(records) == 1:
        return records[0]
    return None


def _pick_audit_item(ev: AccessEvent, items: list[Any]) -> Any:
    """The item of a Kubernetes EventList this event came from: its auditID and stage."""
    key = (ev.labels.get("k8s_audit_id"), ev.labels.get("k8s_stage"))
    for item in items:
        if isinstance(item, dict) and (item.get("auditID"), item.get("stage")) == key:
            return item
    return None


def walk(obj: Any, parts: tuple[str, ...], i: int = 0) -> Any:
    """The value at a dotted path in decoded JSON; lists fan out (a list of the hits); _MISSING."""
    if i == len(parts):
        return obj
    if isinstance(obj, dict):
        if i < len(parts) - 1:  # a flattened key holding the rest of the path ("requestParameters.x")
            rest = ".".join(parts[i:])
            if rest in obj:
                return obj[rest]
        key = parts[i]
        if key in obj:
            return walk(obj[key], parts, i + 1)
        low = key.lower()
        for k, v in obj.items():
            if isinstance(k, str) and k.lower() == low:
                return walk(v, parts, i + 1)
        return _MISSING
    if isinstance(obj, list):
        out: list[Any] = []
        for el in obj:
            r = walk(el, parts, i)
            if r is _MISSING:
                continue
            out.extend(r if isinstance(r, list) else [r])
        return out if out else _MISSING
    return _MISSING


def _as_list(v: Any) -> list[Any]:
    if v is None or v is _MISSING:
        return []
    if isinstance(v, (list, tuple)):
        return [x for x in v if x is not None]
    return [v]


class FieldResolver:
    """Turns Sigma field names into getters for one log source (table -> raw record -> ECS)."""

    def __init__(self, table: str, log_types: tuple[str, ...]) -> None:
        self.name = table
        self.table = _TABLES_CI.get(table, {})
        self.json = any(lt in JSON_LOG_TYPES or lt in RAW_LINE_LOG_TYPES for lt in log_types)
        self._getters: dict[str, Getter] = {}

    def ecs_path(self, name: str) -> str | None:
        """The ECS path a Sigma field stands for, when there is one (for group names and queries)."""
        mapped = self.table.get(name.lower())
        if mapped:
            return mapped
        return name if known_field(name) else None

    def resolvable(self, name: str) -> bool:
        return self.json or self.ecs_path(name) is not None

    def getter(self, name: str) -> Getter:
        """The values of a Sigma field on an event (compiled once per field and log source)."""
        got = self._getters.get(name)
        if got is None:
            got = self._getters[name] = self._compile_getter(name)
        return got

    def _compile_getter(self, name: str) -> Getter:
        mapped = self.table.get(name.lower())
        mapped_get = accessor(mapped) if mapped else None
        raw_parts = tuple(name.split("."))
        own = accessor(name) if known_field(name) and name != mapped else None
        use_raw = self.json

        def get(ev: AccessEvent) -> list[Any]:
            if mapped_get is not None:
                v = mapped_get(ev)
                if v is not None:
                    vals = _as_list(v)
                    if vals:
                        return vals
            if use_raw:
                obj = raw_record(ev)
                if obj is not None:
                    vals = _as_list(walk(obj, raw_parts))
                    if vals:
                        return vals
            if own is not None:
                return _as_list(own(ev))
            return []
        return get


# --- value tests ------------------------------------------------------------------------------

class Unsupported(Exception):
    """A Sigma feature this evaluator cannot run. ``where`` locates it for the file:line lookup."""

    def __init__(self, message: str, where: Callable[[Any], bool] | None = None, section: str = "detection") -> None:
        super().__init__(message)
        self.where = where  # predicate on a YAML key under ``section``
        self.section = section


def _text(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "value") and isinstance(v.value, str):
        return v.value
    return None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _string_parts(s: SigmaString, anchored: bool) -> list[Any]:
    """The parts of a Sigma string, ``*`` runs squeezed; a keyword (not ``anchored``) is wrapped in ``*``."""
    if any(isinstance(p, Placeholder) for p in s.s):
        raise Unsupported(f"placeholder {s.original!r} needs expansion by a processing pipeline",
                          lambda k: "|expand" in str(k))
    parts = list(s.s) if anchored else [SpecialChars.WILDCARD_MULTI, *s.s, SpecialChars.WILDCARD_MULTI]
    squeezed: list[Any] = []
    for p in parts:
        if p == SpecialChars.WILDCARD_MULTI and squeezed and squeezed[-1] == SpecialChars.WILDCARD_MULTI:
            continue
        squeezed.append(p)
    return squeezed


def _regex_source(parts: list[Any]) -> str:
    return "".join(re.escape(p) if isinstance(p, str) else (".*" if p == SpecialChars.WILDCARD_MULTI else ".")
                   for p in parts)


def _string_test(s: SigmaString, cased: bool, anchored: bool) -> Callable[[Any], bool]:
    """Test of one value against a Sigma string (wildcards * and ?); search instead of whole match
    when not ``anchored`` (keywords)."""
    parts = _string_parts(s, anchored)
    norm: Callable[[str], str] = (lambda x: x) if cased else str.lower
    lits = [p for p in parts if isinstance(p, str)]
    if len(lits) <= 1 and SpecialChars.WILDCARD_SINGLE not in parts:
        lit = norm(lits[0]) if lits else ""
        shape = tuple("s" if isinstance(p, str) else "*" for p in parts)
        if shape in ((), ("s",)):
            return lambda v: (t := _text(v)) is not None and norm(t) == lit
        if shape == ("*",):
            return lambda v: _text(v) is not None
        if shape == ("*", "s", "*"):
            return lambda v: (t := _text(v)) is not None and lit in norm(t)
        if shape == ("s", "*"):
            return lambda v: (t := _text(v)) is not None and norm(t).startswith(lit)
        if shape == ("*", "s"):
            return lambda v: (t := _text(v)) is not None and norm(t).endswith(lit)
    pattern = re.compile(_regex_source(parts), re.S | (0 if cased else re.I))
    return lambda v: (t := _text(v)) is not None and pattern.fullmatch(t) is not None


def _strings_test(strings: list[SigmaString], cased: bool, anchored: bool) -> Callable[[Any], bool]:
    """Test of one value against any of several Sigma strings: a set lookup, substring or prefix
    checks on the value lowered once, or one regex when the wildcards need it."""
    all_parts = [_string_parts(s, anchored) for s in strings]
    norm: Callable[[str], str] = (lambda x: x) if cased else str.lower
    multi = SpecialChars.WILDCARD_MULTI
    shapes = {tuple("s" if isinstance(p, str) else ("*" if p == multi else "?") for p in ps) for ps in all_parts}
    lits = [norm(next((p for p in ps if isinstance(p, str)), "")) for ps in all_parts]
    if shapes == {("s",)}:
        values = set(lits)
        return lambda v: (t := _text(v)) is not None and norm(t) in values
    if shapes == {("*", "s", "*")}:
        def contains(v: Any) -> bool:
            t = _text(v)
            if t is None:
                return False
            t = norm(t)
            return any(n in t for n in lits)
        return contains
    if shapes == {("s", "*")}:
        prefixes = tuple(lits)
        return lambda v: (t := _text(v)) is not None and norm(t).startswith(prefixes)
    if shapes == {("*", "s")}:
        suffixes = tuple(lits)
        return lambda v: (t := _text(v)) is not None and norm(t).endswith(suffixes)
    flags = re.S | (0 if cased else re.I)
    if all(len(ps) >= 2 and ps[0] == multi and ps[-1] == multi for ps in all_parts):
        # all "contains": search for the inner parts (no leading .* to backtrack over)
        inner = re.compile("|".join(f"(?:{_regex_source(ps[1:-1])})" for ps in all_parts), flags)
        return lambda v: (t := _text(v)) is not None and inner.search(t) is not None
    pattern = re.compile("|".join(f"(?:{_regex_source(ps)})" for ps in all_parts), flags)
    return lambda v: (t := _text(v)) is not None and pattern.fullmatch(t) is not None


def _number_test(n: float) -> Callable[[Any], bool]:
    return lambda v: (x := _number(v)) is not None and x == n


def _bool_test(b: bool) -> Callable[[Any], bool]:
    want = "true" if b else "false"

    def test(v: Any) -> bool:
        if isinstance(v, bool):
            return v is b
        return isinstance(v, str) and v.strip().lower() == want
    return test


def _regex_test(r: SigmaRegularExpression) -> Callable[[Any], bool]:
    if r.contains_placeholder():
        raise Unsupported(f"placeholder in regular expression {r.regexp.original!r} needs a processing pipeline",
                          lambda k: "|expand" in str(k))
    flags = 0
    for f in r.flags:
        flags |= {SigmaRegularExpressionFlag.IGNORECASE: re.I, SigmaRegularExpressionFlag.MULTILINE: re.M,
                  SigmaRegularExpressionFlag.DOTALL: re.S}[f]
    pattern = re.compile(str(r.regexp), flags)
    return lambda v: (t := _text(v)) is not None and pattern.search(t) is not None


def _cidr_test(c: SigmaCIDRExpression) -> Callable[[Any], bool]:
    net = c.network

    def test(v: Any) -> bool:
        t = _text(v)
        if t is None:
            return False
        try:
            ip = ipaddress.ip_address(t.strip())
        except ValueError:
            return False
        return ip.version == net.version and ip in net
    return test


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: float.__lt__, CompareOperators.LTE: float.__le__,
    CompareOperators.GT: float.__gt__, CompareOperators.GTE: float.__ge__,
    CompareOperators.NEQ: float.__ne__,
}


def _compare_test(c: SigmaCompareExpression) -> Callable[[Any], bool]:
    op = _COMPARE[c.op]
    n = float(c.number.number)
    return lambda v: (x := _number(v)) is not None and op(x, n)


def _timestamp_part(v: Any, part: TimestampPart) -> int | None:
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(v, datetime):
        return None
    return {TimestampPart.MINUTE: v.minute, TimestampPart.HOUR: v.hour, TimestampPart.DAY: v.day,
            TimestampPart.WEEK: v.isocalendar()[1], TimestampPart.MONTH: v.month,
            TimestampPart.YEAR: v.year}[part]


def _scalar_test(v: Any, cased: bool, anchored: bool) -> Callable[[Any], bool]:
    if isinstance(v, SigmaString):
        return _string_test(v, cased or isinstance(v, SigmaCasedString), anchored)
    if isinstance(v, SigmaRegularExpression):
        return _regex_test(v)
    if isinstance(v, SigmaCIDRExpression):
        return _cidr_test(v)
    if isinstance(v, SigmaCompareExpression):
        return _compare_test(v)
    if not anchored and isinstance(v, (SigmaNumber, SigmaBool)):  # a keyword number: search its text
        return _string_test(SigmaString.from_str(str(v).lower()), cased, anchored)
    if isinstance(v, SigmaTimestampPart):
        part, n = v.timestamp_part, int(v.number)
        return lambda x: _timestamp_part(x, part) == n
    if isinstance(v, SigmaNumber):
        return _number_test(float(v.number))
    if isinstance(v, SigmaBool):
        return _bool_test(bool(v.boolean))
    raise Unsupported(f"value type {type(v).__name__} is not supported")


def _any_of(test: Callable[[Any], bool]) -> ValueTest:
    def any_value(vals: list[Any], ev: AccessEvent) -> bool:
        return any(map(test, vals))
    return any_value


def _value_test(v: Any, cased: bool, anchored: bool, resolver: FieldResolver | None) -> ValueTest:
    """A test over the values a field holds on an event (``vals``; [] when absent)."""
    if isinstance(v, SigmaExpansion):
        subs = [_value_test(x, cased, anchored, resolver) for x in v.values]
        return lambda vals, ev: any(s(vals, ev) for s in subs)
    if isinstance(v, SigmaNull):
        return lambda vals, ev: not vals
    if isinstance(v, SigmaExists):
        want = bool(v.exists)
        return lambda vals, ev: bool(vals) is want
    if isinstance(v, SigmaFieldReference):
        assert resolver is not None
        other = resolver.getter(v.field)
        starts, ends = v.starts_with, v.ends_with

        def ref(vals: list[Any], ev: AccessEvent) -> bool:
            theirs = [t.lower() for t in (_text(y) for y in other(ev)) if t is not None]
            for x in vals:
                mine = _text(x)
                if mine is None:
                    continue
                mine = mine.lower()
                for t in theirs:
                    if (mine == t) if not (starts or ends) else (
                            (starts and ends and t in mine) or (starts and not ends and mine.startswith(t))
                            or (ends and not starts and mine.endswith(t))):
                        return True
            return False
        return ref
    return _any_of(_scalar_test(v, cased, anchored))


_EXACT_MODIFIERS = (SigmaCaseSensitiveModifier, SigmaBase64Modifier, SigmaBase64OffsetModifier,
                    SigmaWideModifier, SigmaUTF16Modifier, SigmaUTF16BEModifier)


def _haystack(ev: AccessEvent) -> list[Any]:
    return [x for x in (ev.message, ev.event.original) if x]


def compile_item(item: SigmaDetectionItem, resolver: FieldResolver, non_json: bool, name: str) -> Predicate:
    """One ``field|modifiers: values`` entry (or keyword list) of the detection ``name``."""
    for m in item.modifiers:
        if m is SigmaExpandModifier:
            raise Unsupported("modifier 'expand': placeholders (%name%) need a processing pipeline",
                              lambda k: "|expand" in str(k))
    cased = any(m in _EXACT_MODIFIERS for m in item.modifiers)
    keyword = item.field is None
    fname = item.field

    def where(k: Any) -> bool:  # locates this item in the YAML, for the file:line of an error
        return str(k) == name if keyword else str(k).split("|")[0] == fname

    if not keyword and non_json and not resolver.resolvable(str(fname)):
        raise Unsupported(f"field {fname!r} is not available in these logs (no mapping, not an ECS field)", where)
    getter: Getter = _haystack if keyword else resolver.getter(str(fname))
    all_of = item.value_linking is ConditionAND
    values: list[Any] = list(item.value)
    try:
        if not all_of and len(values) > 1 and len({type(v) for v in values}) == 1 and \
                type(values[0]) in (SigmaString, SigmaCasedString):
            # OR of strings (the common "field: [a, b, c]"): one set lookup or one regex per value
            tests = [_any_of(_strings_test(values, cased or type(values[0]) is SigmaCasedString,
                                           anchored=not keyword))]
        else:
            tests = [_value_test(v, cased, anchored=not keyword, resolver=resolver) for v in values]
    except Unsupported as e:
        if e.where is None:
            e.where = where
        raise
    if not tests:  # "field: []" / no value: the field must be null
        tests = [lambda vals, ev: not vals]
    negated = item.negated

    if len(tests) == 1:
        t0 = tests[0]

        def one(ev: AccessEvent) -> bool:
            return t0(getter(ev), ev) is not negated
        return one

    def many(ev: AccessEvent) -> bool:
        vals = getter(ev)
        r = all(t(vals, ev) for t in tests) if all_of else any(t(vals, ev) for t in tests)
        return r is not negated
    return many


def required_item(item: SigmaDetectionItem, resolver: FieldResolver) -> Requirement:
    """The literal equalities one detection item requires (for the dispatch index): a field,
    not negated, whose values (any of them) are plain strings without wildcards."""
    if item.field is None or item.negated or not item.value:
        return {}
    if item.value_linking is ConditionAND and len(item.value) > 1:
        return {}
    lits = []
    for v in item.value:
        s_v: Any = v  # a SigmaString (pySigma types the values as SigmaType)
        if type(v) not in (SigmaString, SigmaCasedString) or s_v.contains_special() or \
                any(isinstance(p, Placeholder) for p in s_v.s):
            return {}
        lits.append("".join(p for p in s_v.s if isinstance(p, str)).casefold())
    return {f"sigma:{resolver.name}:{item.field}": frozenset(lits)}


def required_detection(det: SigmaDetection, resolver: FieldResolver) -> Requirement:
    reqs = [required_item(i, resolver) if isinstance(i, SigmaDetectionItem) else required_detection(i, resolver)
            for i in det.detection_items]
    return merge_or(reqs) if det.item_linking is ConditionOR and len(reqs) > 1 else merge_and(reqs)


def required_condition(node: Any, named: dict[str, Requirement], detections: SigmaDetections) -> Requirement:
    while not isinstance(node, (ConditionItem, str)) and hasattr(node, "__len__") and len(node) == 1:
        node = node[0]
    if isinstance(node, ConditionIdentifier):
        return named.get(node.identifier, {})
    if isinstance(node, ConditionSelector):
        reqs = [named.get(i.identifier, {}) for i in node.resolve_referenced_detections(detections)]
        return merge_and(reqs) if node.cond_class is ConditionAND else merge_or(reqs)
    if isinstance(node, (ConditionAND, ConditionOR)):
        reqs = [required_condition(a, named, detections) for a in node.args]
        return merge_and(reqs) if isinstance(node, ConditionAND) else merge_or(reqs)
    return {}  # NOT and anything else require nothing


def compile_detection(det: SigmaDetection, resolver: FieldResolver, non_json: bool, name: str) -> Predicate:
    """A named detection: a mapping (AND of its items) or a list (OR of its maps or values)."""
    preds = [compile_item(i, resolver, non_json, name) if isinstance(i, SigmaDetectionItem)
             else compile_detection(i, resolver, non_json, name) for i in det.detection_items]
    if len(preds) == 1:
        return preds[0]
    if det.item_linking is ConditionOR:
        return lambda ev: any(p(ev) for p in preds)
    return lambda ev: all(p(ev) for p in preds)


def compile_condition(node: Any, named: dict[str, Predicate], detections: SigmaDetections) -> Predicate:
    while not isinstance(node, (ConditionItem, str)) and hasattr(node, "__len__") and len(node) == 1:
        node = node[0]  # a pyparsing group around one operand
    if isinstance(node, ConditionIdentifier):
        name = node.identifier
        if name not in named:
            raise Unsupported(f"condition names {name!r}, which the detection does not define",
                              lambda k: str(k) == "condition")
        return named[name]
    if isinstance(node, ConditionSelector):
        ids = [i.identifier for i in node.resolve_referenced_detections(detections)]
        if not ids:
            raise Unsupported(f"'{node.args[0]} of {node.pattern}' matches no selection",
                              lambda k: str(k) == "condition")
        preds = [named[i] for i in ids]
        if node.cond_class is ConditionAND:
            return lambda ev: all(p(ev) for p in preds)
        return lambda ev: any(p(ev) for p in preds)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0], named, detections)
        return lambda ev: not inner(ev)
    if isinstance(node, (ConditionAND, ConditionOR)):
        subs = [compile_condition(a, named, detections) for a in node.args]
        if isinstance(node, ConditionAND):
            return lambda ev: all(p(ev) for p in subs)
        return lambda ev: any(p(ev) for p in subs)
    raise Unsupported(f"condition element {type(node).__name__} is not supported", lambda k: str(k) == "condition")


def compile_rule(rule: SigmaRule) -> tuple[Predicate, tuple[str, ...], FieldResolver]:
    """The predicate (log type check included), log types and field resolver of a Sigma rule."""
    pred, log_types, resolver, _ = compile_rule_indexed(rule)
    return pred, log_types, resolver


def compile_rule_indexed(rule: SigmaRule) -> tuple[Predicate, tuple[str, ...], FieldResolver, Requirement]:
    """``compile_rule`` plus what the rule requires, for the dispatch index (``detect.prefilter``)."""
    found = logsource_types(rule.logsource)
    if found is None:
        raise Unsupported(f"unsupported logsource ({_describe_logsource(rule.logsource)}): no log type of ours "
                          "carries it; supported: product aws/service cloudtrail, okta, product github, "
                          "category webserver, category proxy, product linux (no service, or service "
                          "auth/sshd/sudo/su/syslog/cron/clamav/guacamole/vsftpd, or auditd), product azure "
                          "(signinlogs, auditlogs, activitylogs, riskdetection, pim), product m365, product gcp "
                          "(gcp.audit, google_workspace.*), product kubernetes (audit), product cisco/service duo, "
                          "product onelogin, product windows/service security",
                          section="logsource")
    table, log_types = found
    resolver = FieldResolver(table, log_types)
    non_json = not resolver.json
    dets = rule.detection
    named = {name: compile_detection(d, resolver, non_json, name) for name, d in dets.detections.items()}
    named_req = {name: required_detection(d, resolver) for name, d in dets.detections.items()}
    conds = []
    reqs: list[Requirement] = []
    for cond in dets.parsed_condition:
        try:
            tree = cond.parse(postprocess=False)
        except SigmaError as e:
            raise Unsupported(_sigma_message(e), lambda k: str(k) == "condition") from None
        conds.append(compile_condition(tree, named, dets))
        reqs.append(required_condition(tree, named_req, dets))
    cond_pred = conds[0] if len(conds) == 1 else (lambda ev: any(c(ev) for c in conds))
    types = frozenset(log_types)
    gate = SOURCE_GATES.get(table)

    if gate is not None:
        def gated(ev: AccessEvent) -> bool:
            return ev.event.dataset in types and gate(ev) and cond_pred(ev)
        return gated, log_types, resolver, merge_or(reqs)

    def pred(ev: AccessEvent) -> bool:
        return ev.event.dataset in types and cond_pred(ev)
    return pred, log_types, resolver, merge_or(reqs)


# --- rule objects -----------------------------------------------------------------------------

_LEVELS = {"informational": Severity.info, "low": Severity.low, "medium": Severity.medium,
           "high": Severity.high, "critical": Severity.critical}
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$", re.I)


@dataclass(eq=False)
class SigmaMatchRule(Rule):
    """A Sigma rule: fires on every event its detection and condition match."""

    kind: ClassVar[str] = "sigma"
    sigma_id: str | None = None
    sigma_name: str | None = None
    false_positives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    logsource: dict[str, str] = field(default_factory=dict)
    resolver: FieldResolver | None = None

    def index_key(self, name: str, values: frozenset[str]) -> IndexKey | None:
        """``sigma:<table>:<field>``: the field read as the rule reads it (``FieldResolver``)."""
        if self.resolver is None or not name.startswith(f"sigma:{self.resolver.name}:"):
            return super().index_key(name, values)
        return IndexKey(name, self.resolver.getter(name.split(":", 2)[2]), values, _text)


@dataclass
class _Member:
    """A rule referenced by a correlation, with its getters for the group-by and value fields."""

    title: str
    match: Predicate
    group: list[Getter]
    value: Getter | None = None


def _key_part(vals: list[Any]) -> Any:
    if not vals:
        return None
    if len(vals) == 1:
        return _hashable(vals[0])
    return tuple(_hashable(v) for v in vals)


@dataclass(eq=False)
class SigmaCorrelation(GroupState, SigmaMatchRule):
    """A Sigma correlation rule over the events of its referenced rules, per group, in a window of event time.

    ``event_count``: at least ``need`` events; ``value_count``: at least ``need`` distinct values of
    the value field; ``temporal``: at least ``need`` of the rules matched; ``temporal_ordered``:
    every rule matched, in the order given. After firing, the group starts afresh.
    """

    kind: ClassVar[str] = "sigma_correlation"
    correlation: str = "event_count"
    members: list[_Member] = field(default_factory=list)
    group_by: list[str] = field(default_factory=list)
    value_field: str | None = None
    window: timedelta = timedelta(minutes=5)
    need: int = 1

    def __post_init__(self) -> None:
        self._groups = _Groups(self.max_keys)
        self._step = getattr(self, f"_{self.correlation}")

    def route_keys(self, ev: AccessEvent) -> list[tuple[Any, ...]]:
        hits = [i for i, m in enumerate(self.members) if m.match(ev)]
        if not hits:
            return []
        key = tuple(_key_part(g(ev)) for g in self.members[hits[0]].group)
        return [] if any(k is None for k in key) else [key]

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        hits = [i for i, m in enumerate(self.members) if m.match(ev)]
        if not hits:
            return []
        first = self.members[hits[0]]
        key = tuple(_key_part(g(ev)) for g in first.group)
        if any(k is None for k in key):
            return []
        ts = ev.timestamp
        lo = ts - self.window
        found: tuple[list[str], int, dict[str, Any]] | None = self._step(key, hits, ev, ts, lo)
        if found is None:
            return []
        evidence, count, context = found
        self._groups.pop(key, None)
        context = {"correlation": self.correlation, "window_seconds": int(self.window.total_seconds()), **context}
        return [Detection(self, ts, dict(zip(self.group_by, key, strict=True)), ev, evidence[-MAX_EVIDENCE:],
                          count=count, context=context)]

    def _event_count(self, key: tuple[Any, ...], hits: list[int], ev: AccessEvent, ts: datetime,
                     lo: datetime) -> tuple[list[str], int, dict[str, Any]] | None:
        win: deque[tuple[datetime, str]] = self._groups.touch(key, deque)
        win.append((ts, ev.id))
        while win and win[0][0] < lo:
            win.popleft()
        if len(win) < self.need:
            return None
        return [i for _, i in win], len(win), {"events": len(win)}

    def _value_count(self, key: tuple[Any, ...], hits: list[int], ev: AccessEvent, ts: datetime,
                     lo: datetime) -> tuple[list[str], int, dict[str, Any]] | None:
        getter = self.members[hits[0]].value
        vals = [_hashable(v) for v in getter(ev)] if getter else []
        if not vals:
            return None
        seen: dict[Any, tuple[datetime, str]] = self._groups.touch(key, dict)
        for v in vals:
            seen[v] = (ts, ev.id)
        if len(seen) >= self.need:
            for v in [v for v, (t, _) in seen.items() if t < lo]:
                del seen[v]
        if len(seen) < self.need:
            return None
        ordered = sorted(seen.items(), key=lambda kv: kv[1][0])
        evidence = list(dict.fromkeys(eid for _, (_, eid) in ordered))
        return evidence, len(seen), {"distinct_field": self.value_field, "distinct": len(seen),
                                     "sample_values": [str(v) for v, _ in ordered[:20]]}

    def _temporal(self, key: tuple[Any, ...], hits: list[int], ev: AccessEvent, ts: datetime,
                  lo: datetime) -> tuple[list[str], int, dict[str, Any]] | None:
        st: dict[int, tuple[datetime, str]] = self._groups.touch(key, dict)
        for i in hits:
            st[i] = (ts, ev.id)
        for i in [i for i, (t, _) in st.items() if t < lo]:
            del st[i]
        if len(st) < self.need:
            return None
        ordered = sorted(st.items(), key=lambda kv: kv[1][0])
        return (list(dict.fromkeys(eid for _, (_, eid) in ordered)), len(st),
                {"rules": [self.members[i].title for i, _ in ordered]})

    def _temporal_ordered(self, key: tuple[Any, ...], hits: list[int], ev: AccessEvent, ts: datetime,
                          lo: datetime) -> tuple[list[str], int, dict[str, Any]] | None:
        n = len(self.members)
        # chain[i]: (start time, event ids) of the latest-starting chain that completed steps 0..i
        chain: list[tuple[datetime, list[str]] | None] = self._groups.touch(key, lambda: [None] * n)
        for i in sorted(hits, reverse=True):  # backwards: one event never serves two steps of a chain
            if i == 0:
                chain[0] = (ts, [ev.id])
            elif (prev := chain[i - 1]) is not None and lo <= prev[0] <= ts:
                chain[i] = (prev[0], [*prev[1], ev.id])
        done = chain[n - 1]
        if done is None or done[0] < lo:
            return None
        return done[1], n, {"rules": [m.title for m in self.members]}


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s[:60].rstrip("_") or "rule"


def _metadata(rule: SigmaRule | SigmaCorrelationRule) -> dict[str, Any]:
    tags = tuple(str(t) for t in rule.tags)
    mitre = tuple(dict.fromkeys(t.name.upper() for t in rule.tags
                                if t.namespace.lower() == "attack" and _TECHNIQUE.match(t.name)))
    level = str(rule.level).lower() if rule.level is not None else "medium"
    return dict(title=rule.title or rule.name or "Sigma rule", description=(rule.description or "").strip(),
                severity=_LEVELS.get(level, Severity.medium), tags=tags, mitre=mitre,
                false_positives=tuple(str(f) for f in rule.falsepositives),
                references=tuple(str(r) for r in rule.references),
                sigma_id=str(rule.id) if rule.id is not None else None, sigma_name=rule.name)


# --- YAML locations ---------------------------------------------------------------------------

@dataclass
class _Doc:
    """One YAML document of a Sigma file, for file:line lookups."""

    line: int
    node: yaml.Node | None

    def key_node(self, key: str) -> tuple[int, yaml.Node] | None:
        if isinstance(self.node, yaml.MappingNode):
            for k, v in self.node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return k.start_mark.line + 1, v
        return None

    def line_of(self, section: str | None = None, where: Callable[[Any], bool] | None = None) -> int:
        if section is None:
            return self.line
        found = self.key_node(section)
        if found is None:
            return self.line
        line, node = found
        if where is not None and (hit := _find_key(node, where)) is not None:
            return hit
        return line

    def scalar(self, key: str) -> str | None:
        found = self.key_node(key)
        if found is not None and isinstance(found[1], yaml.ScalarNode):
            return str(found[1].value)
        return None


def _find_key(node: yaml.Node, where: Callable[[Any], bool]) -> int | None:
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if isinstance(k, yaml.ScalarNode) and where(k.value):
                return k.start_mark.line + 1
        for _, v in node.value:
            if (hit := _find_key(v, where)) is not None:
                return hit
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            if (hit := _find_key(v, where)) is not None:
                return hit
    return None


def _rule_docs(text: str) -> tuple[list[_Doc], int]:
    """The documents that become rules (in pySigma's order) and the number of non-empty documents."""
    docs: list[_Doc] = []
    n = 0
    for node in yaml.compose_all(text, Loader=_SAFE_LOADER):
        if node is None:
            continue
        n += 1
        doc = _Doc(node.start_mark.line + 1, node)
        if doc.scalar("action") in ("global", "reset") or doc.key_node("filter") is not None:
            continue
        docs.append(doc)
    return docs, n


def _sigma_message(e: SigmaError) -> str:
    return str(e.args[0]) if e.args else type(e).__name__


_ERROR_SECTIONS = (("Logsource", "logsource"), ("Correlation", "correlation"), ("Timespan", "correlation"),
                   ("RuleNotFound", "correlation"), ("Level", "level"), ("Identifier", "id"),
                   ("Status", "status"), ("Date", "date"), ("Modified", "modified"), ("Tag", "tags"),
                   ("Title", "title"), ("Name", "name"), ("Related", "related"), ("Taxonomy", "taxonomy"))


def _error_line(e: SigmaError, doc: _Doc) -> int:
    if e.source is not None and e.source.line:
        return int(e.source.line)
    cls = type(e).__name__
    msg = _sigma_message(e)
    if (m := re.search(r"[Uu]nknown modifier '(\w+)'", msg)) is not None:
        mod = m.group(1)
        return doc.line_of("detection", lambda k: f"|{mod}" in str(k))
    for part, section in _ERROR_SECTIONS:
        if part in cls:
            return doc.line_of(section)
    return doc.line_of("detection")


# --- loading ----------------------------------------------------------------------------------

@dataclass
class _Base:
    """A compiled Sigma rule that correlations can reference."""

    rule: SigmaRule
    match: Predicate
    log_types: tuple[str, ...]
    resolver: FieldResolver
    requires: Requirement = field(default_factory=dict)


@dataclass
class _Pending:
    corr: SigmaCorrelationRule
    rid: str
    file: Path
    doc: _Doc


@dataclass
class SigmaLibrary:
    """The Sigma rules of every file loaded so far, so a correlation may reference a rule in another file.

    ``load_sigma_file`` registers each file's rules and defers correlations whose references it
    cannot resolve in their own file; ``finish`` builds those once every file is loaded.
    """

    bases: dict[str, Any] = field(default_factory=dict)  # _Base; None: broken; _NESTED: a correlation
    pending: list[_Pending] = field(default_factory=list)

    def register(self, ref: str, base: Any) -> None:
        self.bases.setdefault(ref, base)

    def finish(self, errors: list[RuleError]) -> list[Rule]:
        """Build the deferred correlations; report the references that stayed unresolved."""
        out: list[Rule] = []
        for p in self.pending:
            rule = _build_correlation(p.corr, p.rid, p.file, p.doc, errors, lambda r: self.bases.get(r, _MISSING))
            if rule is not None:
                out.append(rule)
        self.pending.clear()
        return out


def _refs_of(rule: SigmaRule | SigmaCorrelationRule) -> set[str]:
    return {r for r in (str(rule.id) if rule.id is not None else None, rule.name) if r}


def _correlation_refs(corr: SigmaCorrelationRule) -> list[str]:
    if corr.rules is not None:
        return [r.reference for r in corr.rules]
    if isinstance(corr.condition, SigmaExtendedCorrelationCondition):
        return corr.condition.get_referenced_rules()
    return []


def _err(errors: list[RuleError], msg: str, rid: str, file: Path, line: int) -> None:
    errors.append(RuleError(msg, rule_id=rid, source=f"{file}:{line}"))


def _build_correlation(corr: SigmaCorrelationRule, rid: str, file: Path, doc: _Doc, errors: list[RuleError],
                       lookup: Callable[[str], Any]) -> SigmaCorrelation | None:
    """The correlation as a rule; ``lookup`` gives a reference's _Base, None (broken) or _MISSING."""
    ctype = corr.type
    names = {SigmaCorrelationType.EVENT_COUNT: "event_count", SigmaCorrelationType.VALUE_COUNT: "value_count",
             SigmaCorrelationType.TEMPORAL: "temporal", SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered"}
    if ctype not in names:
        _err(errors, f"unsupported correlation type {str(ctype)!r}; supported: {', '.join(names.values())}",
             rid, file, doc.line_of("correlation", lambda k: k == "type"))
        return None
    kind = names[ctype]
    cond = corr.condition
    if isinstance(cond, SigmaExtendedCorrelationCondition):
        _err(errors, f"unsupported extended (boolean) correlation condition {cond.expression!r}; "
             "list the rules and use gte", rid, file, doc.line_of("correlation", lambda k: k == "condition"))
        return None
    members: list[_Member] = []
    refs = _correlation_refs(corr)
    ok = True
    for ref in refs:
        base = lookup(ref)
        if base is _MISSING:
            _err(errors, f"referenced rule {ref!r} was not found in this file or another loaded Sigma file",
                 rid, file, doc.line_of("correlation", lambda k: k == "rules"))
            ok = False
        elif base is None:
            _err(errors, f"referenced rule {ref!r} could not be loaded (see its own error)",
                 rid, file, doc.line_of("correlation", lambda k: k == "rules"))
            ok = False
        elif base is _NESTED:
            _err(errors, f"referenced rule {ref!r} is a correlation: correlations over correlations are "
                 "not supported", rid, file, doc.line_of("correlation", lambda k: k == "rules"))
            ok = False
    if not ok or not refs:
        if not refs:
            _err(errors, "correlation references no rules", rid, file, doc.line_of("correlation"))
        return None
    bases: list[_Base] = [lookup(r) for r in refs]

    op = cond.op
    if op not in (SigmaCorrelationConditionOperator.GTE, SigmaCorrelationConditionOperator.GT):
        _err(errors, f"unsupported correlation condition {op.name.lower()!r}: only gte and gt can fire while "
             "events stream in (lt/lte/eq/neq need the window to close)", rid, file,
             doc.line_of("correlation", lambda k: k == "condition"))
        return None
    need = math.ceil(cond.count) if op is SigmaCorrelationConditionOperator.GTE else math.floor(cond.count) + 1
    need = max(need, 1)
    if kind == "temporal" and need > len(bases):
        _err(errors, f"temporal condition needs {need} rules but the correlation lists {len(bases)}",
             rid, file, doc.line_of("correlation", lambda k: k == "condition"))
        return None
    if kind == "temporal_ordered" and need != len(bases):
        _err(errors, f"unsupported temporal_ordered condition {need}: the ordered sequence needs all "
             f"{len(bases)} rules", rid, file, doc.line_of("correlation", lambda k: k == "condition"))
        return None

    def field_for(alias: str, ref: str) -> str:
        al = corr.aliases.aliases.get(alias) if corr.aliases else None
        if al is not None:
            for r, fname in al.mapping.items():
                if r.reference == ref:
                    return fname
        return alias

    group_by = list(corr.group_by or [])
    value_field: str | None = None
    if kind == "value_count":
        fr = cond.fieldref
        if isinstance(fr, list):
            if len(fr) != 1:
                _err(errors, "value_count over several fields is not supported", rid, file,
                     doc.line_of("correlation", lambda k: k == "condition"))
                return None
            fr = fr[0]
        value_field = str(fr)
    for base, ref in zip(bases, refs, strict=True):
        non_json = not base.resolver.json
        for g in [*group_by, *([value_field] if value_field else [])]:
            fname = field_for(g, ref)
            if non_json and not base.resolver.resolvable(fname):
                _err(errors, f"field {fname!r} is not available in the logs of rule {ref!r}", rid, file,
                     doc.line_of("correlation", lambda k: k in ("group-by", "condition", "aliases")))
                return None
        members.append(_Member(title=base.rule.title, match=base.match,
                               group=[base.resolver.getter(field_for(g, ref)) for g in group_by],
                               value=base.resolver.getter(field_for(value_field, ref)) if value_field else None))
    first = bases[0]
    group_names = [first.resolver.ecs_path(field_for(g, refs[0])) or g for g in group_by]
    log_types = tuple(dict.fromkeys(lt for b in bases for lt in b.log_types))
    meta = _metadata(corr)
    matchers = [m.match for m in members]
    return SigmaCorrelation(
        id=rid, match=lambda ev: any(p(ev) for p in matchers), log_types=log_types,
        dedup_fields=list(group_names), source=f"{file}:{doc.line}", correlation=kind, members=members,
        group_by=group_names, value_field=value_field, window=timedelta(seconds=corr.timespan.seconds),
        need=need, logsource={}, **meta)


def load_sigma_file(path: Path, errors: list[RuleError], state: dict[str, Any] | None = None) -> list[Rule]:
    """Load the Sigma rules of one file (single rules, multi-document files, correlation rules).

    Called by the loader for every file that holds a Sigma document. Every problem (pySigma's,
    and every feature this evaluator cannot run) is appended to ``errors`` with file:line and the
    reason; the other rules of the file still load. ``state`` is shared by the files of one load:
    with it, correlations may reference rules in other files (built by ``finish_sigma``).
    """
    try:
        text = path.read_text(encoding="utf-8")
        docs, n_docs = _rule_docs(text)
        # What from_yaml does, with libyaml's parser (the pure-Python one was most of the load time).
        coll = SigmaCollection.from_dicts(list(yaml.load_all(text, Loader=_SAFE_LOADER)), collect_errors=True,
                                          source=SigmaRuleLocation(path), resolve_references=False)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        errors.append(RuleError(f"invalid YAML: {e.problem or e}", source=f"{path}:{mark.line + 1 if mark else 0}"))
        return []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        errors.append(RuleError(f"cannot read: {e}", source=f"{path}:0"))
        return []
    except SigmaError as e:
        errors.append(RuleError(f"invalid Sigma file: {_sigma_message(e)}", source=f"{path}:1"))
        return []
    library: SigmaLibrary | None = state.setdefault("library", SigmaLibrary()) if state is not None else None

    # ids: the file stem, or sigma_<title slug> per rule of a multi-document file (unique within it)
    used: set[str] = set()
    ids: list[str] = []
    for r in coll.rules:
        rid = path.stem if n_docs <= 1 else f"sigma_{_slug(r.title or r.name or 'rule')}"
        base_id, k = rid, 2
        while rid in used:
            rid, k = f"{base_id}_{k}", k + 1
        used.add(rid)
        ids.append(rid)
    rule_docs = [docs[i] if i < len(docs) else _Doc(1, None) for i in range(len(coll.rules))]

    reported = {id(e) for r in coll.rules for e in r.errors}
    for ce in coll.errors:
        if id(ce) not in reported:
            errors.append(RuleError(_sigma_message(ce), source=f"{path}:{_error_line(ce, _Doc(1, None))}"))

    compiled: dict[int, _Base | None] = {}
    for i, r in enumerate(coll.rules):
        if not isinstance(r, SigmaRule):
            continue
        doc = rule_docs[i]
        if r.errors:
            for re_ in r.errors:
                _err(errors, _sigma_message(re_), ids[i], path, _error_line(re_, doc))
            compiled[i] = None
            continue
        try:
            pred, log_types, resolver, requires = compile_rule_indexed(r)
        except Unsupported as e:
            _err(errors, str(e), ids[i], path, doc.line_of(e.section, e.where))
            compiled[i] = None
            continue
        except SigmaError as e:
            _err(errors, _sigma_message(e), ids[i], path, _error_line(e, doc))
            compiled[i] = None
            continue
        compiled[i] = _Base(r, pred, log_types, resolver, requires)
    if library is not None:
        for i, r in enumerate(coll.rules):
            for ref in _refs_of(r):
                library.register(ref, compiled.get(i) if isinstance(r, SigmaRule) else _NESTED)

    def local(ref: str) -> Any:
        try:
            target = coll[ref]
        except (SigmaRuleNotFoundError, KeyError, ValueError):
            return _MISSING
        if isinstance(target, SigmaCorrelationRule):
            return _NESTED
        return next((compiled.get(j) for j, r in enumerate(coll.rules) if r is target), _MISSING)

    # Correlations first: a rule referenced by a correlation that was built, without generate: true,
    # only feeds it (Sigma's semantics). A correlation that fails or waits for other files silences nothing.
    correlations: list[Rule] = []
    silenced: set[int] = set()  # ids of those bases
    for i, r in enumerate(coll.rules):
        if not isinstance(r, SigmaCorrelationRule):
            continue
        if r.errors:
            for re_ in r.errors:
                _err(errors, _sigma_message(re_), ids[i], path, _error_line(re_, rule_docs[i]))
            continue
        refs = _correlation_refs(r)
        if library is not None and any(local(ref) is _MISSING for ref in refs):
            library.pending.append(_Pending(r, ids[i], path, rule_docs[i]))
            continue
        built = _build_correlation(r, ids[i], path, rule_docs[i], errors, local)
        if built is None:
            continue
        correlations.append(built)
        if not r.generate:
            silenced.update(id(t) for t in map(local, refs) if isinstance(t, _Base))

    out: list[Rule] = []
    for i, base in compiled.items():
        if base is None or id(base) in silenced:
            continue
        ls = base.rule.logsource
        meta = _metadata(base.rule)
        if "{" not in meta["title"]:  # the alert's title says who and from where (it dedups on both)
            meta["summary"] = meta["title"] + ": {user.name} from {source.ip}"
        out.append(SigmaMatchRule(
            id=ids[i], match=base.match, log_types=base.log_types, dedup_fields=["user.name", "source.ip"],
            source=f"{path}:{rule_docs[i].line}", requires=base.requires, resolver=base.resolver,
            logsource={k: v for k, v in (("category", ls.category), ("product", ls.product),
                                         ("service", ls.service)) if v},
            **meta))
    out += correlations
    return out


def finish_sigma(state: dict[str, Any], errors: list[RuleError]) -> list[Rule]:
    """After every file of a load: the correlations whose rules live in other files."""
    library: SigmaLibrary | None = state.get("library")
    return library.finish(errors) if library is not None else []
