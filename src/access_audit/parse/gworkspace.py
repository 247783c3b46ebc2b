"""Google Workspace Reports API activities (``admin#reports#activity``: login, admin, drive,
token, saml, groups... applications), one JSON activity per record, or Panther's flattened
``GSuite.ActivityEvent`` form (one event per record, ``parameters`` as an object).

An activity carries a list of ``events``; each becomes one AccessEvent (same actor, time, IP).

Mapping (ECS on the left):

* ``@timestamp`` = ``id.time``, else Panther's ``p_event_time``.
* ``event.action`` = the event's ``name`` (required), e.g. ``login_success``,
  ``CHANGE_TWO_STEP_VERIFICATION_ENROLLMENT``, ``download``; ``event.provider`` =
  ``id.applicationName``; ``labels.gworkspace_service`` = ``<applicationName>.googleapis.com``
  (derived: the ``serviceName`` the same activity has in Cloud Logging, which Sigma's
  ``eventService`` names); ``labels.gworkspace_event_name`` = ``name`` (also as
  ``event.action``); ``labels.gworkspace_event_type`` = the event's ``type``.
* ``event.category``: login, token, saml -> authentication; admin, user_accounts, groups -> iam;
  drive -> file; else configuration. ``event.outcome``: login_failure and a ``login_challenge``
  with ``login_challenge_status`` other than "Challenge Passed" -> failure, other login events
  and every other application -> success (the Reports API records what took place).
* ``user.name``/``email`` = ``actor.email``, ``user.id`` = ``actor.profileId``; ``user.target``
  from the ``USER_EMAIL`` / ``target_user`` parameter; ``source.ip`` = ``ipAddress``.
* ``resource``: drive: the document (``doc_id``, ``doc_title``, type = ``doc_type``, owner =
  ``owner``); admin: the setting (``SETTING_NAME``, type setting), else the role
  (``ROLE_NAME``), else the user (``USER_EMAIL``); login: none.
* ``authentication.method`` = ``login_type`` (lower case); mfa when ``login_challenge_method``
  names a second factor; ``labels.gworkspace_<name>`` for the parameters setting_name, new_value,
  old_value, login_type, visibility, owner, role_name, is_suspicious, application_name,
  doc_type, login_challenge_method, visibility_change.

Never seen in a real record: the API form itself (``events`` list, ``parameters`` as
``{name, value | boolValue | intValue | multiValue}``): Panther's fixtures are flattened and
hand-written; the API shape follows Google's Reports API reference.
"""

from __future__ import annotations

from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    Authentication,
    EventInfo,
    Outcome,
    Resource,
    User,
    UserTarget,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import email_or_none, inner, unwrap, verb_type
from access_audit.parse.ecs import Fields, endpoint, scalar_text

_CATEGORIES = {"login": "authentication", "token": "authentication", "saml": "authentication",
               "logout": "authentication", "admin": "iam", "user_accounts": "iam", "groups": "iam",
               "groups_enterprise": "iam", "drive": "file"}
_LABELS = ("setting_name", "new_value", "old_value", "login_type", "visibility", "owner", "role_name",
           "is_suspicious", "application_name", "doc_type", "login_challenge_method", "visibility_change")
_SECOND_FACTORS = ("google_authenticator", "idv_any_phone", "idv_preregistered_phone", "security_key",
                   "internal_two_factor", "totp", "backup_code", "google_prompt", "passkey")


