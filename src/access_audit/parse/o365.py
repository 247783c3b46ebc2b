"""Microsoft 365 unified audit log records (Management Activity API / ``Search-UnifiedAuditLog``
``AuditData``, and the Sentinel ``OfficeActivity`` table), all workloads; mapped in detail for
AzureActiveDirectory, Exchange and SharePoint / OneDrive.

Mapping (ECS on the left):

* ``@timestamp`` = ``CreationTime`` (no zone: UTC), else ``TimeGenerated``, else ``p_event_time``.
* ``event.action`` = ``Operation`` (required); ``event.provider`` = ``Workload`` (``OfficeWorkload``,
  else ``EventSource``); ``event.outcome`` from ``ResultStatus`` (Succeeded/Success/True ->
  success, Failed/Failure/False -> failure, PartiallySucceeded -> unknown).
* ``event.category``: AzureActiveDirectory logins (``UserLoggedIn``, ``UserLoginFailed``) ->
  authentication; other AzureActiveDirectory operations -> iam; Exchange admin cmdlets (``New-``,
  ``Set-``, ``Remove-``..., RecordType 1) -> configuration; mailbox and file operations
  (``MailItemsAccessed``, ``FileAccessed``, ``FileDownloaded``, sharing) -> file.
* ``user.name`` = ``UserId`` (email when it is one), ``user.id`` = ``UserKey``.
* ``source`` = ``ClientIP`` / ``ActorIpAddress`` / ``Client_IPAddress`` (``1.2.3.4:port`` and
  ``[v6]:port`` are split).
* ``resource``: SharePoint/OneDrive: the file or folder (``ObjectId`` URL, ``SourceFileName``,
  type file/folder from ``ItemType``); Exchange mailbox access: the mailbox (``MailboxOwnerUPN``,
  type mailbox, ``records`` = number of items listed under ``Folders``); Exchange cmdlets: the
  object named by the ``Identity`` parameter or ``ObjectId`` (type mailbox or inbox_rule); Azure AD:
  ``ObjectId`` (type application for logins, else the target).
* ``user.target``: the mailbox owner when it is not the user; the Azure AD target user.
* Mail forwarding (``New-InboxRule``/``Set-InboxRule`` ``ForwardTo``/``ForwardAsAttachmentTo``/
  ``RedirectTo``, ``Set-Mailbox`` ``ForwardingSmtpAddress``/``ForwardingAddress``):
  ``labels.o365_forward_to`` (the addresses, ``smtp:`` removed, ``;``-separated) and
  ``labels.o365_forward_external`` (true when an address's domain is none of the organisation's:
  the domains of ``UserId``, of the mailbox and ``OrganizationName``, and their subdomains).
* ``labels``: ``o365_record_type``, ``o365_workload``, ``o365_id``, ``o365_organization``,
  ``o365_user_type``, ``o365_client_info``, ``o365_logon_type``, ``o365_event_name`` (the alert
  ``Name`` of SecurityComplianceCenter alerts, else ``Operation``), ``o365_status`` (``Status``, else
  ``ResultStatus``), ``o365_request_type`` (``ExtendedProperties`` RequestType), and
  ``user_agent.original`` from ``ExtendedProperties`` UserAgent / ``UserAgent``.

Never seen in a real record (only in Panther's hand-written fixtures): SharePoint sharing
records, the ``ExtendedProperties``/``Actor`` of Azure AD records, inbox-rule and forwarding
parameters, SecurityComplianceCenter alerts (``Name``, ``Status``). Real records seen: Exchange
admin cmdlets and UserLoggedIn (plaso), MailItemsAccessed with ``Folders`` (OTRF).
"""

from __future__ import annotations

import re
from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    Cloud,
    Endpoint,
    EventInfo,
    Outcome,
    Resource,
    User,
    UserAgent,
    UserTarget,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import email_or_none, inner, objects, unwrap, verb_type
from access_audit.parse.ecs import Fields, endpoint, has_keys

_TIME_KEYS = ("CreationTime", "TimeGenerated", "p_event_time")
_OUTCOMES = {"succeeded": Outcome.success, "success": Outcome.success, "true": Outcome.success,
             "failed": Outcome.failure, "failure": Outcome.failure, "false": Outcome.failure}
