"""Microsoft Entra ID (Azure AD) sign-in, audit and risk-detection logs, and Azure activity logs.

Two shapes of the same records are read:

* the diagnostic-settings JSON (Event Hub / storage export, Panther's ``Azure.Audit`` and
  ``Azure.MonitorActivity``): an envelope (``time``, ``resourceId``, ``operationName``, ``category``,
  ``resultType``, ``callerIpAddress``, ``identity``...) and the record under ``properties``;
* the Log Analytics / Microsoft Sentinel table row (``SigninLogs``, ``AADNonInteractiveUserSignInLogs``,
  ``AuditLogs``, ``AzureActivity``...): ``TimeGenerated``, ``Type`` and the properties as
  PascalCase columns, dynamic columns sometimes as JSON strings (``InitiatedBy``,
  ``TargetResources``). Keys are read ignoring case, so ``properties.userPrincipalName`` and the
  ``UserPrincipalName`` column are one field.

A Panther test row ``{"event": {...}}`` is read as its ``event``. An Event Hub batch
(``{"records": [...]}``) is not split here: feed its records one per line.

Mapping (ECS on the left), common: ``@timestamp`` = ``time`` / ``TimeGenerated``, else the record's
``createdDateTime`` / ``activityDateTime``, else Panther's ``p_event_time``; ``cloud.provider`` =
azure; ``labels.azure_category`` = ``category`` / ``Type``; ``labels.azure_tenant_id``,
``labels.azure_correlation_id``.

``azure.signinlogs`` (category SignInLogs, NonInteractiveUserSignInLogs, ServicePrincipalSignInLogs,
ManagedIdentitySignInLogs): ``event.action`` = ``operationName`` ("Sign-in activity");
``event.category`` authentication, ``type`` start; ``event.outcome`` success when ``resultType`` /
``status.errorCode`` is 0, else failure, ``event.reason`` = ``resultDescription`` /
``status.failureReason``; ``user`` from ``userPrincipalName`` / ``userId`` / ``userDisplayName``
(service principal sign-ins: ``servicePrincipalName`` / ``servicePrincipalId``); ``source.ip`` =
``ipAddress``; ``source.geo`` from ``location`` / ``LocationDetails`` (``countryOrRegion`` is an ISO
code); ``user_agent.original`` = ``userAgent``; ``resource`` = the resource signed in to
(application: ``resourceId`` / ``ResourceIdentity``, ``resourceDisplayName``); ``authentication``:
method from ``authenticationDetails`` / ``mfaDetail.authMethod``, mfa when
``authenticationRequirement`` is multiFactorAuthentication; labels ``azure_app_id``,
``azure_app_name``, ``azure_client_app``, ``azure_result_type``, ``azure_result_description``,
``azure_auth_requirement``, ``azure_risk_level``, ``azure_risk_state``, ``azure_conditional_access``,
``azure_device_id``/``_compliant``/``_trust_type`` (``deviceDetail``), and ``azure_status``
(Success when the result code is 0, else Failure: derived, for Sigma's ``Status``).

``azure.auditlogs`` (category AuditLogs or a directory category such as UserManagement,
RoleManagement, ApplicationManagement, on ``Microsoft.aadiam``; LA ``Type: AuditLogs``):
``event.action`` = ``activityDisplayName`` (else ``operationName``); ``event.category`` iam
(configuration for Policy / DirectoryManagement); ``event.type`` from ``operationType``;
``event.outcome`` from ``result``; ``event.provider`` = ``loggedByService``; ``user`` = the
initiator (``initiatedBy.user`` or ``initiatedBy.app``); ``user.target`` = the first User target;
``resource`` = the first other target (``targetResources[].type`` in snake case), else the user;
labels ``azure_audit_category`` (the directory category: ``properties.category`` / LA
``Category``), ``azure_status`` (``result`` verbatim), ``azure_operation_type``.

``azure.riskdetection`` (category UserRiskEvents / ServicePrincipalRiskEvents, LA
AADUserRiskEvents, or a Graph ``riskDetection``): ``event.action`` = ``riskEventType``;
category intrusion_detection. **Never seen in a real record** (no sample exists in the datasets):
built from Microsoft's documented riskDetection schema.

``azure.activitylogs`` (every other Azure Monitor record: Administrative, Policy, Security,
Recommendation, resource logs such as StorageRead; LA ``AzureActivity``): ``event.action`` =
``operationName`` (``OperationNameValue``); ``event.outcome`` from ``resultType`` / ``statusCode``;
``user`` from ``caller`` or the ``identity.claims`` upn / name; ``source`` = ``callerIpAddress``
(a port is split off); ``resource`` = the ``resourceId`` (type = provider/type, name = last
segment; a storage ``properties.objectKey`` is the resource, type blob); ``cloud.account.id`` =
the subscription; ``cloud.region`` = ``location``.

Fields never seen in a real record (Panther's fixtures are hand-written, msticpy and OTRF are
real): sign-in ``authenticationDetails`` and ``mfaDetail.authMethod`` values (the real msticpy rows
have them empty), ``initiatedBy.app`` on audit records, activity-log ``caller`` and
``identity.claims`` upn (only in fixtures), the LA ``AzureActivity`` columns.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    Authentication,
    Cloud,
    Endpoint,
    EventInfo,
    Geo,
    Outcome,
    Resource,
    User,
    UserAgent,
    UserTarget,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import (
    add_geo,
    email_or_none,
    geo_point,
    identified,
    inner,
    objects,
    unwrap,
    verb_type,
)
from access_audit.parse.ecs import Fields, endpoint

SIGNIN_CATEGORIES = frozenset({"signinlogs", "noninteractiveusersigninlogs", "serviceprincipalsigninlogs",
                               "managedidentitysigninlogs", "adfssigninlogs"})
SIGNIN_TYPES = frozenset({"signinlogs", "aadnoninteractiveusersigninlogs", "aadserviceprincipalsigninlogs",
                          "aadmanagedidentitysigninlogs", "adfssigninlogs"})
RISK_CATEGORIES = frozenset({"userriskevents", "serviceprincipalriskevents", "riskyusers", "riskyserviceprincipals"})
RISK_TYPES = frozenset({"aaduserriskevents", "aadserviceprincipalriskevents", "aadriskyusers"})
AUDIT_CATEGORIES = frozenset({"auditlogs", "usermanagement", "groupmanagement", "rolemanagement",
                              "applicationmanagement", "directorymanagement", "policy", "device",
                              "authentication", "other", "b2c", "provisioningmanagement",
                              "entitlementmanagement", "devicemanagement", "agreement", "kerberosdomain",
                              "resourcemanagement", "privilegedidentitymanagement"})
_TIME_KEYS = ("time", "TimeGenerated", "createdDateTime", "activityDateTime", "detectedDateTime", "p_event_time")
_IAM_CATEGORIES = ("usermanagement", "groupmanagement", "rolemanagement", "applicationmanagement",
                   "privilegedidentitymanagement", "entitlementmanagement")
_PORT = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$")
_CLAIM_NAMES = ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "name",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")


def kind_of(obj: dict[str, Any]) -> str | None:
    """signin / audit / risk / activity for an Azure record (either shape), None if not Azure."""
    f = Fields(obj, "azure")
    try:
        typ = (f.text("Type") or "").lower()
        cat = (value(f, "category") or "").lower()
        has_time = f.has("time") or f.has("TimeGenerated")
        if typ in SIGNIN_TYPES:
            return "signin"
        if typ == "auditlogs":
            return "audit"
        if typ in RISK_TYPES:
            return "risk"
        if typ == "azureactivity":
            return "activity"
        if f.has("TimeGenerated") and not f.has("properties"):
            # Some LA projections overwrite Type (with the target's type): the audit columns remain.
            if f.has("InitiatedBy") and (f.has("LoggedByService") or f.has("ActivityDisplayName")):
                return "audit"
            return None
        if not (f.has("operationName") or f.has("riskEventType")):
            return None
        if cat in SIGNIN_CATEGORIES:
            return "signin"
        if cat in RISK_CATEGORIES or (f.has("riskEventType") and f.has("detectedDateTime")):
            return "risk"
        props = f.obj_at("properties", json_string=True)
        if cat in AUDIT_CATEGORIES and props is not None and (
                props.has("loggedByService") or props.has("activityDisplayName") or props.has("initiatedBy")):
            return "audit"
        if f.has("operationName") and (f.has("resourceId") or cat) and (has_time or f.has("p_event_time")
                                                                          or f.has("p_log_type") or props):
            return "activity"
    except ParseError:
        return None
    return None


class _AzureParser(JsonParser):
    kind: ClassVar[str]

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        return isinstance(rec, dict) and kind_of(rec) == self.kind

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        obj = unwrap(obj)
        found = kind_of(obj)
        if found is None:
            raise ParseError("missing field", "operationName (or Type) is absent: not an Azure record",
                             parser=self.name)
        if found != self.kind:
            f = Fields(obj, self.name)
            raise ParseError("wrong log type", f"category={f.text('category') or f.text('Type')!r} is an Azure "
                             f"{found} record, not {self.name}", parser=self.name)
        env = Fields(obj, self.name)
        # LA rows have the properties as columns: the row itself is the properties.
        props = None if env.has("TimeGenerated") else env.obj_at("properties", json_string=True)
        p = props or env
        ts = env.time(*_TIME_KEYS) if not props else _time(env, props)
        ev = self.build(env, p, ts)
        ev.cloud = ev.cloud or Cloud(provider="azure")
        labels = ev.labels
        for key, label in (("tenantId", "azure_tenant_id"), ("correlationId", "azure_correlation_id"),
                           ("category", "azure_category"), ("Type", "azure_category")):
            if label not in labels and (v := (value(env, key) if key == "category" else env.label(key))):
                labels[label] = v
        return [ev]

    def build(self, env: Fields, p: Fields, ts: Any) -> AccessEvent:
        raise NotImplementedError


def _time(env: Fields, props: Fields) -> Any:
    if any(env.has(k) for k in ("time", "TimeGenerated", "p_event_time")):
        return env.time("time", "TimeGenerated", "p_event_time")
    if any(props.has(k) for k in ("createdDateTime", "activityDateTime", "detectedDateTime")):
        return props.time("createdDateTime", "activityDateTime", "detectedDateTime")
    raise ParseError("missing timestamp", "none of time, TimeGenerated, properties.createdDateTime, "
                     "properties.activityDateTime is present", parser=env.parser)


def value(f: Fields, key: str) -> str | None:
    """A string, or the ``value`` of an activity-log REST API ``{"value", "localizedValue"}`` pair."""
    v = f.raw(key)
    if isinstance(v, dict):
        sub = f.obj_at(key)
        return sub.text("value") if sub is not None else None
    return f.text(key)


def _geo(loc: Fields | None) -> Geo | None:
    if loc is None:
        return None
    c = loc.obj_at("geoCoordinates")
    point = geo_point(c, "latitude", "longitude") if c is not None else None
    return Geo(country_iso_code=loc.text("countryOrRegion"), city_name=loc.text("city"), location=point)


def _ip(text: str | None) -> Endpoint | None:
    if not text:
        return None
    m = _PORT.match(text)
    if m:
        e = endpoint(m.group(1))
        e.port = int(m.group(2))
        return e
    return endpoint(text)


def _result_code(env: Fields, p: Fields) -> str | None:
    for f, key in ((env, "resultType"), (p, "status.errorCode"), (p, "ResultType")):
        v = f.label(key)
        if v not in (None, ""):
            return v
    return None


@register
class EntraSignInParser(_AzureParser):
    """Microsoft Entra ID sign-in logs (interactive, non-interactive, service principal, managed identity)."""

    name = "azure.signinlogs"
    aliases = ("entra.signin", "azure.signin")
    description = "Microsoft Entra ID (Azure AD) sign-in logs"
    kind = "signin"

    def build(self, env: Fields, p: Fields, ts: Any) -> AccessEvent:
        code = _result_code(env, p)
        outcome = Outcome.unknown if code is None else (Outcome.success if code == "0" else Outcome.failure)
        reason = None
        if outcome is Outcome.failure:
            reason = env.text("resultDescription") or p.text("status.failureReason") or p.text("ResultDescription")
        upn = p.text("userPrincipalName")
        user = User(name=upn or p.text("servicePrincipalName"), id=p.text("userId") or p.text("servicePrincipalId"),
                    full_name=p.text("userDisplayName"), email=email_or_none(upn))
        labels: dict[str, str] = {}
        if code is not None:
            labels["azure_result_type"] = code
            labels["azure_status"] = "Success" if code == "0" else "Failure"
        if desc := (env.text("resultDescription") or p.text("status.failureReason") or p.text("ResultDescription")):
            labels["azure_result_description"] = desc
        if (device := p.obj_at("deviceDetail", json_string=True)) is not None:
            labels.update(device.labels((("deviceId", "azure_device_id"), ("isCompliant", "azure_device_compliant"),
                                         ("trustType", "azure_device_trust_type"))))
        labels.update(p.labels((("appId", "azure_app_id"), ("appDisplayName", "azure_app_name"),
                                ("clientAppUsed", "azure_client_app"), ("riskLevelDuringSignIn", "azure_risk_level"),
                                ("riskState", "azure_risk_state"),
                                ("conditionalAccessStatus", "azure_conditional_access"),
                                ("authenticationProtocol", "azure_auth_protocol"),
                                ("isInteractive", "azure_interactive"),
                                ("authenticationRequirement", "azure_auth_requirement"), ("id", "azure_signin_id"))))
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=["authentication"], type=["start"],
                            action=env.text("operationName") or p.text("OperationName") or "Sign-in activity",
                            outcome=outcome, reason=reason, provider="Microsoft Entra ID"),
            user=identified(user),
            labels=labels,
        )
        ev.source = _ip(p.text("ipAddress") or env.text("callerIpAddress"))
        loc = p.obj_at("LocationDetails", json_string=True)
        if loc is None and env is not p:  # an LA row's Location column is the country code alone
            loc = p.obj_at("location", json_string=True)
        add_geo(ev, _geo(loc))
        if (agent := p.text("userAgent")) is not None:
            ev.user_agent = UserAgent(original=agent)
        rid = p.text("resourceId") if env is not p else None
        rid = rid or p.text("ResourceIdentity")
        rname = p.text("resourceDisplayName")
        if rid or rname:
            ev.resource = Resource(type="application", id=rid, name=rname)
        method = None
        for d in objects(p, "authenticationDetails"):
            method = method or d.text("authenticationMethod")
        mfa_detail = p.obj_at("mfaDetail", json_string=True)
        if mfa_detail is not None and (m := mfa_detail.text("authMethod")):
            method = method or m
        req = p.text("authenticationRequirement")
        mfa = True if req == "multiFactorAuthentication" else (False if req == "singleFactorAuthentication" else None)
        if method or mfa is not None:
            ev.authentication = Authentication(method=method.lower() if method else None, mfa=mfa)
        return ev


@register
class EntraAuditParser(_AzureParser):
    """Microsoft Entra ID audit logs (directory changes: users, groups, roles, applications, policies)."""

    name = "azure.auditlogs"
    aliases = ("entra.audit", "azure.audit")
    description = "Microsoft Entra ID (Azure AD) audit logs"
    kind = "audit"

    def build(self, env: Fields, p: Fields, ts: Any) -> AccessEvent:
        action = p.text("activityDisplayName") or env.text("operationName") or p.text("operationName")
        if action is None:
            raise ParseError("missing field", "properties.activityDisplayName and operationName are absent",
                             parser=self.name)
        action = action.strip()
        cat = (p.text("category") or env.text("category") or "").lower()
        category = ["iam"] if cat in _IAM_CATEGORIES or cat == "auditlogs" else ["configuration"]
        op = p.text("operationType") or p.text("AADOperationType") or action.split(" ", 1)[0]
        result = (p.text("result") or env.text("result") or env.text("resultType") or "").lower()
        outcome = {"success": Outcome.success, "failure": Outcome.failure,
                   "timeout": Outcome.failure}.get(result, Outcome.unknown)
        user = None
        src = None
        for by in objects(p, "initiatedBy"):
            if (u := by.obj_at("user")) is not None:
                upn = u.text("userPrincipalName")
                user = User(name=upn, id=u.text("id"), full_name=u.text("displayName"), email=email_or_none(upn))
                src = u.text("ipAddress")
            elif (a := by.obj_at("app")) is not None:
                user = User(name=a.text("servicePrincipalName") or a.text("displayName"),
                            id=a.text("servicePrincipalId") or a.text("appId"))
        user = identified(user)
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=category, type=[verb_type(op)], action=action, outcome=outcome,
                            reason=p.text("resultReason") or None,
                            provider=p.text("loggedByService") or "Microsoft Entra ID"),
            user=user,
            labels={k: v for k, v in (("azure_operation_type", op), ("azure_audit_id", p.label("id")),
                                      ("azure_audit_category", p.text("category") or value(env, "category")),
                                      ("azure_status", p.text("result") or env.text("result")),
                                      ("azure_operation_name", env.text("operationName"))) if v},
        )
        ev.source = _ip(src or env.text("callerIpAddress"))
        others = []
        for t in objects(p, "targetResources"):
            ttype = t.text("type")
            if ttype and ttype.lower() == "user" and (ev.user is None or ev.user.target is None):
                upn = t.text("userPrincipalName")
                ev.user = ev.user or User()
                ev.user.target = UserTarget(name=upn or t.text("displayName"), id=t.text("id"),
                                            email=email_or_none(upn))
            else:
                others.append(t)
        if others:
            t = others[0]
            ttype = t.text("type")
            ev.resource = Resource(type=_snake(ttype) if ttype else None, id=t.text("id"),
                                   name=t.text("displayName") or t.text("userPrincipalName"))
        elif ev.user is not None and ev.user.target is not None:
            tgt = ev.user.target
            ev.resource = Resource(type="user", id=tgt.id, name=tgt.name)
        if (agent := p.text("UserAgent")) is not None:
            ev.user_agent = UserAgent(original=agent)
        return ev


@register
class EntraRiskDetectionParser(_AzureParser):
    """Microsoft Entra ID Protection risk detections (built from the documented schema only)."""

    name = "azure.riskdetection"
    aliases = ("entra.riskdetection",)
    description = "Microsoft Entra ID Protection risk detections"
    kind = "risk"

    def build(self, env: Fields, p: Fields, ts: Any) -> AccessEvent:
        risk = p.text("riskEventType") or env.text("riskEventType")
        if risk is None:
            raise ParseError("missing field", "riskEventType is absent", parser=self.name)
        upn = p.text("userPrincipalName")
        user = User(name=upn, id=p.text("userId"), full_name=p.text("userDisplayName"), email=email_or_none(upn))
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="alert", category=["intrusion_detection"], type=["info"], action=risk,
                            outcome=Outcome.unknown, provider="Microsoft Entra ID Protection"),
            user=identified(user),
            labels={k: v for k, v in (("azure_risk_level", p.label("riskLevel")),
                                      ("azure_risk_state", p.label("riskState")),
                                      ("azure_risk_detail", p.label("riskDetail"))) if v},
        )
        ev.source = _ip(p.text("ipAddress"))
        add_geo(ev, _geo(p.obj_at("location", json_string=True)))
        return ev


@register
class AzureActivityParser(_AzureParser):
    """Azure Monitor activity logs and resource logs (management operations on Azure resources)."""

    name = "azure.activitylogs"
    aliases = ("azure.activity", "azure.monitor")
    description = "Azure activity logs (Azure Monitor, control plane) and resource logs"
    kind = "activity"

    def build(self, env: Fields, p: Fields, ts: Any) -> AccessEvent:
        action = value(env, "operationName") or env.text("OperationNameValue")
        if action is None:
            raise ParseError("missing field", "operationName is absent", parser=self.name)
        cat = (value(env, "category") or env.text("CategoryValue") or "").lower()
        status = env.number("statusCode")
        result = (value(env, "resultType") or value(env, "status") or env.text("ActivityStatusValue") or "").lower()
        if status is not None:
            outcome = Outcome.success if status < 400 else Outcome.failure
        elif result in ("success", "succeeded", "accept", "accepted", "start", "started", "active"):
            outcome = Outcome.success
        elif result in ("failure", "failed"):
            outcome = Outcome.failure
        else:
            outcome = Outcome.unknown
        verb = action.rsplit("/", 1)[-1]
        if cat.startswith("storage"):
            category, etype = ["file"], {"storageread": "access", "storagewrite": "change",
                                         "storagedelete": "deletion"}.get(cat, verb_type(verb))
        else:
            category, etype = ["configuration"], verb_type({"write": "update", "action": "change"}.get(
                verb.lower(), verb))
        name = env.text("caller") or env.text("Caller")
        if name is None and (claims := env.obj_at("identity.claims")) is not None:
            name = next((c for k in _CLAIM_NAMES if (c := claims.text(k))), None)
        user = User(name=name, email=email_or_none(name)) if name else None
        labels = {k: v for k, v in (("azure_result_type", value(env, "resultType")),
                                    ("azure_result_signature", env.label("resultSignature")),
                                    ("azure_level", env.label("level")),
                                    ("azure_identity_type", env.label("identity.type"))) if v}
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=category, type=[etype], action=action, outcome=outcome,
                            reason=env.text("statusText") or env.text("resultDescription"),
                            provider=_provider(env.text("resourceId") or env.text("ResourceId"), action)),
            user=user,
            labels=labels,
        )
        ev.source = _ip(env.text("callerIpAddress") or env.text("CallerIpAddress"))
        rid = env.text("resourceId") or env.text("ResourceId")
        props = env.obj_at("properties", json_string=True)
        key = props.text("objectKey") if props is not None else None
        if key:
            ev.resource = Resource(type="blob", id=rid, name=key, owner=props.text("accountName") if props else None)
        elif rid:
            ev.resource = _resource(rid)
        if props is not None and (agent := props.text("userAgentHeader")) is not None:
            ev.user_agent = UserAgent(original=agent)
        sub = re.match(r"(?i)^/subscriptions/([^/]+)", rid or "")
        ev.cloud = Cloud(provider="azure", region=env.text("location"),
                         account={"id": sub.group(1)} if sub else None)
        return ev


def _provider(rid: str | None, action: str) -> str | None:
    m = re.search(r"(?i)/providers/([^/]+)", rid or "")
    if m:
        return m.group(1)
    head = action.split("/", 1)[0]
    return head if "." in head else None


def _resource(rid: str) -> Resource:
    parts = [x for x in rid.split("/") if x]
    rtype = None
    low = [x.lower() for x in parts]
    if "providers" in low:
        i = len(low) - 1 - low[::-1].index("providers")
        tail = parts[i + 1:]
        if len(tail) >= 3:  # Namespace/type/name[/subtype/name...]
            rtype = "/".join([tail[0], *tail[1::2]]).lower()
        elif tail:
            rtype = tail[0].lower()
    elif len(parts) == 2 and low[0] == "subscriptions":
        rtype = "subscription"
    return Resource(type=rtype, id=rid, name=parts[-1] if parts else None)


def _snake(text: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).replace(" ", "_").lower()
