"""The console's activity page (/console/activity) without a browser: its bars and top lists count
what was seeded (on both stores), every bar and row links to a search that finds exactly those
events, a role that sees pseudonyms sees no clear name or address (in the text, the links or the
CLI hints), and the read is in the self-audit."""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from api_helpers import alerts, events

from access_audit.api.auth import Role

BAR = re.compile(r'<a class="bar" href="([^"]+)" data-start="([^"]+)" data-count="(\d+)"')
ROW = re.compile(r'<a href="(/api/events\?[^"]+)" title="[^"]*" data-q="([^"]*)" data-count="(\d+)">([^<]*)</a>')


def chart(page: str, chart_id: str) -> dict[str, tuple[str, int]]:
    """start -> (link, count) of the bars of one chart."""
    part = page.split(f'<figure class="chart" id="{chart_id}">')[1].split("</figure>")[0]
    return {start: (html.unescape(href), int(n)) for href, start, n in BAR.findall(part)}


def top_list(page: str, field: str) -> list[tuple[str, int, str, str]]:
    """(value shown, count, query, link) of one top list, in order."""
    part = page.split(f'id="top-{field.replace(".", "-")}"')[1].split("</section>")[0]
    return [(html.unescape(v), int(n), html.unescape(q), html.unescape(href)) for href, q, n, v in ROW.findall(part)]


def _floor(t: datetime, seconds: int) -> str:
    t = t.astimezone(UTC)
    t = t.replace(minute=0, second=0, microsecond=0) if seconds == 3600 else \
        t.replace(hour=0, minute=0, second=0, microsecond=0)
    return t.isoformat().replace("+00:00", "Z")


def _found(env, link: str, who: Role = Role.dpo) -> list[dict]:
    """Follow a page's link as the same role: the events the API returns."""
    r = env.client.get(link, headers=env.headers(who))
    assert r.status_code == 200, r.text
    env.refresh()
    return r.json()["events"]


def test_bars_and_top_lists_count_the_seeded_events_and_link_to_them(env):
    seeded = events()
    r = env.get("/console/activity", Role.dpo)
    assert r.status_code == 200, r.text
    page = r.text
    assert 'href="/console/activity" aria-current="page"' in page

    for chart_id, seconds in (("events-hourly", 3600), ("events-daily", 86400)):
        expected = Counter(_floor(e.timestamp, seconds) for e in seeded)
        bars = chart(page, chart_id)
        assert {k: n for k, (_, n) in bars.items()} == dict(expected), chart_id
        for start, (link, n) in bars.items():  # the query behind the bar finds exactly its events
            got = _found(env, link)
            assert len(got) == n and all(_floor(datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")),
                                                seconds) == start for d in got)

    for field, value_of in (("user.name", lambda e: e.user.name if e.user else None),
                            ("resource.name", lambda e: e.resource.name if e.resource else None),
                            ("source.ip", lambda e: str(e.source.ip) if e.source and e.source.ip else None)):
        counts = Counter(v for v in map(value_of, seeded) if v is not None)
        expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        rows = top_list(page, field)
        assert [(v, n) for v, n, _, _ in rows] == expected, field
        for value, n, q, link in rows:
            assert parse_qs(urlsplit(link).query)["q"] == [q]
            got = _found(env, link)
            assert len(got) == n, (field, value, q)

    # the XSS user is shown as text, in the cell, the link and the CLI hint
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page

    per_day = Counter(_floor(a.first_seen, 86400) for a in alerts())
    bars = chart(page, "alerts-daily")
    assert {k: n for k, (_, n) in bars.items()} == dict(per_day)
    for _start, (link, n) in bars.items():
        listed = env.client.get(link, headers=env.headers(Role.dpo)).text
        assert listed.count('name="alert_id"') == n


def test_a_time_range_narrows_every_count(env):
    seeded = events()
    lo = min(e.timestamp for e in seeded) + timedelta(hours=2)  # the first day's four events fall out
    hi = max(e.timestamp for e in seeded) + timedelta(minutes=1)
    page = env.get("/console/activity", Role.dpo, since=lo.isoformat(), until=hi.isoformat()).text
    inside = [e for e in seeded if lo <= e.timestamp < hi]
    assert 0 < len(inside) < len(seeded)
    bars = chart(page, "events-hourly")
    assert sum(n for _, n in bars.values()) == len(inside)
    users = Counter(e.user.name for e in inside if e.user)
    assert {v: n for v, n, _, _ in top_list(page, "user.name")} == dict(users)
    assert "alice" not in users and "alice" not in page.split("<main")[1]
    assert env.get("/console/activity", Role.dpo, days=0).status_code == 400
    assert env.get("/console/activity", Role.dpo, since="2026-11-23T00:00:00Z", until="2026-11-22T00:00:00Z"
                   ).status_code == 400
    assert env.get("/console/activity", Role.dpo, since="yesterday").status_code == 400


def test_an_auditor_sees_no_clear_name_or_address_anywhere_on_the_page(env):
    """The attack: every personal value of the data, in every form it could leak in (as text, HTML-
    escaped, URL-encoded in a link, in the CLI hint), is absent; the pseudonyms are there and their
    links find the same events as the clear ones."""
    seeded = events()
    pseudo = env.app.state.pseudonymiser
    for who in (Role.auditor, Role.engineer):
        page = env.get("/console/activity", who).text
        clear = {e.user.name for e in seeded if e.user} | {str(e.source.ip) for e in seeded if e.source}
        for v in clear:
            for form in {v, html.escape(v), html.escape(v, quote=False), quote_plus(v), quote(v, safe="")}:
                assert not re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", page), (who, v, form)
        users = top_list(page, "user.name")
        ips = top_list(page, "source.ip")
        counts = Counter(e.user.name for e in seeded if e.user)
        assert {v: n for v, n, _, _ in users} == {pseudo(k): n for k, n in counts.items()}
        assert all(re.fullmatch(r"p-[0-9a-f]{16}", v) for v, _, _, _ in users + ips)
        for value, n, q, link in users + ips:
            assert value in q
            assert len(_found(env, link, who)) == n, (who, q)
        # resources are not personal: named
        assert next(v for v, _, _, _ in top_list(page, "resource.name")) == "wiki"
        assert "pseudonymised" in page


def test_the_page_read_is_in_the_self_audit(env):
    env.get("/console/activity", Role.auditor, days=3)
    recs = [r for r in env.store.self_audit(limit=50) if r.get("path") == "/console/activity"]
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["action"] == "aggregate" and rec["actor"] == "auditor-person" and rec["role"] == "auditor"
    assert rec["query"].startswith("activity since ") and rec["status"] == 200
    seeded = events()
    since = env.clock.now() - timedelta(days=3)
    assert rec["hits"] == sum(1 for e in seeded if e.timestamp >= since)


def test_the_page_needs_a_session(sqlite_env):
    r = sqlite_env.client.get("/console/activity", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/console/activity"
