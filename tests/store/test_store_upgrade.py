"""A store written by an earlier version keeps working (issue 10): the SQLite layout is versioned
(``meta.sqlite_layout``), and a layout-1 store, written by the code of commit a1b0dad
(fixtures/make_store_v1.py), is upgraded when it is opened and then answers as before."""

from __future__ import annotations

import gzip
import ipaddress
import sqlite3
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from access_audit.app import build_embedded
from access_audit.core.errors import StoreError
from access_audit.settings import Settings
from access_audit.store.query import Expr, Not, Query, Term, parse_query
from access_audit.store.sqlite import LAYOUT, LAYOUT_KEY, SqliteStore, cidr_key_range, ip_key
from access_audit.testing import FrozenClock, ListSink

FIXTURE = Path(__file__).parent / "fixtures" / "store-v1.db.gz"


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    path.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    return path


def _rows(path: Path, sql: str, *args: object) -> list[tuple]:
    c = sqlite3.connect(path)
    try:
        return list(c.execute(sql, args))
    finally:
        c.close()


def _ids(store: SqliteStore, expr: Expr) -> set[str]:
    return {e.id for e in store.search(Query(expr=expr, limit=10_000))}


def test_the_fixture_is_a_layout_1_store(v1_store: Path) -> None:
    cols = {r[1] for r in _rows(v1_store, "PRAGMA table_info(events)")}
    assert "ip_key" not in cols and "source_ip" in cols
    assert _rows(v1_store, "SELECT value FROM kv WHERE key = ?", LAYOUT_KEY) == []


def test_a_layout_1_store_is_upgraded_and_answers_as_before(v1_store: Path) -> None:
    before = {i: orjson.loads(d) for i, d in _rows(v1_store, "SELECT id, doc FROM events")}
    ips = {i: (d.get("source") or {}).get("ip") for i, d in before.items()}
    assert len(before) == 371 and len({ip for ip in ips.values() if ip}) > 20

    store = SqliteStore(v1_store)
    assert _rows(v1_store, "SELECT value FROM kv WHERE key = ?", LAYOUT_KEY) == [(str(LAYOUT).encode(),)]
    keyed = dict(_rows(v1_store, "SELECT id, ip_key FROM events"))
    assert keyed == {i: ip_key(ip) if ip else None for i, ip in ips.items()}  # every row filled

    # CIDR queries take the index now, and find exactly what a scan of the documents finds
    for net in ("10.0.0.0/8", "192.168.0.0/16", "0.0.0.0/0", "::/0", "2001:db8::/32", f"{next(iter(ips.values()))}/32"):
        n = ipaddress.ip_network(net, strict=False)
        want = {i for i, ip in ips.items() if ip and ipaddress.ip_address(ip) in n}
        assert _ids(store, Term("source.ip", "cidr", net)) == want, net
        assert _ids(store, Not(Term("source.ip", "cidr", net))) == set(before) - want, net
    assert _ids(store, parse_query("source.ip:10.0.0.0/8")) == _ids(store, Term("source.ip", "cidr", "10.0.0.0/8"))
    assert _ids(store, Term("source.ip", "cidr", "not-a-network")) == set()
    plan = " ".join(str(r) for r in store.db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM events WHERE ip_key BETWEEN ? AND ?", cidr_key_range("10.0.0.0/8")))
    assert "events_ip_key" in plan

    # the user index carries the source address: "where does this user come from" reads the index only
    idx = {n for (n,) in store.db.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='events'")}
    assert "events_user" not in idx and {"events_user_ts_ip", "events_ip_key"} <= idx
    users = Counter((d.get("user") or {}).get("name") for i, d in before.items() if ips[i])
    user = next(u for u, _ in users.most_common() if u)
    plan = " ".join(str(r) for r in store.db.execute(
        "EXPLAIN QUERY PLAN SELECT source_ip, count(*) FROM events WHERE user_name = ? GROUP BY source_ip", (user,)))
    assert "COVERING INDEX events_user_ts_ip" in plan
    want_top = Counter(ips[i] for i, d in before.items() if (d.get("user") or {}).get("name") == user and ips[i])
    got_top = store.aggregate(Query(expr=Term("user.name", "eq", user)), "source.ip", 100)
    assert dict(got_top) == dict(want_top) and want_top

    # the rest of what layout 1 held reads as it did: documents and alerts
    assert {e.id: e.to_doc() for e in store.search(Query(limit=10_000))} == before
    alert_ids = [i for (i,) in _rows(v1_store, "SELECT id FROM alerts")]
    assert len(alert_ids) == 24 and set(store.alerts_by_ids(alert_ids)) == set(alert_ids)
    store.close()

    again = SqliteStore(v1_store)  # an upgraded store is not upgraded twice
    assert dict(_rows(v1_store, "SELECT id, ip_key FROM events")) == keyed
    again.close()


def test_the_embedded_mode_goes_on_from_a_layout_1_store(v1_store: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The embedded mode opens the old data directory (its ``events.db`` of layout 1) and takes
    back the rule state and open alerts the old code checkpointed, none of it dropped as unreadable."""
    emb = build_embedded(Settings(data_dir=tmp_path), sinks=[ListSink()], clock=FrozenClock())
    assert emb.store.count(Query(limit=1)) == 371
    assert emb.store.get_state(LAYOUT_KEY) == str(LAYOUT).encode()
    assert "starting fresh" not in caplog.text
    stateful = {ns for (ns,) in _rows(tmp_path / "events.db", "SELECT DISTINCT ns FROM rule_state")
                if not ns.startswith("alerts/")}
    assert len(stateful) >= 3
    assert emb.pipeline.engine.restore_rows(emb.store.read_state) == len(stateful)
    assert emb.pipeline.alerts.open  # the open alerts, read back from the alerts of layout 1
    emb.store.close()


def test_a_store_of_a_newer_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    SqliteStore(path).close()
    c = sqlite3.connect(path)
    c.execute("UPDATE kv SET value = ? WHERE key = ?", (str(LAYOUT + 1).encode(), LAYOUT_KEY))
    c.commit()
    c.close()
    with pytest.raises(StoreError, match=f"store layout {LAYOUT + 1}, newer than"):
        SqliteStore(path)


_v4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
_v6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))


@settings(max_examples=300, deadline=None)
@given(ip=st.one_of(_v4, _v6), base=st.one_of(_v4, _v6), bits=st.integers(0, 128))
def test_a_key_range_holds_exactly_the_addresses_of_the_network(ip: str, base: str, bits: int) -> None:
    addr = ipaddress.ip_address(base)
    net = ipaddress.ip_network(f"{base}/{min(bits, addr.max_prefixlen)}", strict=False)
    lo, hi = cidr_key_range(str(net))
    key = ip_key(ip)
    assert (lo <= key <= hi) == (ipaddress.ip_address(ip) in net)
