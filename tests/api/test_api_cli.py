"""The command line of issue 7: tokens (create prints the token once), subject-report, query exports
streamed through search_after pages with a progress bar, and serve's wiring."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from api_helpers import alerts, events
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.store.query import Query
from access_audit.store.sqlite import SqliteStore

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    s = SqliteStore(d / "events.db")
    s.write_events(events())
    s.write_alerts(alerts())
    s.close()
    return d


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def test_tokens_create_list_revoke(data_dir):
    r = run("tokens", "create", "--role", "analyst", "--name", "Sam", "--ttl-days", "7", "--data-dir", str(data_dir))
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert token.startswith("aa_") and len(token.splitlines()) == 1
    assert token.encode() not in (data_dir / "auth.db").read_bytes()
    r = run("tokens", "list", "--format", "json", "--data-dir", str(data_dir))
    (row,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert (row["name"], row["role"], row["state"]) == ("Sam", "security_analyst", "active")
    assert token not in r.stdout
    assert run("tokens", "revoke", row["id"], "--data-dir", str(data_dir)).exit_code == 0
    r = run("tokens", "list", "--format", "json", "--data-dir", str(data_dir))
    assert json.loads(r.stdout)["state"] == "revoked"
    assert run("tokens", "revoke", "nope", "--data-dir", str(data_dir)).exit_code == 2
    r = runner.invoke(app, ["tokens", "create", "--role", "root", "--data-dir", str(data_dir)])
    assert r.exit_code != 0 and "unknown role" in str(r.exception or r.output)


def test_subject_report_formats(data_dir):
    r = run("subject-report", "c-1", "--format", "json", "--data-dir", str(data_dir))
    rep = json.loads(r.stdout)
    assert [(a["user"], a["events"], a["purposes"]) for a in rep["actors"]] == \
        [("alice", 2, ["claim handling"]), ("bob", 1, ["(none declared)"])]
    r = run("subject-report", "c-1", "--format", "csv", "--query", "user.name:bob", "--data-dir", str(data_dir))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["user"], x["source_ip"], x["service"], x["action"], x["purpose"]) for x in rows] == \
        [("bob", "203.0.113.9", "crm", "export", "")]
    r = run("subject-report", "c-2", "--data-dir", str(data_dir))
    assert r.exit_code == 0 and "fraud check" in r.stdout and "eve" in r.stdout
    r = run("subject-report", "c-2", "--query", "user.name:(", "--data-dir", str(data_dir))
    assert r.exit_code == 2


def test_query_exports_stream_pages_with_progress(data_dir, monkeypatch):
    from rich.console import Console

    import access_audit.cli as cli

    buf = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=buf, force_terminal=True, width=100, highlight=False))
    monkeypatch.setattr(cli, "EXPORT_PAGE", 4)  # 15 events -> 4 pages
    searches: list[Query] = []
    orig = SqliteStore.search

    def spy(self, q):
        searches.append(q)
        return orig(self, q)

    monkeypatch.setattr(SqliteStore, "search", spy)
    r = run("query", "--format", "json", "--limit", "1000", "--data-dir", str(data_dir))
    assert r.exit_code == 0, r.output
    got = [json.loads(x)["event"]["id"] for x in r.stdout.splitlines()]
    s = SqliteStore(data_dir / "events.db")
    assert got == [e.id for e in orig(s, Query(limit=1000))]
    s.close()
    assert [q.limit for q in searches] == [4, 4, 4, 4] and searches[0].after is None and searches[1].after
    assert "export" in buf.getvalue() and "/15" in buf.getvalue()  # the progress bar
    assert buf.getvalue().rstrip().endswith("15 event(s)")
    searches.clear()
    r = run("query", "user.name:dave", "--format", "csv", "--limit", "6", "--data-dir", str(data_dir))
    assert len(r.stdout.splitlines()) == 7 and [q.limit for q in searches] == [4, 2]


def test_serve_builds_the_app_on_the_configured_address(data_dir, monkeypatch):
    import os

    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: seen.update(config=self.config))
    monkeypatch.setenv("ACCESS_AUDIT_SLACK_TOKEN", "xoxb-test")
    monkeypatch.setenv("ACCESS_AUDIT_SLACK_SIGNING_SECRET", "s" * 32)
    monkeypatch.setenv("ACCESS_AUDIT_SLACK_USER_ROLES", '{"U1": "dpo"}')
    old = os.umask(0o022)
    try:
        r = run("serve", "--host", "0.0.0.0", "--port", "8123", "--data-dir", str(data_dir))
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    cfg = seen["config"]
    assert (cfg.host, cfg.port) == ("0.0.0.0", 8123)
    assert cfg.proxy_headers is False  # X-Forwarded-For is believed from api_trusted_proxies only
    paths = {getattr(x, "path", None) for x in cfg.app.routes}
    assert {"/health", "/api/events", "/console/cases", "/slack/interactions"} <= paths
    handler = cfg.app.state.interactions
    assert handler is not None and handler.authorise("U1", "acknowledge") and not handler.authorise("U2", "resolve")
    assert (data_dir / "pseudonym.key").stat().st_mode & 0o077 == 0  # generated, private
    for f in ("events.db", "auth.db", "pseudonyms.db", "outbox.db"):
        assert (data_dir / f).stat().st_mode & 0o077 == 0, f


def test_dpo_tokens_come_from_the_bootstrap_step_only(data_dir, monkeypatch):
    from access_audit.api.audit import os_user

    r = run("tokens", "create", "--role", "dpo", "--name", "Fenna de Vries", "--data-dir", str(data_dir))
    assert r.exit_code == 0, r.output  # the bootstrap: no DPO token yet
    r = runner.invoke(app, ["tokens", "create", "--role", "dpo", "--name", "Mallory", "--data-dir", str(data_dir)])
    assert r.exit_code == 2 and "a DPO mints the next one" in r.output
    assert runner.invoke(app, ["tokens", "create", "--role", "engineer", "--data-dir", str(data_dir)]).exit_code == 2
    monkeypatch.setenv("ACCESS_AUDIT_API_DPO_BOOTSTRAP", "true")
    assert run("tokens", "create", "--role", "dpo", "--name", "Deputy", "--data-dir", str(data_dir)).exit_code == 0
    rows = [json.loads(x) for x in run("tokens", "list", "--format", "json", "--data-dir", str(data_dir)).stdout
            .splitlines()]
    assert [(x["holder"], x["issued_by"]) for x in rows] == [("Fenna de Vries", f"cli:{os_user()}"),
                                                             ("Deputy", f"cli:{os_user()}")]
    assert run("tokens", "revoke", rows[1]["id"], "--data-dir", str(data_dir)).exit_code == 0
    s = SqliteStore(data_dir / "events.db")
    recs = s.self_audit()[::-1]
    assert [(x["action"], x.get("target_token")) for x in recs] == [
        ("token_create", rows[0]["id"]), ("token_create", rows[1]["id"]), ("token_revoke", rows[1]["id"])]
    assert all(x["os_user"] == os_user() and x["interface"] == "cli" for x in recs)
    s.close()
