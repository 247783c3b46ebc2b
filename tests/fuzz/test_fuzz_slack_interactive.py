"""Slack's interactive endpoint, fuzzed: signed requests with generated bodies and payloads
(so they get past the signature check), and unsigned garbage.

Property: ``InteractionHandler.handle`` always answers with a status from its contract (200,
400, 401, 404, 503) and a JSON body; it never raises, and an alert changes only through an
action Slack could send.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from gen import NASTY
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "notify"))

from fake_slack import FakeSlack

from access_audit.notify.interactive import InteractionHandler, SignatureVerifier, sign
from access_audit.notify.outbox import Outbox
from access_audit.notify.slack import SlackConfig, SlackNotifier, make_client
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
SECRET = "fuzz-signing-secret"
ACTIONS = ["access_audit.acknowledge", "access_audit.escalate", "access_audit.false_positive",
           "access_audit.resolve", "access_audit.nope", "other", ""]
VALUES = st.one_of(st.sampled_from([v for v in NASTY if not isinstance(v, str) or len(v) < 100]),
                   st.text(max_size=30))


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InteractionHandler, FrozenClock]]:
    tmp = tmp_path_factory.mktemp("slack")
    fake = FakeSlack().start()
    clock = FrozenClock()
    n = SlackNotifier(make_client(fake.token, fake.base_url, timeout_s=0.4), Outbox(tmp / "outbox.db"),
                      SlackConfig(deliver_on_flush=False), clock=clock, sleep=lambda s: None, own_outbox=True)
    store = SqliteStore(tmp / "events.db")
    h = InteractionHandler(n, SignatureVerifier(SECRET, clock=clock), store=store)
    yield h, clock
    n.close()
    store.close()
    fake.stop()


def post(h: InteractionHandler, clock: FrozenClock, body: bytes, *, signed: bool = True) -> int:
    clock.advance(seconds=1)  # a fresh timestamp, so a repeated body is not a replay
    ts = str(int(clock.now().timestamp()))
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(SECRET, ts, body)} if signed else {}
    status, hdrs, out = h.handle(headers, body)
    assert status in (200, 400, 401, 404, 503), status
    assert isinstance(json.loads(out), dict) and hdrs["Content-Type"] == "application/json"
    if not signed:
        assert status == 401
    return status


payloads = st.fixed_dictionaries({}, optional={
    "type": st.one_of(st.just("block_actions"), VALUES),
    "user": st.one_of(st.fixed_dictionaries({}, optional={"id": VALUES, "username": VALUES, "name": VALUES}),
                      VALUES),
    "actions": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({}, optional={
        "action_id": st.one_of(st.sampled_from(ACTIONS), VALUES), "value": VALUES}), VALUES), max_size=3), VALUES),
})


@given(payload=st.one_of(payloads, VALUES))
def test_signed_generated_payloads(handler: Any, payload: Any) -> None:
    h, clock = handler
    body = ("payload=" + quote(json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"))).encode()
    post(h, clock, body)


@given(body=st.binary(max_size=300))
def test_signed_random_bodies(handler: Any, body: bytes) -> None:
    h, clock = handler
    post(h, clock, body)


@given(body=st.binary(max_size=300), headers=st.dictionaries(st.sampled_from(
    ["X-Slack-Request-Timestamp", "X-Slack-Signature", "x-slack-signature", "Content-Type"]), st.text(max_size=40)))
def test_unsigned_or_badly_signed_requests_are_401(handler: Any, body: bytes, headers: dict[str, str]) -> None:
    h, _ = handler
    status, _, _ = h.handle(headers, body)
    assert status == 401


@pytest.mark.parametrize("payload", ['"x"', "[1]", '{"type": "block_actions", "user": "u"}',
                                     '{"type": "block_actions", "actions": [1]}',
                                     '{"type": "block_actions", "actions": {"a": 1}}'])
def test_regressions_payloads_of_the_wrong_shape_are_400(handler: Any, payload: str) -> None:
    """Found by the fuzzer: each raised TypeError or AttributeError out of the endpoint (a 500)."""
    h, clock = handler
    assert post(h, clock, ("payload=" + quote(payload)).encode()) == 400
