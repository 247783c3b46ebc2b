from __future__ import annotations

import pytest

from access_audit import app as app_module
from access_audit.core.errors import StoreUnavailableError


def test_wait_for_retries_while_the_store_is_unavailable(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(app_module.time, "sleep", sleeps.append)
    calls = iter([StoreUnavailableError("down"), StoreUnavailableError("still down"), "opened"])

    def step():
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    assert app_module.wait_for("opening the store", step) == "opened"
    assert sleeps == [1.0, 2.0]


def test_wait_for_gives_up_only_when_told(monkeypatch):
    monkeypatch.setattr(app_module.time, "sleep", lambda s: None)

    def down():
        raise StoreUnavailableError("down")

    with pytest.raises(StoreUnavailableError):
        app_module.wait_for("x", down, max_wait_s=5)
