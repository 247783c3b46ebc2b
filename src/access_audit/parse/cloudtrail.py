"""AWS CloudTrail records: one record per JSON object, or a CloudTrail file ``{"Records": [...]}``.

Mapping (ECS names on the left):

* ``@timestamp``: ``eventTime``; records shipped through Logstash may have only ``@timestamp``,
  and Panther data-lake rows only ``p_event_time`` (Panther's normalised copy of the event time),
  which are used in that order when ``eventTime`` is absent.
* ``event.action`` = ``eventName`` (required), ``event.provider`` = ``eventSource``.
* ``event.outcome``: ``failure`` when ``errorCode`` is set (``event.reason`` = the code,
  ``message`` = ``errorMessage``); for ``ConsoleLogin`` the ``responseElements.ConsoleLogin``
  value (``Success``/``Failure``); otherwise ``success`` (CloudTrail records failed calls with
  an error code).
* ``event.category``: ``authentication`` for sign-in (``ConsoleLogin``, any ``signin.amazonaws.com``
  event) and STS credential issuance (``AssumeRole*``, ``GetSessionToken``,
  ``GetFederationToken``); ``iam`` for ``iam.amazonaws.com``; ``configuration`` for the rest.
  ``event.type``: ``start`` for authentication, else from the verb (``Create``... -> creation,
  ``Delete``... -> deletion, read-only/``Get``/``List``/``Describe`` -> access, else change),
  plus ``user``/``group`` for IAM calls on users/groups.
* ``user``: from ``userIdentity``: ``userName`` for IAM users; for an assumed role the session
  name from the ARN (``assumed-role/<role>/<session>``) with the role in ``user.roles``;
  ``root`` for the root user; the federated user's name; the calling service (``invokedBy``) for
  AWS services. ``user.id`` = ``principalId``, ``user.domain`` = the identity's ``accountId``.
* ``user.target.name`` = ``requestParameters.userName`` on IAM calls (the user acted upon, which
  may be the caller itself: a rule compares the two).
* ``authentication.mfa``: ``additionalEventData.MFAUsed`` (Yes/No), else the session's
  ``mfaAuthenticated`` attribute.
* ``source``: ``sourceIPAddress``, as ``ip`` when it is an address, ``domain`` when it names a
  service (``ec2.amazonaws.com``), and always ``address``. ``user_agent.original`` = ``userAgent``.
* ``cloud``: provider ``aws``, ``awsRegion``, account = ``recipientAccountId``.
* ``resource``: the S3 object (``bucketName``/``key``, type ``object``) or bucket (type
  ``bucket``) of the request; for IAM the role or group named in the request; else the first
  entry of ``resources`` with an ARN.
* ``labels``: ``aws_event_id``, ``aws_event_type``, ``aws_identity_type``, ``aws_identity_arn``,
  ``aws_access_key_id``, ``aws_read_only``, ``aws_vpc_endpoint_id`` when present.
"""

from __future__ import annotations

from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    Authentication,
    Cloud,
    EventInfo,
    Outcome,
    Resource,
    User,
    UserAgent,
    UserTarget,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import inner, required, unwrap
from access_audit.parse.ecs import Fields, endpoint, has_keys

_STS_AUTH = frozenset({"GetSessionToken", "GetFederationToken"})
_SNIFF_COMPANIONS = ("eventSource", "userIdentity", "eventVersion", "awsRegion", "recipientAccountId",
                     "requestParameters", "responseElements")
_READ_VERBS = ("Get", "List", "Describe", "Head", "Lookup", "BatchGet", "Search", "Download")
_CREATE_VERBS = ("Create", "Add", "Register", "Run", "Import", "Allocate")
_DELETE_VERBS = ("Delete", "Remove", "Terminate", "Deregister", "Release")
_RESOURCE_TYPES = {"AWS::S3::Object": "object", "AWS::S3::Bucket": "bucket"}
_LABELS = (("eventID", "aws_event_id"), ("eventType", "aws_event_type"), ("vpcEndpointId", "aws_vpc_endpoint_id"))


