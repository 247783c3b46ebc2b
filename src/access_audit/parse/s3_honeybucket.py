"""S3 honey-bucket alert exports: CloudTrail S3 data events as CSV rows (OTRF's
``AWS_S3_HoneyBucketLogs.csv``, columns ``Event Type, Event Name, Request ID, User ID, Request
Parameters, Alert, Event ID, Event DateTime, Alarm DateTime, Source IP, Request User Agent,
Repeated Attempts``).

The file source turns each CSV row into a JSON object keyed by the header (see
``ingest.files``), so this parser sees one object per row. ``User ID`` and ``Request
Parameters`` hold Python-literal dicts (single quotes): they are read with ``ast.literal_eval``,
never evaluated. The row is mapped to the CloudTrail record it came from (``eventName``,
``eventTime``, ``userIdentity``, ``requestParameters``, ``sourceIPAddress``, ``userAgent``,
``eventID``, ``eventSource`` s3.amazonaws.com) and normalised by the CloudTrail parser, so the
fields are the same as for CloudTrail; the honey-bucket alert and its repeat count become labels
(``honeybucket_alert``, ``honeybucket_alarm_time``, ``honeybucket_repeats``). An anonymous
caller (``accountId: ANONYMOUS_PRINCIPAL``) has no user.
"""

from __future__ import annotations

import ast
from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import AccessEvent
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudtrail import CloudTrailParser

COLUMNS = ("Event Name", "Event ID", "Event DateTime", "Source IP")
MAX_LITERAL = 20_000


def _literal(value: Any, column: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if not isinstance(value, str) or len(value) > MAX_LITERAL:
        raise ParseError("invalid field", f"{column!r} is not a short dict literal")
    try:
        out = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ParseError("invalid field", f"{column!r} is not a dict literal: {value[:80]!r}") from None
    if not isinstance(out, dict):
        raise ParseError("invalid field", f"{column!r} is not a dict")
    return out


@register
class S3HoneyBucketParser(JsonParser):
    """Rows of an S3 honey-bucket alert export (CSV), as CloudTrail S3 data events."""

    name = "aws.s3_honeybucket"
    aliases = ("s3_honeybucket", "honeybucket")
    description = "S3 honey-bucket alert exports (CSV rows of CloudTrail S3 data events)"

    def __init__(self) -> None:
        self._cloudtrail = CloudTrailParser()

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        return all(c in obj for c in COLUMNS)

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        if not obj.get("Event Name"):
            raise ParseError("missing field", "'Event Name' is empty")
        identity = _literal(obj.get("User ID"), "User ID")
        if identity.get("accountId") == "ANONYMOUS_PRINCIPAL":
            identity = {"type": "AWSAccount", "accountId": "anonymous"}
        ct = {
            "eventVersion": "1.08",
            "eventSource": "s3.amazonaws.com",
            "eventName": obj["Event Name"],
            "eventType": obj.get("Event Type") or "AwsApiCall",
            "eventTime": obj.get("Event DateTime"),
            "eventID": obj.get("Event ID"),
            "requestID": obj.get("Request ID"),
            "userIdentity": identity,
            "requestParameters": _literal(obj.get("Request Parameters"), "Request Parameters"),
            "sourceIPAddress": obj.get("Source IP") or None,
            "userAgent": obj.get("Request User Agent") or None,
            "readOnly": obj["Event Name"].startswith(("Get", "List", "Head")),
        }
        self._cloudtrail.clock = self.clock
        events = self._cloudtrail.parse_obj(ct, record)
        for ev in events:
            labels = ev.labels
            for col, key in (("Alert", "honeybucket_alert"), ("Alarm DateTime", "honeybucket_alarm_time"),
                             ("Repeated Attempts", "honeybucket_repeats")):
                v = str(obj.get(col) or "").strip()
                if v:
                    labels[key] = v
        return events
