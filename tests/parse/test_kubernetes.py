"""Kubernetes API server audit events, on the real sample and on records of the documented v1 shape.

Counts (asserted below, each computed from the vendor JSON, not from the parser):

* ``audit2rbac_k8s_audit/demo.log``: 37 of 37 lines parse, auto-detected and by log type alike:
  14 resource requests (pods 10, nodes 2, configmaps 1, secrets 1) and 23 discovery requests
  (no objectRef: resource type url); 11 denied (403, outcome failure), 26 allowed; all stage
  ResponseComplete; ``kubectl --as`` impersonation of bob (29), system:serviceaccount:ns1:sa1 (5)
  and alice (3) by system:admin.

The sample has no v1 timestamps, user agents, object names, subresources or request bodies, and
only the ResponseComplete stage: those are tested on records written after the audit.k8s.io/v1 types.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord


def demo(datasets) -> list[dict[str, Any]]:
    path = datasets / "audit2rbac_k8s_audit" / "demo.log"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def parse(registry, rec: dict[str, Any], log_type: str | None = None, i: int = 0):
    return registry.parse(RawRecord(data=orjson.dumps(rec), origin=f"k:{i}", source="k", log_type=log_type))


def test_every_demo_line_parses_auto_detected_and_by_log_type(registry, datasets):
    rows = demo(datasets)
    assert len(rows) == 37
    auto = [parse(registry, r, i=i) for i, r in enumerate(rows)]
    typed = [parse(registry, r, "kubernetes.audit", i=i) for i, r in enumerate(rows)]
    assert all(len(a.events) == 1 and not a.dead_letters for a in auto)
    assert [a.events[0].id for a in auto] == [t.events[0].id for t in typed]
    events = [a.events[0] for a in auto]
    assert {e.event.dataset for e in events} == {"kubernetes.audit"}

    # outcome from responseStatus.code, counted on the vendor JSON
    denied = sum(r["responseStatus"]["code"] >= 400 for r in rows)
    assert denied == 11 and sum(e.event.outcome is Outcome.failure for e in events) == denied
    assert sum(e.event.outcome is Outcome.success for e in events) == len(rows) - denied == 26
    # resources
    want = Counter(r["objectRef"]["resource"] if "objectRef" in r else "url" for r in rows)
    assert want == {"url": 23, "pods": 10, "nodes": 2, "configmaps": 1, "secrets": 1}
    assert Counter(e.resource.type for e in events) == want
    # who: the authenticated user, and whom it impersonated
    assert {e.user.name for e in events} == {"system:admin"}
    imp = Counter(e.labels["k8s_impersonated_user"] for e in events)
    assert imp == Counter(r["impersonatedUser"]["username"] for r in rows)
    assert imp == {"bob": 29, "system:serviceaccount:ns1:sa1": 5, "alice": 3}
    assert {e.labels["k8s_stage"] for e in events} == {"ResponseComplete"}
    assert [e.labels["k8s_audit_id"] for e in events] == [r["auditID"] for r in rows]


def test_demo_mapping(registry, datasets):
    rows = demo(datasets)
    (ev,) = parse(registry, rows[0]).events
    assert ev.timestamp.isoformat() == "2017-09-11T19:55:05+00:00"  # the v1beta1 timestamp (fallback)
    assert ev.event.action == "list" and ev.event.type == ["access"] and ev.event.category == ["api"]
    assert ev.event.reason == 'pods is forbidden: User "bob" cannot list pods in the namespace "default"'
    assert ev.source.ip == "::1" and ev.url.path == "/api/v1/namespaces/default/pods"
    assert (ev.resource.type, ev.resource.name) == ("pods", "default/*")  # a list: the collection
    assert ev.labels["k8s_groups"] == "system:masters,system:authenticated"
    assert ev.labels["k8s_response_code"] == "403" and ev.labels["k8s_namespace"] == "default"
    assert set(ev.related.user) == {"system:admin", "bob"}
    secrets = next(parse(registry, r).events[0] for r in rows if r.get("objectRef", {}).get("resource") == "secrets")
    assert (secrets.resource.name, secrets.labels["k8s_impersonated_user"]) == ("ns1/*", "alice")
    nodes = next(parse(registry, r).events[0] for r in rows if r.get("objectRef", {}).get("resource") == "nodes")
    assert nodes.resource.name == "*"  # cluster-scoped collection
    discovery = next(r for r in rows if "objectRef" not in r)
    ev = parse(registry, discovery).events[0]
    assert (ev.resource.type, ev.resource.name) == ("url", discovery["requestURI"].partition("?")[0])
    assert ev.event.outcome is Outcome.success and "k8s_resource" not in ev.labels
    assert parse(registry, rows[0]).events[0].raw_obj == rows[0]  # Sigma reads the vendor record


# An event as a current API server writes it (audit.k8s.io/v1, level Metadata).
GET_SECRET = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
    "auditID": "5f4d6c1e-9b2a-4e8f-a1c3-7d2e9f0b4a61", "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/payments/secrets/db-credentials", "verb": "get",
    "user": {"username": "jan.devries@zorgwijk.nl", "uid": "oidc:4711",
             "groups": ["developers", "system:authenticated"]},
    "sourceIPs": ["145.100.10.2", "10.0.0.7"], "userAgent": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
    "objectRef": {"resource": "secrets", "namespace": "payments", "name": "db-credentials", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2026-11-20T08:00:00.123456Z", "stageTimestamp": "2026-11-20T08:00:00.130000Z",
    "annotations": {"authorization.k8s.io/decision": "allow",
                    "authorization.k8s.io/reason": 'RBAC: allowed by RoleBinding "dev-read/payments"'},
}


def test_v1_event_mapping(parse_one):
    ev = parse_one(GET_SECRET)
    assert ev.event.dataset == "kubernetes.audit" and ev.event.outcome is Outcome.success
    assert ev.timestamp.isoformat() == "2026-11-20T08:00:00.123456+00:00"  # requestReceivedTimestamp
    assert ev.labels["k8s_stage_timestamp"] == "2026-11-20T08:00:00.130000Z"
    assert (ev.user.name, ev.user.id) == ("jan.devries@zorgwijk.nl", "oidc:4711")
    assert ev.source.ip == "145.100.10.2" and ev.labels["k8s_source_ips"] == "145.100.10.2,10.0.0.7"
    assert ev.user_agent.original.startswith("kubectl/v1.31.2")
    assert (ev.resource.type, ev.resource.name) == ("secrets", "payments/db-credentials")
    assert ev.labels["k8s_decision"] == "allow" and ev.labels["k8s_authz_reason"].startswith("RBAC: allowed")
    assert ev.labels["k8s_audit_id"] == GET_SECRET["auditID"]
    assert "k8s_impersonated_user" not in ev.labels


def test_subresource_and_iam_category(parse_one):
    ev = parse_one({**GET_SECRET, "verb": "create",
                    "requestURI": "/api/v1/namespaces/payments/pods/api-7d9f/exec?command=sh&stdin=true&tty=true",
                    "objectRef": {"resource": "pods", "namespace": "payments", "name": "api-7d9f",
                                  "subresource": "exec", "apiVersion": "v1"},
                    "responseStatus": {"metadata": {}, "code": 101}})
    assert (ev.resource.type, ev.resource.name) == ("pods/exec", "payments/api-7d9f")
    assert ev.event.type == ["creation"] and ev.event.outcome is Outcome.success  # 101 Switching Protocols
    assert ev.url.path.endswith("/exec") and ev.url.query == "command=sh&stdin=true&tty=true"
    rb = parse_one({**GET_SECRET, "verb": "delete",
                    "objectRef": {"resource": "clusterrolebindings", "name": "ops-admin",
                                  "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"}})
    assert rb.event.category == ["iam"] and rb.event.type == ["deletion"] and rb.resource.name == "ops-admin"
    assert rb.labels["k8s_api_group"] == "rbac.authorization.k8s.io"


def test_every_stage_is_an_event_labelled_with_its_stage(registry):
    """RequestReceived and ResponseComplete of one request: two events with the same auditID; the
    first has no response (outcome unknown). Detection counts only the final one (test_sigma_k8s)."""
    received = {k: v for k, v in GET_SECRET.items() if k not in ("responseStatus", "annotations")}
    received["stage"] = "RequestReceived"
    received["stageTimestamp"] = received["requestReceivedTimestamp"]
    got = [parse(registry, r, i=i).events for i, r in enumerate((received, GET_SECRET))]
    assert [len(g) for g in got] == [1, 1]
    first, last = got[0][0], got[1][0]
    assert (first.labels["k8s_stage"], last.labels["k8s_stage"]) == ("RequestReceived", "ResponseComplete")
    assert first.labels["k8s_audit_id"] == last.labels["k8s_audit_id"] and first.id != last.id
    assert first.event.outcome is Outcome.unknown and last.event.outcome is Outcome.success
    panic = parse(registry, {**GET_SECRET, "stage": "Panic", "responseStatus": {"code": 500}}).events[0]
    assert panic.labels["k8s_stage"] == "Panic" and panic.event.outcome is Outcome.failure


def test_event_list_gives_one_event_per_item(registry):
    item2 = {**GET_SECRET, "auditID": "b2", "verb": "list",
             "objectRef": {"resource": "secrets", "namespace": "payments", "apiVersion": "v1"}}
    items = [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")} for i in (GET_SECRET, item2)]
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    res = parse(registry, batch)
    assert [e.labels["k8s_audit_id"] for e in res.events] == [GET_SECRET["auditID"], "b2"]
    assert [e.raw_obj for e in res.events] == items  # each event's own record for the Sigma rules
    assert len({e.id for e in res.events}) == 2
    one = parse(registry, {**batch, "items": items[:1]})
    assert one.events[0].raw_obj == items[0]  # not the list, also for a list of one
    broken = parse(registry, {**batch, "items": [items[0], {**items[1], "verb": None}]})
    assert not broken.events and "items[1].verb is absent" in broken.dead_letters[0].reason
    not_obj = parse(registry, {**batch, "items": [items[0], "x"]})
    assert "items[1] is str, expected object" in not_obj.dead_letters[0].reason
    empty = parse(registry, {**batch, "items": []})
    assert "no events" in empty.dead_letters[0].reason


def test_request_body_labels(parse_one):
    pod = {**GET_SECRET, "verb": "create", "level": "Request",
           "requestURI": "/api/v1/namespaces/default/pods",
           "objectRef": {"resource": "pods", "namespace": "default", "name": "debug", "apiVersion": "v1"},
           "responseStatus": {"metadata": {}, "code": 201},
           "requestObject": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "debug"},
                             "spec": {"hostPID": True, "volumes": [{"name": "root", "hostPath": {"path": "/"}},
                                                                  {"name": "tmp", "emptyDir": {}}],
                                      "containers": [{"name": "sh", "image": "alpine",
                                                      "securityContext": {"privileged": True,
                                                                          "capabilities": {"add": ["SYS_ADMIN"]}}},
                                                     {"name": "b", "securityContext": {
                                                         "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}}}]}}}
    ev = parse_one(pod)
    assert ev.labels["k8s_host_path"] == "/" and ev.labels["k8s_capabilities"] == "SYS_ADMIN,NET_ADMIN"
    assert ev.labels["k8s_privileged"] == "true" and ev.labels["k8s_host_namespaces"] == "hostPID"
    deploy = parse_one({**pod, "objectRef": {"resource": "deployments", "namespace": "default", "name": "d",
                                              "apiGroup": "apps", "apiVersion": "v1"},
                        "requestObject": {"spec": {"template": {"spec": pod["requestObject"]["spec"]}}}})
    assert deploy.labels["k8s_host_path"] == "/"
    plain = parse_one({**pod, "requestObject": {"spec": {"containers": [{"name": "x", "image": "nginx"}]}}})
    assert not {"k8s_host_path", "k8s_capabilities", "k8s_privileged"} & set(plain.labels)
    patch = parse_one({**pod, "verb": "patch", "requestObject": [{"op": "add", "path": "/spec/x"}]})
    assert isinstance(patch, AccessEvent) and "k8s_host_path" not in patch.labels  # a JSON Patch: ignored


@pytest.mark.parametrize(("change", "reason"), [
    ({"verb": None}, "verb is absent"),
    ({"auditID": None}, "auditID is absent"),
    ({"stage": None}, "stage is absent"),
    ({"stage": "Done"}, "stage='Done' is not one of"),
    ({"requestURI": None}, "requestURI is absent"),
    ({"user": None}, "user is absent"),
    ({"user": {"groups": ["x"]}}, "user.username is absent"),
    ({"user": {"username": 7}}, "user.username is int, expected string"),
    ({"user": {"username": "a", "groups": "devs"}}, "user.groups is str, expected list"),
    ({"sourceIPs": "145.100.10.2"}, "sourceIPs is str, expected list"),
    ({"sourceIPs": [1]}, "sourceIPs[0] is int, expected string"),
    ({"responseStatus": {"code": "200"}}, "responseStatus.code is str, expected number"),
    ({"objectRef": "secrets"}, "objectRef is str, expected object"),
    ({"objectRef": {"resource": 1}}, "objectRef.resource is int, expected string"),
    ({"requestReceivedTimestamp": "yesterday"}, "requestReceivedTimestamp="),
    ({"stageTimestamp": "later"}, "stageTimestamp="),
    ({"requestReceivedTimestamp": None, "stageTimestamp": None}, "missing timestamp"),
    ({"annotations": {"authorization.k8s.io/decision": 1}}, "authorization.k8s.io/decision is int"),
])
def test_broken_events_are_dead_letters_naming_the_field(parse_one, change, reason):
    rec = {k: v for k, v in {**GET_SECRET, **change}.items() if v is not None}
    for log_type in ("kubernetes.audit", None):
        dl = parse_one(rec, log_type)
        assert isinstance(dl, DeadLetter) and reason in dl.reason, dl
        assert dl.log_type == "kubernetes.audit"


def test_recognised_by_content_only(parse_one):
    # a core Event object (kubectl get events -o json) is kind Event too, but no audit event
    core = {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "x"}, "reason": "Scheduled",
            "firstTimestamp": "2026-11-20T08:00:00Z"}
    dl = parse_one(core)
    assert isinstance(dl, DeadLetter) and "unrecognised JSON record" in dl.reason
    typed = parse_one(core, "kubernetes.audit")
    assert isinstance(typed, DeadLetter) and "apiVersion='v1' is not audit.k8s.io" in typed.reason
    other = parse_one({**GET_SECRET, "kind": "Policy"}, "kubernetes.audit")
    assert isinstance(other, DeadLetter) and "kind='Policy'" in other.reason
    # typed, a record without apiVersion/kind (as the items of an EventList) reads
    bare = parse_one({k: v for k, v in GET_SECRET.items() if k not in ("kind", "apiVersion")}, "k8s.audit")
    assert isinstance(bare, AccessEvent) and bare.event.dataset == "kubernetes.audit"
    v1beta1 = parse_one({**GET_SECRET, "apiVersion": "audit.k8s.io/v1beta1"})
    assert isinstance(v1beta1, AccessEvent) and v1beta1.event.dataset == "kubernetes.audit"
