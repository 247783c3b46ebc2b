"""The data of the API tests (import as ``from api_helpers import ...``)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from access_audit.api.auth import Role, TokenStore
from access_audit.breach.repo import BreachRepo
from access_audit.core.alerts import Alert, Severity
from access_audit.core.events import (
    AccessEvent,
    Endpoint,
    EventInfo,
    Outcome,
    Resource,
    Service,
    Url,
    User,
    event_id,
)
from access_audit.settings import Settings
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY1 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
XSS_USER = '<img src=x onerror="alert(1)">'
XSS_TITLE = "<script>alert('alert')</script> brute force"
XSS_CASE = "<script>alert('case')</script> Mass export by bob"


def ev(i: int, at: datetime, user: str | None, ip: str | None, *, action: str = "read", resource: str = "customers",
       subjects: list[str] | None = None, outcome: Outcome = Outcome.success, labels: dict[str, str] | None = None,
       service: str | None = "crm", message: str | None = None, path: str | None = None) -> AccessEvent:
    return AccessEvent(
        timestamp=at,
        event=EventInfo(id=event_id(f"api-test:{i}", "ecs", b"x"), dataset="ecs", action=action, outcome=outcome),
        user=User(name=user) if user else None, source=Endpoint(ip=ip) if ip else None,
        service=Service(name=service) if service else None, url=Url(path=path) if path else None,
        resource=Resource(name=resource, subject_ids=subjects or []), labels=labels or {},
        message=message or f"{user} {action} {resource} from {ip}",
    ).fill_related()


def events() -> list[AccessEvent]:
    h = timedelta(hours=1)
    out = [
        ev(1, DAY1, "alice", "10.1.2.3", subjects=["c-1", "c-2"], labels={"purpose": "claim handling"},
           path="/api/customers/c-1"),
        ev(2, DAY1 + 0.5 * h, "alice", "10.1.2.3", subjects=["c-1"], labels={"purpose": "claim handling"}),
        ev(3, DAY1 + h, "bob", "203.0.113.9", action="export", subjects=["c-1", "c-3"]),
        ev(4, DAY1 + 1.2 * h, "bob", "203.0.113.9", resource="payroll", outcome=Outcome.failure),
        ev(5, DAY1 + 26 * h, "eve", "198.51.100.7", subjects=["c-2"], labels={"justification": "fraud check"},
           service="fraud-desk"),
        ev(6, DAY1 + 27 * h, "carol", "10.9.8.7", action="ssh_login", resource="bastion", outcome=Outcome.failure,
           service=None, message="Failed password for carol from 10.9.8.7 port 22"),
        ev(7, DAY1 + 28 * h, XSS_USER, "192.0.2.66", resource="wiki", service="wiki"),
    ]
    tie = DAY1 + 30 * h  # several events at the same instant: pages must still not skip or repeat
    for j in range(8):
        out.append(ev(100 + j, tie if j < 4 else tie + j * timedelta(minutes=3), "dave", "10.1.2.4",
                      resource="wiki", service="wiki"))
    return out


def alerts() -> list[Alert]:
    return [
        Alert(id="a-export", rule_id="mass_read_personal_data", title="Mass export of customer records by bob",
              severity=Severity.high, risk_score=75, dedup_key="bob", first_seen=DAY1 + timedelta(hours=1),
              last_seen=DAY1 + timedelta(hours=1.2), created_at=NOW - timedelta(days=2), count=2,
              event_ids=[events()[2].id, events()[3].id], user="bob", source_ip="203.0.113.9",
              resource="customers", data_categories=["contact"], personal_data=True,
              group={"user.name": "bob"}),
        Alert(id="a-xss", rule_id="login_brute_force", title=XSS_TITLE, severity=Severity.medium, risk_score=50,
              dedup_key="x", first_seen=DAY1 + timedelta(hours=28), last_seen=DAY1 + timedelta(hours=28),
              created_at=NOW - timedelta(days=1), user=XSS_USER, source_ip="192.0.2.66"),
    ]


FULL: dict[str, Any] = {
    "breach_types": ["confidentiality"], "cause": "A support employee exported customer records",
    "data_effects": ["read", "copied"], "systems": ["CRM"], "data_categories": ["contact"],
    "subject_categories": ["customers"], "subjects_min": 2, "subjects_max": 3, "records_min": 3, "records_max": 3,
    "protection": "none", "likely_consequences": "Phishing using the exported addresses",
    "measures_taken": "Account blocked", "measures_proposed": "Rate limits on exports",
    "advice_to_subjects": "Be wary of e-mails asking for your details", "cross_border": False, "malicious": True,
    "organisation": "Zorgwijk B.V.", "contact.name": "Fenna de Vries", "contact.email": "fg@zorgwijk.example",
    "occurred_from": "2026-11-20T09:00:00+00:00", "occurred_to": "2026-11-20T09:15:00+00:00",
    "detected_at": "2026-11-20T10:00:00+00:00",
}


def open_cases(env: Any) -> dict[str, str]:
    """Three cases: one from the export alert (aware 30 h ago: 42 h left), one urgent (2 h left),
    one dismissed as not a breach. Returns their ids by name."""
    from access_audit.breach.prefill import open_case_from_alerts

    wf = env.app.state.workflow
    a = {x.id: x for x in alerts()}
    c1 = open_case_from_alerts([a["a-export"]], env.store, wf.repo, wf.clock, "analyst-person", config=wf.config)
    wf.edit(c1.id, "analyst-person", {"title": XSS_CASE, **FULL}, reason="facts")
    wf.set_awareness(c1.id, "dpo-person", NOW - timedelta(hours=30), "logs confirm the export")
    c2 = wf.open_case("analyst-person", title="Lost laptop")
    wf.set_awareness(c2.id, "dpo-person", NOW - timedelta(hours=70), "police report")
    c3 = wf.open_case("analyst-person", title="False alarm")
    wf.dismiss(c3.id, "dpo-person", "test traffic")
    ids = {"export": c1.id, "urgent": c2.id, "dismissed": c3.id}
    env.case_ids = ids
    return ids


# --- environments (the app over a store, tokens for every role) -------------------------------------

ES_URL = os.environ.get("ACCESS_AUDIT_ELASTICSEARCH_URL", "http://127.0.0.1:19200")


def es_or_skip() -> None:
    from elasticsearch import Elasticsearch

    probe = Elasticsearch(ES_URL, request_timeout=3, max_retries=0)
    try:
        probe.cluster.health(timeout="2s")
    except Exception as e:
        msg = f"no Elasticsearch at {ES_URL} ({type(e).__name__}): run scripts/services start elasticsearch"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    finally:
        probe.close()


@dataclass
class Env:
    """An app over a store, with a client and a token per role (plus expired and revoked ones)."""

    app: Any
    client: Any
    store: Any
    repo: BreachRepo
    clock: FrozenClock
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str | Role | None) -> dict[str, str]:
        if who is None:
            return {}
        key = who.value if isinstance(who, Role) else who
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def refresh(self) -> None:
        if hasattr(self.store, "refresh"):
            self.store.refresh()

    def get(self, path: str, who: str | Role | None = Role.dpo, **params: Any) -> Any:
        r = self.client.get(path, params=params, headers=self.headers(who))
        self.refresh()  # the access event of this request: visible to the next search on both stores
        return r


def make_store(kind: str, tmp_path: Path) -> Any:
    if kind == "sqlite":
        return SqliteStore(tmp_path / "events.db")
    es_or_skip()
    from access_audit.store.elasticsearch import ElasticsearchStore

    s = ElasticsearchStore(ES_URL, prefix=f"aa-api-{uuid4().hex[:8]}")
    s.setup()
    return s


def drop_store(store: Any) -> None:
    if hasattr(store, "refresh"):
        store.es.options(ignore_status=404).indices.delete(index=f"{store.prefix}-*", expand_wildcards="all")
        store.es.options(ignore_status=404).indices.delete_index_template(name=f"{store.prefix}-events")
        store.es.options(ignore_status=404).indices.delete_index_template(name=f"{store.prefix}-self-audit")
    store.close()


def build_env(kind: str, tmp_path: Path, *, with_cases: bool = True) -> Env:
    from fastapi.testclient import TestClient

    from access_audit.api.app import create_app

    settings = Settings(data_dir=tmp_path / "data", api_pseudonym_key="test-pseudonym-key-0123456789")
    clock = FrozenClock(NOW)
    store = make_store(kind, tmp_path)
    store.write_events(events())
    store.write_alerts(alerts())
    if hasattr(store, "refresh"):
        store.refresh()
    repo = BreachRepo(tmp_path / "breach.db")
    tokens = TokenStore(settings.data_dir / "auth.db", clock)
    app = create_app(settings, store=store, repo=repo, clock=clock, tokens=tokens)
    env = Env(app, TestClient(app), store, repo, clock, settings)
    for role in Role:
        env.tokens[role.value], _ = tokens.create(role, f"{role.value}-person")
    clock.set(NOW - timedelta(days=100))
    env.tokens["expired"], _ = tokens.create(Role.admin, "expired-admin", ttl_days=90)
    clock.set(NOW)
    env.tokens["revoked"], info = tokens.create(Role.admin, "revoked-admin")
    tokens.revoke(info.id)
    env.tokens["garbage"] = "aa_000000000000_" + "x" * 43
    if with_cases:
        open_cases(env)
    return env




def keep_screenshots(*shots: Path) -> None:
    """Browser tests' screenshots: printed (they are in pytest's tmp dir), and copied to
    $ACCESS_AUDIT_SCREENSHOT_DIR when set."""
    print("\nscreenshots: " + " ".join(map(str, shots)))
    if os.environ.get("ACCESS_AUDIT_SCREENSHOT_DIR"):
        out = Path(os.environ["ACCESS_AUDIT_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, out / shot.name)
