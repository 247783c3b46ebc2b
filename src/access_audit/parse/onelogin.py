"""OneLogin events (``onelogin.events``), the event resource of OneLogin's Events API
(``/api/1/events``), one per JSON object. A Panther test row ``{"event": {...}}`` is read as its
``event``.

Mapping (ECS on the left):

* ``@timestamp`` = ``created_at``, else Panther's ``p_event_time``.
* ``event.action`` from ``event_type_id`` (required; a number, or a string of digits) by the
  table ``EVENT_TYPES``; an id not in the table is ``onelogin-event-<id>`` with no category.
  ``labels.onelogin_event_type_id`` always holds the id (Sigma rules match ``event_type_id``).
* ``user`` = the actor: ``actor_user_name`` / ``actor_user_id``, else (logins, which have no
  other actor) ``user_name`` / ``user_id``; ``user.target`` = ``user_name`` / ``user_id`` when
  the actor acted on another account.
* ``source.ip`` = ``ipaddr``; ``event.reason`` = ``error_description``, else ``notes``.
* ``resource``: the application (``app_id`` / ``app_name``), else the privilege
  (``privilege_name``), role, group, OTP device / authentication factor, else the target user.
* ``authentication.method`` = ``authentication_factor_description`` / ``otp_device_name`` on
  logins; labels ``onelogin_risk_score``, ``onelogin_event_id`` (``id``), ``onelogin_account_id``.

The ids of ``EVENT_TYPES`` and their meaning are OneLogin's event types as the Panther rules
and SigmaHQ's onelogin rules read them (3 assumed user, 5 login, 6 failed login, 8 app login,
90 app access rejected, 531/532/553 locked, 551 suspended...).

**Never seen in a real record**: every field. The datasets hold only Panther's hand-written
fixtures (30 of 36 without any time: dead letters ``missing timestamp``); ``created_at``, ``id``,
``account_id``, ``role_*``, ``group_*``, ``error_description``, ``notes`` come from OneLogin's
documentation.
"""

from __future__ import annotations

from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import AccessEvent, Authentication, EventInfo, Outcome, Resource, User, UserTarget
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import email_or_none, inner, unwrap
from access_audit.parse.ecs import Fields, code_number, endpoint

# id -> (action, category, type, outcome)
EVENT_TYPES: dict[int, tuple[str, str, str, Outcome]] = {
    3: ("user-assumed-user", "authentication", "start", Outcome.success),
    5: ("user-logged-in", "authentication", "start", Outcome.success),
    6: ("user-login-failed", "authentication", "start", Outcome.failure),
    8: ("user-logged-into-app", "authentication", "start", Outcome.success),
    90: ("user-app-access-rejected", "authentication", "start", Outcome.failure),
    11: ("user-password-changed", "iam", "change", Outcome.success),
    211: ("user-password-set-by-admin", "iam", "change", Outcome.success),
    13: ("user-created", "iam", "creation", Outcome.success),
    16: ("user-activated", "iam", "change", Outcome.success),
    17: ("user-deleted", "iam", "deletion", Outcome.success),
    24: ("otp-device-deactivated", "iam", "deletion", Outcome.success),
    172: ("auth-factor-removed", "iam", "deletion", Outcome.success),
    72: ("privilege-granted", "iam", "change", Outcome.success),
    240: ("app-password-viewed", "iam", "access", Outcome.success),
    531: ("user-locked", "iam", "change", Outcome.success),
    532: ("user-locked", "iam", "change", Outcome.success),
    553: ("user-locked", "iam", "change", Outcome.success),
    551: ("user-suspended", "iam", "change", Outcome.success),
}
_SNIFF_COMPANIONS = ("user_name", "actor_user_name", "user_id", "actor_user_id", "ipaddr", "app_name",
                     "privilege_name", "created_at")


@register
class OneLoginParser(JsonParser):
    """OneLogin events (logins, user and app administration)."""

    name = "onelogin.events"
    aliases = ("onelogin",)
    description = "OneLogin events"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        return "event_type_id" in rec and (any(k in rec for k in _SNIFF_COMPANIONS)
                                           or rec.get("p_log_type") == "OneLogin.Events")

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f = Fields(unwrap(obj), self.name)
        raw = f.raw("event_type_id")
        if raw is None or raw == "":
            raise ParseError("missing field", "event_type_id is absent", parser=self.name)
        tid = code_number(raw)
        if tid is None:
            raise ParseError("wrong field type", f"event_type_id={raw!r} is not an event type number",
                             parser=self.name)
        ts = f.time("created_at", "p_event_time")
        action, category, etype, outcome = EVENT_TYPES.get(tid, (f"onelogin-event-{tid}", "", "info",
                                                                 Outcome.unknown))
        labels = {"onelogin_event_type_id": str(tid),
                  **f.labels((("risk_score", "onelogin_risk_score"), ("id", "onelogin_event_id"),
                              ("account_id", "onelogin_account_id"), ("actor_system", "onelogin_actor_system")))}
        target_name, target_id = f.text("user_name"), f.text("user_id", numbers=True)
        actor_name, actor_id = f.text("actor_user_name"), f.text("actor_user_id", numbers=True)
        user: User | None
        if actor_name or actor_id:
            user = User(name=actor_name, id=actor_id, email=email_or_none(actor_name))
            if (target_name or target_id) and (target_name, target_id) != (actor_name, actor_id):
                user.target = UserTarget(name=target_name, id=target_id, email=email_or_none(target_name))
        elif target_name or target_id:
            user = User(name=target_name, id=target_id, email=email_or_none(target_name))
        else:
            user = None
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=[category] if category else [], type=[etype], action=action,
                            outcome=outcome, reason=f.text("error_description") or f.text("notes"),
                            provider="onelogin"),
            user=user,
            labels=labels,
        )
        if (ip := f.text("ipaddr")) is not None:
            ev.source = endpoint(ip)
        ev.resource = _resource(f, target_name, target_id)
        factor = f.text("authentication_factor_description") or f.text("otp_device_name")
        if factor and category == "authentication":
            ev.authentication = Authentication(method=factor.lower())
        return [ev]


def _resource(f: Fields, target_name: str | None, target_id: str | None) -> Resource | None:
    for kind, id_key, name_key in (("application", "app_id", "app_name"), ("privilege", "privilege_id",
                                                                           "privilege_name"),
                                   ("role", "role_id", "role_name"), ("group", "group_id", "group_name"),
                                   ("otp_device", "otp_device_id", "otp_device_name"),
                                   ("authenticator", None, "authentication_factor_description")):
        rid = f.text(id_key, numbers=True) if id_key else None
        name = f.text(name_key)
        if rid or name:
            return Resource(type=kind, id=rid, name=name)
    if target_name or target_id:
        return Resource(type="user", id=target_id, name=target_name)
    return None
