"""The console's subject report (/console/subjects/{id}) without a browser: the timeline and the
actors show the seeded accesses to the subject (on both stores), the page needs the API route's
permission, writes the same self-audit record (with the purpose), shows the lookups to the roles
that read the self-audit, and a role that sees pseudonyms finds no clear name or address in it."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import quote, quote_plus

from api_helpers import NOW, ev, events

from access_audit.api.auth import PERMISSIONS, Perm, Role
from access_audit.core.events import User
from access_audit.store.subject_report import purpose_of, service_of

ACCESS = re.compile(r'<li class="access a\d( failed)?" data-user="([^"]*)" data-at="([^"]+)">(.*?)</li>', re.S)
ACTOR = re.compile(r'<article class="actor a\d" id="actor-\d+" data-user="([^"]*)" data-events="(\d+)">(.*?)</article>',
                   re.S)


def _of(subject: str) -> list:
    return sorted((e for e in events() if subject in e.resource.subject_ids), key=lambda e: (e.timestamp, e.id))


def _text(part: str) -> str:
    """The text of some HTML, its white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", part)).split())


def _timeline(page: str) -> list[tuple[str, str, str]]:
    """(user, ISO time, the entry's text) of every entry of the timeline, in page order."""
    part = page.split('id="timeline"')[1].split("</ol>")[0]
    return [(html.unescape(u), at, _text(body)) for _, u, at, body in ACCESS.findall(part)]


def _actors(page: str) -> list[tuple[str, int, str]]:
    return [(html.unescape(u), int(n), _text(body)) for u, n, body in ACTOR.findall(page)]


def test_the_timeline_and_the_actors_show_every_access_to_the_subject(env):
    for subject in ("c-1", "c-2"):
        seeded = _of(subject)
        r = env.get(f"/console/subjects/{subject}", Role.dpo)
        assert r.status_code == 200, r.text
        page = r.text
        assert 'href="/console/subjects" aria-current="page"' in page
        assert f'<strong class="count" id="total">{len(seeded)}</strong>' in page
        entries = _timeline(page)
        assert [(u, at) for u, at, _ in entries] == [(e.user.name, e.timestamp.isoformat()) for e in seeded]
        for (_, _, text), e in zip(entries, seeded, strict=True):  # who, what, from where, through, why
            assert e.event.action in text and e.resource.name in text and str(e.source.ip) in text
            assert f"through {service_of(e)}" in text
            assert (purpose_of(e) or "none declared") in text
        users = sorted({e.user.name for e in seeded}, key=lambda u: (-sum(e.user.name == u for e in seeded), u))
        actors = _actors(page)
        assert [(u, n) for u, n, _ in actors] == [(u, sum(e.user.name == u for e in seeded)) for u in users]
        for u, _, text in actors:
            mine = [e for e in seeded if e.user.name == u]
            assert all(str(e.source.ip) in text and service_of(e) in text for e in mine)
            assert all((purpose_of(e) or "none declared") in text for e in mine)
    without = sum(1 for e in _of("c-1") if purpose_of(e) is None)
    assert f'id="without-purpose">{without} without a declared purpose' in env.get("/console/subjects/c-1").text
    empty = env.get("/console/subjects/nobody").text
    assert 'id="no-accesses"' in empty and 'id="timeline"' not in empty


def test_the_role_of_the_actor_is_shown(sqlite_env):
    e = ev(900, NOW - timedelta(hours=1), "frank", "10.7.7.7", subjects=["c-9"], labels={"purpose": "billing"})
    e.user = User(name="frank", roles=["billing-clerk"])
    sqlite_env.store.write_events([e])
    (who, n, text), = _actors(sqlite_env.get("/console/subjects/c-9").text)
    assert (who, n) == ("frank", 1) and "Role billing-clerk" in text and "billing" in text