@register
class GoogleWorkspaceParser(JsonParser):
    """Google Workspace Reports API activities."""

    name = "gworkspace.activity"
    aliases = ("google_workspace.activity", "google_workspace.login", "google_workspace.admin",
               "google_workspace.drive", "gsuite.activity")
    description = "Google Workspace Reports API activities (login, admin, drive...)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        if rec.get("kind") == "admin#reports#activity":
            return True
        ident = rec.get("id")
        # A known application id is enough: a record without its event name is a dead letter naming it.
        return (isinstance(ident, dict) and isinstance(ident.get("applicationName"), str)
                and (isinstance(rec.get("actor"), dict) or "name" in rec or "type" in rec
                     or isinstance(rec.get("events"), list)))

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f = Fields(unwrap(obj), self.name)
        ts = f.time("id.time", "p_event_time")
        app = f.text("id.applicationName")
        if app is None:
            raise ParseError("missing field", "id.applicationName is absent", parser=self.name)
        email = f.text("actor.email")
        actor = User(name=email, email=email_or_none(email), id=f.text("actor.profileId", numbers=True))
        ip = f.text("ipAddress")
        if f.has("events"):
            events = f.objects("events")
            if not events:
                raise ParseError("missing field", "events is empty", parser=self.name)
        else:
            events = [f]
        out = []
        for e in events:
            name = e.text("name")
            if name is None:
                raise ParseError("missing field", f"{e.prefix}name is absent", parser=self.name)
            params = _params(e)
            out.append(self._event(ts, app, name, e.text("type"), params, actor, ip, f))
        return out

    def _event(self, ts: Any, app: str, name: str, etype: str | None, params: dict[str, str], actor: User,
               ip: str | None, f: Fields) -> AccessEvent:
        category = _CATEGORIES.get(app, "configuration")
        outcome = Outcome.success
        low = name.lower()
        if low == "login_failure" or (low == "login_challenge" and params.get("login_challenge_status", "")
                                      .lower() not in ("", "challenge passed")):
            outcome = Outcome.failure
        labels = {"gworkspace_service": f"{app}.googleapis.com", "gworkspace_event_name": name}
        if etype:
            labels["gworkspace_event_type"] = etype
        for key in _LABELS:
            if (v := params.get(key)) is not None:
                labels[f"gworkspace_{key}"] = v
        if (cust := f.text("id.customerId")) is not None:
            labels["gworkspace_customer_id"] = cust
        user = User(name=actor.name, email=actor.email, id=actor.id) if (actor.name or actor.id) else None
        target = params.get("user_email") or params.get("target_user")
        if target:
            user = user or User()
            user.target = UserTarget(name=target, email=email_or_none(target))
        if category == "authentication":
            types = ["start"] if low.startswith("login") else ["info"]
        elif category == "file":
            types = [verb_type(low.replace("_", ""))]
        else:
            types = [verb_type(low.split("_", 1)[0])]
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=[category], type=types, action=name, outcome=outcome,
                            provider=app),
            user=user,
            labels=labels,
        )
        if ip:
            ev.source = endpoint(ip)
        if app == "drive" and (params.get("doc_id") or params.get("doc_title")):
            ev.resource = Resource(type=params.get("doc_type") or "file", id=params.get("doc_id"),
                                   name=params.get("doc_title") or params.get("doc_id"), owner=params.get("owner"))
        elif params.get("setting_name"):
            ev.resource = Resource(type="setting", name=params["setting_name"])
        elif params.get("role_name"):
            ev.resource = Resource(type="role", name=params["role_name"], id=params.get("role_id"))
        elif target:
            ev.resource = Resource(type="user", name=target)
        method = params.get("login_type")
        challenge = (params.get("login_challenge_method") or "").lower()
        mfa = True if any(s in challenge for s in _SECOND_FACTORS) else None
        if category == "authentication" and (method or mfa):
            ev.authentication = Authentication(method=method.lower() if method else None, mfa=mfa)
        return ev


def _params(e: Fields) -> dict[str, str]:
    """Parameters keyed by lower-case name: the API's list of {name, value...} or Panther's object."""
    raw = e.raw("parameters")
    out: dict[str, str] = {}
    if raw is None:
        return out
    if isinstance(raw, dict):
        for k, v in raw.items():
            text = scalar_text(v) if not isinstance(v, list) else ",".join(str(x) for x in v)
            if text is not None:
                out[str(k).lower()] = text
        return out
    for p in e.objects("parameters"):
        name = p.text("name")
        if name is None:
            raise ParseError("missing field", f"{p.prefix}name is absent", parser=e.parser)
        v = p.raw("value")
        if v is None:
            v = next((p.raw(k) for k in ("boolValue", "intValue") if p.raw(k) is not None), None)
        if v is None and (multi := p.list_at("multiValue")):
            v = ",".join(str(x) for x in multi)
        if (text := scalar_text(v)) is not None:
            out[name.lower()] = text
    return out
