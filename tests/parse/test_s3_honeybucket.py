"""The S3 honey-bucket CSV export (OTRF AWS_S3_HoneyBucketLogs.csv), read through the file source."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry


@pytest.fixture
def honeybucket(datasets: Path) -> Path:
    return datasets / "otrf_aws_cloudtrail" / "AWS_S3_HoneyBucketLogs.csv"


def test_every_row_becomes_an_s3_event(honeybucket: Path, registry: ParserRegistry):
    records = list(LineReader([honeybucket]))
    assert len(records) == 301  # 302 lines: the header and 301 rows
    events, dead = [], []
    for r in records:
        res = registry.parse(r)
        events += res.events
        dead += res.dead_letters
    assert not dead, dead[0].reason
    assert {e.event.dataset for e in events} == {"aws.s3_honeybucket"}
    assert Counter(e.event.action for e in events) == {"HeadBucket": 159, "ListObjects": 138, "PutObject": 4}
    assert {e.event.provider for e in events} == {"s3.amazonaws.com"}
    first = events[0]
    assert first.timestamp.isoformat() == "2022-02-18T17:34:57+00:00"
    assert first.source.ip == "177.131.167.145"
    assert first.resource.name == "microsoft-devtest"
    assert first.labels["aws_event_id"] == "283770f5-968d-448d-9328-0b010f4d3696"
    assert first.labels["honeybucket_repeats"] == "4" and first.labels["honeybucket_alert"].startswith("302-")
    named = [e for e in events if e.user is not None and e.user.id]
    assert named and all(not e.user.id.startswith("{") for e in named)
    assert len({e.id for e in events}) == 301


def test_a_malformed_row_is_a_dead_letter_with_the_reason(registry: ParserRegistry, tmp_path: Path):
    f = tmp_path / "export.csv"
    f.write_text("Event Type,Event Name,Request ID,User ID,Request Parameters,Alert,Event ID,Event DateTime,"
                 "Alarm DateTime,Source IP,Request User Agent,Repeated Attempts\n"
                 "AwsApiCall,ListObjects,R1,__import__('os'),{},a,e1,2022-02-18T17:34:57Z,,1.2.3.4,ua,1\n")
    (rec,) = LineReader([f])
    (dl,) = registry.parse(rec).dead_letters
    assert "User ID" in dl.reason and "not a dict literal" in dl.reason
