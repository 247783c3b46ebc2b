"""The API test environment (the app over a store with data), used by conftest and the attack suite."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from api_helpers import NOW, alerts, events

from access_audit.api.auth import Role, TokenStore
from access_audit.breach.repo import BreachRepo
from access_audit.settings import Settings
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock

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
        from api_helpers import open_cases

        open_cases(env)
    return env