_LOGINS = frozenset({"userloggedin", "userloginfailed", "userloggedout"})
_FORWARD_PARAMS = ("ForwardTo", "ForwardAsAttachmentTo", "RedirectTo", "ForwardingSmtpAddress", "ForwardingAddress")
_FILE_OPS = re.compile(r"^(File|Folder|Sharing|AnonymousLink|SecureLink|AddedToSecureLink|Mail|Message|Send|"
                       r"SoftDelete|HardDelete|MoveToDeletedItems|Update|Copy|Move|Create)", re.I)
_IP_PORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<v4>\d{1,3}(?:\.\d{1,3}){3})):(?P<port>\d{1,5})$")


@register
class O365AuditParser(JsonParser):
    """Microsoft 365 unified audit log records, one per JSON object."""

    name = "o365.audit"
    aliases = ("m365.audit", "office365.audit")
    description = "Microsoft 365 unified audit log (Azure AD, Exchange, SharePoint...)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        if has_keys(rec, "Operation") and has_keys(rec, "RecordType"):
            return has_keys(rec, "CreationTime") or Fields(rec, self.name).raw("Type") == "OfficeActivity" or (
                has_keys(rec, "Workload") or has_keys(rec, "OfficeWorkload"))
        return False

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f = Fields(unwrap(obj), self.name)
        ts = f.time(*_TIME_KEYS)
        op = f.text("Operation")
        if op is None:
            raise ParseError("missing field", "Operation is absent", parser=self.name)
        workload = f.text("Workload") or f.text("OfficeWorkload") or f.text("EventSource")
        status = f.label("ResultStatus")
        outcome = _OUTCOMES.get((status or "").lower(), Outcome.unknown)
        if op.lower() == "userloginfailed":
            outcome = Outcome.failure
        low = op.lower()
        wl = (workload or "").lower()
        if wl == "azureactivedirectory" and low in _LOGINS:
            category, etype = ["authentication"], ["start" if low != "userloggedout" else "end"]
        elif wl == "azureactivedirectory":
            category, etype = ["iam"], [verb_type(op.split(" ", 1)[0])]
        elif "-" in op and op.split("-", 1)[0].isalpha():  # an Exchange/SharePoint admin cmdlet
            category, etype = ["configuration"], [verb_type(op.split("-", 1)[0])]
        elif _FILE_OPS.match(op) or wl in ("sharepoint", "onedrive"):
            category, etype = ["file"], [verb_type(re.sub(r"^(File|Folder|Mail|Message)", "", op) or op)]
        else:
            category, etype = ["configuration"], ["info"]
        if low in ("mailitemsaccessed", "fileaccessed", "filedownloaded", "filepreviewed"):
            etype = ["access"]

        uid = f.text("UserId")
        user = User(name=uid, id=f.text("UserKey", numbers=True), email=email_or_none(uid)) if uid else None
        params = _params(f)
        labels: dict[str, str] = {}
        for key, label in (("RecordType", "o365_record_type"), ("Id", "o365_id"),
                           ("OrganizationName", "o365_organization"), ("UserType", "o365_user_type"),
                           ("ClientInfoString", "o365_client_info"), ("Logon_Type", "o365_logon_type"),
                           ("LogonType", "o365_logon_type"), ("OrganizationId", "o365_organization_id")):
            if label not in labels and (v := f.label(key)) is not None:
                labels[label] = v
        if workload:
            labels["o365_workload"] = workload
        labels["o365_event_name"] = f.text("Name") or op
        if (st := f.label("Status") or status) is not None:
            labels["o365_status"] = st
        ext = {p.text("Name"): p.label("Value") for p in objects(f, "ExtendedProperties")}
        if rt := ext.get("RequestType"):
            labels["o365_request_type"] = rt

        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=category, type=etype, action=op, outcome=outcome,
                            reason=ext.get("ResultStatusDetail") if outcome is Outcome.failure else None,
                            provider=workload),
            user=user,
            labels=labels,
            cloud=Cloud(provider="microsoft365", account={"id": oid} if (oid := f.text("OrganizationId")) else None),
        )
        ev.source = _client_ip(f.text("ClientIP") or f.text("ActorIpAddress") or f.text("Client_IPAddress")
                               or f.text("ClientIPAddress"))
        if agent := (ext.get("UserAgent") or f.text("UserAgent")):
            ev.user_agent = UserAgent(original=agent)
        self._resource(f, ev, wl, low, params)
        self._forwarding(f, ev, params)
        return [ev]

    def _resource(self, f: Fields, ev: AccessEvent, wl: str, op: str, params: dict[str, str]) -> None:
        obj_id = f.text("ObjectId") or f.text("OfficeObjectId")
        if wl in ("sharepoint", "onedrive") or f.has("SiteUrl"):
            item = (f.text("ItemType") or "file").lower()
            ev.resource = Resource(type=item if item in ("file", "folder", "list", "site", "web") else "file",
                                   id=obj_id, name=f.text("SourceFileName") or obj_id,
                                   owner=f.text("SiteUrl"))
            if (target := f.text("TargetUserOrGroupName")) is not None:
                ev.user = ev.user or User()
                ev.user.target = UserTarget(name=target, email=email_or_none(target))
            return
        owner = f.text("MailboxOwnerUPN")
        if owner is not None:
            items = 0
            for folder in objects(f, "Folders"):
                items += len(folder.list_at("FolderItems"))
            ev.resource = Resource(type="mailbox", id=f.text("MailboxGuid"), name=owner, owner=owner,
                                   records=items or None)
            if ev.user is not None and ev.user.name and owner.lower() != ev.user.name.lower():
                ev.user.target = UserTarget(name=owner, email=email_or_none(owner))
            return
        if wl == "exchange" and "-" in op:
            ident = params.get("Identity") or params.get("Mailbox") or obj_id
            rtype = "inbox_rule" if "inboxrule" in op else ("mailbox" if "mailbox" in op else None)
            if ident or rtype:
                ev.resource = Resource(type=rtype, name=ident, id=obj_id)
            return
        if wl == "azureactivedirectory":
            if op in _LOGINS:
                ev.resource = Resource(type="application", id=obj_id) if obj_id else None
                return
            targets = [t for t in objects(f, "Target") if t.text("ID")]
            for t in targets:
                tid = t.text("ID") or ""
                if "@" in tid:
                    ev.user = ev.user or User()
                    ev.user.target = UserTarget(name=tid, email=email_or_none(tid))
                    break
            if obj_id:
                ev.resource = Resource(type="user" if "@" in obj_id else None, name=obj_id)
            return
        if obj_id:
            ev.resource = Resource(name=obj_id)

    def _forwarding(self, f: Fields, ev: AccessEvent, params: dict[str, str]) -> None:
        found: list[str] = []
        for key in _FORWARD_PARAMS:
            if (v := params.get(key)) is not None:
                for addr in re.split(r"[;,]", v):
                    addr = re.sub(r"(?i)^smtp:", "", addr.strip().strip('"'))
                    if addr:
                        found.append(addr)
        if not found:
            return
        ev.labels["o365_forward_to"] = ";".join(found)
        org: set[str] = set()
        for name in (f.text("UserId"), params.get("Identity"), params.get("Mailbox"), f.text("OrganizationName")):
            if name:
                dom = name.rsplit("@", 1)[-1].lower() if "@" in name else (name.lower() if "." in name and
                                                                             "/" not in name and " " not in name
                                                                             else None)
                if dom:
                    org.add(dom)
        external = False
        for addr in found:
            if "@" not in addr:
                continue  # a recipient object (ForwardingAddress), inside the organisation
            dom = addr.rsplit("@", 1)[1].lower()
            if not any(dom == d or dom.endswith("." + d) for d in org):
                external = True
        ev.labels["o365_forward_external"] = "true" if external else "false"


def _params(f: Fields) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in objects(f, "Parameters"):
        name = p.text("Name")
        if name is not None and (v := p.label("Value")) is not None:
            out[name] = v
    return out


def _client_ip(text: str | None) -> Endpoint | None:
    if not text:
        return None
    m = _IP_PORT.match(text.strip())
    if m:
        e = endpoint(m.group("v6") or m.group("v4"))
        e.port = int(m.group("port"))
        return e
    return endpoint(text)
