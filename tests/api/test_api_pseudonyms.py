"""Pseudonymisation (keyed HMAC-SHA256) and the role -> permission map, without HTTP."""

from __future__ import annotations

from pydantic import SecretStr

from access_audit.api.auth import PERMISSIONS, Perm, Pseudonymiser, Role, parse_role, pseudonym_key
from access_audit.settings import Settings

P = Pseudonymiser(b"k" * 32)


def test_pseudonyms_are_keyed_stable_and_opaque():
    assert P("alice") == P("alice") != P("Alice")
    assert P("alice").startswith("p-") and len(P("alice")) == 18 and "alice" not in P("alice")
    assert Pseudonymiser(b"other-key-0123456789")("alice") != P("alice")


def test_events_alerts_and_reports_lose_their_personal_values():
    doc = {
        "@timestamp": "2026-11-20T08:00:00Z",
        "event": {"id": "ab12", "action": "ssh_login", "original": "Failed password for bob from 10.1.2.3"},
        "user": {"name": "bob", "email": "bob@example.org", "roles": ["admin"], "target": {"name": "root"}},
        "source": {"ip": "10.1.2.3", "port": 22, "geo": {"country_iso_code": "NL"}},
        "related": {"ip": ["10.1.2.3"], "user": ["bob", "root"]},
        "resource": {"name": "customers", "subject_ids": ["c-1", "c-22"]},
        "url": {"path": "/api/customers/c-1"},
        "message": "Failed password for bob from 10.1.2.3 port 22; 10.1.2.34 and bobby are other people",
        "labels": {"query": "user.name:bob AND resource.subject_ids:c-1"},
    }
    out = P.protect(doc)
    assert "original" not in out["event"]  # the raw record is withheld
    assert out["user"] == {"name": P("bob"), "email": P("bob@example.org"), "roles": ["admin"],
                           "target": {"name": P("root")}}
    assert out["source"] == {"ip": P("10.1.2.3"), "port": 22, "geo": {"country_iso_code": "NL"}}
    assert out["related"] == {"ip": [P("10.1.2.3")], "user": [P("bob"), P("root")]}
    assert out["resource"]["subject_ids"] == [P("c-1"), P("c-22")]
    # free text is one pseudonym per whole value: it can name anyone, known or not
    assert out["url"]["path"] == P("/api/customers/c-1")
    assert out["message"] == P("Failed password for bob from 10.1.2.3 port 22; 10.1.2.34 and bobby are other people")
    assert out["labels"]["query"] == P("user.name:bob AND resource.subject_ids:c-1")
    assert doc["user"]["name"] == "bob"  # a copy: the input is left alone

    alert = {"id": "a1", "user": "bob", "source_ip": "10.1.2.3", "group": {"source.ip": "10.1.2.3", "n": 3},
             "title": "10 failed logins of bob"}
    assert P.protect(alert) == {"id": "a1", "user": P("bob"), "source_ip": P("10.1.2.3"),
                                "group": {"source.ip": P("10.1.2.3"), "n": 3},
                                "title": f"10 failed logins of {P('bob')}"}
    buckets = {"top": {"user.name": [{"user.name": "bob", "events": 3}], "resource.name": [{"resource.name": "crm",
                                                                                             "events": 3}]}}
    assert P.protect(buckets)["top"] == {"user.name": [{"user.name": P("bob"), "events": 3}],
                                         "resource.name": [{"resource.name": "crm", "events": 3}]}
    # one-letter and two-letter values are pseudonymised where they are, not searched for in text
    assert P.protect({"user": {"name": "a"}, "title": "a b c"}) == {"user": {"name": P("a")}, "title": "a b c"}


def test_the_key_comes_from_the_settings_or_is_generated_once(tmp_path):
    s = Settings(data_dir=tmp_path)
    k1 = pseudonym_key(s)
    assert k1 == pseudonym_key(s) and len(k1) == 64
    assert (tmp_path / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    assert pseudonym_key(Settings(data_dir=tmp_path, api_pseudonym_key=SecretStr("x" * 20))) == b"x" * 20


def test_the_permission_map():
    see = {r for r, ps in PERMISSIONS.items() if Perm.see_personal_data in ps}
    assert see == {Role.security_analyst, Role.dpo, Role.admin}
    assert {r for r, ps in PERMISSIONS.items() if Perm.cases_approve in ps} == {Role.dpo}
    assert all(Perm.public not in ps for ps in PERMISSIONS.values())  # public needs no role at all
    assert Perm.cases_write not in PERMISSIONS[Role.auditor] and Perm.register_read in PERMISSIONS[Role.auditor]
    assert Perm.subjects_report not in PERMISSIONS[Role.engineer]
    assert parse_role("Security-Analyst") is Role.security_analyst and parse_role("analyst") is Role.security_analyst


def test_every_field_of_the_catalogue_is_classified_and_unknown_ones_are_personal():
    from access_audit.core.fields import FIELD_CLASSES, FIELD_TYPES, PERSONAL, field_class

    leaves = [k for k, t in FIELD_TYPES.items() if t != "object"]
    assert leaves and [k for k in leaves if k not in FIELD_CLASSES] == []
    assert set(FIELD_CLASSES.values()) == {"personal", "quasi", "free_text", "safe"}
    assert field_class("labels.anything") == field_class("cloud.account.id") == field_class("new.field") == PERSONAL
    assert field_class("url.query") == field_class("message") == "free_text"


def test_queries_of_pseudonymised_roles_are_rewritten_or_refused():
    import pytest

    from access_audit.store.query import PseudonymRefusedError, Term, for_pseudonyms, parse_query

    def resolve(field, p):
        return {P("bob"): ["bob"]}.get(p, [])

    assert for_pseudonyms(parse_query(f"user.name:{P('bob')}"), resolve) == Term("user.name", "eq", "bob")
    unknown = for_pseudonyms(parse_query(f"user.name:{P('nobody')}"), resolve)
    assert unknown == Term("user.name", "eq", P("nobody"))  # matches nothing, reveals nothing
    assert for_pseudonyms(parse_query("event.action:read AND user.name:*"), resolve) == \
        parse_query("event.action:read AND user.name:*")
    for q in ("user.name:bob", "user.name:bo*", "source.ip:10.0.0.0/8", '"bob"', "labels.x:y",
              "url.path:/api*", "NOT (event.action:read OR related.ip:10.1.2.3)", "source.geo.location.lat:>1"):
        with pytest.raises(PseudonymRefusedError):
            for_pseudonyms(parse_query(q), resolve)
