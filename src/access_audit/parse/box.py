"""Box enterprise events (``box.event``), the event objects of Box's Events API
(``/2.0/events?stream_type=admin_logs``), one record per JSON object. A Panther test row
``{"event": {...}}`` is read as its ``event``.

Mapping (ECS on the left):

* ``@timestamp`` = ``created_at`` (RFC 3339 with an offset), else ``recorded_at``, else Panther's
  ``p_event_time`` (``2021-06-04 09:59:53.650807``, UTC).
* ``event.action`` = ``event_type`` (required: LOGIN, FAILED_LOGIN, DOWNLOAD, PREVIEW, DELETE,
  ITEM_SHARED_CREATE...); ``event.category`` / ``type`` / ``outcome`` by the table ``EVENT_TYPES``
  (logins authentication; content events file; permission and sharing changes iam; Shield alerts
  and malicious-file marks ``kind`` alert, intrusion_detection / malware). An event type not in
  the table is category file when its ``source`` is a file or folder, else none, type info.
* ``user`` = ``created_by`` (the actor, required: ``login`` is the e-mail, ``name``, ``id``).
* ``source.ip`` = ``ip_address``.
* ``resource`` = ``source``, what the event was about: a file or folder (type ``item_type``,
  id = ``item_id``, name = ``item_name``, owner = ``owned_by.login``; or a full file/folder object
  with ``type`` / ``id`` / ``name``) or a user (type user, name = ``login``, else ``name``), who is
  then also ``user.target`` when it is not the actor.
* ``additional_details`` (an object, or a JSON string as Panther keeps it): a Shield alert's
  ``shield_alert.rule_category`` is ``event.reason``, ``risk_score`` ``labels.box_risk_score``, and
  ``alert_summary.description`` the ``message``. Details that are not JSON are ignored (they stay
  in ``event.original``).
* labels ``box_event_id`` (``event_id``), ``box_session_id``, ``box_parent_folder``
  (``source.parent.name``).

**Never seen in a real record**: every field (the datasets hold only Panther's hand-written
fixtures, 27 of 31 without any time: dead letters ``missing timestamp``); ``created_at``,
``recorded_at``, ``event_id``, ``session_id`` and the event types other than those of the
fixtures come from Box's documentation.
"""

from __future__ import annotations

from typing import Any

import orjson

from access_audit.core.errors import ParseError
from access_audit.core.events import AccessEvent, EventInfo, Outcome, Resource, User, UserTarget
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import email_or_none, inner, open_record
from access_audit.parse.ecs import Fields, endpoint

_TIME_KEYS = ("created_at", "recorded_at", "p_event_time")

# event_type -> (kind, category, type, outcome)
EVENT_TYPES: dict[str, tuple[str, str, str, Outcome]] = {
    "LOGIN": ("event", "authentication", "start", Outcome.success),
    "ADMIN_LOGIN": ("event", "authentication", "start", Outcome.success),
    "FAILED_LOGIN": ("event", "authentication", "start", Outcome.failure),
    "ADD_LOGIN_ACTIVITY_DEVICE": ("event", "authentication", "info", Outcome.success),
    "DEVICE_TRUST_CHECK_FAILED": ("event", "authentication", "denied", Outcome.failure),
    "UPLOAD": ("event", "file", "creation", Outcome.success),
    "DOWNLOAD": ("event", "file", "access", Outcome.success),
    "PREVIEW": ("event", "file", "access", Outcome.success),
    "ITEM_OPEN": ("event", "file", "access", Outcome.success),
    "ITEM_DOWNLOAD": ("event", "file", "access", Outcome.success),
    "ITEM_PREVIEW": ("event", "file", "access", Outcome.success),
    "EDIT": ("event", "file", "change", Outcome.success),
    "COPY": ("event", "file", "creation", Outcome.success),
    "MOVE": ("event", "file", "change", Outcome.success),
    "RENAME": ("event", "file", "change", Outcome.success),
    "DELETE": ("event", "file", "deletion", Outcome.success),
    "UNDELETE": ("event", "file", "change", Outcome.success),
    "ITEM_SHARED_CREATE": ("event", "iam", "creation", Outcome.success),
    "ITEM_SHARED_UPDATE": ("event", "iam", "change", Outcome.success),
    "ITEM_SHARED_UNSHARE": ("event", "iam", "deletion", Outcome.success),
    "SHARE": ("event", "iam", "creation", Outcome.success),
    "UNSHARE": ("event", "iam", "deletion", Outcome.success),
    "CHANGE_FOLDER_PERMISSION": ("event", "iam", "change", Outcome.success),
    "ACCESS_GRANTED": ("event", "iam", "creation", Outcome.success),
    "ACCESS_REVOKED": ("event", "iam", "deletion", Outcome.success),
    "COLLABORATION_INVITE": ("event", "iam", "creation", Outcome.success),
    "COLLABORATION_ACCEPT": ("event", "iam", "change", Outcome.success),
    "COLLABORATION_ROLE_CHANGE": ("event", "iam", "change", Outcome.success),
    "COLLABORATION_REMOVE": ("event", "iam", "deletion", Outcome.success),
    "SHIELD_ALERT": ("alert", "intrusion_detection", "info", Outcome.unknown),
    "FILE_MARKED_MALICIOUS": ("alert", "malware", "info", Outcome.unknown),
    "CONTENT_WORKFLOW_UPLOAD_POLICY_VIOLATION": ("alert", "intrusion_detection", "denied", Outcome.failure),
    "CONTENT_WORKFLOW_SHARING_POLICY_VIOLATION": ("alert", "intrusion_detection", "denied", Outcome.failure),
}
_ITEM_TYPES = frozenset({"file", "folder", "web_link"})


