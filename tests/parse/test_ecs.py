"""Generic ECS JSON parser: our own documents round-trip, foreign ECS documents are accepted,
malformed ones become dead letters. Also the shared ``Fields`` reader and ``endpoint``."""

from __future__ import annotations

import orjson
import pytest

from access_audit.core.errors import ParseError
from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord
from access_audit.parse.ecs import EcsParser, Fields, code_number, endpoint

LOG_TYPE = "ecs"

FILEBEAT_LIKE = {
    "@timestamp": "2026-03-01T08:15:00.123+01:00",
    "ecs.version": "8.11.0",
    "log.level": "info",
    "service.name": "patient-portal",
    "tenant": "clinic-west",
    "retries": 2,
    "agent": {"type": "filebeat", "version": "8.11.0"},
    "event": {"id": "orig-123", "dataset": "portal.audit", "category": "authentication", "type": ["start"],
              "action": "login", "outcome": "FAILURE", "reason": "bad password"},
    "user": {"name": "dora", "roles": "nurse"},
    "source": {"ip": "192.0.2.10", "port": 51544, "geo": {"country_iso_code": "NL"}},
    "labels": {"env": "prod", "shard": 3, "nested": {"dropped": True}},
}


def test_foreign_ecs_document(parse_one):
    ev = parse_one(FILEBEAT_LIKE)
    assert isinstance(ev, AccessEvent) and ev.event.dataset == LOG_TYPE
    assert ev.timestamp.isoformat() == "2026-03-01T07:15:00.123000+00:00"
    assert ev.event.category == ["authentication"] and ev.event.type == ["start"]  # single value -> list
    assert ev.event.outcome is Outcome.failure and ev.event.reason == "bad password"
    assert ev.user.name == "dora" and ev.user.roles == ["nurse"]
    assert ev.source.port == 51544 and ev.source.geo.country_iso_code == "NL"
    assert ev.service.name == "patient-portal"  # dotted key expanded
    assert ev.labels == {"ecs_version": "8.11.0", "log_level": "info", "tenant": "clinic-west", "retries": "2",
                         "env": "prod", "shard": "3", "original_event_id": "orig-123",
                         "original_dataset": "portal.audit"}
    assert ev.related.ip == ["192.0.2.10"] and ev.related.user == ["dora"]
    assert ev.event.id != "orig-123"  # ours, deterministic


def test_own_documents_round_trip(parse_one):
    line = ('203.0.113.9 - alice [10/Oct/2026:13:55:36 +0200] "GET /api/patients/123?x=1 HTTP/1.1" 200 2326 '
            '"-" "Mozilla/5.0"')
    first = parse_one(line, "http")
    again = parse_one(first.to_doc())
    assert again.event.dataset == LOG_TYPE
    assert again.labels == {"original_event_id": first.id, "original_dataset": "http"}
    assert again.event.original == line  # kept, not replaced by the JSON

    def strip(ev):
        doc = ev.to_doc()
        doc.pop("labels", None)
        for k in ("id", "dataset", "ingested"):
            doc["event"].pop(k, None)
        return doc
    assert strip(again) == strip(first)


def test_not_sniffed_without_event_object(parse_one):
    dl = parse_one({"@timestamp": "2026-03-01T08:15:00Z", "message": "hello"})
    assert isinstance(dl, DeadLetter) and "unrecognised JSON record" in dl.reason
    ev = parse_one({"@timestamp": "2026-03-01T08:15:00Z", "message": "hello"}, LOG_TYPE)  # explicit type: fine
    assert ev.message == "hello"


