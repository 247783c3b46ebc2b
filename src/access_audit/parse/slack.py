"""Slack audit logs (``slack.audit``), the entries of the Audit Logs API (``/audit/v1/logs``,
Enterprise Grid), one record per JSON object. A Panther test row ``{"event": {...}}`` is read as
its ``event``.

Mapping (ECS on the left):

* ``@timestamp`` = ``date_create`` (epoch seconds in the API; Panther writes
  ``2022-07-28 16:48:14``, UTC), else ``p_event_time``.
* ``event.action`` = ``action`` (required: user_login, file_downloaded, role_change_to_admin,
  app_installed, pref.sso_setting_changed, anomaly...); ``event.category`` by the action's family
  (``_FAMILIES``: logins and logouts authentication, session resets session, ``file_*`` file,
  role, owner, permission and membership changes iam, apps, preferences, channels, workspaces and
  the compliance settings configuration); ``event.type`` from the action's words (created /
  added / installed -> creation, deleted / removed / uninstalled -> deletion, downloaded /
  previewed -> access, login start, logout and session resets end, else change);
  ``event.outcome`` failure for ``*_failed`` / ``*_blocked``, else success. ``anomaly`` and
  ``file_malicious_content_detected`` are ``kind`` alert, category intrusion_detection (outcome
  unknown; an anomaly's ``details.reason`` list is ``event.reason``).
* ``user`` = ``actor.user`` (required: ``email``, ``id``, ``name``; ``user.name`` is the e-mail,
  else the name); labels ``slack_team`` (``actor.user.team``).
* ``source.ip`` = ``context.ip_address``; ``user_agent.original`` = ``context.ua``; labels
  ``slack_workspace`` (``context.location.domain``), ``slack_location_type``,
  ``slack_session_id`` (``context.session_id``).
* ``resource`` = ``entity`` (type = ``entity.type``: user, workspace, enterprise, channel, file,
  app, workflow...; id and name of the object under that key: a channel's ``name`` and label
  ``slack_channel_privacy``, a file's ``name`` or ``title``, a workspace's ``name`` or ``domain``,
  a user's ``email`` or ``name``, who is then ``user.target`` unless it is the actor); without an
  entity, the workspace or enterprise of ``context.location``.
* label ``slack_audit_id`` (``id``).

**Never seen in a real record**: every field (the datasets hold only Panther's hand-written
fixtures: 34 of 66 have a ``date_create``, the rest are dead letters ``missing timestamp``);
``context.session_id``, the epoch ``date_create``, the channel, file and enterprise entities and
the actions user_login, user_login_failed, file_downloaded, file_downloaded_blocked come from
Slack's documentation.
"""

from __future__ import annotations

from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import AccessEvent, EventInfo, Outcome, Resource, User, UserAgent, UserTarget
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import email_or_none, inner, open_record
from access_audit.parse.ecs import Fields, endpoint

_TIME_KEYS = ("date_create", "p_event_time")
_ALERTS = frozenset({"anomaly", "file_malicious_content_detected"})
# (prefix or exact action, category), first match wins
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("user_login", "authentication"), ("user_logout", "authentication"),
    ("user_session", "session"), ("bulk_session", "session"),
    ("file_", "file"),
    ("role_change", "iam"), ("owner_transferred", "iam"), ("service_owner", "iam"), ("permissions_", "iam"),
    ("user_", "iam"), ("guest_", "iam"),
    ("app_", "configuration"), ("org_app_", "configuration"), ("bot_token", "configuration"),
    ("pref.", "configuration"), ("public_channel", "configuration"), ("private_channel", "configuration"),
    ("channel_", "configuration"), ("workspace_", "configuration"), ("organization_", "configuration"),
    ("ekm_", "configuration"), ("idp_", "configuration"), ("legal_hold", "configuration"),
    ("barrier_", "configuration"), ("intune_", "configuration"), ("native_dlp", "configuration"),
)
_CREATE = frozenset({"created", "added", "installed", "granted", "assigned", "uploaded", "invited", "enrolled",
                     "joined", "join", "approved"})
_DELETE = frozenset({"deleted", "removed", "uninstalled", "deactivated", "revoked", "unenrolled", "unenroll",
                     "archive", "archived", "leave", "released"})
