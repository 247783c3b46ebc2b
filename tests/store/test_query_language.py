from __future__ import annotations

import pytest

from access_audit.core.errors import QueryError
from access_audit.store.query import And, MatchAll, Not, Or, Term, parse_query


def test_fields_booleans_and_cidr():
    assert parse_query("user.name:alice AND event.outcome:failure AND NOT source.ip:10.0.0.0/8") == And((
        Term("user.name", "eq", "alice"), Term("event.outcome", "eq", "failure"),
        Not(Term("source.ip", "cidr", "10.0.0.0/8"))))


def test_implicit_and_or_groups_lists_wildcards_and_compare():
    q = parse_query('(event.action:(ssh_login OR su) OR user.name:adm*) http.response.status_code:>=500 "BREAK-IN"')
    assert q == And((
        Or((Or((Term("event.action", "eq", "ssh_login"), Term("event.action", "eq", "su"))),
            Term("user.name", "prefix", "adm"))),
        Term("http.response.status_code", "gte", 500.0),
        Term("", "text", "BREAK-IN")))
    assert parse_query("") == MatchAll()
    assert parse_query('user.name:"a b\\" c"') == Term("user.name", "eq", 'a b" c')
    assert parse_query("labels.visibility:*") == Term("labels.visibility", "exists")


@pytest.mark.parametrize("text, message", [
    ("user.nmae:alice", "unknown field 'user.nmae' at position 1"),
    ("user.name:alice AND", "unexpected end"),
    ("(user.name:alice", "missing ')'"),
    ("user.name:a*b", "only a trailing *"),
    ("source.ip:10.0.0.0/99", "invalid network"),
    ("http.response.status_code:>abc", "needs a number"),
    ('user.name:"unterminated', "unterminated quote"),
    ("user.name:x)", "unexpected ')' at position 12"),
    ("-user.name:x", "use NOT"),
])
def test_errors_say_what_and_where(text, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse_query(text)