def _actor(f: Fields) -> User:
    c = f.obj_at("created_by")
    if c is None:
        raise ParseError("missing field", "created_by is absent", parser=f.parser)
    login, name, uid = c.text("login"), c.text("name"), c.text("id", numbers=True)
    if not (login or name or uid):
        raise ParseError("missing field", "created_by has no login, name or id", parser=f.parser)
    return User(name=login or name, id=uid, email=email_or_none(login), full_name=name)


def _details(f: Fields) -> Fields | None:
    """``additional_details`` as an object; a string that is not a JSON object reads as absent."""
    v = f.raw("additional_details")
    if isinstance(v, str):
        try:
            v = orjson.loads(v)
        except orjson.JSONDecodeError:
            return None
    return Fields(v, f.parser, "additional_details.") if isinstance(v, dict) else None


@register
class BoxEventParser(JsonParser):
    """Box enterprise (admin_logs) events."""

    name = "box.event"
    aliases = ("box.events", "box")
    description = "Box enterprise events (Events API admin_logs)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        et = rec.get("event_type")
        return rec.get("type") == "event" and isinstance(et, str) and et.isupper()

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, action, ts = open_record(obj, self.name, "event_type", _TIME_KEYS)
        user = _actor(f)
        resource = None
        src = f.obj_at("source")
        if src is not None:
            item_type = src.text("item_type")
            if item_type is not None:
                owner = src.obj_at("owned_by")
                resource = Resource(type=item_type, id=src.text("item_id", numbers=True), name=src.text("item_name"),
                                    owner=(owner.text("login") or owner.text("name")) if owner else None)
            elif (stype := src.text("type")) in _ITEM_TYPES:
                resource = Resource(type=stype, id=src.text("id", numbers=True), name=src.text("name"))
            elif stype == "user":
                login, sid = src.text("login"), src.text("id", numbers=True)
                resource = Resource(type="user", id=sid, name=login or src.text("name"))
                if (login and login != user.name) or (not login and sid and sid != user.id):
                    user.target = UserTarget(name=login, id=sid, email=email_or_none(login))
        kind, category, etype, outcome = EVENT_TYPES.get(
            action.upper(), ("event", "file" if resource and resource.type in _ITEM_TYPES else "", "info",
                             Outcome.unknown))
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind=kind, category=[category] if category else [], type=[etype], action=action,
                            outcome=outcome, provider="box"),
            user=user,
            resource=resource,
            labels=f.labels((("event_id", "box_event_id"), ("session_id", "box_session_id"),
                             ("source.parent.name", "box_parent_folder"))),
        )
        if (ip := f.text("ip_address")) is not None:
            ev.source = endpoint(ip)
        if (details := _details(f)) is not None and (alert := details.obj_at("shield_alert")) is not None:
            ev.event.reason = alert.text("rule_category")
            if (score := alert.label("risk_score")) is not None:
                ev.labels["box_risk_score"] = score
            ev.message = alert.text("alert_summary.description")
        return [ev]
