"""Issue 14: the Kibana saved objects (deploy/kibana/access-audit.ndjson) and their loader.

Kibana cannot run here, so the objects are checked where they can be: that every line is a Kibana 8
saved object whose references resolve inside the file, and, against the real Elasticsearch of
scripts/services, that the data views' index patterns resolve to the indices ElasticsearchStore
creates when it writes events and alerts, that every field the searches, Lens layers and dashboard
filters use is in the real mapping (aggregatable where it is aggregated or sorted on), and that
the saved searches select what their titles say. The loader (`access-audit kibana load`) is tested
against a stub Kibana and a closed port.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from typer.testing import CliRunner

import access_audit
from access_audit.cli import app
from access_audit.core.alerts import Alert, AlertStatus, Severity
from access_audit.core.events import AccessEvent, Endpoint, EventInfo, Host, Outcome, Resource, User, event_id
from access_audit.kibana import DEFAULT_PREFIX, saved_objects, saved_objects_file

REPO = Path(__file__).resolve().parents[1]
NDJSON = REPO / "deploy" / "kibana" / "access-audit.ndjson"
KIBANA_VERSION = (8, 19, 21)  # docker-compose.yml's image (tests/test_compose.py keeps it in step)
TYPES = {"index-pattern", "search", "lens", "dashboard"}
JSON_STRINGS = {"index-pattern": ["fields", "fieldAttrs", "fieldFormatMap", "runtimeFieldMap", "sourceFilters"],
                "dashboard": ["panelsJSON", "optionsJSON"]}


def _version(v: str) -> tuple[int, ...]:
    assert re.fullmatch(r"\d+\.\d+\.\d+", v), v
    return tuple(int(x) for x in v.split("."))


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text(encoding="utf-8").splitlines()]


def _by_type(objects: list[dict[str, Any]], t: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == t]


def _search_source(o: dict[str, Any]) -> dict[str, Any]:
    return json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def _layers(lens: dict[str, Any]) -> dict[str, Any]:
    return lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]


def _ref(o: dict[str, Any], name: str) -> dict[str, Any]:
    refs = [r for r in o["references"] if r["name"] == name]
    assert len(refs) == 1, f"{o['type']}/{o['id']}: {len(refs)} references named {name!r}"
    return refs[0]


def _layer_data_view(lens: dict[str, Any], layer_id: str) -> str:
    ref = _ref(lens, f"indexpattern-datasource-layer-{layer_id}")
    assert ref["type"] == "index-pattern"
    return ref["id"]


# --- the file ------------------------------------------------------------------------------------

def test_the_loader_reads_the_file_of_the_repository():
    assert saved_objects_file() == NDJSON


def test_every_line_is_a_kibana_8_saved_object(objects: list[dict[str, Any]]):
    assert NDJSON.read_bytes().endswith(b"\n")
    seen = set()
    for o in objects:
        where = f"{o.get('type')}/{o.get('id')}"
        keys = {"type", "id", "attributes", "references", "coreMigrationVersion", "typeMigrationVersion"}
        assert keys <= set(o), where
        assert o["type"] in TYPES, where
        assert re.fullmatch(r"[a-z0-9-]+", o["id"]), where
        assert (o["type"], o["id"]) not in seen, f"duplicate {where}"
        seen.add((o["type"], o["id"]))
        # Kibana refuses objects of a newer version than itself; older ones it migrates on import
        assert _version(o["coreMigrationVersion"]) <= KIBANA_VERSION, where
        assert _version(o["typeMigrationVersion"]) <= KIBANA_VERSION, where
        assert isinstance(o["attributes"].get("title"), str) and o["attributes"]["title"], where
        for r in o["references"]:
            assert set(r) == {"id", "name", "type"}, where
        for key in JSON_STRINGS.get(o["type"], []):
            json.loads(o["attributes"][key])
        if o["type"] in ("search", "dashboard"):
            src = _search_source(o)
            assert src["query"]["language"] == "kuery", where
            assert isinstance(src["filter"], list), where
    assert {o["type"] for o in objects} == TYPES


def test_every_reference_resolves_to_an_object_of_the_file(objects: list[dict[str, Any]]):
    have = {(o["type"], o["id"]) for o in objects}
    for o in objects:
        for r in o["references"]:
            assert (r["type"], r["id"]) in have, f"{o['type']}/{o['id']}: dangling reference {r}"
    for s in _by_type(objects, "search"):
        assert _ref(s, _search_source(s)["indexRefName"])["type"] == "index-pattern"
    for lens in _by_type(objects, "lens"):
        layers = _layers(lens)
        assert {r["name"] for r in lens["references"]} == {f"indexpattern-datasource-layer-{x}" for x in layers}
    for d in _by_type(objects, "dashboard"):
        panels = json.loads(d["attributes"]["panelsJSON"])
        names = set()
        for p in panels:
            assert p["gridData"]["i"] == p["panelIndex"]
            name = f"{p['panelIndex']}:{p['panelRefName']}"
            assert _ref(d, name)["type"] == p["type"], name
            names.add(name)
        for f in _search_source(d)["filter"]:
            names.add(f["meta"]["indexRefName"])
            assert _ref(d, f["meta"]["indexRefName"])["type"] == "index-pattern"
        assert names == {r["name"] for r in d["references"]}, "references no panel or filter uses"


def test_lens_visualizations_use_the_columns_of_their_layers(objects: list[dict[str, Any]]):
    for lens in _by_type(objects, "lens"):
        layers = _layers(lens)
        for layer in layers.values():
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"]), lens["id"]
            for col in layer["columns"].values():
                ref = col["params"].get("orderBy", {}).get("columnId")
                assert ref is None or ref in layer["columns"], lens["id"]
        vis = lens["attributes"]["state"]["visualization"]
        for vl in vis["layers"]:
            cols = layers[vl["layerId"]]["columns"]
            used = [vl.get("xAccessor"), vl.get("splitAccessor"), *vl.get("accessors", []),
                    *vl.get("primaryGroups", []), *vl.get("metrics", [])]
            assert all(c in cols for c in used if c is not None), lens["id"]
            assert len([c for c in used if c is not None]) == len(cols), f"{lens['id']}: a column is not shown"


def test_the_dashboard_has_the_panels_of_the_issue(objects: list[dict[str, Any]]):
    (dash,) = _by_type(objects, "dashboard")
    assert dash["attributes"]["title"] == "Access audit"
    lenses = {o["id"]: o for o in _by_type(objects, "lens")}
    views = {o["id"]: o for o in _by_type(objects, "index-pattern")}
    shown = []  # (data view title, operation, field) of every bucket column of the dashboard's Lens panels
    for p in json.loads(dash["attributes"]["panelsJSON"]):
        if p["type"] != "lens":
            continue
        lens = lenses[_ref(dash, f"{p['panelIndex']}:{p['panelRefName']}")["id"]]
        for layer_id, layer in _layers(lens).items():
            title = views[_layer_data_view(lens, layer_id)]["attributes"]["title"]
            shown += [(title, c["operationType"], c["sourceField"]) for c in layer["columns"].values()
                      if c["isBucketed"]]
    assert ("access-audit-events-*", "date_histogram", "@timestamp") in shown  # over time
    assert ("access-audit-events-*", "terms", "user.name") in shown  # top users
    assert ("access-audit-events-*", "terms", "resource.name") in shown  # top resources
    assert ("access-audit-alerts", "terms", "severity") in shown  # alerts by severity
    searches = {_ref(dash, f"{p['panelIndex']}:{p['panelRefName']}")["id"]
                for p in json.loads(dash["attributes"]["panelsJSON"]) if p["type"] == "search"}
    assert searches == {o["id"] for o in _by_type(objects, "search")}


def test_the_prefix_is_substituted_in_the_data_views_only(objects: list[dict[str, Any]]):
    assert {o["attributes"]["title"] for o in _by_type(objects, "index-pattern")} == {
        f"{DEFAULT_PREFIX}-events-*", f"{DEFAULT_PREFIX}-alerts"}
    assert saved_objects() == objects
    other = saved_objects("acme-prod")
    assert {o["attributes"]["title"] for o in _by_type(other, "index-pattern")} == {"acme-prod-events-*",
                                                                                   "acme-prod-alerts"}
    for a, b in zip(objects, other, strict=True):
        if a["type"] != "index-pattern":
            assert a == b


# --- against the real Elasticsearch ---------------------------------------------------------------

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _event(n: int, ts: datetime, *, user: str, category: str, outcome: Outcome, action: str,
           resource: Resource | None = None) -> AccessEvent:
    return AccessEvent(timestamp=ts, event=EventInfo(id=event_id("kibana-test", "test", str(n).encode()),
                                                     category=[category], outcome=outcome, action=action,
                                                     dataset="test"),
                       user=User(name=user), source=Endpoint(ip=f"203.0.113.{n}"), host=Host(name="app-01"),
                       resource=resource).fill_related()


EVENTS = [  # two UTC days: two daily indices
    _event(1, T0, user="bob", category="authentication", outcome=Outcome.failure, action="login"),
    _event(2, T0 + timedelta(minutes=1), user="bob", category="authentication", outcome=Outcome.failure,
           action="login"),
    _event(3, T0 + timedelta(minutes=2), user="bob", category="authentication", outcome=Outcome.success,
           action="login"),
    _event(4, T0 + timedelta(days=1), user="alice", category="file", outcome=Outcome.success, action="read",
           resource=Resource(type="file", name="hr/salaries.xlsx", classification="personal",
                             data_categories=["financial"], records=120)),
    _event(5, T0 + timedelta(days=1, hours=1), user="carol", category="file", outcome=Outcome.success,
           action="read", resource=Resource(type="file", name="wiki/home", classification="internal")),
    _event(6, T0 + timedelta(days=1, hours=2), user="dave", category="database", outcome=Outcome.success,
           action="select", resource=Resource(type="table", name="crm.contacts", data_categories=["contact"])),
]
EXPECTED = {"access-audit-failed-logins": {EVENTS[0].id, EVENTS[1].id},
            "access-audit-personal-data": {EVENTS[3].id, EVENTS[5].id}}


def _alert(i: int, rule: str, severity: Severity, status: AlertStatus) -> Alert:
    return Alert(id=f"{i:032x}", rule_id=rule, title=f"{rule} for bob", severity=severity, risk_score=70,
                 dedup_key=f"bob-{i}", first_seen=T0, last_seen=T0 + timedelta(minutes=i), created_at=T0,
                 user="bob", resource="hr/salaries.xlsx", status=status)


ALERTS = [_alert(1, "brute_force", Severity.high, AlertStatus.open),
          _alert(2, "personal_data_bulk_read", Severity.critical, AlertStatus.acknowledged),
          _alert(3, "brute_force", Severity.medium, AlertStatus.resolved)]
EXPECTED["access-audit-alerts-by-rule"] = {ALERTS[0].id, ALERTS[1].id}


@pytest.fixture(scope="module")
def es_store(es_url: str) -> Iterator[Any]:
    """A store under its own prefix holding EVENTS and ALERTS, its indices deleted after."""
    from access_audit.store.elasticsearch import ElasticsearchStore

    s = ElasticsearchStore(es_url, prefix=f"aa-kib-{uuid4().hex[:8]}")
    try:
        s.setup()
        assert s.write_events(EVENTS) == len(EVENTS)
        s.write_alerts(ALERTS)
        s.refresh()
        yield s
    finally:
        s.es.options(ignore_status=404).indices.delete(index=f"{s.prefix}-*", expand_wildcards="all")
        s.es.options(ignore_status=404).indices.delete_index_template(name=f"{s.prefix}-*")  # events, self-audit
        s.close()


def _views(store: Any) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in saved_objects(store.prefix) if o["type"] == "index-pattern"}


def _resolve(store: Any, pattern: str) -> set[str]:
    r = store.es.indices.resolve_index(name=pattern, expand_wildcards="open")
    assert not r["aliases"] and not r["data_streams"]
    return {i["name"] for i in r["indices"]}


@pytest.mark.integration
def test_data_views_resolve_to_the_indices_the_store_writes(es_store: Any):
    views = _views(es_store)
    events = _resolve(es_store, views["access-audit-events"]["attributes"]["title"])
    assert events == set(es_store.event_indices()) == {es_store.event_index(e.timestamp) for e in EVENTS}
    assert len(events) == 2
    assert _resolve(es_store, views["access-audit-alerts"]["attributes"]["title"]) == {es_store.alerts_index}
    # the store's other indices (dead letters, state) are in no data view
    every = _resolve(es_store, f"{es_store.prefix}-*")
    assert {es_store.dead_letters_index, es_store.state_index} <= every
    assert every - events - {es_store.alerts_index} == {es_store.dead_letters_index, es_store.state_index}


def test_the_default_titles_match_the_names_of_the_default_store(objects: list[dict[str, Any]]):
    """The file as committed (what a curl import or Kibana's UI would load) fits the default prefix."""
    from access_audit.store.elasticsearch import ElasticsearchStore

    s = ElasticsearchStore("http://127.0.0.1:1", prefix=DEFAULT_PREFIX)  # names only: never connects
    try:
        names = {"events": s.event_index(T0), "alerts": s.alerts_index}
        others = [s.dead_letters_index, s.state_index, s.holds_index, s.self_audit_index(T0.date())]
    finally:
        s.close()
    titles = {o["id"]: o["attributes"]["title"] for o in _by_type(objects, "index-pattern")}
    assert fnmatch.fnmatchcase(names["events"], titles["access-audit-events"])
    assert fnmatch.fnmatchcase(names["alerts"], titles["access-audit-alerts"])
    for name in [*others, names["alerts"]]:
        assert not fnmatch.fnmatchcase(name, titles["access-audit-events"]), name


def _kql_fields(query: str) -> set[str]:
    return set(re.findall(r"([A-Za-z_@][\w.@]*)\s*:", query))


def _fields_used(objects: list[dict[str, Any]]) -> dict[str, dict[str, bool]]:
    """{data view id: {field: aggregated or sorted on}} over searches, Lens layers and dashboard filters."""
    used: dict[str, dict[str, bool]] = {}

    def add(view: str, field: str, agg: bool) -> None:
        used.setdefault(view, {})
        used[view][field] = used[view].get(field, False) or agg

    views = {o["id"]: o for o in _by_type(objects, "index-pattern")}
    for view_id, v in views.items():
        add(view_id, v["attributes"]["timeFieldName"], True)
    for s in _by_type(objects, "search"):
        src = _search_source(s)
        view = _ref(s, src["indexRefName"])["id"]
        for f in _kql_fields(src["query"]["query"]):
            add(view, f, False)
        for c in s["attributes"]["columns"]:
            add(view, c, False)
        for f, _direction in s["attributes"]["sort"]:
            add(view, f, True)
    for lens in _by_type(objects, "lens"):
        state = lens["attributes"]["state"]
        for layer_id, layer in _layers(lens).items():
            view = _layer_data_view(lens, layer_id)
            for f in _kql_fields(state["query"]["query"]):
                add(view, f, False)
            for col in layer["columns"].values():
                if col["sourceField"] != "___records___":
                    add(view, col["sourceField"], True)
    for d in _by_type(objects, "dashboard"):
        src = _search_source(d)
        for f in _search_source(d)["filter"]:
            add(_ref(d, f["meta"]["indexRefName"])["id"], f["meta"]["key"], False)
        for view_id in views:  # the dashboard's query applies to every panel
            for f in _kql_fields(src["query"]["query"]):
                add(view_id, f, False)
    return used


@pytest.mark.integration
def test_every_field_used_is_in_the_real_mapping(es_store: Any):
    objects = saved_objects(es_store.prefix)
    views = _views(es_store)
    used = _fields_used(objects)
    assert set(used) == set(views)
    for view_id, fields in used.items():
        title = views[view_id]["attributes"]["title"]
        caps = es_store.es.field_caps(index=title, fields=sorted(fields))["fields"]
        for f, aggregated in fields.items():
            assert f in caps, f"{view_id}: {f} is not a field of {title}"
            assert len(caps[f]) == 1, f"{view_id}: {f} has types {sorted(caps[f])} across {title}"
            (typ, cap), = caps[f].items()
            assert cap["searchable"], f"{view_id}: {f} is not searchable"
            if aggregated:
                assert cap["aggregatable"], f"{view_id}: {f} ({typ}) is aggregated or sorted on but not aggregatable"
        time_field = views[view_id]["attributes"]["timeFieldName"]
        assert next(iter(caps[time_field])) in ("date", "date_nanos"), time_field


@pytest.mark.integration
def test_lens_data_types_match_the_mapping(es_store: Any):
    kinds = {"string": {"keyword"}, "date": {"date", "date_nanos"}, "ip": {"ip"},
             "number": {"long", "integer", "double", "float", "short", "byte", "scaled_float"}}
    views = _views(es_store)
    for lens in _by_type(saved_objects(es_store.prefix), "lens"):
        for layer_id, layer in _layers(lens).items():
            title = views[_layer_data_view(lens, layer_id)]["attributes"]["title"]
            for col in layer["columns"].values():
                if col["sourceField"] == "___records___":
                    continue
                caps = es_store.es.field_caps(index=title, fields=col["sourceField"])["fields"][col["sourceField"]]
                assert set(caps) <= kinds[col["dataType"]], f"{lens['id']}: {col['sourceField']} is {sorted(caps)}"


def _kql_as_lucene(query: str) -> str:
    """The KQL of our saved searches as a Lucene query_string: same syntax but the upper-case
    operators (only what the file uses: field:"value", field:(a or b), field:*, and/or/not)."""
    out = re.sub(r"\b(and|or|not)\b", lambda m: m.group(1).upper(), query)
    assert re.fullmatch(r'[\w.@:"()* ]+', out), f"the test cannot translate {query!r}"
    return out


@pytest.mark.integration
def test_saved_searches_select_what_their_titles_say(es_store: Any):
    views = _views(es_store)
    searches = _by_type(saved_objects(es_store.prefix), "search")
    assert {s["id"] for s in searches} == set(EXPECTED)
    for s in searches:
        src = _search_source(s)
        title = views[_ref(s, src["indexRefName"])["id"]]["attributes"]["title"]
        r = es_store.es.search(index=title, size=100, source=False, sort=[
            {f: {"order": d}} for f, d in s["attributes"]["sort"]],
            query={"query_string": {"query": _kql_as_lucene(src["query"]["query"])}})
        assert {h["_id"] for h in r["hits"]["hits"]} == EXPECTED[s["id"]], s["id"]


# --- the loader ------------------------------------------------------------------------------------

class _StubKibana(BaseHTTPRequestHandler):
    answer: ClassVar[dict[str, Any]] = {}
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        self.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                              "filename": parts["file"].get_filename(),
                              "objects": [json.loads(line) for line in
                                          parts["file"].get_payload(decode=True).splitlines() if line.strip()]})
        data = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def kibana() -> Iterator[type[_StubKibana]]:
    handler = type("Handler", (_StubKibana,), {"answer": {}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


def test_load_imports_the_objects_with_the_configured_prefix(kibana: Any, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path):
    monkeypatch.setenv("ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX", "acme")
    monkeypatch.setenv("ACCESS_AUDIT_ELASTICSEARCH_USERNAME", "kib")
    monkeypatch.setenv("ACCESS_AUDIT_ELASTICSEARCH_PASSWORD", "s3cret")
    kibana.answer = {"success": True, "successCount": 10, "successResults": []}
    r = CliRunner().invoke(app, ["kibana", "load", "--url", kibana.url + "/", "--space", "audit",
                                 "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "imported 10 saved objects" in r.output and "acme-events-*" in r.output
    (req,) = kibana.requests
    assert req["path"] == "/s/audit/api/saved_objects/_import?overwrite=true"
    assert req["headers"]["kbn-xsrf"]
    assert req["headers"]["authorization"] == "Basic a2liOnMzY3JldA=="  # kib:s3cret
    assert req["filename"].endswith(".ndjson")
    assert req["objects"] == saved_objects("acme")


def test_load_reports_the_objects_kibana_refused(kibana: Any, tmp_path: Path):
    kibana.answer = {"success": False, "successCount": 9, "errors": [
        {"id": "access-audit-dashboard", "type": "dashboard", "error": {"type": "unknown", "message": "boom"}}]}
    r = CliRunner().invoke(app, ["kibana", "load", "--url", kibana.url, "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert "1 saved object(s) not imported" in r.output and "dashboard/access-audit-dashboard" in r.output
    assert "boom" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)  # no traceback


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_load_against_a_closed_port_is_one_clear_error(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(Path(access_audit.__file__).parents[1]),
           "ACCESS_AUDIT_DATA_DIR": str(tmp_path)}
    env.pop("ACCESS_AUDIT_DEBUG", None)
    url = f"http://127.0.0.1:{_closed_port()}"
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", "kibana", "load", "--url", url],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert f"kibana {url} is not reachable" in r.stderr
    assert "Connection refused" in r.stderr


def test_export_prints_the_objects_for_the_prefix(tmp_path: Path):
    r = CliRunner().invoke(app, ["kibana", "export", "--prefix", "acme", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert [json.loads(line) for line in r.stdout.splitlines()] == saved_objects("acme")
