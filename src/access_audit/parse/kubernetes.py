"""Kubernetes API server audit events (``audit.k8s.io/v1`` ``Event``): the JSON-lines log of
``--audit-log-path``, one event per line, or an ``EventList`` (``{"kind": "EventList", "items":
[...]}``, the webhook backend's batch), which gives one event per item. ``audit.k8s.io/v1beta1``
events read the same way (their ``timestamp`` is the fallback time).

Recognised by content: ``apiVersion`` ``audit.k8s.io/*`` and ``kind`` ``Event`` or ``EventList``.
With ``--log-type kubernetes.audit`` a record without ``apiVersion``/``kind`` is read too (items of
an EventList carry neither); another ``apiVersion`` or ``kind`` is a dead letter (wrong log type).

Mapping (ECS on the left):

* ``@timestamp`` = ``requestReceivedTimestamp`` (when the request arrived: an ``exec`` session
  completes much later), else ``stageTimestamp``, else the v1beta1 ``timestamp``;
  ``labels.k8s_stage_timestamp`` = ``stageTimestamp``.
* ``event.action`` = ``verb`` (get, list, watch, create, update, patch, delete, deletecollection...);
  ``event.type`` access (get/list/watch), creation, deletion, change (update/patch), else info;
  ``event.category`` iam for the rbac/authentication/authorization/certificates API groups and
  service accounts, else api; ``event.provider`` kube-apiserver.
* ``event.outcome`` from ``responseStatus.code``: below 400 success, else failure (``event.reason``
  = ``responseStatus.message`` / ``reason``); unknown without a code (RequestReceived).
* ``user.name`` = ``user.username``, ``user.id`` = ``user.uid``; ``labels.k8s_groups`` = the groups,
  comma-separated. Impersonation (``kubectl --as``) keeps the authenticated user as ``user.name``
  and writes ``labels.k8s_impersonated_user`` / ``k8s_impersonated_groups``: authorization was done
  as that identity (our model has no ``user.effective``).
* ``source.ip`` = ``sourceIPs[0]`` (``labels.k8s_source_ips`` all of them when there are several);
  ``user_agent.original`` = ``userAgent``; ``url.original`` = ``requestURI``, ``url.path`` /
  ``url.query`` its parts.
* ``resource`` = the object accessed (``objectRef``): ``type`` = ``resource`` or
  ``resource/subresource`` (RBAC notation: ``secrets``, ``pods/exec``); ``name`` =
  ``namespace/name``, ``name`` for a cluster-scoped object, ``namespace/*`` / ``*`` for a
  collection (list, watch, deletecollection); ``id`` = ``objectRef.uid``. A non-resource request
  (``/api``, ``/healthz``: no objectRef) has resource type ``url`` and the path as name. Labels
  ``k8s_resource``, ``k8s_subresource``, ``k8s_namespace``, ``k8s_name``, ``k8s_api_group``,
  ``k8s_api_version``.
* ``labels.k8s_audit_id`` = ``auditID`` (``event.id`` stays the registry's deterministic id: two
  stages of one request share their auditID), ``k8s_stage``, ``k8s_level``, ``k8s_response_code``,
  ``k8s_decision`` / ``k8s_authz_reason`` (annotations ``authorization.k8s.io/decision`` /
  ``reason``).
* From ``requestObject`` (levels Request and RequestResponse), for pods and the pod template of
  deployments, daemon sets, stateful sets, replica sets, jobs and cron jobs: ``labels.k8s_host_path``
  (the ``hostPath`` volume paths), ``k8s_capabilities`` (``securityContext.capabilities.add`` of
  all containers), ``k8s_privileged`` (a container with ``securityContext.privileged: true``),
  ``k8s_host_namespaces`` (hostNetwork, hostPID, hostIPC). requestObject is free-form (a patch body
  may be a JSON Patch list): shapes other than these are ignored, never a dead letter.

Stages. The API server writes up to three records per request with the same ``auditID``:
RequestReceived (before authorization, no response), ResponseStarted (long-running requests only:
watch, exec, attach, port-forward) and ResponseComplete (or Panic). Every stage is parsed, and
``labels.k8s_stage`` says which: the intermediate records are evidence too (a RequestReceived with
no ResponseComplete is a request the server never finished), and dropping them, or making them
dead letters, would either lose them or flood the dead letters of a cluster whose policy does not
omit RequestReceived (the default). Detection counts a request once: the Sigma log source
``product: kubernetes`` evaluates only ResponseComplete and Panic records (``detect/sigma.py``), and
our kubernetes rules require those stages.

Required (else a dead letter naming the field): ``auditID``, ``stage`` (one of the four),
``verb``, ``requestURI``, ``user.username``, a timestamp; wrongly typed fields (``sourceIPs`` not a
list of strings, ``responseStatus.code`` not a number, ``objectRef`` not an object...) name the
field. An EventList with a broken item is one dead letter naming ``items[i].<field>``.

Real sample (``audit2rbac_k8s_audit/demo.log``): 37 of 37 lines parse (all ResponseComplete,
level Metadata, v1beta1-era fields under a v1 apiVersion, so the time is the ``timestamp``
fallback). Never seen in a real record: ``requestReceivedTimestamp``/``stageTimestamp``,
``userAgent``, ``annotations``, ``objectRef.name``/``subresource``/``apiGroup``/``uid``,
``user.uid``, ``requestObject``, the RequestReceived/ResponseStarted/Panic stages, EventList:
built from the ``audit.k8s.io/v1`` types (k8s.io/apiserver/pkg/apis/audit/v1/types.go).
"""