def test_the_lookup_is_recorded_like_the_api_s_and_shown_to_the_roles_that_read_the_self_audit(env):
    env.get("/console/subjects/c-1", Role.dpo, purpose="Art. 15 request 2026-014")
    recs = [r for r in env.store.self_audit(limit=100) if r.get("path") == "/console/subjects/c-1"]
    assert len(recs) == 1, recs
    rec = recs[0]
    assert (rec["action"], rec["actor"], rec["role"], rec["purpose"], rec["status"], rec["hits"]) == \
        ("subject_report", "dpo-person", "dpo", "Art. 15 request 2026-014", 200, len(_of("c-1")))
    assert rec["subject_ids"] == ["c-1"] and rec["query"] == "subject c-1"
    api = [r for r in env.store.self_audit(limit=100) if r.get("path") == "/api/subjects/c-1/report"]
    assert api == []  # the page is one lookup, not also the API's
    # the next lookup shows the first (the DPO reads the self-audit); the admin does not
    page = env.get("/console/subjects/c-1", Role.dpo).text
    lookups = page.split('id="lookups"')[1].split("</ol>")[0]
    assert lookups.count("<li>") == 1
    assert "dpo-person" in lookups and "Art. 15 request 2026-014" in lookups
    admin = env.get("/console/subjects/c-1", Role.admin)
    assert admin.status_code == 200 and 'id="h-lookups"' not in admin.text
    recs = [r for r in env.store.self_audit(limit=100) if r.get("path") == "/console/subjects/c-1"]
    assert len(recs) == 3 and [r["purpose"] for r in recs].count(None) == 2


def test_a_role_without_the_permission_is_refused_and_recorded(env):
    for who in (Role.engineer, Role.auditor):
        r = env.get("/console/subjects/c-1", who)
        assert r.status_code == 403 and "subjects:report" in r.text
        assert "alice" not in r.text and "10.1.2.3" not in r.text
        assert env.get("/console/subjects", who).status_code == 403
        assert 'href="/console/subjects"' not in env.get("/console/activity", who).text
    denied = [r for r in env.store.self_audit(limit=100) if r.get("path") == "/console/subjects/c-1"]
    assert {(r["actor"], r["status"]) for r in denied} == {("engineer-person", 403), ("auditor-person", 403)}
    r = env.client.get("/console/subjects/c-1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_the_form_leads_to_the_report(sqlite_env):
    env = sqlite_env
    activity = env.get("/console/activity").text
    assert 'id="subject-lookup"' in activity and 'href="/console/subjects"' in activity
    assert 'id="subject-form"' in env.get("/console/subjects").text
    r = env.client.get("/console/subjects", params={"subject_id": " c-1 ", "purpose": "Art. 15"},
                       headers=env.headers(Role.dpo), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/subjects/c-1?purpose=Art.+15"
    assert env.get("/console/subjects", subject_id="  ").status_code == 422
    env.store.write_events([ev(901, NOW - timedelta(hours=2), "gina", "10.6.6.6", subjects=["NL/123 4"])])
    r = env.client.get("/console/subjects", params={"subject_id": "NL/123 4"}, headers=env.headers(Role.dpo))
    assert r.status_code == 200 and _timeline(r.text)[0][0] == "gina"  # an id with a slash and a space
    assert env.get("/console/subjects/c-1", since="yesterday").status_code == 400
    assert env.get("/console/subjects/c-1", purpose="x" * 201).status_code == 400


def test_a_role_that_sees_pseudonyms_finds_no_clear_name_or_address_on_the_page(env, monkeypatch):
    """The attack: a role with the report's permission that sees pseudonyms (none of the built-in
    roles today: the auditor is given the permission here) reads the page of every seeded subject;
    no user name or address of the seeded events is in the HTML in any form (text, HTML-escaped,
    URL-encoded, in an attribute), and the pseudonyms stand in their place."""
    monkeypatch.setitem(PERMISSIONS, Role.auditor, PERMISSIONS[Role.auditor] | {Perm.subjects_report})
    pseudo = env.app.state.pseudonymiser
    seeded = events()
    clear = {e.user.name for e in seeded if e.user} | {str(e.source.ip) for e in seeded if e.source}
    env.get("/console/subjects/c-1", Role.dpo, purpose="a lookup to show")  # a lookup for the auditor to read
    for subject in ("c-1", "c-2", "c-3"):
        r = env.get(f"/console/subjects/{subject}", Role.auditor)
        assert r.status_code == 200, r.text
        page = r.text
        for v in clear:
            for form in {v, html.escape(v), html.escape(v, quote=False), quote_plus(v), quote(v, safe="")}:
                assert not re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", page), (subject, v, form)
        mine = _of(subject)
        entries = _timeline(page)
        assert [u for u, _, _ in entries] == [pseudo(e.user.name) for e in mine]
        assert all(pseudo(str(e.source.ip)) in text for (_, _, text), e in zip(entries, mine, strict=True))
        assert {u for u, _, _ in _actors(page)} == {pseudo(e.user.name) for e in mine}
        assert "pseudonymised" in page and 'id="h-lookups"' in page  # the auditor reads the self-audit
    assert "a lookup to show" in env.get("/console/subjects/c-1", Role.auditor).text