@pytest.mark.parametrize(("data", "reason"), [
    (b'{"@timestamp": "2026-03-01T08:15:00Z", "event": {"act', "invalid JSON"),
    (b"\x00\xff\xfe\x00garbage\x01", "invalid JSON"),
    (b'[{"@timestamp": "2026-03-01T08:15:00Z"}]', "expected an object"),
    (orjson.dumps({"event": {"action": "x"}}), "missing timestamp"),
    (orjson.dumps({**FILEBEAT_LIKE, "@timestamp": "1800-01-01T00:00:00Z"}), "implausible timestamp"),
    (orjson.dumps({**FILEBEAT_LIKE, "@timestamp": "9999-01-01T00:00:00Z"}), "timestamp in the future"),
    (orjson.dumps({**FILEBEAT_LIKE, "@timestamp": {"$date": 1}}), "invalid timestamp"),
    (orjson.dumps({**FILEBEAT_LIKE, "user": "dora"}), "invalid field values: user"),
    (orjson.dumps({**FILEBEAT_LIKE, "source": {"port": 70000}}), "invalid field values: source.port"),
    (orjson.dumps({**FILEBEAT_LIKE, "event": {"outcome": "maybe"}}), "invalid field values: event.outcome"),
    (orjson.dumps({**FILEBEAT_LIKE, "labels": ["a"]}), "labels is list, expected object"),
    (orjson.dumps({**FILEBEAT_LIKE, "user": 1, "user.name": "x"}), "conflicting fields"),
    (orjson.dumps({**FILEBEAT_LIKE, "message": "m" * 5_000_000}), "record too large"),
])
def test_malformed_documents_become_dead_letters(parse_one, data, reason):
    dl = parse_one(data, LOG_TYPE)
    assert isinstance(dl, DeadLetter), "expected a dead letter, got an event"
    assert reason in dl.reason
    auto = parse_one(data)
    assert isinstance(auto, DeadLetter) and auto.reason


def test_input_is_not_mutated(parse_one):
    doc = {"@timestamp": "2026-03-01T08:15:00Z", "event": {"action": "x", "id": "keep"}, "event.reason": "r"}
    snapshot = orjson.dumps(doc)
    ev = EcsParser().parse_obj(doc, RawRecord(data=snapshot, origin="o", source="s"))[0]
    assert ev.event.reason == "r" and ev.event.action == "x"
    assert orjson.dumps(doc) == snapshot


def test_same_document_twice_gives_the_same_id(parse_one):
    a = parse_one(FILEBEAT_LIKE, LOG_TYPE, origin="topic/0/41")
    b = parse_one(FILEBEAT_LIKE, None, origin="topic/0/41")
    assert a.id == b.id and a.to_doc() == b.to_doc()


# --- the shared reader --------------------------------------------------------------------------

def test_fields_reader_types_and_case():
    f = Fields({"EventName": "X", "n": 3, "flag": "True", "obj": '{"a": 1}', "empty": "", "lst": [1]}, "t")
    assert f.text("eventname") == "X"
    assert f.text("n", numbers=True) == "3"
    assert f.flag("flag") is True
    assert f.obj_at("obj", json_string=True).raw("a") == 1
    assert f.obj_at("empty") is None and f.list_at("empty") == [] and f.text("empty") is None
    assert f.label("flag") == "True" and f.label("n") == "3"
    with pytest.raises(ParseError, match="n is int, expected string"):
        f.text("n")
    with pytest.raises(ParseError, match="lst is list, expected object"):
        f.obj_at("lst")
    with pytest.raises(ParseError, match=r"lst\[0\] is int, expected object"):
        f.objects("lst")


@pytest.mark.parametrize(("value", "ip", "domain"), [
    ("1.2.3.4", "1.2.3.4", None),
    ("2001:DB8::1", "2001:db8::1", None),
    ("[2001:db8::1]", "2001:db8::1", None),
    ("ec2.amazonaws.com", None, "ec2.amazonaws.com"),
    ("AWS Internal", None, None),
    ("06.237.252.245", None, None),  # leading zeros: not a valid address, not a host name either
    ("<Attacker source IP>", None, None),
])
def test_endpoint(value, ip, domain):
    ep = endpoint(value)
    assert (ep.ip, ep.domain, ep.address) == (ip, domain, value)


@pytest.mark.parametrize(("value", "number"), [
    (4624, 4624), ("4624", 4624), ("000005", 5), (0, 0),
    (True, None), (False, None), ("1234567", None), ("46 24", None), ("", None), ("0x12", None), (4624.0, None),
    (None, None), ([4624], None),
])
def test_code_number_reads_event_codes_as_exports_write_them(value, number) -> None:
    """Windows' EventID and OneLogin's event_type_id: a number or a short string of digits, never a bool."""
    assert code_number(value) == number