@register
class CloudTrailParser(JsonParser):
    """AWS CloudTrail records, single or as a CloudTrail log file object (one event per record)."""

    name = "aws.cloudtrail"
    aliases = ("cloudtrail",)
    description = "AWS CloudTrail records (one per object, or a {\"Records\": [...]} file)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        obj = inner(obj)  # a Panther test row {"event": {...}} holds the vendor record
        if isinstance(obj.get("Records"), list):
            return True
        # eventSource is sometimes missing in exported rows; eventName plus any CloudTrail
        # envelope field is still unmistakable.
        return has_keys(obj, "eventName") and any(has_keys(obj, k) for k in _SNIFF_COMPANIONS)

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        obj = unwrap(obj)
        records = obj.get("Records")
        if records is None:
            return [self._record(Fields(obj, self.name))]
        if not isinstance(records, list):
            raise ParseError("wrong field type", f"Records is {type(records).__name__}, expected list",
                             parser=self.name)
        events = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise ParseError("wrong field type", f"Records[{i}] is {type(rec).__name__}, expected object",
                                 parser=self.name)
            ev = self._record(Fields(rec, self.name, f"Records[{i}]."))
            ev.raw_obj = rec  # type: ignore[misc]  # Sigma reads its own record
            events.append(ev)
        return events

    def _record(self, f: Fields) -> AccessEvent:
        ts = f.time("eventTime", "@timestamp", "p_event_time")
        action = required(f, "eventName")
        provider = f.text("eventSource")
        error = f.text("errorCode", numbers=True)
        request = f.obj_at("requestParameters", json_string=True)
        response = f.obj_at("responseElements", json_string=True)
        extra = f.obj_at("additionalEventData", json_string=True)
        read_only = f.flag("readOnly")

        is_auth = (action == "ConsoleLogin" or provider == "signin.amazonaws.com"
                   or action.startswith("AssumeRole") or action in _STS_AUTH)
        is_iam = provider == "iam.amazonaws.com"
        if is_auth:
            category, types = ["authentication"], ["start"]
        else:
            category = ["iam" if is_iam else "configuration"]
            types = [_verb_type(action, read_only)]
            if is_iam and "User" in action:
                types.append("user")
            elif is_iam and "Group" in action:
                types.append("group")

        outcome = Outcome.success
        console = response.text("ConsoleLogin") if response and action == "ConsoleLogin" else None
        if error is not None or (console and console.lower() == "failure"):
            outcome = Outcome.failure
        reason = error or (f.text("errorMessage") if outcome is Outcome.failure else None)

        labels = f.labels(_LABELS)
        if read_only is not None:
            labels["aws_read_only"] = "true" if read_only else "false"

        user, mfa = self._identity(f, labels)
        if extra and (used := extra.flag("MFAUsed")) is not None:
            mfa = used
        if is_iam and request and (target := request.text("userName")):
            user = user or User()
            user.target = UserTarget(name=target)

        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=category, type=types, action=action, provider=provider,
                            outcome=outcome, reason=reason),
            user=user,
            cloud=Cloud(provider="aws", region=f.text("awsRegion"),
                        account=_account(f.text("recipientAccountId", numbers=True)
                                         or (user.domain if user else None))),
            resource=self._resource(f, request, is_iam),
            labels=labels,
            message=f.text("errorMessage"),
        )
        if mfa is not None or action.startswith("AssumeRoleWith"):
            method = {"AssumeRoleWithSAML": "saml", "AssumeRoleWithWebIdentity": "web_identity"}.get(action)
            ev.authentication = Authentication(method=method, mfa=mfa)
        if (ip := f.text("sourceIPAddress")) is not None:
            ev.source = endpoint(ip)
        if (agent := f.text("userAgent")) is not None:
            ev.user_agent = UserAgent(original=agent)
        return ev

    def _identity(self, f: Fields, labels: dict[str, str]) -> tuple[User | None, bool | None]:
        ui = f.obj_at("userIdentity", json_string=True)
        if ui is None:
            return None, None
        kind = ui.text("type")
        arn = ui.text("arn")
        name = ui.text("userName")
        roles: list[str] = []
        for key, label in (("type", "aws_identity_type"), ("arn", "aws_identity_arn"),
                           ("accessKeyId", "aws_access_key_id")):
            if (v := ui.text(key)) is not None:
                labels[label] = v
        resource_part = arn.split(":", 5)[5] if arn and arn.count(":") >= 5 else ""
        if kind == "AssumedRole" or resource_part.startswith("assumed-role/"):
            parts = resource_part.split("/")
            role = parts[1] if len(parts) > 1 else ui.text("sessionContext.sessionIssuer.userName")
            name = (parts[2] if len(parts) > 2 else None) or role
            roles = [role] if role else []
        elif kind == "FederatedUser" or resource_part.startswith("federated-user/"):
            name = name or resource_part.partition("/")[2] or None
        elif kind == "Root":
            name = name or "root"
        elif kind == "AWSService":
            name = name or ui.text("invokedBy")
        elif name is None and resource_part.startswith("user/"):
            name = resource_part.rsplit("/", 1)[1]
        user_id = ui.text("principalId", numbers=True)
        account = ui.text("accountId", numbers=True)
        mfa = ui.flag("sessionContext.attributes.mfaAuthenticated")
        if not (name or user_id or account):
            return None, mfa
        return User(name=name, id=user_id, domain=account, roles=roles), mfa

    def _resource(self, f: Fields, request: Fields | None, is_iam: bool) -> Resource | None:
        if request is not None:
            bucket = request.text("bucketName")
            key = request.text("key")
            if bucket and key:
                return Resource(type="object", id=f"arn:aws:s3:::{bucket}/{key}", name=f"{bucket}/{key}")
            if bucket:
                return Resource(type="bucket", id=f"arn:aws:s3:::{bucket}", name=bucket)
            if is_iam:
                for field, rtype in (("roleName", "role"), ("groupName", "group")):
                    if value := request.text(field):
                        return Resource(type=rtype, name=value)
        for item in f.list_at("resources"):
            # Some exports stringify the entries; only objects carry a usable ARN.
            if isinstance(item, dict):
                res = Fields(item, self.name, f"{f.prefix}resources[].")
                arn = res.text("ARN") or res.text("arn")
                if arn:
                    aws_type = res.text("type")
                    return Resource(type=_RESOURCE_TYPES.get(aws_type or "", aws_type), id=arn,
                                    name=arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or arn,
                                    owner=res.text("accountId", numbers=True))
        return None


def _verb_type(action: str, read_only: bool | None) -> str:
    if action.startswith(_CREATE_VERBS):
        return "creation"
    if action.startswith(_DELETE_VERBS):
        return "deletion"
    if read_only or action.startswith(_READ_VERBS):
        return "access"
    return "change"


def _account(account_id: str | None) -> dict[str, str] | None:
    return {"id": account_id} if account_id else None