from __future__ import annotations

from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import AccessEvent, EventInfo, Outcome, Resource, Url, User, UserAgent
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import required
from access_audit.parse.ecs import Fields, endpoint

STAGES = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"})
FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})
_TIME_KEYS = ("requestReceivedTimestamp", "stageTimestamp", "timestamp")
_IAM_GROUPS = frozenset({"rbac.authorization.k8s.io", "authentication.k8s.io", "authorization.k8s.io",
                         "certificates.k8s.io"})
_TYPES = {"get": "access", "list": "access", "watch": "access", "create": "creation", "delete": "deletion",
          "deletecollection": "deletion", "update": "change", "patch": "change"}
# where the pod spec sits in the requestObject of each workload resource
_POD_SPEC_PATHS = {"pods": ("spec",), "deployments": ("spec", "template", "spec"),
                   "daemonsets": ("spec", "template", "spec"), "statefulsets": ("spec", "template", "spec"),
                   "replicasets": ("spec", "template", "spec"), "replicationcontrollers": ("spec", "template", "spec"),
                   "jobs": ("spec", "template", "spec"),
                   "cronjobs": ("spec", "jobTemplate", "spec", "template", "spec")}


def is_audit_object(obj: dict[str, Any]) -> bool:
    api = obj.get("apiVersion")
    return isinstance(api, str) and api.startswith("audit.k8s.io/") and obj.get("kind") in ("Event", "EventList")


@register
class KubernetesAuditParser(JsonParser):
    """Kubernetes API server audit events (audit.k8s.io Event, one per line, or an EventList)."""

    name = "kubernetes.audit"
    aliases = ("k8s.audit",)
    description = "Kubernetes API server audit events (audit.k8s.io/v1 Event or EventList)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        return is_audit_object(obj)

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        top = Fields(obj, self.name)
        api, kind = top.text("apiVersion"), top.text("kind")
        if api is not None and not api.startswith("audit.k8s.io/"):
            raise ParseError("wrong log type", f"apiVersion={api!r} is not audit.k8s.io/*", parser=self.name)
        if kind == "EventList" or (kind is None and "items" in obj):
            events = []
            for item in top.objects("items"):
                ev = self._event(item)
                ev.raw_obj = item.obj  # type: ignore[misc]  # Sigma reads this item, not the whole list
                events.append(ev)
            return events
        if kind not in (None, "Event"):
            raise ParseError("wrong log type", f"kind={kind!r} is neither Event nor EventList", parser=self.name)
        return [self._event(top)]

    def _event(self, f: Fields) -> AccessEvent:
        p = f.prefix
        audit_id = required(f, "auditID")
        stage = required(f, "stage")
        if stage not in STAGES:
            raise ParseError("invalid field value", f"{p}stage={stage!r} is not one of {', '.join(sorted(STAGES))}",
                             parser=self.name)
        verb = required(f, "verb")
        uri = required(f, "requestURI")
        user_f = f.obj_at("user")
        if user_f is None:
            raise ParseError("missing field", f"{p}user is absent", parser=self.name)
        username = required(user_f, "username")
        ts = f.time(*_TIME_KEYS)

        labels: dict[str, str] = {"k8s_audit_id": audit_id, "k8s_stage": stage}
        if (level := f.text("level")) is not None:
            labels["k8s_level"] = level
        if (st := f.text("stageTimestamp")) is not None:
            f.time("stageTimestamp")  # a broken one is a dead letter, even when not the event time
            labels["k8s_stage_timestamp"] = st
        if groups := _strings(user_f, "groups"):
            labels["k8s_groups"] = ",".join(groups)
        if (imp := f.obj_at("impersonatedUser")) is not None:
            if (who := imp.text("username")) is not None:
                labels["k8s_impersonated_user"] = who
            if groups := _strings(imp, "groups"):
                labels["k8s_impersonated_groups"] = ",".join(groups)

        outcome, reason = Outcome.unknown, None
        if (rs := f.obj_at("responseStatus")) is not None and (code := rs.number("code")) is not None:
            labels["k8s_response_code"] = str(int(code))
            outcome = Outcome.success if code < 400 else Outcome.failure
            if outcome is Outcome.failure:
                reason = rs.text("message") or rs.text("reason") or f"HTTP {int(code)}"
        if (ann := f.obj_at("annotations")) is not None:
            for key, label in (("authorization.k8s.io/decision", "k8s_decision"),
                               ("authorization.k8s.io/reason", "k8s_authz_reason")):
                if (v := ann.obj.get(key)) is not None:
                    if not isinstance(v, str):
                        raise ann.wrong(key, v, "string")
                    labels[label] = v

        ref = f.obj_at("objectRef")
        resource, group = _resource(ref, uri, labels)
        category = "iam" if group in _IAM_GROUPS or labels.get("k8s_resource") == "serviceaccounts" else "api"
        path, _, query = uri.partition("?")
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=[category], type=[_TYPES.get(verb, "info")], action=verb,
                            outcome=outcome, reason=reason, provider="kube-apiserver"),
            user=User(name=username, id=user_f.text("uid")),
            url=Url(original=uri, path=path or None, query=query or None),
            resource=resource,
            labels=labels,
        )
        if (who := labels.get("k8s_impersonated_user")) is not None:
            ev.related.user.append(who)  # a pivot on bob finds what was done as bob
        ips = _strings(f, "sourceIPs")
        if ips:
            ev.source = endpoint(ips[0])
            if len(ips) > 1:
                labels["k8s_source_ips"] = ",".join(ips)
        if (agent := f.text("userAgent")) is not None:
            ev.user_agent = UserAgent(original=agent)
        if ref is not None:
            _pod_spec_labels(f.raw("requestObject"), labels.get("k8s_resource"), labels)
        return ev


