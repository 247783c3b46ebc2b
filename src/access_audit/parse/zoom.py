"""Zoom operation logs (``zoom.operation``, ``/report/operationlogs``: what admins changed) and
sign-in/sign-out activity (``zoom.activity``, ``/report/activities``), one record per JSON
object. A Panther test row ``{"event": {...}}`` is read as its ``event``.

Common: ``@timestamp`` = ``time`` (RFC 3339 in the API; Panther writes ``2022-12-16 18:15:38``,
UTC), else ``p_event_time``.

``zoom.operation``:

* ``event.action`` = ``action`` (required: Add, Update, Delete, Batch Update, SCIM API -
  Update...); ``event.type`` from its last word (Add -> creation, Delete -> deletion, else
  change); ``event.category`` iam for ``category_type`` User, User Group, Group, Role and Sub
  Account, else configuration; outcome success (the log holds operations that were done).
* ``user`` = ``operator`` (required; the admin's e-mail address).
* ``resource`` by ``category_type``: User -> the user (type user, name = the first e-mail address
  in ``operation_detail``, also ``user.target``); User Group / Group -> the group (type group,
  name from ``Add|Edit|Delete Group <name>``); Role -> type role; Meeting, Webinar, Recording ->
  that type; Account and others -> the Zoom account (type account, name Zoom).
* ``message`` = ``operation_detail``; labels ``zoom_category_type``, ``zoom_setting`` (the part
  of ``operation_detail`` before ``  - ``: Security, Sign-in Methods, Change Role...).

``zoom.activity``:

* ``event.action`` = ``type`` (required: Sign in, Sign out); ``event.category`` authentication,
  ``type`` start for a sign-in, end for a sign-out, else info; outcome success (the report lists
  completed sign-ins and sign-outs).
* ``user`` = ``email`` (required); ``source.ip`` = ``ip_address``; ``user_agent.original`` =
  ``client_type`` and ``version``; ``resource`` = the Zoom account (type application, name Zoom);
  labels ``zoom_client_type``, ``zoom_version``.

**Never seen in a real record**: every field (the datasets hold only Panther's hand-written
fixtures: 28 of 29 operation records and the one activity record have a time). The
``category_type`` values other than User, User Group and Account, the actions other than Add,
Update, Batch Update and SCIM API - Update, and the activity ``type`` Sign out come from Zoom's
documentation.
"""

from __future__ import annotations

import re
from typing import Any

from access_audit.core.events import AccessEvent, EventInfo, Outcome, Resource, User, UserAgent, UserTarget
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import email_or_none, inner, open_record, required, verb_type
from access_audit.parse.ecs import endpoint

_TIME_KEYS = ("time", "p_event_time")
_IAM = frozenset({"user", "user group", "group", "role", "sub account"})
_OWN_TYPES = {"role": "role", "meeting": "meeting", "webinar": "webinar", "recording": "recording",
              "cloud recording": "recording"}
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_GROUP = re.compile(r"^(?:Add|Edit|Update|Delete|Remove) Group (.+?)(?:\s{2,}-|$)")
_ACTIVITY = {"sign in": "start", "sign out": "end"}


@register
class ZoomOperationParser(JsonParser):
    """Zoom operation logs (admin changes to users, groups, roles and account settings)."""

    name = "zoom.operation"
    aliases = ("zoom.operationlogs",)
    description = "Zoom operation logs (admin changes)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        return "operator" in rec and "category_type" in rec and "action" in rec

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, action, ts = open_record(obj, self.name, "action", _TIME_KEYS)
        operator = required(f, "operator")
        category_type = f.text("category_type") or ""
        detail = f.text("operation_detail")
        low = category_type.lower()
        user = User(name=operator, email=email_or_none(operator))
        if low == "user":
            m = _EMAIL.search(detail or "")
            resource = Resource(type="user", name=m.group(0) if m else None)
            if m and m.group(0) != operator:
                user.target = UserTarget(name=m.group(0), email=m.group(0))
        elif low in ("user group", "group"):
            m = _GROUP.match(detail or "")
            resource = Resource(type="group", name=m.group(1).strip() if m else None)
        elif low in _OWN_TYPES:
            resource = Resource(type=_OWN_TYPES[low])
        else:
            resource = Resource(type="account", name="Zoom")
        labels = {"zoom_category_type": category_type} if category_type else {}
        if detail and "  - " in detail:
            labels["zoom_setting"] = detail.split("  - ", 1)[0].strip()
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=["iam" if low in _IAM else "configuration"],
                            type=[verb_type((action.split() or [action])[-1])], action=action, outcome=Outcome.success,
                            provider="zoom"),
            user=user,
            resource=resource,
            labels=labels,
            message=detail,
        )
        return [ev]


@register
class ZoomActivityParser(JsonParser):
    """Zoom sign-in and sign-out activity."""

    name = "zoom.activity"
    aliases = ("zoom.activities",)
    description = "Zoom sign-in and sign-out activity"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        kind = rec.get("type")
        return isinstance(kind, str) and kind.lower() in _ACTIVITY and "email" in rec

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, kind, ts = open_record(obj, self.name, "type", _TIME_KEYS)
        email = required(f, "email")
        client, version = f.text("client_type"), f.text("version", numbers=True)
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=["authentication"], type=[_ACTIVITY.get(kind.lower(), "info")],
                            action=kind, outcome=Outcome.success, provider="zoom"),
            user=User(name=email, email=email_or_none(email)),
            resource=Resource(type="application", name="Zoom"),
            labels={k: v for k, v in (("zoom_client_type", client), ("zoom_version", version)) if v},
        )
        if (ip := f.text("ip_address")) is not None:
            ev.source = endpoint(ip)
        if client:
            ev.user_agent = UserAgent(original=f"{client} {version}" if version else client)
        return [ev]
