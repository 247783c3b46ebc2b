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


def test_first_hour_query_fixes():
    # issue 14: a wrong address is an error, not 0 results; log_type is event.dataset; aliases find their parser
    from access_audit.store.query import Term, parse_query, term_for

    for q in ("source.ip:999.1.1.1", 'source.ip:"10.0.0.300"', "related.ip:(10.0.0.1 OR nope)"):
        with pytest.raises(QueryError, match="invalid address"):
            parse_query(q)
    assert parse_query("source.ip:10.0.0.1") == Term("source.ip", "eq", "10.0.0.1")
    assert parse_query("source.ip:10.0.*") == Term("source.ip", "prefix", "10.0.")
    assert parse_query("log_type:sshd") == Term("event.dataset", "eq", "syslog")
    assert term_for("event.dataset", "nginx") == Term("event.dataset", "eq", "http")
    assert term_for("event.dataset", "aws.cloudtrail") == Term("event.dataset", "eq", "aws.cloudtrail")
    with pytest.raises(QueryError, match=r"unknown field 'user.nmae' at position 1; did you mean user.name"):
        parse_query("user.nmae:alice")


def test_a_lone_asterisk_is_every_event_and_a_quoted_one_is_text():
    assert parse_query("*") == parse_query("  *  ") == parse_query("") == MatchAll()
    assert parse_query('"*"') == Term("", "text", "*")
    assert parse_query("* AND user.name:a") != MatchAll()  # only the whole query