def _strings(f: Fields, key: str) -> list[str]:
    out = f.list_at(key)
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise f.wrong(f"{key}[{i}]", v, "string")
    return out


def _resource(ref: Fields | None, uri: str, labels: dict[str, str]) -> tuple[Resource, str | None]:
    if ref is None:
        return Resource(type="url", name=uri.partition("?")[0]), None
    res, sub, ns, name = ref.text("resource"), ref.text("subresource"), ref.text("namespace"), ref.text("name")
    group = ref.text("apiGroup")
    for v, label in ((res, "k8s_resource"), (sub, "k8s_subresource"), (ns, "k8s_namespace"), (name, "k8s_name"),
                     (group, "k8s_api_group"), (ref.text("apiVersion"), "k8s_api_version")):
        if v is not None:
            labels[label] = v
    rtype = f"{res}/{sub}" if res and sub else res
    leaf = name if name is not None else "*"  # no name: the collection (list, watch, deletecollection)
    rname = f"{ns}/{leaf}" if ns else leaf
    return Resource(type=rtype, id=ref.text("uid"), name=rname), group


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _pod_spec_labels(request: Any, resource: str | None, labels: dict[str, str]) -> None:
    """hostPath volumes, added capabilities, privileged containers and host namespaces of the pod
    spec in a request body (lenient: a body of another shape yields nothing)."""
    path = _POD_SPEC_PATHS.get(resource or "")
    spec = _dig(request, path) if path else None
    if not isinstance(spec, dict):
        return
    host_paths = []
    for vol in spec.get("volumes") or []:
        hp = _dig(vol, ("hostPath", "path"))
        if isinstance(hp, str):
            host_paths.append(hp)
    caps: list[str] = []
    privileged = False
    for key in ("containers", "initContainers", "ephemeralContainers"):
        containers = spec.get(key)
        for c in containers if isinstance(containers, list) else []:
            sc = _dig(c, ("securityContext",))
            if not isinstance(sc, dict):
                continue
            privileged |= sc.get("privileged") is True
            added = _dig(sc, ("capabilities", "add"))
            for cap in added if isinstance(added, list) else []:
                if isinstance(cap, str) and cap not in caps:
                    caps.append(cap)
    hosts = [k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    for values, label in ((host_paths, "k8s_host_path"), (caps, "k8s_capabilities"),
                          (hosts, "k8s_host_namespaces")):
        if values:
            labels[label] = ",".join(values)
    if privileged:
        labels["k8s_privileged"] = "true"
