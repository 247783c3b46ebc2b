"""SigmaHQ's application/kubernetes rules on kubernetes.audit.

All 16 rules load (no lint problem) and evaluate. On the real audit2rbac sample (37 events, all
ResponseComplete, level Metadata) exactly two fire: ``unauthorized_unauthenticated_actions`` on
its 11 denied requests (403) and ``secrets_enumeration`` on its one list of secrets (Sigma's rule
ignores the outcome: it was denied); the other 14 stay silent on it. The rest is shown on records of
the documented audit.k8s.io/v1 shape. Caveats (they load and run, but cannot fire as written):
``potential_enumeration_activity`` requires ``responseStatus.code: 'ALLOW'``, a string no API
server writes there (the code is an HTTP status); ``exec_into_container`` requires verb create,
so kubectl 1.30+ exec over WebSockets (verb get) escapes it (our k8s_pod_exec counts both).

The API server writes one record per stage of a request: the rules see only the final one
(ResponseComplete or Panic), so a request fires once.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from access_audit.core.events import AccessEvent
from access_audit.core.records import RawRecord
from access_audit.detect.engine import DetectionEngine
from access_audit.detect.loader import load_rules
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PREFIX = "kubernetes_audit_"


@pytest.fixture
def registry() -> ParserRegistry:
    return ParserRegistry(clock=FrozenClock(NOW))


def folder(datasets: Path) -> Path:
    return datasets / "sigmahq" / "rules" / "application" / "kubernetes"


@pytest.fixture
def rules(datasets) -> dict[str, Any]:
    return {k.removeprefix(PREFIX): r for k, r in load_rules([folder(datasets)], include_default=False).by_id().items()}


def events_of(registry, records: list[dict[str, Any]]) -> list[AccessEvent]:
    out = []
    for i, rec in enumerate(records):
        res = registry.parse(RawRecord(data=orjson.dumps(rec), origin=f"k:{i}", source="k"))
        assert not res.dead_letters, res.dead_letters[0].reason
        out.extend(res.events)
    return out


def fired(rule, events: list[AccessEvent]) -> int:
    return sum(bool(rule.evaluate(ev)) for ev in events)


def test_every_kubernetes_rule_loads(datasets):
    path = folder(datasets)
    rs = load_rules([path], include_default=False)
    assert len(sorted(path.rglob("*.yml"))) == 16
    assert rs.errors == []
    assert len(rs.rules) == 16
    assert set().union(*(r.log_types for r in rs.rules)) == {"kubernetes.audit"}
    # both spellings of the log source: with and without category application
    assert Counter(r.logsource.get("category") for r in rs.rules) == {"application": 10, None: 6}


def test_on_the_real_sample_only_denials_and_the_secrets_list_fire(datasets, registry, rules):
    path = datasets / "audit2rbac_k8s_audit" / "demo.log"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    evs = events_of(registry, rows)
    assert len(evs) == 37
    denied = sum(r["responseStatus"]["code"] in (401, 403) for r in rows)
    secret_lists = sum(r["verb"] == "list" and r.get("objectRef", {}).get("resource") == "secrets" for r in rows)
    got = {name: fired(rule, evs) for name, rule in rules.items()}
    assert got.pop("unauthorized_unauthenticated_actions") == denied == 11
    assert got.pop("secrets_enumeration") == secret_lists == 1
    assert got == dict.fromkeys(got, 0) and len(got) == 14


def audit(verb: str, ref: dict[str, Any] | None, *, code: int = 200, stage: str = "ResponseComplete",
          user: str = "jan.devries@zorgwijk.nl", uri: str | None = None, body: Any = None,
          audit_id: str = "7a0c5e2b-4d1f-4b8a-9c3e-5f6a7b8c9d01") -> dict[str, Any]:
    """An audit.k8s.io/v1 event as a current API server writes it."""
    if uri is None and ref is not None:
        group = f"/apis/{ref['apiGroup']}/v1" if ref.get("apiGroup") else "/api/v1"
        ns = f"/namespaces/{ref['namespace']}" if ref.get("namespace") else ""
        name = f"/{ref['name']}" if ref.get("name") else ""
        sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
        uri = f"{group}{ns}/{ref['resource']}{name}{sub}"
    rec: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request" if body is not None else "Metadata",
        "auditID": audit_id, "stage": stage, "requestURI": uri, "verb": verb,
        "user": {"username": user, "groups": ["developers", "system:authenticated"]},
        "sourceIPs": ["145.100.10.2"], "userAgent": "kubectl/v1.29.4 (linux/amd64) kubernetes/55019c8",
        "requestReceivedTimestamp": "2026-11-20T08:00:00.000000Z", "stageTimestamp": "2026-11-20T08:00:00.021000Z",
    }
    if ref is not None:
        rec["objectRef"] = {"apiVersion": "v1", **ref}
    if stage != "RequestReceived":
        rec["responseStatus"] = {"metadata": {}, "code": code}
    if body is not None:
        rec["requestObject"] = body
    return rec


POD = {"resource": "pods", "namespace": "payments", "name": "debug"}
EXEC = {**POD, "name": "api-7d9f8c6b5-x2kqz", "subresource": "exec"}


def pod_body(**spec: Any) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "debug", "namespace": "payments"},
            "spec": {"containers": [{"name": "sh", "image": "alpine:3.20", "command": ["sleep", "infinity"]}],
                     **spec}}


CASES = [
    # (rule, firing record, a similar record that must not fire)
    ("exec_into_container", audit("create", EXEC, code=101), audit("get", {**EXEC, "subresource": "log"})),
    ("secrets_modified_or_deleted", audit("delete", {"resource": "secrets", "namespace": "payments", "name": "db"}),
     audit("get", {"resource": "secrets", "namespace": "payments", "name": "db"})),
    ("secrets_enumeration", audit("list", {"resource": "secrets", "namespace": "payments"}),
     audit("list", {"resource": "configmaps", "namespace": "payments"})),
    ("rolebinding_modification",
     audit("create", {"resource": "clusterrolebindings", "name": "pwn", "apiGroup": "rbac.authorization.k8s.io"},
           code=201),
     audit("get", {"resource": "clusterrolebindings", "name": "pwn", "apiGroup": "rbac.authorization.k8s.io"})),
    ("change_admission_controller",
     audit("patch", {"resource": "validatingwebhookconfigurations", "name": "policy",
                     "apiGroup": "admissionregistration.k8s.io"}),
     audit("list", {"resource": "validatingwebhookconfigurations", "apiGroup": "admissionregistration.k8s.io"})),
    ("cronjob_modification", audit("create", {"resource": "cronjobs", "namespace": "payments", "name": "c",
                                              "apiGroup": "batch"}, code=201),
     audit("create", {"resource": "cronjobs", "namespace": "payments", "name": "c", "apiGroup": "other.io"})),
    ("pod_in_system_namespace", audit("create", {**POD, "namespace": "kube-system"}, code=201),
     audit("create", POD, code=201)),
    ("serviceaccount_creation", audit("create", {"resource": "serviceaccounts", "namespace": "payments",
                                                 "name": "x"}, code=201),
     audit("delete", {"resource": "serviceaccounts", "namespace": "payments", "name": "x"})),
    ("deployment_deleted", audit("delete", {"resource": "deployments", "namespace": "payments", "name": "api",
                                            "apiGroup": "apps"}),
     audit("get", {"resource": "deployments", "namespace": "payments", "name": "api", "apiGroup": "apps"})),
    ("events_deleted", audit("delete", {"resource": "events", "namespace": "payments", "name": "e"}),
     audit("list", {"resource": "events", "namespace": "payments"})),
    # the rule writes apiGroup for objectRef.apiGroup
    ("rbac_permisions_listing",
     audit("create", {"resource": "selfsubjectrulesreviews", "apiGroup": "authorization.k8s.io"}, code=201),
     audit("create", {"resource": "selfsubjectrulesreviews", "apiGroup": "other.io"}, code=201)),
    ("sidecar_injection", audit("patch", {"resource": "deployments", "namespace": "payments", "name": "api",
                                          "apiGroup": "apps"}),
     audit("patch", {"resource": "deployments", "namespace": "payments", "name": "api", "apiGroup": "extensions"})),
    # hostPath / capabilities: the pod spec of the request body (level Request)
    ("hostpath_mount",
     audit("create", POD, code=201, body=pod_body(volumes=[{"name": "h", "hostPath": {"path": "/"}}])),
     audit("create", POD, code=201, body=pod_body(volumes=[{"name": "t", "emptyDir": {}}]))),
    ("privileged_pod_creation",
     audit("create", POD, code=201, body=pod_body(containers=[
         {"name": "sh", "image": "alpine:3.20", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}])),
     audit("create", POD, code=201, body=pod_body())),
    ("unauthorized_unauthenticated_actions", audit("get", {"resource": "secrets", "namespace": "payments",
                                                           "name": "db"}, code=403, user="system:anonymous"),
     audit("get", {"resource": "secrets", "namespace": "payments", "name": "db"}, code=404)),
]


@pytest.mark.parametrize(("name", "hit", "miss"), CASES, ids=[c[0] for c in CASES])
def test_rule_fires_on_a_realistic_record(registry, rules, name, hit, miss):
    rule = rules[name]
    assert fired(rule, events_of(registry, [hit])) == 1
    assert fired(rule, events_of(registry, [miss])) == 0


def test_all_but_the_enumeration_rule_are_shown_firing(rules):
    assert set(rules) - {c[0] for c in CASES} == {"potential_enumeration_activity"}


def test_caveats(registry, rules):
    # 'ALLOW' is no status code: a shell exec by kubectl does not fire it
    shell = audit("create", EXEC, code=101,
                  uri="/api/v1/namespaces/payments/pods/api/exec?command=%2Fbin%2Fsh&stdin=true&tty=true")
    assert fired(rules["potential_enumeration_activity"], events_of(registry, [shell])) == 0
    # kubectl 1.30+ opens exec over WebSockets: verb get, which Sigma's exec rule does not count
    assert fired(rules["exec_into_container"], events_of(registry, [{**shell, "verb": "get"}])) == 0


def test_each_request_fires_once_whatever_stages_the_policy_logs(registry, rules, datasets):
    stages = [audit("create", EXEC, stage=s, code=101) for s in ("RequestReceived", "ResponseStarted",
                                                                 "ResponseComplete")]
    evs = events_of(registry, stages)
    assert [e.labels["k8s_stage"] for e in evs] == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    rule = rules["exec_into_container"]
    assert [bool(rule.evaluate(e)) for e in evs] == [False, False, True]
    panic = events_of(registry, [audit("create", EXEC, stage="Panic", code=500)])
    assert fired(rule, panic) == 1  # the API server's last word on the request
    # the same through the engine (its dispatch index on verb/objectRef must not bypass the gate)
    engine = DetectionEngine(load_rules([folder(datasets)], include_default=False).rules)
    hits = [d.rule.id for e in evs for d in engine.process(e)]
    assert hits == ["kubernetes_audit_exec_into_container"]


def test_event_list_items_read_from_a_stored_event(registry, rules):
    """A stored event has no decoded record: Sigma decodes event.original (the whole EventList) and
    must read this event's item (auditID and stage), not every item of the list."""
    items = [audit("get", {"resource": "secrets", "namespace": "payments", "name": "db"}, audit_id="a1"),
             audit("list", {"resource": "secrets", "namespace": "payments"}, audit_id="a2")]
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    parsed = registry.parse(RawRecord(data=orjson.dumps(batch), origin="k:0", source="k")).events
    stored = [AccessEvent.from_json(e.to_json()) for e in parsed]
    assert [e.raw_obj for e in stored] == [None, None]
    rule = rules["secrets_enumeration"]
    assert [bool(rule.evaluate(e)) for e in parsed] == [False, True]
    assert [bool(rule.evaluate(e)) for e in stored] == [False, True]
