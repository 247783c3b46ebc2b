"""Microsoft 365 unified audit log, on the real samples.

Counts (asserted): ``plaso_test_data/microsoft_audit_log.jsonl`` 4 of 4 (3 Exchange cmdlets, 1
UserLoggedIn); ``otrf_goldensaml_azure_m365/OfficeActivityEvents.json`` 1 of 1 (MailItemsAccessed);
Panther ``Microsoft365.Audit.AzureActiveDirectory`` 4 of 4, ``.Exchange`` 10 of 10, ``.SharePoint``
5 of 5.
"""

from __future__ import annotations

import orjson
import pytest
from tests.parse.test_azure import jsonl, parse_all

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter


@pytest.mark.parametrize(("path", "count"), [
    (("plaso_test_data", "microsoft_audit_log.jsonl"), 4),
    (("otrf_goldensaml_azure_m365", "OfficeActivityEvents.json"), 1),
])
def test_real_records_all_parse(registry, datasets, path, count):
    rows = jsonl(datasets.joinpath(*path))
    got = parse_all(registry, rows)
    assert len(rows) == count and all(isinstance(e, AccessEvent) for e in got)
    assert {e.event.dataset for e in got} == {"o365.audit"}
    assert [e.id for e in parse_all(registry, rows, "o365.audit")] == [e.id for e in got]


@pytest.mark.parametrize(("log_type", "count"), [
    ("Microsoft365.Audit.AzureActiveDirectory", 4), ("Microsoft365.Audit.Exchange", 10),
    ("Microsoft365.Audit.SharePoint", 5)])
def test_panther_records_all_parse(registry, panther, log_type, count):
    rows = [r["event"] for r in panther(log_type)]
    got = parse_all(registry, rows)
    assert len(rows) == count and all(isinstance(e, AccessEvent) and e.event.dataset == "o365.audit" for e in got)


def test_plaso_login_and_cmdlet(registry, datasets):
    got = parse_all(registry, jsonl(datasets / "plaso_test_data" / "microsoft_audit_log.jsonl"))
    login = got[3]
    assert login.event.action == "UserLoggedIn" and login.event.category == ["authentication"]
    assert login.event.outcome is Outcome.success and login.user.name == "piet@sst5f.onmicrosoft.com"
    assert login.timestamp.isoformat() == "2022-05-08T15:13:41+00:00"  # no zone in CreationTime: UTC
    assert login.resource.type == "application" and login.resource.id == "00000003-0000-0000-c000-000000000000"
    cmd = got[2]
    assert cmd.event.action == "Set-AdminAuditLogConfig" and cmd.event.category == ["configuration"]
    assert cmd.event.provider == "Exchange" and cmd.labels["o365_record_type"] == "1"


def test_otrf_mail_items_accessed(registry, datasets):
    (ev,) = parse_all(registry, jsonl(datasets / "otrf_goldensaml_azure_m365" / "OfficeActivityEvents.json"))
    assert ev.event.action == "MailItemsAccessed" and ev.event.type == ["access"]
    assert ev.resource.type == "mailbox" and ev.resource.name == "pgustavo@simulandlabs.com"
    assert ev.resource.records == 7  # the InternetMessageIds listed in the Folders JSON string
    assert ev.source.ip == "1.2.3.4" and ev.labels["o365_client_info"] == "Client=REST;;"


def test_forwarding_to_external_addresses(registry, panther):
    rows = [r["event"] for r in panther("Microsoft365.Audit.Exchange")]
    got = parse_all(registry, rows)
    forwards = {e.labels["o365_forward_to"]: e.labels["o365_forward_external"] for e in got
                if "o365_forward_to" in e.labels}
    assert forwards["peter.griffin@familyguy.com"] == "true"  # Set-Mailbox ForwardingSmtpAddress
    assert forwards["external@example.com"] == "true"  # New-InboxRule ForwardTo
    assert forwards["marge.simpson@simpsons.com"] == "false"  # the user's own domain
    assert forwards["bart.simpson@springfield.simpsons.com"] == "false"  # a subdomain of it
    assert forwards["bruce@justice.org"] == "false"
    assert forwards["external1@example.com;external2@example.com;external3@example.com"] == "true"


def test_sharepoint_file_is_the_resource(registry, panther):
    ev = parse_all(registry, [panther("Microsoft365.Audit.SharePoint")[0]["event"]])[0]
    assert ev.event.action == "AddedToSecureLink" and ev.event.category == ["file"]
    assert ev.resource.type == "file" and ev.resource.name == "importantsecrets.docx"


BASE = {"CreationTime": "2026-11-20T08:00:00", "Id": "x1", "Operation": "UserLoggedIn", "RecordType": 15,
        "Workload": "AzureActiveDirectory", "UserId": "ann@example.org", "ClientIP": "192.0.2.1"}


@pytest.mark.parametrize(("record", "reason"), [
    ({**BASE, "Operation": None}, "Operation is absent"),
    ({**BASE, "CreationTime": "soon"}, "CreationTime="),
    ({**BASE, "UserId": {"a": 1}}, "UserId is dict"),
    ({**BASE, "Parameters": ["x"]}, "Parameters[0] is str"),
    ({**BASE, "Parameters": "[broken"}, "parameters is a string that is not valid json"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, record, reason):
    dl = parse_one(orjson.dumps(record), "o365.audit")
    assert isinstance(dl, DeadLetter) and reason.lower() in dl.reason.lower()


def test_client_ip_with_port(parse_one):
    ev = parse_one({**BASE, "ClientIP": "[2001:db8::1]:443"})
    assert ev.event.dataset == "o365.audit" and (ev.source.ip, ev.source.port) == ("2001:db8::1", 443)