_ACCESS = frozenset({"downloaded", "previewed", "viewed", "exported"})


def _category(action: str) -> str | None:
    for prefix, category in _FAMILIES:
        if action.startswith(prefix):
            return category
    return None


def _type(action: str, category: str | None) -> str:
    if action == "user_login" or action == "user_login_failed":
        return "start"
    if action == "user_logout" or category == "session":
        return "end"
    words = set(action.replace(".", "_").split("_"))
    if words & _ACCESS:
        return "access"
    if words & _DELETE:
        return "deletion"
    if words & _CREATE:
        return "creation"
    return "change"


def _entity(f: Fields) -> tuple[Resource | None, Fields | None, str | None]:
    """(resource, the entity's user object when it is a user, channel privacy)."""
    ent = f.obj_at("entity")
    if ent is not None and (etype := ent.text("type")) is not None:
        sub = ent.obj_at(etype)
        if sub is None:
            return Resource(type=etype), None, None
        eid = sub.text("id", numbers=True)
        if etype == "user":
            return Resource(type="user", id=eid, name=sub.text("email") or sub.text("name")), sub, None
        if etype == "file":
            return Resource(type="file", id=eid, name=sub.text("name") or sub.text("title")), None, None
        name = sub.text("name") or sub.text("domain")
        return Resource(type=etype, id=eid, name=name), None, sub.label("privacy") if etype == "channel" else None
    loc = f.obj_at("context.location")
    if loc is not None and (loc.has("id") or loc.has("name")):
        return Resource(type=loc.text("type") or "workspace", id=loc.text("id"),
                        name=loc.text("name") or loc.text("domain")), None, None
    return None, None, None


@register
class SlackAuditParser(JsonParser):
    """Slack audit log entries (Enterprise Grid Audit Logs API)."""

    name = "slack.audit"
    aliases = ("slack.auditlogs", "slack")
    description = "Slack audit logs (Audit Logs API)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        actor = rec.get("actor")
        return (isinstance(rec.get("action"), str) and isinstance(actor, dict) and "user" in actor
                and isinstance(rec.get("context"), dict))

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, action, ts = open_record(obj, self.name, "action", _TIME_KEYS)
        actor = f.obj_at("actor.user")
        if actor is None:
            raise ParseError("missing field", "actor.user is absent", parser=self.name)
        email, uname, uid = actor.text("email"), actor.text("name"), actor.text("id")
        if not (email or uname or uid):
            raise ParseError("missing field", "actor.user has no email, name or id", parser=self.name)
        user = User(name=email or uname or uid, id=uid, email=email_or_none(email))
        resource, target, privacy = _entity(f)
        if target is not None:
            t_email, t_id = target.text("email"), target.text("id")
            if (t_id and t_id != uid) or (not t_id and t_email and t_email != email):
                user.target = UserTarget(name=t_email or target.text("name"), id=t_id, email=email_or_none(t_email))
        alert = action in _ALERTS
        category = "intrusion_detection" if alert else _category(action)
        if alert:
            outcome = Outcome.unknown
        elif action.endswith(("_failed", "_blocked")):
            outcome = Outcome.failure
        else:
            outcome = Outcome.success
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="alert" if alert else "event", category=[category] if category else [],
                            type=["info" if alert else _type(action, category)], action=action, outcome=outcome,
                            provider="slack"),
            user=user,
            resource=resource,
        )
        ev.labels.update(f.labels((("id", "slack_audit_id"), ("actor.user.team", "slack_team"),
                                   ("context.location.domain", "slack_workspace"),
                                   ("context.location.type", "slack_location_type"),
                                   ("context.session_id", "slack_session_id"))))
        if privacy is not None:
            ev.labels["slack_channel_privacy"] = privacy
        if (ip := f.text("context.ip_address")) is not None:
            ev.source = endpoint(ip)
        if (ua := f.text("context.ua")) is not None:
            ev.user_agent = UserAgent(original=ua)
        if action == "anomaly" and (details := f.obj_at("details")) is not None:
            reasons = [r for r in details.list_at("reason") if isinstance(r, str)]
            ev.event.reason = ", ".join(reasons) or None
        return [ev]
